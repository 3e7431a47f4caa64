"""entra-bulk: declarative, reviewed, journaled bulk security actions for Entra ID users."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("entra-bulk")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0+checkout"

__all__ = ["__version__"]
