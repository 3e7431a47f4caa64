"""The emulator's core: start-up, connection file, determinism, auth, routing and $batch."""

from __future__ import annotations

import json

import httpx

from runner.emulator import CONNECTION_FILE, Emulator, EmulatorConfig
from tests.conftest import EmulatorFactory


def test_connection_file_has_exactly_the_spec_keys(emulator: Emulator) -> None:
    """emulator.json holds product-spec §9's keys, and the first app holds a secret."""
    info = json.loads((emulator.state_dir / CONNECTION_FILE).read_text())
    assert sorted(info) == sorted(
        [
            "tenant_id",
            "graph_url",
            "authority",
            "ca_file",
            "managed_identity_endpoint",
            "admin_url",
            "time_scale",
            "limits",
            "apps",
        ]
    )
    first = info["apps"][0]
    assert sorted(first) == sorted(
        ["name", "client_id", "client_secret", "certificate", "permissions", "directory_roles"]
    )
    assert first["name"] == "entra-bulk-admin"
    assert first["client_secret"]
    assert first["directory_roles"] == ["Privileged Authentication Administrator"]
    assert info["authority"].startswith("https://127.0.0.1:")
    assert info["authority"].endswith("/" + info["tenant_id"])


def test_same_seed_gives_the_same_tenant(emulator_factory: EmulatorFactory) -> None:
    """Two tenants generated from one seed have equal users, methods and app credentials."""
    first = emulator_factory(name="a", seed=7)
    second = Emulator(EmulatorConfig(state_dir=first.state_dir.parent / "fresh", seed=7))
    second.start()
    try:
        assert first.store is not None and second.store is not None
        for table in ("users", "methods", "groups_", "group_members", "role_members", "apps"):
            columns = "*" if table != "apps" else "client_id, sp_id, name, kind, secret"
            query = f"SELECT {columns} FROM {table} ORDER BY 1, 2"  # noqa: S608 - fixed names
            assert first.store.query(query) == second.store.query(query), table
        assert first.tenant_id == second.tenant_id
    finally:
        second.stop()


def test_other_seed_gives_another_tenant(emulator_factory: EmulatorFactory) -> None:
    """A different seed gives a different tenant id."""
    assert (
        emulator_factory(name="a", seed=1).tenant_id != emulator_factory(name="b", seed=2).tenant_id
    )


def test_missing_token_is_401(emulator: Emulator) -> None:
    """A Graph call without a token is 401 InvalidAuthenticationToken with request ids."""
    response = httpx.get(
        f"{emulator.graph_url}/v1.0/users", headers={"client-request-id": "abc-123"}
    )
    assert response.status_code == 401
    body = response.json()["error"]
    assert body["code"] == "InvalidAuthenticationToken"
    assert body["message"] == "Access token is empty."
    assert body["innerError"]["client-request-id"] == "abc-123"
    assert response.headers["client-request-id"] == "abc-123"
    assert body["innerError"]["request-id"] == response.headers["request-id"]


def test_expired_token_is_401(emulator: Emulator) -> None:
    """An expired token is refused with Graph's lifetime message."""
    token = emulator.mint_app_token(lifetime_s=-10)
    response = httpx.get(
        f"{emulator.graph_url}/v1.0/users", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "Lifetime validation failed, the token is expired."
    )


def test_batch_quirk_write_without_content_type(graph: httpx.Client) -> None:
    """A batch POST item without body and Content-Type is 400 with Graph's message."""
    response = graph.post(
        "/$batch",
        json={"requests": [{"id": "a1", "method": "POST", "url": "/users/x/revokeSignInSessions"}]},
    )
    assert response.status_code == 200
    (item,) = response.json()["responses"]
    assert item["status"] == 400
    assert item["body"]["error"]["message"] == (
        "Write request id : a1 does not contain Content-Type header or body."
    )


def test_batch_over_twenty_is_400(graph: httpx.Client) -> None:
    """More than 20 requests in one batch is refused as a whole."""
    requests = [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(21)]
    response = graph.post("/$batch", json={"requests": requests})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def test_batch_duplicate_ids_is_400(graph: httpx.Client) -> None:
    """Duplicate ids (case-insensitive) fail the whole batch."""
    requests = [
        {"id": "A", "method": "GET", "url": "/organization"},
        {"id": "a", "method": "GET", "url": "/organization"},
    ]
    response = graph.post("/$batch", json={"requests": requests})
    assert response.status_code == 400


def test_admin_requests_log_every_call(graph: httpx.Client, admin: httpx.Client) -> None:
    """The request log has one row per request and per batch item, linked to the batch."""
    graph.post(
        "/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": "/nothing-here"},
                {"id": "2", "method": "GET", "url": "/nothing-here", "dependsOn": ["1"]},
            ]
        },
    )
    rows = admin.get("/requests").json()["value"]
    outer = [row for row in rows if row["path"].endswith("$batch")]
    assert len(outer) == 1
    items = [row for row in rows if row["batch"] == outer[0]["seq"]]
    assert sorted(row["status"] for row in items) == [400, 424]
