"""The token host's wire contract, request by request: discovery, Entra's error shapes and
codes, client assertions, the device-code state machine, refresh tokens, the managed-identity
endpoint, and credentials that never reach a log or a table."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from runner.emulator import Emulator
from tests.emulator.sts_support import GRAPH_DEFAULT, claims, public

ADMIN_UPN = "pa.admin@contoso.com"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ERROR_KEYS = [
    "correlation_id",
    "error",
    "error_codes",
    "error_description",
    "error_uri",
    "timestamp",
    "trace_id",
]
# The key set of a real login.microsoftonline.com v2 discovery document (graph-reference §12).
DISCOVERY_KEYS = [
    "authorization_endpoint",
    "claims_supported",
    "cloud_graph_host_name",
    "cloud_instance_name",
    "device_authorization_endpoint",
    "end_session_endpoint",
    "frontchannel_logout_supported",
    "http_logout_supported",
    "id_token_signing_alg_values_supported",
    "issuer",
    "jwks_uri",
    "kerberos_endpoint",
    "msgraph_host",
    "rbac_url",
    "request_uri_parameter_supported",
    "response_modes_supported",
    "response_types_supported",
    "scopes_supported",
    "subject_types_supported",
    "tenant_region_scope",
    "token_endpoint",
    "token_endpoint_auth_methods_supported",
    "userinfo_endpoint",
]


@pytest.fixture
def sts(emulator: Emulator) -> Iterator[httpx.Client]:
    """An httpx client on the emulated authority (`https://127.0.0.1:PORT/{tid}`)."""
    context = ssl.create_default_context(cafile=emulator.info["ca_file"])
    with httpx.Client(
        base_url=emulator.info["authority"], verify=context, trust_env=False, timeout=10
    ) as client:
        yield client


def _entra_error(response: httpx.Response, status: int, error: str, code: int) -> str:
    """Assert Entra's error shape; returns the AADSTS line of `error_description`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert sorted(body) == ERROR_KEYS
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    first, *rest = body["error_description"].split("\r\n")
    assert rest == [
        f"Trace ID: {body['trace_id']}",
        f"Correlation ID: {body['correlation_id']}",
        f"Timestamp: {body['timestamp']}",
    ]
    assert first.startswith(f"AADSTS{code}: ")
    assert response.headers["cache-control"] == "no-store, no-cache"
    assert response.headers["x-ms-request-id"] == body["trace_id"]
    return str(first)


def _token(sts: httpx.Client, **form: str) -> httpx.Response:
    return sts.post("/oauth2/v2.0/token", data=form)


def _secret_form(emu: Emulator, name: str = "entra-bulk-admin") -> dict[str, str]:
    entry = emu.app_entry(name)
    return {
        "grant_type": "client_credentials",
        "client_id": entry["client_id"],
        "client_secret": entry["client_secret"],
        "scope": "https://graph.microsoft.com/.default",
    }


# -- discovery -------------------------------------------------------------------------------


