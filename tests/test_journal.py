"""The journal: creation, the state machine, the intent protocol, resume, events, storage errors."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.errors import ExitCode, StorageError
from runner.frozen import FrozenPlan
from runner.journal import JOURNAL_NAME, Journal, NotLockedError
from runner.runstate import (
    ITEM_TRANSITIONS,
    STEP_TRANSITIONS,
    Attempt,
    IllegalTransitionError,
    ItemStatus,
    Outcome,
    StepStatus,
    TimeSource,
    Verification,
    check_item,
    check_step,
    derive_item_status,
    header_from_plan,
    specs_from_plan,
)
from runner.secrets import REDACTED, register_secret
from tests.journal_support import (
    START,
    Clock,
    assert_chains,
    header,
    intent,
    make_run_dir,
    new_journal,
    spec,
)

IS = ItemStatus
SS = StepStatus


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A fresh 0700 run folder."""
    return make_run_dir(tmp_path)


def _ok(
    item_id: int, key: str = "send", *, finish: bool = True, status: SS = SS.SUCCEEDED
) -> Outcome:
    return Outcome(
        item_id=item_id,
        step_key=key,
        status=status,
        http_status={SS.SUCCEEDED: 204, SS.FAILED: 403, SS.UNKNOWN: 504}[status],
        error_code="Authorization_RequestDenied" if status is SS.FAILED else None,
        error_message="Insufficient privileges" if status is SS.FAILED else None,
        request_id=str(uuid.uuid4()),
        finish_item=finish,
    )


# --- creation ----------------------------------------------------------------------------


def test_creation_keeps_header_and_items_in_plan_order(run_dir: Path) -> None:
    """The header and every item are there after creation, with their plan fields."""
    specs = [spec(0), spec(0, action="disable_account", position=1), spec(1)]
    with new_journal(run_dir, specs, lock=False) as journal:
        read = journal.header(content=True)
        assert read == header()
        assert journal.header().content == {}  # the large part only on request
        items = journal.items()
    assert [(i.id, i.target_index, i.position, i.action) for i in items] == [
        (1, 0, 0, "revoke_sessions"),
        (2, 0, 1, "disable_account"),
        (3, 1, 0, "revoke_sessions"),
    ]
    first = items[0]
    assert (first.upn, first.object_id, first.display_name) == (
        "user0@contoso.example",
        str(uuid.UUID(int=1)),
        "User 0",
    )
    assert (first.summary, first.note, first.ticket, first.ref) == (
        "change for user 0",
        None,
        "INC-7",
        "1",
    )
    assert (first.status, first.attempts, first.verified, first.secret_ref) == (
        IS.PLANNED,
        0,
        None,
        None,
    )


def test_initial_status_follows_the_plan_kind(run_dir: Path) -> None:
    """change and noop start planned; manual, refused, not_applicable start where they end."""
    kinds = ["change", "noop", "manual", "refused", "not_applicable"]
    with new_journal(run_dir, [spec(i, kind=k) for i, k in enumerate(kinds)]) as journal:
        assert [i.status for i in journal.items()] == [
            IS.PLANNED,
            IS.PLANNED,
            IS.MANUAL,
            IS.REFUSED,
            IS.SKIPPED,
        ]
        counts = journal.counts()
    assert counts[IS.PLANNED] == 2
    assert counts[IS.MANUAL] == counts[IS.REFUSED] == counts[IS.SKIPPED] == 1
    assert set(counts) == set(ItemStatus)


def test_sqlite_settings_are_wal_and_full_sync(run_dir: Path) -> None:
    """WAL mode persists in the file, synchronous=FULL on the connection, integrity ok."""
    with new_journal(run_dir, [spec(0)]) as journal:
        assert journal._con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert journal._con.isolation_level is None
        assert journal.integrity_check() == ("ok",)
    other = sqlite3.connect(run_dir / JOURNAL_NAME)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()


def test_a_second_create_in_the_same_folder_fails(run_dir: Path) -> None:
    """A run folder holds one journal; creating another is a storage error (exit 6)."""
    new_journal(run_dir, [spec(0)], lock=False).close()
    with pytest.raises(StorageError) as caught:
        Journal.create(run_dir, header(), [spec(0)])
    assert str(caught.value) == (
        f"{run_dir / JOURNAL_NAME}: a journal already exists here; resume it with --resume"
    )
    assert caught.value.exit_code is ExitCode.STORAGE


