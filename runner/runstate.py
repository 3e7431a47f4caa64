"""The state machine of a run's items and steps, and the records the journal reads and writes.

Pure: no I/O, no clock. `runner/journal.py` stores these records in SQLite and refuses
every move that the tables below do not list.

An *item* is one (target, action) of the frozen plan. A *step* is one Graph request of an
item (deleting three methods is three steps). Statuses are product-spec section 7's:

    item:  planned → intent → succeeded | failed | unknown;  succeeded → verified
           unknown → succeeded | failed (reconciled) | intent (re-sent)
           planned → noop | drifted | skipped | refused | failed;  manual → confirmed
           intent → planned (every intent withdrawn: nothing was sent)
    step:  planned → intent | skipped
           intent  → succeeded | failed | unknown | planned (withdrawn, not sent)
                   | intent (re-sent, only after a response that proves it was not executed)
           unknown → succeeded | failed (reconciled) | intent (re-sent)

Creation decides each item's first status from the plan's change kind: `change` and `noop`
start `planned` (a plan-time no-op is re-read right before its batch, since the actions act
on the state read then: a method added after planning is removed too); `manual` starts
`manual`; `refused` (or a refused target) starts `refused`; `not_applicable` starts
`skipped`. Those three send nothing, ever.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from runner.actions import registry
from runner.frozen import FrozenPlan


class ItemStatus(StrEnum):
    """Status of one (target, action)."""

    PLANNED = "planned"
    INTENT = "intent"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    VERIFIED = "verified"
    NOOP = "noop"
    DRIFTED = "drifted"
    REFUSED = "refused"
    MANUAL = "manual"
    CONFIRMED = "confirmed"
    SKIPPED = "skipped"


class StepStatus(StrEnum):
    """Status of one Graph request of an item."""

    PLANNED = "planned"
    INTENT = "intent"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


class TimeSource(StrEnum):
    """Where an intent time came from."""

    SERVER = "server"  # the `Date` header of a recent Graph response
    LOCAL = "local"  # this machine's UTC clock (no response seen yet)


ITEM_TRANSITIONS: Mapping[ItemStatus, frozenset[ItemStatus]] = MappingProxyType(
    {
        ItemStatus.PLANNED: frozenset(
            {
                ItemStatus.INTENT,
                ItemStatus.NOOP,
                ItemStatus.DRIFTED,
                ItemStatus.SKIPPED,
                ItemStatus.REFUSED,
                ItemStatus.FAILED,
            }
        ),
        ItemStatus.INTENT: frozenset(
            {ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.UNKNOWN, ItemStatus.PLANNED}
        ),
        ItemStatus.UNKNOWN: frozenset({ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.INTENT}),
        ItemStatus.SUCCEEDED: frozenset({ItemStatus.VERIFIED}),
        ItemStatus.MANUAL: frozenset({ItemStatus.CONFIRMED}),
        ItemStatus.FAILED: frozenset(),
        ItemStatus.VERIFIED: frozenset(),
        ItemStatus.NOOP: frozenset(),
        ItemStatus.DRIFTED: frozenset(),
        ItemStatus.REFUSED: frozenset(),
        ItemStatus.CONFIRMED: frozenset(),
        ItemStatus.SKIPPED: frozenset(),
    }
)

STEP_TRANSITIONS: Mapping[StepStatus, frozenset[StepStatus]] = MappingProxyType(
    {
        StepStatus.PLANNED: frozenset({StepStatus.INTENT, StepStatus.SKIPPED}),
        StepStatus.INTENT: frozenset(
            {
                StepStatus.INTENT,
                StepStatus.SUCCEEDED,
                StepStatus.FAILED,
                StepStatus.UNKNOWN,
                StepStatus.PLANNED,
            }
        ),
        StepStatus.UNKNOWN: frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.INTENT}),
        StepStatus.SUCCEEDED: frozenset(),
        StepStatus.FAILED: frozenset(),
        StepStatus.SKIPPED: frozenset(),
    }
)

# Statuses `Journal.set_status` may set: those that need no step bookkeeping.
DIRECT_STATUSES = frozenset(
    {
        ItemStatus.NOOP,
        ItemStatus.DRIFTED,
        ItemStatus.SKIPPED,
        ItemStatus.REFUSED,
        ItemStatus.FAILED,
        ItemStatus.CONFIRMED,
    }
)

# Items that still need work (or reconciliation) before a run is finished.
OPEN_STATUSES = frozenset({ItemStatus.PLANNED, ItemStatus.INTENT, ItemStatus.UNKNOWN})

# entra-bulk's own error code (not Graph's) for a step that ended failed because whether it was
# applied could not be read back (the user could not be read, or its operation was lost): the
# change may be in effect, so its secret is neither handed over nor called never set.
OUTCOME_UNKNOWN = "OutcomeUnknown"


class IllegalTransitionError(RuntimeError):
    """A move the state machine does not allow: a bug in the caller, never a storage error."""


def check_item(item_id: int, old: ItemStatus, new: ItemStatus) -> None:
    """Raise IllegalTransitionError unless `old → new` is a legal item move."""
    if new not in ITEM_TRANSITIONS[old]:
        msg = f"item {item_id}: illegal transition {old} → {new}"
        raise IllegalTransitionError(msg)


def check_step(item_id: int, key: str, old: StepStatus, new: StepStatus) -> None:
    """Raise IllegalTransitionError unless `old → new` is a legal step move."""
    if new not in STEP_TRANSITIONS[old]:
        msg = f"item {item_id} step {key!r}: illegal transition {old} → {new}"
        raise IllegalTransitionError(msg)


def initial_status(kind: str) -> ItemStatus:
    """An item's first status from its plan change kind (see the module docstring)."""
    match kind:
        case "change" | "noop":
            return ItemStatus.PLANNED
        case "manual":
            return ItemStatus.MANUAL
        case "refused":
            return ItemStatus.REFUSED
        case "not_applicable":
            return ItemStatus.SKIPPED
    msg = f"unknown plan change kind {kind!r}"
    raise ValueError(msg)


