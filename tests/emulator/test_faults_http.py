"""Fault injection over real HTTP: each fault kind's wire behaviour and what the ledger shows.

Every rule goes in through the admin API (`POST /_emulator/faults`) or a `--faults` file;
the client is plain httpx, so these tests prove the emulator's own wire behaviour. Writes
are `POST /users/{id}/revokeSignInSessions` (`{}`) and `PATCH /users/{id}`
(`{"accountEnabled": false}`); the side-effect ledger says whether a change was applied.
"""

from __future__ import annotations

import base64
import email.utils
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.emulator import Emulator
from tests.conftest import EmulatorFactory

JSON = {"Content-Type": "application/json"}
REVOKE = "/users/*/revokeSignInSessions"
INNER_KEYS = {"date", "request-id", "client-request-id"}


# -- helpers ------------------------------------------------------------------------------


def members(graph: httpx.Client, count: int) -> list[str]:
    """Ids of `count` cloud-only member users, which the admin app may write."""
    response = graph.get(
        "/users", params={"$select": "id,userType,onPremisesSyncEnabled", "$top": "999"}
    )
    assert response.status_code == 200
    ids = [
        str(user["id"])
        for user in response.json()["value"]
        if user["userType"] == "Member" and user["onPremisesSyncEnabled"] is None
    ]
    assert len(ids) >= count
    return ids[:count]


def add_rules(admin: httpx.Client, *rules: dict[str, Any]) -> list[dict[str, Any]]:
    """Install fault rules through the admin API."""
    response = admin.post("/faults", json={"rules": list(rules)})
    assert response.status_code == 201, response.text
    return list(response.json()["rules"])


def ledger(admin: httpx.Client, **params: str) -> list[dict[str, Any]]:
    """Side-effect ledger rows, oldest first (optionally for one user or effect)."""
    response = admin.get("/ledger", params=params)
    assert response.status_code == 200
    return list(response.json()["value"])


def effects(admin: httpx.Client, user_id: str) -> list[str]:
    """The effect names the ledger holds for one user."""
    return [row["effect"] for row in ledger(admin, user_id=user_id)]


def revoke(graph: httpx.Client, user_id: str) -> httpx.Response:
    """`POST /users/{id}/revokeSignInSessions` with `{}`."""
    return graph.post(f"/users/{user_id}/revokeSignInSessions", json={})


def revoke_item(item_id: str, user_id: str) -> dict[str, Any]:
    """A `$batch` item revoking one user's sessions."""
    return {
        "id": item_id,
        "method": "POST",
        "url": f"/users/{user_id}/revokeSignInSessions",
        "headers": JSON,
        "body": {},
    }


def last_request(admin: httpx.Client) -> dict[str, Any]:
    """The newest row of the request log."""
    rows = admin.get("/requests").json()["value"]
    return dict(rows[-1])


def graph_error(response: httpx.Response) -> dict[str, Any]:
    """The `error` object of a Graph error body, checked for innerError's request ids."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()["error"]
    assert set(body["innerError"]) >= INNER_KEYS
    assert body["innerError"]["request-id"] == response.headers["request-id"]
    return dict(body)


# -- status faults on standalone requests ----------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "header"),
    [("int:7", "7"), ("decimal:2.128", "2.128"), ("missing", None), ("soon", "soon")],
)
def test_429_retry_after_variants(
    graph: httpx.Client, admin: httpx.Client, spec: str, header: str | None
) -> None:
    """An injected 429 on a write carries Retry-After as asked and applies nothing."""
    (user,) = members(graph, 1)
    add_rules(admin, {"kind": "status", "status": 429, "retry_after": spec, "path": REVOKE})
    response = revoke(graph, user)
    assert response.status_code == 429
    assert response.headers.get("Retry-After") == header
    error = graph_error(response)
    assert (error["code"], error["message"]) == ("TooManyRequests", "Please retry again later.")
    assert effects(admin, user) == []
    assert last_request(admin)["status"] == 429


def test_429_retry_after_as_http_date(graph: httpx.Client, admin: httpx.Client) -> None:
    """`http-date:+30` sends an IMF-fixdate 30 s after the response's Date."""
    (user,) = members(graph, 1)
    add_rules(admin, {"kind": "status", "status": 429, "retry_after": "http-date:+30"})
    response = revoke(graph, user)
    assert response.status_code == 429
    value = response.headers["Retry-After"]
    assert value.endswith(" GMT")
    advised = email.utils.parsedate_to_datetime(value)
    sent = email.utils.parsedate_to_datetime(response.headers["Date"])
    assert 29 <= (advised - sent).total_seconds() <= 30
    assert effects(admin, user) == []


