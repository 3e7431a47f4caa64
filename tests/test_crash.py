"""The crash test hook `ENTRA_BULK_CRASH_AT=POINT[:N]`: parsing, and SIGKILL at the N-th arrival."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner import crash
from runner.errors import ExitCode, InputError

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import sys
    from runner.crash import crash_point

    point = sys.argv[1]
    for n in range(1, 6):
        print(f"reached {n}", flush=True)
        crash_point(point)
    print("finished", flush=True)
    """
)


def _run(point: str, env_value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != crash.ENV_VAR}
    if env_value is not None:
        env[crash.ENV_VAR] = env_value
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, point],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_parse_point_and_count() -> None:
    """`POINT` means the first arrival, `POINT:N` the N-th; empty text disarms."""
    assert crash.parse("after_intent_commit") == crash.CrashTarget(point="after_intent_commit")
    assert crash.parse(" mid_secrets_write:3 ") == crash.CrashTarget(
        point="mid_secrets_write", count=3
    )
    assert crash.parse("") is None


def test_every_documented_point_is_accepted() -> None:
    """The six points of product-spec section 7 are known, and only those."""
    assert set(crash.POINTS) == {
        "before_intent_commit",
        "after_intent_commit",
        "after_send_before_outcome",
        "after_outcome_commit",
        "mid_secrets_write",
        "mid_report_write",
    }
    for point in crash.POINTS:
        assert crash.parse(point) == crash.CrashTarget(point=point)


def test_unknown_point_is_rejected_naming_the_known_ones() -> None:
    """A typo in the variable stops the command (exit 2) and lists the valid points."""
    with pytest.raises(InputError) as caught:
        crash.parse("after_intent_comit")
    assert str(caught.value) == (
        "ENTRA_BULK_CRASH_AT='after_intent_comit': unknown crash point 'after_intent_comit'; "
        "known points: before_intent_commit, after_intent_commit, after_send_before_outcome, "
        "after_outcome_commit, mid_secrets_write, mid_report_write"
    )
    assert caught.value.exit_code is ExitCode.INVALID_INPUT


@pytest.mark.parametrize("value", ["after_intent_commit:0", "after_intent_commit:x", "x:1:2"])
def test_bad_count_is_rejected(value: str) -> None:
    """A count that is not a whole number >= 1 (or a malformed value) is an input error."""
    with pytest.raises(InputError):
        crash.parse(value)


def test_process_is_killed_at_the_nth_arrival() -> None:
    """With `POINT:3` the process dies by SIGKILL on the third arrival, not before or after."""
    result = _run("after_intent_commit", "after_intent_commit:3")
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.splitlines() == ["reached 1", "reached 2", "reached 3"]
    assert "killing the process at after_intent_commit (arrival 3)" in result.stderr


def test_default_count_is_the_first_arrival() -> None:
    """Without `:N` the first arrival kills."""
    result = _run("mid_report_write", "mid_report_write")
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.splitlines() == ["reached 1"]


def test_unset_variable_never_kills() -> None:
    """Without the variable every arrival passes."""
    result = _run("after_intent_commit", None)
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == "finished"


def test_other_points_pass_when_one_is_armed() -> None:
    """Only the armed point kills; other points are ignored."""
    result = _run("after_outcome_commit", "after_intent_commit:1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "finished"


def test_count_beyond_the_arrivals_never_kills() -> None:
    """`POINT:9` with five arrivals lets the process finish."""
    result = _run("after_intent_commit", "after_intent_commit:9")
    assert result.returncode == 0
    assert "finished" in result.stdout


def test_bad_variable_fails_at_the_first_point() -> None:
    """An unknown point in the environment surfaces as an input error, not a silent no-op."""
    result = _run("after_intent_commit", "bogus")
    assert result.returncode == 1  # an uncaught InputError in the bare script
    assert "unknown crash point 'bogus'" in result.stderr
    assert "finished" not in result.stdout


def test_unknown_name_in_code_is_a_bug_when_armed() -> None:
    """`crash_point('typo')` raises ValueError while the hook is armed (a misspelt call site)."""
    result = _run("after_intent_comit", "after_intent_commit")
    assert result.returncode == 1
    assert "crash_point('after_intent_comit'): not a crash point" in result.stderr
