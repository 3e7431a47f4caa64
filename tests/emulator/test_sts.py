"""The official msal library, unmodified, gets working tokens from the emulated tenant in
every flow the runner supports: client secret, certificate (PEM and PFX), device code with
refresh, and managed identity (IMDS and App Service)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import certifi
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from runner.emulator import Emulator
from runner.emulator.authz import PRIVILEGED_AUTH_ADMIN, RUNNER_PERMISSIONS
from tests.conftest import EmulatorFactory
from tests.emulator.sts_support import (
    GRAPH_DEFAULT,
    assert_graph_accepts,
    claims,
    confidential,
    decide_later,
    public,
    session,
)

ADMIN_UPN = "pa.admin@contoso.com"
DELEGATED = ["User.Read.All", "UserAuthenticationMethod.ReadWrite.All"]


def _thumbprints(emu: Emulator, name: str) -> dict[str, str]:
    assert emu.store is not None
    row = emu.store.query_one(
        "SELECT cert_thumbprint_sha1, cert_thumbprint_sha256 FROM apps WHERE name = ?", (name,)
    )
    assert row is not None
    return {"sha1": row["cert_thumbprint_sha1"], "sha256": row["cert_thumbprint_sha256"]}


def _pem(emu: Emulator, name: str = "entra-bulk-admin") -> str:
    return Path(emu.app_entry(name)["certificate"]).read_text()


# -- client credentials ----------------------------------------------------------------------


def test_client_secret_token_is_cached_and_accepted_by_graph(emulator: Emulator) -> None:
    """A client secret gets an app token with the app's roles, which msal caches and Graph takes."""
    entry = emulator.app_entry("entra-bulk-admin")
    app = confidential(emulator, entry["client_secret"])
    first = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert first["token_type"] == "Bearer"
    assert first["expires_in"] == 3599
    assert first["token_source"] == "identity_provider"
    token = claims(first["access_token"])
    assert token["appid"] == entry["client_id"]
    assert token["tid"] == emulator.tenant_id
    assert token["aud"] == "https://graph.microsoft.com"
    assert token["idtyp"] == "app"
    assert token["roles"] == sorted(entry["permissions"])
    assert token["exp"] - token["iat"] == 3600
    second = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]
    assert_graph_accepts(emulator, first["access_token"])


def test_recommended_session_ignores_the_environments_ca_bundle(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With REQUESTS_CA_BUNDLE naming another CA, the recommended session (verify=ca_file,
    trust_env=False) still reaches the emulator, while a default session does not."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    entry = emulator.app_entry("entra-bulk-admin")
    result = confidential(emulator, entry["client_secret"]).acquire_token_for_client(
        scopes=GRAPH_DEFAULT
    )
    assert "access_token" in result, result
    default = requests.Session()
    default.verify = emulator.info["ca_file"]
    with pytest.raises(requests.exceptions.SSLError):
        default.get(f"{emulator.info['authority']}/v2.0/.well-known/openid-configuration")


def test_token_lifetime_follows_the_configuration(emulator_factory: EmulatorFactory) -> None:
    """`token_lifetime_s` sets both the token's lifetime and the reply's `expires_in`."""
    emu = emulator_factory(token_lifetime_s=7200)
    entry = emu.app_entry("entra-bulk-reader")
    result = confidential(
        emu, entry["client_secret"], name="entra-bulk-reader"
    ).acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert result["expires_in"] == 7199
    token = claims(result["access_token"])
    assert token["exp"] - token["iat"] == 7200
    assert token["roles"] == sorted(entry["permissions"])


def test_pem_certificate_with_sha1_thumbprint(emulator: Emulator) -> None:
    """A PEM key with its SHA-1 thumbprint (RS256 + x5t) gets a token Graph accepts."""
    credential = {
        "private_key": _pem(emulator),
        "thumbprint": _thumbprints(emulator, "entra-bulk-admin")["sha1"],
    }
    result = confidential(emulator, credential).acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in result, result
    assert (
        claims(result["access_token"])["appid"]
        == emulator.app_entry("entra-bulk-admin")["client_id"]
    )
    assert_graph_accepts(emulator, result["access_token"])


def test_pem_certificate_with_public_certificate(emulator: Emulator) -> None:
    """A PEM key with its certificate and no thumbprint (PS256 + x5t#S256 + x5c) works."""
    pem = _pem(emulator, "entra-bulk-user-admin")
    credential = {"private_key": pem, "public_certificate": pem}
    app = confidential(emulator, credential, name="entra-bulk-user-admin")
    result = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in result, result
    token = claims(result["access_token"])
    assert token["app_displayname"] == "entra-bulk-user-admin"
    assert_graph_accepts(emulator, result["access_token"])


@pytest.mark.parametrize("send_chain", [False, True])
def test_pfx_certificate(emulator: Emulator, tmp_path: Path, send_chain: bool) -> None:
    """A passphrase-protected PFX built from the app's PEM gets a token (PS256 + x5t#S256)."""
    data = _pem(emulator).encode()
    key = serialization.load_pem_private_key(data, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    certificate = x509.load_pem_x509_certificate(data)
    pfx = tmp_path / "admin.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"entra-bulk-admin",
            key,
            certificate,
            None,
            serialization.BestAvailableEncryption(b"correct horse"),
        )
    )
    credential = {
        "private_key_pfx_path": str(pfx),
        "passphrase": "correct horse",
        "public_certificate": send_chain,
    }
    result = confidential(emulator, credential).acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in result, result
    assert_graph_accepts(emulator, result["access_token"])