def derive_item_status(steps: Iterable[StepStatus]) -> ItemStatus:
    """The status a finished item takes from its steps' statuses.

    Any unknown step makes it unknown (it must be reconciled before anything else); then any
    failed step makes it failed; otherwise succeeded. A step still in `intent` or `planned`
    means the item is not finished, and steps skipped without a failure mean work left
    undone, never success (ValueError: the caller has a bug).
    """
    seen = set(steps)
    pending = seen & {StepStatus.INTENT, StepStatus.PLANNED}
    if pending:
        msg = f"cannot finish an item with steps still {', '.join(sorted(pending))}"
        raise ValueError(msg)
    if StepStatus.UNKNOWN in seen:
        return ItemStatus.UNKNOWN
    if StepStatus.FAILED in seen:
        return ItemStatus.FAILED
    if StepStatus.SKIPPED in seen:
        msg = "cannot finish an item as succeeded while some of its steps were never sent"
        raise ValueError(msg)
    if StepStatus.SUCCEEDED in seen:
        return ItemStatus.SUCCEEDED
    msg = "cannot finish an item none of whose steps was sent"
    raise ValueError(msg)


# --- time stamps: UTC, microseconds, `Z`; fixed width, so text order is time order ---------


def stamp(moment: dt.datetime) -> str:
    """`2026-01-31T12:00:00.000000Z` (naive times are refused: they are a bug)."""
    if moment.tzinfo is None:
        msg = "naive datetime given to the journal; pass an aware UTC time"
        raise ValueError(msg)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unstamp(text: str | None) -> dt.datetime | None:
    """Back from `stamp`."""
    if text is None:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RunHeader:
    """What the journal keeps of the plan and the run, so reports need nothing else."""

    plan_name: str
    ticket: str | None
    digest: str
    tenant_id: str
    emulated: bool
    author: Mapping[str, Any]
    approvals: tuple[Mapping[str, Any], ...]
    content: Mapping[str, Any] = field(repr=False)  # the frozen plan's `content`
    options: Mapping[str, Any]  # canary, halt_on_failure_rate, on_drift, ...
    created: dt.datetime
    tool_version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemSpec:
    """One (target, action) as created from the frozen plan."""

    target_index: int
    object_id: str
    upn: str
    display_name: str
    action: str
    position: int  # the action's place in this target's per-user order
    kind: str  # the plan's change kind: change|noop|manual|refused|not_applicable
    summary: str  # the plan's summary of the change, or its reason
    repeatable: bool
    note: str | None = None
    ticket: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One (target, action) as the journal has it now."""

    id: int
    target_index: int
    object_id: str
    upn: str
    display_name: str
    action: str
    position: int
    kind: str
    summary: str
    note: str | None
    ticket: str | None
    repeatable: bool
    initial_status: ItemStatus
    status: ItemStatus
    reason: str | None
    attempts: int
    http_status: int | None
    error_code: str | None
    error_message: str | None
    request_id: str | None
    started: dt.datetime | None
    finished: dt.datetime | None
    verified: bool | None  # None: not checked yet
    verified_at: dt.datetime | None
    secret_ref: str | None
    detail: Mapping[str, Any]
    updated: dt.datetime

    @property
    def ref(self) -> str:
        """The item's reference (in secrets.csv, reports and `entra-bulk confirm`)."""
        return str(self.id)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRecord:
    """One Graph request of an item."""

    item_id: int
    key: str
    label: str
    status: StepStatus
    attempts: int
    resend_ok: bool  # the last attempt ended in a response proving it was not executed
    http_status: int | None
    error_code: str | None
    error_message: str | None
    request_id: str | None
    client_request_id: str | None  # = the intent id
    intent_time: dt.datetime | None
    intent_time_source: TimeSource | None
    location: str | None  # a long-running operation to poll
    created: dt.datetime
    updated: dt.datetime
    finished: dt.datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """The promise, committed before any byte is sent, that a request is about to go out."""

    item_id: int
    step_key: str
    intent_id: str  # a UUID, sent as `client-request-id`
    intent_time: dt.datetime
    time_source: TimeSource
    label: str = ""
    secret_ref: str | None = None  # the secrets.csv row whose password this request sets
    reissue: bool = False  # re-send an unknown non-repeatable request (after read-back)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How a step ended (or was reconciled): succeeded, failed or unknown."""

    item_id: int
    step_key: str
    status: StepStatus
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    location: str | None = None
    secret_ref: str | None = None  # a pass Graph returned, already in secrets.csv
    detail: Mapping[str, Any] | None = None
    finish_item: bool = False  # the item's last step: derive the item's status now


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """A response that does not end a step: it proves the request was not executed (429,
    503 with Retry-After, 401, an outer `$batch` 424) or accepts it for later (202 + Location).
    """

    item_id: int
    step_key: str
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    """What the read-back of a target showed for one item."""

    item_id: int
    verified: bool
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Orphan:
    """A step left in `intent` with no outcome: a crash between intent and outcome."""

    item_id: int
    step_key: str
    object_id: str
    upn: str
    action: str
    repeatable: bool
    intent_id: str | None
    intent_time: dt.datetime | None
    intent_time_source: TimeSource | None
    location: str | None
    secret_ref: str | None
    resend_ok: bool  # the last response proved it was not executed: nothing is in flight


