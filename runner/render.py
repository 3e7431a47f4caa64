"""Rendering a frozen plan for review: what `entra-bulk plan` prints and `show` shows.

Everything is rendered from the frozen plan's `content`, the object the digest covers, so a
reviewer approves what runs (reliability.md §1.2). Three formats:

- `text`: a table (rich) on a terminal; plain aligned lines elsewhere, colourless;
- `json`: the content and its digest (plus approvals when given), sorted keys, stable;
- `markdown`: a pull-request comment: header, summary table, one collapsible `<details>` per
  action, the digest in a code span and the exact command that applies this plan.

Text and markdown show at most `limit` targets (per action, in markdown) and point at
`--format json` for the rest, so that a plan of 10,000 targets renders in a moment. What the
header says and how text from the tenant is escaped lives in `runner.review`.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import shlex
import shutil
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from runner import review
from runner.actions.base import ChangeKind
from runner.approval import Assessment
from runner.frozen import FrozenPlan, FrozenTarget, digest_of
from runner.review import KIND_LABEL, View, clean, md

FORMATS = ("text", "json", "markdown")
TEXT_LIMIT = 100  # targets shown in text
MARKDOWN_LIMIT = 40  # rows shown per action in markdown (a GitHub comment holds 65,536 chars)
OPEN_LIMIT = 20  # markdown: a plan of at most this many targets shows its details open

ALERTS = ("EMULATED TENANT", "(expired)", "DOES NOT MATCH")  # in bold red on a terminal
KIND_STYLE = {
    ChangeKind.CHANGE: "yellow",
    ChangeKind.NOOP: "green",
    ChangeKind.MANUAL: "cyan",
    ChangeKind.REFUSED: "bold red",
    ChangeKind.NOT_APPLICABLE: "magenta",
}


def render(
    plan: FrozenPlan,
    fmt: str,
    view: View | None = None,
    *,
    terminal: bool = False,
    color: bool = False,
    width: int = 100,
) -> str:
    """`plan` as `text`, `json` or `markdown`, without a final newline.

    Text is a rich table of `width` columns on a `terminal` (coloured when `color`), plain
    aligned lines otherwise.
    """
    view = view or View()
    if fmt == "json":
        return to_json(plan, view)
    if fmt == "markdown":
        return markdown(plan, view)
    if fmt != "text":
        msg = f"unknown format {fmt!r}; one of {', '.join(FORMATS)}"
        raise ValueError(msg)
    return table(plan, view, color=color, width=width) if terminal else text(plan, view)


class Output(Protocol):
    """Where `show` prints: the CLI's `Console`."""

    color: bool

    @property
    def is_terminal(self) -> bool:
        """True on an interactive terminal."""
        ...

    def out(self, text: str = "") -> None:
        """Print a line of the result."""
        ...


def show(
    console: Output,
    plan: FrozenPlan,
    *,
    fmt: str,
    approvals: Sequence[Assessment] | None = None,
    now: dt.datetime | None = None,
    path: str | None = None,
) -> None:
    """Print `plan` on `console` in `fmt` (text: a table on a terminal, plain lines if not)."""
    view = View(approvals=approvals, now=now, path=path)
    width = shutil.get_terminal_size().columns
    console.out(
        render(plan, fmt, view, terminal=console.is_terminal, color=console.color, width=width)
    )


# --- json ----------------------------------------------------------------------------------


def document(plan: FrozenPlan, view: View | None = None) -> dict[str, Any]:
    """The JSON document: content, digest, whether it matches, and approvals if given."""
    approvals = (view or View()).approvals
    data: dict[str, Any] = {
        "content": plan.content,
        "digest": plan.digest,
        "digest_matches": digest_of(plan.content) == plan.digest,
    }
    if approvals is not None:
        data["approvals"] = [
            {**a.approval.as_json(), "counts": a.counts, "reason": a.reason, "verified": a.verified}
            for a in approvals
        ]
    return data


def to_json(plan: FrozenPlan, view: View | None = None) -> str:
    """`document` as indented JSON with sorted keys."""
    return json.dumps(document(plan, view), indent=2, sort_keys=True)


# --- text ----------------------------------------------------------------------------------


