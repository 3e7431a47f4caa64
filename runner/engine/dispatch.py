"""Sending steps: secrets and intents first, then `$batch`, then outcomes, reconciliation.

The dispatcher runs on one thread (the journal's writer) and hands batches to a small pool of
sender threads. For every batch:

1. a password the runner generates is written to secrets.csv (fsynced) before anything else;
2. the intents are committed to the journal;
3. a sender thread POSTs the `$batch` (only now do bytes leave the machine);
4. a temporary access pass in an answer is written to secrets.csv the moment it is read;
5. each answer is classified (`classify`) and its outcome committed.

A step whose outcome is unknown blocks its user until a read-back says whether it happened
(`reconcile`); a non-repeatable step is then re-sent only when the rules allow it (a
documented "not executed" answer, or a pass Graph generated but we never received).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shlex
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from runner import crash
from runner.actions.base import Secret, Step
from runner.actions.behaviours import behaviour
from runner.engine.classify import (
    MALFORMED,
    MISSING,
    Classified,
    Verdict,
    classify_envelope,
    classify_response,
    classify_transport,
)
from runner.engine.cost import ZERO, Cost, cost_of
from runner.engine.pacer import Pacer
from runner.engine.schedule import Scheduler, StepState, StepWork
from runner.engine.states import Refused, StateReader
from runner.errors import AuthError
from runner.events import EventLog
from runner.graph.auth import claims_challenge
from runner.graph.client import BatchRequest, BatchResult, GraphClient
from runner.graph.facts import GraphResponse, SendState, TransportFailure
from runner.journal import Journal
from runner.runstate import OUTCOME_UNKNOWN, Attempt, Intent, Outcome, StepStatus, TimeSource
from runner.secretfile import SecretKind, SecretsFile
from runner.secrets import generate_password
from runner.state import UserState

RETRY_BUDGET = 500.0
RETRY_COST = 5.0
UNKNOWN_COST = 10.0
POLL_INTERVAL_S = 1.0
# How long an operation is followed before its step is decided by reading the user back.
OPERATION_TIMEOUT_S = 300.0
# A connection refused (nothing sent): every sender pauses, doubling from this up to the cap,
# until an answer comes again; the retry budget, not the step's attempts, ends an outage.
REFUSED_BACKOFF_S = 0.5
REFUSED_BACKOFF_MAX_S = 30.0


class RetryBudgetExhaustedError(Exception):
    """Retries ran out: Graph is failing too much to go on (an outage); the run pauses."""


@dataclass(slots=True, kw_only=True)
class Sent:
    """A step as sent in one batch."""

    work: StepWork
    request: BatchRequest
    intent_time: dt.datetime
    token: int = 0  # the token generation it was sent with (see `Dispatcher._reauthenticate`)


@dataclass(slots=True, kw_only=True)
class Pending:
    """A long-running operation (202 + Location) to poll."""

    work: StepWork
    location: str
    due: float
    since: float | None = None  # when it was first polled (monotonic)


@dataclass(slots=True, kw_only=True)
class Counters:
    """What the summary reports."""

    requests: int = 0
    items_sent: int = 0
    throttled: int = 0
    retries: int = 0
    unknown: int = 0
    reconciled: int = 0


@dataclass(slots=True, kw_only=True)
class Context:
    """The run's fixed inputs the dispatcher needs."""

    journal: Journal
    client: GraphClient
    pacer: Pacer
    secrets: SecretsFile
    events: EventLog
    states: StateReader
    options: Mapping[str, Mapping[str, Any]]  # per action
    delegated: bool
    refresh_token: Callable[[], None]
    # A fresh token for a claims challenge (continuous access evaluation); None: the provider
    # takes no claims and `refresh_token` is used.
    refresh_claims: Callable[[str], None] | None = None
    max_attempts: int = 6
    workers: int = 4
    reconcile_wait_s: float = 10.0
    upns: dict[str, str] = field(default_factory=dict)