def test_discovery_document_has_entras_keys_on_the_emulators_host(
    emulator: Emulator, sts: httpx.Client
) -> None:
    """The v2 discovery document has real Entra's keys, every URL on the emulator's host."""
    response = sts.get("/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "max-age=86400, private"
    document = response.json()
    assert sorted(document) == DISCOVERY_KEYS
    authority = emulator.info["authority"]
    assert document["token_endpoint"] == f"{authority}/oauth2/v2.0/token"
    assert document["device_authorization_endpoint"] == f"{authority}/oauth2/v2.0/devicecode"
    assert document["authorization_endpoint"] == f"{authority}/oauth2/v2.0/authorize"
    assert document["jwks_uri"] == f"{authority}/discovery/v2.0/keys"
    assert document["issuer"] == f"{authority}/v2.0"
    host = authority.rsplit("/", 1)[0]
    urls = [value for value in document.values() if isinstance(value, str) and "://" in value]
    foreign = {"https://pas.windows.net"}
    assert all(url.startswith(host + "/") for url in urls if url not in foreign)


def test_discovery_by_domain_names_the_tenant_id(emulator: Emulator, sts: httpx.Client) -> None:
    """Asking by the tenant's domain gives the document of its tenant id, as Entra does."""
    root = emulator.info["authority"].rsplit("/", 1)[0]
    response = sts.get(f"{root}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.json()["token_endpoint"] == emulator.info["authority"] + "/oauth2/v2.0/token"


def test_v1_discovery_document(emulator: Emulator, sts: httpx.Client) -> None:
    """The v1 document names the v1 issuer Graph tokens carry and the v1 endpoints."""
    document = sts.get("/.well-known/openid-configuration").json()
    assert document["issuer"] == f"https://sts.windows.net/{emulator.tenant_id}/"
    assert document["token_endpoint"] == emulator.info["authority"] + "/oauth2/token"
    assert document["jwks_uri"] == emulator.info["authority"] + "/discovery/keys"


def test_unknown_tenant_is_aadsts90002(emulator: Emulator, sts: httpx.Client) -> None:
    """A path naming another tenant gets Entra's 400 invalid_tenant, correlated by the
    caller's client-request-id."""
    root = emulator.info["authority"].rsplit("/", 1)[0]
    correlation = str(uuid.uuid4())
    response = sts.get(
        f"{root}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration",
        headers={"client-request-id": correlation},
    )
    first = _entra_error(response, 400, "invalid_tenant", 90002)
    assert "not found. Check to make sure you have the correct tenant ID" in first
    assert response.json()["correlation_id"] == correlation
    assert response.headers["client-request-id"] == correlation
    refused = sts.post(f"{root}/contoso.example/oauth2/v2.0/token", data=_secret_form(emulator))
    _entra_error(refused, 400, "invalid_tenant", 90002)


def test_jwks_verifies_the_tokens_the_endpoint_issues(
    emulator: Emulator, sts: httpx.Client
) -> None:
    """The published key verifies an issued access token's signature."""
    keys = sts.get("/discovery/v2.0/keys").json()["keys"]
    assert [key["kid"] for key in keys] == ["entra-bulk-emulator-1"]
    token = _token(sts, **_secret_form(emulator)).json()["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == keys[0]["kid"]
    verified = jwt.decode(
        token,
        jwt.PyJWK(keys[0]).key,
        algorithms=["RS256"],
        audience="https://graph.microsoft.com",
    )
    assert verified["tid"] == emulator.tenant_id
    other = jwt.encode({"aud": "https://graph.microsoft.com"}, "k" * 32, algorithm="HS256")
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(other, jwt.PyJWK(keys[0]).key, algorithms=["RS256"])


def test_token_endpoint_refuses_get(sts: httpx.Client) -> None:
    """GET on the token endpoint is Entra's AADSTS900561."""
    first = _entra_error(sts.get("/oauth2/v2.0/token"), 400, "invalid_request", 900561)
    assert first.endswith("Received a GET request.")


# -- client credentials ----------------------------------------------------------------------


def test_client_credentials_reply_shape(emulator: Emulator, sts: httpx.Client) -> None:
    """Client credentials answer exactly Entra's four keys, not cacheable."""
    response = _token(sts, **_secret_form(emulator))
    assert response.status_code == 200
    body = response.json()
    assert sorted(body) == ["access_token", "expires_in", "ext_expires_in", "token_type"]
    assert (body["token_type"], body["expires_in"], body["ext_expires_in"]) == (
        "Bearer",
        3599,
        3599,
    )
    assert response.headers["cache-control"] == "no-store, no-cache"
    assert response.headers["pragma"] == "no-cache"


@pytest.mark.parametrize(
    ("scope", "error", "code"),
    [
        ("User.Read.All", "invalid_scope", 1002012),
        ("https://management.azure.com/.default", "invalid_resource", 500011),
        ("openid", "invalid_request", 90014),
    ],
)
def test_client_credentials_scope_errors(
    emulator: Emulator, sts: httpx.Client, scope: str, error: str, code: int
) -> None:
    """Client credentials accept only Graph's `/.default`, with Entra's errors otherwise."""
    _entra_error(_token(sts, **{**_secret_form(emulator), "scope": scope}), 400, error, code)


def test_graph_app_id_default_scope_is_graph(emulator: Emulator, sts: httpx.Client) -> None:
    """Graph's app id form of `/.default` names Graph too."""
    form = {**_secret_form(emulator), "scope": "00000003-0000-0000-c000-000000000000/.default"}
    response = _token(sts, **form)
    assert response.status_code == 200
    assert claims(response.json()["access_token"])["aud"] == "https://graph.microsoft.com"


@pytest.mark.parametrize(
    ("change", "status", "error", "code"),
    [
        ({"grant_type": ""}, 400, "invalid_request", 900144),
        ({"client_id": ""}, 400, "invalid_request", 900144),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"client_secret": ""}, 401, "invalid_client", 7000218),
    ],
)
def test_malformed_token_requests(
    emulator: Emulator,
    sts: httpx.Client,
    change: dict[str, str],
    status: int,
    error: str,
    code: int,
) -> None:
    """Missing fields, unknown grants and missing credentials get Entra's codes."""
    _entra_error(_token(sts, **{**_secret_form(emulator), **change}), status, error, code)


def test_public_client_without_secret_cannot_use_client_credentials(
    emulator: Emulator, sts: httpx.Client
) -> None:
    """A public client asking for client credentials has no credential: AADSTS7000218."""
    form = {
        **_secret_form(emulator),
        "client_id": emulator.app_entry("entra-bulk-cli")["client_id"],
    }
    del form["client_secret"]
    _entra_error(_token(sts, **form), 401, "invalid_client", 7000218)


def test_managed_identity_cannot_use_a_secret(emulator: Emulator, sts: httpx.Client) -> None:
    """A managed identity's client id with a client secret is Entra's AADSTS7000232."""
    client_id = emulator.app_entry("entra-bulk-managed-identity")["client_id"]
    form = {**_secret_form(emulator), "client_id": client_id, "client_secret": "guess"}
    _entra_error(_token(sts, **form), 401, "invalid_client", 7000232)


# -- client assertions -----------------------------------------------------------------------


def _key_and_cert(emu: Emulator, name: str) -> tuple[Any, x509.Certificate]:
    data = Path(emu.app_entry(name)["certificate"]).read_bytes()
    return serialization.load_pem_private_key(data, None), x509.load_pem_x509_certificate(data)


def _assertion(
    emu: Emulator,
    *,
    signer: str = "entra-bulk-admin",
    thumbprint_of: str = "entra-bulk-admin",
    claims_update: dict[str, Any] | None = None,
    thumbprint: bool = True,
) -> str:
    key, _cert = _key_and_cert(emu, signer)
    _key, named = _key_and_cert(emu, thumbprint_of)
    client_id = emu.app_entry("entra-bulk-admin")["client_id"]
    now = int(time.time())
    payload = {
        "aud": emu.info["authority"] + "/oauth2/v2.0/token",
        "iss": client_id,
        "sub": client_id,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
        **(claims_update or {}),
    }
    digest = named.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is SHA-1 by definition
    headers = {"x5t": jwt.utils.base64url_encode(digest).decode()} if thumbprint else {}
    return jwt.encode(payload, key, algorithm="RS256", headers=headers)


def _assertion_form(emu: Emulator, assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": emu.app_entry("entra-bulk-admin")["client_id"],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "scope": "https://graph.microsoft.com/.default",
    }


def test_hand_made_assertion_is_accepted(emulator: Emulator, sts: httpx.Client) -> None:
    """An assertion built by hand as Entra documents it (RS256, x5t) gets a token."""
    response = _token(sts, **_assertion_form(emulator, _assertion(emulator)))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("options", "code", "reason"),
    [
        ({"claims_update": {"aud": "https://login.microsoftonline.com/x/oauth2/v2.0/token"}},
         700023, "audience claim does not match"),
        ({"claims_update": {"iss": "someone-else"}}, 700021, "application identifier"),
        ({"claims_update": {"exp": int(time.time()) - 3600, "nbf": int(time.time()) - 4000}},
         700024, "not within its valid time range"),
        ({"signer": "entra-bulk-reader"}, 700027, "did not match the expected signature"),
        ({"thumbprint_of": "entra-bulk-reader", "signer": "entra-bulk-reader"},
         700027, "The key was not found."),
        ({"thumbprint": False}, 700027, "The key was not found."),
    ],
)  # fmt: skip
def test_bad_assertions_are_invalid_client(
    emulator: Emulator, sts: httpx.Client, options: dict[str, Any], code: int, reason: str
) -> None:
    """Each way an assertion can be wrong is Entra's 401 invalid_client with its code."""
    response = _token(sts, **_assertion_form(emulator, _assertion(emulator, **options)))
    assert reason in _entra_error(response, 401, "invalid_client", code)


