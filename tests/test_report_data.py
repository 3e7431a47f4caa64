"""The report's pure core: neutralised cells, timeline figures and buckets, the run's outcome."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from runner.errors import ExitCode
from runner.report_data import Outcome, assess, count_text, crash_log, neutralise
from runner.report_timeline import bucket_size, ended, figures, run_spans, timeline
from runner.runstate import Event, ItemStatus, LockInfo
from tests.report_support import at


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+1 555 0100", "'+1 555 0100"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tlook", "'\tlook"),
        ("\rlook", "'\rlook"),
        ("adele.vance@contoso.com", "adele.vance@contoso.com"),
        ("a=b", "a=b"),
        (None, ""),
        (403, "403"),
    ],
)
def test_cells_that_start_like_a_formula_are_neutralised(value: Any, cell: str) -> None:
    """`= + - @`, tab and CR at the start get a `'`; anything else is left as it is."""
    assert neutralise(value) == cell


def _event(seq: int, kind: str, when: float = 0.0, **detail: Any) -> Event:
    return Event(seq=seq, time=at(when), kind=kind, detail=detail)


def _lock(seq: int, command: str, when: float = 0.0) -> Event:
    new = {"command": command, "pid": 7, "host": "h", "lock_id": "x", "started": "t"}
    return Event(seq=seq, time=at(when), kind="lock_acquired", detail={"new": new})


def test_figures_count_429s_pauses_peaks_and_runs() -> None:
    """Timeline figures: 429s, paused seconds, rate changes, peak limit, halts, apply runs."""
    events = [
        _lock(1, "apply"),
        _event(2, "throttled", 1, seconds=2.0),
        _event(3, "pause", 1, seconds=2.0),
        _event(4, "slow_down", 1, factor=0.5),
        _event(5, "warning", 2, detail="0.93"),
        _event(6, "warning", 3, detail="0.81"),
        _event(7, "speed_up", 20, factor=0.6),
        _event(8, "halt", 21, reason="retries ran out"),
        _event(9, "lock_released", 22),
        _lock(10, "apply --resume", 60),
        _lock(11, "confirm", 90),
    ]
    found = figures(events)
    assert (found.throttled, found.paused_s, found.slow_downs, found.speed_ups) == (1, 2.0, 1, 1)
    assert (found.throttle_warnings, found.peak_throttle_percentage) == (2, 0.93)
    assert (found.halts, found.runs) == (("retries ran out",), 2)


def test_the_run_ends_with_the_last_apply_activity_not_a_lock_release_or_confirm() -> None:
    """`ended` is the latest start, event or item change inside apply processes' spans."""
    events = [
        _lock(1, "apply"),
        _event(2, "halt", 21, reason="retries ran out"),
        _event(3, "lock_released", 22),
        _lock(4, "apply --resume", 60),
        _event(5, "lock_released", 80),
        _lock(6, "confirm", 90),
        _event(7, "lock_released", 91),
    ]
    assert run_spans(events) == [(at(0), at(22)), (at(60), at(80))]
    asked: list[tuple[dt.datetime, dt.datetime | None]] = []

    def last_change(start: dt.datetime, end: dt.datetime | None) -> dt.datetime | None:
        asked.append((start, end))
        return at(75) if start == at(60) else None

    assert ended(events, last_change) == at(75)
    assert asked == [(at(0), at(22)), (at(60), at(80))]
    assert ended(events[:4], lambda start, end: None) == at(60)  # the resume still holds it
    assert ended(events[:2], lambda start, end: None) == at(21)
    assert ended([_lock(1, "confirm")], lambda start, end: at(5)) is None


@pytest.mark.parametrize(
    ("span", "size"),
    [(0.5, 1), (59, 1), (61, 2), (299, 5), (3600, 60), (86400, 1800), (10**7, 166667)],
)
def test_buckets_are_round_and_at_most_sixty(span: float, size: int) -> None:
    """The chart's bucket is the smallest round size that gives at most 60 buckets."""
    assert bucket_size(span) == size