class Dispatcher:
    """Drives a `Scheduler` until its users are done, stopped or the run halts."""

    def __init__(self, ctx: Context, *, stop: Callable[[], bool]) -> None:
        self.ctx = ctx
        self._stop = stop
        self.counters = Counters()
        self._budget = RETRY_BUDGET
        self._server_time: dt.datetime | None = None
        self._server_time_at = 0.0  # time.monotonic() when it arrived
        # Steps whose operation could not be followed to its end: it may still complete.
        self._lost_operations: set[int] = set()
        self._pending: list[Pending] = []
        self._blocked_since: dict[int, float] = {}
        self._throttled_steps: set[int] = set()
        self._reissue: set[int] = set()
        self._passwords: dict[int, tuple[str, str]] = {}  # item id → (password, secret_ref)
        self.intent_times: dict[int, dt.datetime] = {}  # item id → first intent of this run
        self._pool = ThreadPoolExecutor(max_workers=ctx.workers, thread_name_prefix="sender")
        self._token = 0  # generation of the token: +1 at each refresh after a 401
        self._token_unproven = False  # the current token came after a 401, none accepted yet
        self._refusals = 0  # requests refused in a row (connection refused: not sent)
        self._lock = threading.Lock()

        self.finished_items = 0
        self.failed_items = 0

    def close(self) -> None:
        """Stop the sender threads."""
        self._pool.shutdown(wait=True)

    def resume_polling(self, pending: Pending) -> None:
        """Poll an operation an earlier process started (never re-send it)."""
        self._pending.append(pending)

    def block(self, work: StepWork) -> None:
        """A step whose outcome is unknown: it waits for a read-back."""
        work.state = StepState.BLOCKED
        self._blocked_since.setdefault(work.item.item_id, self.ctx.pacer.clock.monotonic())

    # -- the loop ---------------------------------------------------------------------------

    def drive(self, scheduler: Scheduler) -> None:
        """Send everything the scheduler holds (returns when done or asked to stop)."""
        in_flight: dict[Future[tuple[list[Sent], list[BatchResult | TransportFailure]]], None] = {}
        clock = self.ctx.pacer.clock
        while True:
            stopping = self._stop()
            self._poll_due()
            pause = 0.0
            while not stopping and len(in_flight) < self.ctx.workers:
                batch = scheduler.next_batch()
                if not batch:
                    break
                cost = _cost(batch)
                pause = self.ctx.pacer.try_acquire(writes=cost.writes, units=cost.units)
                if pause > 0:
                    for work in batch:
                        work.state = StepState.PENDING
                    break
                sent = self._prepare(batch)
                in_flight[self._pool.submit(self._send, sent)] = None
            if in_flight:
                done, _ = wait(
                    list(in_flight), timeout=max(pause, 0.05), return_when=FIRST_COMPLETED
                )
                for future in done:
                    del in_flight[future]
                    sent, results = future.result()
                    try:
                        self._complete(sent, results)
                    except (AuthError, RetryBudgetExhaustedError):
                        self._settle(in_flight)
                        raise
                continue
            if stopping:
                return
            if scheduler.blocked() and self._reconcile(scheduler):
                continue
            if self._pending:
                clock.sleep(max(0.01, min(p.due for p in self._pending) - clock.monotonic()))
                continue
            scheduler.prune()
            if scheduler.idle:
                return
            clock.sleep(max(min(pause, 0.5), 0.005))

    def _settle(
        self,
        in_flight: Mapping[Future[tuple[list[Sent], list[BatchResult | TransportFailure]]], None],
    ) -> None:
        """The run stops: the answers of the batches still in flight are journaled first."""
        for future in list(in_flight):
            sent, results = future.result()
            with contextlib.suppress(AuthError, RetryBudgetExhaustedError):
                self._complete(sent, results)

    # -- before sending ---------------------------------------------------------------------

    def _now(self) -> tuple[dt.datetime, TimeSource]:
        # Graph's clock, not ours: the `Date` of our last answer, or of the reads made right
        # before the first batch (the drift check), so a skewed local clock never dates an
        # intent (reconciliation compares it with Graph's timestamps).
        # The `Date` is advanced by the time since it arrived: after a long pause it would
        # otherwise date an intent minutes early.
        if self._server_time is not None:
            elapsed = time.monotonic() - self._server_time_at
            return self._server_time + dt.timedelta(seconds=elapsed), TimeSource.SERVER
        server = self.ctx.states.reader.server_now()
        if server is not None:
            return server, TimeSource.SERVER
        return dt.datetime.now(dt.UTC), TimeSource.LOCAL

    def _password_for(self, work: StepWork) -> tuple[str, str]:
        item = work.item
        cached = self._passwords.get(item.item_id)
        if cached is not None:
            return cached
        record = self.ctx.secrets.lookup(str(item.item_id))
        if record is not None and record.kind is SecretKind.TEMPORARY_PASSWORD:
            # The same password again: a resend must never set a different one.
            cached = (record.value, record.secret_ref)
        else:
            length = int(self.ctx.options.get(item.action, {}).get("length", 20))
            password = generate_password(length)
            written = self.ctx.secrets.write(
                item_ref=str(item.item_id),
                upn=self.ctx.upns.get(item.user_id, ""),
                object_id=item.user_id,
                action=item.action,
                kind=SecretKind.TEMPORARY_PASSWORD,
                value=password,
            )
            cached = (password, written.secret_ref)
        self._passwords[item.item_id] = cached
        return cached

    def _prepare(self, batch: Sequence[StepWork]) -> list[Sent]:
        now, source = self._now()
        sent: list[Sent] = []
        intents: list[Intent] = []
        for index, work in enumerate(batch):
            step = work.step
            body = dict(step.body) if step.body is not None else None
            secret_ref = None
            if step.secret is Secret.PASSWORD:
                password, secret_ref = self._password_for(work)
                body = _with_password(step, password)
            intent_id = str(uuid.uuid4())
            request = BatchRequest(
                id=str(index + 1),
                method=step.method,
                url=step.path,
                body=body,
                headers={"client-request-id": intent_id},
            )
            intents.append(
                Intent(
                    item_id=work.item.item_id,
                    step_key=step.key,
                    intent_id=intent_id,
                    intent_time=now,
                    time_source=source,
                    label=step.label,
                    secret_ref=secret_ref,
                    reissue=work.item.item_id in self._reissue,
                )
            )
            self.intent_times.setdefault(work.item.item_id, now)
            work.attempts += 1
            sent.append(Sent(work=work, request=request, intent_time=now, token=self._token))
        self.ctx.journal.record_intents(intents)
        for work in batch:
            self._reissue.discard(work.item.item_id)
        return sent

    # -- sending (sender threads) -----------------------------------------------------------

    def _send(self, sent: list[Sent]) -> tuple[list[Sent], list[BatchResult | TransportFailure]]:
        by_version: dict[str, list[Sent]] = {}
        for item in sent:
            by_version.setdefault(item.work.step.version, []).append(item)
        ordered: list[Sent] = []
        results: list[BatchResult | TransportFailure] = []
        for version, group in by_version.items():
            ordered.extend(group)
            try:
                result: BatchResult | TransportFailure = self.ctx.client.batch(
                    [item.request for item in group], version=version
                )
            except TransportFailure as exc:
                result = exc
            crash.crash_point("after_send_before_outcome")
            results.extend([result] * len(group))
        return ordered, results

    # -- after the answer -------------------------------------------------------------------

    def _complete(
        self, sent: list[Sent], results: Sequence[BatchResult | TransportFailure]
    ) -> None:
        verdicts: list[tuple[Sent, Classified, GraphResponse | None]] = []
        seen: set[int] = set()
        for item, result in zip(sent, results, strict=True):
            if id(result) not in seen:
                seen.add(id(result))
                self.counters.requests += 1
                self._back_off(result)
            verdicts.append((item, *self._verdict(item, result)))
        # A pass Graph generated is written before anything else happens with the answer.
        tap_refs: dict[int, str] = {}
        for item, verdict, response in verdicts:
            if verdict.verdict is Verdict.DONE and item.work.step.secret is Secret.ACCESS_PASS:
                tap_refs[item.work.item.item_id] = self._keep_pass(item, response)
        outcomes: list[Outcome] = []
        not_executed: list[Attempt] = []
        pending: list[Attempt] = []
        unknown: list[tuple[int, str]] = []
        refused: list[tuple[Sent, Classified, GraphResponse | None]] = []
        throttled = False
        for item, verdict, response in verdicts:
            if verdict.verdict is Verdict.REAUTH:
                refused.append((item, verdict, response))
            elif verdict.status is not None and item.token == self._token:
                self._token_unproven = False  # Graph accepted the current token
            work = item.work
            step = work.step
            self.counters.items_sent += 1
            if verdict.verdict is Verdict.DONE and step.poll and verdict.status == 202:
                location = _location(_response(verdict, item, results))
                if location:
                    pending.append(_attempt(work, verdict, location=location))
                    self._pending.append(
                        Pending(work=work, location=location, due=self.ctx.pacer.clock.monotonic())
                    )
                    continue
                verdict = Classified(
                    verdict=Verdict.UNKNOWN, status=202, message="202 without Location"
                )
            match verdict.verdict:
                case Verdict.DONE:
                    self._budget = min(RETRY_BUDGET, self._budget + 1)
                    work.state = StepState.DONE
                    outcomes.append(
                        _outcome(
                            work, verdict, StepStatus.SUCCEEDED, tap_refs.get(work.item.item_id)
                        )
                    )
                case Verdict.FAILED:
                    work.state = StepState.FAILED
                    outcomes.append(_outcome(work, verdict, StepStatus.FAILED))
                case Verdict.DEFER if not work.deferred:
                    work.deferred = True
                    work.state = StepState.PENDING
                    not_executed.append(_attempt(work, verdict))
                case Verdict.DEFER:
                    work.state = StepState.FAILED
                    outcomes.append(_outcome(work, verdict, StepStatus.FAILED))
                case Verdict.REAUTH | Verdict.NOT_SENT | Verdict.THROTTLED:
                    throttled = throttled or verdict.verdict is Verdict.THROTTLED
                    not_executed.append(_attempt(work, verdict))
                    self._retry(work, verdict)
                case Verdict.UNKNOWN:
                    self.counters.unknown += 1
                    self._spend(UNKNOWN_COST)
                    work.state = StepState.BLOCKED
                    self._blocked_since[work.item.item_id] = self.ctx.pacer.clock.monotonic()
                    unknown.append((work.item.item_id, step.key))
        journal = self.ctx.journal
        if not_executed:
            journal.record_not_executed(not_executed)
        if pending:
            journal.record_pending(pending)
        if unknown:
            journal.mark_unknown(unknown, reason="the request may have been executed; reading back")
        self._record(outcomes, [item.work for item in sent])
        if throttled:
            self.counters.throttled += 1
        self._emit_batch(verdicts)
        if refused:
            self._reauthenticate(refused)
        if self._budget <= 0:
            msg = "retries ran out: Graph failed too many requests in a row"
            raise RetryBudgetExhaustedError(msg)

    def _record(self, outcomes: Sequence[Outcome], works: Sequence[StepWork]) -> None:
        """Commit outcomes, ending the items whose steps are all over, and count them."""
        if not outcomes:
            return
        flagged = finish_flags(outcomes, works)
        self.ctx.journal.record_outcomes(flagged)
        finished, failed = finished_counts(flagged, works)
        self.finished_items += finished
        self.failed_items += failed

    def _verdict(
        self, item: Sent, result: BatchResult | TransportFailure
    ) -> tuple[Classified, GraphResponse | None]:
        if isinstance(result, TransportFailure):
            return classify_transport(result), None
        envelope = result.envelope
        if envelope.server_date is not None:
            self._server_time = envelope.server_date
            self._server_time_at = time.monotonic()
        if envelope.status != 200:
            classified = classify_envelope(envelope)
            self._pace(classified, write=_is_write(item.work.step))
            return classified, envelope
        if result.malformed:
            return MALFORMED, None
        response = result.items.get(item.request.id)
        if response is None:
            return MISSING, None
        self.ctx.pacer.observed(response.throttle_percentage)
        classified = classify_response(item.work.step, response)
        self._pace(classified, write=_is_write(item.work.step))
        return classified, response

    def _pace(self, classified: Classified, *, write: bool) -> None:
        if classified.verdict is Verdict.THROTTLED:
            if classified.status == 429:
                self.ctx.pacer.throttled(classified.retry_after_s, write=write, detail="429")
            else:
                self.ctx.pacer.pause(classified.retry_after_s or 2.0, detail=str(classified.status))
            self.ctx.events.emit(
                "throttled", status=classified.status, retry_after=classified.retry_after_s
            )
        elif classified.verdict is Verdict.NOT_SENT and classified.status in {424, 503}:
            self.ctx.pacer.pause(classified.retry_after_s or 2.0, detail=str(classified.status))

    def _retry(self, work: StepWork, verdict: Classified) -> None:
        """A step proved not executed (429, 503 with Retry-After, an envelope 424/429/503, a
        401, a refused connection) goes again. It uses none of the step's attempts, only the
        run's retry budget: when that runs out the run halts (exit 4), the step resendable."""
        self.counters.retries += 1
        self._spend(RETRY_COST)
        work.attempts -= 1
        if verdict.verdict is Verdict.THROTTLED and not behaviour(work.item.action).repeatable:
            # Documented as not executed, but read back before sending it again (reliability §1.3).
            work.state = StepState.BLOCKED
            self._throttled_steps.add(id(work))
            self._blocked_since[work.item.item_id] = self.ctx.pacer.clock.monotonic()
            return
        work.state = StepState.PENDING

    def _back_off(self, result: BatchResult | TransportFailure) -> None:
        """Pause every sender after a refused connection, longer each time in a row."""
        if not isinstance(result, TransportFailure) or result.state is not SendState.NOT_SENT:
            self._refusals = 0
            return
        self._refusals += 1
        seconds = min(REFUSED_BACKOFF_S * 2 ** (self._refusals - 1), REFUSED_BACKOFF_MAX_S)
        self.ctx.pacer.pause(seconds, detail="connection refused")

    def _reauthenticate(
        self, refused: Sequence[tuple[Sent, Classified, GraphResponse | None]]
    ) -> None:
        """After 401s (their steps already journaled as not executed): a fresh token, with the
        claims Graph asks for, once; a 401 to the fresh token stops the run (exit 5)."""
        current = [r for r in refused if r[0].token == self._token]
        if not current:
            return  # sent with a token already replaced: the resend uses the fresh one
        _, verdict, response = current[0]
        reason = f"{verdict.status} {verdict.code}: {verdict.message}" if verdict.code else "401"
        if self._token_unproven:
            run_dir = self.ctx.journal.path.parent
            msg = f"Graph refused a freshly acquired token too ({reason})"
            raise AuthError(
                msg,
                hint="sign in again (or check the app's credentials), then "
                f"`entra-bulk apply --resume {shlex.quote(str(run_dir))}`: "
                "what was not sent is sent then",
            )
        claims = claims_challenge(response.header("www-authenticate") if response else None)
        if claims is not None and self.ctx.refresh_claims is not None:
            self.ctx.refresh_claims(claims)
        else:
            self.ctx.refresh_token()
        self._token += 1
        self._token_unproven = True

    def _spend(self, cost: float) -> None:
        # Raised by `_complete` once the whole answer is journaled: raising here would leave
        # the rest of the batch in `intent` without the proof that it was not executed.
        self._budget -= cost

    def _keep_pass(self, item: Sent, response: GraphResponse | None) -> str:
        body = response.body if response is not None and isinstance(response.body, dict) else {}
        value = str(body.get("temporaryAccessPass") or "")
        if not value:
            return ""
        start = body.get("startDateTime")
        minutes = body.get("lifetimeInMinutes")
        valid_until = None
        if isinstance(start, str) and isinstance(minutes, int):
            began = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
            valid_until = began + dt.timedelta(minutes=minutes)
        record = self.ctx.secrets.write(
            item_ref=str(item.work.item.item_id),
            upn=self.ctx.upns.get(item.work.item.user_id, ""),
            object_id=item.work.item.user_id,
            action=item.work.item.action,
            kind=SecretKind.TEMPORARY_ACCESS_PASS,
            value=value,
            valid_until=valid_until,
        )
        body.pop("temporaryAccessPass", None)
        return record.secret_ref

    def _emit_batch(
        self, verdicts: Sequence[tuple[Sent, Classified, GraphResponse | None]]
    ) -> None:
        tally: dict[str, int] = {}
        for _, verdict, _ in verdicts:
            tally[str(verdict.verdict)] = tally.get(str(verdict.verdict), 0) + 1
        self.ctx.events.emit("batch", items=len(verdicts), verdicts=tally)

    # -- long-running operations (delegated resetPassword) -----------------------------------

    def _poll_due(self) -> None:
        if not self._pending:
            return
        now = self.ctx.pacer.clock.monotonic()
        due = [p for p in self._pending if p.due <= now]
        lost: list[tuple[Pending, str]] = []
        for pending in due:
            if pending.since is None:
                pending.since = now
            self.ctx.pacer.acquire(writes=0, units=1)
            try:
                response = self.ctx.client.request("GET", "", absolute_url=pending.location)
            except TransportFailure:
                response = None
            status = (
                response.body.get("status")
                if response is not None and isinstance(response.body, dict)
                else None
            )
            if response is not None and response.status in {400, 403, 404, 410}:
                # The operation cannot be followed (expired, gone, not ours to read).
                lost.append((pending, f"Graph answered {response.status} for the operation"))
                continue
            if now - pending.since >= OPERATION_TIMEOUT_S:
                lost.append((pending, f"the operation did not end in {OPERATION_TIMEOUT_S:.0f} s"))
                continue
            if response is None:
                pending.due = now + POLL_INTERVAL_S
                continue
            if response.status == 200 and status in {"succeeded", "failed"}:
                self._pending.remove(pending)
                work = pending.work
                final = StepStatus.SUCCEEDED if status == "succeeded" else StepStatus.FAILED
                work.state = StepState.DONE if status == "succeeded" else StepState.FAILED
                classified = Classified.of(
                    Verdict.DONE if status == "succeeded" else Verdict.FAILED,
                    response,
                    None
                    if status == "succeeded"
                    else f"the operation failed: {response.body.get('statusDetail')}",
                )
                self._record([_outcome(work, classified, final)], [work])
            else:
                wait_s = response.retry_after_s or POLL_INTERVAL_S
                pending.due = now + wait_s
        for pending, why in lost:
            # Never re-sent: the read-back decides whether the change was made.
            self._pending.remove(pending)
            self._lost_operations.add(id(pending.work))
            self.counters.unknown += 1
            self.block(pending.work)
            self.ctx.journal.mark_unknown(
                [(pending.work.item.item_id, pending.work.step.key)],
                reason=f"{why}; reading the user back",
            )

    # -- reconciliation ---------------------------------------------------------------------

    def _decide(
        self, work: StepWork, state: UserState | Refused | None, now: float
    ) -> tuple[StepState, str] | None:
        """What a blocked step becomes after its read-back, and why (None: keep waiting)."""
        item = work.item
        throttled = id(work) in self._throttled_steps
        if isinstance(state, Refused):
            return StepState.FAILED, (
                f"Graph refused to read the user back ({state.describe()}); not sent again"
            )
        if state is None:
            return StepState.FAILED, "the user no longer exists"
        since = self.intent_times.get(item.item_id, dt.datetime.now(dt.UTC))
        done = applied(work.step, item.action, state, self.ctx.options, since)
        if work.step.secret is Secret.ACCESS_PASS and not self.ctx.secrets.has(str(item.item_id)):
            # Graph generated a pass we never received: a new one replaces it (product-spec §5).
            self._reissue.add(item.item_id)
            return StepState.PENDING, ""
        if done:
            self.counters.reconciled += 1
            return StepState.DONE, "reconciled: the read-back shows it applied"
        if throttled or behaviour(item.action).repeatable:
            if work.attempts >= self.ctx.max_attempts:
                return StepState.FAILED, (
                    f"gave up after {work.attempts} attempts whose outcome stayed unknown "
                    "(the read-back shows it not applied)"
                )
            return StepState.PENDING, ""
        if now - self._blocked_since.get(item.item_id, now) >= self.ctx.reconcile_wait_s:
            return StepState.FAILED, (
                "the outcome was unknown and the read-back shows it was not applied; "
                "not re-sent automatically (re-plan to retry)"
            )
        return None

    def _reconcile(self, scheduler: Scheduler) -> bool:
        """Read back users with blocked steps and decide each; True when anything moved."""
        blocked = scheduler.blocked()
        users = sorted({work.item.user_id for work in blocked})
        needed = frozenset().union(*(behaviour(w.item.action).reads for w in blocked))
        states = self.ctx.states.read(users, needed)
        moved = False
        outcomes: list[Outcome] = []
        now = self.ctx.pacer.clock.monotonic()
        for work in blocked:
            state = states.get(work.item.user_id)
            decision = self._decide(work, state, now)
            if decision is None:
                continue
            # Failed without a read-back that can be trusted: the change may be in effect.
            unsure = isinstance(state, Refused) or id(work) in self._lost_operations
            moved = True
            work.state, message = decision
            self._throttled_steps.discard(id(work))
            if work.state is StepState.DONE:
                outcomes.append(
                    _outcome(
                        work,
                        Classified(verdict=Verdict.DONE, message=message),
                        StepStatus.SUCCEEDED,
                    )
                )
            elif work.state is StepState.FAILED:
                code = OUTCOME_UNKNOWN if unsure else None
                failed = Classified(verdict=Verdict.FAILED, code=code, message=message)
                outcomes.append(_outcome(work, failed, StepStatus.FAILED))
        self._record(outcomes, blocked)
        if not moved:
            self.ctx.pacer.clock.sleep(POLL_INTERVAL_S)
        return True


