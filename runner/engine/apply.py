"""Apply: drift checks, canary, waves of batches, halting, verification — from the journal.

    result = run(journal=..., client=..., ...)

The journal is the truth: what to do next is read from it (items still planned, in intent or
unknown), so a fresh run and `--resume` follow the same path. A resumed run first reconciles
every step whose outcome is unknown (reading state back; polling a kept operation Location)
before it sends anything new.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from runner.actions.base import Read as NeededRead
from runner.actions.base import Secret, Step
from runner.actions.behaviours import behaviour
from runner.engine.dispatch import (
    Context,
    Dispatcher,
    Pending,
    RetryBudgetExhaustedError,
    applied,
)
from runner.engine.pacer import Pacer
from runner.engine.reader import Reader
from runner.engine.schedule import ItemWork, Scheduler, StepState, StepWork, users_from
from runner.engine.states import Refused, StateReader
from runner.events import EventLog
from runner.frozen import FrozenTarget
from runner.graph.client import GraphClient
from runner.journal import Journal
from runner.resolve import BETA_ONLY_KINDS, privileged_roles
from runner.runstate import (
    OUTCOME_UNKNOWN,
    Item,
    ItemStatus,
    Outcome,
    StepRecord,
    StepStatus,
    Verification,
)
from runner.secretfile import SecretsFile
from runner.state import COLLECTION, UserState

OPEN = (ItemStatus.PLANNED, ItemStatus.INTENT, ItemStatus.UNKNOWN)
MIN_ITEMS_FOR_HALT = 20
# Read-backs start soon after the change and back off (doubling) to `verify_interval_s`: a
# change Graph shows quickly is verified quickly (the canary holds the whole run meanwhile).
FIRST_VERIFY_INTERVAL_S = 0.1


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyOptions:
    """How a run proceeds."""

    on_drift: str = "skip"  # skip | abort
    canary: int = 10
    halt_on_failure_rate: float = 0.05
    workers: int = 4
    wave_size: int = 500
    verify_timeout_s: float = 30.0
    verify_interval_s: float = 1.0
    reconcile_wait_s: float = 10.0
    max_attempts: int = 6


@dataclass(slots=True, kw_only=True)
class ApplyResult:
    """How the run ended."""

    halted: str | None = None  # why the run stopped early (exit 4)
    drift_abort: str | None = None  # exit 3
    interrupted: bool = False  # exit 130
    counts: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    throttled: int = 0
    paused_s: float = 0.0
    reconciled: int = 0
    unverified: int = 0


class DriftAbortError(Exception):
    """A target changed since planning and the run was told to abort on drift."""


def _describe_drift(planned: FrozenTarget, state: UserState | None) -> str:
    if state is None:
        return "the user no longer exists"
    changes = []
    if state.upn.lower() != planned.upn.lower():
        changes.append(f"UPN {planned.upn} → {state.upn}")
    if state.user_type != planned.user_type:
        changes.append(f"user type {planned.user_type} → {state.user_type}")
    if state.synced != planned.synced:
        changes.append(f"synced {planned.synced} → {state.synced}")
    if tuple(sorted(state.privileged_roles)) != tuple(sorted(planned.privileged_roles)):
        before = ", ".join(planned.privileged_roles) or "none"
        after = ", ".join(state.privileged_roles) or "none"
        changes.append(f"privileged roles {before} → {after}")
    return "changed since planning: " + ("; ".join(changes) or "identity")


def step_for_key(
    action: str, key: str, user_id: str, options: Mapping[str, Any], *, delegated: bool
) -> Step | None:
    """Rebuild a journaled step from its key (for reconciling an unknown step on resume)."""
    if key.startswith("delete:"):
        _, kind, method_id = key.split(":", 2)
        collection, version = COLLECTION[kind]
        return Step(
            key=key,
            method="DELETE",
            path=f"/users/{user_id}/authentication/{collection}/{method_id}",
            version=version,
            done=frozenset({204, 404}),
        )
    bare = UserState(id=user_id, upn="")
    for step in behaviour(action).steps(bare, options, delegated=delegated):
        if step.key == key:
            return step
    return None


class Run:
    """One apply (or resume) of a journaled plan."""

    def __init__(
        self,
        *,
        journal: Journal,
        client: GraphClient,
        pacer: Pacer,
        secrets: SecretsFile,
        events: EventLog,
        refresh_token: Callable[[], None],
        refresh_claims: Callable[[str], None] | None = None,
        delegated: bool,
        options: ApplyOptions,
        stop: Callable[[], bool],
    ) -> None:
        self.journal = journal
        self.pacer = pacer
        self.events = events
        self.options = options
        self._stop_requested = stop
        self.result = ApplyResult()
        header = journal.header(content=True)
        content = header.content
        self.plan_options: dict[str, Mapping[str, Any]] = dict(content["plan"]["options"])
        # Only the identity each target was planned with (for the drift checks): the texts of
        # its changes are in the journal's items, and 100,000 of them would cost ~100 MB here.
        self.targets: dict[str, FrozenTarget] = {
            t["object_id"]: FrozenTarget.from_json({**t, "actions": ()}) for t in content["targets"]
        }
        self.delegated = delegated
        kinds = {
            kind for opts in self.plan_options.values() for kind in opts.get("method_types", ())
        }
        self.reader = Reader(client, pacer, refresh_token=refresh_token, workers=options.workers)
        warnings: list[str] = []
        self.roles = privileged_roles(self.reader, warnings)
        for warning in warnings:
            events.emit("warning", message=warning)
        self.states = StateReader(
            self.reader,
            roles=self.roles,
            beta_methods=bool(kinds & BETA_ONLY_KINDS),
            resume=f"entra-bulk apply --resume {shlex.quote(str(journal.path.parent))}",
        )
        self.dispatcher = Dispatcher(
            Context(
                journal=journal,
                client=client,
                pacer=pacer,
                secrets=secrets,
                events=events,
                states=self.states,
                options=self.plan_options,
                delegated=delegated,
                refresh_token=refresh_token,
                refresh_claims=refresh_claims,
                max_attempts=options.max_attempts,
                workers=options.workers,
                reconcile_wait_s=options.reconcile_wait_s,
                upns={oid: t.upn for oid, t in self.targets.items()},
            ),
            stop=self._should_stop,
        )

    # -- control ----------------------------------------------------------------------------

    def _should_stop(self) -> bool:
        if self._stop_requested():
            self.result.interrupted = True
            return True
        if self.result.halted is not None:
            return True
        done, failed = self.dispatcher.finished_items, self.dispatcher.failed_items
        rate = self.options.halt_on_failure_rate
        if done >= MIN_ITEMS_FOR_HALT and failed / done > rate:
            self.result.halted = (
                f"{failed} of {done} items failed, more than the plan's halt_on_failure_rate "
                f"of {rate:.0%}"
            )
            self.journal.record_event("halt", {"reason": self.result.halted})
            return True
        return False

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> ApplyResult:
        """Everything: reconcile, canary, waves, verification."""
        try:
            self._run()
        except RetryBudgetExhaustedError as exc:
            self.result.halted = f"{exc}; Graph may be in an outage — resume later"
            self.journal.record_event("halt", {"reason": self.result.halted})
        finally:
            self.dispatcher.close()
        self.result.counts = {str(k): v for k, v in self.journal.counts().items()}
        self.result.requests = self.dispatcher.counters.requests + self.reader.requests_sent
        self.result.throttled = self.pacer.stats.throttled
        self.result.paused_s = self.pacer.stats.paused_s
        self.result.reconciled = self.dispatcher.counters.reconciled
        return self.result

    def _run(self) -> None:
        orphans = self.journal.recover_orphans()
        if orphans:
            self.events.emit("resume", orphans=len(orphans))
        self._reconcile_open()
        if self._should_stop():
            return
        canary = self.options.canary
        if canary > 0 and not self.journal.events("canary_passed"):
            first = list(self._open_targets(limit=canary))
            if first:
                self.events.phase = "canary"
                self.events.emit("canary", targets=len(first))
                self._wave(first)
                if self._should_stop():
                    return
                wave = list(self._open_targets(limit=self.options.wave_size))
                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift") as pool:
                    # While the canary waits for Graph to show its changes, the first wave's
                    # targets are read for their drift check (reads only; unused if it fails).
                    early = pool.submit(self._read_states, wave)
                    problem = self._check_canary([item for _, items in first for item in items])
                if self.result.interrupted:
                    return
                if problem is not None:
                    self.result.halted = f"canary: {problem}"
                    self.journal.record_event("halt", {"reason": self.result.halted})
                    return
                self.journal.record_event("canary_passed", {"targets": len(first)})
                if wave and not self._should_stop():
                    self.events.phase = "apply"
                    self._wave(wave, early.result())
        self.events.phase = "apply"
        while not self._should_stop():
            wave = list(self._open_targets(limit=self.options.wave_size))
            if not wave:
                break
            self._wave(wave)
        if not self.result.interrupted:
            # Also after a halt: what did succeed is read back now, not left for a resume.
            self.events.phase = "verify"
            self._verify_all()

    def _open_targets(self, *, limit: int) -> Iterator[tuple[FrozenTarget, list[Item]]]:
        """Targets with open items, in plan order, with those items."""
        current: str | None = None
        items: list[Item] = []
        count = 0
        for item in self.journal.iter_items(status=OPEN):
            if item.object_id != current:
                if current is not None:
                    yield self.targets[current], items
                    count += 1
                    if count >= limit:
                        return
                current, items = item.object_id, []
            items.append(item)
        if current is not None:
            yield self.targets[current], items

    # -- reconcile what an earlier process left open ---------------------------------------

    def _reconcile_open(self) -> None:
        """Before anything new is sent, the users with unknown outcomes go first: their
        unknown steps are read back (or their operation polled) before any of their other
        steps is sent, and no other user is touched until they are settled."""
        unknown = self.journal.items(status=ItemStatus.UNKNOWN)
        if not unknown:
            return
        self.events.phase = "reconcile"
        self.events.emit("reconcile", items=len(unknown))
        users = {item.object_id for item in unknown}
        wave = [
            (target, items)
            for target, items in self._open_targets(limit=len(self.targets))
            if target.object_id in users
        ]
        self._wave(wave)

    # -- one wave ---------------------------------------------------------------------------

    def _read_states(
        self, wave: Sequence[tuple[FrozenTarget, list[Item]]]
    ) -> dict[str, UserState | Refused | None]:
        """The wave's targets as they are now, with what its actions need."""
        actions = {item.action for _, items in wave for item in items}
        needed: frozenset[NeededRead] = frozenset().union(
            *(behaviour(name).reads for name in actions)
        )
        return self.states.read([target.object_id for target, _ in wave], needed)

    def _wave(
        self,
        wave: Sequence[tuple[FrozenTarget, list[Item]]],
        states: Mapping[str, UserState | Refused | None] | None = None,
    ) -> None:
        if states is None:
            states = self._read_states(wave)
        works: list[ItemWork] = []
        for target, items in wave:
            state = states.get(target.object_id)
            if isinstance(state, Refused):
                self._end_unreadable(target, state, items)
                continue
            if state is None or state.fingerprint() != target.fingerprint:
                reason = _describe_drift(target, state)
                # The target ends here, whatever the run does next: a drifted target handed
                # back to a later wave would be read, found drifted and handed back forever.
                self._end_drifted(state, items, reason)
                if self.options.on_drift == "abort":
                    self.result.drift_abort = f"{target.upn}: {reason}"
                    self.journal.record_event("drift_abort", {"upn": target.upn, "reason": reason})
                    raise DriftAbortError(self.result.drift_abort)
                self.events.emit("drifted", upn=target.upn, reason=reason)
                continue
            works.extend(self._item_works(state, items))
        self.dispatcher.drive(Scheduler(users_from(works)))

    def _end_drifted(self, state: UserState | None, items: Sequence[Item], reason: str) -> None:
        """End every open item of a drifted target: planned items become drifted; a step
        already sent (its outcome unknown) is decided by the read-back the drift check made,
        and nothing more is sent to the target (reliability Rule 2: every item ends)."""
        planned = [item.id for item in items if item.status is ItemStatus.PLANNED]
        if planned:
            self.journal.set_status(planned, ItemStatus.DRIFTED, reason=reason)
        for item in items:
            if item.status is not ItemStatus.PLANNED:
                self._end_sent_item(item, state, reason)

    def _end_unreadable(
        self, target: FrozenTarget, refused: Refused, items: Sequence[Item]
    ) -> None:
        """A target Graph refuses to read (F18: 403, e.g. a restricted administrative unit):
        its items fail with Graph's answer, nothing is sent to it, and the run goes on."""
        reason = f"Graph refused to read the user ({refused.describe()})"
        planned = [item.id for item in items if item.status is ItemStatus.PLANNED]
        if planned:
            self.journal.set_status(
                planned,
                ItemStatus.FAILED,
                reason=reason,
                http_status=refused.status,
                error_code=refused.code,
                error_message=refused.message,
            )
        for item in items:
            if item.status is not ItemStatus.PLANNED:
                self._end_sent_item(
                    item, None, reason, unreadable=f"{reason}: whether it was applied is unknown"
                )
        self.events.emit("warning", message=f"{target.upn}: {reason}")

    def _end_sent_item(
        self, item: Item, state: UserState | None, reason: str, *, unreadable: str | None = None
    ) -> None:
        options = self.plan_options.get(item.action, {})
        records = self.journal.steps(item.id)
        outcomes: list[Outcome] = []
        done = {r.key for r in records if r.status is StepStatus.SUCCEEDED}
        failed = any(r.status is StepStatus.FAILED for r in records)
        for record in records:
            if record.status not in {StepStatus.UNKNOWN, StepStatus.INTENT}:
                continue
            step = step_for_key(
                item.action, record.key, item.object_id, options, delegated=self.delegated
            )
            since = record.intent_time or item.started or dt.datetime.now(dt.UTC)
            lost_pass = (
                step is not None
                and step.secret is Secret.ACCESS_PASS
                and not self.dispatcher.ctx.secrets.has(str(item.id))
            )
            if (
                state is not None
                and step is not None
                and not lost_pass
                and applied(step, item.action, state, self.plan_options, since)
            ):
                done.add(record.key)
                self.dispatcher.counters.reconciled += 1
                message = "reconciled: the read-back shows it applied"
                status = StepStatus.SUCCEEDED
            else:
                failed = True
                message = (
                    (unreadable or "the user no longer exists")
                    if state is None
                    else f"{reason}; the read-back shows it was not applied; not re-sent"
                )
                status = StepStatus.FAILED
            outcomes.append(
                Outcome(
                    item_id=item.id,
                    step_key=record.key,
                    status=status,
                    error_code=OUTCOME_UNKNOWN if state is None and unreadable else None,
                    error_message=message,
                )
            )
        self.journal.record_outcomes(outcomes)
        left = state is None or any(
            step.key not in done
            for step in behaviour(item.action).steps(state, options, delegated=self.delegated)
        )
        if failed or (done and not left):
            self.journal.finish_item(item.id, reason=reason)
        else:
            # Some steps succeeded, the rest are not sent to a target that changed.
            self.journal.set_status(
                [item.id], ItemStatus.FAILED, reason=f"{reason}; its other steps were not sent"
            )

    def _item_works(self, state: UserState, items: Sequence[Item]) -> list[ItemWork]:
        works: list[ItemWork] = []
        noops: list[tuple[int, str]] = []
        for item in items:
            options = self.plan_options.get(item.action, {})
            records = self.journal.steps(item.id) if item.status is not ItemStatus.PLANNED else []
            done = {r.key for r in records if r.status in {StepStatus.SUCCEEDED, StepStatus.FAILED}}
            unknown = [r for r in records if r.status is StepStatus.UNKNOWN]
            fresh = [
                step
                for step in behaviour(item.action).steps(state, options, delegated=self.delegated)
                if step.key not in done and step.key not in {r.key for r in unknown}
            ]
            if unknown:
                works.append(self._unknown_work(item, unknown, fresh, options))
                continue
            steps = fresh
            if not steps:
                if item.status is ItemStatus.PLANNED:
                    noops.append((item.id, behaviour(item.action).diff(state, options).summary))
                else:
                    self.journal.finish_item(item.id, reason="nothing left to do")
                continue
            work = ItemWork(item_id=item.id, user_id=item.object_id, action=item.action)
            work.steps = [StepWork(item=work, step=step) for step in steps]
            works.append(work)
        for item_id, summary in noops:
            reason = summary if summary.startswith("no-op") else f"no-op: {summary}"
            self.journal.set_status([item_id], ItemStatus.NOOP, reason=reason)
        return works

    def _unknown_work(
        self,
        item: Item,
        unknown: Sequence[StepRecord],
        fresh: Sequence[Step],
        options: Mapping[str, Any],
    ) -> ItemWork:
        """An item with unknown steps: those wait for a read-back (or a poll), the rest after."""
        work = ItemWork(item_id=item.id, user_id=item.object_id, action=item.action)
        for record in unknown:
            step = step_for_key(
                item.action, record.key, item.object_id, options, delegated=self.delegated
            )
            if step is None:
                continue
            blocked = StepWork(item=work, step=step, state=StepState.BLOCKED)
            if record.intent_time is not None:
                self.dispatcher.intent_times.setdefault(item.id, record.intent_time)
            if record.location:
                blocked.state = StepState.IN_FLIGHT
                self.dispatcher.resume_polling(
                    Pending(work=blocked, location=record.location, due=0.0)
                )
            else:
                self.dispatcher.block(blocked)
            work.steps.append(blocked)
        work.steps.extend(StepWork(item=work, step=step) for step in fresh)
        return work

    # -- canary and verification -----------------------------------------------------------

    def _check_canary(self, items: Sequence[Item]) -> str | None:
        ids = [item.id for item in items]
        fresh = [self.journal.item(i) for i in ids]
        bad = [i for i in fresh if i.status in {ItemStatus.FAILED, ItemStatus.UNKNOWN}]
        if bad:
            first = bad[0]
            return (
                f"{len(bad)} of {len(fresh)} canary items failed or stayed unknown "
                f"(first: {first.upn} {first.action}: {first.error_message or first.reason})"
            )
        succeeded = [i for i in fresh if i.status is ItemStatus.SUCCEEDED]
        unverified = self._verify(succeeded)
        if unverified:
            return f"{unverified} of {len(succeeded)} canary items could not be verified"
        return None

    def _verify_all(self) -> None:
        """Read back every succeeded item, a wave of targets at a time: memory stays flat, and
        each wave has `verify_timeout_s` from its own first read."""
        chunk: list[Item] = []
        targets = 0
        for item in self.journal.iter_items(status=ItemStatus.SUCCEEDED):
            if not chunk or item.object_id != chunk[-1].object_id:
                if targets >= self.options.wave_size:
                    self._verify(chunk)
                    chunk, targets = [], 0
                targets += 1
            chunk.append(item)
            if self._stop_requested():
                self.result.interrupted = True
                return
        if chunk:
            self._verify(chunk)

    def _verify(self, items: Sequence[Item]) -> int:
        """Read targets back until every item is verified or the time is up; returns how
        many stayed unverified. Interrupted (SIGINT/SIGTERM), it stops at once and records no
        negative verification: the items not yet verified stay succeeded, for a resume."""
        waiting = [item for item in items if item.status is ItemStatus.SUCCEEDED]
        clock = self.pacer.clock
        deadline = clock.monotonic() + self.options.verify_timeout_s
        since_cache: dict[int, dt.datetime] = {}
        refusals: dict[int, Refused] = {}
        unreadable = 0  # items not verified because Graph refused to read their user
        interval = min(FIRST_VERIFY_INTERVAL_S, self.options.verify_interval_s)
        while waiting:
            needed: frozenset[NeededRead] = frozenset().union(
                *(behaviour(item.action).reads for item in waiting)
            )
            users = sorted({item.object_id for item in waiting})
            states = self.states.read(users, needed)
            results: list[Verification] = []
            still: list[Item] = []
            for item in waiting:
                state = states.get(item.object_id)
                since = since_cache.get(item.id) or self._since(item)
                since_cache[item.id] = since
                if isinstance(state, Refused):
                    # Definitive: waiting would not make Graph show the user.
                    refusals[item.id] = state
                    reason = _unverified_reason(state)
                    results.append(
                        Verification(item_id=item.id, verified=False, detail={"reason": reason})
                    )
                    unreadable += 1
                    continue
                ok = isinstance(state, UserState) and behaviour(item.action).verified(
                    state, self.plan_options.get(item.action, {}), since=since
                )
                if ok:
                    results.append(Verification(item_id=item.id, verified=True))
                else:
                    still.append(item)
            if results:
                self.journal.record_verifications(results)
            waiting = still
            if waiting and self._stop_requested():
                self.result.interrupted = True
                self.result.unverified += unreadable
                return 0
            if not waiting or clock.monotonic() >= deadline:
                break
            clock.sleep(interval)
            interval = min(interval * 2, self.options.verify_interval_s)
        if waiting:
            self.journal.record_verifications(
                [
                    Verification(
                        item_id=item.id,
                        verified=False,
                        detail={"reason": _unverified_reason(refusals.get(item.id))},
                    )
                    for item in waiting
                ]
            )
        self.result.unverified += len(waiting) + unreadable
        return len(waiting) + unreadable

    def _since(self, item: Item) -> dt.datetime:
        known = self.dispatcher.intent_times.get(item.id)
        if known is not None:
            return known
        times = [r.intent_time for r in self.journal.steps(item.id) if r.intent_time is not None]
        return min(times) if times else (item.started or dt.datetime.now(dt.UTC))


def _unverified_reason(refused: Refused | None) -> str:
    if refused is not None:
        return f"Graph refused to read the user back ({refused.describe()})"
    return "the read-back did not show the change in time"
