"""Graph's identity-and-access throttling as token buckets (graph-reference.md section 10).

Per application+tenant: a resource-unit bucket (3,500 / 5,000 / 8,000 per 10 s by tenant
size) and a write bucket (3,000 per 150 s); per tenant across apps: 18,000 writes per 300 s.
A request passes only if every bucket it draws from holds enough; otherwise it is refused
with 429 and a Retry-After of the time until it would pass. Buckets start full.

`time_scale` X multiplies every refill rate by X (each window is divided by X); capacities
stay the published quotas, so X=10 turns a 25-minute benchmark into 2.5 minutes.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from dataclasses import dataclass, field

from runner.emulator.config import Limits

WARNING_THRESHOLD = 0.8


@dataclass(slots=True)
class TokenBucket:
    """A bucket of `capacity` tokens refilled at `rate` per second."""

    capacity: float
    rate: float
    tokens: float
    last: float

    def refill(self, now: float) -> None:
        """Add what accrued since the last look."""
        if now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` tokens are available (0 when they are now)."""
        missing = amount - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate

    @property
    def usage(self) -> float:
        """Share of the quota in use: 0 when full, 1 when empty."""
        return 1.0 - self.tokens / self.capacity


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottleDecision:
    """Whether a request passes, and the headers Graph adds either way."""

    allowed: bool
    retry_after_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def format_retry_after(seconds: float, *, time_scale: float, integer: bool) -> str:
    """Retry-After text: whole seconds as Graph sends them on standalone requests (divided by
    the time scale), or a decimal as seen inside `$batch` responses."""
    seconds = max(seconds, 0.001)
    if integer:
        real = math.ceil(seconds * time_scale - 1e-9)
        value = max(real, 1) / time_scale
        if value == int(value):
            return str(int(value))
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return f"{math.ceil(seconds * 1000) / 1000:.3f}".rstrip("0").rstrip(".")


class Throttler:
    """The emulated tenant's buckets, shared by every server thread."""

    def __init__(
        self, limits: Limits, *, tenant_id: str, time_scale: float = 1.0, enabled: bool = True
    ) -> None:
        self.limits = limits
        self.tenant_id = tenant_id
        self.time_scale = time_scale
        self.enabled = enabled
        self._lock = threading.Lock()
        self._apps: dict[str, tuple[TokenBucket, TokenBucket]] = {}
        self._tenant_writes: TokenBucket | None = None
        self.throttled = 0

    def _bucket(self, capacity: int, window_s: float, now: float) -> TokenBucket:
        return TokenBucket(
            capacity=float(capacity),
            rate=capacity / window_s * self.time_scale,
            tokens=float(capacity),
            last=now,
        )

    def reset(self) -> None:
        """Refill every bucket (state reset through the admin API)."""
        with self._lock:
            self._apps.clear()
            self._tenant_writes = None

    def charge(
        self,
        *,
        app_id: str,
        resource_units: int,
        writes: int,
        now: dt.datetime,
        in_batch: bool = False,
    ) -> ThrottleDecision:
        """Take the request's cost from its buckets, or refuse it with a 429 decision."""
        if not self.enabled:
            return ThrottleDecision(allowed=True)
        t = now.timestamp()
        with self._lock:
            buckets = self._apps.get(app_id)
            if buckets is None:
                buckets = (
                    self._bucket(self.limits.resource_units_per_10s, 10.0, t),
                    self._bucket(self.limits.writes_per_150s, 150.0, t),
                )
                self._apps[app_id] = buckets
            if self._tenant_writes is None:
                self._tenant_writes = self._bucket(self.limits.tenant_writes_per_300s, 300.0, t)
            units, app_writes = buckets
            tenant_writes = self._tenant_writes
            for bucket in (units, app_writes, tenant_writes):
                bucket.refill(t)
            waits = [
                (
                    units.wait_for(resource_units),
                    "ReadWrite",
                    "ResourceUnitLimitExceeded",
                    "Tenant_Application",
                )
            ]
            if writes:
                waits.append(
                    (
                        app_writes.wait_for(writes),
                        "Write",
                        "WriteLimitExceeded",
                        "Tenant_Application",
                    )
                )
                waits.append(
                    (tenant_writes.wait_for(writes), "Write", "WriteLimitExceeded", "Tenant")
                )
            wait, kind, information, scope = max(waits, key=lambda entry: entry[0])
            if wait > 0:
                self.throttled += 1
                retry = format_retry_after(wait, time_scale=self.time_scale, integer=not in_batch)
                return ThrottleDecision(
                    allowed=False,
                    retry_after_s=wait,
                    headers={
                        "Retry-After": retry,
                        "x-ms-throttle-scope": f"{scope}/{kind}/{app_id}/{self.tenant_id}",
                        "x-ms-throttle-information": information,
                    },
                )
            units.tokens -= resource_units
            if writes:
                app_writes.tokens -= writes
                tenant_writes.tokens -= writes
            usage = max(units.usage, app_writes.usage if writes else 0.0)
        headers: dict[str, str] = {}
        if usage > WARNING_THRESHOLD:
            headers["x-ms-throttle-limit-percentage"] = f"{usage:.2f}"
        return ThrottleDecision(allowed=True, headers=headers)
