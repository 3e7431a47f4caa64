"""The CLI's error boundary: exit codes of product-spec §2 and what reaches the operator."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest

from runner.cli import Console, cli, main
from runner.errors import (
    AuthError,
    ExitCode,
    HaltedError,
    InputError,
    RefusedError,
    RunnerError,
    StorageError,
)
from runner.secrets import register_secret


@pytest.fixture
def raising(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[[BaseException], tuple[int, str, str]]]:
    """Run `entra-bulk boom` whose body raises the given exception; return (code, out, err)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    box: dict[str, BaseException] = {}

    @click.command(name="boom")
    def boom() -> None:
        raise box["exc"]

    cli.add_command(boom)

    def run(exc: BaseException) -> tuple[int, str, str]:
        box["exc"] = exc
        out, err = io.StringIO(), io.StringIO()
        with pytest.raises(SystemExit) as exit_info:
            main(["boom"], console=Console(stdout=out, stderr=err))
        return int(exit_info.value.code or 0), out.getvalue(), err.getvalue()

    yield run
    del cli.commands["boom"]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InputError, ExitCode.INVALID_INPUT),
        (RefusedError, ExitCode.REFUSED),
        (HaltedError, ExitCode.HALTED),
        (AuthError, ExitCode.AUTH),
        (StorageError, ExitCode.STORAGE),
    ],
)
def test_expected_errors_print_one_line_and_exit_with_their_code(
    raising: Callable[[BaseException], tuple[int, str, str]],
    error: type[RunnerError],
    code: ExitCode,
) -> None:
    """Each RunnerError is `error: message` on stderr and its own exit code."""
    status, out, err = raising(error("plan.yaml:3:5: /targets: empty", hint="add a target"))
    assert status == code
    assert out == ""
    assert err == "error: plan.yaml:3:5: /targets: empty\nhint: add a target\n"


def test_a_bug_is_exit_70_with_the_traceback_saved(
    raising: Callable[[BaseException], tuple[int, str, str]], tmp_path: Path
) -> None:
    """An unexpected exception prints one line, saves a redacted traceback, exits 70."""
    register_secret("hunter2-canary-secret")
    status, _, err = raising(ValueError("token hunter2-canary-secret leaked?"))
    assert status == ExitCode.INTERNAL
    (line,) = err.splitlines()
    assert line.startswith("error: internal error (ValueError): this is a bug; traceback saved to ")
    saved = Path(line.rsplit(" ", 1)[1])
    assert saved.parent == tmp_path / "state" / "entra-bulk"
    text = saved.read_text()
    assert "ValueError: token [REDACTED] leaked?" in text
    assert "hunter2-canary-secret" not in text
    assert saved.stat().st_mode & 0o777 == 0o600


def test_interrupt_is_exit_130(raising: Callable[[BaseException], tuple[int, str, str]]) -> None:
    """Ctrl-C ends the command with exit 130."""
    status, _, err = raising(KeyboardInterrupt())
    assert status == ExitCode.INTERRUPTED
    assert err == "error: interrupted\n"


def test_usage_error_is_exit_2() -> None:
    """An unknown option is invalid usage: exit 2 with click's message."""
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        main(["--no-such-option"], console=Console(stdout=io.StringIO(), stderr=err))
    assert exit_info.value.code == ExitCode.INVALID_INPUT
    assert err.getvalue() == (
        "Usage: entra-bulk [OPTIONS] COMMAND [ARGS]...\n"
        "Try 'entra-bulk --help' for help.\n\n"
        "Error: No such option '--no-such-option'. Did you mean '--no-color'?\n"
    )


def test_help_exits_0() -> None:
    """`entra-bulk --help` lists the commands and exits 0."""
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"], console=Console(stdout=out, stderr=io.StringIO()))
    assert exit_info.value.code == ExitCode.SUCCESS


def test_json_log_format_makes_stderr_json_lines(
    raising: Callable[[BaseException], tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --log-format json an error and its hint are one JSON object on stderr."""
    box: dict[str, BaseException] = {"exc": InputError("bad plan", hint="fix it")}

    @click.command(name="boom2")
    def boom2() -> None:
        raise box["exc"]

    cli.add_command(boom2)
    try:
        err = io.StringIO()
        with pytest.raises(SystemExit):
            main(
                ["--log-format", "json", "boom2"], console=Console(stdout=io.StringIO(), stderr=err)
            )
    finally:
        del cli.commands["boom2"]
    assert json.loads(err.getvalue()) == {"level": "error", "message": "bad plan", "hint": "fix it"}
