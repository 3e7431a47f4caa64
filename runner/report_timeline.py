"""A run's timeline as figures and as a series: 429s, pauses, rate changes, halts and runs
from the journal's events; items finished, 429s and paused seconds per time bucket for the
throughput chart; when the run ended. Pure: events and times in, records out."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runner.report_data import RUN_COMMANDS, lock_command
from runner.runstate import Event, stamp

_LOCK_EVENTS = frozenset({"lock_acquired", "lock_takeover", "lock_released", "lock_forced"})
_BUCKETS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """The pacing and run figures of the journal's timeline."""

    throttled: int = 0
    paused_s: float = 0.0
    slow_downs: int = 0
    speed_ups: int = 0
    throttle_warnings: int = 0
    peak_throttle_percentage: float | None = None
    halts: tuple[str, ...] = ()
    canary_passed: bool = False
    drift_abort: str | None = None
    runs: int = 0  # apply and apply --resume processes that took the lock
    lock_takeovers: int = 0
    forced_unlocks: int = 0
    ended: dt.datetime | None = None  # see `ended`

    def as_json(self) -> dict[str, Any]:
        """For report.json."""
        return {
            "throttled_429": self.throttled,
            "paused_s": round(self.paused_s, 3),
            "slow_downs": self.slow_downs,
            "speed_ups": self.speed_ups,
            "throttle_warnings": self.throttle_warnings,
            "peak_throttle_percentage": self.peak_throttle_percentage,
            "halts": list(self.halts),
            "canary_passed": self.canary_passed,
            "drift_abort": self.drift_abort,
            "runs": self.runs,
            "lock_takeovers": self.lock_takeovers,
            "forced_unlocks": self.forced_unlocks,
        }


def pause_spans(events: Sequence[Event]) -> list[tuple[dt.datetime, dt.datetime]]:
    """The time every sender was paused, as disjoint spans. A pause event asks for `seconds`
    from its time, and many overlap (each 429 of a batch asks again): summing them would count
    the same wall time over and over. Their union is what the pacer counts as paused."""
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    asked = sorted(
        (e.time, e.time + dt.timedelta(seconds=max(0.0, float(e.detail.get("seconds") or 0.0))))
        for e in events
        if e.kind == "pause"
    )
    for begin, end in asked:
        if spans and begin <= spans[-1][1]:
            if end > spans[-1][1]:
                spans[-1] = (spans[-1][0], end)
        else:
            spans.append((begin, end))
    return spans


def figures(events: Sequence[Event]) -> Figures:
    """Counts and peaks of the timeline's events."""
    seconds = [(end - begin).total_seconds() for begin, end in pause_spans(events)]
    levels = []
    for event in events:
        if event.kind == "warning":
            try:
                levels.append(float(event.detail.get("detail") or ""))
            except ValueError:
                continue
    runs = [e for e in events if e.kind in {"lock_acquired", "lock_takeover"}]
    abort = [e for e in events if e.kind == "drift_abort"]
    return Figures(
        throttled=sum(1 for e in events if e.kind == "throttled"),
        paused_s=sum(seconds),
        slow_downs=sum(1 for e in events if e.kind == "slow_down"),
        speed_ups=sum(1 for e in events if e.kind == "speed_up"),
        throttle_warnings=len(levels),
        peak_throttle_percentage=max(levels) if levels else None,
        halts=tuple(str(e.detail.get("reason", "")) for e in events if e.kind == "halt"),
        canary_passed=any(e.kind == "canary_passed" for e in events),
        drift_abort=None
        if not abort
        else f"{abort[-1].detail.get('upn', '')}: {abort[-1].detail.get('reason', '')}",
        runs=sum(1 for e in runs if lock_command(e).startswith(RUN_COMMANDS)),
        lock_takeovers=sum(1 for e in runs if e.kind == "lock_takeover"),
        forced_unlocks=sum(1 for e in events if e.kind == "lock_forced"),
    )


Span = tuple[dt.datetime, dt.datetime | None]


