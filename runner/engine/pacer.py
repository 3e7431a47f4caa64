"""The pacer: run at Graph's throttling ceiling without tripping it.

A client-side budget mirrors the published quotas (graph-reference §10): a write bucket of
`writes_per_150s` and a resource-unit bucket of `resource_units_per_10s`, each scaled by
`max_share` (room for the tenant's other apps) and refilled at quota ÷ window × time scale.
On top of the buckets an AIMD factor slows the refill: halved on a 429 (at most once per
second of scaled time, however many items of a batch were throttled), and halved when Graph's
`x-ms-throttle-limit-percentage` says the quota is fuller than our own budget believes (≥ 0.9
while our bucket is less used: someone else shares the quota), or over 1.0; raised by a tenth
after every quiet interval. Any Retry-After (an item's inside a batch included) pauses every
sender until it has passed.

The pacer never sleeps by itself: `wait_time` says how long to wait, and `acquire` sleeps
through the injected clock, so tests run in virtual time.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from runner.config import Limits

WARNING_LEVEL = 0.9
MIN_FACTOR = 0.05
INCREASE_STEP = 0.1
QUIET_INTERVAL_S = 10.0
# A 429 without Retry-After (identity protection's style): exponential backoff from 1 s,
# doubling per throttle in a row, capped at 60 s, with full jitter (AWS's recipe).
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0
SURPRISE_MARGIN = 0.1
_EPSILON = 1e-6
_MIN_SLEEP_S = 0.001


class Clock:
    """Monotonic time and sleep; tests substitute a virtual clock."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait."""
        time.sleep(seconds)


@dataclass(slots=True)
class _Bucket:
    capacity: float
    rate: float  # tokens per second at factor 1
    tokens: float
    last: float

    def refill(self, now: float, factor: float) -> None:
        if now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate * factor)
            self.last = now

    @property
    def usage(self) -> float:
        return 1.0 - self.tokens / self.capacity

    def wait_for(self, amount: float, factor: float) -> float:
        missing = min(amount, self.capacity) - self.tokens
        return 0.0 if missing <= _EPSILON else missing / (self.rate * factor)


@dataclass(frozen=True, slots=True, kw_only=True)
class PacingEvent:
    """Something the timeline of a run records: a 429, a pause, a rate change."""

    kind: str  # "throttled" | "pause" | "slow_down" | "speed_up" | "warning"
    at: float
    seconds: float = 0.0
    factor: float = 1.0
    detail: str = ""


@dataclass(slots=True)
class PacerStats:
    """Counters for the summary and the reports."""

    throttled: int = 0
    paused_s: float = 0.0
    waited_s: float = 0.0
    peak_percentage: float = 0.0
    events: list[PacingEvent] = field(default_factory=list)


