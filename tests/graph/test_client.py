"""The Graph client against the emulated tenant: facts, transport classes, deadline, trace."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from runner.emulator import Emulator
from runner.graph.client import BatchRequest, GraphClient, Timeouts
from runner.graph.facts import GraphProtocolError, SendState, TransportFailure


def _client(emulator: Emulator, **options: Any) -> GraphClient:
    token = emulator.mint_app_token()
    return GraphClient(root_url=emulator.graph_url, token=lambda: token, **options)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_error_status_is_returned_as_facts(emulator: Emulator) -> None:
    """A 401 comes back as a response with Graph's code and the request ids, not raised."""
    client = GraphClient(root_url=emulator.graph_url, token=lambda: "not-a-token")
    response = client.request("GET", "/users", client_request_id="crid-1")
    assert response.status == 401
    assert response.error is not None
    assert response.error.code == "InvalidAuthenticationToken"
    assert response.client_request_id == "crid-1"
    assert response.request_id
    assert response.server_date is not None


def test_connection_refused_is_not_sent() -> None:
    """Nothing listening: the failure says the request was not sent."""
    client = GraphClient(root_url=f"http://127.0.0.1:{_free_port()}", token=lambda: "t")
    with pytest.raises(TransportFailure) as info:
        client.request("GET", "/users")
    assert info.value.state is SendState.NOT_SENT


@pytest.mark.parametrize("kind", ["reset_before", "drop_after"])
def test_reset_connection_may_have_been_sent(
    emulator: Emulator, admin: httpx.Client, kind: str
) -> None:
    """A connection closed without an answer is 'maybe sent' whatever the server did."""
    admin.post("/faults", json={"kind": kind, "path": "/$batch", "count": 1})
    client = _client(emulator)
    with pytest.raises(TransportFailure) as info:
        client.batch([BatchRequest(id="1", method="GET", url="/organization")])
    assert info.value.state is SendState.MAYBE_SENT


def test_drip_hits_the_total_deadline(emulator: Emulator, admin: httpx.Client) -> None:
    """A response dripping one byte at a time is cut at the total deadline (maybe sent)."""
    admin.post("/faults", json={"kind": "drip", "path": "/$batch", "count": 1, "delay_s": 0.05})
    client = _client(emulator, timeouts=Timeouts(total_s=0.5, read_s=5))
    with pytest.raises(TransportFailure) as info:
        client.batch([BatchRequest(id="1", method="GET", url="/organization")])
    assert info.value.state is SendState.MAYBE_SENT
    assert "no complete response within 0.5 s" in info.value.detail


def test_batch_write_items_always_carry_body_and_content_type() -> None:
    """A POST without a payload is sent with body {} and Content-Type (Graph requires both)."""
    item = BatchRequest(id="7", method="POST", url="/users/x/revokeSignInSessions").as_json()
    assert item == {
        "id": "7",
        "method": "POST",
        "url": "/users/x/revokeSignInSessions",
        "body": {},
        "headers": {"Content-Type": "application/json"},
    }


def test_trace_logs_no_headers_or_bodies(emulator: Emulator) -> None:
    """--trace-http events carry method, path, status, ids and timing, never the token."""
    events: list[dict[str, Any]] = []
    client = _client(emulator, trace=events.append)
    token = emulator.mint_app_token()
    client.request("GET", "/users", client_request_id="c-9")
    (event,) = events
    assert set(event) == {"method", "path", "status", "request_id", "client_request_id", "ms"}
    assert event["path"] == "/v1.0/users"
    assert token not in repr(events)


def test_next_link_to_another_origin_is_refused() -> None:
    """Paging follows nextLink only on the same origin (a token must not leak elsewhere).

    The emulator never produces a foreign nextLink, so this one case uses MockTransport.
    """
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(
            200,
            json={"value": [], "@odata.nextLink": "https://evil.example/v1.0/users?$skiptoken=1"},
        )

    client = GraphClient(
        root_url="https://graph.microsoft.com",
        token=lambda: "t",
        transport=httpx.MockTransport(handler),
    )
    pages = client.get_pages("/users")
    assert next(pages).status == 200
    with pytest.raises(GraphProtocolError, match=r"another origin: https://evil\.example"):
        next(pages)
    assert len(seen) == 1