def test_opening_what_is_not_a_journal_fails_clearly(tmp_path: Path) -> None:
    """A missing journal and a foreign SQLite file are storage errors naming the path."""
    empty = make_run_dir(tmp_path, "empty")
    with pytest.raises(StorageError, match="no journal here"):
        Journal.open(empty)
    foreign = make_run_dir(tmp_path, "foreign")
    con = sqlite3.connect(foreign / JOURNAL_NAME)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(StorageError) as caught:
        Journal.open(foreign)
    assert str(caught.value) == (
        f"{foreign / JOURNAL_NAME}: not an entra-bulk journal, or its creation never finished"
    )


def test_reopened_journal_has_everything(run_dir: Path) -> None:
    """Closing and opening again gives the same items, steps, transitions and events."""
    with new_journal(run_dir, [spec(0), spec(1)]) as journal:
        journal.record_intent(intent(1))
        journal.record_outcome(_ok(1))
        journal.record_event("throttled", {"retry_after_s": 2.5})
        before = (journal.items(), journal.steps(), journal.transitions(), journal.events())
    with Journal.open(run_dir) as again:
        after = (again.items(), again.steps(), again.transitions(), again.events())
        assert again.lock_holder() is None  # closing released it
    assert after[:3] == before[:3]
    assert after[3][:-1] == before[3]
    assert after[3][-1].kind == "lock_released"


def test_specs_and_header_from_a_frozen_plan() -> None:
    """Items come from every (target, action) of the plan; a refused target refuses them all."""
    targets = [
        {
            "object_id": "o-1",
            "upn": "a@x.example",
            "display_name": "A",
            "fingerprint": "f1",
            "note": "n",
            "ticket": "T-1",
            "actions": [
                {"action": "reset_password", "kind": "change", "summary": "will set"},
                {"action": "revoke_sessions", "kind": "noop", "summary": "no-op"},
                {"action": "delete_app_passwords", "kind": "manual", "summary": "manual"},
            ],
        },
        {
            "object_id": "o-2",
            "upn": "b@x.example",
            "fingerprint": "f2",
            "refused": "break-glass account",
            "actions": [{"action": "revoke_sessions", "kind": "change", "summary": "will"}],
        },
    ]
    content = {
        "format_version": 1,
        "tenant": {"id": "t-1", "cloud": "global", "emulated": True},
        "author": {"upn": "alice@x.example"},
        "plan": {
            "name": "wave",
            "ticket": "CHG-1",
            "safety": {"canary": 5, "halt_on_failure_rate": 0.1},
            "options": {},
        },
        "targets": targets,
        "expires": "2026-03-02T00:00:00Z",
    }
    plan = FrozenPlan(path=None, content=content, digest="sha256:00", info={})
    specs = specs_from_plan(plan)
    assert [(s.target_index, s.position, s.action, s.kind, s.repeatable) for s in specs] == [
        (0, 0, "reset_password", "change", False),
        (0, 1, "revoke_sessions", "noop", True),
        (0, 2, "delete_app_passwords", "manual", True),
        (1, 0, "revoke_sessions", "refused", True),
    ]
    assert specs[3].summary == "break-glass account"
    assert (specs[0].note, specs[0].ticket) == ("n", "T-1")
    run = header_from_plan(
        plan, approvals=[{"approver": "bob"}], options={"canary": 0}, created=START
    )
    assert (run.plan_name, run.ticket, run.tenant_id, run.emulated) == (
        "wave",
        "CHG-1",
        "t-1",
        True,
    )
    assert run.options == {"canary": 0, "halt_on_failure_rate": 0.1}
    assert run.approvals == ({"approver": "bob"},)


# --- the state machine: every legal move through the public API ----------------------------

Mover = Callable[[Journal, int], None]


def _send(journal: Journal, item_id: int) -> None:
    journal.record_intent(intent(item_id, reissue=True))


def _outcome(status: SS) -> Mover:
    def move(journal: Journal, item_id: int) -> None:
        journal.record_outcome(_ok(item_id, status=status))

    return move


def _direct(status: IS) -> Mover:
    def move(journal: Journal, item_id: int) -> None:
        journal.set_status([item_id], status, reason=f"because {status}")

    return move