def applied(
    step: Step,
    action: str,
    state: UserState,
    options: Mapping[str, Mapping[str, Any]],
    since: dt.datetime,
) -> bool:
    """Whether the read-back `state` shows `step` applied (since `since`)."""
    if step.method == "DELETE" and "/authentication/" in step.path:
        method_id = step.path.rsplit("/", 1)[-1]
        return state.methods is not None and all(m.id != method_id for m in state.methods)
    return behaviour(action).verified(state, options.get(action, {}), since=since)


def _with_password(step: Step, password: str) -> dict[str, Any]:
    body = dict(step.body or {})
    if step.method == "PATCH":
        profile = dict(body.get("passwordProfile") or {})
        profile["password"] = password
        body["passwordProfile"] = profile
    else:
        body["newPassword"] = password
    return body


def _is_write(step: Step) -> bool:
    return step.method in {"POST", "PATCH", "PUT", "DELETE"}


def _cost(batch: Sequence[StepWork]) -> Cost:
    total = ZERO
    for work in batch:
        total = total + cost_of(work.step.method, work.step.path)
    return total


def _location(response: GraphResponse | None) -> str | None:
    return response.header("location") if response is not None else None


def _response(
    verdict: Classified, item: Sent, results: Sequence[BatchResult | TransportFailure]
) -> GraphResponse | None:
    for result in results:
        if isinstance(result, BatchResult):
            found = result.items.get(item.request.id)
            if found is not None:
                return found
    return None


