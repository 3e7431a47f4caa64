"""Which steps go into the next `$batch` (pure, no I/O).

Per user, actions run in the plan's order and an action's steps run phase by phase (the
default method's deletion last); a user with a step in flight gets nothing more until it
comes back, so per-user order holds even with several batches in flight. Across users,
batches are packed up to 20 steps, taking users in turn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from runner.actions.base import Step

MAX_BATCH = 20


class StepState(StrEnum):
    """Where a step is in this process (the journal has the durable truth)."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"  # waiting for reconciliation (outcome unknown)


@dataclass(slots=True, kw_only=True)
class StepWork:
    """One step of one item, with its bookkeeping."""

    item: ItemWork
    step: Step
    state: StepState = StepState.PENDING
    attempts: int = 0
    deferred: bool = False

    @property
    def phase(self) -> int:
        """The step's phase (a deferred default-method deletion runs after all others)."""
        return 99 if self.deferred else self.step.phase


@dataclass(slots=True, kw_only=True)
class ItemWork:
    """One (target, action) of the run."""

    item_id: int
    user_id: str
    action: str
    steps: list[StepWork] = field(default_factory=list)

    def open_steps(self) -> list[StepWork]:
        """Steps not finished yet."""
        return [s for s in self.steps if s.state not in {StepState.DONE, StepState.FAILED}]

    @property
    def finished(self) -> bool:
        """Every step done or failed."""
        return not self.open_steps()


@dataclass(slots=True, kw_only=True)
class UserWork:
    """A user's items, in plan order."""

    user_id: str
    items: deque[ItemWork]

    def ready(self) -> list[StepWork]:
        """The steps that may be sent now: the current item's lowest open phase."""
        while self.items and self.items[0].finished:
            self.items.popleft()
        if not self.items:
            return []
        current = self.items[0].open_steps()
        if any(s.state in {StepState.IN_FLIGHT, StepState.BLOCKED} for s in current):
            return []
        pending = [s for s in current if s.state is StepState.PENDING]
        if not pending:
            return []
        lowest = min(s.phase for s in pending)
        return [s for s in pending if s.phase == lowest]

    @property
    def done(self) -> bool:
        """Nothing left for this user."""
        return not self.ready() and not any(item.open_steps() for item in self.items)


class Scheduler:
    """Packs ready steps of many users into batches; not thread-safe (the run locks it)."""

    def __init__(self, users: Iterable[UserWork]) -> None:
        self._users: deque[UserWork] = deque(users)

    def add(self, users: Iterable[UserWork]) -> None:
        """More users (the next wave)."""
        self._users.extend(users)

    def next_batch(self, limit: int = MAX_BATCH) -> list[StepWork]:
        """Up to `limit` steps from users in turn, marked in flight."""
        batch: list[StepWork] = []
        rounds = len(self._users)
        for _ in range(rounds):
            if len(batch) >= limit:
                break
            user = self._users[0]
            self._users.rotate(-1)
            ready = user.ready()
            if len(ready) > limit and not batch:
                ready = ready[:limit]  # one user with more steps than a batch holds
            if not ready or len(batch) + len(ready) > limit:
                continue
            for step in ready:
                step.state = StepState.IN_FLIGHT
            batch.extend(ready)
        return batch

    def prune(self) -> None:
        """Forget users with nothing left."""
        self._users = deque(user for user in self._users if not user.done)

    @property
    def idle(self) -> bool:
        """No user has anything left (in flight, blocked or pending)."""
        return all(user.done for user in self._users)

    def blocked(self) -> list[StepWork]:
        """Steps waiting for reconciliation."""
        return [
            step
            for user in self._users
            for item in user.items
            for step in item.steps
            if step.state is StepState.BLOCKED
        ]


def users_from(items: Sequence[ItemWork]) -> list[UserWork]:
    """Group items by user, keeping the given order."""
    grouped: dict[str, deque[ItemWork]] = {}
    for item in items:
        grouped.setdefault(item.user_id, deque()).append(item)
    return [UserWork(user_id=user, items=queue) for user, queue in grouped.items()]
