"""Authentication methods: list and get per version, per-type delete, the default rule, TAP."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from runner.emulator import Emulator
from tests.emulator.methods_support import (
    ALTERNATE,
    ALTERNATE_ID,
    AUTHENTICATOR,
    AUTHENTICATOR_2,
    COLLECTIONS,
    EMAIL,
    EVERY_KIND,
    FIDO2,
    HARDWARE_OATH,
    MOBILE_ID,
    OFFICE,
    PASSWORD_ID,
    PHONE,
    PLATFORM_CREDENTIAL,
    SOFTWARE_OATH,
    TAP,
    V1_TYPES,
    WINDOWS_HELLO,
    app_client,
    client,
    effects,
    make_user,
    user_client,
    user_id_of,
)

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def beta(emulator: Emulator) -> httpx.Client:
    """The admin app on `/beta`."""
    return app_client(emulator, "beta")


def _created(admin: httpx.Client, user_id: str) -> dict[str, str]:
    """Each method's registration time as the store holds it."""
    rows = admin.get(f"/users/{user_id}").json()["methods"]
    return {row["id"]: row["created"] for row in rows}


def _ids(response: httpx.Response) -> set[str]:
    return {method["id"] for method in response.json()["value"]}


def test_v1_list_shows_only_v1_types(graph: httpx.Client, admin: httpx.Client) -> None:
    """v1.0 lists the password and every v1.0 type, but not the beta-only hardware OATH."""
    user_id = make_user(admin, EVERY_KIND)
    response = graph.get(f"/users/{user_id}/authentication/methods")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith(
        f"/v1.0/$metadata#users('{user_id}')/authentication/methods"
    )
    assert {method["@odata.type"] for method in body["value"]} == V1_TYPES
    assert HARDWARE_OATH["id"] not in _ids(response)
    assert body["value"][0] == {
        "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
        "id": PASSWORD_ID,
        "password": None,
        "createdDateTime": admin.get(f"/users/{user_id}").json()["user"]["last_password_change"],
    }


def test_beta_list_adds_hardware_oath(beta: httpx.Client, admin: httpx.Client) -> None:
    """Beta lists the hardware OATH token too, with its device as the list example shows."""
    user_id = make_user(admin, EVERY_KIND)
    body = beta.get(f"/users/{user_id}/authentication/methods").json()
    assert {m["@odata.type"] for m in body["value"]} == V1_TYPES | {
        "#microsoft.graph.hardwareOathAuthenticationMethod"
    }
    (token,) = [m for m in body["value"] if m["id"] == HARDWARE_OATH["id"]]
    assert token == {
        "@odata.type": "#microsoft.graph.hardwareOathAuthenticationMethod",
        "id": HARDWARE_OATH["id"],
        "createdDateTime": _created(admin, user_id)[HARDWARE_OATH["id"]],
        "device": {
            "id": HARDWARE_OATH["id"],
            "displayName": "Token 1",
            "serialNumber": "TOTP123456",
            "manufacturer": "Contoso",
            "model": "Hardware Token 1000",
            "secretKey": None,
            "timeIntervalInSeconds": 30,
            "status": "activated",
            "hashFunction": "hmacsha1",
            "assignedTo": {
                "id": user_id,
                "displayName": token["device"]["assignedTo"]["displayName"],
            },
        },
    }


