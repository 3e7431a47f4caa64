"""When a run ended, in its reports: the last thing its apply processes did, the same however
often the reports are rebuilt and whatever `confirm` does afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.errors import ExitCode
from runner.journal import Journal
from runner.runstate import stamp
from tests.conftest import EmulatorFactory
from tests.engine.apply_support import Tenant, tenant_for

PLAN = """version: 1
name: leavers
ticket: INC-1
actions: [revoke_sessions, delete_app_passwords]
targets:
  - user: adele.vance@contoso.com
  - user: alex.wilber@contoso.com
safety: {required_approvals: 0, canary: 1}
"""


@pytest.fixture
def tenant(
    emulator_factory: EmulatorFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Tenant:
    return tenant_for(emulator_factory(consistency_delay_s=0.3), tmp_path, monkeypatch)


def _ended(run_dir: Path) -> str:
    return str(json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["header"]["ended"])


def test_ended_is_the_applys_end_after_report_and_confirm(tenant: Tenant) -> None:
    """`ended` in report.json is not before the last read-back and stays put through
    `entra-bulk report` and `entra-bulk confirm`."""
    ran = tenant.apply(tenant.plan(PLAN))
    assert ran.code == ExitCode.SUCCESS, ran.err
    run_dir = tenant.run_dir()
    after_apply = _ended(run_dir)
    with Journal.open(run_dir) as journal:
        items = list(journal.iter_items())
    checked = [i.verified_at for i in items if i.verified_at is not None]
    assert len(checked) == 2
    assert after_apply >= stamp(max(checked))
    assert tenant.cli("report", str(run_dir)).code == ExitCode.SUCCESS
    assert _ended(run_dir) == after_apply
    manual = next(i.id for i in items if i.action == "delete_app_passwords")
    confirmed = tenant.cli("confirm", str(run_dir), str(manual), "--by", "x")
    assert confirmed.code == ExitCode.SUCCESS, confirmed.err
    assert _ended(run_dir) == after_apply