@dataclass(frozen=True, slots=True, kw_only=True)
class LockInfo:
    """The holder of a run's lock."""

    lock_id: str
    pid: int
    host: str
    started: dt.datetime
    command: str
    pid_start: str | None = None  # the process's start time in clock ticks (Linux)

    def describe(self) -> str:
        """`pid 123 on host h since 2026-… (lock id …)`."""
        since = self.started.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"pid {self.pid} on host {self.host} since {since} (lock id {self.lock_id})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One entry of the pacing/run timeline (429s, pauses, rate changes, halts, ...)."""

    seq: int
    time: dt.datetime
    kind: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """One recorded move of an item (step_key None) or of a step."""

    seq: int
    item_id: int
    step_key: str | None
    old: str
    new: str
    time: dt.datetime
    detail: Mapping[str, Any]


# --- from a frozen plan --------------------------------------------------------------------


def specs_from_plan(plan: FrozenPlan) -> list[ItemSpec]:
    """One ItemSpec per (target, action) of the plan, in plan and per-user order."""
    specs: list[ItemSpec] = []
    repeatable: dict[str, bool] = {}
    for index, target in enumerate(plan.targets()):
        for position, change in enumerate(target.changes):
            if change.action not in repeatable:
                repeatable[change.action] = registry.get(change.action).repeatable
            kind = "refused" if target.refused else str(change.kind)
            summary = target.refused if target.refused else change.summary
            specs.append(
                ItemSpec(
                    target_index=index,
                    object_id=target.object_id,
                    upn=target.upn,
                    display_name=target.display_name,
                    action=change.action,
                    position=position,
                    kind=kind,
                    summary=summary,
                    repeatable=repeatable[change.action],
                    note=target.note,
                    ticket=target.ticket,
                )
            )
    return specs


def header_from_plan(
    plan: FrozenPlan,
    *,
    approvals: Sequence[Mapping[str, Any]],
    options: Mapping[str, Any],
    created: dt.datetime,
    tool_version: str = "",
) -> RunHeader:
    """The run header for a frozen plan; `options` are apply's (they win over the plan's)."""
    content = plan.content
    safety = plan.safety
    merged: dict[str, Any] = {
        "canary": safety.get("canary"),
        "halt_on_failure_rate": safety.get("halt_on_failure_rate"),
    }
    merged.update(options)
    return RunHeader(
        plan_name=plan.name,
        ticket=content["plan"].get("ticket"),
        digest=plan.digest,
        tenant_id=plan.tenant_id,
        emulated=bool(content["tenant"].get("emulated")),
        author=dict(content.get("author") or {}),
        approvals=tuple(dict(a) for a in approvals),
        content=content,
        options=merged,
        created=created,
        tool_version=tool_version,
    )
