"""`entra-bulk validate`: every problem of every file, exit 0 or 2, and never the network."""

from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from runner.cli import Console, main
from runner.errors import ExitCode
from runner.resources import data_dir

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plans"
EXAMPLES = data_dir("plans")
CSV_EXAMPLE_ACTIONS = "disable_account,revoke_sessions"


def _run(*args: str) -> tuple[int, str, str]:
    console = Console(stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(SystemExit) as exited:
        main(["validate", *args], console=console)
    code = exited.value.code
    assert isinstance(code, int)
    return code, console.stdout.getvalue(), console.stderr.getvalue()  # type: ignore[attr-defined]


def _examples(suffixes: tuple[str, ...]) -> list[str]:
    return sorted(str(path) for path in EXAMPLES.iterdir() if path.suffix in suffixes)


def test_every_example_plan_validates() -> None:
    """Each YAML example is valid as shipped, and each CSV example with --actions."""
    yaml_examples = _examples((".yaml", ".yml"))
    csv_examples = _examples((".csv",))
    assert len(yaml_examples) >= 3
    assert len(csv_examples) >= 2
    code, out, err = _run(*yaml_examples)
    assert (code, out) == (ExitCode.SUCCESS, ""), err
    code, out, err = _run(*csv_examples, "--actions", CSV_EXAMPLE_ACTIONS)
    assert (code, out) == (ExitCode.SUCCESS, ""), err


def test_breach_example_follows_microsofts_order() -> None:
    """The breach example resets, revokes, re-registers and deletes app passwords, in order."""
    from runner import validate

    plan = validate.load(EXAMPLES / "breach-containment.yaml").plan
    assert plan is not None
    assert plan.actions == (
        "reset_password",
        "revoke_sessions",
        "require_mfa_reregistration",
        "delete_app_passwords",
    )


def test_problems_of_all_files_then_a_summary_per_file(tmp_path: Path) -> None:
    """Problems go to stdout one per line, a summary per file to stderr; exit 2."""
    good = tmp_path / "good.yaml"
    good.write_text(
        "version: 1\nname: g\nactions: [disable_account]\ntargets:\n  - user: a@contoso.com\n"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("user,reset_password\na@contoso.com,maybe\nb@contoso.com,true\n")
    code, out, err = _run(
        str(good), str(bad), str(tmp_path / "gone.yaml"), "--actions", "revoke_sessions"
    )
    assert code == ExitCode.INVALID_INPUT
    assert out.splitlines() == [
        f"{bad}:2: column reset_password: expected true or false, got 'maybe'",
        f"{tmp_path / 'gone.yaml'}: no such file",
    ]
    assert err.splitlines() == [
        f"{good}: valid (1 target)",
        f"{bad}: invalid (1 error, 0 warnings)",
        f"{tmp_path / 'gone.yaml'}: invalid (1 error, 0 warnings)",
    ]


def test_warnings_alone_exit_zero(tmp_path: Path) -> None:
    """A plan with only warnings is valid: exit 0, warnings printed."""
    plan = tmp_path / "p.yaml"
    plan.write_text(
        "version: 1\nname: p\nactions: [revoke_sessions, reset_password]\n"
        "targets:\n  - user: a@contoso.com\n"
    )
    code, out, err = _run(str(plan))
    assert code == ExitCode.SUCCESS
    assert out.startswith(f"{plan}:3:11: /actions/0: warning: revoke_sessions comes before")
    assert err == f"{plan}: valid (1 target, 1 warning)\n"


def test_json_format(tmp_path: Path) -> None:
    """--format json prints one JSON document with every file's verdict and problems."""
    plan = tmp_path / "p.yaml"
    plan.write_text("version: 1\nname: p\nactoins: []\n")
    code, out, _ = _run(str(plan), "--format", "json")
    assert code == ExitCode.INVALID_INPUT
    data = json.loads(out)
    assert data["valid"] is False
    assert [(p["line"], p["message"]) for p in data["files"][0]["problems"]] == [
        (
            1,
            "no targets: list users, groups or queries under `targets`, or name a CSV file in "
            "`targets_from`",
        ),
        (3, "unknown key 'actoins'; did you mean 'actions'?"),
    ]


def test_csv_options_are_wired(tmp_path: Path) -> None:
    """--delimiter, --encoding, --name and --ticket reach the CSV reader and the plan."""
    plan = tmp_path / "eu.csv"
    plan.write_bytes("user;note\r\nadele@contoso.com;Café\r\n".encode("cp1252"))
    code, out, _ = _run(str(plan), "--actions", "disable_account")
    assert code == ExitCode.INVALID_INPUT
    assert "pass --encoding cp1252" in out
    code, out, err = _run(
        str(plan), "--actions", "disable_account", "--encoding", "cp1252", "--delimiter", ";",
        "--name", "eu-wave", "--ticket", "CHG-9",
    )  # fmt: skip
    assert (code, out) == (ExitCode.SUCCESS, ""), out
    assert err == f"{plan}: valid (1 target)\n"


def test_csv_settings_for_yaml_only_is_a_usage_error(tmp_path: Path) -> None:
    """--actions with only YAML plans is refused: a YAML plan sets its own actions."""
    plan = tmp_path / "p.yaml"
    plan.write_text("version: 1\n")
    code, out, err = _run(str(plan), "--actions", "disable_account")
    assert code == ExitCode.INVALID_INPUT
    assert out == ""
    assert err == (
        "error: --actions set a CSV plan's settings; a YAML plan sets its own\n"
        "hint: put them in the YAML plan, or validate a CSV file\n"
    )


def test_validate_makes_no_network_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validating every fixture and example opens no socket connection and resolves no name."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        msg = "validate must not touch the network"
        raise AssertionError(msg)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    files = [str(path) for path in sorted(FIXTURES.iterdir())] + _examples((".yaml", ".csv"))
    code, _, err = _run(*files, "--actions", CSV_EXAMPLE_ACTIONS)
    assert code == ExitCode.INVALID_INPUT  # the fixtures are bad on purpose
    assert "internal error" not in err
    assert attempts == []


def test_relative_paths_are_shown_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths in messages are the ones the user typed."""
    monkeypatch.chdir(FIXTURES)
    code, out, _ = _run("11-unknown-action.yaml")
    assert code == ExitCode.INVALID_INPUT
    assert out.startswith("11-unknown-action.yaml:3:11: /actions/0: unknown action 'disabel'")
    assert os.sep not in out.split(":")[0]