ITEM_MOVES: dict[tuple[IS, IS], Mover] = {
    (IS.PLANNED, IS.INTENT): _send,
    (IS.PLANNED, IS.NOOP): _direct(IS.NOOP),
    (IS.PLANNED, IS.DRIFTED): _direct(IS.DRIFTED),
    (IS.PLANNED, IS.SKIPPED): _direct(IS.SKIPPED),
    (IS.PLANNED, IS.REFUSED): _direct(IS.REFUSED),
    (IS.PLANNED, IS.FAILED): _direct(IS.FAILED),
    (IS.INTENT, IS.SUCCEEDED): _outcome(SS.SUCCEEDED),
    (IS.INTENT, IS.FAILED): _outcome(SS.FAILED),
    (IS.INTENT, IS.UNKNOWN): lambda j, i: j.mark_unknown([(i, "send")], reason="504"),
    (IS.INTENT, IS.PLANNED): lambda j, i: j.withdraw_intents([(i, "send")], reason="not sent"),
    (IS.UNKNOWN, IS.SUCCEEDED): _outcome(SS.SUCCEEDED),
    (IS.UNKNOWN, IS.FAILED): _outcome(SS.FAILED),
    (IS.UNKNOWN, IS.INTENT): _send,
    (IS.SUCCEEDED, IS.VERIFIED): lambda j, i: j.record_verifications(
        [Verification(item_id=i, verified=True)]
    ),
    (IS.MANUAL, IS.CONFIRMED): lambda j, i: j.confirm([i], by="carol"),
}


def test_the_move_table_covers_every_legal_item_transition() -> None:
    """Each legal item transition has a driver below (and nothing else does)."""
    legal = {(old, new) for old, targets in ITEM_TRANSITIONS.items() for new in targets}
    assert set(ITEM_MOVES) == legal


def _path_to(status: IS) -> list[tuple[IS, IS]]:
    """The shortest chain of moves from `planned` (or `manual`) to `status`."""
    start = IS.MANUAL if status in {IS.MANUAL, IS.CONFIRMED} else IS.PLANNED
    seen: dict[IS, list[tuple[IS, IS]]] = {start: []}
    queue: deque[IS] = deque([start])
    while queue:
        at = queue.popleft()
        for new in ITEM_TRANSITIONS[at]:
            if new not in seen:
                seen[new] = [*seen[at], (at, new)]
                queue.append(new)
    return seen[status]


@pytest.mark.parametrize("move", sorted(ITEM_MOVES), ids=lambda m: f"{m[0]}-{m[1]}")
def test_every_legal_item_transition(tmp_path: Path, move: tuple[IS, IS]) -> None:
    """Each legal item move, reached through the public API, lands and is logged."""
    old, new = move
    kind = "manual" if old is IS.MANUAL else "change"
    with new_journal(make_run_dir(tmp_path), [spec(0, kind=kind)]) as journal:
        for step in _path_to(old):
            ITEM_MOVES[step](journal, 1)
        assert journal.item(1).status is old
        ITEM_MOVES[move](journal, 1)
        assert journal.item(1).status is new
        last = [t for t in journal.transitions(1) if t.step_key is None][-1]
        assert (last.old, last.new) == (old, new)
        assert_chains(journal)


def test_every_legal_step_transition(run_dir: Path) -> None:
    """Each legal step move happens through the API and the log has all of them."""
    with new_journal(run_dir, [spec(i) for i in range(6)]) as journal:
        journal.record_intents([intent(1), intent(2), intent(3), intent(4), intent(5)])
        journal.record_not_executed([Attempt(item_id=1, step_key="send", http_status=429)])
        journal.record_intent(intent(1))  # intent → intent, after a 429
        journal.record_outcomes([_ok(1), _ok(2, status=SS.FAILED)])  # → succeeded, → failed
        journal.mark_unknown([(3, "send"), (4, "send")], reason="read timeout")  # → unknown
        journal.record_outcome(_ok(3))  # unknown → succeeded
        journal.record_outcome(_ok(4, status=SS.FAILED))  # unknown → failed
        journal.withdraw_intents([(5, "send")], reason="interrupted before sending")  # → planned
        journal.set_status([5], IS.SKIPPED, reason="stopped")  # planned → skipped
        journal.record_intent(intent(6))
        journal.mark_unknown([(6, "send")], reason="reset")
        journal.record_intent(intent(6))  # unknown → intent (repeatable)
        seen = {(t.old, t.new) for t in journal.transitions() if t.step_key is not None}
        assert_chains(journal)
    legal = {(str(o), str(n)) for o, targets in STEP_TRANSITIONS.items() for n in targets}
    assert seen == legal


def test_pure_tables_refuse_every_unlisted_pair() -> None:
    """check_item and check_step raise for every pair their tables do not list."""
    for old in ItemStatus:
        for new in ItemStatus:
            if new in ITEM_TRANSITIONS[old]:
                check_item(1, old, new)
            else:
                with pytest.raises(IllegalTransitionError):
                    check_item(1, old, new)
    for old_step in StepStatus:
        for new_step in StepStatus:
            if new_step in STEP_TRANSITIONS[old_step]:
                check_step(1, "k", old_step, new_step)
            else:
                with pytest.raises(IllegalTransitionError):
                    check_step(1, "k", old_step, new_step)


