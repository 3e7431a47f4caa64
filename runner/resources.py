"""Where the files that travel with the package live: `schemas/` and `plans/`.

In a wheel they sit inside the package (`runner/_data/...`); in a source checkout they are
the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder `schemas` or `plans`, from the wheel or from the checkout."""
    packaged = _PACKAGE / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / name
