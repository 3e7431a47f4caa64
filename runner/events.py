"""`events.jsonl`: the structured log `apply` writes, one JSON object per event, redacted.

Every event has `time` (UTC), `event` (its kind) and `phase`; the rest depends on the kind
(batch, item, status, timing, pacing). Listeners (the terminal's progress display, a CI log in
`--log-format json`) see the same events. Secrets never reach it: every value goes through
`redact` first, and the engine never puts a request or response body into an event.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from runner.secrets import redact

Listener = Callable[[dict[str, Any]], None]


class EventLog:
    """Append-only JSON lines, flushed per event; thread-safe."""

    def __init__(self, path: Path | None, *, listeners: tuple[Listener, ...] = ()) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        if path is not None:
            self._handle = path.open("a", encoding="utf-8")
        self._listeners = listeners
        self._lock = threading.Lock()
        self.phase = "start"

    def emit(self, event: str, **fields: Any) -> None:
        """Record one event (and tell the listeners)."""
        record: dict[str, Any] = {
            "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "event": event,
            "phase": self.phase,
            **fields,
        }
        line = redact(json.dumps(record, ensure_ascii=False, default=str, sort_keys=False))
        with self._lock:
            if self._handle is not None:
                self._handle.write(line + "\n")
                self._handle.flush()
        for listener in self._listeners:
            listener(json.loads(line))

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
