"""`report.html`: one self-contained page that opens offline.

Header (plan, ticket, tenant, digest, approvals, times), the run's outcome and next commands,
summary counts, two inline SVG charts (`report_charts`), what needs a person, and the item
table: sortable, filterable and paged by a small inline script (`report_assets/report.js`)
over the rows embedded as JSON. A Content-Security-Policy forbids every fetch, so nothing
can leave the page; every text is escaped, and the script sets cells as text only.

Pure: data in, text chunks out (so large runs stream to disk).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from runner import report_charts
from runner.report_data import RUNNING_STATES, STATUS_ORDER, Outcome, Tally
from runner.report_timeline import Figures, Timeline
from runner.runstate import Item, RunHeader, stamp

ASSETS = Path(__file__).resolve().parent / "report_assets"
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("item", "Item"),
    ("upn", "UPN"),
    ("display_name", "Name"),
    ("action", "Action"),
    ("status", "Status"),
    ("verified", "Verified"),
    ("http_status", "HTTP"),
    ("error_code", "Error code"),
    ("detail", "Detail"),
    ("attempts", "Attempts"),
    ("request_id", "Request id"),
    ("finished", "Finished (UTC)"),
    ("note", "Note"),
    ("target_ticket", "Target ticket"),
    ("object_id", "Object id"),
)
STATIC_ROWS = 200  # rows written into the page for readers without JavaScript
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """Everything the page shows beside the rows."""

    header: RunHeader
    run_dir: str
    tally: Tally
    figures: Figures
    timeline: Timeline
    outcome: Outcome
    files: Mapping[str, str]  # follow-up files present: name → what it is for
    secrets_file: str | None
    generated: dt.datetime


def table_row(row: Mapping[str, Any]) -> list[Any]:
    """A report row as the page's table shows it (its `detail` says what happened)."""
    detail = row.get("error_message") or row.get("reason") or row.get("planned")
    values = {**row, "detail": detail}
    return [values.get(name) for name, _ in TABLE_COLUMNS]


def _script_json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _e(value: Any) -> str:
    return "" if value is None else escape(str(value))


def _time(moment: dt.datetime | None) -> str:
    return "—" if moment is None else stamp(moment)[:19].replace("T", " ") + " UTC"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _header(page: Page) -> list[str]:
    h = page.header
    content = h.content
    plan = content.get("plan", {})
    tenant = content.get("tenant", {})
    author = h.author
    emulated = ' <span class="badge">EMULATED TENANT</span>' if h.emulated else ""
    approvals = (
        "".join(
            f"<li>{_e(a.get('approver'))} at {_e(a.get('time'))}"
            + (f" — “{_e(a.get('comment'))}”" if a.get("comment") else "")
            + (" (signed)" if a.get("signature") else "")
            + "</li>"
            for a in h.approvals
        )
        or "<li>none required</li>"
    )
    started = h.created
    ended = page.figures.ended
    took = "" if ended is None else f" ({_duration((ended - started).total_seconds())})"
    options = ", ".join(f"{k} {v}" for k, v in sorted(h.options.items()) if k != "applied_by")
    description = plan.get("description")
    rows = [
        ("Plan", _e(h.plan_name) + (f" — {_e(description)}" if description else "")),
        ("Ticket", _e(h.ticket) or "—"),
        (
            "Tenant",
            f'<span class="mono">{_e(h.tenant_id)}</span> '
            f"({_e(tenant.get('cloud', 'global'))}){emulated}",
        ),
        ("Digest", f'<span class="mono">{_e(h.digest)}</span>'),
        ("Author", _author(author)),
        ("Approvals", f'<ul class="plain">{approvals}</ul>'),
        ("Plan made", f"{_e(content.get('created'))}, expires {_e(content.get('expires'))}"),
        ("Run", f"started {_time(started)}, ended {_time(ended)}{took}"),
        ("Applied by", _e(h.options.get("applied_by")) or "—"),
        ("Settings", _e(options) or "—"),
        ("Run folder", f"<code>{_e(page.run_dir)}</code>"),
    ]
    out = [f"<h1>entra-bulk report: {_e(h.plan_name)}{emulated}</h1>", '<dl class="header">']
    out += [f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows]
    out.append("</dl>")
    return out


def _author(author: Mapping[str, Any]) -> str:
    """`app 1111…, local user alice` (or whatever the plan recorded)."""
    if "kind" in author and "name" in author:
        local = f", local user {_e(author['local_user'])}" if author.get("local_user") else ""
        return f"{_e(author['kind'])} {_e(author['name'])}{local}"
    return _e(", ".join(f"{key} {value}" for key, value in author.items())) or "—"


