"""Temporary Access Pass creation: 201, the pass shown once, replacement, lifetime bounds."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from runner.emulator import Emulator
from tests.emulator.methods_support import EMAIL, effects, make_user, user_client, user_id_of

EXPECTED_KEYS = [
    "@odata.context",
    "@odata.type",
    "id",
    "temporaryAccessPass",
    "createdDateTime",
    "startDateTime",
    "lifetimeInMinutes",
    "isUsableOnce",
    "isUsable",
    "methodUsabilityReason",
]


def _create(graph: httpx.Client, user_id: str, body: dict[str, object]) -> httpx.Response:
    return graph.post(f"/users/{user_id}/authentication/temporaryAccessPassMethods", json=body)


def test_create_returns_the_pass_once(graph: httpx.Client, admin: httpx.Client) -> None:
    """201 with the documented body and the pass; later reads show `temporaryAccessPass: null`."""
    user_id = make_user(admin, [EMAIL])
    response = _create(graph, user_id, {"lifetimeInMinutes": 60, "isUsableOnce": False})
    assert response.status_code == 201
    body = response.json()
    assert list(body) == EXPECTED_KEYS
    assert body["@odata.type"] == "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
    assert body["@odata.context"].endswith(
        f"('{user_id}')/authentication/temporaryAccessPassMethods/$entity"
    )
    assert isinstance(body["temporaryAccessPass"], str)
    assert len(body["temporaryAccessPass"]) == 8
    assert body["startDateTime"] == body["createdDateTime"]
    assert (body["lifetimeInMinutes"], body["isUsableOnce"]) == (60, False)
    assert (body["isUsable"], body["methodUsabilityReason"]) == (True, "EnabledByPolicy")
    again = graph.get(f"/users/{user_id}/authentication/temporaryAccessPassMethods/{body['id']}")
    assert again.status_code == 200
    assert again.json()["temporaryAccessPass"] is None
    listed = graph.get(f"/users/{user_id}/authentication/methods").json()["value"]
    (tap,) = [m for m in listed if m["id"] == body["id"]]
    assert tap["temporaryAccessPass"] is None
    assert body["temporaryAccessPass"] not in again.text + str(listed)


def test_ledger_records_the_pass_id_not_the_pass(graph: httpx.Client, admin: httpx.Client) -> None:
    """`tap_created` names the method and its settings, never the pass itself."""
    user_id = make_user(admin)
    body = _create(graph, user_id, {"lifetimeInMinutes": 120, "isUsableOnce": True}).json()
    assert effects(admin, user_id) == [
        (
            "tap_created",
            {
                "id": body["id"],
                "startDateTime": body["startDateTime"],
                "lifetimeInMinutes": 120,
                "isUsableOnce": True,
            },
        )
    ]
    assert body["temporaryAccessPass"] not in admin.get("/ledger").text


def test_a_new_pass_replaces_the_previous(graph: httpx.Client, admin: httpx.Client) -> None:
    """Creating a second pass deletes the first: one pass listed, both effects in the ledger."""
    assert admin.patch("/config", json={"consistency_delay_s": 0}).status_code == 204
    user_id = make_user(admin)
    first = _create(graph, user_id, {}).json()
    second = _create(graph, user_id, {}).json()
    assert first["id"] != second["id"]
    listed = graph.get(f"/users/{user_id}/authentication/temporaryAccessPassMethods").json()
    assert [m["id"] for m in listed["value"]] == [second["id"]]
    gone = graph.get(f"/users/{user_id}/authentication/temporaryAccessPassMethods/{first['id']}")
    assert gone.status_code == 404
    assert [(effect, detail.get("id")) for effect, detail in effects(admin, user_id)] == [
        ("tap_created", first["id"]),
        ("method_deleted", first["id"]),
        ("tap_created", second["id"]),
    ]
    assert effects(admin, user_id)[1][1]["replacedBy"] == second["id"]


@pytest.mark.parametrize(
    ("lifetime", "status"),
    [(9, 400), (10, 201), (43200, 201), (43201, 400), ("60", 400), (True, 400)],
)
def test_lifetime_must_be_10_to_43200(
    graph: httpx.Client, admin: httpx.Client, lifetime: object, status: int
) -> None:
    """lifetimeInMinutes outside 10-43200 (or not a number) is 400 and creates nothing."""
    user_id = make_user(admin)
    response = _create(graph, user_id, {"lifetimeInMinutes": lifetime})
    assert response.status_code == status
    if status == 400:
        assert response.json()["error"]["code"] == "badRequest"
        assert effects(admin, user_id) == []
    else:
        assert response.json()["lifetimeInMinutes"] == lifetime


def test_default_lifetime_and_future_start(graph: httpx.Client, admin: httpx.Client) -> None:
    """Without a lifetime the policy's 60 minutes apply; a future start is NotYetValid."""
    user_id = make_user(admin)
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)
    body = _create(graph, user_id, {"startDateTime": start.isoformat()}).json()
    assert body["lifetimeInMinutes"] == 60
    assert body["startDateTime"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (body["isUsable"], body["methodUsabilityReason"]) == (False, "NotYetValid")
    assert body["isUsableOnce"] is False


def test_bad_start_is_400(graph: httpx.Client, admin: httpx.Client) -> None:
    """A startDateTime that is not a timestamp is refused."""
    user_id = make_user(admin)
    response = _create(graph, user_id, {"startDateTime": "next tuesday"})
    assert response.status_code == 400


def test_delegated_tap_follows_the_matrix(emulator: Emulator, admin: httpx.Client) -> None:
    """auth.admin may issue a pass to a non-admin but not to a Global Administrator."""
    ordinary = make_user(admin)
    global_admin = user_id_of(emulator, "it.admin@contoso.com")
    with user_client(emulator, "auth.admin@contoso.com") as aa:
        assert _create(aa, ordinary, {}).status_code == 201
        refused = _create(aa, global_admin, {})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Authorization_RequestDenied"
    with user_client(emulator, "pa.admin@contoso.com") as paa:
        assert _create(paa, global_admin, {}).status_code == 201