def test_503_applies_nothing(graph: httpx.Client, admin: httpx.Client) -> None:
    """An injected 503 is Graph's serviceNotAvailable error and the write is not applied."""
    (user,) = members(graph, 1)
    add_rules(admin, {"kind": "status", "status": 503, "retry_after": "int:5", "path": REVOKE})
    response = revoke(graph, user)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    error = graph_error(response)
    assert error["code"] == "serviceNotAvailable"
    assert error["message"] == "The service is temporarily unavailable. Please retry later."
    assert effects(admin, user) == []


def test_504_after_applies_the_change_exactly_once(
    graph: httpx.Client, admin: httpx.Client
) -> None:
    """`when: after`: the PATCH is applied, then 504 comes back; the ledger shows one effect."""
    (user,) = members(graph, 1)
    add_rules(admin, {"kind": "status", "status": 504, "when": "after", "method": "PATCH"})
    response = graph.patch(f"/users/{user}", json={"accountEnabled": False})
    assert response.status_code == 504
    error = graph_error(response)
    assert (error["code"], error["message"]) == ("GatewayTimeout", "The gateway timed out.")
    assert effects(admin, user) == ["account_disabled"]
    read = graph.get(f"/users/{user}", params={"$select": "accountEnabled"})
    assert read.json()["accountEnabled"] is False


def test_504_before_applies_nothing(graph: httpx.Client, admin: httpx.Client) -> None:
    """`when: before`: 504 and neither the PATCH nor the revocation is applied."""
    (user,) = members(graph, 1)
    add_rules(admin, {"kind": "status", "status": 504, "when": "before", "count": 2})
    assert graph.patch(f"/users/{user}", json={"accountEnabled": False}).status_code == 504
    assert revoke(graph, user).status_code == 504
    assert effects(admin, user) == []
    read = graph.get(f"/users/{user}", params={"$select": "accountEnabled"})
    assert read.json()["accountEnabled"] is True


def test_500_without_body(graph: httpx.Client, admin: httpx.Client) -> None:
    """`body: false` sends the status with an empty body."""
    (user,) = members(graph, 1)
    add_rules(admin, {"kind": "status", "status": 500, "body": False})
    response = revoke(graph, user)
    assert response.status_code == 500
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    assert effects(admin, user) == []


def test_throttle_warning_on_a_success(graph: httpx.Client, admin: httpx.Client) -> None:
    """`throttle_warning` adds x-ms-throttle-limit-percentage to a normal 200."""
    first, second = members(graph, 2)
    add_rules(
        admin,
        {"kind": "throttle_warning", "count": 1, "path": "/users/*", "method": "GET"},
        {"kind": "throttle_warning", "percentage": 1.2, "path": REVOKE},
    )
    read = graph.get(f"/users/{first}", params={"$select": "id"})
    assert read.status_code == 200
    assert read.json()["id"] == first
    assert read.headers["x-ms-throttle-limit-percentage"] == "0.95"
    write = revoke(graph, second)
    assert write.status_code == 200
    assert write.json()["value"] is True
    assert write.headers["x-ms-throttle-limit-percentage"] == "1.2"
    assert effects(admin, second) == ["sessions_revoked"]
    again = graph.get(f"/users/{first}", params={"$select": "id"})
    assert "x-ms-throttle-limit-percentage" not in again.headers


# -- authentication faults -----------------------------------------------------------------


def test_token_expired_looks_like_a_real_expired_token(
    emulator: Emulator, graph: httpx.Client, admin: httpx.Client
) -> None:
    """`token_expired` answers exactly what a truly expired token gets, and applies nothing."""
    (user,) = members(graph, 1)
    expired = emulator.mint_app_token(lifetime_s=-10)
    real = httpx.post(
        f"{emulator.graph_url}/v1.0/users/{user}/revokeSignInSessions",
        json={},
        headers={"Authorization": f"Bearer {expired}"},
    )
    add_rules(admin, {"kind": "token_expired", "count": 1, "path": REVOKE})
    injected = revoke(graph, user)
    assert injected.status_code == real.status_code == 401
    assert injected.headers["content-type"] == real.headers["content-type"]
    fake, true = graph_error(injected), graph_error(real)
    assert (fake["code"], fake["message"]) == (true["code"], true["message"])
    assert fake["code"] == "InvalidAuthenticationToken"
    assert fake["message"] == "Lifetime validation failed, the token is expired."
    assert set(fake["innerError"]) == set(true["innerError"])
    assert effects(admin, user) == []
    assert revoke(graph, user).status_code == 200