def test_each_type_has_its_documented_fields(graph: httpx.Client, admin: httpx.Client) -> None:
    """Every v1.0 type carries exactly the properties of its resource page."""
    user_id = make_user(admin, EVERY_KIND)
    created = _created(admin, user_id)
    shown = {
        m["id"]: m for m in graph.get(f"/users/{user_id}/authentication/methods").json()["value"]
    }
    assert shown[MOBILE_ID] == {
        "@odata.type": "#microsoft.graph.phoneAuthenticationMethod",
        "id": MOBILE_ID,
        "phoneNumber": "+1 4255550123",
        "phoneType": "mobile",
        "smsSignInState": "notAllowedByPolicy",
    }
    assert shown[EMAIL["id"]] == {
        "@odata.type": "#microsoft.graph.emailAuthenticationMethod",
        "id": EMAIL["id"],
        "emailAddress": "kim@outlook.com",
    }
    assert shown[AUTHENTICATOR["id"]] == {
        "@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
        "id": AUTHENTICATOR["id"],
        "displayName": "iPhone 15",
        "deviceTag": "SoftwareTokenActivated",
        "phoneAppVersion": "6.8.1",
        "createdDateTime": created[AUTHENTICATOR["id"]],
    }
    assert shown[FIDO2["id"]] == {
        "@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
        "id": FIDO2["id"],
        "displayName": "Red key",
        "createdDateTime": created[FIDO2["id"]],
        "creationDateTime": created[FIDO2["id"]],
        "aaGuid": "2fc0579f-8113-47ea-b116-555a8db9202a",
        "model": "NFC key",
        "attestationCertificates": ["dbe793efdf1945e2df25d93653a1e8a3268a9075"],
        "attestationLevel": "attested",
    }
    assert shown[SOFTWARE_OATH["id"]] == {
        "@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod",
        "id": SOFTWARE_OATH["id"],
        "secretKey": None,
    }
    assert shown[WINDOWS_HELLO["id"]] == {
        "@odata.type": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
        "id": WINDOWS_HELLO["id"],
        "displayName": "Jordan's Surface Book",
        "createdDateTime": created[WINDOWS_HELLO["id"]],
        "keyStrength": "normal",
    }
    assert shown[PLATFORM_CREDENTIAL["id"]] == {
        "@odata.type": "#microsoft.graph.platformCredentialAuthenticationMethod",
        "id": PLATFORM_CREDENTIAL["id"],
        "displayName": "Jordan's MacBook",
        "createdDateTime": created[PLATFORM_CREDENTIAL["id"]],
        "keyStrength": "normal",
        "platform": "macOS",
    }
    assert shown[TAP["id"]] == {
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
        "id": TAP["id"],
        "temporaryAccessPass": None,
        "createdDateTime": created[TAP["id"]],
        "startDateTime": "2026-01-01T00:00:00Z",
        "lifetimeInMinutes": 60,
        "isUsableOnce": True,
        "isUsable": False,
        "methodUsabilityReason": "Expired",
    }
    assert ISO.match(shown[TAP["id"]]["createdDateTime"])


@pytest.mark.parametrize(
    "kind", [*sorted(set(COLLECTIONS) - {"hardwareOath"}), "password"], ids=str
)
def test_per_type_collection_lists_only_its_type(
    graph: httpx.Client, admin: httpx.Client, kind: str
) -> None:
    """Each v1.0 per-type collection returns that type's methods and nothing else."""
    user_id = make_user(admin, EVERY_KIND)
    collection = COLLECTIONS.get(kind, "passwordMethods")
    response = graph.get(f"/users/{user_id}/authentication/{collection}")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith(f"('{user_id}')/authentication/{collection}")
    expected = (
        PASSWORD_ID
        if kind == "password"
        else next(m["id"] for m in EVERY_KIND if m["kind"] == kind)
    )
    assert _ids(response) == {expected}
    one = graph.get(f"/users/{user_id}/authentication/{collection}/{expected}")
    assert one.status_code == 200
    assert one.json()["id"] == expected
    assert one.json()["@odata.context"].endswith(f"/authentication/{collection}/$entity")


def test_hardware_oath_collection_is_beta_only(
    graph: httpx.Client, beta: httpx.Client, admin: httpx.Client
) -> None:
    """`hardwareOathMethods` is 400 'not found for the segment' on v1.0 and served on beta."""
    user_id = make_user(admin, [HARDWARE_OATH])
    v1 = graph.get(f"/users/{user_id}/authentication/hardwareOathMethods")
    assert v1.status_code == 400
    assert v1.json()["error"]["code"] == "BadRequest"
    assert v1.json()["error"]["message"] == (
        "Resource not found for the segment 'hardwareOathMethods'."
    )
    assert _ids(beta.get(f"/users/{user_id}/authentication/hardwareOathMethods")) == {
        HARDWARE_OATH["id"]
    }
    by_id = graph.get(f"/users/{user_id}/authentication/methods/{HARDWARE_OATH['id']}")
    assert by_id.status_code == 404


def test_get_by_id_checks_the_type(graph: httpx.Client, admin: httpx.Client) -> None:
    """`methods/{id}` finds any type; a per-type path with another type's id is 404."""
    user_id = make_user(admin, [PHONE, EMAIL])
    generic = graph.get(f"/users/{user_id}/authentication/methods/{MOBILE_ID}")
    assert generic.status_code == 200
    assert generic.json()["phoneType"] == "mobile"
    wrong = graph.get(f"/users/{user_id}/authentication/emailMethods/{MOBILE_ID}")
    assert wrong.status_code == 404
    assert wrong.json()["error"]["code"] == "itemNotFound"


