"""Builders shared by the journal, secrets-file and run-folder tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.journal import Journal
from runner.runstate import (
    ITEM_TRANSITIONS,
    STEP_TRANSITIONS,
    Intent,
    ItemSpec,
    ItemStatus,
    RunHeader,
    StepStatus,
    TimeSource,
)

START = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


class Clock:
    """A clock that moves 1 ms each time it is read."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(milliseconds=1)
        return self.now


def header(**changes: Any) -> RunHeader:
    """A run header with plausible values (keyword arguments replace fields)."""
    base = RunHeader(
        plan_name="offboarding wave 3",
        ticket="CHG-1042",
        digest="sha256:" + "ab" * 32,
        tenant_id="11111111-2222-3333-4444-555555555555",
        emulated=True,
        author={"upn": "alice@contoso.example"},
        approvals=({"approver": "bob", "digest": "sha256:" + "ab" * 32},),
        content={"targets": [{"upn": "u1@contoso.example"}], "format_version": 1},
        options={"canary": 10, "halt_on_failure_rate": 0.05},
        created=START,
        tool_version="0.1.0",
    )
    return dataclasses.replace(base, **changes)


def spec(
    index: int,
    *,
    action: str = "revoke_sessions",
    kind: str = "change",
    repeatable: bool = True,
    position: int = 0,
) -> ItemSpec:
    """One item for target `index`."""
    return ItemSpec(
        target_index=index,
        object_id=str(uuid.UUID(int=index + 1)),
        upn=f"user{index}@contoso.example",
        display_name=f"User {index}",
        action=action,
        position=position,
        kind=kind,
        summary=f"{kind} for user {index}",
        repeatable=repeatable,
        note="note" if index % 2 else None,
        ticket="INC-7" if index % 3 == 0 else None,
    )


def make_run_dir(root: Path, name: str = "run") -> Path:
    """A 0700 folder, as `rundir.create_run_dir` makes."""
    path = root / name
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


def new_journal(
    run_dir: Path, specs: Sequence[ItemSpec], *, lock: bool = True, clock: Clock | None = None
) -> Journal:
    """A journal over `specs`, holding the lock unless told not to."""
    journal = Journal.create(run_dir, header(), specs, clock=clock or Clock())
    if lock:
        journal.acquire_lock(command="pytest")
    return journal


def intent(
    item_id: int, key: str = "send", *, reissue: bool = False, secret_ref: str | None = None
) -> Intent:
    """An intent with a fresh UUID, timed by the server's Date."""
    return Intent(
        item_id=item_id,
        step_key=key,
        intent_id=str(uuid.uuid4()),
        intent_time=START,
        time_source=TimeSource.SERVER,
        label=f"request {key}",
        reissue=reissue,
        secret_ref=secret_ref,
    )


def assert_chains(journal: Journal) -> None:
    """Every recorded transition is a legal successor of the one before it, from the item's
    first status to its current one, for items and steps alike."""
    items = {item.id: item for item in journal.items()}
    steps = {(s.item_id, s.key): s for s in journal.steps()}
    item_at = {item_id: str(item.initial_status) for item_id, item in items.items()}
    step_at: dict[tuple[int, str], str] = {}
    for move in journal.transitions():
        if move.step_key is None:
            assert move.old == item_at[move.item_id], move
            assert ItemStatus(move.new) in ITEM_TRANSITIONS[ItemStatus(move.old)], move
            item_at[move.item_id] = move.new
        else:
            key = (move.item_id, move.step_key)
            assert move.old == step_at.get(key, "planned"), move
            assert StepStatus(move.new) in STEP_TRANSITIONS[StepStatus(move.old)], move
            step_at[key] = move.new
    for item_id, item in items.items():
        assert item_at[item_id] == item.status, item
    for key, step in steps.items():
        assert step_at.get(key, "planned") == step.status, step
