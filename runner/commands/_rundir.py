"""Opening a run folder for `report`, `confirm` and `status`, with a message that says what
to do when the folder is not a run."""

from __future__ import annotations

from pathlib import Path

from runner.errors import InputError
from runner.journal import JOURNAL_NAME, Journal


def open_run(run_dir: Path) -> Journal:
    """The journal of `run_dir`; an input error (exit 2) when it is not a run folder."""
    if not (run_dir / JOURNAL_NAME).is_file():
        what = "no such folder" if not run_dir.exists() else f"no {JOURNAL_NAME} in it"
        msg = f"{run_dir}: not a run folder ({what})"
        raise InputError(msg, hint="`entra-bulk runs` lists the runs under ./runs")
    return Journal.open(run_dir)
