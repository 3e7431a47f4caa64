"""The Microsoft Graph client: bearer tokens, JSON, paging, `$batch`, facts about failures.

It never retries and never sleeps: every call returns a `GraphResponse` (whatever the
status) or raises `TransportFailure` saying whether the request may have been sent. The
engine decides what to do. A per-request total deadline covers servers that drip bytes
(httpx's read timeout is per chunk).
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from runner import __version__
from runner.graph.facts import (
    GraphProtocolError,
    GraphResponse,
    SendState,
    TransportFailure,
    parse_failure,
    parse_retry_after,
    parse_server_date,
    parse_throttle_percentage,
)

MAX_BATCH = 20
TraceHook = Callable[[dict[str, Any]], None]
TokenSource = Callable[[], str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Connect, per-chunk read/write, pool, and the total deadline of one request."""

    connect_s: float = 10.0
    read_s: float = 30.0
    write_s: float = 30.0
    pool_s: float = 10.0
    total_s: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRequest:
    """One request inside `$batch`; `url` is relative to the version root (`/users/...`)."""

    id: str
    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The wire form; writes always carry a body and Content-Type (Graph requires it)."""
        item: dict[str, Any] = {"id": self.id, "method": self.method, "url": self.url}
        headers = dict(self.headers)
        body = self.body
        if self.method in {"POST", "PATCH", "PUT"} and body is None:
            body = {}
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
            item["body"] = body
        if headers:
            item["headers"] = headers
        if self.depends_on:
            item["dependsOn"] = list(self.depends_on)
        return item


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """A `$batch` answer correlated by id.

    `items` holds a response for each request id Graph answered; `missing` the ids it did not
    answer; `unexpected` ids in the answer that were never sent or came twice (never
    attributed to anything); `malformed` when the body was not a batch response at all.
    """

    envelope: GraphResponse
    items: Mapping[str, GraphResponse]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...] = ()
    malformed: bool = False


class GraphClient:
    """A thin, honest httpx client for one Graph root (`https://graph.microsoft.com`)."""

    def __init__(
        self,
        *,
        root_url: str,
        token: TokenSource,
        timeouts: Timeouts | None = None,
        verify: str | bool = True,
        trace: TraceHook | None = None,
        transport: httpx.BaseTransport | None = None,
        throttle_priority: str | None = None,
    ) -> None:
        self.root_url = root_url.rstrip("/")
        self._origin = urlsplit(self.root_url)
        self._token = token
        self.timeouts = timeouts or Timeouts()
        self._trace = trace
        t = self.timeouts
        tls: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        headers = {"User-Agent": f"entra-bulk/{__version__}", "Accept": "application/json"}
        if throttle_priority:
            headers["x-ms-throttle-priority"] = throttle_priority
        self._http = httpx.Client(
            timeout=httpx.Timeout(
                connect=t.connect_s, read=t.read_s, write=t.write_s, pool=t.pool_s
            ),
            verify=tls,
            transport=transport,
            headers=headers,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- requests -------------------------------------------------------------------------

    def url(self, path: str, *, version: str = "v1.0") -> str:
        """The absolute URL of a path relative to a version root."""
        return f"{self.root_url}/{version}{path if path.startswith('/') else '/' + path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        version: str = "v1.0",
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        client_request_id: str | None = None,
        absolute_url: str | None = None,
    ) -> GraphResponse:
        """Send one request; a response of any status, or `TransportFailure`."""
        url = absolute_url or self.url(path, version=version)
        crid = client_request_id or str(uuid.uuid4())
        send_headers = {"client-request-id": crid, "Authorization": f"Bearer {self._token()}"}
        if headers:
            send_headers.update(headers)
        content: bytes | None = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode("utf-8")
            send_headers.setdefault("Content-Type", "application/json")
        started = time.monotonic()
        deadline = started + self.timeouts.total_s
        request = self._http.build_request(
            method, url, params=params, content=content, headers=send_headers
        )
        status = 0
        try:
            response = self._http.send(request, stream=True)
            try:
                status = response.status_code
                chunks: list[bytes] = []
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        msg = f"no complete response within {self.timeouts.total_s:g} s"
                        raise TransportFailure(SendState.MAYBE_SENT, msg, client_request_id=crid)
                raw = b"".join(chunks)
            finally:
                response.close()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            self._emit(method, url, None, started, crid, failure=SendState.NOT_SENT)
            raise TransportFailure(
                SendState.NOT_SENT, _describe(exc), client_request_id=crid
            ) from None
        except httpx.TransportError as exc:
            self._emit(method, url, None, started, crid, failure=SendState.MAYBE_SENT)
            raise TransportFailure(
                SendState.MAYBE_SENT, _describe(exc), client_request_id=crid
            ) from None
        except TransportFailure:
            self._emit(method, url, status or None, started, crid, failure=SendState.MAYBE_SENT)
            raise
        facts = self._facts(status, response.headers, raw, time.monotonic() - started, crid)
        self._emit(method, url, status, started, crid, request_id=facts.request_id)
        return facts

    def _facts(
        self,
        status: int,
        raw_headers: httpx.Headers,
        raw: bytes,
        elapsed: float,
        crid: str,
    ) -> GraphResponse:
        headers = {name.lower(): value for name, value in raw_headers.items()}
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                body = raw.decode("utf-8", "replace")
        server_date = parse_server_date(headers.get("date"))
        return GraphResponse(
            status=status,
            headers=headers,
            body=body,
            request_id=headers.get("request-id"),
            client_request_id=headers.get("client-request-id", crid),
            retry_after_s=parse_retry_after(headers.get("retry-after"), now=server_date),
            error=parse_failure(status, body, headers) if status >= 400 else None,
            elapsed_s=elapsed,
            server_date=server_date,
            throttle_percentage=parse_throttle_percentage(
                headers.get("x-ms-throttle-limit-percentage")
            ),
        )

    def _emit(
        self,
        method: str,
        url: str,
        status: int | None,
        started: float,
        crid: str,
        *,
        request_id: str | None = None,
        failure: SendState | None = None,
    ) -> None:
        if self._trace is None:
            return
        self._trace(
            {
                "method": method,
                "path": urlsplit(url).path,
                "status": status,
                "request_id": request_id,
                "client_request_id": crid,
                "ms": round((time.monotonic() - started) * 1000, 1),
                **({"transport": failure.value} if failure else {}),
            }
        )

    # -- paging ---------------------------------------------------------------------------

    def get_pages(
        self,
        path: str,
        *,
        version: str = "v1.0",
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[GraphResponse]:
        """Every page of a collection, following `@odata.nextLink` verbatim (same origin only).

        Stops after a page that is not 200 (the caller reads its error). Request headers such
        as ConsistencyLevel are sent again with every page, as Graph requires.
        """
        response = self.request("GET", path, version=version, params=params, headers=headers)
        while True:
            yield response
            if response.status != 200 or not isinstance(response.body, dict):
                return
            next_link = response.body.get("@odata.nextLink")
            if not next_link:
                return
            self._check_origin(str(next_link))
            response = self.request("GET", "", headers=headers, absolute_url=str(next_link))

    def _check_origin(self, link: str) -> None:
        parts = urlsplit(link)
        if (parts.scheme, parts.netloc) != (self._origin.scheme, self._origin.netloc):
            msg = f"Graph returned a nextLink to another origin: {parts.scheme}://{parts.netloc}"
            raise GraphProtocolError(msg)

    # -- $batch ---------------------------------------------------------------------------

    def batch(
        self,
        requests: Sequence[BatchRequest],
        *,
        version: str = "v1.0",
        client_request_id: str | None = None,
    ) -> BatchResult:
        """Send up to 20 requests as one `$batch`; responses correlated by id."""
        if not 0 < len(requests) <= MAX_BATCH:
            msg = f"a batch holds 1 to {MAX_BATCH} requests, not {len(requests)}"
            raise ValueError(msg)
        ids = [request.id for request in requests]
        if len({i.lower() for i in ids}) != len(ids):
            msg = "batch request ids must be unique"
            raise ValueError(msg)
        envelope = self.request(
            "POST",
            "/$batch",
            version=version,
            json_body={"requests": [request.as_json() for request in requests]},
            client_request_id=client_request_id,
        )
        return correlate(envelope, ids)


def correlate(envelope: GraphResponse, ids: Sequence[str]) -> BatchResult:
    """Match a `$batch` envelope's responses to the request ids (pure; used by tests too)."""
    if envelope.status != 200:
        return BatchResult(envelope=envelope, items={}, missing=tuple(ids))
    body = envelope.body
    responses = body.get("responses") if isinstance(body, dict) else None
    if not isinstance(responses, list):
        return BatchResult(envelope=envelope, items={}, missing=tuple(ids), malformed=True)
    wanted = {i.lower(): i for i in ids}
    items: dict[str, GraphResponse] = {}
    unexpected: list[str] = []
    seen: set[str] = set()
    for entry in responses:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            unexpected.append(repr(entry)[:40])
            continue
        key = entry["id"].lower()
        if key not in wanted or key in seen:
            unexpected.append(str(entry["id"]))
            if key in seen:
                # Two answers for one id: neither can be trusted.
                items.pop(wanted[key], None)
            continue
        seen.add(key)
        items[wanted[key]] = _item_facts(entry, envelope)
    missing = tuple(i for i in ids if i not in items)
    return BatchResult(
        envelope=envelope, items=items, missing=missing, unexpected=tuple(unexpected)
    )


def _item_facts(entry: Mapping[str, Any], envelope: GraphResponse) -> GraphResponse:
    raw_status = entry.get("status")
    status = raw_status if isinstance(raw_status, int) else 0
    raw_headers = entry.get("headers")
    headers = (
        {str(k).lower(): str(v) for k, v in raw_headers.items()}
        if isinstance(raw_headers, dict)
        else {}
    )
    body = entry.get("body")
    return GraphResponse(
        status=status,
        headers=headers,
        body=body,
        request_id=headers.get("request-id") or envelope.request_id,
        client_request_id=envelope.client_request_id,
        retry_after_s=parse_retry_after(headers.get("retry-after"), now=envelope.server_date),
        error=parse_failure(status, body, headers) if status >= 400 or status == 0 else None,
        elapsed_s=envelope.elapsed_s,
        server_date=envelope.server_date,
        throttle_percentage=parse_throttle_percentage(
            headers.get("x-ms-throttle-limit-percentage")
        ),
    )


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
