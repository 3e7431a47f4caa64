"""Progress of a run (bar on a terminal, a line every N seconds elsewhere, JSON for CI,
silence with -q) and the summary at its end, with the exact commands to go on."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from runner import summary
from runner.cli import Console
from runner.journal import Journal
from runner.progress import ApplyProgress, ReadProgress, Tracker, duration
from runner.report_data import tally
from tests.report_support import make_run


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counts:
    """Journal counts a test sets as the run goes."""

    def __init__(self, **counts: int) -> None:
        self.value = dict(counts)

    def __call__(self) -> dict[str, int]:
        return dict(self.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0 s"), (59.6, "1 min 00 s"), (208, "3 min 28 s"), (7500, "2 h 05 min")],
)
def test_durations_read_like_a_person_says_them(seconds: float, text: str) -> None:
    """Seconds, minutes and seconds, hours and minutes."""
    assert duration(seconds) == text


def test_tracker_measures_done_rate_and_eta_from_the_journal_counts() -> None:
    """Total is what was open at the start; done, rate and ETA follow the counts."""
    clock = FakeClock()
    tracker = Tracker(clock=clock)
    tracker.update({"planned": 100, "manual": 3})
    clock.now += 10
    tracker.update({"planned": 75, "intent": 5, "verified": 19, "failed": 1, "manual": 3})
    snap = tracker.snapshot()
    assert (snap.total, snap.done, snap.rate, snap.eta_s) == (100, 20, 2.0, 40.0)
    assert snap.line() == "progress: 20/100 items (20%), 2.0 items/s, ETA 40 s; 1 failed"


def test_tracker_says_what_deserves_a_line_now() -> None:
    """Canary, reconciliation, long pauses (once per interval), drift (capped), warnings."""
    clock = FakeClock()
    tracker = Tracker(clock=clock)
    assert tracker.event({"event": "canary", "phase": "canary", "targets": 1}) == (
        "info",
        "canary: the first target goes alone, verified before the rest",
    )
    assert tracker.event({"event": "reconcile", "items": 3}) == (
        "info",
        "reconciling 3 items whose outcome is unknown (reading them back before anything is sent)",
    )
    assert tracker.event({"event": "throttled", "status": 429}) is None
    pause = {"event": "pacing", "kind": "pause", "seconds": 30.0}
    assert tracker.event(pause) == ("info", "paused 30 s: Graph asked every sender to wait")
    assert tracker.event(pause) is None
    assert tracker.event({"event": "pacing", "kind": "pause", "seconds": 1.0}) is None
    said = [tracker.event({"event": "drifted", "upn": f"u{n}", "reason": "r"}) for n in range(22)]
    assert said[0] == ("info", "drifted, skipped: u0: r")
    assert said[20] == ("info", "more targets drifted: they are counted, and listed in the report")
    assert said[21] is None
    assert tracker.event({"event": "warning", "message": "roles unreadable"}) == (
        "warn",
        "roles unreadable",
    )
    snap = tracker.snapshot()
    assert (snap.throttled, snap.paused_s, snap.drifted, snap.phase) == (1, 30.0, 22, "canary")


def test_overlapping_pauses_count_their_wall_time_once() -> None:
    """Paused seconds are the union of the pauses asked for (as the pacer counts), not a sum."""
    clock = FakeClock()
    tracker = Tracker(clock=clock)
    for at, seconds in ((0.0, 5.0), (0.0, 5.0), (1.0, 5.0), (2.0, 1.0), (10.0, 2.0)):
        clock.now = 1000.0 + at
        tracker.event({"event": "pacing", "kind": "pause", "seconds": seconds})
    assert tracker.snapshot().paused_s == 8.0


def _console(**options: object) -> Console:
    return Console(stdout=io.StringIO(), stderr=io.StringIO(), **options)  # type: ignore[arg-type]


def _err(console: Console) -> str:
    return console.stderr.getvalue()  # type: ignore[attr-defined]


def test_plain_lines_come_every_interval_not_per_batch() -> None:
    """Not on a terminal: notable events at once, then one progress line per interval."""
    console, clock, counts = _console(), FakeClock(), Counts(planned=10)
    display = ApplyProgress(console, counts=counts, terminal=False, clock=clock, interval_s=10)
    display({"event": "canary", "phase": "canary", "targets": 2})
    for _ in range(5):
        display({"event": "batch", "phase": "apply", "items": 2, "verdicts": {"done": 2}})
    counts.value = {"planned": 6, "verified": 4}
    display.tick()
    clock.now += 10
    display.tick()
    counts.value = {"verified": 10}
    display.close()
    assert _err(console) == (
        "canary: the first 2 targets go alone, verified before the rest\n"
        "progress: 4/10 items (40%), 0.4 items/s, ETA 15 s\n"
    )


def test_json_log_format_echoes_events_and_adds_progress_records() -> None:
    """`--log-format json`: every event as JSON on stderr, and a `progress` object."""
    console, clock, counts = _console(log_format="json"), FakeClock(), Counts(planned=4)
    display = ApplyProgress(console, counts=counts, terminal=False, clock=clock, interval_s=10)
    display({"event": "throttled", "phase": "apply", "status": 429, "retry_after": 1.0})
    counts.value = {"planned": 2, "verified": 2}
    clock.now += 10
    display.tick()
    display.close()
    records = [json.loads(line) for line in _err(console).splitlines()]
    assert records[0] == {"event": "throttled", "phase": "apply", "status": 429, "retry_after": 1.0}
    assert records[1] == {
        "event": "progress",
        "phase": "apply",
        "done": 2,
        "total": 4,
        "failed": 0,
        "drifted": 0,
        "verifying": 0,
        "throttled": 1,
        "paused_s": 0.0,
        "rate": 0.2,
        "eta_s": 10.0,
    }


def test_quiet_prints_nothing_but_warnings() -> None:
    """`-q`: no progress at all; a warning still shows."""
    console, clock = _console(quiet=True), FakeClock()
    display = ApplyProgress(console, counts=Counts(planned=3), terminal=False, clock=clock)
    display({"event": "canary", "phase": "canary", "targets": 1})
    display({"event": "warning", "phase": "start", "message": "could not read the roles"})
    clock.now += 60
    display.tick()
    display.close()
    assert _err(console) == "warning: could not read the roles\n"


def test_a_terminal_gets_a_bar_with_counts_rate_and_notes_above_it() -> None:
    """On a terminal: a rich bar (counts, percentage, rate) and event lines printed above."""
    console, clock, counts = _console(color=False), FakeClock(), Counts(planned=12)
    display = ApplyProgress(console, counts=counts, terminal=True, clock=clock, refresh_s=60)
    display({"event": "canary", "phase": "canary", "targets": 1})
    clock.now += 4
    counts.value = {"verified": 8, "noop": 1, "manual": 3}
    final = display.close()
    text = _err(console)
    assert "canary: the first target goes alone, verified before the rest\n" in text
    assert "Done" in text and "12/12" in text and "100%" in text and "3.0/s" in text
    assert (final.done, final.total) == (12, 12)


def test_summary_names_counts_figures_and_every_next_command(tmp_path: Path) -> None:
    """The end-of-run summary: counts, 429s, pauses, what needs a person and its commands."""
    run_dir = make_run(tmp_path)
    with Journal.open(run_dir) as journal:
        counted = tally(journal.iter_items())
    figures = summary.RunFigures(requests=14, throttled=2, paused_s=2.0, reconciled=1)
    run = "runs/x y"
    assert [text for _, text in summary.lines(run, counted, figures)] == [
        "Result: 2 drifted, 1 failed, 4 manual, 1 noop, 1 unknown, 3 verified",
        "Graph requests: 14; 429s met: 2; paused 2.0 s; reconciled by read-back: 1",
        "Failed or drifted: 3 items of 2 users (failed.csv); re-plan them with: entra-bulk plan "
        "'runs/x y/failed.yaml'",
        "Unknown outcome: 1 items (unknown.csv); resume to read them back, never re-sent "
        "blindly: entra-bulk apply --resume 'runs/x y'",
        "Manual: 4 steps Graph cannot do, with their portal steps in 'runs/x y/manual-steps.md'; "
        "then: entra-bulk confirm 'runs/x y' 3 6 9 12 --by \"YOUR NAME\"",
        "Secrets: 1 of the 3 in 'runs/x y/secrets.csv' (0600) are in effect: hand over only "
        'those (secret_state "in effect" in report.csv), keep the file until a resume settles '
        "the rest",
        "Secrets never set: 1 in secrets.csv, of items 4 (alex.wilber@contoso.com): their "
        "change was not applied, do not hand them over",
        "Secrets unsettled: 1 in secrets.csv, of items 7 (megan.bowen@contoso.com): not known "
        "to be set; hand them over only once a resume shows them in effect",
        "Report: 'runs/x y/report.html' (rebuild: entra-bulk report 'runs/x y')",
        "Run folder: runs/x y",
    ]


def test_quiet_summary_keeps_the_result_the_problems_and_the_folder(tmp_path: Path) -> None:
    """`-q` still prints the final result, what failed or is unknown, and the run folder."""
    run_dir = make_run(tmp_path)
    console = _console(quiet=True)
    figures = summary.RunFigures(requests=1, throttled=0, paused_s=0, reconciled=0)
    summary.show(console, run_dir, figures)
    lines = _err(console).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "Result",
        "Failed or drifted",
        "Unknown outcome",
        "Run folder",
    ]


def test_the_ticker_stops_when_the_run_is_over_without_finish() -> None:
    """If apply ends by an error (no summary), the ticker stops once the run lock is gone."""
    console, clock = _console(), FakeClock()
    display = ApplyProgress(
        console,
        counts=Counts(planned=2),
        terminal=False,
        clock=clock,
        interval_s=0.05,
        running=lambda: False,
    )
    display({"event": "batch", "phase": "apply", "items": 1, "verdicts": {"done": 1}})
    clock.now += 60
    thread = display._thread
    assert thread is not None
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert _err(console) == ""


def test_plan_reads_are_counted_in_a_line_every_interval() -> None:
    """Plan's reads: no line per batch, one every ten seconds with the count and the rate."""
    clock = FakeClock()
    console = _console()
    reads = ReadProgress(console, terminal=False, clock=clock)
    reads(20)
    clock.now += 5
    reads(20)
    assert _err(console) == ""
    clock.now += 6
    reads(40)
    assert _err(console) == "plan: 80 reads in 11 s (7 reads/s)\n"


def test_plan_reads_in_json_and_quiet() -> None:
    """--log-format json gives progress records; -q gives nothing."""
    clock = FakeClock()
    console = _console(log_format="json")
    reads = ReadProgress(console, terminal=False, clock=clock)
    clock.now += 10
    reads(20)
    assert json.loads(_err(console)) == {
        "event": "progress",
        "phase": "plan",
        "reads": 20,
        "elapsed_s": 10.0,
    }
    quiet = _console(quiet=True)
    silent = ReadProgress(quiet, terminal=False, clock=clock)
    clock.now += 20
    silent(20)
    assert _err(quiet) == ""
