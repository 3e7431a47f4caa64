"""resetPassword: delegated only, 202 + Location, polling to `succeeded`, faults, matrix."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from runner.emulator import Emulator
from tests.emulator.methods_support import (
    PASSWORD_ID,
    app_client,
    effects,
    make_user,
    user_client,
    user_id_of,
)

COMPLEXITY = (
    "The specified password does not comply with password complexity requirements. "
    "Please provide a different password."
)
NEW_PASSWORD = "Cuyo5459-canary"


def _reset(caller: httpx.Client, user_id: str, body: Any = None, *, beta: bool = False) -> Any:
    segment = "passwordMethods" if beta else "methods"
    path = f"/users/{user_id}/authentication/{segment}/{PASSWORD_ID}/resetPassword"
    return caller.post(path) if body is None else caller.post(path, json=body)


def _user_row(admin: httpx.Client, user_id: str) -> dict[str, Any]:
    return dict(admin.get(f"/users/{user_id}").json()["user"])


@pytest.fixture
def aa(emulator: Emulator) -> httpx.Client:
    """Authentication Administrator, delegated, on v1.0."""
    return user_client(emulator, "auth.admin@contoso.com")


def test_reset_answers_202_with_location(
    emulator: Emulator, aa: httpx.Client, admin: httpx.Client
) -> None:
    """A given password gives 202, `{}`, a Location to the operation and a Retry-After."""
    user_id = make_user(admin)
    response = _reset(aa, user_id, {"newPassword": NEW_PASSWORD})
    assert response.status_code == 202
    assert response.json() == {}
    location = response.headers["Location"]
    assert re.fullmatch(
        re.escape(f"{emulator.graph_url}/v1.0/users/{user_id}/authentication/operations/")
        + r"[0-9a-f-]{36}\?aadgdc=EMU01P&aadgsu=ssprprod-a",
        location,
    )
    assert response.headers["Retry-After"] == "1"


def test_reset_without_password_returns_a_generated_one(
    aa: httpx.Client, admin: httpx.Client
) -> None:
    """No body, `{}` both give the passwordResetResponse with a complex generated password."""
    for body in (None, {}):
        user_id = make_user(admin)
        response = _reset(aa, user_id, body)
        assert response.status_code == 202
        payload = response.json()
        assert list(payload) == ["@odata.context", "newPassword"]
        assert payload["@odata.context"].endswith(
            "/v1.0/$metadata#microsoft.graph.passwordResetResponse"
        )
        generated = payload["newPassword"]
        assert len(generated) >= 8
        classes = [
            any(c.islower() for c in generated),
            any(c.isupper() for c in generated),
            any(c.isdigit() for c in generated),
            any(not c.isalnum() for c in generated),
        ]
        assert sum(classes) >= 3


def test_polling_reaches_succeeded_and_only_then_applies(
    emulator: Emulator, aa: httpx.Client, admin: httpx.Client
) -> None:
    """notStarted/running until operation_delay_s, then succeeded; the ledger row waits too."""
    assert admin.patch("/config", json={"operation_delay_s": 0.8}).status_code == 204
    user_id = make_user(admin)
    before = _user_row(admin, user_id)["last_password_change"]
    location = _reset(aa, user_id, {"newPassword": NEW_PASSWORD}).headers["Location"]
    early = aa.get(location)
    assert early.status_code == 200
    operation = early.json()
    assert list(operation) == [
        "@odata.context",
        "id",
        "createdDateTime",
        "lastActionDateTime",
        "resourceLocation",
        "status",
        "statusDetail",
    ]
    assert operation["status"] == "running"
    assert location.split("?")[0].endswith(operation["id"])
    assert operation["resourceLocation"].endswith(
        f"/v1.0/users/{user_id}/authentication/passwordMethods/{PASSWORD_ID}"
    )
    assert effects(admin, user_id) == []
    assert _user_row(admin, user_id)["last_password_change"] == before
    time.sleep(0.9)
    done = aa.get(location).json()
    assert (done["status"], done["statusDetail"]) == ("succeeded", None)
    assert effects(admin, user_id) == [
        ("password_reset", {"via": "resetPassword", "operation": operation["id"]})
    ]
    row = _user_row(admin, user_id)
    assert row["last_password_change"] >= operation["createdDateTime"]
    assert row["force_change"] == 1


def test_beta_password_methods_path(emulator: Emulator, admin: httpx.Client) -> None:
    """The beta docs' `passwordMethods/{id}/resetPassword` path starts the same operation."""
    user_id = make_user(admin)
    with user_client(emulator, "pa.admin@contoso.com", "beta") as paa:
        response = _reset(paa, user_id, {"newPassword": NEW_PASSWORD}, beta=True)
    assert response.status_code == 202
    assert "/authentication/operations/" in response.headers["Location"]


