"""Progress of a run on stderr, and the summary at its end.

`apply` emits events (`runner.events.EventLog`); `ApplyProgress` listens to them and polls the
run's journal for the item counts (the journal is the truth: items done / total), then shows:

- on a terminal: a rich progress bar with counts, rate, ETA, 429s and pauses;
- elsewhere: one plain line every `INTERVAL_S` seconds (not one per batch), plus a line for
  each notable event (canary, reconciliation, drift, long pauses);
- with `--log-format json`: every event as a JSON object, and a `progress` object every
  `INTERVAL_S` seconds, for CI;
- with `-q`: nothing but warnings.

`Tracker` is the pure part (events, counts and a clock in; snapshots and lines out).
"""

from __future__ import annotations

import atexit
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from runner.journal import JOURNAL_NAME, Journal

INTERVAL_S = 10.0  # plain and JSON progress lines
REFRESH_S = 0.5  # how often the terminal bar re-reads the counts
WINDOW_S = 60.0  # the rate is measured over this much recent time
LONG_PAUSE_S = 5.0  # pauses at least this long get a line of their own
DRIFT_LINES = 20  # drifted targets named one by one, then counted
OPEN = ("planned", "intent", "unknown")

Counts = Callable[[], Mapping[str, int]]


class Output(Protocol):
    """What progress needs of the CLI's `Console`."""

    stderr: IO[str]
    quiet: bool
    color: bool
    log_format: str

    def info(self, text: str) -> None:
        """A status line (not under -q)."""

    def warn(self, text: str) -> None:
        """A warning (even under -q)."""


