"""Beta per-user MFA state (`requirements`) and sign-in preferences (`signInPreferences`)."""

from __future__ import annotations

import httpx
import pytest

from runner.emulator import Emulator
from tests.emulator.methods_support import (
    AUTHENTICATOR,
    EMAIL,
    MOBILE_ID,
    PHONE,
    SOFTWARE_OATH,
    app_client,
    effects,
    make_user,
    user_client,
)


@pytest.fixture
def beta(emulator: Emulator) -> httpx.Client:
    """The admin app on `/beta`."""
    return app_client(emulator, "beta")


def test_requirements_get_shape(beta: httpx.Client, admin: httpx.Client) -> None:
    """GET returns the strongAuthenticationRequirements with the user's state."""
    user_id = make_user(admin)
    assert admin.patch(f"/users/{user_id}", json={"perUserMfaState": "enforced"}).status_code == 204
    response = beta.get(f"/users/{user_id}/authentication/requirements")
    assert response.status_code == 200
    assert response.json() == {
        "@odata.context": response.json()["@odata.context"],
        "@odata.type": "#microsoft.graph.strongAuthenticationRequirements",
        "perUserMfaState": "enforced",
    }
    assert response.json()["@odata.context"].endswith(
        f"/beta/$metadata#users('{user_id}')/authentication/requirements"
    )


@pytest.mark.parametrize("segment", ["requirements", "signInPreferences"])
def test_v1_has_no_such_segment(graph: httpx.Client, admin: httpx.Client, segment: str) -> None:
    """On v1.0 both resources are 400 'Resource not found for the segment', GET and PATCH."""
    user_id = make_user(admin)
    for response in (
        graph.get(f"/users/{user_id}/authentication/{segment}"),
        graph.patch(f"/users/{user_id}/authentication/{segment}", json={"perUserMfaState": "on"}),
    ):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "BadRequest"
        assert response.json()["error"]["message"] == (
            f"Resource not found for the segment '{segment}'."
        )
    assert effects(admin, user_id) == []


def test_requirements_patch(beta: httpx.Client, admin: httpx.Client) -> None:
    """PATCH is 204 and recorded once; the same value again changes nothing; bad values 400."""
    user_id = make_user(admin)
    path = f"/users/{user_id}/authentication/requirements"
    first = beta.patch(path, json={"perUserMfaState": "enabled"})
    assert first.status_code == 204
    assert first.content == b""
    assert beta.patch(path, json={"perUserMfaState": "enabled"}).status_code == 204
    assert beta.get(path).json()["perUserMfaState"] == "enabled"
    for bad in ({"perUserMfaState": "on"}, {"perUserMfaState": None}, {"state": "enabled"}, {}):
        response = beta.patch(path, json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "badRequest"
    assert effects(admin, user_id) == [("per_user_mfa_set", {"from": "disabled", "to": "enabled"})]


def test_requirements_delegated_roles(emulator: Emulator, admin: httpx.Client) -> None:
    """Authentication Policy Admin may write; Authentication Admin may neither read nor write."""
    user_id = make_user(admin)
    path = f"/users/{user_id}/authentication/requirements"
    body = {"perUserMfaState": "enforced"}
    with user_client(emulator, "auth.admin@contoso.com", "beta") as aa:
        assert aa.get(path).status_code == 403
        assert aa.patch(path, json=body).status_code == 403
    with user_client(emulator, "global.reader@contoso.com", "beta") as reader:
        assert reader.get(path).status_code == 200
        assert reader.patch(path, json=body).status_code == 403
    with user_client(emulator, "policy.admin@contoso.com", "beta") as policy:
        assert policy.patch(path, json=body).status_code == 204
    assert effects(admin, user_id) == [("per_user_mfa_set", {"from": "disabled", "to": "enforced"})]


def test_requirements_needs_the_policy_permission(emulator: Emulator, admin: httpx.Client) -> None:
    """An app without Policy.ReadWrite.AuthenticationMethod cannot PATCH (403)."""
    user_id = make_user(admin)
    with app_client(emulator, "beta", name="entra-bulk-reader") as reader:
        path = f"/users/{user_id}/authentication/requirements"
        assert reader.get(path).status_code == 200
        assert reader.patch(path, json={"perUserMfaState": "enabled"}).status_code == 403


def test_sign_in_preferences_get(beta: httpx.Client, admin: httpx.Client) -> None:
    """GET shows the system-preferred switch and the preferred method."""
    user_id = make_user(admin, [AUTHENTICATOR], preferred="push")
    response = beta.get(f"/users/{user_id}/authentication/signInPreferences")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith(f"('{user_id}')/authentication/signInPreferences")
    assert {key: value for key, value in body.items() if key != "@odata.context"} == {
        "@odata.type": "#microsoft.graph.signInPreferences",
        "isSystemPreferredAuthenticationMethodEnabled": True,
        "userPreferredMethodForSecondaryAuthentication": "push",
    }


def test_sign_in_preferences_patch(beta: httpx.Client, admin: httpx.Client) -> None:
    """Setting a held method is 204 and recorded; a method the user lacks, or junk, is 400."""
    user_id = make_user(admin, [AUTHENTICATOR, PHONE, EMAIL], preferred="push")
    path = f"/users/{user_id}/authentication/signInPreferences"
    key = "userPreferredMethodForSecondaryAuthentication"
    assert beta.patch(path, json={key: "sms"}).status_code == 204
    assert beta.get(path).json()[key] == "sms"
    for value in ("oath", "voiceOffice", "voiceAlternateMobile", "fax", "unknownFutureValue"):
        response = beta.patch(path, json={key: value})
        assert response.status_code == 400, value
        assert response.json()["error"]["code"] == "badRequest"
    switch = "isSystemPreferredAuthenticationMethodEnabled"
    assert beta.patch(path, json={switch: False}).status_code == 204
    assert beta.patch(path, json={switch: "no"}).status_code == 400
    assert beta.get(path).json()[switch] is False
    assert effects(admin, user_id) == [
        ("default_method_changed", {"from": "push", "to": "sms"}),
        ("default_method_changed", {switch: False}),
    ]


def test_changing_the_default_frees_the_old_one(beta: httpx.Client, admin: httpx.Client) -> None:
    """The runner's alternative to ordering: move the default, then delete the old default."""
    user_id = make_user(admin, [PHONE, SOFTWARE_OATH], preferred="sms")
    delete = f"/users/{user_id}/authentication/phoneMethods/{MOBILE_ID}"
    assert beta.delete(delete).status_code == 400
    prefs = f"/users/{user_id}/authentication/signInPreferences"
    patch = {"userPreferredMethodForSecondaryAuthentication": "oath"}
    assert beta.patch(prefs, json=patch).status_code == 204
    assert beta.delete(delete).status_code == 204


def test_sign_in_preferences_delegated(emulator: Emulator, admin: httpx.Client) -> None:
    """Helpdesk cannot read preferences; Authentication Admin can change a non-admin's."""
    user_id = make_user(admin, [AUTHENTICATOR, PHONE], preferred="push")
    path = f"/users/{user_id}/authentication/signInPreferences"
    with user_client(emulator, "helpdesk@contoso.com", "beta") as helpdesk:
        assert helpdesk.get(path).status_code == 403
    with user_client(emulator, "auth.admin@contoso.com", "beta") as aa:
        patch = {"userPreferredMethodForSecondaryAuthentication": "voiceMobile"}
        assert aa.patch(path, json=patch).status_code == 204