def test_terminal_statuses_refuse_direct_moves(run_dir: Path) -> None:
    """Finished items cannot be moved by set_status; the item is unchanged."""
    kinds = ["refused", "not_applicable", "change"]
    with new_journal(run_dir, [spec(i, kind=k) for i, k in enumerate(kinds)]) as journal:
        journal.record_intent(intent(3))
        journal.record_outcome(_ok(3))
        for item_id, status in [(1, IS.SKIPPED), (2, IS.FAILED), (3, IS.NOOP), (3, IS.FAILED)]:
            with pytest.raises(IllegalTransitionError, match="illegal transition"):
                journal.set_status([item_id], status, reason="no")
        assert [i.status for i in journal.items()] == [IS.REFUSED, IS.SKIPPED, IS.SUCCEEDED]


def test_illegal_protocol_moves_raise_and_leave_no_trace(run_dir: Path) -> None:
    """A sample of illegal moves: each raises IllegalTransitionError and changes nothing."""
    with new_journal(run_dir, [spec(0), spec(1, kind="manual"), spec(2)]) as journal:
        journal.record_intent(intent(3))
        journal.record_outcome(_ok(3))
        before = (journal.items(), journal.steps(), journal.transitions())
        attempts: list[Callable[[], object]] = [
            lambda: journal.record_outcome(_ok(1)),  # no intent yet
            lambda: journal.record_intent(intent(3)),  # succeeded → intent
            lambda: journal.record_intent(intent(2)),  # manual → intent
            lambda: journal.set_status([1], IS.SUCCEEDED, reason="x"),  # not a direct status
            lambda: journal.set_status([1], IS.CONFIRMED, reason="x"),  # planned → confirmed
            lambda: journal.record_outcome(_ok(3)),  # succeeded → succeeded
            lambda: journal.mark_unknown([(3, "send")], reason="x"),  # succeeded → unknown
            lambda: journal.record_verifications([Verification(item_id=1, verified=True)]),
            lambda: journal.finish_item(1),  # nothing was sent
            # an atomic batch: the first intent is legal, the second is not; neither lands
            lambda: journal.record_intents([intent(1), intent(3)]),
        ]
        for attempt in attempts:
            with pytest.raises(IllegalTransitionError):
                attempt()
        assert (journal.items(), journal.steps(), journal.transitions()) == before


def test_a_second_send_needs_proof_the_first_was_not_executed(run_dir: Path) -> None:
    """intent → intent is refused unless a response proved the last send did nothing."""
    with new_journal(run_dir, [spec(0)]) as journal:
        journal.record_intent(intent(1))
        with pytest.raises(IllegalTransitionError, match="no response proving"):
            journal.record_intent(intent(1))
        journal.record_not_executed(
            [Attempt(item_id=1, step_key="send", http_status=429, error_code="TooManyRequests")]
        )
        assert journal.steps(1)[0].resend_ok
        journal.record_intent(intent(1))
        step = journal.steps(1)[0]
        assert (step.attempts, step.resend_ok, step.status) == (2, False, SS.INTENT)
        assert journal.item(1).attempts == 2


def test_unknown_non_repeatable_is_never_resent_without_reissue(run_dir: Path) -> None:
    """An unknown reset (not repeatable) refuses a new intent unless reissue=True."""
    with new_journal(run_dir, [spec(0, action="reset_password", repeatable=False)]) as journal:
        journal.record_intent(intent(1, "reset"))
        journal.mark_unknown([(1, "reset")], reason="504 after the change")
        with pytest.raises(IllegalTransitionError, match="never re-sent automatically"):
            journal.record_intent(intent(1, "reset"))
        assert journal.item(1).status is IS.UNKNOWN
        journal.record_intent(intent(1, "reset", reissue=True))
        assert journal.item(1).status is IS.INTENT
        assert journal.transitions(1)[-2].detail["reissue"] is True


def test_no_new_step_while_an_item_has_unknown_steps(run_dir: Path) -> None:
    """Rule 2: an item's unknown steps are reconciled before any new request for it."""
    with new_journal(run_dir, [spec(0, action="remove_auth_methods")]) as journal:
        journal.record_intent(intent(1, "m1"))
        journal.mark_unknown([(1, "m1")], reason="lost response")
        with pytest.raises(IllegalTransitionError, match="reconcile them before a new send"):
            journal.record_intent(intent(1, "m2"))