def text(plan: FrozenPlan, view: View | None = None) -> str:
    """Plain aligned lines: header, one block per target, unresolved, warnings, summary."""
    view = view or View()
    lines = _text_header(plan, view)
    shown, rest = review.shown(plan, view.limit or TEXT_LIMIT)
    changes = [c for t in shown for c in t.changes]
    action_width = max((len(c.action) for c in changes), default=0)
    kind_width = max((len(KIND_LABEL[c.kind]) for c in changes), default=0)
    for target in shown:
        lines.append("")
        lines.append("  ".join(_target_cells(target)))
        for change in target.changes:
            kind = KIND_LABEL[change.kind]
            lines.append(
                f"  {change.action:<{action_width}}  {kind:<{kind_width}}  {clean(change.summary)}"
            )
            lines += [f"    warning: {clean(w)}" for w in change.warnings]
    if rest:
        lines += ["", review.more(rest, "targets", view.name(plan))]
    return "\n".join(lines + _text_tail(plan, view))


def _text_header(plan: FrozenPlan, view: View) -> list[str]:
    rows = review.header(plan, now=view.now)
    if view.approvals is not None:
        rows.append(("approvals", review.approvals_line(plan, view.approvals)))
    lines = [f"{label:<10} {value}" for label, value in rows]
    for assessment in view.approvals or ():
        status, description = review.approval_line(assessment)
        lines.append(f"  {status:<11}  {description}")
    return lines


def _target_cells(target: FrozenTarget) -> list[str]:
    cells = [clean(target.upn), clean(target.display_name or "-")]
    cells += [f"[{flag}]" for flag in review.flags(target)]
    if target.privileged_roles:
        cells.append("roles: " + ", ".join(clean(r) for r in target.privileged_roles))
    if target.refused:
        cells.append(f"REFUSED: {clean(target.refused)}")
    if target.ticket:
        cells.append(f"ticket: {clean(target.ticket)}")
    if target.note:
        cells.append(f"note: {clean(target.note)}")
    return cells


def _text_tail(plan: FrozenPlan, view: View) -> list[str]:
    """Unresolved targets, warnings and the summary counts."""
    lines: list[str] = []
    limit = view.limit or TEXT_LIMIT
    for title, items, describe in (
        ("unresolved", review.unresolved_items(plan), review.unresolved),
        ("warnings", plan.content.get("warnings") or [], clean),
    ):
        if items:
            lines += ["", f"{title} ({len(items):,}):"]
            lines += [f"  {describe(item)}" for item in items[:limit]]
            if len(items) > limit:
                lines.append("  " + review.more(len(items) - limit, title, view.name(plan)))
    targets, counts = review.summary(plan.content)
    return [*lines, "", f"summary    {targets}", f"           {counts}"]