def test_app_only_tokens_are_refused(emulator: Emulator, admin: httpx.Client) -> None:
    """resetPassword and its polling are delegated only: app tokens get 403, nothing starts."""
    user_id = make_user(admin)
    for version, beta in (("v1.0", False), ("beta", True)):
        with app_client(emulator, version) as app:
            response = _reset(app, user_id, {"newPassword": NEW_PASSWORD}, beta=beta)
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "Authorization_RequestDenied"
            polled = app.get(f"/users/{user_id}/authentication/operations/x")
            assert polled.status_code == 403
    time.sleep(1.1)
    assert effects(admin, user_id) == []


def test_the_user_id_in_the_method_slot_is_refused(aa: httpx.Client, admin: httpx.Client) -> None:
    """Graph's quirk: a wrong method id (often the user id) is 'not supported for this URL'."""
    user_id = make_user(admin)
    path = f"/users/{user_id}/authentication/methods/{user_id}/resetPassword"
    response = aa.post(path, json={"newPassword": NEW_PASSWORD})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "badRequest"
    assert response.json()["error"]["message"] == "The method is not supported for this URL."


def test_own_account_is_refused(emulator: Emulator, aa: httpx.Client) -> None:
    """An administrator cannot reset their own password this way."""
    me = user_id_of(emulator, "auth.admin@contoso.com")
    response = _reset(aa, me, {"newPassword": NEW_PASSWORD})
    assert response.status_code == 400
    assert "own account" in response.json()["error"]["message"]


def test_role_matrix_for_reset(emulator: Emulator, admin: httpx.Client) -> None:
    """AA cannot reset a Global Administrator, PAA can; Helpdesk resets non-admins only."""
    global_admin = user_id_of(emulator, "it.admin@contoso.com")
    auth_admin = user_id_of(emulator, "auth.admin@contoso.com")
    ordinary = make_user(admin)
    body = {"newPassword": NEW_PASSWORD}
    with user_client(emulator, "auth.admin@contoso.com") as aa:
        refused = _reset(aa, global_admin, body)
        assert refused.status_code == 403
        assert refused.json()["error"]["message"] == (
            "Insufficient privileges to complete the operation."
        )
    with user_client(emulator, "pa.admin@contoso.com") as paa:
        assert _reset(paa, global_admin, body).status_code == 202
    with user_client(emulator, "helpdesk@contoso.com") as helpdesk:
        assert _reset(helpdesk, ordinary, body).status_code == 202
        assert _reset(helpdesk, auth_admin, body).status_code == 403
    with user_client(emulator, "global.reader@contoso.com") as reader:
        assert _reset(reader, ordinary, body).status_code == 403