def test_intent_ids_must_be_uuids(run_dir: Path) -> None:
    """The client-request-id sent to Graph is a UUID; anything else is a caller bug."""
    with new_journal(run_dir, [spec(0)]) as journal:
        bad = intent(1)
        with pytest.raises(ValueError, match="is not a UUID"):
            journal.record_intent(
                type(bad)(
                    item_id=1,
                    step_key="send",
                    intent_id="not-a-uuid",
                    intent_time=START,
                    time_source=TimeSource.LOCAL,
                )
            )
        assert journal.item(1).status is IS.PLANNED


# --- multi-step items, outcomes, reconciliation ------------------------------------------


def test_multi_step_item_succeeds_when_every_step_does(run_dir: Path) -> None:
    """Three method deletes: the item is succeeded after the last, with all facts kept."""
    with new_journal(run_dir, [spec(0, action="require_mfa_reregistration")]) as journal:
        journal.record_intents([intent(1, "phone"), intent(1, "app")])
        journal.record_outcomes([_ok(1, "phone", finish=False), _ok(1, "app", finish=False)])
        assert journal.item(1).status is IS.INTENT
        first = intent(1, "default")
        journal.record_intent(first)
        journal.record_outcome(_ok(1, "default"))
        item = journal.item(1)
        steps = journal.steps(1)
        assert (item.status, item.attempts, item.http_status) == (IS.SUCCEEDED, 3, 204)
        assert [s.key for s in steps] == ["phone", "app", "default"]
        assert steps[2].client_request_id == first.intent_id
        assert steps[2].intent_time == START
        assert steps[2].intent_time_source is TimeSource.SERVER
        assert steps[2].label == "request default"
        assert all(s.status is SS.SUCCEEDED and s.finished for s in steps)
        assert item.started is not None and item.finished is not None
        assert item.started <= item.finished
        assert_chains(journal)


def test_failed_step_fails_the_item_and_skips_the_rest(run_dir: Path) -> None:
    """A definitive 4xx on one step fails the item with its Graph code; planned steps skip."""
    with new_journal(run_dir, [spec(0, action="remove_auth_methods")]) as journal:
        journal.record_intents([intent(1, "a"), intent(1, "b")])
        journal.withdraw_intents([(1, "b")], reason="not sent: a failed first")
        journal.record_outcome(_ok(1, "a", status=SS.FAILED))
        item = journal.item(1)
        assert (item.status, item.http_status, item.error_code, item.error_message) == (
            IS.FAILED,
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges",
        )
        assert {s.key: s.status for s in journal.steps(1)} == {"a": SS.FAILED, "b": SS.SKIPPED}
        assert_chains(journal)


def test_unknown_step_wins_until_reconciled(run_dir: Path) -> None:
    """One unknown and one failed step: unknown first; reconciled, the item is failed."""
    with new_journal(run_dir, [spec(0, action="remove_auth_methods")]) as journal:
        journal.record_intents([intent(1, "a"), intent(1, "b")])
        journal.record_outcomes(
            [_ok(1, "a", status=SS.UNKNOWN, finish=False), _ok(1, "b", status=SS.FAILED)]
        )
        assert journal.item(1).status is IS.UNKNOWN
        journal.record_outcome(_ok(1, "a"))  # read back: the method is gone
        assert journal.item(1).status is IS.FAILED
        reconciled = [t for t in journal.transitions(1) if t.detail.get("reconciled")]
        assert [(t.step_key, t.old, t.new) for t in reconciled] == [("a", "unknown", "succeeded")]
        assert_chains(journal)


def test_an_item_with_unsent_steps_never_finishes_as_succeeded(run_dir: Path) -> None:
    """Finishing an item whose withdrawn step was never sent is refused, not succeeded."""
    with new_journal(run_dir, [spec(0, action="remove_auth_methods")]) as journal:
        journal.record_intents([intent(1, "a"), intent(1, "b")])
        journal.record_outcome(_ok(1, "a", finish=False))
        journal.withdraw_intents([(1, "b")], reason="interrupted")
        with pytest.raises(IllegalTransitionError, match="never sent"):
            journal.finish_item(1)
        assert journal.item(1).status is IS.INTENT
        assert journal.steps(1)[1].status is SS.PLANNED


def test_finishing_with_a_request_in_flight_is_refused(run_dir: Path) -> None:
    """An item cannot end while one of its steps is still in intent."""
    with new_journal(run_dir, [spec(0)]) as journal:
        journal.record_intents([intent(1, "a"), intent(1, "b")])
        with pytest.raises(IllegalTransitionError, match="steps still intent"):
            journal.record_outcome(_ok(1, "a"))
        assert journal.steps(1)[0].status is SS.INTENT  # rolled back


