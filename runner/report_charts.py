"""The charts of `report.html`, drawn as inline SVG (no script, no network, prints well).

- outcomes per action: one stacked bar per action, a segment per status;
- throughput over time: items sent and finished per time bucket, the 429s met in each
  bucket, and the share of each bucket spent paused (Retry-After).

Pure: data in, SVG text out; every text is escaped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from html import escape

from runner.report_data import STATUS_ORDER
from runner.report_timeline import Timeline

COLORS: Mapping[str, str] = {
    "verified": "#1a7f37",
    "succeeded": "#4ac26b",
    "confirmed": "#0969da",
    "noop": "#8c959f",
    "manual": "#bf8700",
    "failed": "#cf222e",
    "unknown": "#8250df",
    "drifted": "#e16f24",
    "refused": "#57606a",
    "skipped": "#d0d7de",
    "planned": "#afb8c1",
    "intent": "#bf3989",
}
WIDTH = 760
THROUGHPUT = "#0969da"
THROTTLED = "#cf222e"
PAUSED = "#d4a72c"


def _text(x: float, y: float, text: str, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(text)}</text>'


def outcomes(by_action: Mapping[str, Mapping[str, int]]) -> str:
    """A stacked horizontal bar per action, segments in report order, with a legend."""
    actions = list(by_action)
    if not actions:
        return '<p class="empty">The run has no items.</p>'
    label_w, bar_w, row_h, top = 230, 440, 30, 10
    longest = max(sum(by_action[a].values()) for a in actions) or 1
    present = [s for s in map(str, STATUS_ORDER) if any(by_action[a].get(s) for a in actions)]
    height = top + row_h * len(actions) + 40
    parts = [
        f'<svg class="chart" data-chart="outcomes" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" aria-label="Outcomes per action">',
        "<desc>One bar per action; each coloured segment is the number of items in a status."
        "</desc>",
    ]
    for row, action in enumerate(actions):
        y = top + row * row_h
        total = sum(by_action[action].values())
        parts.append(_text(label_w - 8, y + 19, action, text_anchor="end", class_="label"))
        x = float(label_w)
        for status in present:
            count = by_action[action].get(status, 0)
            if not count:
                continue
            width = bar_w * count / longest
            parts.append(
                f'<rect class="seg" data-status="{status}" x="{x:.1f}" y="{y + 4}" '
                f'width="{max(width, 1.5):.1f}" height="{row_h - 8}" fill="{COLORS[status]}">'
                f"<title>{escape(action)}: {count} {status}</title></rect>"
            )
            if width >= 22:
                parts.append(
                    _text(x + width / 2, y + 19, str(count), text_anchor="middle", class_="in")
                )
            x += width
        parts.append(_text(x + 6, y + 19, str(total), class_="total"))
    y = top + row_h * len(actions) + 16
    x = float(label_w)
    for status in present:
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="12" height="12" fill="{COLORS[status]}"></rect>'
        )
        parts.append(_text(x + 16, y + 11, status, class_="legend"))
        x += 24 + 7.5 * len(status)
    parts.append("</svg>")
    return "".join(parts)


def _clock(start: dt.datetime, offset_s: float) -> str:
    return (start + dt.timedelta(seconds=offset_s)).strftime("%H:%M:%S")


def throughput(line: Timeline) -> str:
    """Bars of items finished per bucket, the 429s per bucket as a red line, pauses shaded."""
    if line.start is None or not (any(line.finished) or any(line.throttled)):
        return '<p class="empty">Nothing was sent to Graph in this run.</p>'
    left, right, top, plot_h = 56, 56, 14, 160
    plot_w = WIDTH - left - right
    height = top + plot_h + 52
    count = len(line.finished)
    step = plot_w / count
    most = max(line.finished) or 1
    most_429 = max(line.throttled) or 1
    base = top + plot_h
    size = line.bucket_s
    parts = [
        f'<svg class="chart" data-chart="timeline" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" '
        'aria-label="Items finished, 429 responses and pauses over time">',
        f"<desc>Items sent to Graph and finished per {size} s (blue bars), 429 responses per "
        f"{size} s (red line) and the share of each {size} s spent paused (shaded).</desc>",
    ]
    for index, paused in enumerate(line.paused_s):
        if paused > 0:
            share = min(1.0, paused / size)
            parts.append(
                f'<rect class="paused" x="{left + index * step:.1f}" y="{top}" '
                f'width="{step:.1f}" height="{plot_h}" fill="{PAUSED}" '
                f'fill-opacity="{0.15 + 0.35 * share:.2f}"><title>paused {paused:.1f} s '
                f"from {_clock(line.start, index * size)}</title></rect>"
            )
    for index, done in enumerate(line.finished):
        if done:
            bar_h = plot_h * done / most
            parts.append(
                f'<rect class="bar" x="{left + index * step + step * 0.1:.1f}" '
                f'y="{base - bar_h:.1f}" width="{step * 0.8:.1f}" height="{bar_h:.1f}" '
                f'fill="{THROUGHPUT}"><title>{done} items finished from '
                f"{_clock(line.start, index * size)} ({done / size:.1f}/s)</title></rect>"
            )
    if any(line.throttled):
        points = " ".join(
            f"{left + (i + 0.5) * step:.1f},{base - plot_h * hits / most_429:.1f}"
            for i, hits in enumerate(line.throttled)
        )
        parts.append(
            f'<polyline class="throttle-line" points="{points}" fill="none" '
            f'stroke="{THROTTLED}" stroke-width="2"></polyline>'
        )
        for i, hits in enumerate(line.throttled):
            if hits:
                parts.append(
                    f'<circle class="throttle" cx="{left + (i + 0.5) * step:.1f}" '
                    f'cy="{base - plot_h * hits / most_429:.1f}" r="3.5" fill="{THROTTLED}">'
                    f"<title>{hits} × 429 from {_clock(line.start, i * size)}</title></circle>"
                )
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#57606a"></line>'
    )
    parts.append(_text(left - 6, top + 10, str(most), text_anchor="end", class_="axis"))
    parts.append(_text(left - 6, base, "0", text_anchor="end", class_="axis"))
    if any(line.throttled):
        parts.append(_text(left + plot_w + 6, top + 10, f"{most_429} × 429", class_="axis red"))
    span = count * size
    for fraction in (0.0, 0.5, 1.0):
        x = left + plot_w * fraction
        anchor = {0.0: "start", 0.5: "middle", 1.0: "end"}[fraction]
        label = _clock(line.start, span * fraction)
        parts.append(_text(x, base + 16, label, text_anchor=anchor, class_="axis"))
    legend_y = base + 38
    parts.append(
        f'<rect x="{left}" y="{legend_y - 10}" width="12" height="12" fill="{THROUGHPUT}"></rect>'
    )
    parts.append(_text(left + 16, legend_y, f"items finished per {size} s (UTC)", class_="legend"))
    parts.append(
        f'<rect x="{left + 250}" y="{legend_y - 6}" width="14" height="3" '
        f'fill="{THROTTLED}"></rect>'
    )
    parts.append(_text(left + 268, legend_y, "429 responses", class_="legend"))
    parts.append(
        f'<rect x="{left + 390}" y="{legend_y - 10}" width="12" height="12" fill="{PAUSED}" '
        'fill-opacity="0.4"></rect>'
    )
    parts.append(_text(left + 406, legend_y, "paused (Retry-After)", class_="legend"))
    parts.append("</svg>")
    return "".join(parts)