def test_wrong_secret_is_entras_invalid_client(emulator: Emulator) -> None:
    """A wrong secret comes back as Entra's error dict (AADSTS7000215), not an exception."""
    client_id = emulator.app_entry("entra-bulk-admin")["client_id"]
    result = confidential(emulator, "not-the-secret").acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" not in result
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    first_line, trace, correlation, stamp = result["error_description"].split("\r\n")
    assert first_line == (
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
        "request is the client secret value, not the client secret ID, for a secret added to "
        f"app '{client_id}'."
    )
    assert trace == f"Trace ID: {result['trace_id']}"
    assert correlation == f"Correlation ID: {result['correlation_id']}"
    assert stamp == f"Timestamp: {result['timestamp']}"
    assert result["error_uri"] == "https://login.microsoftonline.com/error?code=7000215"


def test_another_apps_certificate_is_refused(emulator: Emulator) -> None:
    """An assertion signed with a certificate not registered on the app is AADSTS700027."""
    credential = {
        "private_key": _pem(emulator, "entra-bulk-reader"),
        "thumbprint": _thumbprints(emulator, "entra-bulk-reader")["sha1"],
    }
    result = confidential(emulator, credential).acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]
    assert "The key was not found." in result["error_description"]


def test_unknown_client_is_unauthorized_client(emulator: Emulator) -> None:
    """A client id the tenant does not hold gets 400 unauthorized_client (AADSTS700016)."""
    client_id = "5e0f2b5c-0000-4000-8000-000000000001"
    app = confidential(emulator, "whatever", client_id=client_id)
    result = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]
    assert result["error_description"].startswith(
        f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
        "directory 'Contoso (emulated)'."
    )


def test_public_client_cannot_use_client_credentials(emulator: Emulator) -> None:
    """The device-code app (a public client) presenting a secret is refused (AADSTS700025)."""
    app = confidential(emulator, "a-secret", name="entra-bulk-cli")
    result = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700025]