def test_malformed_assertion_is_aadsts50027(emulator: Emulator, sts: httpx.Client) -> None:
    """An assertion that is not a JWT is AADSTS50027."""
    response = _token(sts, **_assertion_form(emulator, "not-a-jwt"))
    assert "JWT token is invalid or malformed." in _entra_error(
        response, 401, "invalid_client", 50027
    )


# -- device code -----------------------------------------------------------------------------


def _start(
    sts: httpx.Client, client_id: str, scope: str = "openid profile offline_access User.Read.All"
) -> dict[str, Any]:
    response = sts.post("/oauth2/v2.0/devicecode", data={"client_id": client_id, "scope": scope})
    assert response.status_code == 200, response.text
    flow: dict[str, Any] = response.json()
    return flow


def _redeem(sts: httpx.Client, client_id: str, device_code: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": DEVICE_GRANT,
        "client_id": client_id,
        "device_code": device_code,
        "code": device_code,
        "client_info": "1",
        **extra,
    }
    return _token(sts, **form)


def _cli(emu: Emulator) -> str:
    return str(emu.app_entry("entra-bulk-cli")["client_id"])


def test_device_code_reply_shape(emulator: Emulator, sts: httpx.Client) -> None:
    """The device authorization reply has Entra's keys, a 1 s interval, a short code, and a
    message telling a person how to approve it here."""
    flow = _start(sts, _cli(emulator))
    assert sorted(flow) == [
        "device_code",
        "expires_in",
        "interval",
        "message",
        "user_code",
        "verification_uri",
    ]
    assert (flow["expires_in"], flow["interval"]) == (900, 1)
    code = flow["user_code"]
    assert len(code) == 9 and code.isalnum() and code.isupper()
    assert not set(code) & set("AEIOU01")
    assert flow["message"] == (
        f"To sign in to the emulated tenant, approve the code {code} as one of its users: "
        f"curl -sS -X POST {emulator.admin_url}/device/approve -H 'Content-Type: "
        f'application/json\' -d \'{{"user_code": "{code}", "user": "{ADMIN_UPN}"}}\''
    )
    page = sts.get(flow["verification_uri"])
    assert page.status_code == 200
    assert f"{emulator.admin_url}/device/approve" in page.text


