"""Reads from Graph in `$batch`es of 20, paced, retried until they give a definitive answer.

Reads change nothing, so retrying them is always safe: a throttled item waits for its
Retry-After (every sender pauses), a 5xx or a lost connection is tried again with backoff, a
401 refreshes the token once, an item missing from a batch answer is asked again. What comes
back is Graph's definitive answer per request (200, or an error such as 404 or 403 that the
caller interprets). Paged collections are followed with the same rules.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from runner.engine.cost import cost_of
from runner.engine.pacer import Pacer
from runner.errors import AuthError, HaltedError
from runner.graph.client import MAX_BATCH, BatchRequest, GraphClient
from runner.graph.facts import GraphResponse, TransportFailure

RETRY_STATUSES = frozenset({0, 429, 500, 502, 503, 504})
MAX_ATTEMPTS = 8
MAX_BACKOFF_S = 30.0

TokenRefresh = Callable[[], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Read:
    """One GET; `id` is the caller's key for the answer."""

    id: str
    url: str  # relative to the version root, query included
    version: str = "v1.0"
    headers: Mapping[str, str] = field(default_factory=dict)


class ReadError(HaltedError):
    """Graph kept failing a read beyond the retry budget (an outage): the command stops."""


class Reader:
    """Runs reads for a command (plan's resolution, apply's drift checks, verification)."""

    def __init__(
        self,
        client: GraphClient,
        pacer: Pacer,
        *,
        refresh_token: TokenRefresh | None = None,
        workers: int = 4,
        max_attempts: int = MAX_ATTEMPTS,
        on_read: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.pacer = pacer
        self._refresh = refresh_token
        self._workers = workers
        self._max_attempts = max_attempts
        self._refresh_lock = threading.Lock()
        self._on_read = on_read
        self.requests_sent = 0
        self.server_date: dt.datetime | None = None  # Graph's `Date` of the latest answer
        self._server_date_at = 0.0  # time.monotonic() when it arrived

    def server_now(self) -> dt.datetime | None:
        """Graph's clock now, as far as it is known: the latest answer's `Date` plus the time
        since it arrived (never ahead of Graph: a `Date` is stamped before it arrives)."""
        if self.server_date is None:
            return None
        return self.server_date + dt.timedelta(seconds=time.monotonic() - self._server_date_at)

    # -- batched reads --------------------------------------------------------------------

    def run(
        self, reads: Sequence[Read], *, progress: Callable[[int], None] | None = None
    ) -> dict[str, GraphResponse]:
        """Graph's definitive answer to each read, by id."""
        by_version: dict[str, list[Read]] = {}
        for read in reads:
            by_version.setdefault(read.version, []).append(read)
        chunks = [
            group[start : start + MAX_BATCH]
            for group in by_version.values()
            for start in range(0, len(group), MAX_BATCH)
        ]
        answers: dict[str, GraphResponse] = {}
        if not chunks:
            return answers
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            for result in pool.map(self._run_chunk, chunks):
                answers.update(result)
                if progress is not None:
                    progress(len(result))
        return answers

    def _run_chunk(self, chunk: Sequence[Read]) -> dict[str, GraphResponse]:
        pending = {f"r{index}": read for index, read in enumerate(chunk)}
        answers: dict[str, GraphResponse] = {}
        attempts = 0
        refreshed = False
        while pending:
            attempts += 1
            if attempts > self._max_attempts:
                first = next(iter(pending.values()))
                msg = (
                    f"Graph kept failing reads ({len(pending)} left, e.g. GET {first.url}) "
                    f"after {self._max_attempts} attempts"
                )
                raise ReadError(msg, hint="Graph may be in an outage; try again later")
            units = sum(cost_of("GET", read.url).units for read in pending.values())
            self.pacer.acquire(writes=0, units=units)
            version = next(iter(pending.values())).version
            requests = [
                BatchRequest(id=key, method="GET", url=read.url, headers=read.headers)
                for key, read in pending.items()
            ]
            try:
                result = self.client.batch(requests, version=version)
            except TransportFailure as exc:
                self.pacer.pause(self._backoff(attempts), detail=exc.detail)
                continue
            self.requests_sent += 1
            envelope = result.envelope
            if envelope.server_date is not None:
                self.server_date = envelope.server_date
                self._server_date_at = time.monotonic()
            if envelope.status == 401:
                if refreshed or self._refresh is None:
                    reason = envelope.error.describe() if envelope.error else "401"
                    msg = f"Graph refused the token: {reason}"
                    raise AuthError(msg)
                self._refresh_token()
                refreshed = True
                continue
            if envelope.status != 200:
                self._outer_failure(envelope, attempts)
                continue
            for key, response in result.items.items():
                self.pacer.observed(response.throttle_percentage)
                if response.status == 429:
                    self.pacer.throttled(response.retry_after_s, write=False, detail="read")
                elif response.status in RETRY_STATUSES:
                    self.pacer.pause(
                        response.retry_after_s or self._backoff(attempts),
                        detail=str(response.status),
                    )
                else:
                    answers[pending.pop(key).id] = response
        if self._on_read is not None:
            self._on_read(len(chunk))
        return answers

    def _outer_failure(self, envelope: GraphResponse, attempts: int) -> None:
        if envelope.status == 429:
            self.pacer.throttled(envelope.retry_after_s, write=False, detail="batch envelope")
            return
        if envelope.status in RETRY_STATUSES or envelope.status == 424:
            self.pacer.pause(envelope.retry_after_s or self._backoff(attempts), detail="batch")
            return
        message = envelope.error.describe() if envelope.error else str(envelope.status)
        msg = f"Graph refused a batch of reads: {message}"
        raise ReadError(msg)

    def _refresh_token(self) -> None:
        assert self._refresh is not None
        with self._refresh_lock:
            self._refresh()

    @staticmethod
    def _backoff(attempts: int) -> float:
        return float(min(MAX_BACKOFF_S, 0.5 * 2 ** (attempts - 1)))

    # -- paged collections ----------------------------------------------------------------

    def pages(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        version: str = "v1.0",
    ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, page after page (a non-200 answer is raised)."""
        next_link: str | None = None
        while True:
            response = self._get_page(path, params, headers, version, next_link)
            if response.status != 200 or not isinstance(response.body, dict):
                raise PageError(response)
            for item in response.body.get("value", []):
                if isinstance(item, dict):
                    yield item
            link = response.body.get("@odata.nextLink")
            if not link:
                return
            next_link = str(link)

    def _get_page(
        self,
        path: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        version: str,
        next_link: str | None,
    ) -> GraphResponse:
        refreshed = False
        for attempt in range(1, self._max_attempts + 1):
            self.pacer.acquire(writes=0, units=cost_of("GET", next_link or path).units)
            try:
                if next_link is None:
                    response = self.client.request(
                        "GET", path, version=version, params=params, headers=headers
                    )
                else:
                    response = self.client.request(
                        "GET", "", headers=headers, absolute_url=next_link
                    )
            except TransportFailure as exc:
                self.pacer.pause(self._backoff(attempt), detail=exc.detail)
                continue
            self.requests_sent += 1
            if self._on_read is not None:
                self._on_read(1)
            self.pacer.observed(response.throttle_percentage)
            if response.status == 401 and not refreshed and self._refresh is not None:
                self._refresh_token()
                refreshed = True
                continue
            if response.status == 429:
                self.pacer.throttled(response.retry_after_s, write=False, detail="read")
                continue
            if response.status in RETRY_STATUSES:
                self.pacer.pause(response.retry_after_s or self._backoff(attempt), detail="read")
                continue
            return response
        msg = f"Graph kept failing GET {path} after {self._max_attempts} attempts"
        raise ReadError(msg, hint="Graph may be in an outage; try again later")


class PageError(Exception):
    """A paged read answered with a definitive error (404, 403, 400...)."""

    def __init__(self, response: GraphResponse) -> None:
        description = response.error.describe() if response.error else str(response.status)
        super().__init__(description)
        self.response = response
