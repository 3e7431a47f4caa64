"""The follow-up files of a run: `failed.csv` + `failed.yaml` (re-plan what failed in one
command), `unknown.csv` (outcomes to reconcile, never to retry blindly) and
`manual-steps.md` (what Graph cannot do, for an operator to do and confirm).

Pure: journal records in, file text out; `runner/report.py` writes them.
"""

from __future__ import annotations

import csv
import io
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from runner.actions.app_passwords import PORTAL_STEPS
from runner.report_data import neutralise
from runner.review import md
from runner.runstate import Item, ItemStatus, RunHeader, stamp

FAILED_COLUMNS = ("user", "actions", "ticket", "note")
UNKNOWN_COLUMNS = (
    "item",
    "upn",
    "object_id",
    "display_name",
    "action",
    "status",
    "reason",
    "http_status",
    "error_code",
    "error_message",
    "request_id",
    "attempts",
    "started",
    "finished",
)
MAX_NAME = 64
RETRY_SUFFIX = "-retry"
CONFIRM_CHUNK = 50  # item ids per `entra-bulk confirm` line in manual-steps.md

# The portal steps of each action Graph cannot do (graph-reference.md section 4).
MANUAL_STEPS: Mapping[str, tuple[str, ...]] = {"delete_app_passwords": PORTAL_STEPS}
MANUAL_NOTES: Mapping[str, str] = {
    "delete_app_passwords": (
        "The per-user MFA page takes several users at once. Microsoft's documentation names "
        "Authentication Administrator for this page; administrators report that only a Global "
        "Administrator can delete app passwords (entra-docs issue #466)."
    )
}


