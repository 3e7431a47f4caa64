"""A run's report as data, from the journal's records alone: rows, tallies, timeline figures
and the run's outcome. Pure: records in, records out; `runner/report.py` does the I/O.

The outcome (`assess`) is what `apply` would have exited with, read back from the journal:
`entra-bulk status` prints it, and every report carries it, with the exact next commands.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.errors import ExitCode
from runner.runstate import OUTCOME_UNKNOWN, Event, Item, ItemStatus, LockInfo, Orphan, stamp

COLUMNS: tuple[str, ...] = (
    "item",
    "upn",
    "object_id",
    "display_name",
    "action",
    "status",
    "verified",
    "reason",
    "planned",
    "http_status",
    "error_code",
    "error_message",
    "request_id",
    "attempts",
    "started",
    "finished",
    "verified_at",
    "secret_ref",
    "secret_state",
    "confirmed_by",
    "ticket",
    "target_ticket",
    "note",
)
NUMBER_COLUMNS = frozenset({"item", "http_status", "attempts"})
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# Statuses in the order reports show them: done, left alone, needing a person, not finished.
STATUS_ORDER: tuple[ItemStatus, ...] = (
    ItemStatus.VERIFIED,
    ItemStatus.SUCCEEDED,
    ItemStatus.CONFIRMED,
    ItemStatus.NOOP,
    ItemStatus.MANUAL,
    ItemStatus.FAILED,
    ItemStatus.UNKNOWN,
    ItemStatus.DRIFTED,
    ItemStatus.REFUSED,
    ItemStatus.SKIPPED,
    ItemStatus.PLANNED,
    ItemStatus.INTENT,
)
RETRY_STATUSES = frozenset({ItemStatus.FAILED, ItemStatus.DRIFTED})  # re-planned: failed.*
UNSETTLED_STATUSES = frozenset({ItemStatus.UNKNOWN, ItemStatus.INTENT})  # reconciled: resume
RUN_COMMANDS = ("apply", "apply --resume")  # the lock events that start a run
RUNNING_STATES = frozenset({"running", "locked by another host"})
APPLIED_STATUSES = frozenset({ItemStatus.SUCCEEDED, ItemStatus.VERIFIED})
# What a row of secrets.csv is worth, by the status of its item (`secret_state` in reports):
# the file is written before the request, so it also keeps passwords that were never set.
SECRET_IN_EFFECT = "in effect"  # noqa: S105 - a state, not a secret
SECRET_NEVER_SET = "never set"  # noqa: S105 - a state, not a secret
SECRET_UNSETTLED = "unsettled"  # noqa: S105 - a state, not a secret
SECRET_UNCERTAIN = "may be in effect"  # noqa: S105 - a state, not a secret


def neutralise(value: Any) -> str:
    """A spreadsheet cell that cannot run as a formula: text starting with `= + - @`, tab or
    CR gets a leading `'` (OWASP's CSV-injection advice)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def row(item: Item, *, plan_ticket: str | None) -> dict[str, Any]:
    """One report row: a (target, action) with every field of product-spec section 8."""
    by = item.detail.get("by") if item.status is ItemStatus.CONFIRMED else None
    return {
        "item": item.id,
        "upn": item.upn,
        "object_id": item.object_id,
        "display_name": item.display_name,
        "action": item.action,
        "status": str(item.status),
        "verified": item.verified,
        "reason": _reason(item),
        "planned": item.summary,
        "http_status": item.http_status,
        "error_code": item.error_code,
        "error_message": item.error_message,
        "request_id": item.request_id,
        "attempts": item.attempts,
        "started": _time(item.started),
        "finished": _time(item.finished),
        "verified_at": _time(item.verified_at),
        "secret_ref": item.secret_ref,
        "secret_state": secret_state(item),
        "confirmed_by": None if by is None else str(by),
        "ticket": plan_ticket,
        "target_ticket": item.ticket,
        "note": item.note,
    }


def _reason(item: Item) -> str | None:
    """The item's reason; for a change Graph accepted but the read-back did not show, why."""
    if item.reason or item.verified is not False:
        return item.reason
    verification = item.detail.get("verification")
    why = verification.get("reason") if isinstance(verification, Mapping) else None
    return f"not verified: {why}" if why else item.reason


def _time(moment: dt.datetime | None) -> str | None:
    return None if moment is None else stamp(moment)


def secret_state(item: Item) -> str | None:
    """Whether the item's row of secrets.csv is in effect (its change was applied), was never
    set (the item failed or was skipped: the row must not be handed over), or is unsettled (a
    resume reads it back or sends it); None for an item without a secret."""
    if item.secret_ref is None:
        return None
    if item.status in APPLIED_STATUSES:
        return SECRET_IN_EFFECT
    if item.status in UNSETTLED_STATUSES or item.status is ItemStatus.PLANNED:
        return SECRET_UNSETTLED
    if item.error_code == OUTCOME_UNKNOWN:
        return SECRET_UNCERTAIN
    return SECRET_NEVER_SET


def unverified(item: Item) -> bool:
    """Graph accepted the change but the read-back did not show it (yet)."""
    return item.status is ItemStatus.SUCCEEDED and item.verified is False


@dataclass(slots=True)
class Tally:
    """What one pass over the items gathers (lists only of the items that need a person)."""

    counts: dict[str, int] = field(default_factory=lambda: {str(s): 0 for s in ItemStatus})
    by_action: dict[str, dict[str, int]] = field(default_factory=dict)
    unverified: int = 0
    secrets: int = 0  # rows of secrets.csv in effect: the ones to hand over
    secrets_never_set: list[Item] = field(default_factory=list)
    secrets_unsettled: list[Item] = field(default_factory=list)
    secrets_uncertain: list[Item] = field(default_factory=list)
    max_attempts: int = 0
    sent_finished: list[dt.datetime] = field(default_factory=list)
    retry: list[Item] = field(default_factory=list)
    unsettled: list[Item] = field(default_factory=list)
    not_sent: list[Item] = field(default_factory=list)  # turned away unexecuted: resume sends
    manual: list[Item] = field(default_factory=list)
    first_started: dt.datetime | None = None

    def add(self, item: Item, *, not_sent: bool = False) -> None:
        """Count one item (`not_sent`: its open requests were proved not executed)."""
        status = str(item.status)
        self.counts[status] += 1
        per = self.by_action.setdefault(item.action, {})
        per[status] = per.get(status, 0) + 1
        self.unverified += unverified(item)
        state = secret_state(item)
        if state == SECRET_IN_EFFECT:
            self.secrets += 1
        elif state == SECRET_NEVER_SET:
            self.secrets_never_set.append(item)
        elif state == SECRET_UNSETTLED:
            self.secrets_unsettled.append(item)
        elif state == SECRET_UNCERTAIN:
            self.secrets_uncertain.append(item)
        self.max_attempts = max(self.max_attempts, item.attempts)
        if item.attempts and item.finished is not None:
            self.sent_finished.append(item.finished)
        if item.status in RETRY_STATUSES:
            self.retry.append(item)
        elif item.status is ItemStatus.INTENT and not_sent:
            self.not_sent.append(item)
        elif item.status in UNSETTLED_STATUSES:
            self.unsettled.append(item)
        if item.initial_status is ItemStatus.MANUAL:
            self.manual.append(item)
        if item.started is not None and (
            self.first_started is None or item.started < self.first_started
        ):
            self.first_started = item.started

    @property
    def secret_rows(self) -> int:
        """Items with a row in secrets.csv, in effect or not."""
        return (
            self.secrets
            + len(self.secrets_never_set)
            + len(self.secrets_unsettled)
            + len(self.secrets_uncertain)
        )

    @property
    def total(self) -> int:
        """Items in the run."""
        return sum(self.counts.values())


def tally(items: Iterable[Item], *, not_sent: Collection[int] = frozenset()) -> Tally:
    """A `Tally` of every item; `not_sent` holds the items whose open requests Graph turned
    away unexecuted (`not_sent_ids`): they are not unknown, a resume sends them."""
    result = Tally()
    for item in items:
        result.add(item, not_sent=item.id in not_sent)
    return result


def not_sent_ids(orphans: Iterable[Orphan]) -> frozenset[int]:
    """Items in `intent` whose every open request ended in an answer proving it was not
    executed (a 429, a 503 with Retry-After, a 401, an outer 424: the journal's `resend_ok`),
    from `Journal.orphaned_intents()`. A request with no such answer may be in flight."""
    proved: set[int] = set()
    maybe: set[int] = set()
    for orphan in orphans:
        (proved if orphan.resend_ok else maybe).add(orphan.item_id)
    return frozenset(proved - maybe)


def count_text(counts: Mapping[str, int]) -> str:
    """`8 verified, 1 noop, 3 manual` in report order, zeros left out (`none` when empty)."""
    parts = [f"{counts[str(s)]} {s}" for s in STATUS_ORDER if counts.get(str(s))]
    return ", ".join(parts) or "none"


def lock_command(event: Event) -> str:
    """The command of a lock event (`apply`, `apply --resume`, `confirm`), or `""`."""
    new = event.detail.get("new")
    return str(new.get("command", "")) if isinstance(new, Mapping) else ""


# --- the outcome -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How the run stands: the exit code `apply` gives for it, and what to do next."""

    code: int | None  # None while a process holds the run, or when no exit is known
    state: str
    meaning: str
    next_steps: tuple[str, ...] = ()

    @property
    def code_text(self) -> str:
        """`exit 1`, `still running`, or `no exit recorded`."""
        if self.code is not None:
            return f"exit {self.code}"
        return "still running" if self.state in RUNNING_STATES else "no exit recorded"

    def as_json(self) -> dict[str, Any]:
        """For report.json and `status --format json`."""
        return {
            "exit_code": self.code,
            "state": self.state,
            "meaning": self.meaning,
            "next": list(self.next_steps),
        }


def crash_log(names: Iterable[str], events: Sequence[Event]) -> str | None:
    """The traceback file (`crash-STAMP-PID.log`, from the error boundary) that the last
    apply process of the run left in its folder, among the folder's file `names`; or None."""
    starts = [
        e
        for e in events
        if e.kind in {"lock_acquired", "lock_takeover"} and lock_command(e).startswith(RUN_COMMANDS)
    ]
    if not starts:
        return None
    new = starts[-1].detail.get("new")
    pid = new.get("pid") if isinstance(new, Mapping) else None
    since = starts[-1].time.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    found = sorted(
        name
        for name in names
        if name.startswith("crash-")
        and name.endswith(f"-{pid}.log")
        and name[len("crash-") : len("crash-") + len(since)] >= since
    )
    return found[-1] if found else None


def _since_last_run(events: Sequence[Event]) -> Sequence[Event]:
    starts = [
        index
        for index, event in enumerate(events)
        if event.kind in {"lock_acquired", "lock_takeover"}
        and lock_command(event).startswith(RUN_COMMANDS)
    ]
    return events[starts[-1] :] if starts else events


# The exits of a run that stopped before its end: how `status` names them, and why.
_STOPPED = {
    int(ExitCode.INTERRUPTED): (
        "interrupted",
        "interrupted (Ctrl-C or SIGTERM); what was in flight is recorded",
    ),
    int(ExitCode.AUTH): (
        "stopped: sign-in or permission",
        "a token or a permission failed mid-run (the run's error output says which)",
    ),
    int(ExitCode.STORAGE): (
        "stopped: local storage error",
        "the journal, the run folder or the secrets file could not be written",
    ),
    int(ExitCode.HALTED): ("halted", "the run halted"),
    int(ExitCode.REFUSED): ("refused", "the run was refused"),
    int(ExitCode.INVALID_INPUT): ("stopped: invalid input", "the run was given invalid input"),
}


# Exits that end a process before the run's end, whatever the counts say.
_EARLY = frozenset(
    {
        int(ExitCode.HALTED),
        int(ExitCode.INTERRUPTED),
        int(ExitCode.AUTH),
        int(ExitCode.STORAGE),
        int(ExitCode.INTERNAL),
    }
)


def assess(
    counts: Mapping[str, int],
    *,
    unverified: int,
    events: Sequence[Event],
    run_dir: str,
    lock: LockInfo | None = None,
    lock_alive: bool | None = None,
    crash_log: str | None = None,
) -> Outcome:
    """The run's outcome from its counts, its timeline and its lock (`crash_log`: the
    traceback file the last run's process left, from `crash_log`)."""
    run = shlex.quote(run_dir)
    resume = f"entra-bulk apply --resume {run}"
    n = {str(s): counts.get(str(s), 0) for s in ItemStatus}
    unfinished = n["planned"] + n["intent"]
    manual = [f"entra-bulk confirm {run} ITEM... (see manual-steps.md)"] if n["manual"] else []
    if lock is not None and lock_alive is not False:
        where = "running" if lock_alive else "locked by another host"
        return Outcome(
            code=None,
            state=where,
            meaning=f"{lock.command} holds the run: {lock.describe()}",
            next_steps=(f"entra-bulk status {run}",),
        )
    latest = _since_last_run(events)
    halts = [e for e in latest if e.kind == "halt"]
    aborts = [e for e in latest if e.kind == "drift_abort"]
    if aborts and (unfinished or n["unknown"]):
        detail = aborts[-1].detail
        return Outcome(
            code=int(ExitCode.REFUSED),
            state="aborted on drift",
            meaning=f"{detail.get('upn', '')}: {detail.get('reason', '')}",
            next_steps=("re-plan the plan file, have it approved, and apply the new plan",),
        )
    if halts and (unfinished or n["unknown"]):
        return Outcome(
            code=int(ExitCode.HALTED),
            state="halted",
            meaning=str(halts[-1].detail.get("reason", "")),
            next_steps=(resume,),
        )
    # A process that ends by itself records its exit (`run_ended`) and releases the lock; one
    # that is killed records nothing and leaves the lock. A bug leaves a file behind.
    endings = [e for e in latest if e.kind == "run_ended"]
    code = endings[-1].detail.get("exit") if endings else None
    stopped = code in _EARLY
    if unfinished or stopped:
        # Stopped early with every item sent: some may still wait for their read-back.
        left = f"{unfinished} items not finished" if unfinished else "verification not finished"
        if isinstance(code, int) and code in _STOPPED:
            state, why = _STOPPED[code]
            if code == ExitCode.HALTED and halts:
                why = f"halted: {halts[-1].detail.get('reason', '')}"
            return Outcome(
                code=code,
                state=state,
                meaning=f"{left}; {why}",
                next_steps=(resume,),
            )
        if crash_log is not None or code == ExitCode.INTERNAL:
            where = f"the traceback is in {crash_log}" if crash_log else "see its error output"
            return Outcome(
                code=int(ExitCode.INTERNAL),
                state="crashed",
                meaning=f"{left}; an internal error stopped the run (a bug: {where})",
                next_steps=(resume,),
            )
        if lock is not None:
            why = f"the process is gone ({lock.describe()}) and recorded no exit: it was killed"
        else:
            why = (
                "its process ended without recording why: an interruption or an error it "
                "printed (no exit code is recorded)"
            )
        return Outcome(
            code=None,
            state="stopped without finishing",
            meaning=f"{left}; {why}",
            next_steps=(resume,),
        )
    problems = []
    steps: list[str] = []
    if n["unknown"]:
        problems.append(f"{n['unknown']} unknown")
        steps.append(f"{resume}  (reads the unknown outcomes back; never re-sends blindly)")
    if n["failed"]:
        problems.append(f"{n['failed']} failed")
    if unverified:
        problems.append(f"{unverified} not verified")
    if n["failed"] or n["drifted"]:
        steps.append(f"entra-bulk plan {shlex.quote(run_dir + '/failed.yaml')}  (re-plan them)")
    if problems:
        return Outcome(
            code=int(ExitCode.FINISHED_WITH_FAILURES),
            state="finished with failures",
            meaning=", ".join(problems) + " (the report says which)",
            next_steps=(*steps, *manual),
        )
    done = sum(n[str(s)] for s in (ItemStatus.VERIFIED, ItemStatus.SUCCEEDED))
    meaning = "everything applied and verified" if done else "no change was needed"
    if n["drifted"]:
        meaning += f"; {n['drifted']} drifted items skipped (their targets changed)"
    return Outcome(
        code=int(ExitCode.SUCCESS),
        state="succeeded" if done else "nothing to do",
        meaning=meaning,
        next_steps=(*steps, *manual),
    )
