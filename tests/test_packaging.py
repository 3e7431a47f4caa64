"""The wheel carries what the program needs at run time: the schemas and example plans."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_schemas_and_plans(tmp_path: Path) -> None:
    """A built wheel holds runner/_data/schemas and runner/_data/plans with every file."""
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("schemas", "plans"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                packaged = f"runner/_data/{folder}/{path.relative_to(ROOT / folder).as_posix()}"
                assert packaged in names, packaged
    assert "runner/cli.py" in names