def test_derive_item_status_precedence() -> None:
    """unknown beats failed beats succeeded; skipped steps are only allowed after a failure."""
    assert derive_item_status([SS.SUCCEEDED, SS.SUCCEEDED]) is IS.SUCCEEDED
    assert derive_item_status([SS.SUCCEEDED, SS.FAILED, SS.SKIPPED]) is IS.FAILED
    with pytest.raises(ValueError, match="never sent"):
        derive_item_status([SS.SUCCEEDED, SS.SKIPPED])
    assert derive_item_status([SS.FAILED, SS.UNKNOWN]) is IS.UNKNOWN
    with pytest.raises(ValueError, match="none of whose steps was sent"):
        derive_item_status([])


def test_pending_operation_keeps_its_location(run_dir: Path) -> None:
    """A 202 + Location leaves the step in intent with the Location, never re-sendable."""
    location = "https://graph.example/v1.0/users/x/authentication/operations/op-1"
    with new_journal(run_dir, [spec(0, action="reset_password", repeatable=False)]) as journal:
        journal.record_intent(intent(1, "reset", secret_ref="1:1"))
        journal.record_pending(
            [Attempt(item_id=1, step_key="reset", http_status=202, location=location)]
        )
        step = journal.steps(1)[0]
        assert (step.status, step.location, step.resend_ok) == (SS.INTENT, location, False)
        with pytest.raises(IllegalTransitionError):
            journal.record_intent(intent(1, "reset"))
        with pytest.raises(ValueError, match="no Location"):
            journal.record_pending([Attempt(item_id=1, step_key="reset", http_status=202)])
    with Journal.open(run_dir) as again:
        again.take_over_if_dead(command="resume")
        (orphan,) = again.recover_orphans()
        assert (orphan.location, orphan.secret_ref, orphan.repeatable) == (location, "1:1", False)
        assert again.item(1).status is IS.UNKNOWN
        again.record_outcome(_ok(1, "reset"))  # the operation, polled, succeeded
        assert again.item(1).status is IS.SUCCEEDED
        assert again.item(1).secret_ref == "1:1"


def test_verification(run_dir: Path) -> None:
    """Verified succeeded items become verified; others keep their status and get the flag."""
    with new_journal(run_dir, [spec(i) for i in range(4)]) as journal:
        journal.record_intents([intent(1), intent(2)])
        journal.record_outcomes([_ok(1), _ok(2)])
        journal.set_status([3], IS.NOOP, reason="already revoked")
        changed = journal.record_verifications(
            [
                Verification(item_id=1, verified=True, detail={"seen": "2026-03-01T09:00:01Z"}),
                Verification(item_id=2, verified=False),
                Verification(item_id=3, verified=True),
            ]
        )
        assert changed == 3
        assert journal.record_verifications([Verification(item_id=1, verified=False)]) == 0
        items = journal.items()
        assert [(i.status, i.verified) for i in items[:3]] == [
            (IS.VERIFIED, True),
            (IS.SUCCEEDED, False),
            (IS.NOOP, True),
        ]
        assert items[0].verified_at is not None
        assert items[0].detail == {"verification": {"seen": "2026-03-01T09:00:01Z"}}
        with pytest.raises(IllegalTransitionError, match="cannot verify"):
            journal.record_verifications([Verification(item_id=4, verified=True)])


def test_direct_statuses_keep_reason_and_facts(run_dir: Path) -> None:
    """planned → failed without a send (the re-read was refused) keeps the Graph facts."""
    with new_journal(run_dir, [spec(0), spec(1, kind="manual")]) as journal:
        journal.set_status(
            [1],
            IS.FAILED,
            reason="could not read the target",
            http_status=403,
            error_code="Authorization_RequestDenied",
            error_message="Insufficient privileges to complete the operation.",
        )
        journal.confirm([2], by="carol", note="portal: deleted 2 app passwords")
        failed, confirmed = journal.items()
    assert (failed.status, failed.reason, failed.http_status, failed.error_code) == (
        IS.FAILED,
        "could not read the target",
        403,
        "Authorization_RequestDenied",
    )
    assert failed.attempts == 0 and failed.finished is not None
    assert confirmed.detail == {"by": "carol"}
    assert (confirmed.status, confirmed.reason) == (IS.CONFIRMED, "portal: deleted 2 app passwords")


# --- resume ------------------------------------------------------------------------------