def test_device_code_lifecycle(emulator: Emulator, sts: httpx.Client, admin: httpx.Client) -> None:
    """Pending until approved, then tokens once; a second redemption is refused."""
    flow = _start(sts, _cli(emulator))
    pending = _redeem(sts, _cli(emulator), flow["device_code"])
    assert "Authorization is pending" in _entra_error(pending, 400, "authorization_pending", 70016)
    typed = flow["user_code"][:4].lower() + "-" + flow["user_code"][4:]
    assert (
        admin.post("/device/approve", json={"user_code": typed, "user": ADMIN_UPN}).status_code
        == 204
    )
    granted = _redeem(sts, _cli(emulator), flow["device_code"])
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert sorted(body) == [
        "access_token",
        "client_info",
        "expires_in",
        "ext_expires_in",
        "id_token",
        "refresh_token",
        "scope",
        "token_type",
    ]
    assert body["scope"] == "User.Read.All openid profile"
    user = emulator.store.user(ADMIN_UPN) if emulator.store else None
    assert user is not None
    padded = body["client_info"] + "=" * (-len(body["client_info"]) % 4)
    assert json.loads(jwt.utils.base64url_decode(padded)) == {
        "uid": user["id"],
        "utid": emulator.tenant_id,
    }
    again = _redeem(sts, _cli(emulator), flow["device_code"])
    _entra_error(again, 400, "invalid_grant", 54005)


