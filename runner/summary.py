"""The summary `apply` prints when a run ends: counts per status, 429s met, seconds paused,
what needs a person (failed, unknown, not verified, manual, secrets) with the exact commands,
the report and the run folder. Built from the journal, like the reports."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from runner.journal import Journal
from runner.progress import Output
from runner.report_data import Tally, not_sent_ids, tally
from runner.runstate import Item
from runner.secrets import redact

MANUAL_IDS = 20  # item numbers written out in the confirm command


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFigures:
    """What the apply process counted beside the journal."""

    requests: int
    throttled: int
    paused_s: float
    reconciled: int


def lines(run_dir: str, counted: Tally, figures: RunFigures) -> list[tuple[bool, str]]:
    """The summary: `(shown even under -q, text)` per line."""
    run = shlex.quote(run_dir)
    out: list[tuple[bool, str]] = []
    counts = {k: v for k, v in counted.counts.items() if v}
    result = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing to do"
    out.append((True, f"Result: {result}"))
    out.append(
        (
            False,
            f"Graph requests: {figures.requests}; 429s met: {figures.throttled}; "
            f"paused {figures.paused_s:.1f} s; reconciled by read-back: {figures.reconciled}",
        )
    )
    if counted.unverified:
        text = (
            f"Not verified: {counted.unverified} items: Graph accepted them but the read-back "
            "did not show the change in time (see the report)"
        )
        out.append((True, text))
    if counted.retry:
        users = len({item.object_id for item in counted.retry})
        failed_plan = shlex.quote(run_dir + "/failed.yaml")
        text = (
            f"Failed or drifted: {len(counted.retry)} items of {users} users (failed.csv); "
            f"re-plan them with: entra-bulk plan {failed_plan}"
        )
        out.append((True, text))
    if counted.unsettled:
        text = (
            f"Unknown outcome: {len(counted.unsettled)} items (unknown.csv); resume to read "
            f"them back, never re-sent blindly: entra-bulk apply --resume {run}"
        )
        out.append((True, text))
    if counted.not_sent:
        text = (
            f"Not yet sent: {len(counted.not_sent)} items Graph turned away without executing "
            f"them (throttled or unavailable); resume sends them: entra-bulk apply --resume {run}"
        )
        out.append((True, text))
    waiting = [item for item in counted.manual if str(item.status) == "manual"]
    if waiting:
        ids = " ".join(str(item.id) for item in waiting[:MANUAL_IDS])
        more = " ..." if len(waiting) > MANUAL_IDS else ""
        steps = shlex.quote(run_dir + "/manual-steps.md")
        text = (
            f"Manual: {len(waiting)} steps Graph cannot do, with their portal steps in {steps}; "
            f'then: entra-bulk confirm {run} {ids}{more} --by "YOUR NAME"'
        )
        out.append((False, text))
    out.extend((False, text) for text in secret_lines(run_dir, counted))
    report = shlex.quote(run_dir + "/report.html")
    out.append((False, f"Report: {report} (rebuild: entra-bulk report {run})"))
    out.append((True, f"Run folder: {run_dir}"))
    return out


def _named(items: list[Item]) -> str:
    """`5 (alex@contoso.com), 9 (megan@contoso.com)`: the first items, by ref and target."""
    names = ", ".join(f"{item.ref} ({item.upn or item.object_id})" for item in items[:MANUAL_IDS])
    return names + (", ..." if len(items) > MANUAL_IDS else "")


def secret_lines(run_dir: str, counted: Tally) -> list[str]:
    """What to do with secrets.csv: hand over only the rows whose change was applied. The file
    is written before the request, so it also holds passwords that were never set."""
    total = counted.secret_rows
    if not total:
        return []
    path = shlex.quote(run_dir + "/secrets.csv")
    never, unsettled = counted.secrets_never_set, counted.secrets_unsettled
    end = "keep the file until a resume settles the rest" if unsettled else "then delete the file"
    if counted.secrets == total:
        head = f"Secrets: {total} in {path} (0600) and nowhere else: hand them over, {end}"
    elif counted.secrets:
        head = (
            f"Secrets: {counted.secrets} of the {total} in {path} (0600) are in effect: hand over "
            f'only those (secret_state "in effect" in report.csv), {end}'
        )
    else:
        head = f"Secrets: none of the {total} in {path} (0600) is in effect: hand none over, {end}"
    out = [head]
    if never:
        out.append(
            f"Secrets never set: {len(never)} in secrets.csv, of items {_named(never)}: their "
            "change was not applied, do not hand them over"
        )
    if unsettled:
        out.append(
            f"Secrets unsettled: {len(unsettled)} in secrets.csv, of items {_named(unsettled)}: "
            "not known to be set; hand them over only once a resume shows them in effect"
        )
    if counted.secrets_uncertain:
        uncertain = counted.secrets_uncertain
        out.append(
            f"Secrets that may be in effect: {len(uncertain)} in secrets.csv, of items "
            f"{_named(uncertain)}: Graph may have made the change but it could not be read "
            "back; check the user in the portal before handing one over or resetting again"
        )
    return out


def show(console: Output, run_dir: Path, figures: RunFigures) -> None:
    """Print the summary of the run in `run_dir` (one JSON object with `--log-format json`)."""
    with Journal.open(run_dir) as journal:
        counted = tally(journal.iter_items(), not_sent=not_sent_ids(journal.orphaned_intents()))
    found = lines(str(run_dir), counted, figures)
    if console.log_format == "json":
        record = {
            "event": "summary",
            "run_dir": str(run_dir),
            "counts": {k: v for k, v in counted.counts.items() if v},
            "not_verified": counted.unverified,
            "unknown": len(counted.unsettled),
            "not_yet_sent": len(counted.not_sent),
            "secrets": {
                "in_effect": counted.secrets,
                "never_set": [item.ref for item in counted.secrets_never_set],
                "unsettled": [item.ref for item in counted.secrets_unsettled],
                "may_be_in_effect": [item.ref for item in counted.secrets_uncertain],
            },
            "requests": figures.requests,
            "throttled": figures.throttled,
            "paused_s": round(figures.paused_s, 3),
            "reconciled": figures.reconciled,
            "lines": [text for _, text in found],
        }
        console.stderr.write(redact(json.dumps(record, ensure_ascii=False)) + "\n")
        console.stderr.flush()
        return
    for always, text in found:
        if always and console.quiet:
            console.stderr.write(redact(text) + "\n")
            console.stderr.flush()
        else:
            console.info(text)