def run_spans(events: Sequence[Event]) -> list[Span]:
    """When each apply or apply --resume process held the run: from the lock event that
    started it to the next lock event (its release, a forced unlock, a takeover), open-ended
    while it still holds the lock. Other commands' spans (confirm) are left out."""
    spans: list[Span] = []
    start: dt.datetime | None = None
    for event in events:
        if event.kind not in _LOCK_EVENTS:
            continue
        if start is not None:
            spans.append((start, event.time))
            start = None
        if event.kind in {"lock_acquired", "lock_takeover"} and lock_command(event).startswith(
            RUN_COMMANDS
        ):
            start = event.time
    if start is not None:
        spans.append((start, None))
    return spans


def ended(
    events: Sequence[Event],
    last_change: Callable[[dt.datetime, dt.datetime | None], dt.datetime | None],
) -> dt.datetime | None:
    """When the run's apply processes last did something: the latest of their starts, their
    timeline events and the item changes within their spans (`last_change(start, end)`, from
    the journal). Not the lock's release: `apply` writes its reports before it lets go, and
    `entra-bulk report` must rebuild them the same; nor anything `confirm` did later."""
    moments: list[dt.datetime] = []
    for start, end in run_spans(events):
        moments.append(start)
        moments.extend(
            e.time
            for e in events
            if e.kind not in _LOCK_EVENTS and start <= e.time and (end is None or e.time < end)
        )
        change = last_change(start, end)
        if change is not None:
            moments.append(change)
    return max(moments, default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """Items sent and finished, 429s and paused seconds per time bucket."""

    start: dt.datetime | None
    bucket_s: int
    finished: tuple[int, ...] = ()
    throttled: tuple[int, ...] = ()
    paused_s: tuple[float, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """For report.json: one `[offset_s, finished, throttled_429, paused_s]` per bucket."""
        return {
            "start": None if self.start is None else stamp(self.start),
            "bucket_s": self.bucket_s,
            "series": [
                [i * self.bucket_s, f, t, round(p, 3)]
                for i, (f, t, p) in enumerate(
                    zip(self.finished, self.throttled, self.paused_s, strict=True)
                )
            ],
        }


def bucket_size(duration_s: float, *, max_buckets: int = 60) -> int:
    """The smallest round bucket (1 s, 2 s, 5 s, ... 1 day) giving at most `max_buckets`."""
    for size in _BUCKETS_S:
        if math.ceil(duration_s / size) <= max_buckets:
            return size
    return math.ceil(duration_s / max_buckets)


def timeline(
    start: dt.datetime | None,
    finished: Sequence[dt.datetime],
    events: Sequence[Event],
    *,
    max_buckets: int = 60,
) -> Timeline:
    """Bucket the finish times of sent items, the 429s and the pauses from `start`."""
    throttles = [e.time for e in events if e.kind == "throttled"]
    pauses = [(begin, (end - begin).total_seconds()) for begin, end in pause_spans(events)]
    moments = [*finished, *throttles, *(t + dt.timedelta(seconds=s) for t, s in pauses)]
    if not moments:
        return Timeline(start=start, bucket_s=1)
    origin = min(start or min(moments), min(moments))
    span = max((m - origin).total_seconds() for m in moments)
    size = bucket_size(max(span, 1.0), max_buckets=max_buckets)
    count = max(1, math.floor(span / size) + 1)
    done, hits, paused = [0] * count, [0] * count, [0.0] * count

    def index(moment: dt.datetime) -> int:
        return min(count - 1, int((moment - origin).total_seconds() // size))

    for moment in finished:
        done[index(moment)] += 1
    for moment in throttles:
        hits[index(moment)] += 1
    for moment, seconds in pauses:
        begin = (moment - origin).total_seconds()
        end = begin + seconds
        for bucket in range(int(begin // size), min(count - 1, int(end // size)) + 1):
            low, high = bucket * size, (bucket + 1) * size
            paused[bucket] += max(0.0, min(end, high) - max(begin, low))
    return Timeline(
        start=origin,
        bucket_s=size,
        finished=tuple(done),
        throttled=tuple(hits),
        paused_s=tuple(paused),
    )