def test_unknown_user_is_request_resource_not_found(graph: httpx.Client) -> None:
    """A methods call for a user that does not exist is the directory's 404."""
    missing = "00000000-0000-4000-8000-00000000dead"
    response = graph.get(f"/users/{missing}/authentication/methods")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "Request_ResourceNotFound"


DELETABLE = [
    (PHONE, "v1.0"),
    (EMAIL, "v1.0"),
    (AUTHENTICATOR, "v1.0"),
    (FIDO2, "v1.0"),
    (SOFTWARE_OATH, "v1.0"),
    (WINDOWS_HELLO, "v1.0"),
    (PLATFORM_CREDENTIAL, "v1.0"),
    (TAP, "v1.0"),
    (HARDWARE_OATH, "beta"),
]


@pytest.mark.parametrize(("method", "version"), DELETABLE, ids=lambda v: str(v)[:30])
def test_delete_each_type_then_404(
    emulator: Emulator, admin: httpx.Client, method: dict[str, Any], version: str
) -> None:
    """DELETE on the type's path is 204 and recorded; a second DELETE and a GET are 404."""
    user_id = make_user(admin, [method])
    collection = COLLECTIONS[method["kind"]]
    with app_client(emulator, version) as graph:
        path = f"/users/{user_id}/authentication/{collection}/{method['id']}"
        first = graph.delete(path)
        assert first.status_code == 204
        assert first.content == b""
        again = graph.delete(path)
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "itemNotFound"
        assert graph.get(path).status_code == 404
    assert effects(admin, user_id) == [
        ("method_deleted", {"kind": method["kind"], "id": method["id"]})
    ]


def test_generic_methods_delete_is_not_allowed(graph: httpx.Client, admin: httpx.Client) -> None:
    """There is no `DELETE …/methods/{id}`: 405 as Graph answers an unsupported method."""
    user_id = make_user(admin, [EMAIL])
    response = graph.delete(f"/users/{user_id}/authentication/methods/{EMAIL['id']}")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "Request_BadRequest"
    assert response.json()["error"]["message"] == (
        "Specified HTTP method is not allowed for the request target."
    )
    assert effects(admin, user_id) == []


def test_password_method_cannot_be_deleted(graph: httpx.Client, admin: httpx.Client) -> None:
    """The password method has no DELETE (405) and stays listed."""
    user_id = make_user(admin)
    response = graph.delete(f"/users/{user_id}/authentication/passwordMethods/{PASSWORD_ID}")
    assert response.status_code == 405
    assert _ids(graph.get(f"/users/{user_id}/authentication/methods")) == {PASSWORD_ID}


def test_default_method_delete_is_400_until_it_is_the_last(
    graph: httpx.Client, admin: httpx.Client, emulator: Emulator
) -> None:
    """The default goes only after the other MFA methods: exact 400 body, then 204s in order."""
    user_id = make_user(admin, [AUTHENTICATOR, PHONE, EMAIL], preferred="push")
    default_path = f"/users/{user_id}/authentication/microsoftAuthenticatorMethods/" + str(
        AUTHENTICATOR["id"]
    )
    refused = graph.delete(default_path, headers={"client-request-id": "crid-1"})
    assert refused.status_code == 400
    message = (
        f"The requested authentication method id of [{AUTHENTICATOR['id']}] matches the user's "
        "current default authentication method, and cannot be deleted until the default "
        "authentication method is changed"
    )
    error = refused.json()["error"]
    assert error["code"] == "badRequest"
    assert error["message"] == message
    assert list(error["innerError"]) == ["message", "date", "request-id", "client-request-id"]
    assert error["innerError"]["message"] == message
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", error["innerError"]["date"])
    assert error["innerError"]["request-id"] == refused.headers["request-id"]
    assert error["innerError"]["client-request-id"] == "crid-1"
    phone = graph.delete(f"/users/{user_id}/authentication/phoneMethods/{MOBILE_ID}")
    assert phone.status_code == 204
    last = graph.delete(default_path)
    assert last.status_code == 204
    assert effects(admin, user_id) == [
        ("method_deleted", {"kind": "phone", "id": MOBILE_ID}),
        ("method_deleted", {"kind": "microsoftAuthenticator", "id": AUTHENTICATOR["id"]}),
        (
            "default_method_changed",
            {"from": "push", "to": None, "cause": "last MFA method deleted"},
        ),
    ]
    with app_client(emulator, "beta") as beta:
        prefs = beta.get(f"/users/{user_id}/authentication/signInPreferences").json()
    assert prefs["userPreferredMethodForSecondaryAuthentication"] is None


