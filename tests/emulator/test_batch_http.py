"""The `$batch` contract over real HTTP (graph-reference §9), beyond `test_core.py`.

Unordered but complete responses correlated by id, `dependsOn` sequencing and 424, per-item
headers, 204 items without body, `/beta/$batch`, absolute item URLs, and the 400 for a
malformed batch. More than 20 items and duplicate ids are in `test_core.py`.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runner.emulator import Emulator

JSON = {"Content-Type": "application/json"}
PASSWORD_METHOD = "28c10230-6103-485e-b985-444c60001490"  # the password method's fixed id


def members(graph: httpx.Client, count: int) -> list[str]:
    """Ids of `count` cloud-only member users, which the admin app may write."""
    response = graph.get(
        "/users", params={"$select": "id,userType,onPremisesSyncEnabled", "$top": "999"}
    )
    ids = [
        str(user["id"])
        for user in response.json()["value"]
        if user["userType"] == "Member" and user["onPremisesSyncEnabled"] is None
    ]
    assert len(ids) >= count
    return ids[:count]


def batch(client: httpx.Client, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST /$batch; the item responses in the order they came."""
    response = client.post("/$batch", json={"requests": requests})
    assert response.status_code == 200, response.text
    return list(response.json()["responses"])


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Item responses keyed by id (each id exactly once)."""
    keyed = {item["id"]: item for item in items}
    assert len(keyed) == len(items)
    return keyed


def ledger(admin: httpx.Client) -> list[dict[str, Any]]:
    """Every side-effect ledger row, oldest first."""
    return list(admin.get("/ledger").json()["value"])


def revoke_item(item_id: str, user_id: str, **extra: Any) -> dict[str, Any]:
    """A `$batch` item revoking one user's sessions."""
    return {
        "id": item_id,
        "method": "POST",
        "url": f"/users/{user_id}/revokeSignInSessions",
        "headers": JSON,
        "body": {},
        **extra,
    }


def test_responses_are_unordered_but_complete_and_correlated(graph: httpx.Client) -> None:
    """20 reads: every id answered once, each body is its own item's user, order shuffled."""
    users = members(graph, 20)
    sent = [f"item-{chr(ord('a') + n)}" for n in range(20)]
    requests = [
        {"id": item_id, "method": "GET", "url": f"/users/{user}?$select=id"}
        for item_id, user in zip(sent, users, strict=True)
    ]
    response = graph.post("/$batch", json={"requests": requests})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    items = response.json()["responses"]
    got = [item["id"] for item in items]
    assert sorted(got) == sorted(sent)
    assert got != sent
    for item in items:
        assert item["status"] == 200
        assert item["body"]["id"] == users[sent.index(item["id"])]


def test_depends_on_runs_each_item_after_its_prerequisite(
    graph: httpx.Client, admin: httpx.Client
) -> None:
    """A chain PATCH -> GET -> POST: the read sees the disable, the ledger is in chain order."""
    (user,) = members(graph, 1)
    items = by_id(
        batch(
            graph,
            [
                {
                    "id": "disable",
                    "method": "PATCH",
                    "url": f"/users/{user}",
                    "headers": JSON,
                    "body": {"accountEnabled": False},
                },
                {
                    "id": "check",
                    "method": "GET",
                    "url": f"/users/{user}?$select=accountEnabled",
                    "dependsOn": ["disable"],
                },
                revoke_item("revoke", user, dependsOn=["check"]),
            ],
        )
    )
    assert {key: item["status"] for key, item in items.items()} == {
        "disable": 204,
        "check": 200,
        "revoke": 200,
    }
    assert items["check"]["body"]["accountEnabled"] is False
    rows = ledger(admin)
    assert [row["effect"] for row in rows] == ["account_disabled", "sessions_revoked"]
    assert rows[0]["seq"] < rows[1]["seq"]


def test_dependents_of_a_failed_item_are_424_and_not_run(
    graph: httpx.Client, admin: httpx.Client
) -> None:
    """Dependents of a 404 item (direct, transitive, any id case) are 424 and not applied."""
    first, second, free = members(graph, 3)
    items = by_id(
        batch(
            graph,
            [
                {"id": "Missing", "method": "GET", "url": "/users/nobody@contoso.com"},
                revoke_item("direct", first, dependsOn=["missing"]),
                revoke_item("transitive", second, dependsOn=["direct"]),
                revoke_item("free", free),
            ],
        )
    )
    assert {key: item["status"] for key, item in items.items()} == {
        "Missing": 404,
        "direct": 424,
        "transitive": 424,
        "free": 200,
    }
    assert [row["user_id"] for row in ledger(admin)] == [free]
    rows = admin.get("/requests").json()["value"]
    outer = next(row for row in rows if row["path"].endswith("$batch"))
    logged = sorted(row["status"] for row in rows if row["batch"] == outer["seq"])
    assert logged == [200, 404, 424, 424]


