"""Batch packing: per-user order, phases, one step in flight per user, 20 per batch."""

from __future__ import annotations

from runner.actions.base import Step
from runner.engine.schedule import ItemWork, Scheduler, StepState, StepWork, users_from


def _item(item_id: int, user: str, action: str, phases: list[int]) -> ItemWork:
    item = ItemWork(item_id=item_id, user_id=user, action=action)
    item.steps = [
        StepWork(item=item, step=Step(key=f"s{i}", method="DELETE", path=f"/x/{i}", phase=phase))
        for i, phase in enumerate(phases)
    ]
    return item


def _finish(batch: list[StepWork]) -> None:
    for step in batch:
        step.state = StepState.DONE


def test_a_user_s_actions_run_in_order() -> None:
    """The second action of a user waits until the first is finished."""
    first = _item(1, "u1", "reset_password", [0])
    second = _item(2, "u1", "revoke_sessions", [0])
    scheduler = Scheduler(users_from([first, second]))
    batch = scheduler.next_batch()
    assert [s.item.action for s in batch] == ["reset_password"]
    assert scheduler.next_batch() == []
    _finish(batch)
    assert [s.item.action for s in scheduler.next_batch()] == ["revoke_sessions"]


def test_phases_of_one_action_run_in_order() -> None:
    """Same-phase steps share a batch; the default method's phase comes after."""
    item = _item(1, "u1", "require_mfa_reregistration", [0, 0, 2])
    scheduler = Scheduler(users_from([item]))
    batch = scheduler.next_batch()
    assert [s.step.key for s in batch] == ["s0", "s1"]
    _finish(batch)
    assert [s.step.key for s in scheduler.next_batch()] == ["s2"]


def test_batches_hold_at_most_twenty_steps_across_users() -> None:
    """Many users fill batches of 20; every user appears once per batch."""
    items = [_item(i, f"u{i}", "revoke_sessions", [0]) for i in range(45)]
    scheduler = Scheduler(users_from(items))
    sizes = []
    while batch := scheduler.next_batch():
        assert len({s.item.user_id for s in batch}) == len(batch)
        sizes.append(len(batch))
        _finish(batch)
    assert sizes == [20, 20, 5]
    assert scheduler.idle


def test_a_blocked_step_holds_its_user_only() -> None:
    """A step waiting for reconciliation stops its user, not the others."""
    blocked = _item(1, "u1", "reset_password", [0])
    later = _item(2, "u1", "revoke_sessions", [0])
    other = _item(3, "u2", "revoke_sessions", [0])
    scheduler = Scheduler(users_from([blocked, later, other]))
    first = scheduler.next_batch()
    assert {s.item.item_id for s in first} == {1, 3}
    first[0].state = StepState.BLOCKED
    first[1].state = StepState.DONE
    assert scheduler.next_batch() == []
    assert scheduler.blocked() == [first[0]]
    assert not scheduler.idle


def test_a_failed_action_lets_the_next_one_run() -> None:
    """A definitive failure ends that action; the user's next action still runs."""
    failing = _item(1, "u1", "reset_password", [0])
    next_one = _item(2, "u1", "revoke_sessions", [0])
    scheduler = Scheduler(users_from([failing, next_one]))
    (step,) = scheduler.next_batch()
    step.state = StepState.FAILED
    assert [s.item.action for s in scheduler.next_batch()] == ["revoke_sessions"]


def test_deferred_default_method_runs_last() -> None:
    """A deletion refused as the default method is retried after the others."""
    item = _item(1, "u1", "remove_auth_methods", [0, 0])
    scheduler = Scheduler(users_from([item]))
    batch = scheduler.next_batch()
    batch[0].state = StepState.PENDING
    batch[0].deferred = True
    batch[1].state = StepState.DONE
    (again,) = scheduler.next_batch()
    assert again is batch[0]