def table(plan: FrozenPlan, view: View | None = None, *, color: bool, width: int) -> str:
    """The text rendering for a terminal: the same header and lists, targets in a table."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
    )
    view = view or View()
    for line in _text_header(plan, view):
        label, value = (line[:10], line[10:]) if not line.startswith(" ") else ("", line)
        line_text = Text.assemble((label, "bold"), value)
        line_text.highlight_words(ALERTS, "bold red")
        console.print(line_text, soft_wrap=True)
    grid = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    grid.add_column("Target", overflow="fold", ratio=2)
    grid.add_column("Action", no_wrap=True)
    grid.add_column("Kind", no_wrap=True)
    grid.add_column("What will happen", overflow="fold", ratio=3)
    shown, rest = review.shown(plan, view.limit or TEXT_LIMIT)
    for target in shown:
        who = Text.assemble((clean(target.upn), "bold"), "\n", clean(target.display_name or "-"))
        who.append("".join(f" [{flag}]" for flag in review.flags(target)))
        if target.privileged_roles:
            who.append("\nroles: " + ", ".join(clean(r) for r in target.privileged_roles))
        if target.refused:
            who.append(f"\nREFUSED: {clean(target.refused)}", style="bold red")
        for index, change in enumerate(target.changes):
            what = Text(clean(change.summary))
            for warning in change.warnings:
                what.append(f"\nwarning: {clean(warning)}", style="yellow")
            grid.add_row(
                who if index == 0 else Text(""),
                Text(change.action),
                Text(KIND_LABEL[change.kind], style=KIND_STYLE[change.kind]),
                what,
                end_section=index == len(target.changes) - 1,
            )
    console.print(grid)
    lines = [review.more(rest, "targets", view.name(plan))] if rest else []
    for line in lines + _text_tail(plan, view):
        console.print(Text(line), soft_wrap=True)
    return buffer.getvalue().rstrip("\n")


# --- markdown ------------------------------------------------------------------------------


def markdown(plan: FrozenPlan, view: View | None = None) -> str:
    """A pull-request comment: header, summary, one `<details>` per action, how to apply."""
    view = view or View()
    content, name, approvals = plan.content, view.name(plan), view.approvals
    limit = view.limit or MARKDOWN_LIMIT
    out = [f"## entra-bulk plan {md(content['plan'].get('name'))}", "", "| | |", "|---|---|"]
    for label, value in review.header(plan, now=view.now)[1:]:  # the title names the plan
        cell = review.code(value) if label == "digest" else md(value)
        out.append(f"| {label} | {cell.replace('EMULATED TENANT', '**EMULATED TENANT**')} |")
    if approvals is not None:
        out.append(f"| approvals | {review.approvals_line(plan, approvals)} |")
    targets, _ = review.summary(content)
    out += ["", "### Summary", "", targets + ".", ""]
    out += _markdown_counts(content)
    out += _markdown_details(plan, name=name, limit=limit)
    if approvals:
        out += ["", "### Approvals", "", "| status | approval |", "|---|---|"]
        out += [f"| {s} | {md(d)} |" for s, d in map(review.approval_line, approvals)]
    for title, items, describe in (
        ("Unresolved targets", review.unresolved_items(plan), review.unresolved),
        ("Warnings", content.get("warnings") or [], clean),
    ):
        if items:
            out += ["", f"### {title}", ""]
            out += [f"- {md(describe(item))}" for item in items[:limit]]
            if len(items) > limit:
                out.append(f"- {md(review.more(len(items) - limit, title.lower(), name))}")
    command = f"entra-bulk apply {shlex.quote(name)} --expect-digest {plan.digest}"
    fence = "````" if "```" in command else "```"
    out += ["", "### Apply", "", f"{fence}sh", command, fence]
    return "\n".join(out)


def _markdown_counts(content: Mapping[str, Any]) -> list[str]:
    head = "| action | " + " | ".join(KIND_LABEL.values()) + " |"
    rows = [head, "|---|" + "---:|" * len(KIND_LABEL)]
    for action, counts in review.by_action(content):
        cells = " | ".join(f"{counts.get(str(k), 0):,}" for k in KIND_LABEL)
        rows.append(f"| {review.code(action)} | {cells} |")
    totals = (content.get("summary") or {}).get("actions") or {}
    cells = " | ".join(f"**{totals.get(str(k), 0):,}**" for k in KIND_LABEL)
    rows.append(f"| **total** | {cells} |")
    return rows


def _markdown_details(plan: FrozenPlan, *, name: str, limit: int) -> list[str]:
    raw: list[Mapping[str, Any]] = plan.content.get("targets") or []
    opened = " open" if len(raw) <= OPEN_LIMIT else ""
    out: list[str] = ["", "### Targets"]
    for action, counts in review.by_action(plan.content):
        said = ", ".join(
            f"{counts.get(str(k), 0):,} {label}"
            for k, label in KIND_LABEL.items()
            if counts.get(str(k), 0)
        )
        title = f"<code>{html.escape(clean(action))}</code>: {said}"
        out += ["", f"<details{opened}>", f"<summary>{title}</summary>"]
        out += ["", "| user | display name | roles | kind | what will happen |"]
        out += ["|---|---|---|---|---|"]
        rows = _rows(raw, action, limit)
        total = sum(counts.values())
        out += rows
        if total > len(rows):
            out += ["", md(review.more(total - len(rows), f"{action} rows", name))]
        out += ["", "</details>"]
    return out


def _rows(raw: Iterable[Mapping[str, Any]], action: str, limit: int) -> list[str]:
    """The markdown rows of the first `limit` targets that have `action`."""
    rows: list[str] = []
    for item in raw:
        for change in item.get("actions") or ():
            if change.get("action") != action:
                continue
            target = FrozenTarget.from_json(item)
            roles = ", ".join(target.privileged_roles)
            if target.refused:
                roles += f" (REFUSED: {target.refused})" if roles else f"REFUSED: {target.refused}"
            upn = md(target.upn) + "".join(f" \\[{md(f)}\\]" for f in review.flags(target))
            what = md(change.get("summary"))
            what += "".join(f"<br>warning: {md(w)}" for w in change.get("warnings") or ())
            kind = KIND_LABEL.get(ChangeKind(str(change.get("kind"))), "?")
            rows.append(f"| {upn} | {md(target.display_name)} | {md(roles)} | {kind} | {what} |")
            if len(rows) >= limit:
                return rows
    return rows