def _outcome(outcome: Outcome) -> list[str]:
    running = outcome.code is None and outcome.state in RUNNING_STATES
    code_key = -1 if outcome.code is None else outcome.code
    kind = "running" if running else {0: "ok", 1: "warn"}.get(code_key, "bad")
    code = outcome.code_text
    steps = "\n".join(outcome.next_steps)
    block = f"<pre><code>{_e(steps)}</code></pre>" if steps else ""
    return [
        f'<section class="outcome {kind}" id="outcome"><p><b>{_e(outcome.state)}</b> '
        f"({code}): {_e(outcome.meaning)}</p>{block}</section>"
    ]


def _tiles(page: Page) -> list[str]:
    counts = page.tally.counts
    tiles: list[tuple[str, int | str, str | None]] = [("total items", page.tally.total, None)]
    tiles += [
        (str(s), counts[str(s)], report_charts.COLORS[str(s)])
        for s in STATUS_ORDER
        if counts[str(s)]
    ]
    if page.tally.unverified:
        tiles.append(("not verified", page.tally.unverified, None))
    f = page.figures
    tiles.append(("429s met", f.throttled, None))
    tiles.append(("seconds paused", f"{f.paused_s:.1f}", None))
    if f.peak_throttle_percentage is not None:
        # Graph's x-ms-throttle-limit-percentage is a fraction of the limit (0.8 = 80 %).
        tiles.append(("peak of Graph's limit", f"{100 * f.peak_throttle_percentage:.0f} %", None))
    if page.tally.max_attempts:
        tiles.append(("most attempts", page.tally.max_attempts, None))
    out = ['<h2 id="summary">Summary</h2>', '<div class="tiles">']
    for label, value, color in tiles:
        dot = f'<i style="background:{color}"></i>' if color else ""
        out.append(
            f'<div class="tile" data-tile="{_e(label)}"><b>{_e(value)}</b>'
            f"<span>{dot}{_e(label)}</span></div>"
        )
    out.append("</div>")
    return out


def _refs(items: Sequence[Item], shown: int = 20) -> str:
    """`5, 9, 13`: the first item references (`, ...` when there are more)."""
    return ", ".join(i.ref for i in items[:shown]) + (", ..." if len(items) > shown else "")


def _attention(page: Page) -> list[str]:
    run = shlex.quote(page.run_dir)
    t = page.tally
    items = []
    if t.retry:
        items.append(
            f"<li><b>{len(t.retry)} failed or drifted</b>: listed in <code>failed.csv</code>; "
            f"<code>failed.yaml</code> plans them again with the original settings: "
            f"<code>entra-bulk plan {_e(shlex.quote(page.run_dir + '/failed.yaml'))}</code></li>"
        )
    if t.unsettled:
        items.append(
            f"<li><b>{len(t.unsettled)} with an unknown outcome</b> (<code>unknown.csv</code>): "
            "they may or may not have happened; resuming reads them back and never re-sends "
            f"blindly: <code>entra-bulk apply --resume {_e(run)}</code></li>"
        )
    if t.not_sent:
        items.append(
            f"<li><b>{len(t.not_sent)} not yet sent</b>: Graph turned them away without "
            "executing them (throttled or unavailable); resuming sends them: "
            f"<code>entra-bulk apply --resume {_e(run)}</code></li>"
        )
    open_manual = [i for i in t.manual if str(i.status) == "manual"]
    if open_manual:
        items.append(
            f"<li><b>{len(open_manual)} of {len(t.manual)} manual steps open</b>: Graph cannot do "
            "them; <code>manual-steps.md</code> has the portal steps, then "
            f"<code>entra-bulk confirm {_e(run)} ITEM...</code></li>"
        )
    elif t.manual:
        items.append(
            f"<li><b>All {len(t.manual)} manual steps confirmed</b> by an operator "
            "(<code>manual-steps.md</code> says who and when).</li>"
        )
    if t.unverified:
        items.append(
            f"<li><b>{t.unverified} not verified</b>: Graph accepted them but the read-back did "
            "not show the change in time (filter the table on “needs attention”).</li>"
        )
    if page.secrets_file:
        items.append(
            f"<li><b>{t.secrets} of {t.secret_rows} secrets in effect</b> (temporary passwords, "
            f"access passes) are in <code>{_e(page.secrets_file)}</code> (mode 0600) and nowhere "
            "else: hand over only the rows whose <code>secret_state</code> is “in effect”; this "
            "report holds only their references.</li>"
        )
        if t.secrets_never_set:
            refs = _refs(t.secrets_never_set)
            items.append(
                f"<li><b>{len(t.secrets_never_set)} secrets never set</b> (items {_e(refs)}): "
                "secrets.csv has them, but their change was not applied: do not hand them "
                "over.</li>"
            )
        if t.secrets_unsettled:
            refs = _refs(t.secrets_unsettled)
            items.append(
                f"<li><b>{len(t.secrets_unsettled)} secrets unsettled</b> (items {_e(refs)}): "
                "not known to be set; hand them over only once a resume shows them in "
                "effect.</li>"
            )
        if t.secrets_uncertain:
            refs = _refs(t.secrets_uncertain)
            items.append(
                f"<li><b>{len(t.secrets_uncertain)} secrets may be in effect</b> (items "
                f"{_e(refs)}): Graph may have made the change but it could not be read back; "
                "check the user in the portal before handing one over or resetting again.</li>"
            )
    if not items:
        return []
    return ['<h2 id="attention">Needs attention</h2>', f'<ul class="todo">{"".join(items)}</ul>']