def test_timeline_buckets_finishes_429s_and_pause_overlap() -> None:
    """Items land in their bucket; a pause is split across the buckets it overlaps."""
    finished = [at(0.5), at(1.2), at(1.9), at(4.0)]
    events = [_event(1, "throttled", 1.5), _event(2, "pause", 1.5, seconds=2.0)]
    line = timeline(at(0), finished, events)
    assert line.bucket_s == 1
    assert line.finished == (1, 2, 0, 0, 1)
    assert line.throttled == (0, 1, 0, 0, 0)
    assert line.paused_s == (0.0, 0.5, 1.0, 0.5, 0.0)
    assert line.as_json()["series"][1] == [1, 2, 1, 0.5]


def test_nothing_sent_gives_an_empty_timeline() -> None:
    """A run that sent nothing has no buckets."""
    assert timeline(at(0), [], []).finished == ()


def test_count_text_follows_report_order() -> None:
    """Done first, then left alone, then what needs a person; zeros are left out."""
    counts = {"manual": 3, "verified": 8, "noop": 1, "failed": 0}
    assert count_text(counts) == "8 verified, 1 noop, 3 manual"
    assert count_text({}) == "none"


def _counts(**given: int) -> dict[str, int]:
    return {str(s): given.get(str(s), 0) for s in ItemStatus}


RUN = "runs/20260301T090000Z-breach 2026"
RESUME = "entra-bulk apply --resume 'runs/20260301T090000Z-breach 2026'"


@pytest.mark.parametrize(
    ("counts", "unverified", "events", "expected"),
    [
        (
            _counts(verified=8, noop=1, manual=3),
            0,
            [],
            Outcome(
                code=ExitCode.SUCCESS,
                state="succeeded",
                meaning="everything applied and verified",
                next_steps=(f"entra-bulk confirm '{RUN}' ITEM... (see manual-steps.md)",),
            ),
        ),
        (
            _counts(noop=4),
            0,
            [],
            Outcome(code=0, state="nothing to do", meaning="no change was needed"),
        ),
        (
            _counts(verified=2, failed=1, unknown=1),
            1,
            [],
            Outcome(
                code=ExitCode.FINISHED_WITH_FAILURES,
                state="finished with failures",
                meaning="1 unknown, 1 failed, 1 not verified (the report says which)",
                next_steps=(
                    f"{RESUME}  (reads the unknown outcomes back; never re-sends blindly)",
                    f"entra-bulk plan '{RUN}/failed.yaml'  (re-plan them)",
                ),
            ),
        ),
        (
            _counts(verified=2, planned=5),
            0,
            [_lock(1, "apply"), _event(2, "halt", reason="canary: 1 of 1 failed")],
            Outcome(
                code=ExitCode.HALTED,
                state="halted",
                meaning="canary: 1 of 1 failed",
                next_steps=(RESUME,),
            ),
        ),
        (
            _counts(verified=2, planned=5),
            0,
            [_lock(1, "apply"), _event(2, "halt", reason="old"), _lock(3, "apply --resume")],
            Outcome(
                code=None,
                state="stopped without finishing",
                meaning="5 items not finished; its process ended without recording why: an "
                "interruption or an error it printed (no exit code is recorded)",
                next_steps=(RESUME,),
            ),
        ),
        (
            _counts(verified=2, planned=5, manual=1),
            0,
            [_lock(1, "apply"), _event(2, "halt", reason="stop"), _lock(3, "confirm")],
            Outcome(code=ExitCode.HALTED, state="halted", meaning="stop", next_steps=(RESUME,)),
        ),
        (
            _counts(planned=6),
            0,
            [_lock(1, "apply"), _event(2, "drift_abort", upn="a@b.c", reason="changed")],
            Outcome(
                code=ExitCode.REFUSED,
                state="aborted on drift",
                meaning="a@b.c: changed",
                next_steps=("re-plan the plan file, have it approved, and apply the new plan",),
            ),
        ),
        (
            _counts(verified=3, drifted=2),
            0,
            [],
            Outcome(
                code=0,
                state="succeeded",
                meaning="everything applied and verified; 2 drifted items skipped (their "
                "targets changed)",
                next_steps=(f"entra-bulk plan '{RUN}/failed.yaml'  (re-plan them)",),
            ),
        ),
    ],
    ids=[
        "success",
        "nothing",
        "failures",
        "halted",
        "resumed-then-stopped",
        "confirm-keeps-halt",
        "drift",
        "drifted",
    ],
)
def test_the_outcome_is_the_exit_code_apply_gives(
    counts: dict[str, int], unverified: int, events: list[Event], expected: Outcome
) -> None:
    """Read back from counts and timeline: the exit code, its meaning, the next commands."""
    assert assess(counts, unverified=unverified, events=events, run_dir=RUN) == expected


