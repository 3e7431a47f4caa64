"""Settings of the emulated tenant: size, seed, time scale, latency, throttling, quotas."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SEED = 1
DEFAULT_USERS = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Graph's identity-and-access quotas for one application+tenant pair (graph-reference §10).

    Quotas are the published numbers; the windows are in real seconds before the time scale.
    """

    tenant_size: str
    resource_units_per_10s: int
    writes_per_150s: int = 3000
    tenant_writes_per_300s: int = 18000

    @classmethod
    def for_users(cls, users: int) -> Limits:
        """The quota of a tenant of that many users: S < 50, M 50-500, L > 500."""
        if users < 50:
            return cls(tenant_size="small", resource_units_per_10s=3500)
        if users <= 500:
            return cls(tenant_size="medium", resource_units_per_10s=5000)
        return cls(tenant_size="large", resource_units_per_10s=8000)

    def as_json(self) -> dict[str, object]:
        """The `limits` object of `emulator.json`."""
        return {
            "tenant_size": self.tenant_size,
            "resource_units_per_10s": self.resource_units_per_10s,
            "writes_per_150s": self.writes_per_150s,
            "tenant_writes_per_300s": self.tenant_writes_per_300s,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    """Added latency per HTTP request, uniform between `low_ms` and `high_ms`."""

    low_ms: float = 0.0
    high_ms: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Latency:
        """Parse `LO:HI` (milliseconds) or a single number; raises ValueError when malformed."""
        parts = text.split(":")
        if len(parts) == 1:
            low = high = float(parts[0])
        elif len(parts) == 2:
            low, high = float(parts[0]), float(parts[1])
        else:
            msg = f"latency {text!r} is not LO:HI in milliseconds"
            raise ValueError(msg)
        if low < 0 or high < low:
            msg = f"latency {text!r}: need 0 <= LO <= HI"
            raise ValueError(msg)
        return cls(low_ms=low, high_ms=high)

    @property
    def enabled(self) -> bool:
        """True when any latency is added."""
        return self.high_ms > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorConfig:
    """Everything `entra-bulk emulator serve` takes on its command line."""

    state_dir: Path
    users: int = DEFAULT_USERS
    seed: int = DEFAULT_SEED
    port: int = 0
    sts_port: int = 0
    host: str = "127.0.0.1"
    time_scale: float = 1.0
    latency: Latency = field(default_factory=Latency)
    throttle: bool = True
    faults_file: Path | None = None
    # Eventual consistency: deleted methods and revoked sessions become visible this late.
    consistency_delay_s: float = 1.5
    # How long a resetPassword long-running operation stays `running`.
    operation_delay_s: float = 1.0
    token_lifetime_s: int = 3600

    @property
    def limits(self) -> Limits:
        """The quota of this tenant's size."""
        return Limits.for_users(self.users)