def test_device_code_without_openid_or_offline_access(
    emulator: Emulator, sts: httpx.Client, admin: httpx.Client
) -> None:
    """Without `openid` there is no id token, without `offline_access` no refresh token, and
    without `client_info=1` no client_info."""
    flow = _start(sts, _cli(emulator), scope="User.Read.All")
    admin.post("/device/approve", json={"user_code": flow["user_code"], "user": ADMIN_UPN})
    form = {
        "grant_type": DEVICE_GRANT,
        "client_id": _cli(emulator),
        "device_code": flow["device_code"],
    }
    body = _token(sts, **form).json()
    assert sorted(body) == ["access_token", "expires_in", "ext_expires_in", "scope", "token_type"]
    assert body["scope"] == "User.Read.All"


def test_declined_device_code(emulator: Emulator, sts: httpx.Client, admin: httpx.Client) -> None:
    """A declined code answers authorization_declined."""
    flow = _start(sts, _cli(emulator))
    assert admin.post("/device/deny", json={"user_code": flow["user_code"]}).status_code == 204
    _entra_error(
        _redeem(sts, _cli(emulator), flow["device_code"]), 400, "authorization_declined", 65004
    )


def test_expired_device_code(emulator: Emulator, sts: httpx.Client, admin: httpx.Client) -> None:
    """After 900 s a code is expired_token, and can no longer be approved."""
    flow = _start(sts, _cli(emulator))
    assert emulator.app is not None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=901)
    emulator.app.clock = lambda: later
    expired = _redeem(sts, _cli(emulator), flow["device_code"])
    assert "This device code has expired." in _entra_error(expired, 400, "expired_token", 70020)
    late = admin.post("/device/approve", json={"user_code": flow["user_code"], "user": ADMIN_UPN})
    assert late.status_code == 404
    assert late.json() == {"error": f"user code {flow['user_code']} has expired"}


def test_long_expired_device_codes_are_forgotten(emulator: Emulator, sts: httpx.Client) -> None:
    """An hour after expiry a device code is purged and answers as unknown."""
    old = _start(sts, _cli(emulator))
    assert emulator.app is not None
    much_later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=900 + 3601)
    emulator.app.clock = lambda: much_later
    _start(sts, _cli(emulator))
    forgotten = _redeem(sts, _cli(emulator), old["device_code"])
    _entra_error(forgotten, 400, "bad_verification_code", 70018)


def test_unknown_device_code_and_other_client(
    emulator: Emulator, sts: httpx.Client, admin: httpx.Client
) -> None:
    """An unknown device code, or one issued to another client, is bad_verification_code."""
    _entra_error(_redeem(sts, _cli(emulator), "no-such-code"), 400, "bad_verification_code", 70018)
    flow = _start(sts, _cli(emulator))
    admin.post("/device/approve", json={"user_code": flow["user_code"], "user": ADMIN_UPN})
    reader = emulator.app_entry("entra-bulk-reader")
    stolen = _redeem(
        sts, reader["client_id"], flow["device_code"], client_secret=reader["client_secret"]
    )
    _entra_error(stolen, 400, "bad_verification_code", 70018)


def test_confidential_client_device_code_needs_its_credential(
    emulator: Emulator, sts: httpx.Client, admin: httpx.Client
) -> None:
    """A confidential app redeeming a device code must authenticate (AADSTS7000218)."""
    entry = emulator.app_entry("entra-bulk-admin")
    flow = _start(sts, entry["client_id"])
    admin.post("/device/approve", json={"user_code": flow["user_code"], "user": ADMIN_UPN})
    _entra_error(
        _redeem(sts, entry["client_id"], flow["device_code"]), 401, "invalid_client", 7000218
    )
    granted = _redeem(
        sts, entry["client_id"], flow["device_code"], client_secret=entry["client_secret"]
    )
    assert granted.status_code == 200, granted.text


