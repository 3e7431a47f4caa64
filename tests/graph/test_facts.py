"""Facts from Graph responses: Retry-After in every form, error bodies, batch correlation."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.graph.client import correlate
from runner.graph.facts import (
    RETRY_AFTER_CEILING_S,
    GraphResponse,
    parse_failure,
    parse_retry_after,
)

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("10", 10.0),
        ("2.128", 2.128),
        ("0.249", 0.249),
        ("0", 0.0),
        ("-5", 0.0),
        ("Sat, 28 Nov 2026 11:59:00 GMT", 0.0),
        ("Sat, 28 Nov 2026 13:00:00 GMT", 3600.0),
        ("Sat, 28 Nov 2026 12:00:30 GMT", 30.0),
        ("10, 20", 20.0),
        ("abc", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("99999", RETRY_AFTER_CEILING_S),
    ],
)
def test_retry_after_forms(header: str | None, seconds: float | None) -> None:
    """Integer, decimal, HTTP date (past and future), duplicated, garbage and huge values."""
    assert parse_retry_after(header, now=NOW) == seconds


@given(st.text())
def test_retry_after_never_raises_and_stays_in_range(header: str) -> None:
    """Any text gives None or a number between 0 and the ceiling (reliability P3)."""
    value = parse_retry_after(header, now=NOW)
    assert value is None or 0.0 <= value <= RETRY_AFTER_CEILING_S


def test_graph_error_body_becomes_a_failure() -> None:
    """The OData error body's code, message and request-id are kept."""
    body = {
        "error": {
            "code": "Request_ResourceNotFound",
            "message": "Resource 'x' does not exist or one of its queried reference-property "
            "objects are not present.",
            "innerError": {"date": "2026-11-28T12:00:00", "request-id": "r-1"},
        }
    }
    failure = parse_failure(404, body, {})
    assert failure.code == "Request_ResourceNotFound"
    assert failure.request_id == "r-1"
    assert failure.describe().startswith("404 Request_ResourceNotFound: Resource 'x'")


def test_non_json_error_is_still_a_failure() -> None:
    """A 500 with an HTML body gives a failure without a code."""
    failure = parse_failure(500, "<html>oops</html>", {"request-id": "r-2"})
    assert (failure.status, failure.code, failure.request_id) == (500, "", "r-2")


def _envelope(body: object, status: int = 200) -> GraphResponse:
    return GraphResponse(status=status, body=body, request_id="outer")


def test_correlate_by_id_in_any_order() -> None:
    """Responses are matched by id whatever their order; each keeps its own status."""
    result = correlate(
        _envelope(
            {
                "responses": [
                    {"id": "2", "status": 204},
                    {"id": "1", "status": 429, "headers": {"Retry-After": "0.5"}},
                ]
            }
        ),
        ["1", "2"],
    )
    assert result.items["1"].status == 429
    assert result.items["1"].retry_after_s == 0.5
    assert result.items["2"].status == 204
    assert result.missing == ()


def test_correlate_reports_missing_and_unknown_ids() -> None:
    """An id Graph did not answer is missing; an answer for an unknown id is never used."""
    result = correlate(
        _envelope({"responses": [{"id": "1", "status": 200}, {"id": "zz", "status": 200}]}),
        ["1", "2"],
    )
    assert set(result.items) == {"1"}
    assert result.missing == ("2",)
    assert result.unexpected == ("zz",)


def test_correlate_drops_duplicated_answers() -> None:
    """Two answers for one id make that item missing rather than guessed."""
    result = correlate(
        _envelope({"responses": [{"id": "1", "status": 204}, {"id": "1", "status": 500}]}),
        ["1"],
    )
    assert result.items == {}
    assert result.missing == ("1",)
    assert result.unexpected == ("1",)


def test_correlate_malformed_and_failed_envelopes() -> None:
    """A body that is not a batch response, or an outer error, leaves every item missing."""
    malformed = correlate(_envelope('{"responses": [{'), ["1", "2"])
    assert malformed.malformed and malformed.missing == ("1", "2")
    failed = correlate(_envelope(None, status=503), ["1"])
    assert failed.missing == ("1",) and not failed.malformed
