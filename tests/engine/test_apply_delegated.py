"""Apply with a delegated token: the resetPassword operation (202 + Location), polled to its end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from runner import validate
from runner.config import settings_from_connection
from runner.emulator import Emulator
from runner.engine.apply import ApplyOptions, Run
from runner.engine.pacer import Pacer
from runner.events import EventLog
from runner.graph.client import GraphClient
from runner.journal import Journal
from runner.planner import make_plan
from runner.runstate import ItemStatus, RunHeader, specs_from_plan
from runner.secretfile import SecretsFile
from tests.conftest import EmulatorFactory

PLAN = """version: 1
name: delegated
actions: [reset_password]
targets:
  - user: adele.vance@contoso.com
  - user: megan.bowen@contoso.com
safety: {required_approvals: 0, canary: 0}
"""


class Tokens:
    """A delegated token of the seeded Privileged Authentication Administrator."""

    description = "delegated test token"

    def __init__(self, emulator: Emulator) -> None:
        self.value = emulator.mint_user_token("pa.admin@contoso.com")

    def access_token(self, *, refresh: bool = False, claims: str | None = None) -> str:
        return self.value


def _apply(emulator: Emulator, tmp_path: Path) -> Journal:
    source = tmp_path / "p.yaml"
    source.write_text(PLAN)
    plan = validate.load(str(source)).plan
    assert plan is not None
    settings = settings_from_connection(emulator.info)
    tokens = Tokens(emulator)
    client = GraphClient(root_url=emulator.graph_url, token=tokens.access_token)
    frozen_plan = make_plan(
        plan, client=client, tokens=tokens, settings=settings, now=dt.datetime.now(dt.UTC)
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    header = RunHeader(
        plan_name="delegated",
        ticket=None,
        digest=frozen_plan.digest,
        tenant_id=frozen_plan.tenant_id,
        emulated=True,
        author=dict(frozen_plan.content["author"]),
        approvals=(),
        content=frozen_plan.content,
        options={},
        created=dt.datetime.now(dt.UTC),
    )
    journal = Journal.create(run_dir, header, specs_from_plan(frozen_plan))
    journal.acquire_lock(command="test")
    secrets = SecretsFile(run_dir)
    Run(
        journal=journal,
        client=client,
        pacer=Pacer(settings.limits),
        secrets=secrets,
        events=EventLog(run_dir / "events.jsonl"),
        refresh_token=lambda: None,
        delegated=True,
        options=ApplyOptions(canary=0, reconcile_wait_s=2.0, verify_timeout_s=10.0),
        stop=lambda: False,
    ).run()
    secrets.close()
    return journal


@pytest.fixture
def emulator(emulator_factory: EmulatorFactory) -> Emulator:
    return emulator_factory(consistency_delay_s=0.2, operation_delay_s=0.5)


def test_delegated_reset_polls_the_operation(emulator: Emulator, tmp_path: Path) -> None:
    """The reset is a resetPassword operation: 202, Location kept, polled to succeeded."""
    journal = _apply(emulator, tmp_path)
    items = journal.items()
    assert [item.status for item in items] == [ItemStatus.VERIFIED, ItemStatus.VERIFIED]
    steps = journal.steps()
    assert all(step.location and "/authentication/operations/" in step.location for step in steps)
    ledger = httpx.get(f"{emulator.admin_url}/ledger").json()["value"]
    resets = [row for row in ledger if row["effect"] == "password_reset"]
    assert len(resets) == 2
    assert {row["detail"]["via"] for row in resets} == {"resetPassword"}


def test_a_failed_operation_fails_the_item(emulator: Emulator, tmp_path: Path) -> None:
    """An operation that ends `failed` fails its item, and nothing is re-sent."""
    httpx.post(f"{emulator.admin_url}/faults", json={"kind": "operation_fails", "count": 1})
    journal = _apply(emulator, tmp_path)
    statuses = sorted(str(item.status) for item in journal.items())
    assert statuses == ["failed", "verified"]
    requests = httpx.get(f"{emulator.admin_url}/requests").json()["value"]
    posts = [r for r in requests if r["method"] == "POST" and r["path"].endswith("/resetPassword")]
    assert len(posts) == 2


def test_an_operation_that_cannot_be_followed_is_decided_by_reading_back(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A 404 on the operation's Location does not poll forever: the step becomes unknown, the
    user is read back, and the reset (made) is verified; nothing is re-sent."""
    rule = {
        "kind": "status",
        "status": 404,
        "method": "GET",
        "path": "/users/*/authentication/operations/*",
    }
    assert httpx.post(f"{emulator.admin_url}/faults", json=rule).status_code == 201
    journal = _apply(emulator, tmp_path)
    assert [item.status for item in journal.items()] == [ItemStatus.VERIFIED] * 2
    requests = httpx.get(f"{emulator.admin_url}/requests").json()["value"]
    posts = [r for r in requests if r["method"] == "POST" and r["path"].endswith("/resetPassword")]
    assert len(posts) == 2
    moves = [t for t in journal.transitions() if str(t.new) == "unknown"]
    assert moves, "the steps went through unknown"
