"""The emulator's view of HTTP: requests, responses, Graph error bodies and headers.

Handlers raise `GraphError` for every documented failure; `error_response` turns it into
the OData error body of graph-reference.md section 11, with `request-id`,
`client-request-id` and `innerError.date` exactly as Graph writes them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

GRAPH_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
PLAIN_JSON = "application/json; charset=utf-8"


class ConnectionFault(StrEnum):
    """What the server does to the connection instead of (or after) answering normally."""

    RESET_BEFORE = "reset_before"  # close without answering; the change is not applied
    DROP_AFTER = "drop_after"  # apply the change, then close without answering
    DRIP = "drip"  # answer one byte at a time, slowly


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One HTTP request, or one item of a `$batch` (then `batch_item_id` is set)."""

    method: str
    path: str  # percent-decoded path, without the query, e.g. "/v1.0/users/abc"
    raw_path: str  # the target exactly as received, query included
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""
    batch_item_id: str | None = None
    batch_seq: int | None = None  # request-log seq of the enclosing $batch

    def header(self, name: str, default: str | None = None) -> str | None:
        """A request header by case-insensitive name."""
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body parsed as JSON; a malformed body is a Graph 400."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set "
                "and payload is of valid JSON format.",
            ) from None


@dataclass(slots=True, kw_only=True)
class Response:
    """One HTTP response; `fault` asks the server to mistreat the connection."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    fault: ConnectionFault | None = None
    drip_delay_s: float = 0.0

    def json(self) -> Any:
        """The body parsed as JSON (tests and the batch assembler use it)."""
        return json.loads(self.body) if self.body else None


class GraphError(Exception):
    """A Graph failure with its HTTP status, `error.code` and `error.message`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        inner: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.inner = dict(inner or {})


def graph_date(now: dt.datetime) -> str:
    """`innerError.date` format: `YYYY-MM-DDTHH:MM:SS` (no zone, no fraction)."""
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso(now: dt.datetime) -> str:
    """Graph's DateTimeOffset format: `2026-11-28T06:09:33Z`."""
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(obj: Any) -> bytes:
    """Compact JSON as Graph sends it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(status: int, obj: Any, *, headers: Mapping[str, str] | None = None) -> Response:
    """A Graph JSON response."""
    return Response(
        status=status,
        headers={"Content-Type": GRAPH_JSON, **(headers or {})},
        body=dumps(obj),
    )


def empty_response(status: int = 204, *, headers: Mapping[str, str] | None = None) -> Response:
    """A response without a body (204 No Content)."""
    return Response(status=status, headers=dict(headers or {}))


def error_response(
    err: GraphError, *, request_id: str, client_request_id: str, now: dt.datetime
) -> Response:
    """The OData error body of graph-reference.md section 11 for `err`."""
    inner: dict[str, Any] = dict(err.inner)
    inner.update(
        {"date": graph_date(now), "request-id": request_id, "client-request-id": client_request_id}
    )
    body = {"error": {"code": err.code, "message": err.message, "innerError": inner}}
    headers = {"Content-Type": PLAIN_JSON, **err.headers}
    return Response(status=err.status, headers=headers, body=dumps(body))