def test_admin_device_errors(emulator: Emulator, sts: httpx.Client, admin: httpx.Client) -> None:
    """The admin API refuses unknown codes and users, a missing user, a disabled user and a
    second decision, each with a JSON error."""
    flow = _start(sts, _cli(emulator))
    code = flow["user_code"]
    unknown_user = "nobody@contoso.com"
    cases = [
        (
            {"user_code": "BCDFGHJKL", "user": ADMIN_UPN},
            404,
            "no device code with user code BCDFGHJKL",
        ),
        (
            {"user_code": code, "user": unknown_user},
            404,
            f"no user {unknown_user} in the emulated tenant",
        ),
        ({"user_code": code}, 400, 'approving needs the signing-in user: "user": UPN or id'),
    ]
    for body, status, message in cases:
        response = admin.post("/device/approve", json=body)
        assert (response.status_code, response.json()) == (status, {"error": message})
    assert admin.patch(f"/users/{ADMIN_UPN}", json={"accountEnabled": False}).status_code == 204
    disabled = admin.post("/device/approve", json={"user_code": code, "user": ADMIN_UPN})
    assert (disabled.status_code, disabled.json()) == (
        409,
        {"error": f"{ADMIN_UPN} is disabled and cannot sign in"},
    )
    assert admin.post("/device/deny", json={"user_code": code}).status_code == 204
    twice = admin.post("/device/approve", json={"user_code": code, "user": "helpdesk@contoso.com"})
    assert (twice.status_code, twice.json()) == (
        409,
        {"error": f"user code {code} is already denied"},
    )


# -- refresh tokens --------------------------------------------------------------------------


def _signed_in(sts: httpx.Client, admin: httpx.Client, client_id: str) -> dict[str, Any]:
    flow = _start(sts, client_id)
    admin.post("/device/approve", json={"user_code": flow["user_code"], "user": ADMIN_UPN})
    body: dict[str, Any] = _redeem(sts, client_id, flow["device_code"]).json()
    return body


def _refresh(sts: httpx.Client, client_id: str, refresh_token: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "refresh_token": refresh_token,
        "scope": "openid profile offline_access User.Read.All",
        **extra,
    }
    return _token(sts, **form)


