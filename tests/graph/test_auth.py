"""The runner's token providers, with the real msal library, against the emulated tenant."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from runner.config import AuthMode, Settings, settings_from_connection
from runner.emulator import Emulator
from runner.errors import AuthError
from runner.graph.auth import decode_claims, token_provider
from runner.graph.connect import connect


def _settings(emulator: Emulator, **changes: object) -> Settings:
    return replace(settings_from_connection(emulator.info), **changes)  # type: ignore[arg-type]


def _graph_accepts(emulator: Emulator, token: str) -> int:
    response = httpx.get(
        f"{emulator.graph_url}/v1.0/organization", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code


def test_client_secret(emulator: Emulator) -> None:
    """The emulator profile's app gets an app-only token with its permissions as roles."""
    provider = token_provider(_settings(emulator))
    token = provider.access_token()
    claims = decode_claims(token)
    assert claims["tid"] == emulator.tenant_id
    assert "User-PasswordProfile.ReadWrite.All" in claims["roles"]
    assert _graph_accepts(emulator, token) == 200
    assert provider.access_token() == token  # msal's cache
    assert provider.access_token(refresh=True) != token


def test_wrong_secret_is_an_auth_error(emulator: Emulator) -> None:
    """A wrong secret is exit 5 with Entra's error code, never the secret."""
    provider = token_provider(_settings(emulator, client_secret="not-the-secret-1234"))
    with pytest.raises(AuthError) as info:
        provider.access_token()
    assert str(info.value).startswith("could not get a token (client secret of app ")
    assert "invalid_client: AADSTS7000215" in str(info.value)
    assert "not-the-secret-1234" not in str(info.value)


def test_certificate_pem(emulator: Emulator) -> None:
    """A PEM file holding key and certificate signs the client assertion."""
    app = emulator.app_entry("entra-bulk-admin")
    settings = _settings(
        emulator,
        auth=AuthMode.CERTIFICATE,
        client_secret=None,
        certificate_path=Path(app["certificate"]),
    )
    assert _graph_accepts(emulator, token_provider(settings).access_token()) == 200


def test_certificate_pfx(emulator: Emulator, tmp_path: Path) -> None:
    """A password-protected PFX works (msal uses PS256 and x5t#S256 for it)."""
    app = emulator.app_entry("entra-bulk-admin")
    data = Path(app["certificate"]).read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    cert = x509.load_pem_x509_certificate(data)
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"app",
            key,
            cert,
            None,
            serialization.BestAvailableEncryption(b"pfx-pass-42"),  # type: ignore[arg-type]
        )
    )
    settings = _settings(
        emulator,
        auth=AuthMode.CERTIFICATE,
        client_secret=None,
        certificate_path=pfx,
        certificate_password="pfx-pass-42",
    )
    assert _graph_accepts(emulator, token_provider(settings).access_token()) == 200


def test_managed_identity(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """System- and user-assigned managed identities get tokens from the IMDS endpoint."""
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    monkeypatch.delenv("IMDS_ENDPOINT", raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "")
    system = _settings(emulator, auth=AuthMode.MANAGED_IDENTITY, client_id=None, client_secret=None)
    token = token_provider(system).access_token()
    assert decode_claims(token)["app_displayname"] == "entra-bulk-managed-identity"
    mi_client = emulator.app_entry("entra-bulk-managed-identity")["client_id"]
    user = replace(system, managed_identity_client_id=mi_client)
    assert decode_claims(token_provider(user).access_token())["appid"] == mi_client


def test_device_code_signs_in_and_caches(emulator: Emulator, tmp_path: Path) -> None:
    """Device code: the message is shown, an admin approves, the cache file is 0600 and a
    second provider signs in silently from it."""
    cli = emulator.app_entry("entra-bulk-cli")
    settings = _settings(
        emulator, auth=AuthMode.DEVICE_CODE, client_id=cli["client_id"], client_secret=None
    )
    cache = tmp_path / "cache" / "tokens.json"
    shown: list[str] = []

    def approve(message: str) -> None:
        shown.append(message)
        code = re.search(r"code ([A-Z0-9-]+)", message)
        assert code is not None, message

        def later() -> None:
            time.sleep(0.3)
            httpx.post(
                f"{emulator.admin_url}/device/approve",
                json={"user_code": code.group(1), "user": "pa.admin@contoso.com"},
            )

        threading.Thread(target=later).start()

    provider = token_provider(
        settings,
        prompt=approve,
        interactive=True,
        delegated_scopes=["User.Read.All"],
        cache_path=cache,
    )
    token = provider.access_token()
    assert decode_claims(token)["upn"] == "pa.admin@contoso.com"
    assert shown and cache.stat().st_mode & 0o777 == 0o600
    again = token_provider(
        settings, interactive=False, delegated_scopes=["User.Read.All"], cache_path=cache
    )
    assert decode_claims(again.access_token())["upn"] == "pa.admin@contoso.com"


def test_device_code_without_a_terminal_is_exit_5(emulator: Emulator, tmp_path: Path) -> None:
    """With no cached sign-in and nobody at a terminal, the run stops asking for one."""
    cli = emulator.app_entry("entra-bulk-cli")
    settings = _settings(
        emulator, auth=AuthMode.DEVICE_CODE, client_id=cli["client_id"], client_secret=None
    )
    provider = token_provider(settings, interactive=False, cache_path=tmp_path / "c.json")
    with pytest.raises(AuthError, match="the device-code sign-in needs a person at a terminal"):
        provider.access_token()


def test_local_emulator_is_started_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--tenant emulator` without ENTRA_BULK_EMULATOR starts one over a persistent tenant."""
    from runner.config import resolve

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ENTRA_BULK_EMULATOR", raising=False)
    tenants = []
    for _ in range(2):
        with connect(resolve(tenant="emulator", config_path=None)) as connection:
            token = connection.tokens.access_token()
            tenants.append(decode_claims(token)["tid"])
            assert connection.client.request("GET", "/organization").status == 200
    assert tenants[0] == tenants[1]
    assert (tmp_path / "data" / "entra-bulk" / "emulator" / "tenant.sqlite").exists()


def test_an_untrusted_certificate_is_exit_5(emulator: Emulator, tmp_path: Path) -> None:
    """A token host whose certificate the profile does not trust (a TLS-intercepting proxy) is
    a clear authentication error, never a traceback (reliability F32)."""
    other = tmp_path / "other-ca.pem"
    other.write_text((Path(emulator.info["ca_file"]).parent / "server.pem").read_text())
    with pytest.raises(AuthError) as info:
        token_provider(_settings(emulator, ca_file=str(other))).access_token()
    assert str(info.value).startswith(
        f"cannot reach the token endpoint of {emulator.info['authority']}: the TLS certificate "
        "is not trusted ("
    )
    assert info.value.hint == (
        "a TLS-intercepting proxy needs its CA trusted (REQUESTS_CA_BUNDLE); nothing was sent"
    )
