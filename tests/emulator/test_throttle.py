"""Throttling as token buckets: Graph's published quotas, costs, headers and time scale."""

from __future__ import annotations

import datetime as dt

import pytest

from runner.emulator.config import Limits
from runner.emulator.throttle import Throttler, format_retry_after

T0 = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_tenant_size_picks_the_resource_unit_quota() -> None:
    """Small, medium and large tenants get 3,500, 5,000 and 8,000 RU per 10 s."""
    assert Limits.for_users(49).resource_units_per_10s == 3500
    assert Limits.for_users(50).resource_units_per_10s == 5000
    assert Limits.for_users(500).resource_units_per_10s == 5000
    assert Limits.for_users(501).resource_units_per_10s == 8000
    assert Limits.for_users(501).writes_per_150s == 3000


def test_write_bucket_allows_exactly_its_quota_then_429() -> None:
    """3,000 writes pass at once; the 3,001st is refused with the write headers."""
    throttler = Throttler(Limits.for_users(1000), tenant_id="t")
    for _ in range(3000):
        assert throttler.charge(app_id="a", resource_units=1, writes=1, now=T0).allowed
    refused = throttler.charge(app_id="a", resource_units=1, writes=1, now=T0)
    assert not refused.allowed
    assert refused.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert refused.headers["x-ms-throttle-scope"] == "Tenant_Application/Write/a/t"
    assert refused.headers["Retry-After"] == "1"
    assert refused.retry_after_s == pytest.approx(150 / 3000)


def test_write_bucket_refills_at_twenty_per_second() -> None:
    """After draining, one second later 20 more writes pass and the 21st does not."""
    throttler = Throttler(Limits.for_users(1000), tenant_id="t")
    for _ in range(3000):
        throttler.charge(app_id="a", resource_units=1, writes=1, now=T0)
    passed = sum(
        throttler.charge(app_id="a", resource_units=1, writes=1, now=at(1.0)).allowed
        for _ in range(25)
    )
    assert passed == 20


def test_time_scale_multiplies_refill_and_divides_retry_after() -> None:
    """At time scale 10 the bucket refills 200 writes per second and Retry-After is /10."""
    throttler = Throttler(Limits.for_users(1000), tenant_id="t", time_scale=10)
    for _ in range(3000):
        throttler.charge(app_id="a", resource_units=1, writes=1, now=T0)
    refused = throttler.charge(app_id="a", resource_units=1, writes=1, now=T0)
    assert refused.headers["Retry-After"] == "0.1"
    passed = sum(
        throttler.charge(app_id="a", resource_units=1, writes=1, now=at(1.0)).allowed
        for _ in range(250)
    )
    assert passed == 200


def test_apps_have_separate_buckets_but_share_the_tenant_write_quota() -> None:
    """Six apps of 3,000 writes drain the tenant's 18,000; the next app is throttled."""
    throttler = Throttler(Limits.for_users(1000), tenant_id="t")
    for app in range(6):
        for _ in range(3000):
            assert throttler.charge(app_id=f"app{app}", resource_units=1, writes=1, now=T0).allowed
    refused = throttler.charge(app_id="app7", resource_units=1, writes=1, now=T0)
    assert not refused.allowed
    assert refused.headers["x-ms-throttle-scope"] == "Tenant/Write/app7/t"


def test_resource_units_are_limited_for_reads() -> None:
    """A small tenant's 3,500 RU per 10 s allow 700 reads costing 5 RU each."""
    throttler = Throttler(Limits.for_users(10), tenant_id="t")
    passed = sum(
        throttler.charge(app_id="a", resource_units=5, writes=0, now=T0).allowed for _ in range(800)
    )
    assert passed == 700
    refused = throttler.charge(app_id="a", resource_units=5, writes=0, now=T0)
    assert refused.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"


def test_limit_percentage_header_above_eighty_percent() -> None:
    """x-ms-throttle-limit-percentage appears only once more than 0.8 of a quota is used."""
    throttler = Throttler(Limits.for_users(1000), tenant_id="t")
    seen = [
        throttler.charge(app_id="a", resource_units=1, writes=1, now=T0).headers.get(
            "x-ms-throttle-limit-percentage"
        )
        for _ in range(2500)
    ]
    assert seen[2399] is None
    assert seen[2401] == "0.80"
    assert seen[-1] == "0.83"


def test_throttle_off_allows_everything() -> None:
    """With throttling off no request is ever refused."""
    throttler = Throttler(Limits.for_users(10), tenant_id="t", enabled=False)
    assert all(
        throttler.charge(app_id="a", resource_units=5, writes=1, now=T0).allowed
        for _ in range(10_000)
    )


@pytest.mark.parametrize(
    ("seconds", "scale", "integer", "expected"),
    [
        (0.05, 1, True, "1"),
        (4.2, 1, True, "5"),
        (0.05, 1, False, "0.05"),
        (0.0123, 1, False, "0.013"),
        (0.004, 10, True, "0.1"),
        (2.5, 10, True, "2.5"),
    ],
)
def test_retry_after_format(seconds: float, scale: float, integer: bool, expected: str) -> None:
    """Retry-After is whole seconds (divided by the time scale) or a decimal inside batches."""
    assert format_retry_after(seconds, time_scale=scale, integer=integer) == expected