def test_refresh_rotates_and_old_token_stays_valid(
    emulator: Emulator, sts: httpx.Client, admin: httpx.Client
) -> None:
    """A refresh gives a new refresh token; the old one still works (Entra does not revoke
    refresh tokens on use)."""
    first = _signed_in(sts, admin, _cli(emulator))
    second = _refresh(sts, _cli(emulator), first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims(second["access_token"])["scp"] == "User.Read.All"
    assert _refresh(sts, _cli(emulator), first["refresh_token"]).status_code == 200


def test_revoked_sessions_invalidate_refresh_tokens(
    emulator: Emulator, sts: httpx.Client, admin: httpx.Client
) -> None:
    """Refresh tokens issued before the user's signInSessionsValidFromDateTime are refused
    with AADSTS50173, as after revokeSignInSessions."""
    tokens = _signed_in(sts, admin, _cli(emulator))
    assert _refresh(sts, _cli(emulator), tokens["refresh_token"]).status_code == 200
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = admin.patch(f"/users/{ADMIN_UPN}", json={"signInSessionsValidFromDateTime": now})
    assert patch.status_code == 204
    revoked = _refresh(sts, _cli(emulator), tokens["refresh_token"])
    assert "it being revoked" in _entra_error(revoked, 400, "invalid_grant", 50173)


def test_disabled_user_cannot_refresh(
    emulator: Emulator, sts: httpx.Client, admin: httpx.Client
) -> None:
    """A disabled account's refresh token is refused with AADSTS50057."""
    tokens = _signed_in(sts, admin, _cli(emulator))
    admin.patch(f"/users/{ADMIN_UPN}", json={"accountEnabled": False})
    refused = _refresh(sts, _cli(emulator), tokens["refresh_token"])
    assert "The user account is disabled." in _entra_error(refused, 400, "invalid_grant", 50057)


def test_unknown_or_foreign_refresh_tokens(
    emulator: Emulator, sts: httpx.Client, admin: httpx.Client
) -> None:
    """A refresh token the tenant never issued, or one issued to another client, is refused."""
    _entra_error(_refresh(sts, _cli(emulator), "1.Anot-a-token"), 400, "invalid_grant", 9002313)
    tokens = _signed_in(sts, admin, _cli(emulator))
    reader = emulator.app_entry("entra-bulk-reader")
    foreign = _refresh(
        sts, reader["client_id"], tokens["refresh_token"], client_secret=reader["client_secret"]
    )
    _entra_error(foreign, 400, "invalid_grant", 70000)


# -- managed identity ------------------------------------------------------------------------


def _imds(emu: Emulator, headers: dict[str, str] | None = None, **query: str) -> httpx.Response:
    params = {"api-version": "2018-02-01", "resource": "https://graph.microsoft.com", **query}
    return httpx.get(
        emu.info["managed_identity_endpoint"],
        params={key: value for key, value in params.items() if value},
        headers={"Metadata": "true"} if headers is None else headers,
        timeout=10,
    )


def test_imds_reply_shape(emulator: Emulator) -> None:
    """IMDS answers with its keys, numbers as strings."""
    body = _imds(emulator).json()
    assert sorted(body) == [
        "access_token",
        "client_id",
        "expires_in",
        "expires_on",
        "ext_expires_in",
        "not_before",
        "resource",
        "token_type",
    ]
    assert body["expires_in"] == "3599"
    assert int(body["expires_on"]) - int(body["not_before"]) == 3599
    assert body["resource"] == "https://graph.microsoft.com"
    assert body["client_id"] == emulator.app_entry("entra-bulk-managed-identity")["client_id"]


@pytest.mark.parametrize(
    ("headers", "query", "description"),
    [
        ({}, {}, "Required metadata header not specified"),
        (None, {"api-version": ""}, "Required query variable 'api-version' is missing"),
        (None, {"resource": ""}, "Required query variable 'resource' is missing"),
        (None, {"client_id": str(uuid.UUID(int=7))}, "Identity not found"),
        (
            None,
            {"object_id": str(uuid.UUID(int=7)), "client_id": str(uuid.UUID(int=8))},
            "Only one of client_id, object_id or msi_res_id may be specified.",
        ),
    ],
)
def test_imds_errors(
    emulator: Emulator,
    headers: dict[str, str] | None,
    query: dict[str, str],
    description: str,
) -> None:
    """IMDS refuses a request without `Metadata: true`, a missing parameter, an unknown or
    ambiguous identity, with its own error body."""
    response = _imds(emulator, headers, **query)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": description}


def test_imds_foreign_resource_is_aadsts500011(emulator: Emulator) -> None:
    """A resource other than Graph is Entra's invalid_resource, relayed by IMDS."""
    response = _imds(emulator, resource="https://vault.azure.net")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_resource"
    assert body["error_description"].startswith(
        "AADSTS500011: The resource principal named https://vault.azure.net was not found"
    )


def test_imds_user_assigned_by_object_id_and_resource_id(emulator: Emulator) -> None:
    """A user-assigned identity can be named by object id or by resource id."""
    assert emulator.store is not None
    row = emulator.store.query_one(
        "SELECT client_id, sp_id FROM apps WHERE name = 'entra-bulk-managed-identity'"
    )
    assert row is not None
    by_object = _imds(emulator, object_id=row["sp_id"]).json()
    resource_id = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/entra-bulk/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/entra-bulk-managed-identity"
    )
    by_resource = _imds(emulator, msi_res_id=resource_id).json()
    assert claims(by_object["access_token"])["appid"] == row["client_id"]
    assert claims(by_resource["access_token"])["appid"] == row["client_id"]
    wrong_kind = resource_id.replace("Microsoft.ManagedIdentity", "Microsoft.Compute")
    assert (
        _imds(emulator, msi_res_id=wrong_kind).json()["error_description"] == "Identity not found"
    )