@pytest.mark.parametrize(
    ("preferred", "method"),
    [
        ("oath", SOFTWARE_OATH),
        ("sms", PHONE),
        ("voiceMobile", PHONE),
        ("voiceOffice", OFFICE),
    ],
)
def test_default_rule_follows_the_preference(
    graph: httpx.Client, admin: httpx.Client, preferred: str, method: dict[str, Any]
) -> None:
    """Each preference value protects the method it names while another MFA method remains."""
    user_id = make_user(admin, [method, AUTHENTICATOR], preferred=preferred)
    path = f"/users/{user_id}/authentication/{COLLECTIONS[method['kind']]}/{method['id']}"
    assert graph.delete(path).status_code == 400
    other = f"/users/{user_id}/authentication/microsoftAuthenticatorMethods/{AUTHENTICATOR['id']}"
    assert graph.delete(other).status_code == 204
    assert graph.delete(path).status_code == 204


def test_alternate_mobile_default_and_the_mobile_rule(
    graph: httpx.Client, admin: httpx.Client
) -> None:
    """The mobile cannot go before the alternate; the alternate is protected as the default."""
    user_id = make_user(admin, [PHONE, ALTERNATE], preferred="voiceAlternateMobile")
    base = f"/users/{user_id}/authentication/phoneMethods"
    mobile = graph.delete(f"{base}/{MOBILE_ID}")
    assert mobile.status_code == 400
    assert mobile.json()["error"]["code"] == "badRequest"
    assert "alternateMobile" in mobile.json()["error"]["message"]
    assert graph.delete(f"{base}/{ALTERNATE_ID}").status_code == 400
    assert [kind for kind, _ in effects(admin, user_id)] == []


def test_a_second_authenticator_keeps_push_available(
    graph: httpx.Client, admin: httpx.Client
) -> None:
    """With two Authenticator registrations and push as default, either one may go."""
    user_id = make_user(admin, [AUTHENTICATOR, AUTHENTICATOR_2, PHONE], preferred="push")
    path = f"/users/{user_id}/authentication/microsoftAuthenticatorMethods/{AUTHENTICATOR['id']}"
    assert graph.delete(path).status_code == 204
    assert effects(admin, user_id) == [
        ("method_deleted", {"kind": "microsoftAuthenticator", "id": AUTHENTICATOR["id"]})
    ]


def test_deleted_method_lingers_in_lists_until_the_delay(
    graph: httpx.Client, admin: httpx.Client
) -> None:
    """Lists show a deleted method for consistency_delay_s; by id it is 404 at once."""
    assert admin.patch("/config", json={"consistency_delay_s": 0.6}).status_code == 204
    user_id = make_user(admin, [EMAIL, FIDO2])
    path = f"/users/{user_id}/authentication/fido2Methods/{FIDO2['id']}"
    assert graph.delete(path).status_code == 204
    started = time.monotonic()
    listed = graph.get(f"/users/{user_id}/authentication/methods")
    per_type = graph.get(f"/users/{user_id}/authentication/fido2Methods")
    by_id = graph.get(path)
    assert time.monotonic() - started < 0.6
    assert FIDO2["id"] in _ids(listed)
    assert _ids(per_type) == {FIDO2["id"]}
    assert by_id.status_code == 404
    time.sleep(0.7)
    assert _ids(graph.get(f"/users/{user_id}/authentication/methods")) == {PASSWORD_ID, EMAIL["id"]}
    assert _ids(graph.get(f"/users/{user_id}/authentication/fido2Methods")) == set()