class Pacer:
    """Shared by every sender of a run; thread-safe."""

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Clock | None = None,
        on_event: Callable[[PacingEvent], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock or Clock()
        now = self.clock.monotonic()
        share = limits.max_share
        scale = limits.time_scale
        writes = limits.writes_per_150s * share
        units = limits.resource_units_per_10s * share
        self._writes = _Bucket(
            capacity=writes, rate=writes / 150.0 * scale, tokens=writes, last=now
        )
        self._units = _Bucket(capacity=units, rate=units / 10.0 * scale, tokens=units, last=now)
        self._quiet_s = QUIET_INTERVAL_S / scale
        self._scale = scale
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._no_advice = 0
        self._last_no_advice = now
        self._min_gap_s = 1.0 / scale
        self._last_slow = now - self._min_gap_s
        self._lock = threading.Lock()
        self.factor = 1.0
        self._paused_until = now
        self._last_change = now
        self.stats = PacerStats()
        self._on_event = on_event

    @property
    def write_rate(self) -> float:
        """The current ceiling in writes per second (after the AIMD factor)."""
        return self._writes.rate * self.factor

    def _emit(self, event: PacingEvent) -> None:
        self.stats.events.append(event)
        if self._on_event is not None:
            self._on_event(event)

    def wait_time(self, *, writes: int, units: int) -> float:
        """Seconds until a request of this cost may go (0: now); takes nothing."""
        with self._lock:
            return self._wait_locked(writes, units, self.clock.monotonic())

    def _wait_locked(self, writes: int, units: int, now: float) -> float:
        self._maybe_speed_up(now)
        self._writes.refill(now, self.factor)
        self._units.refill(now, self.factor)
        pause = max(0.0, self._paused_until - now)
        return max(
            pause,
            self._writes.wait_for(writes, self.factor) if writes else 0.0,
            self._units.wait_for(units, self.factor),
        )

    def try_acquire(self, *, writes: int, units: int) -> float:
        """Take the cost now and return 0, or return the seconds to wait (nothing taken)."""
        with self._lock:
            now = self.clock.monotonic()
            wait = self._wait_locked(writes, units, now)
            if wait > 0:
                return wait
            self._writes.tokens -= writes
            self._units.tokens -= units
            return 0.0

    def acquire(self, *, writes: int, units: int, stop: Callable[[], bool] | None = None) -> bool:
        """Wait until the cost may be taken, then take it; False if `stop()` became true."""
        while True:
            if stop is not None and stop():
                return False
            wait = self.try_acquire(writes=writes, units=units)
            if wait <= 0:
                return True
            wait = min(max(wait, _MIN_SLEEP_S), 0.5)
            self.stats.waited_s += wait
            self.clock.sleep(wait)

    def _maybe_speed_up(self, now: float) -> None:
        if self.factor < 1.0 and now - self._last_change >= self._quiet_s:
            self.factor = min(1.0, self.factor + INCREASE_STEP)
            self._last_change = now
            self._emit(PacingEvent(kind="speed_up", at=now, factor=self.factor))

    def _slow_down(self, now: float, detail: str) -> None:
        if now - self._last_slow < self._min_gap_s:
            return
        self.factor = max(MIN_FACTOR, self.factor / 2)
        self._last_change = now
        self._last_slow = now
        self._emit(PacingEvent(kind="slow_down", at=now, factor=self.factor, detail=detail))

    def throttled(self, retry_after_s: float | None, *, write: bool, detail: str = "") -> None:
        """A 429 (or 503) was met: pause every sender, halve the rate, empty the bucket."""
        with self._lock:
            now = self.clock.monotonic()
            self.stats.throttled += 1
            if retry_after_s is None:
                seconds = self._backoff_locked(now)
            else:
                seconds = retry_after_s
                self._no_advice = 0
            self._emit(PacingEvent(kind="throttled", at=now, seconds=seconds, detail=detail))
            self._pause_locked(now, seconds)
            # The server's bucket is empty: ours must be too, or we would burst into it again.
            if write:
                self._writes.tokens = min(self._writes.tokens, 0.0)
            else:
                self._units.tokens = min(self._units.tokens, 0.0)
            self._slow_down(now, detail or "429")

    def _backoff_locked(self, now: float) -> float:
        """The next wait for a throttle that gave no advice: full jitter in [0, ceiling]."""
        if now - self._last_no_advice > self._quiet_s:
            self._no_advice = 0  # a quiet interval since the last backoff ended: start over
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**self._no_advice)
        self._no_advice += 1
        wait = self._rng.uniform(0.0, ceiling) / self._scale
        self._last_no_advice = now + wait
        return wait

    def pause(self, seconds: float, *, detail: str = "") -> None:
        """Pause every sender (a Retry-After on a 503, an outer 424, ...)."""
        with self._lock:
            self._pause_locked(self.clock.monotonic(), seconds, detail)

    def _pause_locked(self, now: float, seconds: float, detail: str = "") -> None:
        until = now + max(seconds, 0.0)
        if until > self._paused_until:
            added = until - max(self._paused_until, now)
            self.stats.paused_s += added
            self._paused_until = until
            self._emit(PacingEvent(kind="pause", at=now, seconds=seconds, detail=detail))

    def observed(self, percentage: float | None) -> None:
        """An `x-ms-throttle-limit-percentage` on a success: slow down before any 429 when
        Graph's view of the quota is fuller than ours (another app shares it), or over 1."""
        if percentage is None:
            return
        with self._lock:
            now = self.clock.monotonic()
            self.stats.peak_percentage = max(self.stats.peak_percentage, percentage)
            ours = max(self._writes.usage, self._units.usage)
            if percentage > 1.0 or (
                percentage >= WARNING_LEVEL and percentage - ours > SURPRISE_MARGIN
            ):
                self._emit(PacingEvent(kind="warning", at=now, detail=f"{percentage:.2f}"))
                self._slow_down(now, f"limit percentage {percentage:.2f}")
