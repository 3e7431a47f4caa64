"""Reports of a run, built from the journal alone (so `entra-bulk report` can rebuild them).

This first version writes `report.json` and `report.csv` (one row per target and action);
the operator-experience work extends it (HTML, XLSX, failed.csv/yaml, manual-steps.md).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from runner import crash
from runner.journal import Journal
from runner.runstate import Item

COLUMNS = (
    "upn",
    "object_id",
    "action",
    "status",
    "verified",
    "reason",
    "http_status",
    "error_code",
    "error_message",
    "request_id",
    "attempts",
    "started",
    "finished",
    "item",
    "note",
    "ticket",
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def row(item: Item) -> dict[str, Any]:
    """One report row."""
    return {
        "upn": item.upn,
        "object_id": item.object_id,
        "action": item.action,
        "status": str(item.status),
        "verified": item.verified,
        "reason": item.reason,
        "http_status": item.http_status,
        "error_code": item.error_code,
        "error_message": item.error_message,
        "request_id": item.request_id,
        "attempts": item.attempts,
        "started": item.started.isoformat() if item.started else None,
        "finished": item.finished.isoformat() if item.finished else None,
        "item": item.id,
        "note": item.note,
        "ticket": item.ticket,
    }


def _atomic(path: Path, data: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8", newline="") as handle:
        handle.write(data)
        handle.flush()
        crash.crash_point("mid_report_write")
        os.fsync(handle.fileno())
    temporary.replace(path)


def write_all(run_dir: Path, journal: Journal) -> list[Path]:
    """Write every report of the run folder from the journal; returns the files written."""
    header = journal.header()
    rows = [row(item) for item in journal.iter_items()]
    counts = {str(k): v for k, v in journal.counts().items()}
    document = {
        "plan": header.plan_name,
        "ticket": header.ticket,
        "digest": header.digest,
        "tenant_id": header.tenant_id,
        "emulated": header.emulated,
        "counts": counts,
        "items": rows,
    }
    _atomic(run_dir / "report.json", json.dumps(document, indent=2, default=str) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for entry in rows:
        writer.writerow([neutralise(entry[column]) for column in COLUMNS])
    _atomic(run_dir / "report.csv", "\ufeff" + buffer.getvalue())
    return [run_dir / "report.json", run_dir / "report.csv"]