def _table(page: Page, first: Sequence[Sequence[Any]]) -> list[str]:
    present = [str(s) for s in STATUS_ORDER if page.tally.counts[str(s)]]
    statuses = "".join(f'<option value="{s}">{s}</option>' for s in present)
    actions = "".join(f'<option value="{_e(a)}">{_e(a)}</option>' for a in page.tally.by_action)
    heads = "".join(
        f'<th data-column="{name}" aria-sort="none"><button type="button">{label}</button></th>'
        for name, label in TABLE_COLUMNS
    )
    out = [
        '<h2 id="items-title">Items</h2>',
        '<div id="controls" hidden>',
        '<input type="search" id="filter-text" placeholder="Filter: UPN, error, request id…" '
        'aria-label="Filter the rows">',
        '<select id="filter-status" aria-label="Status"><option value="">every status</option>'
        f'<option value="attention">needs attention</option>{statuses}</select>',
        '<select id="filter-action" aria-label="Action"><option value="">every action</option>'
        f"{actions}</select>",
        '<button type="button" id="filter-reset">Reset</button>',
        '<span class="pager"><button type="button" id="page-prev">Previous</button> '
        '<button type="button" id="page-next">Next</button></span>',
        '<span id="shown"></span>',
        "</div>",
        f"<noscript><p>Sorting and filtering need JavaScript; the first {STATIC_ROWS} rows are "
        "below, and every row is in report.csv.</p></noscript>",
        f'<div class="table-wrap"><table id="items"><thead><tr>{heads}</tr></thead><tbody>',
    ]
    for values in first:
        cells = "".join(
            f'<td class="c-{name}">{_e(value)}</td>'
            for (name, _), value in zip(TABLE_COLUMNS, values, strict=True)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table></div>")
    return out


def render(page: Page, rows: Callable[[], Iterable[Mapping[str, Any]]]) -> Iterator[str]:
    """The page, in chunks; `rows()` gives the report rows in plan order (read twice: the
    first rows for readers without JavaScript, then every row as JSON, never all in memory)."""
    css = (ASSETS / "report.css").read_text(encoding="utf-8")
    script = (ASSETS / "report.js").read_text(encoding="utf-8")
    yield (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>entra-bulk report: {_e(page.header.plan_name)}</title>"
        f"<style>{css}</style></head><body>\n"
    )
    parts = _header(page) + _outcome(page.outcome) + _tiles(page)
    parts += ['<h2 id="charts">Charts</h2>', "<h3>Outcomes per action</h3>"]
    parts.append(report_charts.outcomes(page.tally.by_action))
    parts.append("<h3>Throughput and throttling over time</h3>")
    parts.append(report_charts.throughput(page.timeline))
    parts += _attention(page)
    yield "\n".join(parts) + "\n"
    static = [table_row(row) for row in itertools.islice(rows(), STATIC_ROWS)]
    yield "\n".join(_table(page, static)) + "\n"
    columns = [name for name, _ in TABLE_COLUMNS]
    yield '<script type="application/json" id="rows">{"columns":' + _script_json(columns)
    yield ',"rows":['
    separator = ""
    source = iter(rows())
    while batch := list(itertools.islice(source, 1000)):
        yield separator + ",".join(_script_json(table_row(row)) for row in batch)
        separator = ","
    yield "]}</script>\n"
    files = "".join(f"<li><code>{_e(n)}</code>: {_e(w)}</li>" for n, w in page.files.items())
    yield (
        '<h2 id="files">Files of this run</h2>'
        f'<ul class="files">{files}</ul>'
        f"<footer>Built from the run's journal (journal.sqlite) by entra-bulk "
        f"{_e(page.header.tool_version)} at {_time(page.generated)}. Rebuild it any time: "
        f"<code>entra-bulk report {_e(shlex.quote(page.run_dir))}</code></footer>\n"
        f"<script>{script}</script>\n</body></html>\n"
    )
