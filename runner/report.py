"""Reports of a run, built from the journal alone, so `entra-bulk report` rebuilds them any time.

    write_all(run_dir, journal)                          # csv, json, html + follow-up files
    write_all(run_dir, journal, formats=("xlsx",))       # report.xlsx (openpyxl)

Files: `report.csv` (UTF-8 with BOM, every cell neutralised against formulas),
`report.json` (header, outcome, counts, timeline figures, every row), `report.html`
(`report_html`), `report.xlsx` on request (openpyxl, streamed); and the follow-up files of
`report_files`: `failed.csv` always (its header alone when nothing failed or drifted), and
`failed.yaml`, `unknown.csv` and `manual-steps.md` only when there is something to list (stale
ones are removed). Each file is written to a hidden temporary file, fsynced and renamed over
the old one, so a crash leaves the old report or the new one, never half of one. Reports hold
`secret_ref`s, never secrets.

Every file streams from the journal a page at a time, so memory stays flat at 100,000 items.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools
import json
import os
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import crash, report_files, report_html
from runner.errors import InputError, StorageError
from runner.journal import Journal, holder_alive
from runner.report_data import (
    COLUMNS,
    NUMBER_COLUMNS,
    Outcome,
    Tally,
    assess,
    count_text,
    crash_log,
    neutralise,
    not_sent_ids,
    row,
    tally,
)
from runner.report_timeline import Figures, Timeline, ended, figures, timeline
from runner.runstate import RunHeader, stamp

FORMATS = ("csv", "json", "html", "xlsx")
DEFAULT_FORMATS = ("csv", "json", "html")
REPORT_FORMAT = "entra-bulk-report/1"
SECRETS_FILE = "secrets.csv"
FILES = {
    "report.html": "this page: the run at a glance",
    "report.csv": "every (target, action) with its outcome, for a spreadsheet",
    "report.json": "the same, with the header and timeline figures, for programs",
    "report.xlsx": "the rows and a summary sheet for Excel",
    "failed.csv": "the targets and actions that failed or drifted",
    "failed.yaml": "a plan of failed.csv with the original settings: re-plan it",
    "unknown.csv": "outcomes to reconcile by resuming, not to retry",
    "manual-steps.md": "the portal steps Graph cannot do, with the confirm commands",
    SECRETS_FILE: "temporary passwords and access passes (0600): hand over, then delete",
    "events.jsonl": "the structured log apply wrote, one JSON object per event",
    "journal.sqlite": "the journal: the one record of the run, source of every report",
}

__all__ = ["DEFAULT_FORMATS", "FORMATS", "Built", "collect", "neutralise", "write_all"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Built:
    """What the reports of a run are made of, besides the rows."""

    run_dir: Path
    header: RunHeader
    tally: Tally
    figures: Figures
    timeline: Timeline
    outcome: Outcome

    @property
    def label(self) -> str:
        """The run folder as the commands in the reports name it."""
        return str(self.run_dir)


def collect(run_dir: Path, journal: Journal) -> Built:
    """Read the journal once for everything but the rows."""
    header = journal.header(content=True)
    counted = tally(journal.iter_items(), not_sent=not_sent_ids(journal.orphaned_intents()))
    events = journal.events()
    lock = journal.lock_holder()
    alive = None if lock is None else holder_alive(lock)
    mine = journal.lock
    if lock is not None and mine is not None and mine.lock_id == lock.lock_id:
        lock = None  # this process's own lock (a confirm): not a run holding the folder
    return Built(
        run_dir=run_dir,
        header=header,
        tally=counted,
        figures=dataclasses.replace(figures(events), ended=ended(events, journal.last_change)),
        timeline=timeline(header.created, counted.sent_finished, events),
        outcome=assess(
            counted.counts,
            unverified=counted.unverified,
            events=events,
            run_dir=str(run_dir),
            lock=lock,
            lock_alive=alive,
            crash_log=crash_log((p.name for p in run_dir.iterdir()), events),
        ),
    )


def _rows(journal: Journal, header: RunHeader) -> Callable[[], Iterator[dict[str, Any]]]:
    def rows() -> Iterator[dict[str, Any]]:
        return (row(item, plan_ticket=header.ticket) for item in journal.iter_items())

    return rows


def _atomic(path: Path, chunks: Iterable[str | bytes]) -> Path:
    """Write `path` through a hidden temporary file: fsynced, then renamed over it."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            first = True
            for chunk in chunks:
                handle.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
                if first:
                    handle.flush()
                    crash.crash_point("mid_report_write")
                    first = False
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        msg = f"{path}: cannot write the report: {exc.strerror or exc}"
        raise StorageError(
            msg, hint="the journal is intact: fix the disk, then entra-bulk report"
        ) from None
    return path


def _header_json(built: Built) -> dict[str, Any]:
    h = built.header
    content = h.content
    ended = built.figures.ended
    return {
        "plan": h.plan_name,
        "ticket": h.ticket,
        "description": content.get("plan", {}).get("description"),
        "digest": h.digest,
        "tenant_id": h.tenant_id,
        "cloud": content.get("tenant", {}).get("cloud"),
        "emulated": h.emulated,
        "author": dict(h.author),
        "approvals": [dict(a) for a in h.approvals],
        "plan_created": content.get("created"),
        "plan_expires": content.get("expires"),
        "options": dict(h.options),
        "safety": content.get("plan", {}).get("safety"),
        "run_folder": built.run_dir.name,
        "started": stamp(h.created),
        "ended": None if ended is None else stamp(ended),
        "tool_version": h.tool_version,
    }