def test_per_item_headers_and_bodies(
    emulator: Emulator, graph: httpx.Client, admin: httpx.Client
) -> None:
    """Item headers: Content-Type, Location on 202, Retry-After on 429; 204 has no body."""
    reader, patched, throttled, reset = members(graph, 4)
    rule = {
        "kind": "status",
        "status": 429,
        "retry_after": "int:4",
        "path": f"/users/{throttled}/revokeSignInSessions",
    }
    assert admin.post("/faults", json=rule).status_code == 201
    items = by_id(
        batch(
            graph,
            [
                {"id": "get", "method": "GET", "url": f"/users/{reader}?$select=id"},
                {
                    "id": "patch",
                    "method": "PATCH",
                    "url": f"/users/{patched}",
                    "headers": JSON,
                    "body": {"accountEnabled": False},
                },
                revoke_item("throttled", throttled),
            ],
        )
    )
    assert items["get"]["headers"]["Content-Type"].startswith("application/json")
    assert items["get"]["body"]["id"] == reader
    assert items["patch"]["status"] == 204
    assert "body" not in items["patch"]
    assert "Content-Type" not in items["patch"]["headers"]
    assert items["throttled"]["status"] == 429
    assert items["throttled"]["headers"]["Retry-After"] == "4"
    assert items["throttled"]["headers"]["Content-Type"].startswith("application/json")
    assert items["throttled"]["body"]["error"]["code"] == "TooManyRequests"
    token = emulator.mint_user_token("pa.admin@contoso.com")
    with httpx.Client(
        base_url=f"{emulator.graph_url}/v1.0", headers={"Authorization": f"Bearer {token}"}
    ) as delegated:
        (accepted,) = batch(
            delegated,
            [
                {
                    "id": "reset",
                    "method": "POST",
                    "url": f"/users/{reset}/authentication/methods/{PASSWORD_METHOD}/resetPassword",
                    "headers": JSON,
                    "body": {},
                }
            ],
        )
    assert accepted["status"] == 202
    location = accepted["headers"]["Location"]
    assert location.startswith(
        f"{emulator.graph_url}/v1.0/users/{reset}/authentication/operations/"
    )


def test_beta_batch(emulator: Emulator, graph: httpx.Client) -> None:
    """/beta/$batch serves beta-only items relative to /beta; on /v1.0 the same item is 400."""
    (user,) = members(graph, 1)
    item = {"id": "mfa", "method": "GET", "url": f"/users/{user}/authentication/requirements"}
    token = graph.headers["Authorization"]
    with httpx.Client(
        base_url=f"{emulator.graph_url}/beta", headers={"Authorization": token}
    ) as beta:
        (answer,) = batch(beta, [item])
    assert answer["status"] == 200
    assert answer["body"]["perUserMfaState"] in {"disabled", "enabled", "enforced"}
    (refused,) = batch(graph, [item])
    assert refused["status"] == 400
    assert refused["body"]["error"]["code"] == "BadRequest"


def test_absolute_and_slashless_item_urls(emulator: Emulator, graph: httpx.Client) -> None:
    """Item URLs may be absolute (this host or graph.microsoft.com) or lack the leading slash."""
    first, second, third = members(graph, 3)
    items = by_id(
        batch(
            graph,
            [
                {
                    "id": "local",
                    "method": "GET",
                    "url": f"{emulator.graph_url}/v1.0/users/{first}?$select=id",
                },
                {
                    "id": "public",
                    "method": "GET",
                    "url": f"https://graph.microsoft.com/v1.0/users/{second}?$select=id",
                },
                {"id": "bare", "method": "GET", "url": f"users/{third}?$select=id"},
            ],
        )
    )
    assert {key: (item["status"], item["body"]["id"]) for key, item in items.items()} == {
        "local": (200, first),
        "public": (200, second),
        "bare": (200, third),
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Invalid batch payload format."),
        (b"", "Invalid batch payload format."),
        (b"{}", "Invalid batch payload format."),
        (b'{"requests": {}}', "Invalid batch payload format."),
        (b'{"requests": []}', "Invalid batch payload format."),
        (b'{"requests": ["GET /users"]}', "Invalid batch payload format."),
        (b'{"requests": [{"id": "1", "url": "/organization"}]}', "Invalid batch payload format."),
        (b'{"requests": [{"id": "1", "method": "GET"}]}', "Invalid batch payload format."),
        (b'{"requests": [{"method": "GET", "url": "/x"}]}', "Invalid batch payload format."),
        (
            b'{"requests": [{"id": "1", "method": "GET", "url": "/x", "dependsOn": ["2"]}]}',
            "Invalid dependsOn value in batch request.",
        ),
        (
            b'{"requests": [{"id": "1", "method": "GET", "url": "/x", "dependsOn": "1"}]}',
            "Invalid dependsOn value in batch request.",
        ),
    ],
)
def test_malformed_batch_is_400_and_runs_nothing(
    graph: httpx.Client, admin: httpx.Client, body: bytes, message: str
) -> None:
    """A batch that does not parse is one 400 BadRequest; no item is run or logged."""
    response = graph.post("/$batch", content=body, headers=JSON)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("BadRequest", message)
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    rows = admin.get("/requests").json()["value"]
    assert [(row["method"], row["status"], row["batch"]) for row in rows[-1:]] == [
        ("POST", 400, None)
    ]
    assert not any(row["batch"] is not None for row in rows)
    assert ledger(admin) == []
