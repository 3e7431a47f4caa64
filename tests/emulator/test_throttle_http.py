"""Throttling over real HTTP: Graph's quotas, costs, 429s, headers and the time scale.

Tenants here have 30 users, so the resource-unit quota is the small one (3,500 RU per
10 s); the write quota is 3,000 per 150 s per app. A time scale of 0.001 makes the refill
negligible (0.02 writes/s), so counts are exact; 1 and 10 show the refill and the advised
waits. The client is plain httpx.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runner.emulator import Emulator
from tests.conftest import EmulatorFactory

SMALL = 30  # users: a "small" tenant, 3,500 RU per 10 s
JSON = {"Content-Type": "application/json"}
THROTTLE_HEADERS = ("x-ms-throttle-scope", "x-ms-throttle-information", "Retry-After")


# -- helpers --------------------------------------------------------------------------------


def client(emu: Emulator) -> httpx.Client:
    """A /v1.0 client as the admin app."""
    return httpx.Client(
        base_url=f"{emu.graph_url}/v1.0",
        headers={"Authorization": f"Bearer {emu.mint_app_token()}"},
        timeout=10,
    )


def admin_client(emu: Emulator) -> httpx.Client:
    """A client on the admin API."""
    return httpx.Client(base_url=emu.admin_url, timeout=30)


def members(graph: httpx.Client) -> list[str]:
    """Ids of the cloud-only member users, which the admin app may write."""
    response = graph.get(
        "/users", params={"$select": "id,userType,onPremisesSyncEnabled", "$top": "999"}
    )
    return [
        str(user["id"])
        for user in response.json()["value"]
        if user["userType"] == "Member" and user["onPremisesSyncEnabled"] is None
    ]


def revoke_item(item_id: str, user_id: str) -> dict[str, Any]:
    """A `$batch` item revoking one user's sessions."""
    return {
        "id": item_id,
        "method": "POST",
        "url": f"/users/{user_id}/revokeSignInSessions",
        "headers": JSON,
        "body": {},
    }


def write_batch(graph: httpx.Client, users: list[str]) -> list[dict[str, Any]]:
    """One `$batch` of 20 revocations (users in turn); the item responses."""
    requests = [revoke_item(str(n), users[n % len(users)]) for n in range(20)]
    response = graph.post("/$batch", json={"requests": requests})
    assert response.status_code == 200
    return list(response.json()["responses"])


def drain_writes(graph: httpx.Client, users: list[str]) -> int:
    """Send write batches until one has a throttled item; the number of writes that passed."""
    passed = 0
    for _ in range(400):
        statuses = [item["status"] for item in write_batch(graph, users)]
        assert set(statuses) <= {200, 429}
        passed += statuses.count(200)
        if 429 in statuses:
            return passed
    pytest.fail("the write bucket never emptied")


def ledger_rows(admin: httpx.Client, **params: str | int) -> list[dict[str, Any]]:
    """Side-effect ledger rows."""
    response = admin.get("/ledger", params=params)
    assert response.status_code == 200
    return list(response.json()["value"])


@pytest.fixture
def slow(emulator_factory: EmulatorFactory) -> Emulator:
    """A small tenant whose buckets refill 1,000 times slower than Graph's (nearly never)."""
    return emulator_factory(users=SMALL, time_scale=0.001)


@pytest.fixture
def slow_graph(slow: Emulator) -> Iterator[httpx.Client]:
    """A client on the slowly refilling tenant."""
    with client(slow) as graph:
        yield graph


# -- the write quota ------------------------------------------------------------------------


def test_write_quota_then_429_with_graph_headers_and_body(
    slow: Emulator, slow_graph: httpx.Client
) -> None:
    """3,000 writes pass, then 429 with Graph's headers and body; none reaches the ledger."""
    users = members(slow_graph)
    assert drain_writes(slow_graph, users) == 3000
    response = slow_graph.post(f"/users/{users[0]}/revokeSignInSessions", json={})
    assert response.status_code == 429
    client_id = slow.app_entry("entra-bulk-admin")["client_id"]
    assert response.headers["x-ms-throttle-scope"] == (
        f"Tenant_Application/Write/{client_id}/{slow.tenant_id}"
    )
    assert response.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    # The wait is about 49 s of Graph time, i.e. 0.049 s real: rounded up to 1 s, then / 0.001.
    assert response.headers["Retry-After"] == "1000"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    error = response.json()["error"]
    inner = error.pop("innerError")
    assert error == {"code": "TooManyRequests", "message": "Please retry again later."}
    assert {key: inner[key] for key in ("code", "message", "status")} == {
        "code": "429",
        "message": "Please retry after",
        "status": "429",
    }
    assert inner["request-id"] == response.headers["request-id"]
    assert len(inner["date"]) == len("2026-01-01T00:00:00")
    with admin_client(slow) as admin:
        assert len(ledger_rows(admin, effect="sessions_revoked")) == 3000
        assert admin.get("/state").json()["throttled"] == 21
    assert slow_graph.get(f"/users/{users[0]}").status_code == 200


