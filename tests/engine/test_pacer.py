"""The pacer: bucket budget at the published ceiling, global pauses, AIMD, virtual time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.config import Limits
from runner.engine.pacer import Pacer


class FakeClock:
    """Virtual time: sleep advances it, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _pacer(**limits: float) -> tuple[Pacer, FakeClock]:
    clock = FakeClock()
    options = {"max_share": 1.0, **limits}
    return Pacer(Limits(**options), clock=clock), clock  # type: ignore[arg-type]


def test_full_bucket_then_the_refill_rate() -> None:
    """3,000 writes go at once, then 20 per second."""
    pacer, clock = _pacer()
    for _ in range(3000):
        assert pacer.try_acquire(writes=1, units=1) == 0
    assert pacer.try_acquire(writes=1, units=1) == pytest.approx(0.05)
    start = clock.now
    for _ in range(200):
        pacer.acquire(writes=1, units=1)
    assert clock.now - start == pytest.approx(10.0, rel=0.01)


def test_max_share_leaves_room_for_other_apps() -> None:
    """With max_share 0.5 the budget is 1,500 writes and 10 per second."""
    pacer, _ = _pacer(max_share=0.5)
    passed = sum(pacer.try_acquire(writes=1, units=1) == 0 for _ in range(2000))
    assert passed == 1500
    assert pacer.write_rate == pytest.approx(10.0)


def test_time_scale_speeds_the_refill() -> None:
    """At time scale 10 the budget refills 200 writes per second."""
    pacer, _ = _pacer(time_scale=10)
    assert pacer.write_rate == pytest.approx(200.0)


def test_retry_after_pauses_every_sender() -> None:
    """After a 429 with Retry-After 7, nothing may be sent for 7 seconds."""
    pacer, clock = _pacer()
    pacer.throttled(7.0, write=True)
    assert pacer.wait_time(writes=0, units=1) == pytest.approx(7.0)
    clock.now += 6.9
    assert pacer.try_acquire(writes=0, units=1) > 0
    clock.now += 0.2
    assert pacer.try_acquire(writes=0, units=1) == 0
    assert pacer.stats.throttled == 1
    assert pacer.stats.paused_s == pytest.approx(7.0)


def test_429_halves_the_rate_once_per_burst_and_quiet_time_restores_it() -> None:
    """Twenty item-level 429s of one batch halve the rate once; quiet intervals add it back."""
    pacer, clock = _pacer()
    for _ in range(20):
        pacer.throttled(0.5, write=True)
    assert pacer.factor == 0.5
    for _ in range(5):
        clock.now += 10.0
        pacer.wait_time(writes=1, units=1)
    assert pacer.factor == pytest.approx(1.0)


def test_429_empties_the_local_bucket() -> None:
    """After a 429 the next write waits for a refill even if our budget had tokens."""
    pacer, clock = _pacer()
    pacer.throttled(0.0, write=True)
    clock.now += 0.001
    assert pacer.try_acquire(writes=1, units=1) > 0


def test_limit_percentage_slows_down_when_someone_else_uses_the_quota() -> None:
    """0.95 from Graph while our own budget is almost full means another app: slow down."""
    pacer, _ = _pacer()
    pacer.observed(0.95)
    assert pacer.factor == 0.5
    assert [event.kind for event in pacer.stats.events] == ["warning", "slow_down"]


def test_limit_percentage_matching_our_own_usage_does_not_slow_down() -> None:
    """When we ourselves drained the budget, Graph's 0.95 is expected: keep the pace."""
    pacer, _ = _pacer()
    for _ in range(2900):
        pacer.try_acquire(writes=1, units=1)
    pacer.observed(0.95)
    assert pacer.factor == 1.0
    assert pacer.stats.peak_percentage == 0.95


def test_missing_retry_after_backs_off_exponentially_with_jitter() -> None:
    """429s without Retry-After wait a random time under a ceiling that doubles (1, 2, 4 s...),
    capped at 60 s (reliability F3)."""
    import random

    waits = []
    pacer, clock = _pacer()
    pacer = Pacer(Limits(max_share=1.0), clock=clock, rng=random.Random(7))
    for _ in range(9):
        pacer.throttled(None, write=False)
        waits.append(pacer.wait_time(writes=0, units=1))
        clock.now += waits[-1]
    ceilings = [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(waits, ceilings, strict=True))
    assert max(waits[5:]) > 8  # it really grows
    clock.now += 11  # a quiet interval: the next one starts small again
    pacer.throttled(None, write=False)
    assert pacer.wait_time(writes=0, units=1) <= 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["send", "429", "warn", "tick"]), min_size=1, max_size=400))
def test_never_above_the_ceiling_in_any_window(trace: list[str]) -> None:
    """Under any trace of sends, 429s and warnings, no 10 s window holds more writes than the
    bucket's capacity plus its refill, and nothing is sent inside an advised pause (P4)."""
    pacer, clock = _pacer(writes_per_150s=300, time_scale=1)
    sends: list[float] = []
    paused_until = 0.0
    for step in trace:
        if step == "send":
            pacer.acquire(writes=1, units=1)
            assert clock.now >= paused_until
            sends.append(clock.now)
        elif step == "429":
            pacer.throttled(3.0, write=True)
            paused_until = max(paused_until, clock.now + 3.0)
        elif step == "warn":
            pacer.observed(0.99)
        else:
            clock.now += 1.0
    for start in sends:
        in_window = sum(1 for t in sends if start <= t < start + 10.0)
        assert in_window <= 300 + 10.0 * 2 + 1