@pytest.mark.parametrize(
    ("counts", "ended", "expected"),
    [
        (
            _counts(succeeded=5),
            _event(3, "run_ended", exit=4),
            ("halted", "verification not finished; the run halted"),
        ),
        (
            _counts(verified=2, planned=1),
            _event(3, "run_ended", exit=130),
            (
                "interrupted",
                "1 items not finished; interrupted (Ctrl-C or SIGTERM); what was in flight "
                "is recorded",
            ),
        ),
        (
            _counts(verified=3),
            _event(3, "run_ended", exit=5),
            (
                "stopped: sign-in or permission",
                "verification not finished; a token or a permission failed mid-run (the run's "
                "error output says which)",
            ),
        ),
    ],
    ids=["halted-while-verifying", "interrupted", "auth"],
)
def test_the_exit_a_run_recorded_is_its_outcome(
    counts: dict[str, int], ended: Event, expected: tuple[str, str]
) -> None:
    """A run that journaled an early exit (4, 130, 5) is reported with it, even when every
    item was sent: never 'everything applied and verified'."""
    outcome = assess(counts, unverified=0, events=[_lock(1, "apply"), ended], run_dir=RUN)
    assert (outcome.code, outcome.state, outcome.meaning, outcome.next_steps) == (
        ended.detail["exit"],
        *expected,
        (RESUME,),
    )


def test_a_locked_run_is_running_or_stale() -> None:
    """A live holder means still running; a dead one left no exit: stopped, resume takes over."""
    since = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
    lock = LockInfo(lock_id="L1", pid=42, host="h", started=since, command="apply")
    counts = _counts(verified=1, planned=3)
    live = assess(counts, unverified=0, events=[], run_dir="r", lock=lock, lock_alive=True)
    assert (live.code, live.state) == (None, "running")
    holder = "pid 42 on host h since 2026-03-01T09:00:00Z (lock id L1)"
    assert live.meaning == f"apply holds the run: {holder}"
    dead = assess(counts, unverified=0, events=[], run_dir="r", lock=lock, lock_alive=False)
    assert (dead.code, dead.code_text, dead.state, dead.next_steps) == (
        None,
        "no exit recorded",
        "stopped without finishing",
        ("entra-bulk apply --resume r",),
    )
    assert dead.meaning == (
        f"3 items not finished; the process is gone ({holder}) and recorded no exit: it was killed"
    )


def test_a_traceback_left_by_the_last_run_means_it_crashed() -> None:
    """An unfinished run whose last apply left crash-STAMP-PID.log is exit 70, naming the file."""
    started = _lock(1, "apply --resume")
    pid = 7
    since = started.time.strftime("%Y%m%dT%H%M%SZ")
    names = [f"crash-{since}-{pid}.log", f"crash-{since}-{pid + 1}.log", "report.csv"]
    found = crash_log(names, [_lock(0, "apply"), started])
    assert found == f"crash-{since}-{pid}.log"
    assert crash_log(["crash-20000101T000000Z-1.log"], [started]) is None
    crashed = assess(
        _counts(planned=2), unverified=0, events=[started], run_dir=RUN, crash_log=found
    )
    assert (crashed.code, crashed.state, crashed.meaning) == (
        ExitCode.INTERNAL,
        "crashed",
        f"2 items not finished; an internal error stopped the run (a bug: the traceback is in "
        f"{found})",
    )