def test_throttled_batch_items_get_their_own_retry_after(slow_graph: httpx.Client) -> None:
    """Write bucket empty: the batch is 200, each write 429 with its own headers, reads 200."""
    users = members(slow_graph)
    drain_writes(slow_graph, users)
    requests: list[dict[str, Any]] = []
    for n, user in enumerate(users[:10]):
        requests.append(revoke_item(f"w{n}", user))
        requests.append({"id": f"r{n}", "method": "GET", "url": f"/users/{user}?$select=id"})
    response = slow_graph.post("/$batch", json={"requests": requests})
    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["responses"]}
    assert len(items) == 20
    for n, user in enumerate(users[:10]):
        read, write = items[f"r{n}"], items[f"w{n}"]
        assert read["status"] == 200
        assert read["body"]["id"] == user
        assert write["status"] == 429
        assert write["body"]["error"]["code"] == "TooManyRequests"
        assert all(name in write["headers"] for name in THROTTLE_HEADERS)
        assert write["headers"]["x-ms-throttle-information"] == "WriteLimitExceeded"
        # Inside a batch Retry-After is a decimal: about 1/0.02 s for one more write.
        assert 45.0 < float(write["headers"]["Retry-After"]) <= 50.0


def test_throttling_can_be_switched_off_and_on_at_run_time(
    slow: Emulator, slow_graph: httpx.Client
) -> None:
    """PATCH /_emulator/config throttle false lets a throttled write pass; true refuses it."""
    users = members(slow_graph)
    drain_writes(slow_graph, users)
    url = f"/users/{users[0]}/revokeSignInSessions"
    with admin_client(slow) as admin:
        assert slow_graph.post(url, json={}).status_code == 429
        assert admin.patch("/config", json={"throttle": False}).status_code == 204
        assert slow_graph.post(url, json={}).status_code == 200
        assert admin.patch("/config", json={"throttle": True}).status_code == 204
        assert slow_graph.post(url, json={}).status_code == 429


# -- Retry-After and the time scale ----------------------------------------------------------


@pytest.mark.parametrize(("scale", "advised"), [(1, "1"), (10, "0.1")])
def test_waiting_the_advised_retry_after_passes(
    emulator_factory: EmulatorFactory, scale: float, advised: str
) -> None:
    """Retry-After is 1 s / time scale; after waiting it the write passes and applies once."""
    emu = emulator_factory(users=SMALL, time_scale=scale)
    with client(emu) as graph, admin_client(emu) as admin:
        users = members(graph)
        drain_writes(graph, users)
        url = f"/users/{users[0]}/revokeSignInSessions"
        for _ in range(50):
            throttled = graph.post(url, json={})
            if throttled.status_code == 429:
                break
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == advised
        mark = ledger_rows(admin)[-1]["seq"]
        time.sleep(float(advised))
        retried = graph.post(url, json={})
        assert retried.status_code == 200
        assert [(row["user_id"], row["effect"]) for row in ledger_rows(admin, since=mark)] == [
            (users[0], "sessions_revoked")
        ]


@pytest.mark.parametrize("scale", [1, 10])
def test_refill_is_twenty_writes_per_second_times_the_scale(
    emulator_factory: EmulatorFactory, scale: float
) -> None:
    """After the burst, writes sent flat out pass at 20 x time-scale per second."""
    emu = emulator_factory(users=SMALL, time_scale=scale)
    with client(emu) as graph:
        users = members(graph)
        drain_writes(graph, users)
        passed = 0
        started = time.perf_counter()
        while time.perf_counter() - started < 1.0:
            passed += [item["status"] for item in write_batch(graph, users)].count(200)
        elapsed = time.perf_counter() - started
    expected = 20 * scale * elapsed
    assert abs(passed - expected) <= 0.1 * expected + 2, (passed, expected)


# -- resource units -------------------------------------------------------------------------