def duration(seconds: float) -> str:
    """`42 s`, `3 min 28 s`, `2 h 05 min`."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """Where a run stands now."""

    phase: str
    done: int
    total: int
    failed: int
    throttled: int
    paused_s: float
    drifted: int
    verifying: int
    rate: float | None  # items per second, recently
    eta_s: float | None

    def line(self) -> str:
        """`progress: 120/500 items (24%), 18.2 items/s, ETA 21 s; 2 failed; 3 × 429, ...`."""
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        parts = [f"progress: {self.done}/{self.total} items{share}"]
        if self.rate is not None:
            parts.append(f"{self.rate:.1f} items/s")
        if self.eta_s is not None and self.done < self.total:
            parts.append(f"ETA {duration(self.eta_s)}")
        text = ", ".join(parts)
        extra = []
        if self.verifying:
            extra.append(f"verifying {self.verifying}")
        if self.failed:
            extra.append(f"{self.failed} failed")
        if self.drifted:
            extra.append(f"{self.drifted} drifted")
        if self.throttled or self.paused_s:
            extra.append(f"{self.throttled} × 429, paused {self.paused_s:.1f} s")
        return "; ".join([text, *extra])

    def as_json(self) -> dict[str, Any]:
        """The `progress` event of `--log-format json`."""
        return {
            "event": "progress",
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "failed": self.failed,
            "drifted": self.drifted,
            "verifying": self.verifying,
            "throttled": self.throttled,
            "paused_s": round(self.paused_s, 3),
            "rate": None if self.rate is None else round(self.rate, 3),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }


class Tracker:
    """Events and journal counts in, snapshots and notable lines out (pure; clock passed)."""

    def __init__(self, *, clock: Callable[[], float], window_s: float = WINDOW_S) -> None:
        self._clock = clock
        self._window_s = window_s
        self.total: int | None = None
        self.phase = "start"
        self.counts: dict[str, int] = {}
        self.throttled = 0
        self.paused_s = 0.0
        self._paused_until = float("-inf")
        self.drifted = 0
        self._samples: deque[tuple[float, int]] = deque()
        self._last_pause_line = float("-inf")

    def update(self, counts: Mapping[str, int]) -> None:
        """New item counts from the journal (the first fixes the total: what is open now)."""
        self.counts = dict(counts)
        if self.total is None:
            self.total = self._open()
        now = self._clock()
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and self._samples[0][0] < now - self._window_s:
            self._samples.popleft()

    def _open(self) -> int:
        return sum(self.counts.get(status, 0) for status in OPEN)

    @property
    def done(self) -> int:
        """Items finished since the display started."""
        return max(0, (self.total or 0) - self._open())

    def event(self, event: Mapping[str, Any]) -> tuple[str, str] | None:
        """Take one event; returns `(level, text)` when it deserves a line now."""
        kind = event.get("event")
        self.phase = str(event.get("phase") or self.phase)
        if kind == "throttled":
            self.throttled += 1
        elif kind == "pacing" and event.get("kind") == "pause":
            seconds = float(event.get("seconds") or 0.0)
            now = self._clock()
            # Pauses overlap (each 429 of a batch asks again): count the wall time once, as
            # the pacer does, not the sum of what each asked for.
            until = now + max(0.0, seconds)
            if until > self._paused_until:
                self.paused_s += until - max(self._paused_until, now)
                self._paused_until = until
            if seconds >= LONG_PAUSE_S and now - self._last_pause_line >= INTERVAL_S:
                self._last_pause_line = now
                return "info", f"paused {seconds:.0f} s: Graph asked every sender to wait"
        elif kind == "canary":
            count = event.get("targets")
            first = "target goes" if count == 1 else f"{count} targets go"
            return "info", f"canary: the first {first} alone, verified before the rest"
        elif kind == "reconcile":
            return "info", (
                f"reconciling {event.get('items')} items whose outcome is unknown "
                "(reading them back before anything is sent)"
            )
        elif kind == "resume":
            return "info", f"resumed: {event.get('orphans')} requests left in flight are settled"
        elif kind == "drifted":
            self.drifted += 1
            if self.drifted <= DRIFT_LINES:
                return "info", f"drifted, skipped: {event.get('upn')}: {event.get('reason')}"
            if self.drifted == DRIFT_LINES + 1:
                return "info", "more targets drifted: they are counted, and listed in the report"
        elif kind == "warning":
            return "warn", str(event.get("message", ""))
        return None

    def snapshot(self) -> Snapshot:
        """The run as it stands."""
        rate = None
        if len(self._samples) >= 2:
            (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
            if t1 - t0 >= 1.0 and d1 > d0:
                rate = (d1 - d0) / (t1 - t0)
        total = self.total or 0
        eta = None if rate is None else (total - self.done) / rate
        verifying = self.counts.get("succeeded", 0) if not self._open() else 0
        return Snapshot(
            phase="verify" if verifying else self.phase,
            done=self.done,
            total=total,
            failed=self.counts.get("failed", 0),
            throttled=self.throttled,
            paused_s=self.paused_s,
            drifted=self.drifted,
            verifying=verifying,
            rate=rate,
            eta_s=eta,
        )


class ApplyProgress:
    """The listener `apply` gives its EventLog; `close()` stops it."""

    def __init__(
        self,
        console: Output,
        *,
        counts: Counts | None,
        terminal: bool,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = INTERVAL_S,
        refresh_s: float = REFRESH_S,
        running: Callable[[], bool] | None = None,
    ) -> None:
        self.console = console
        self._counts = counts
        self._running = running  # False once the run is over (its lock released)
        self._clock = clock
        self._interval_s = interval_s
        self._refresh_s = refresh_s
        self.tracker = Tracker(clock=clock)
        self.mode = (
            "json"
            if console.log_format == "json"
            else "quiet"
            if console.quiet
            else "bar"
            if terminal
            else "lines"
        )
        self._lock = threading.RLock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_line = clock()
        self._bar: Any = None
        self._task: Any = None
        self._poll()

    # -- output -----------------------------------------------------------------------------

    def _say(self, level: str, text: str) -> None:
        if level == "warn":
            if self._bar is not None:
                self._bar.console.print(f"warning: {text}", markup=False, highlight=False)
            else:
                self.console.warn(text)
        elif self.mode == "bar" and self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        elif self.mode == "lines":
            self.console.info(text)

    def _json(self, record: Mapping[str, Any]) -> None:
        self.console.stderr.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.console.stderr.flush()

    # -- the listener and the ticker --------------------------------------------------------

    def __call__(self, event: dict[str, Any]) -> None:
        """One event of the run."""
        with self._lock:
            if self._thread is None and self.mode != "quiet":
                self._start()
            said = self.tracker.event(event)
            if self.mode == "json":
                self._json(event)
            elif said is not None:
                self._say(*said)

    def _poll(self) -> None:
        if self._counts is not None:
            self.tracker.update(self._counts())

    def tick(self, *, final: bool = False) -> None:
        """Re-read the counts; refresh the bar, or print a line when the interval is up."""
        with self._lock:
            self._poll()
            snap = self.tracker.snapshot()
            if self.mode == "bar" and self._bar is not None:
                running = not final and snap.eta_s is not None and snap.done < snap.total
                self._bar.update(
                    self._task,
                    total=max(snap.total, 1),
                    completed=snap.done,
                    description="Done" if final else _describe(snap),
                    rate="" if snap.rate is None else f"{snap.rate:.1f}/s",
                    eta=f"ETA {duration(snap.eta_s or 0.0)}" if running else "",
                    extra=_extra(snap),
                )
            elif self.mode in {"lines", "json"} and self._clock() - self._last_line >= (
                self._interval_s
            ):
                self._last_line = self._clock()
                if self.mode == "json":
                    self._json(snap.as_json())
                else:
                    self.console.info(snap.line())

    def _start(self) -> None:
        if self.mode == "bar":
            self._bar, self._task = _rich_bar(self.console)
            self._bar.start()
            atexit.register(self.close)
            self.tick()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        wait = self._refresh_s if self.mode == "bar" else min(self._interval_s, 1.0)
        while not self._stopped.wait(wait):
            if self._running is not None and not self._running():
                return  # the run ended without `finish` (an error): stop polling its journal
            self.tick()

    def close(self) -> Snapshot:
        """Stop the ticker and the bar (after a last refresh); returns the last snapshot.
        Idempotent: `finish` calls it, and so does the interpreter's exit after a crash."""
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            if self._bar is not None:
                atexit.unregister(self.close)
                self.tick(final=True)
                self._bar.stop()
                self._bar = None
            if self._counts is not None:
                self._poll()
                self._counts = None  # its journal is closed next
            return self.tracker.snapshot()