def test_recover_orphans_marks_in_flight_unknown_and_withdraws_the_proven(run_dir: Path) -> None:
    """On resume: a send with no outcome is unknown; one whose last answer was 429 is planned."""
    with new_journal(run_dir, [spec(i) for i in range(4)]) as journal:
        journal.record_intents([intent(1), intent(2), intent(3)])
        journal.record_not_executed([Attempt(item_id=2, step_key="send", http_status=429)])
        journal.record_outcome(_ok(3))
        orphans = journal.orphaned_intents()
        assert [(o.item_id, o.resend_ok) for o in orphans] == [(1, False), (2, True)]
        assert orphans[0].intent_time == START
        assert orphans[0].intent_time_source is TimeSource.SERVER
        assert orphans[0].upn == "user0@contoso.example"
        journal.recover_orphans()
        assert journal.orphaned_intents() == []
        assert [i.status for i in journal.items()] == [
            IS.UNKNOWN,
            IS.PLANNED,
            IS.SUCCEEDED,
            IS.PLANNED,
        ]
        assert journal.item(1).reason == "no outcome recorded (resumed)"
        assert_chains(journal)


# --- events, redaction -------------------------------------------------------------------


def test_events_are_a_timeline(run_dir: Path) -> None:
    """Pacing events are kept in order with their detail; lock events are there too."""
    with new_journal(run_dir, [spec(0)]) as journal:
        journal.record_event("throttled", {"status": 429, "retry_after_s": 7.0, "item": 1})
        journal.record_event("pause", {"seconds": 7.0})
        journal.record_event("rate", {"writes_per_s": 10.0})
        events = journal.events()
        assert [e.kind for e in events] == ["lock_acquired", "throttled", "pause", "rate"]
        assert events[1].detail == {"status": 429, "retry_after_s": 7.0, "item": 1}
        assert [e.seq for e in events] == sorted(e.seq for e in events)
        assert journal.events("pause")[0].detail == {"seconds": 7.0}


def test_no_secret_reaches_the_journal_file(run_dir: Path) -> None:
    """A registered secret passed by mistake in a message or detail is redacted on disk."""
    canary = "Zq7#canary-journal-91"
    register_secret(canary)
    with new_journal(run_dir, [spec(0)]) as journal:
        journal.record_intent(intent(1))
        journal.record_outcome(
            Outcome(
                item_id=1,
                step_key="send",
                status=SS.FAILED,
                http_status=400,
                error_code="InvalidPassword",
                error_message=f"password {canary} rejected",
                detail={"body": {"newPassword": canary}},
                finish_item=True,
            )
        )
        journal.record_event("debug", {"text": f"sent {canary}"})
        journal.set_status([], IS.SKIPPED, reason=canary)
        assert journal.item(1).error_message == f"password {REDACTED} rejected"
        assert journal.item(1).detail == {"body": {"newPassword": REDACTED}}
    raw = b"".join(p.read_bytes() for p in run_dir.iterdir() if p.name.startswith(JOURNAL_NAME))
    assert canary.encode() not in raw
    assert b"Zq7#canary" not in raw


# --- storage errors ----------------------------------------------------------------------


def _deny(action: int, op: str | None) -> Callable[..., int]:
    """An SQLite authorizer that refuses one kind of statement, as a failing disk would."""

    def authorizer(code: int, arg1: str | None, *_: object) -> int:
        if code == action and (op is None or arg1 == op):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return authorizer


def test_a_failed_commit_is_a_storage_error_and_no_intent_lands(run_dir: Path) -> None:
    """A failed COMMIT is a StorageError naming the journal; the items stay planned."""
    with new_journal(run_dir, [spec(i) for i in range(3)]) as journal:
        journal._con.set_authorizer(_deny(sqlite3.SQLITE_TRANSACTION, "COMMIT"))
        with pytest.raises(StorageError) as caught:
            journal.record_intents([intent(i) for i in range(1, 4)])
        journal._con.set_authorizer(None)
        assert caught.value.exit_code is ExitCode.STORAGE
        assert str(caught.value) == f"{journal.path}: cannot record intents: not authorized"
        assert {i.status for i in journal.items()} == {IS.PLANNED}
        assert journal.orphaned_intents() == []
        assert journal.transitions() == []
        journal.record_intent(intent(1))  # the connection is usable again
        assert journal.integrity_check() == ("ok",)


def test_a_failed_statement_rolls_the_whole_batch_back(run_dir: Path) -> None:
    """A write failing half-way through a batch of outcomes leaves none of them recorded."""
    with new_journal(run_dir, [spec(i) for i in range(3)]) as journal:
        journal.record_intents([intent(i) for i in range(1, 4)])
        journal._con.set_authorizer(_deny(sqlite3.SQLITE_INSERT, "transitions"))
        with pytest.raises(StorageError, match="cannot record outcomes: not authorized"):
            journal.record_outcomes([_ok(i) for i in range(1, 4)])
        journal._con.set_authorizer(None)
        assert {i.status for i in journal.items()} == {IS.INTENT}
        assert len(journal.orphaned_intents()) == 3


