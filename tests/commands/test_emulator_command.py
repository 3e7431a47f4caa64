"""`entra-bulk emulator serve`: runs in the foreground, writes emulator.json, stops cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from runner.errors import ExitCode


def _serve(state: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "emulator", "serve", "--state", str(state), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, process: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())  # type: ignore[no-any-return]
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("emulator.json never appeared")


def test_serve_writes_connection_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The server answers on the URLs of emulator.json and SIGTERM stops it with exit 0."""
    state = tmp_path / "state"
    process = _serve(state, "--users", "25", "--seed", "3", "--time-scale", "5")
    try:
        info = _wait_for(state / "emulator.json", process)
        assert info["time_scale"] == 5.0
        status = httpx.get(f"{info['admin_url']}/state", timeout=5).json()
        assert status["users"] == 25
        assert status["seed"] == 3
        assert (state / "emulator.json").stat().st_mode & 0o777 == 0o600
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == ExitCode.SUCCESS, err
    assert f"ENTRA_BULK_EMULATOR={state / 'emulator.json'}" in out
    assert info["apps"][0]["client_secret"] not in out + err  # type: ignore[index]
    assert not (state / "emulator.json").exists()


def test_serve_refuses_a_state_folder_of_another_tenant(tmp_path: Path) -> None:
    """Asking for another size over an existing tenant is exit 2 naming both and --reset."""
    state = tmp_path / "state"
    first = _serve(state, "--users", "20")
    _wait_for(state / "emulator.json", first)
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=20)
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "emulator",
            "serve",
            "--state",
            str(state),
            "--users",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == ExitCode.INVALID_INPUT
    assert second.stderr == (
        f"error: {state} holds a tenant of 20 users from seed 1, not 30 users from seed 1; "
        "use another --state folder or --reset to regenerate it\n"
    )