def test_unknown_tenant_authority_is_refused_by_discovery(emulator: Emulator) -> None:
    """An authority naming another tenant fails msal's discovery with Entra's AADSTS90002."""
    authority = emulator.info["authority"].rsplit("/", 1)[0] + "/contoso.example"
    with pytest.raises(ValueError, match="Unable to get authority configuration") as raised:
        msal.ConfidentialClientApplication(
            emulator.app_entry("entra-bulk-admin")["client_id"],
            client_credential="x",
            authority=authority,
            instance_discovery=False,
            http_client=session(emulator),
        )
    cause = raised.value.__cause__ or raised.value.__context__
    assert "HTTP status: 400" in str(cause)
    assert "AADSTS90002: Tenant 'contoso.example' not found." in str(cause)


# -- device code -----------------------------------------------------------------------------


def _device_flow(app: Any, scopes: list[str]) -> dict[str, Any]:
    flow: dict[str, Any] = app.initiate_device_flow(scopes=scopes)
    assert "user_code" in flow, flow
    assert flow["interval"] == 1
    flow["expires_at"] = time.time() + 30  # bound the test if approval never lands
    return flow


def test_device_flow_approved_gives_user_tokens(emulator: Emulator) -> None:
    """An approved device code gives a delegated token (scp, wids), a refresh token, an id
    token and an account msal can list."""
    app = public(emulator)
    flow = _device_flow(app, DELEGATED)
    thread, statuses = decide_later(emulator, flow["user_code"], user=ADMIN_UPN)
    result = app.acquire_token_by_device_flow(flow)
    thread.join(10)
    assert statuses == [204]
    assert "access_token" in result, result
    assert result["refresh_token"]
    user = emulator.store.user(ADMIN_UPN) if emulator.store else None
    assert user is not None
    token = claims(result["access_token"])
    assert token["scp"] == " ".join(sorted(DELEGATED))
    assert token["upn"] == ADMIN_UPN
    assert token["oid"] == user["id"]
    assert token["appid"] == emulator.app_entry("entra-bulk-cli")["client_id"]
    assert PRIVILEGED_AUTH_ADMIN in token["wids"]
    id_token = result["id_token_claims"]
    assert id_token["aud"] == emulator.app_entry("entra-bulk-cli")["client_id"]
    assert id_token["preferred_username"] == ADMIN_UPN
    assert id_token["oid"] == user["id"]
    assert id_token["tid"] == emulator.tenant_id
    assert id_token["iss"] == f"{emulator.info['authority']}/v2.0"
    (account,) = app.get_accounts()
    assert account["username"] == ADMIN_UPN
    assert account["home_account_id"] == f"{user['id']}.{emulator.tenant_id}"
    assert_graph_accepts(emulator, result["access_token"])


def test_device_flow_denied_stops_polling(emulator: Emulator) -> None:
    """A declined device code ends msal's polling with authorization_declined."""
    app = public(emulator)
    flow = _device_flow(app, DELEGATED)
    thread, statuses = decide_later(emulator, flow["user_code"])
    started = time.monotonic()
    result = app.acquire_token_by_device_flow(flow)
    thread.join(10)
    assert statuses == [204]
    assert result["error"] == "authorization_declined"
    assert "access_token" not in result
    assert time.monotonic() - started < 10


def test_device_flow_scopes_are_limited_to_the_apps_permissions(emulator: Emulator) -> None:
    """Scopes the app may not be granted are left out of `scp`; Graph-prefixed ones count."""
    app = public(emulator)
    scopes = ["https://graph.microsoft.com/User.Read.All", "Directory.ReadWrite.All"]
    flow = _device_flow(app, scopes)
    thread, _statuses = decide_later(emulator, flow["user_code"], user="helpdesk@contoso.com")
    result = app.acquire_token_by_device_flow(flow)
    thread.join(10)
    assert claims(result["access_token"])["scp"] == "User.Read.All"
    assert result["scope"].split() == ["User.Read.All", "openid", "profile"]