def test_weak_password_is_400(aa: httpx.Client, admin: httpx.Client) -> None:
    """A password failing complexity is refused with Graph's exact message; nothing starts."""
    user_id = make_user(admin)
    for weak in ("short1A", "alllowercaseletters", "12345678901"):
        response = _reset(aa, user_id, {"newPassword": weak})
        assert response.status_code == 400
        assert response.json()["error"] == {
            "code": "Request_BadRequest",
            "message": COMPLEXITY,
            "innerError": response.json()["error"]["innerError"],
        }
        assert weak not in response.text
    time.sleep(1.1)
    assert effects(admin, user_id) == []


def test_synced_user_needs_a_password(aa: httpx.Client, admin: httpx.Client) -> None:
    """Writeback users must be given a password; with one the reset starts."""
    user_id = make_user(admin, onPremisesSyncEnabled=True)
    assert _reset(aa, user_id, {}).status_code == 400
    assert _reset(aa, user_id, {"newPassword": NEW_PASSWORD}).status_code == 202


def test_operation_fails_fault(aa: httpx.Client, admin: httpx.Client) -> None:
    """`operation_fails`: the operation ends failed and the password is not changed."""
    assert admin.patch("/config", json={"operation_delay_s": 0.2}).status_code == 204
    assert admin.post("/faults", json={"kind": "operation_fails"}).status_code == 201
    user_id = make_user(admin)
    before = _user_row(admin, user_id)["last_password_change"]
    location = _reset(aa, user_id, {"newPassword": NEW_PASSWORD}).headers["Location"]
    time.sleep(0.3)
    operation = aa.get(location).json()
    assert operation["status"] == "failed"
    assert operation["statusDetail"]
    assert effects(admin, user_id) == []
    assert _user_row(admin, user_id)["last_password_change"] == before


def test_operation_slow_fault(aa: httpx.Client, admin: httpx.Client) -> None:
    """`operation_slow` with seconds keeps the operation running that long, then it succeeds."""
    assert admin.patch("/config", json={"operation_delay_s": 0.1}).status_code == 204
    rule = {"kind": "operation_slow", "seconds": 1.2, "count": 1}
    assert admin.post("/faults", json=rule).status_code == 201
    user_id = make_user(admin)
    response = _reset(aa, user_id, {"newPassword": NEW_PASSWORD})
    assert response.headers["Retry-After"] == "2"
    location = response.headers["Location"]
    time.sleep(0.4)
    assert aa.get(location).json()["status"] == "running"
    assert effects(admin, user_id) == []
    time.sleep(1.0)
    assert aa.get(location).json()["status"] == "succeeded"
    assert [effect for effect, _ in effects(admin, user_id)] == ["password_reset"]


def test_polling_rules(emulator: Emulator, aa: httpx.Client, admin: httpx.Client) -> None:
    """Global Reader may poll, Helpdesk may not; another user's or an unknown operation is 404."""
    user_id = make_user(admin)
    other = make_user(admin)
    location = _reset(aa, user_id, {"newPassword": NEW_PASSWORD}).headers["Location"]
    operation_id = location.split("?")[0].rsplit("/", 1)[1]
    with user_client(emulator, "global.reader@contoso.com") as reader:
        assert reader.get(location).status_code == 200
    with user_client(emulator, "helpdesk@contoso.com") as helpdesk:
        assert helpdesk.get(location).status_code == 403
    elsewhere = aa.get(f"/users/{other}/authentication/operations/{operation_id}")
    assert elsewhere.status_code == 404
    assert elsewhere.json()["error"]["code"] == "itemNotFound"
    assert aa.get(f"/users/{user_id}/authentication/operations/nope").status_code == 404


def test_exactly_one_reset_per_request(aa: httpx.Client, admin: httpx.Client) -> None:
    """The settler applies each operation once, however often the tenant is polled."""
    assert admin.patch("/config", json={"operation_delay_s": 0}).status_code == 204
    user_id = make_user(admin)
    location = _reset(aa, user_id, {"newPassword": NEW_PASSWORD}).headers["Location"]
    for _ in range(5):
        assert aa.get(location).json()["status"] == "succeeded"
    assert len(effects(admin, user_id)) == 1
