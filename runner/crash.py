"""The crash test hook: `ENTRA_BULK_CRASH_AT=POINT[:N]` (product-spec section 7).

A test hook, not a feature. When the variable is set, the process kills itself with SIGKILL
the N-th time (default: the first) it reaches the named point, so the crash tests can check
that nothing is lost and nothing is done twice at every dangerous moment of `apply`:

    before_intent_commit       the intent rows are written but not committed (journal)
    after_intent_commit        the intent is durable, no byte of the request sent (journal)
    after_send_before_outcome  the request went out, its outcome is not recorded (engine)
    after_outcome_commit       the outcome is durable (journal)
    mid_secrets_write          half a row of secrets.csv is written (secretfile)
    mid_report_write           a report file is half written (report)

The variable is read from the environment only, once, on the first call; an unknown point
or a bad count stops the command with an input error (exit 2) naming the known points.
When the variable is unset a call costs one comparison.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass

from runner.errors import InputError

ENV_VAR = "ENTRA_BULK_CRASH_AT"

POINTS: tuple[str, ...] = (
    "before_intent_commit",
    "after_intent_commit",
    "after_send_before_outcome",
    "after_outcome_commit",
    "mid_secrets_write",
    "mid_report_write",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CrashTarget:
    """Where to crash: the named point, on its `count`-th arrival."""

    point: str
    count: int = 1


def parse(value: str) -> CrashTarget | None:
    """`POINT[:N]` → a target; empty text → None; InputError for anything else."""
    text = value.strip()
    if not text:
        return None
    point, sep, count_text = text.partition(":")
    point = point.strip()
    if point not in POINTS:
        msg = (
            f"{ENV_VAR}={value!r}: unknown crash point {point!r}; known points: {', '.join(POINTS)}"
        )
        raise InputError(msg, hint="unset it unless you are running the crash tests")
    count = 1
    if sep:
        try:
            count = int(count_text.strip())
        except ValueError:
            count = 0
        if count < 1:
            msg = f"{ENV_VAR}={value!r}: the count after ':' must be a whole number >= 1"
            raise InputError(msg, hint="unset it unless you are running the crash tests")
    return CrashTarget(point=point, count=count)


class _Unread:
    """Marks that the environment has not been read yet."""


_UNREAD = _Unread()
_target: CrashTarget | _Unread | None = _UNREAD
_arrivals = 0
_lock = threading.Lock()


def armed() -> CrashTarget | None:
    """The target from the environment (read and checked once per process)."""
    global _target  # parsed once per process, by design of the hook
    with _lock:
        if isinstance(_target, _Unread):
            _target = parse(os.environ.get(ENV_VAR, ""))
        return _target


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if `name` is the armed point, reached for the N-th time."""
    if _target is None:
        return
    target = armed()
    if target is None:
        return
    if name not in POINTS:
        msg = f"crash_point({name!r}): not a crash point; known points: {', '.join(POINTS)}"
        raise ValueError(msg)
    if name != target.point:
        return
    global _arrivals  # one counter per process, shared by every thread
    with _lock:
        _arrivals += 1
        arrival = _arrivals
    if arrival == target.count:
        _die(name, arrival)


def _die(name: str, arrival: int) -> None:
    # One unbuffered line so a failing crash test can tell where the process died; nothing
    # else is flushed, as in a real crash.
    line = f"entra-bulk: {ENV_VAR}: killing the process at {name} (arrival {arrival})\n"
    with contextlib.suppress(OSError, ValueError):  # stderr closed or replaced: kill anyway
        os.write(sys.stderr.fileno(), line.encode())
    os.kill(os.getpid(), signal.SIGKILL)