# --- scale ---------------------------------------------------------------------------------


def test_a_100000_item_journal_resumes_quickly(tmp_path: Path) -> None:
    """100,000 items: one-transaction creation and an exact orphan scan (timings printed)."""
    specs = [spec(i) for i in range(100_000)]
    clock = Clock()
    started = time.perf_counter()
    journal = Journal.create(make_run_dir(tmp_path), header(), specs, clock=clock)
    created = time.perf_counter() - started
    journal.acquire_lock(command="pytest")
    wanted = list(range(1, 100_001, 2000))  # 50 items spread over the journal
    journal.record_intents([intent(i) for i in wanted])
    journal.record_outcomes([_ok(i) for i in wanted[:10]])
    journal.close()
    started = time.perf_counter()
    again = Journal.open(tmp_path / "run")
    orphans = again.orphaned_intents()
    scanned = time.perf_counter() - started
    print(f"\n100,000 items: created in {created:.2f} s; reopened and scanned in {scanned:.4f} s")
    assert [o.item_id for o in orphans] == wanted[10:]
    counts = again.counts()
    assert (counts[IS.PLANNED], counts[IS.INTENT], counts[IS.SUCCEEDED]) == (99_950, 40, 10)
    assert [i.id for i in again.items(status=IS.INTENT)] == wanted[10:]
    assert [i.id for i in again.items(object_id=str(uuid.UUID(int=77_778)))] == [77_778]
    assert sum(1 for _ in again.iter_items()) == 100_000
    again.close()


def test_writes_need_the_lock(run_dir: Path) -> None:
    """A journal object that does not hold the run lock cannot change items (a caller bug)."""
    with new_journal(run_dir, [spec(0)], lock=False) as journal:
        with pytest.raises(NotLockedError, match="call acquire_lock"):
            journal.record_intent(intent(1))
        assert journal.item(1).status is IS.PLANNED


# --- durability across SIGKILL -----------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import datetime as dt, sys, uuid
    from pathlib import Path
    from runner.journal import Journal
    from runner.runstate import Intent, TimeSource

    journal = Journal.open(Path(sys.argv[1]))
    journal.acquire_lock(command="writer")
    for item_id in range(1, int(sys.argv[2]) + 1):
        journal.record_intent(
            Intent(
                item_id=item_id,
                step_key="send",
                intent_id=str(uuid.uuid4()),
                intent_time=dt.datetime.now(dt.UTC),
                time_source=TimeSource.LOCAL,
            )
        )
        print(f"committed {item_id}", flush=True)
    """
)


def _writer(run_dir: Path, count: int, crash_at: str | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "ENTRA_BULK_CRASH_AT"}
    if crash_at:
        env["ENTRA_BULK_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run_dir), str(count)],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("point", "durable"), [("after_intent_commit", 4), ("before_intent_commit", 3)]
)
def test_intents_survive_a_sigkill_at_the_crash_points(
    run_dir: Path, point: str, durable: int
) -> None:
    """SIGKILL after/before the 4th intent commit leaves exactly 4/3 intents, journal intact."""
    new_journal(run_dir, [spec(i) for i in range(10)], lock=False).close()
    writer = _writer(run_dir, 10, f"{point}:4")
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL, err
    with Journal.open(run_dir) as journal:
        assert journal.integrity_check() == ("ok",)
        assert [o.item_id for o in journal.orphaned_intents()] == list(range(1, durable + 1))
        assert journal.item(durable + 1).status is IS.PLANNED
        old = journal.take_over_if_dead(command="resume")
        assert old is not None and old.pid == writer.pid and old.command == "writer"
        recovered = journal.recover_orphans()
        assert len(recovered) == durable
        assert journal.counts()[IS.UNKNOWN] == durable
        assert_chains(journal)
    assert out.splitlines()[-1] == "committed 3"  # the 4th call never returned


def test_every_acknowledged_intent_survives_a_kill_at_a_random_time(run_dir: Path) -> None:
    """Every intent whose commit returned before a SIGKILL at a random moment is kept."""
    new_journal(run_dir, [spec(i) for i in range(5000)], lock=False).close()
    writer = _writer(run_dir, 5000, None)
    assert writer.stdout is not None
    acknowledged = 0
    for line in writer.stdout:
        acknowledged = int(line.split()[1])
        if acknowledged >= 150:
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=60)
    with Journal.open(run_dir) as journal:
        assert journal.integrity_check() == ("ok",)
        orphans = [o.item_id for o in journal.orphaned_intents()]
    assert len(orphans) >= acknowledged
    assert orphans == list(range(1, len(orphans) + 1))