def test_claims_challenge(graph: httpx.Client, admin: httpx.Client) -> None:
    """`claims_challenge` is a 401 whose WWW-Authenticate carries base64 claims to satisfy."""
    (user,) = members(graph, 1)
    add_rules(admin, {"kind": "claims_challenge", "count": 1, "path": REVOKE})
    response = revoke(graph, user)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    params = dict(
        part.strip().split("=", 1) for part in challenge.removeprefix("Bearer ").split(",")
    )
    assert params["error"] == '"insufficient_claims"'
    assert params["client_id"] == '"00000003-0000-0000-c000-000000000000"'
    claims = json.loads(base64.b64decode(params["claims"].strip('"')))
    assert claims == {"access_token": {"nbf": {"essential": True, "value": "1700000000"}}}
    error = graph_error(response)
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["message"].startswith("Continuous access evaluation resulted in challenge")
    assert effects(admin, user) == []


@pytest.mark.parametrize("kind", ["token_expired", "claims_challenge"])
def test_auth_faults_answer_the_whole_batch(
    graph: httpx.Client, admin: httpx.Client, kind: str
) -> None:
    """On `$batch` an auth fault makes the envelope 401 and runs no item (one token check)."""
    users = members(graph, 2)
    add_rules(admin, {"kind": kind, "count": 1})
    requests = {"requests": [revoke_item(str(n), u) for n, u in enumerate(users)]}
    refused = graph.post("/$batch", json=requests)
    assert refused.status_code == 401
    assert graph_error(refused)["code"] == "InvalidAuthenticationToken"
    assert ("WWW-Authenticate" in refused.headers) is (kind == "claims_challenge")
    assert ledger(admin) == []
    accepted = graph.post("/$batch", json=requests)
    assert accepted.status_code == 200
    assert [item["status"] for item in accepted.json()["responses"]] == [200, 200]
    assert sorted(row["user_id"] for row in ledger(admin)) == sorted(users)


# -- connection faults ----------------------------------------------------------------------


def test_reset_before_applies_nothing(graph: httpx.Client, admin: httpx.Client) -> None:
    """`reset_before`: the client sees a reset, the ledger is unchanged, the next call works."""
    (user,) = members(graph, 1)
    add_rules(admin, {"kind": "reset_before", "count": 1, "path": REVOKE})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        revoke(graph, user)
    assert effects(admin, user) == []
    assert revoke(graph, user).status_code == 200
    assert effects(admin, user) == ["sessions_revoked"]


def test_drop_after_applies_the_change_once(graph: httpx.Client, admin: httpx.Client) -> None:
    """`drop_after`: the client gets no response, yet the change was applied exactly once."""
    (user,) = members(graph, 1)
    add_rules(admin, {"kind": "drop_after", "count": 1, "method": "PATCH"})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        graph.patch(f"/users/{user}", json={"accountEnabled": False})
    assert effects(admin, user) == ["account_disabled"]
    read = graph.get(f"/users/{user}", params={"$select": "accountEnabled"})
    assert read.json()["accountEnabled"] is False


def test_drip_defeats_a_per_chunk_read_timeout(
    emulator: Emulator, graph: httpx.Client, admin: httpx.Client
) -> None:
    """`drip` sends the body a byte at a time: a 0.1 s read timeout never fires in ~1 s."""
    (user,) = members(graph, 1)
    delay = 0.01
    add_rules(admin, {"kind": "drip", "count": 1, "delay_s": delay, "path": REVOKE})
    token = graph.headers["Authorization"]
    started = time.perf_counter()
    with (
        httpx.Client(
            base_url=f"{emulator.graph_url}/v1.0",
            headers={"Authorization": token},
            timeout=httpx.Timeout(0.1),
        ) as slow,
        slow.stream("POST", f"/users/{user}/revokeSignInSessions", json={}) as response,
    ):
        chunks = list(response.iter_raw())
    elapsed = time.perf_counter() - started
    body = b"".join(chunks)
    assert response.status_code == 200
    assert json.loads(body)["value"] is True
    assert int(response.headers["content-length"]) == len(body)
    assert len(chunks) >= 20
    assert elapsed >= len(body) * delay * 0.9 > 0.5
    assert effects(admin, user) == ["sessions_revoked"]