def _json_chunks(
    built: Built, rows: Callable[[], Iterator[dict[str, Any]]], secrets: str | None
) -> Iterator[str]:
    head = {
        "format": REPORT_FORMAT,
        "header": _header_json(built),
        "outcome": built.outcome.as_json(),
        "counts": built.tally.counts,
        "counts_by_action": built.tally.by_action,
        "not_verified": built.tally.unverified,
        "timeline": built.figures.as_json(),
        "throughput": built.timeline.as_json(),
        "secrets_file": secrets,
    }
    text = json.dumps(head, indent=2, ensure_ascii=False, default=str)
    yield text[: -len("\n}")] + ',\n  "items": [\n'
    separator = ""
    for entry in rows():
        yield separator + "    " + json.dumps(entry, ensure_ascii=False, default=str)
        separator = ",\n"
    yield "\n  ]\n}\n"


def _csv_chunks(rows: Callable[[], Iterator[dict[str, Any]]]) -> Iterator[str]:
    yield report_files.csv_text(COLUMNS, ())
    source = rows()
    while batch := list(itertools.islice(source, 1000)):
        yield report_files.csv_lines([entry[column] for column in COLUMNS] for entry in batch)


def _xlsx_cell(column: str, value: Any) -> Any:
    """Text is neutralised against formulas; numbers, booleans and empty cells stay as they
    are (and so do the number columns, which are never text)."""
    if not isinstance(value, str) or column in NUMBER_COLUMNS:
        return value
    return neutralise(value)


def _need_openpyxl() -> None:
    try:
        import openpyxl  # noqa: F401 - checked before any work, so nothing is half done
    except ImportError:
        msg = "report.xlsx needs openpyxl, which is not installed"
        raise InputError(msg, hint="pip install 'entra-bulk[xlsx]'") from None


def _xlsx(built: Built, rows: Callable[[], Iterator[dict[str, Any]]]) -> bytes:
    """The workbook, streamed row by row (openpyxl's write-only mode: flat memory at any size;
    pandas would hold every row, twice)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    summary = book.create_sheet("Summary")
    summary.append(["field", "value"])
    head = _header_json(built)
    pairs: list[tuple[str, Any]] = [
        (key, value) for key, value in head.items() if not isinstance(value, dict | list)
    ]
    pairs += [
        ("outcome", f"{built.outcome.state} ({built.outcome.code_text}): {built.outcome.meaning}"),
        ("counts", count_text(built.tally.counts)),
        ("not verified", built.tally.unverified),
        ("429s met", built.figures.throttled),
        ("seconds paused", round(built.figures.paused_s, 1)),
        ("times", "UTC"),
    ]
    for key, value in pairs:
        summary.append([key, _xlsx_cell(key, value)])
    items = book.create_sheet("Items")
    items.freeze_panes = "A2"
    items.append(list(COLUMNS))
    count = 0
    for entry in rows():
        items.append([_xlsx_cell(column, entry[column]) for column in COLUMNS])
        count += 1
    items.auto_filter.ref = f"A1:{_column_letter(len(COLUMNS))}{count + 1}"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _column_letter(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _follow_ups(run_dir: Path, built: Built) -> list[Path]:
    t = built.tally
    written: list[Path] = []
    wanted = {
        "failed.csv": report_files.failed_csv(t.retry),  # always: the header alone for none
        "failed.yaml": report_files.failed_yaml(
            built.header, run_dir.name, t.retry, unsettled=len(t.unsettled)
        )
        if t.retry
        else None,
        "unknown.csv": report_files.unknown_csv(t.unsettled) if t.unsettled else None,
        "manual-steps.md": report_files.manual_steps(built.header, built.label, t.manual)
        if t.manual
        else None,
    }
    for name, text in wanted.items():
        path = run_dir / name
        if text is None:
            path.unlink(missing_ok=True)
        else:
            written.append(_atomic(path, (text,)))
    return written


def write_all(
    run_dir: Path,
    journal: Journal,
    *,
    formats: Collection[str] | None = None,
    now: dt.datetime | None = None,
) -> list[Path]:
    """Write the run's reports from its journal; returns the files written."""
    chosen = DEFAULT_FORMATS if formats is None else tuple(f for f in FORMATS if f in formats)
    unknown = sorted(set(formats or ()) - set(FORMATS))
    if unknown:
        msg = f"unknown report format {unknown[0]!r}; one of {', '.join(FORMATS)}"
        raise InputError(msg)
    if "xlsx" in chosen:
        _need_openpyxl()
    built = collect(run_dir, journal)
    rows = _rows(journal, built.header)
    secrets_path = run_dir / SECRETS_FILE
    secrets = str(secrets_path) if built.tally.secret_rows and secrets_path.exists() else None
    written = _follow_ups(run_dir, built)
    if "csv" in chosen:
        written.append(_atomic(run_dir / "report.csv", _csv_chunks(rows)))
    if "json" in chosen:
        written.append(_atomic(run_dir / "report.json", _json_chunks(built, rows, secrets)))
    if "xlsx" in chosen:
        written.append(_atomic(run_dir / "report.xlsx", (_xlsx(built, rows),)))
    if "html" in chosen:
        present = {p.name for p in written} | {"report.html"}
        files = {n: w for n, w in FILES.items() if n in present or (run_dir / n).exists()}
        page = report_html.Page(
            header=built.header,
            run_dir=built.label,
            tally=built.tally,
            figures=built.figures,
            timeline=built.timeline,
            outcome=built.outcome,
            files=files,
            secrets_file=secrets,
            generated=now or dt.datetime.now(dt.UTC),
        )
        written.append(_atomic(run_dir / "report.html", report_html.render(page, rows)))
    _sync(run_dir)
    return written


def _sync(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        msg = f"{folder}: cannot sync the run folder: {exc.strerror}"
        raise StorageError(msg) from None