def _attempt(work: StepWork, verdict: Classified, *, location: str | None = None) -> Attempt:
    return Attempt(
        item_id=work.item.item_id,
        step_key=work.step.key,
        http_status=verdict.status,
        error_code=verdict.code,
        error_message=verdict.message,
        request_id=verdict.request_id,
        location=location,
    )


def _outcome(
    work: StepWork,
    verdict: Classified,
    status: StepStatus,
    secret_ref: str | None = None,
    *,
    message: str | None = None,
) -> Outcome:
    return Outcome(
        item_id=work.item.item_id,
        step_key=work.step.key,
        status=status,
        http_status=verdict.status,
        error_code=verdict.code,
        error_message=message or verdict.message,
        request_id=verdict.request_id,
        secret_ref=secret_ref or None,
    )


def finished_counts(outcomes: Sequence[Outcome], works: Sequence[StepWork]) -> tuple[int, int]:
    """(items finished, of which failed) by these outcomes."""
    by_id = {work.item.item_id: work.item for work in works}
    finished = [by_id[o.item_id] for o in outcomes if o.finish_item and o.item_id in by_id]
    failed = sum(1 for item in finished if any(s.state is StepState.FAILED for s in item.steps))
    return len(finished), failed


def finish_flags(outcomes: Sequence[Outcome], works: Sequence[StepWork]) -> list[Outcome]:
    """Mark the last outcome of each item whose steps are all over, so the journal ends the
    item in the same transaction."""
    finished = {work.item.item_id for work in works if work.item.finished}
    last: dict[int, int] = {}
    for index, outcome in enumerate(outcomes):
        last[outcome.item_id] = index
    return [
        replace(outcome, finish_item=True)
        if outcome.item_id in finished and last[outcome.item_id] == index
        else outcome
        for index, outcome in enumerate(outcomes)
    ]