def test_acquire_token_silent_refreshes_with_the_refresh_token(emulator: Emulator) -> None:
    """After device code, silent calls hit the cache, and a forced refresh redeems the refresh
    token for a new access token and a rotated refresh token."""
    app = public(emulator)
    flow = _device_flow(app, ["User.Read.All"])
    thread, _statuses = decide_later(emulator, flow["user_code"], user=ADMIN_UPN)
    first = app.acquire_token_by_device_flow(flow)
    thread.join(10)
    (account,) = app.get_accounts()
    cached = app.acquire_token_silent(["User.Read.All"], account=account)
    assert cached["token_source"] == "cache"
    assert cached["access_token"] == first["access_token"]
    refreshed = app.acquire_token_silent(["User.Read.All"], account=account, force_refresh=True)
    assert refreshed["token_source"] == "identity_provider"
    assert refreshed["access_token"] != first["access_token"]
    assert claims(refreshed["access_token"])["scp"] == "User.Read.All"
    (stored,) = app.token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)
    assert stored["secret"] != first["refresh_token"]
    assert_graph_accepts(emulator, refreshed["access_token"])


# -- managed identity ------------------------------------------------------------------------


@pytest.fixture
def imds(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """msal's VM (IMDS) managed-identity mode pointed at the emulator's Graph host."""
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IMDS_ENDPOINT", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    # msal 1.39 builds the IMDS URL from this host (+ /metadata/identity/oauth2/token).
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", emulator.graph_url)
    return emulator


def _managed_identity_client(identity: object) -> Any:
    # The managed-identity endpoint is plain http; trust_env off keeps proxies out of loopback.
    http = requests.Session()
    http.trust_env = False
    return msal.ManagedIdentityClient(identity, http_client=http)


def test_system_assigned_managed_identity(imds: Emulator) -> None:
    """The system-assigned identity gets an app token for entra-bulk-managed-identity."""
    client = _managed_identity_client(msal.SystemAssignedManagedIdentity())
    result = client.acquire_token_for_client(resource="https://graph.microsoft.com")
    assert "access_token" in result, result
    assert result["expires_in"] == 3599
    token = claims(result["access_token"])
    assert token["app_displayname"] == "entra-bulk-managed-identity"
    assert token["roles"] == sorted(RUNNER_PERMISSIONS)
    assert token["idtyp"] == "app"
    again = client.acquire_token_for_client(resource="https://graph.microsoft.com")
    assert again["token_source"] == "cache"
    assert_graph_accepts(imds, result["access_token"])


def test_user_assigned_managed_identity_by_client_id(imds: Emulator) -> None:
    """A user-assigned identity named by client id gets a token for that identity."""
    client_id = imds.app_entry("entra-bulk-managed-identity")["client_id"]
    client = _managed_identity_client(msal.UserAssignedManagedIdentity(client_id=client_id))
    result = client.acquire_token_for_client(resource="https://graph.microsoft.com")
    assert "access_token" in result, result
    assert claims(result["access_token"])["appid"] == client_id
    assert_graph_accepts(imds, result["access_token"])


def test_unknown_user_assigned_identity_is_an_error(imds: Emulator) -> None:
    """A user-assigned client id that names no managed identity gets IMDS's error, no token."""
    admin_app = imds.app_entry("entra-bulk-admin")["client_id"]  # an app, not an identity
    client = _managed_identity_client(msal.UserAssignedManagedIdentity(client_id=admin_app))
    result = client.acquire_token_for_client(resource="https://graph.microsoft.com")
    assert "access_token" not in result
    assert result == {"error": "invalid_request", "error_description": "Identity not found"}


def test_app_service_managed_identity(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """msal's App Service mode (IDENTITY_ENDPOINT + IDENTITY_HEADER) gets a token too."""
    monkeypatch.delenv("IMDS_ENDPOINT", raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", emulator.info["managed_identity_endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", "emulated-identity-header")
    client = _managed_identity_client(msal.SystemAssignedManagedIdentity())
    result = client.acquire_token_for_client(resource="https://graph.microsoft.com")
    assert "access_token" in result, result
    assert 3500 < result["expires_in"] <= 3599
    assert claims(result["access_token"])["app_displayname"] == "entra-bulk-managed-identity"
    assert_graph_accepts(emulator, result["access_token"])