def _describe(snap: Snapshot) -> str:
    return {"verify": "Verifying", "canary": "Canary", "reconcile": "Reconciling"}.get(
        snap.phase, "Applying"
    )


def _extra(snap: Snapshot) -> str:
    parts = [f"verifying {snap.verifying}"] if snap.verifying else []
    if snap.failed:
        parts.append(f"{snap.failed} failed")
    if snap.throttled or snap.paused_s:
        parts.append(f"{snap.throttled}×429 paused {snap.paused_s:.0f}s")
    return " · ".join(parts)


def _rich_bar(console: Output) -> tuple[Any, Any]:
    from rich.console import Console as RichConsole
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    out = RichConsole(
        file=console.stderr,
        force_terminal=True,
        no_color=not console.color,
        color_system="standard" if console.color else None,
        highlight=False,
    )
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[extra]}"),
        console=out,
        transient=False,
    )
    task = bar.add_task("Applying", total=1, rate="", eta="", extra="")
    return bar, task


# --- apply's wiring: one display per console, and the summary at the end -----------------------


_ACTIVE: dict[int, tuple[ApplyProgress, Journal | None]] = {}


def for_apply(console: Output, run_dir: Path | None) -> ApplyProgress:
    """The progress display of a run in `run_dir` (its journal gives the counts)."""
    reader = None
    if run_dir is not None and (run_dir / JOURNAL_NAME).is_file():
        reader = Journal.open(run_dir)
    journal = reader

    def counts() -> Mapping[str, int]:
        assert journal is not None
        return {str(status): n for status, n in journal.counts().items()}

    def running() -> bool:
        assert journal is not None
        return journal.lock_holder() is not None

    terminal = bool(getattr(console.stderr, "isatty", lambda: False)())
    display = ApplyProgress(
        console,
        counts=counts if reader else None,
        terminal=terminal,
        running=running if reader else None,
    )
    _ACTIVE[id(console)] = (display, reader)
    return display


def finish(console: Output) -> Snapshot | None:
    """Stop the display `for_apply` made for this console (None when there was none)."""
    found = _ACTIVE.pop(id(console), None)
    if found is None:
        return None
    display, reader = found
    try:
        return display.close()
    finally:
        if reader is not None:
            reader.close()


# --- plan's reads: a count and a rate (the total is not known before groups are expanded) --


class ReadProgress:
    """How many Graph reads `plan` has done: a spinner with count and rate on a terminal, a
    line every `INTERVAL_S` seconds elsewhere, `progress` JSON records for CI, nothing with
    -q. Thread-safe: the reader's threads report."""

    def __init__(
        self,
        console: Output,
        *,
        terminal: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._console = console
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_line = self._started
        self.reads = 0
        self._bar: Any = None
        self._task: Any = None
        if terminal and not console.quiet and console.log_format != "json":
            from rich.console import Console as RichConsole
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            out = RichConsole(
                file=console.stderr,
                force_terminal=True,
                no_color=not console.color,
                highlight=False,
            )
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("Reading the tenant: {task.completed:,.0f} reads"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=out,
                transient=True,
            )
            self._task = self._bar.add_task("reads", total=None, rate="")
            self._bar.start()

    def _rate(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-6)
        return f"{self.reads / elapsed:,.0f} reads/s"

    def __call__(self, count: int) -> None:
        """`count` more reads were answered."""
        with self._lock:
            self.reads += count
            now = self._clock()
            if self._bar is not None:
                self._bar.update(self._task, completed=self.reads, rate=self._rate(now))
                return
            if self._console.quiet or now - self._last_line < INTERVAL_S:
                return
            self._last_line = now
            if self._console.log_format == "json":
                record = {
                    "event": "progress",
                    "phase": "plan",
                    "reads": self.reads,
                    "elapsed_s": round(now - self._started, 1),
                }
                self._console.stderr.write(json.dumps(record) + "\n")
                self._console.stderr.flush()
            else:
                self._console.info(
                    f"plan: {self.reads:,} reads in {duration(now - self._started)} "
                    f"({self._rate(now)})"
                )

    def close(self) -> None:
        """Remove the spinner."""
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