def test_app_service_dialect(emulator: Emulator) -> None:
    """App Service's dialect answers `expires_on` only, and refuses an empty identity header."""
    url = emulator.info["managed_identity_endpoint"]
    params = {"api-version": "2019-08-01", "resource": "https://graph.microsoft.com"}
    body = httpx.get(url, params=params, headers={"X-IDENTITY-HEADER": "h"}, timeout=10).json()
    assert sorted(body) == ["access_token", "client_id", "expires_on", "resource", "token_type"]
    empty = httpx.get(url, params=params, headers={"X-IDENTITY-HEADER": ""}, timeout=10)
    assert (empty.status_code, empty.json()) == (
        401,
        {"statusCode": 401, "message": "The X-IDENTITY-HEADER header is empty."},
    )


# -- credentials never logged ----------------------------------------------------------------


class _RecordingSession(requests.Session):
    """A real requests session that also keeps each POST's form and JSON reply."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[dict[str, str], dict[str, Any]]] = []

    def post(self, url: Any, data: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]  # msal passes url, data= and keywords only
        response = super().post(url, data=data, **kwargs)
        form = {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        try:
            reply = response.json()
        except ValueError:
            reply = {}
        self.exchanges.append((form, reply if isinstance(reply, dict) else {}))
        return response

    def values(self, field: str) -> set[str]:
        """Every value `field` had in a form sent or a reply received."""
        return {
            str(part[field]) for exchange in self.exchanges for part in exchange if part.get(field)
        }


def test_no_credential_reaches_a_log_or_a_table(emulator: Emulator, admin: httpx.Client) -> None:
    """Secrets, assertions, device codes, refresh, access and id tokens of every flow appear
    neither in the request log, nor in any SQLite table or file of the state folder (the
    tenant keeps digests of device codes and refresh tokens)."""
    recorder = _RecordingSession()
    recorder.verify = emulator.info["ca_file"]
    recorder.trust_env = False
    entry = emulator.app_entry("entra-bulk-admin")
    pem = Path(entry["certificate"]).read_text()
    for credential in (entry["client_secret"], {"private_key": pem, "public_certificate": pem}):
        app = msal.ConfidentialClientApplication(
            entry["client_id"],
            client_credential=credential,
            authority=emulator.info["authority"],
            instance_discovery=False,
            http_client=recorder,
        )
        assert "access_token" in app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    cli = public(emulator, http=recorder)
    flow = cli.initiate_device_flow(scopes=["User.Read.All"])
    admin.post("/device/approve", json={"user_code": flow["user_code"], "user": ADMIN_UPN})
    assert "access_token" in cli.acquire_token_by_device_flow(flow)
    (account,) = cli.get_accounts()
    assert "access_token" in cli.acquire_token_silent(
        ["User.Read.All"], account=account, force_refresh=True
    )
    for token in recorder.values("access_token"):
        httpx.get(
            f"{emulator.graph_url}/v1.0/users",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    found = {
        field: recorder.values(field)
        for field in (
            "client_assertion",
            "device_code",
            "refresh_token",
            "access_token",
            "id_token",
        )
    }
    assert {field: len(values) for field, values in found.items()} == {
        "client_assertion": 1,
        "device_code": 1,
        "refresh_token": 2,
        "access_token": 4,
        "id_token": 2,
    }
    credentials = set().union(*found.values())
    secret = entry["client_secret"]
    log = admin.get("/requests")
    assert len(log.json()["value"]) >= 4
    for value in credentials | {secret}:
        assert value not in log.text
    assert emulator.store is not None
    tables = emulator.store.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    for table in (str(row["name"]) for row in tables):
        rows = json.dumps(emulator.store.query(f"SELECT * FROM {table}"))  # noqa: S608 - names from sqlite_master
        for value in credentials:
            assert value not in rows, (table, value[:12])
        if table != "apps":
            assert secret not in rows, table
    assert len(emulator.store.query("SELECT * FROM refresh_tokens")) == 2
    for path in emulator.state_dir.iterdir():
        if path.is_file():
            data = path.read_bytes()
            for value in credentials:
                assert value.encode() not in data, (path.name, value[:12])