def csv_lines(rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV lines (CRLF), every cell neutralised against formulas."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for values in rows:
        writer.writerow([_cell(value) for value in values])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return neutralise(value)


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV file: UTF-8 BOM first (so Excel reads UTF-8), the header, then the rows."""
    return "\ufeff" + csv_lines([columns]) + csv_lines(rows)


def _by_target(items: Iterable[Item]) -> list[list[Item]]:
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.object_id, []).append(item)
    return [sorted(group, key=lambda i: i.position) for group in groups.values()]


def _why(item: Item) -> str:
    if item.status is ItemStatus.DRIFTED:
        return f"{item.action} drifted: {item.reason or 'changed since planning'}"
    facts = " ".join(str(f) for f in (item.http_status, item.error_code) if f)
    text = item.error_message or item.reason or "failed"
    return f"{item.action} failed" + (f" ({facts})" if facts else "") + f": {text}"


def failed_csv(items: Iterable[Item]) -> str:
    """One row per target whose items failed or drifted: a plan's CSV of targets.

    The target is its object id (the same person even if the UPN changed; never mistaken for a
    formula); its actions are the ones to do again; the note says who and why.
    """
    rows = []
    for group in _by_target(items):
        first = group[0]
        note = f"{first.upn}: " + "; ".join(_why(item) for item in group)
        if first.note:
            note += f" | note: {first.note}"
        rows.append((first.object_id, ";".join(i.action for i in group), first.ticket, note))
    return csv_text(FAILED_COLUMNS, rows)


def retry_name(name: str) -> str:
    """`<plan name>-retry`, within the 64 characters a plan name may have."""
    return name[: MAX_NAME - len(RETRY_SUFFIX)].rstrip("-.") + RETRY_SUFFIX


def failed_yaml(header: RunHeader, run_name: str, items: Sequence[Item], *, unsettled: int) -> str:
    """A plan with the run's options and safety settings whose targets are failed.csv."""
    plan = header.content.get("plan", {})
    planned = list(plan.get("actions") or [])
    wanted = {item.action for item in items}
    actions = [a for a in planned if a in wanted]
    actions += sorted(wanted - set(actions))
    users = len({item.object_id for item in items})
    safety = {k: v for k, v in dict(plan.get("safety") or {}).items() if v is not None}
    document: dict[str, Any] = {"version": 1, "name": retry_name(header.plan_name)}
    if header.ticket:
        document["ticket"] = header.ticket
    document["description"] = f"What failed or drifted in run {run_name}"
    document["actions"] = actions
    document["options"] = dict(plan.get("options") or {})
    document["targets_from"] = "failed.csv"
    document["safety"] = safety
    retry = f"{header.plan_name}-retry.plan.json"
    lines = [
        f"# Re-plan what failed in run {run_name} of plan {header.plan_name}",
        f"# ({header.digest}): {users} users, {len(items)} actions.",
        "# The targets come from failed.csv beside this file (object ids, with each target's",
        "# own actions); options and safety settings are the original plan's.",
        "#   entra-bulk validate failed.yaml",
        f"#   entra-bulk plan failed.yaml -o {retry}",
        "# Review and approve the new plan as any other: the tenant may have changed since.",
    ]
    if safety.get("allowed_signers"):
        lines.append(
            "# safety.allowed_signers is read relative to the new frozen plan's folder: "
            "check it still names the right file."
        )
    if unsettled:
        what = (
            "1 item whose outcome is" if unsettled == 1 else f"{unsettled} items whose outcomes are"
        )
        lines.append(f"# Not here: {what} unknown (unknown.csv). Resume the run to read")
        lines.append("# them back: doing them again blindly could do them twice.")
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(lines) + "\n" + body


def unknown_csv(items: Iterable[Item]) -> str:
    """Items whose outcome is unknown (or still in flight): resume reconciles them."""
    rows = (
        (
            i.id,
            i.upn,
            i.object_id,
            i.display_name,
            i.action,
            str(i.status),
            i.reason,
            i.http_status,
            i.error_code,
            i.error_message,
            i.request_id,
            i.attempts,
            None if i.started is None else stamp(i.started),
            None if i.finished is None else stamp(i.finished),
        )
        for i in items
    )
    return csv_text(UNKNOWN_COLUMNS, rows)


def _who(item: Item) -> str:
    name = f" ({md(item.display_name)})" if item.display_name else ""
    return f"item {item.id}: {md(item.upn)}{name}, object id {item.object_id}"


def manual_steps(header: RunHeader, run_dir: str, items: Sequence[Item]) -> str:
    """The checklist of actions Graph cannot do, per action, with the confirm commands."""
    run = shlex.quote(run_dir)
    tenant = header.tenant_id + (" (emulated tenant)" if header.emulated else "")
    ticket = f"ticket {md(header.ticket)} · " if header.ticket else ""
    out = [
        f"# Manual steps: {md(header.plan_name)}",
        "",
        f"{ticket}run `{run_dir}` · tenant {tenant} · plan `{header.digest}`",
        "",
        "Graph has no API for the actions below, so entra-bulk did not do them and does not",
        "count them as done. Do each one in the Entra admin center, tick its line here, and",
        "record it in the run's journal (the reports are rebuilt when you do):",
        "",
        "```sh",
        f'entra-bulk confirm {run} ITEM... --by "YOUR NAME"',
        "```",
    ]
    actions: dict[str, list[Item]] = {}
    for item in items:
        actions.setdefault(item.action, []).append(item)
    for action, group in actions.items():
        done = [i for i in group if i.status is ItemStatus.CONFIRMED]
        open_ = [i for i in group if i.status is not ItemStatus.CONFIRMED]
        out += ["", f"## {action}: {len(group)} users ({len(done)} confirmed)", ""]
        why = group[0].summary.removeprefix("manual: ")
        out.append(f"Why manual: {md(why)}.")
        steps = MANUAL_STEPS.get(action)
        if steps:
            out += ["", "For each user:", ""]
            out += [f"{n}. {step}" for n, step in enumerate(steps, start=1)]
        if action in MANUAL_NOTES:
            out += ["", MANUAL_NOTES[action]]
        out.append("")
        for item in group:
            if item.status is ItemStatus.CONFIRMED:
                by = md(item.detail.get("by", "someone"))
                when = "" if item.finished is None else f" at {stamp(item.finished)[:19]}Z"
                why = f" ({md(item.reason)})" if item.reason and item.reason != "confirmed" else ""
                out.append(f"- [x] {_who(item)}: confirmed by {by}{when}{why}")
            else:
                out.append(f"- [ ] {_who(item)}")
        if open_:
            out += ["", "Once done, record them:", "", "```sh"]
            ids = [str(i.id) for i in open_]
            for start in range(0, len(ids), CONFIRM_CHUNK):
                chunk = " ".join(ids[start : start + CONFIRM_CHUNK])
                out.append(f'entra-bulk confirm {run} {chunk} --by "YOUR NAME"')
            out.append("```")
    return "\n".join(out) + "\n"
