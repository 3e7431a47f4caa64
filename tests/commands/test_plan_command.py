"""`entra-bulk plan`: the frozen plan is written, the diff printed, bad input stops early."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.errors import ExitCode
from tests.conftest import EmulatorFactory
from tests.engine.apply_support import Tenant, tenant_for


@pytest.fixture
def tenant(
    emulator_factory: EmulatorFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Tenant:
    return tenant_for(emulator_factory(), tmp_path, monkeypatch)


PLAN = (
    "version: 1\nname: quick\nactions: [disable_account]\n"
    "targets:\n  - user: adele.vance@contoso.com\n"
)


def test_plan_writes_the_frozen_plan_and_says_what_next(tenant: Tenant) -> None:
    """The default output is ./<name>.plan.json; stderr gives the digest and the next commands,
    which name the same tenant."""
    (tenant.folder / "p.yaml").write_text(PLAN)
    ran = tenant.cli("--tenant", "emulator", "plan", "p.yaml")
    assert ran.code == ExitCode.SUCCESS, ran.err
    document = json.loads((tenant.folder / "quick.plan.json").read_text())
    digest = document["digest"]
    assert ran.err.endswith(
        "Frozen plan written to quick.plan.json\n"
        f"Digest: {digest}\n"
        "Next: have it reviewed, then "
        "`entra-bulk --tenant emulator approve quick.plan.json --approver NAME` and "
        f"`entra-bulk --tenant emulator apply quick.plan.json --expect-digest {digest}`\n"
    )
    assert "adele.vance@contoso.com" in ran.out
    assert "will disable sign-in (accountEnabled: false)" in ran.out


def test_plan_json_and_markdown_formats(tenant: Tenant) -> None:
    """--format json prints the content with its digest; markdown the apply command."""
    (tenant.folder / "p.yaml").write_text(PLAN)
    ran = tenant.cli("--tenant", "emulator", "plan", "p.yaml", "--format", "json", "-o", "a.json")
    assert (
        json.loads(ran.out)["digest"]
        == json.loads((tenant.folder / "a.json").read_text())["digest"]
    )
    md = tenant.cli(
        "--tenant", "emulator", "plan", "p.yaml", "--format", "markdown", "-o", "b.json"
    )
    assert "entra-bulk apply b.json --expect-digest sha256:" in md.out


def test_an_invalid_plan_stops_before_any_request(tenant: Tenant) -> None:
    """A plan with errors exits 2 with every problem, and the tenant sees no request."""
    (tenant.folder / "p.yaml").write_text(PLAN.replace("disable_account", "disabel_account"))
    ran = tenant.cli("--tenant", "emulator", "plan", "p.yaml")
    assert ran.code == ExitCode.INVALID_INPUT
    assert "did you mean 'disable_account'" in ran.err
    assert tenant.admin.get("/requests").json()["value"] == []


def test_trace_http_logs_requests_without_secrets(tenant: Tenant) -> None:
    """--trace-http prints one line per Graph request, with ids and no token."""
    (tenant.folder / "p.yaml").write_text(PLAN)
    ran = tenant.cli("--tenant", "emulator", "plan", "p.yaml", "--trace-http")
    lines = [line for line in ran.err.splitlines() if line.startswith("http ")]
    assert lines and all(" request-id=" in line for line in lines)
    assert "eyJ" not in ran.err


def test_a_missing_allowed_signers_file_stops_the_plan(tenant: Tenant) -> None:
    """safety.allowed_signers naming no file exits 2 before any request: the plan must bind
    the keys that may approve it."""
    (tenant.folder / "p.yaml").write_text(PLAN + "safety: {allowed_signers: signers}\n")
    ran = tenant.cli("--tenant", "emulator", "plan", "p.yaml", "-o", "out/p.plan.json")
    assert ran.code == ExitCode.INVALID_INPUT
    assert ran.err == (
        "error: safety.allowed_signers: cannot read out/signers (No such file or directory)\n"
        "hint: the path is relative to the frozen plan's folder (-o); create the file "
        "(ssh's allowed_signers format) before planning\n"
    )
    assert tenant.admin.get("/requests").json()["value"] == []