def test_resource_unit_header_carries_the_documented_costs(graph: httpx.Client) -> None:
    """x-ms-resource-unit gives graph-reference §10's cost, standalone and per batch item."""
    user = members(graph)[0]
    group = graph.get("/groups", params={"$top": "1"}).json()["value"][0]["id"]
    costs = {
        "/users": 2,
        "/users?$select=id": 1,
        "/users?$top=5": 1,
        "/users?$top=50": 2,
        f"/users/{user}": 1,
        f"/users/{user}?$select=id": 1,
        "/users/nobody@contoso.com": 1,
        f"/users/{user}/memberOf": 2,
        f"/users/{user}/transitiveMemberOf": 2,
        f"/users/{user}/authentication/methods": 1,
        f"/groups/{group}": 1,
        f"/groups/{group}/members": 3,
        f"/groups/{group}/members?$select=id": 2,
        f"/groups/{group}/transitiveMembers": 5,
        f"/groups/{group}/transitiveMembers?$select=id": 4,
        "/directoryRoles": 1,
        "/organization": 1,
    }
    for url, cost in costs.items():
        assert graph.get(url).headers["x-ms-resource-unit"] == str(cost), url
    requests = [{"id": str(n), "method": "GET", "url": url} for n, url in enumerate(costs)]
    items = graph.post("/$batch", json={"requests": requests}).json()["responses"]
    assert {int(item["id"]): item["headers"]["x-ms-resource-unit"] for item in items} == {
        n: str(cost) for n, cost in enumerate(costs.values())
    }
    patch = graph.patch(f"/users/{user}", json={"accountEnabled": False})
    revoke = graph.post(f"/users/{user}/revokeSignInSessions", json={})
    assert (patch.status_code, patch.headers["x-ms-resource-unit"]) == (204, "1")
    assert (revoke.status_code, revoke.headers["x-ms-resource-unit"]) == (200, "1")


def test_limit_percentage_appears_above_eighty_percent(
    slow: Emulator, slow_graph: httpx.Client
) -> None:
    """x-ms-throttle-limit-percentage appears past 80 % of 3,500 RU; past 100 % it is 429."""
    url = "/users?$top=20"  # 2 RU: read 1,400 uses exactly 80 % of 3,500, read 1,750 all of it
    seen: dict[int, str | None] = {}
    for start in range(1, 1751, 20):
        ids = range(start, min(start + 20, 1751))
        requests = [{"id": str(n), "method": "GET", "url": url} for n in ids]
        response = slow_graph.post("/$batch", json={"requests": requests})
        for item in response.json()["responses"]:
            assert item["status"] == 200
            assert item["headers"]["x-ms-resource-unit"] == "2"
            seen[int(item["id"])] = item["headers"].get("x-ms-throttle-limit-percentage")
    assert sorted(seen) == list(range(1, 1751))
    assert sorted(n for n, value in seen.items() if value is not None) == list(range(1401, 1751))
    assert (seen[1401], seen[1750]) == ("0.80", "1.00")
    values = [float(seen[n] or 0) for n in range(1401, 1751)]
    assert values == sorted(values)
    refused = slow_graph.get(url)
    assert refused.status_code == 429
    assert refused.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    client_id = slow.app_entry("entra-bulk-admin")["client_id"]
    assert refused.headers["x-ms-throttle-scope"] == (
        f"Tenant_Application/ReadWrite/{client_id}/{slow.tenant_id}"
    )


# -- throttling off -------------------------------------------------------------------------


def test_throttling_off_never_answers_429(emulator_factory: EmulatorFactory) -> None:
    """Throttling off: writes and reads beyond both quotas pass, with no throttle header."""
    emu = emulator_factory(users=SMALL, throttle=False, name="unthrottled")
    with client(emu) as graph, admin_client(emu) as admin:
        users = members(graph)
        group = graph.get("/groups", params={"$top": "1"}).json()["value"][0]["id"]
        reads = [
            {"id": str(n), "method": "GET", "url": f"/groups/{group}/transitiveMembers"}
            for n in range(20)
        ]
        items: list[dict[str, Any]] = []
        for _ in range(155):
            items += write_batch(graph, users)
        for _ in range(36):
            items += graph.post("/$batch", json={"requests": reads}).json()["responses"]
        assert len(items) == 3100 + 720
        assert {item["status"] for item in items} == {200}
        assert not any(
            name.startswith("x-ms-throttle") or name == "Retry-After"
            for item in items
            for name in item["headers"]
        )
        assert all("x-ms-resource-unit" in item["headers"] for item in items)
        state = admin.get("/state").json()
        assert (state["throttle"], state["throttled"]) == (False, 0)
