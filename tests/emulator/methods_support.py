"""Helpers for the authentication-methods tests: users with known methods, Graph clients."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from runner.emulator import Emulator

PASSWORD_ID = "28c10230-6103-485e-b985-444c60001490"
MOBILE_ID = "3179e48a-750b-4051-897c-87b9720928f7"
ALTERNATE_ID = "b6332ec1-7057-4abe-9331-3d72feddfe41"
OFFICE_ID = "e37fc753-ff3b-4958-9484-eaa9425c82bc"
EMAIL_ID = "3ddfcfc8-9383-446f-83cc-3ab9be4be18f"

# One method of every kind, as `POST /_emulator/users/{id}/methods` takes them.
PHONE = {
    "kind": "phone",
    "id": MOBILE_ID,
    "phoneNumber": "+1 4255550123",
    "phoneType": "mobile",
    "smsSignInState": "notAllowedByPolicy",
}
ALTERNATE = {
    "kind": "phone",
    "id": ALTERNATE_ID,
    "phoneNumber": "+1 4255550177",
    "phoneType": "alternateMobile",
    "smsSignInState": "notSupported",
}
OFFICE = {
    "kind": "phone",
    "id": OFFICE_ID,
    "phoneNumber": "+1 4255550199",
    "phoneType": "office",
    "smsSignInState": "notSupported",
}
EMAIL = {"kind": "email", "id": EMAIL_ID, "emailAddress": "kim@outlook.com"}
AUTHENTICATOR = {
    "kind": "microsoftAuthenticator",
    "id": "aa000000-0000-4000-8000-000000000001",
    "displayName": "iPhone 15",
    "deviceTag": "SoftwareTokenActivated",
    "phoneAppVersion": "6.8.1",
}
AUTHENTICATOR_2 = {**AUTHENTICATOR, "id": "aa000000-0000-4000-8000-000000000002"}
FIDO2 = {
    "kind": "fido2",
    "id": "-2_GRUg2-HYz6_1YG4YRAQ2",
    "displayName": "Red key",
    "aaGuid": "2fc0579f-8113-47ea-b116-555a8db9202a",
    "model": "NFC key",
    "attestationCertificates": ["dbe793efdf1945e2df25d93653a1e8a3268a9075"],
    "attestationLevel": "attested",
}
SOFTWARE_OATH = {
    "kind": "softwareOath",
    "id": "bb000000-0000-4000-8000-000000000001",
    "secretKey": None,
}
HARDWARE_OATH = {
    "kind": "hardwareOath",
    "id": "cc000000-0000-4000-8000-000000000001",
    "displayName": "Token 1",
    "serialNumber": "TOTP123456",
    "manufacturer": "Contoso",
    "model": "Hardware Token 1000",
    "timeIntervalInSeconds": 30,
    "status": "activated",
}
WINDOWS_HELLO = {
    "kind": "windowsHelloForBusiness",
    "id": "dd000000-0000-4000-8000-000000000001",
    "displayName": "Jordan's Surface Book",
    "keyStrength": "normal",
}
PLATFORM_CREDENTIAL = {
    "kind": "platformCredential",
    "id": "ee000000-0000-4000-8000-000000000001",
    "displayName": "Jordan's MacBook",
    "keyStrength": "normal",
    "platform": "macOS",
}
TAP = {
    "kind": "temporaryAccessPass",
    "id": "ff000000-0000-4000-8000-000000000001",
    "startDateTime": "2026-01-01T00:00:00Z",
    "lifetimeInMinutes": 60,
    "isUsableOnce": True,
}
EVERY_KIND = (
    PHONE,
    EMAIL,
    AUTHENTICATOR,
    FIDO2,
    SOFTWARE_OATH,
    HARDWARE_OATH,
    WINDOWS_HELLO,
    PLATFORM_CREDENTIAL,
    TAP,
)
V1_TYPES = {
    "#microsoft.graph.passwordAuthenticationMethod",
    "#microsoft.graph.phoneAuthenticationMethod",
    "#microsoft.graph.emailAuthenticationMethod",
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
    "#microsoft.graph.fido2AuthenticationMethod",
    "#microsoft.graph.softwareOathAuthenticationMethod",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
    "#microsoft.graph.platformCredentialAuthenticationMethod",
    "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
}
# store kind -> (collection, versions it is served on)
COLLECTIONS = {
    "phone": "phoneMethods",
    "email": "emailMethods",
    "microsoftAuthenticator": "microsoftAuthenticatorMethods",
    "fido2": "fido2Methods",
    "softwareOath": "softwareOathMethods",
    "hardwareOath": "hardwareOathMethods",
    "windowsHelloForBusiness": "windowsHelloForBusinessMethods",
    "platformCredential": "platformCredentialMethods",
    "temporaryAccessPass": "temporaryAccessPassMethods",
}


def make_user(
    admin: httpx.Client,
    methods: Iterable[Mapping[str, Any]] = (),
    *,
    preferred: str | None = None,
    **fields: Any,
) -> str:
    """A new user (through the admin API) holding exactly `methods`; returns its id."""
    upn = f"t{uuid.uuid4().hex[:10]}@contoso.com"
    response = admin.post("/users", json={"userPrincipalName": upn, **fields})
    assert response.status_code == 201, response.text
    user_id = str(response.json()["id"])
    for method in methods:
        added = admin.post(f"/users/{user_id}/methods", json=dict(method))
        assert added.status_code == 201, added.text
    if preferred is not None:
        patched = admin.patch(
            f"/users/{user_id}", json={"userPreferredMethodForSecondaryAuthentication": preferred}
        )
        assert patched.status_code == 204, patched.text
    return user_id


def client(emulator: Emulator, token: str, version: str = "v1.0") -> httpx.Client:
    """An httpx client on one Graph version of the emulated tenant with this token."""
    return httpx.Client(
        base_url=f"{emulator.graph_url}/{version}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def app_client(
    emulator: Emulator, version: str = "v1.0", name: str = "entra-bulk-admin"
) -> httpx.Client:
    """A client as an app (app-only token)."""
    return client(emulator, emulator.mint_app_token(name), version)


def user_client(emulator: Emulator, upn: str, version: str = "v1.0") -> httpx.Client:
    """A client as a seeded administrator (delegated token)."""
    return client(emulator, emulator.mint_user_token(upn), version)


def user_id_of(emulator: Emulator, upn: str) -> str:
    """The object id of a seeded user."""
    assert emulator.store is not None
    row = emulator.store.user(upn)
    assert row is not None
    return str(row["id"])


def ledger(admin: httpx.Client, user_id: str) -> list[dict[str, Any]]:
    """The side-effect ledger rows of one user, oldest first."""
    response = admin.get("/ledger", params={"user_id": user_id})
    assert response.status_code == 200
    return list(response.json()["value"])


def effects(admin: httpx.Client, user_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(effect, detail) of one user's ledger rows, oldest first."""
    return [(row["effect"], row["detail"]) for row in ledger(admin, user_id)]
