"""What a Graph response says, as plain facts: status, error code, request ids, Retry-After.

The client reports; it never decides. These records are what the engine classifies
(reliability.md §1.3) and what the journal keeps.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# A Retry-After above this is treated as this (the engine pauses and checkpoints beyond it).
RETRY_AFTER_CEILING_S = 3600.0


class SendState(StrEnum):
    """Whether a request that failed in transport may have reached Graph."""

    NOT_SENT = "not_sent"  # connect refused, DNS, TLS, connect/pool timeout: nothing happened
    MAYBE_SENT = "maybe_sent"  # reset or timeout after sending, lost or cut response


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphFailure:
    """Graph's error body (`error.code`, `error.message`, ids) for a status >= 400."""

    status: int
    code: str
    message: str
    request_id: str | None = None
    inner_code: str | None = None
    details: tuple[Mapping[str, Any], ...] = ()

    def describe(self) -> str:
        """`403 Authorization_RequestDenied: Insufficient privileges ...`."""
        return f"{self.status} {self.code}: {self.message}".strip()


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphResponse:
    """One HTTP response from Graph (or one `$batch` item), reduced to facts."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: Any = None
    request_id: str | None = None
    client_request_id: str | None = None
    retry_after_s: float | None = None
    error: GraphFailure | None = None
    elapsed_s: float = 0.0
    server_date: dt.datetime | None = None
    throttle_percentage: float | None = None

    @property
    def ok(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """A response header by case-insensitive name."""
        return self.headers.get(name.lower())


class TransportFailure(Exception):  # noqa: N818 - a fact, not an error of ours
    """The request did not produce an HTTP response; `state` says whether it may have acted."""

    def __init__(self, state: SendState, detail: str, *, client_request_id: str = "") -> None:
        super().__init__(f"{state.value}: {detail}")
        self.state = state
        self.detail = detail
        self.client_request_id = client_request_id


class GraphProtocolError(Exception):
    """Graph (or something pretending to be it) answered outside the protocol."""


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: integer, decimal (`2.128`) or HTTP date.

    Negative values and dates in the past give 0; values above the ceiling are capped; text
    that is none of these (or a missing header) gives None, so the caller backs off itself.
    A duplicated header (`10, 20`) takes the largest value.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if "," in text and not any(ch.isalpha() for ch in text):
        parts = [parse_retry_after(part, now=now) for part in text.split(",")]
        numbers = [part for part in parts if part is not None]
        return max(numbers) if numbers else None
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _http_date_seconds(text, now)
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CEILING_S)


def _http_date_seconds(text: str, now: dt.datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    reference = now or dt.datetime.now(dt.UTC)
    return (when - reference).total_seconds()


def parse_server_date(value: str | None) -> dt.datetime | None:
    """The `Date` header as an aware datetime, or None."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def parse_failure(status: int, body: Any, headers: Mapping[str, str]) -> GraphFailure:
    """Graph's OData error body (or whatever came) as a `GraphFailure`."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        inner = error.get("innerError") or error.get("innererror") or {}
        if not isinstance(inner, dict):
            inner = {}
        details = error.get("details")
        return GraphFailure(
            status=status,
            code=str(error.get("code") or ""),
            message=str(error.get("message") or ""),
            request_id=str(
                inner.get("request-id") or inner.get("requestId") or headers.get("request-id") or ""
            )
            or None,
            inner_code=str(inner["code"]) if "code" in inner else None,
            details=tuple(d for d in details if isinstance(d, dict))
            if isinstance(details, list)
            else (),
        )
    message = body if isinstance(body, str) else ""
    return GraphFailure(
        status=status,
        code="",
        message=message[:300],
        request_id=headers.get("request-id"),
    )


def parse_throttle_percentage(value: str | None) -> float | None:
    """`x-ms-throttle-limit-percentage` as a float, or None."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