# -- faults on the $batch envelope ----------------------------------------------------------


def _batch_log(admin: httpx.Client) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The newest `$batch` row of the request log and the rows of its items."""
    rows = admin.get("/requests").json()["value"]
    outer = [row for row in rows if row["path"].endswith("$batch")][-1]
    return outer, [row for row in rows if row["batch"] == outer["seq"]]


@pytest.mark.parametrize(
    ("status", "code"),
    [(424, "FailedDependency"), (429, "TooManyRequests"), (503, "serviceNotAvailable")],
)
def test_batch_status_before_runs_no_item(
    graph: httpx.Client, admin: httpx.Client, status: int, code: str
) -> None:
    """An envelope 424/429/503 `before` answers the whole batch; no item is applied."""
    users = members(graph, 3)
    add_rules(admin, {"kind": "batch_status", "status": status, "retry_after": "int:3"})
    response = graph.post(
        "/$batch", json={"requests": [revoke_item(str(n), u) for n, u in enumerate(users)]}
    )
    assert response.status_code == status
    assert response.headers["Retry-After"] == "3"
    assert graph_error(response)["code"] == code
    assert ledger(admin) == []
    outer, items = _batch_log(admin)
    assert outer["status"] == status
    assert items == []


def test_batch_500_after_without_body(graph: httpx.Client, admin: httpx.Client) -> None:
    """An envelope 500 `after` with `body: false`: every item was applied, the body is empty."""
    users = members(graph, 4)
    add_rules(admin, {"kind": "batch_status", "status": 500, "when": "after", "body": False})
    response = graph.post(
        "/$batch", json={"requests": [revoke_item(str(n), u) for n, u in enumerate(users)]}
    )
    assert response.status_code == 500
    assert response.content == b""
    assert sorted(row["user_id"] for row in ledger(admin)) == sorted(users)
    outer, items = _batch_log(admin)
    assert outer["status"] == 500
    assert [row["status"] for row in items] == [200, 200, 200, 200]


@pytest.mark.parametrize("kind", ["batch_malformed", "batch_truncated"])
def test_batch_body_not_json_after_items_ran(
    graph: httpx.Client, admin: httpx.Client, kind: str
) -> None:
    """`batch_malformed` / `batch_truncated`: a 200 whose body is not JSON; items applied."""
    users = members(graph, 5)
    add_rules(admin, {"kind": kind})
    response = graph.post(
        "/$batch", json={"requests": [revoke_item(str(n), u) for n, u in enumerate(users)]}
    )
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content.startswith(b'{"responses":')
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert sorted(row["user_id"] for row in ledger(admin)) == sorted(users)


def test_batch_truncated_is_the_first_half(graph: httpx.Client, admin: httpx.Client) -> None:
    """`batch_truncated` cuts the real body: it is a prefix half as long as the full answer."""
    (user,) = members(graph, 1)
    item = {"id": "r", "method": "GET", "url": f"/users/{user}?$select=id"}
    full = graph.post("/$batch", json={"requests": [item]})
    add_rules(admin, {"kind": "batch_truncated"})
    cut = graph.post("/$batch", json={"requests": [item]})
    assert len(cut.content) == len(full.content) // 2
    assert full.content.startswith(cut.content)


def test_batch_missing_items(graph: httpx.Client, admin: httpx.Client) -> None:
    """`batch_missing_items` leaves `drop` responses out; all items were applied."""
    users = members(graph, 6)
    add_rules(admin, {"kind": "batch_missing_items", "drop": 2})
    sent = [f"r{n}" for n in range(6)]
    response = graph.post(
        "/$batch", json={"requests": [revoke_item(i, u) for i, u in zip(sent, users, strict=True)]}
    )
    assert response.status_code == 200
    got = [item["id"] for item in response.json()["responses"]]
    assert len(got) == 4
    assert len(set(got)) == 4
    assert set(got) < set(sent)
    assert sorted(row["user_id"] for row in ledger(admin)) == sorted(users)


def test_batch_unknown_id(graph: httpx.Client, admin: httpx.Client) -> None:
    """`batch_unknown_id`: one response carries an id never sent; the others are correct."""
    users = members(graph, 4)
    add_rules(admin, {"kind": "batch_unknown_id", "id": "zz-unknown"})
    sent = {f"r{n}": u for n, u in enumerate(users)}
    response = graph.post(
        "/$batch", json={"requests": [revoke_item(i, u) for i, u in sent.items()]}
    )
    assert response.status_code == 200
    got = [item["id"] for item in response.json()["responses"]]
    assert len(got) == 4
    assert got.count("zz-unknown") == 1
    assert len(set(got) & set(sent)) == 3
    assert sorted(row["user_id"] for row in ledger(admin)) == sorted(users)


def test_batch_duplicate_id(graph: httpx.Client, admin: httpx.Client) -> None:
    """`batch_duplicate_id`: two responses share an id, one sent id has no response."""
    users = members(graph, 4)
    add_rules(admin, {"kind": "batch_duplicate_id"})
    sent = [f"r{n}" for n in range(4)]
    response = graph.post(
        "/$batch", json={"requests": [revoke_item(i, u) for i, u in zip(sent, users, strict=True)]}
    )
    assert response.status_code == 200
    got = [item["id"] for item in response.json()["responses"]]
    assert len(got) == 4
    assert len(set(got)) == 3
    assert set(got) < set(sent)
    assert sorted(row["user_id"] for row in ledger(admin)) == sorted(users)


def test_connection_faults_on_the_batch_envelope(graph: httpx.Client, admin: httpx.Client) -> None:
    """A reset before the batch applies no item; a drop after it applied every item."""
    users = members(graph, 4)
    add_rules(
        admin,
        {"kind": "reset_before", "count": 1, "path": "/$batch"},
        {"kind": "drop_after", "count": 1, "path": "/$batch"},
    )
    first = {"requests": [revoke_item(str(n), u) for n, u in enumerate(users[:2])]}
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        graph.post("/$batch", json=first)
    assert ledger(admin) == []
    second = {"requests": [revoke_item(str(n), u) for n, u in enumerate(users[2:])]}
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        graph.post("/$batch", json=second)
    assert sorted(row["user_id"] for row in ledger(admin)) == sorted(users[2:])


# -- faults on items inside a batch ---------------------------------------------------------


def test_item_faults_inside_a_200_batch(graph: httpx.Client, admin: httpx.Client) -> None:
    """One item 429 (Retry-After in its headers), one 503 after, one warned; the batch is 200."""
    throttled, failed_late, warned, plain = members(graph, 4)
    add_rules(
        admin,
        {
            "kind": "status",
            "status": 429,
            "retry_after": "decimal:0.249",
            "path": f"/users/{throttled}/revokeSignInSessions",
        },
        {
            "kind": "status",
            "status": 503,
            "when": "after",
            "path": f"/users/{failed_late}/revokeSignInSessions",
        },
        {"kind": "throttle_warning", "path": f"/users/{warned}/revokeSignInSessions"},
    )
    requests = [
        revoke_item("t", throttled),
        revoke_item("f", failed_late),
        revoke_item("w", warned),
        revoke_item("p", plain),
    ]
    response = graph.post("/$batch", json={"requests": requests})
    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["responses"]}
    assert items["t"]["status"] == 429
    assert items["t"]["headers"]["Retry-After"] == "0.249"
    assert items["t"]["body"]["error"]["code"] == "TooManyRequests"
    assert items["f"]["status"] == 503
    assert items["f"]["body"]["error"]["code"] == "serviceNotAvailable"
    assert items["w"]["status"] == 200
    assert items["w"]["headers"]["x-ms-throttle-limit-percentage"] == "0.95"
    assert items["p"]["status"] == 200
    assert "x-ms-throttle-limit-percentage" not in items["p"]["headers"]
    applied = {row["user_id"] for row in ledger(admin)}
    assert applied == {failed_late, warned, plain}


# -- rule selection: count, skip, rate and seed ---------------------------------------------


def test_count_and_skip_over_http(graph: httpx.Client, admin: httpx.Client) -> None:
    """skip 1, count 2: requests 2 and 3 fail, the rest pass; the counters say so."""
    (user,) = members(graph, 1)
    add_rules(admin, {"kind": "status", "status": 503, "count": 2, "skip": 1, "method": "GET"})
    statuses = [graph.get(f"/users/{user}").status_code for _ in range(5)]
    assert statuses == [200, 503, 503, 200, 200]
    (rule,) = admin.get("/faults").json()["rules"]
    assert (rule["matched"], rule["injected"]) == (5, 2)


def _pattern(graph_url: str, token: str, user: str, requests: int) -> list[int]:
    with httpx.Client(
        base_url=f"{graph_url}/v1.0", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        return [client.get(f"/users/{user}").status_code for _ in range(requests)]


def test_rate_and_seed_repeat_over_http(emulator_factory: EmulatorFactory, tmp_path: Path) -> None:
    """The same rate and seed fail the same requests, from a file or the admin API alike."""
    rule = {"kind": "status", "status": 503, "rate": 0.5, "method": "GET", "path": "/users/*"}
    rules_file = tmp_path / "faults.json"
    rules_file.write_text(json.dumps([{**rule, "seed": 4}]))
    from_file = emulator_factory(name="file", faults_file=rules_file)
    by_api = emulator_factory(name="api")
    other_seed = emulator_factory(name="other")
    for emu, seed in ((by_api, 4), (other_seed, 5)):
        added = httpx.post(f"{emu.admin_url}/faults", json={**rule, "seed": seed})
        assert added.status_code == 201
    assert from_file.store is not None
    user = str(from_file.store.query("SELECT id FROM users ORDER BY id LIMIT 1")[0]["id"])
    patterns = [
        _pattern(emu.graph_url, emu.mint_app_token(), user, 40)
        for emu in (from_file, by_api, other_seed)
    ]
    assert patterns[0] == patterns[1]
    assert patterns[0] != patterns[2]
    assert set(patterns[0]) == {200, 503}
    (counted,) = httpx.get(f"{from_file.admin_url}/faults").json()["rules"]
    assert counted["matched"] == 40
    assert counted["injected"] == patterns[0].count(503)


def test_rules_from_file_are_active_at_start(
    emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    """`--faults FILE` (the `{"rules": [...]}` form) is active from the first request."""
    rules_file = tmp_path / "faults.json"
    rules_file.write_text(
        json.dumps(
            {
                "rules": [
                    {"kind": "status", "status": 429, "retry_after": "int:9", "count": 1},
                    {"kind": "throttle_warning", "percentage": 0.9, "method": "GET"},
                ]
            }
        )
    )
    emu = emulator_factory(faults_file=rules_file)
    headers = {"Authorization": f"Bearer {emu.mint_app_token()}"}
    first = httpx.get(f"{emu.graph_url}/v1.0/organization", headers=headers)
    second = httpx.get(f"{emu.graph_url}/v1.0/organization", headers=headers)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "9")
    assert second.status_code == 200
    assert second.headers["x-ms-throttle-limit-percentage"] == "0.9"
    rules = httpx.get(f"{emu.admin_url}/faults").json()["rules"]
    assert [(r["kind"], r["matched"], r["injected"]) for r in rules] == [
        ("status", 2, 1),
        ("throttle_warning", 1, 1),
    ]


def test_admin_api_lists_refuses_and_clears_rules(graph: httpx.Client, admin: httpx.Client) -> None:
    """POST echoes the rule, a bad rule is 400 naming it, DELETE removes every rule."""
    added = add_rules(admin, {"kind": "status", "status": 503, "path": "/organization"})
    assert added == [
        {
            "kind": "status",
            "path": "/organization",
            "method": "*",
            "rate": 1.0,
            "count": None,
            "skip": 0,
            "seed": 0,
            "status": 503,
            "matched": 0,
            "injected": 0,
        }
    ]
    bad = admin.post("/faults", json={"kind": "status"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "fault rule 1: kind status needs a numeric 'status'"}
    assert graph.get("/organization").status_code == 503
    assert graph.get("/organization").status_code == 503
    (rule,) = admin.get("/faults").json()["rules"]
    assert (rule["matched"], rule["injected"]) == (2, 2)
    assert admin.delete("/faults").status_code == 204
    assert admin.get("/faults").json() == {"rules": []}
    assert graph.get("/organization").status_code == 200