def test_phone_numbers_masked_for_authentication_administrator(
    emulator: Emulator, admin: httpx.Client
) -> None:
    """AA (and readers) see `+1 XXXXXXXX23`; PAA, Global Admin and app-only see the number."""
    user_id = make_user(admin, [PHONE, OFFICE])
    path = f"/users/{user_id}/authentication/phoneMethods/{MOBILE_ID}"
    seen: dict[str, str] = {}
    for upn in ("auth.admin", "global.reader", "pa.admin", "it.admin"):
        with user_client(emulator, f"{upn}@contoso.com") as caller:
            response = caller.get(path)
            assert response.status_code == 200, upn
            seen[upn] = response.json()["phoneNumber"]
            listed = caller.get(f"/users/{user_id}/authentication/methods").json()["value"]
            assert {m.get("phoneNumber") for m in listed if "phoneNumber" in m} == (
                {"+1 XXXXXXXX23", "+1 XXXXXXXX99"}
                if upn in {"auth.admin", "global.reader"}
                else {"+1 4255550123", "+1 4255550199"}
            )
    with app_client(emulator) as app:
        seen["app"] = app.get(path).json()["phoneNumber"]
    assert seen == {
        "auth.admin": "+1 XXXXXXXX23",
        "global.reader": "+1 XXXXXXXX23",
        "pa.admin": "+1 4255550123",
        "it.admin": "+1 4255550123",
        "app": "+1 4255550123",
    }


def test_delegated_delete_follows_the_role_matrix(emulator: Emulator, admin: httpx.Client) -> None:
    """auth.admin may not delete a Global Administrator's method; pa.admin may."""
    target = user_id_of(emulator, "it.admin@contoso.com")
    methods = admin.get(f"/users/{target}").json()["methods"]
    (authenticator,) = [m["id"] for m in methods if m["kind"] == "microsoftAuthenticator"]
    path = f"/users/{target}/authentication/microsoftAuthenticatorMethods/{authenticator}"
    with user_client(emulator, "auth.admin@contoso.com") as aa:
        refused = aa.delete(path)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Authorization_RequestDenied"
    assert (
        refused.json()["error"]["message"] == "Insufficient privileges to complete the operation."
    )
    with user_client(emulator, "pa.admin@contoso.com") as paa:
        assert paa.delete(path).status_code == 204
    rows = effects(admin, target)
    assert rows[0] == ("method_deleted", {"kind": "microsoftAuthenticator", "id": authenticator})


def test_roles_and_permissions_for_methods(emulator: Emulator, admin: httpx.Client) -> None:
    """Read-only app lists but cannot delete; Helpdesk (no methods role) is refused outright."""
    user_id = make_user(admin, [EMAIL])
    path = f"/users/{user_id}/authentication/emailMethods/{EMAIL['id']}"
    with app_client(emulator, name="entra-bulk-reader") as reader:
        assert reader.get(f"/users/{user_id}/authentication/methods").status_code == 200
        assert reader.delete(path).status_code == 403
        created = reader.post(
            f"/users/{user_id}/authentication/temporaryAccessPassMethods", json={}
        )
        assert created.status_code == 403
    with user_client(emulator, "helpdesk@contoso.com") as helpdesk:
        assert helpdesk.get(path).status_code == 403
        assert helpdesk.delete(path).status_code == 403
    with user_client(emulator, "auth.admin@contoso.com") as aa:
        assert aa.delete(path).status_code == 204
    assert len(effects(admin, user_id)) == 1


def test_me_paths_manage_the_callers_own_methods(emulator: Emulator, admin: httpx.Client) -> None:
    """With the self-service scope a user lists and deletes their own methods via /me only."""
    mine = make_user(admin, [PHONE, EMAIL])
    upn = admin.get(f"/users/{mine}").json()["user"]["upn"]
    other = make_user(admin, [EMAIL])
    token = emulator.mint_user_token(upn, scopes=["UserAuthenticationMethod.ReadWrite"])
    with client(emulator, token) as me:
        listed = me.get("/me/authentication/methods")
        assert listed.status_code == 200
        assert _ids(listed) == {PASSWORD_ID, MOBILE_ID, EMAIL["id"]}
        phone = me.get(f"/me/authentication/phoneMethods/{MOBILE_ID}").json()
        assert phone["phoneNumber"] == "+1 4255550123"
        assert me.delete(f"/me/authentication/emailMethods/{EMAIL['id']}").status_code == 204
        assert me.get(f"/users/{other}/authentication/methods").status_code == 403
        reset = me.post(f"/me/authentication/methods/{PASSWORD_ID}/resetPassword", json={})
        assert reset.status_code == 403
    assert effects(admin, mine) == [("method_deleted", {"kind": "email", "id": EMAIL["id"]})]
    assert effects(admin, other) == []
