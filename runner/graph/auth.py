"""Access tokens through msal: client secret, certificate (PEM, PFX), device code, managed identity.

A provider returns a bearer token for Graph (`access_token()`), refreshes it on demand after
a 401 (`refresh=True`), and re-acquires with a claims challenge (`claims=...`). Every token
and secret it touches is registered for redaction. Errors become `AuthError` (exit 5) with
msal's error code and the first line of its description, never a secret.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from runner.config import AuthMode, Settings
from runner.errors import AuthError, ConfigError
from runner.secrets import register_secret

Prompt = Callable[[str], None]


class TokenProvider(Protocol):
    """Gives bearer tokens for Graph."""

    @property
    def description(self) -> str:
        """How it authenticates, for messages (`client secret of app 1111...`)."""
        ...

    def access_token(self, *, refresh: bool = False, claims: str | None = None) -> str:
        """A valid access token (from cache unless `refresh` or `claims`)."""
        ...


def claims_challenge(www_authenticate: str | None) -> str | None:
    """The claims a 401's `WWW-Authenticate` asks for (continuous access evaluation), decoded
    from base64 as msal's `claims_challenge` takes them; None when there are none."""
    if not www_authenticate:
        return None
    found = re.search(r'claims="([^"]*)"', www_authenticate)
    if found is None or not found.group(1):
        return None
    encoded = found.group(1)
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def decode_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, without verifying it (Graph verifies; we only read roles/scp)."""
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def http_session(settings: Settings) -> requests.Session:
    """The HTTP session msal uses: the emulator's CA, and no environment CA bundle for it."""
    session = requests.Session()
    if settings.ca_file:
        session.verify = settings.ca_file
        # requests prefers REQUESTS_CA_BUNDLE over session.verify when trust_env is on.
        session.trust_env = False
    return session


@contextmanager
def reaching(where: str) -> Iterator[None]:
    """Failures to reach the token endpoint become AuthError (exit 5), with what to check.

    A TLS failure is what a TLS-intercepting proxy looks like; a connection error, a down
    network or a wrong authority host. msal raises ValueError when discovery fails.
    """
    try:
        yield
    except requests.exceptions.SSLError as exc:
        msg = f"cannot reach {where}: the TLS certificate is not trusted ({_first_line(exc)[:160]})"
        raise AuthError(
            msg,
            hint="a TLS-intercepting proxy needs its CA trusted (REQUESTS_CA_BUNDLE); "
            "nothing was sent",
        ) from None
    except requests.exceptions.RequestException as exc:
        msg = f"cannot reach {where}: {type(exc).__name__}: {_first_line(exc)[:160]}"
        raise AuthError(msg, hint="check the network, the proxy settings and the cloud") from None
    except ValueError as exc:
        if "authority" not in str(exc).lower():
            raise
        msg = f"cannot use {where}: {_first_line(exc)[:200]}"
        raise AuthError(msg, hint="check the profile's tenant_id and cloud") from None


def _first_line(text: Any) -> str:
    return str(text or "").strip().splitlines()[0] if text else ""


def _token_or_raise(result: dict[str, Any] | None, what: str) -> str:
    if result and "access_token" in result:
        token = str(result["access_token"])
        register_secret(token)
        if result.get("refresh_token"):
            register_secret(str(result["refresh_token"]))
        return token
    error = (result or {}).get("error", "no_token")
    description = _first_line((result or {}).get("error_description"))
    msg = f"could not get a token ({what}): {error}: {description}".rstrip(": ")
    raise AuthError(msg, hint="check the profile's tenant, client id and credential")


def certificate_credential(path: Path, password: str | None) -> dict[str, Any]:
    """msal's client credential for a PEM (key + certificate) or PFX file."""
    if not path.exists():
        msg = f"certificate file {path} does not exist"
        raise ConfigError(msg)
    if password:
        register_secret(password)
    if path.suffix.lower() in {".pfx", ".p12"}:
        credential: dict[str, Any] = {"private_key_pfx_path": str(path), "public_certificate": True}
        if password:
            credential["passphrase"] = password
        return credential
    data = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(
            data, password=password.encode() if password else None
        )
        cert = x509.load_pem_x509_certificate(data)
    except (ValueError, TypeError) as exc:
        msg = f"{path}: not a PEM file holding a private key and a certificate ({exc})"
        raise ConfigError(msg) from None
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return {
        "private_key": key_pem,
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - x5t is SHA-1
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    }


class ConfidentialClientProvider:
    """App-only tokens with a client secret or a certificate."""

    def __init__(self, settings: Settings, session: requests.Session) -> None:
        assert settings.client_id is not None
        self.settings = settings
        credential: Any
        if settings.auth is AuthMode.CERTIFICATE:
            assert settings.certificate_path is not None
            credential = certificate_credential(
                settings.certificate_path, settings.certificate_password
            )
            kind = f"certificate {settings.certificate_path.name}"
        else:
            if not settings.client_secret:
                msg = "no client secret: set AZURE_CLIENT_SECRET or the profile's client_secret_env"
                raise ConfigError(msg)
            register_secret(settings.client_secret)
            credential = settings.client_secret
            kind = "client secret"
        self._description = f"{kind} of app {settings.client_id}"
        self._lock = threading.Lock()
        with reaching(f"the token endpoint of {settings.authority}"):
            self._app = msal.ConfidentialClientApplication(
                settings.client_id,
                client_credential=credential,
                authority=settings.authority,
                http_client=session,
                instance_discovery=not settings.is_emulator,
                token_cache=msal.TokenCache(),
            )

    @property
    def description(self) -> str:
        """How this provider authenticates."""
        return self._description

    def access_token(self, *, refresh: bool = False, claims: str | None = None) -> str:
        """A token from msal's cache, or a new one from the token endpoint."""
        with self._lock:
            if refresh:
                cache = self._app.token_cache
                for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                    cache.remove_at(entry)
            with reaching(f"the token endpoint of {self.settings.authority}"):
                result = self._app.acquire_token_for_client(
                    scopes=[self.settings.graph_scope], claims_challenge=claims
                )
        return _token_or_raise(result, self._description)


class ManagedIdentityProvider:
    """App-only tokens of an Azure managed identity (system or user assigned)."""

    def __init__(self, settings: Settings, session: requests.Session) -> None:
        self.settings = settings
        if settings.managed_identity_endpoint:
            # msal 1.39 does not read MSAL_MANAGED_IDENTITY_ENDPOINT (graph-reference §12 is
            # out of date): in IMDS mode it takes the host from this variable and adds
            # /metadata/identity/oauth2/token itself.
            host = settings.managed_identity_endpoint.split("/metadata/", 1)[0]
            os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = host
        identity: Any
        if settings.managed_identity_client_id:
            identity = msal.UserAssignedManagedIdentity(
                client_id=settings.managed_identity_client_id
            )
            self._description = (
                f"user-assigned managed identity {settings.managed_identity_client_id}"
            )
        else:
            identity = msal.SystemAssignedManagedIdentity()
            self._description = "system-assigned managed identity"
        self._lock = threading.Lock()
        self._client = msal.ManagedIdentityClient(
            identity, http_client=session, token_cache=msal.TokenCache()
        )

    @property
    def description(self) -> str:
        """How this provider authenticates."""
        return self._description

    def access_token(self, *, refresh: bool = False, claims: str | None = None) -> str:
        """A managed-identity token for Graph."""
        with self._lock:
            if refresh and claims is None:
                claims = "{}"
            with reaching("the managed-identity endpoint"):
                result = self._client.acquire_token_for_client(
                    resource=self.settings.cloud.graph_url, claims_challenge=claims
                )
        return _token_or_raise(result, self._description)


class DeviceCodeProvider:
    """Delegated tokens for a person at a terminal; the token cache is a 0600 file."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session,
        *,
        scopes: list[str],
        cache_path: Path,
        prompt: Prompt,
        interactive: bool,
    ) -> None:
        assert settings.client_id is not None
        self.settings = settings
        self._scopes = scopes
        self._cache_path = cache_path
        self._prompt = prompt
        self._interactive = interactive
        self._cache = msal.SerializableTokenCache()
        if cache_path.exists():
            self._cache.deserialize(cache_path.read_text(encoding="utf-8"))
        self._lock = threading.Lock()
        with reaching(f"the token endpoint of {settings.authority}"):
            self._app = msal.PublicClientApplication(
                settings.client_id,
                authority=settings.authority,
                http_client=session,
                instance_discovery=not settings.is_emulator,
                token_cache=self._cache,
            )
        self._description = f"device code sign-in to app {settings.client_id}"

    @property
    def description(self) -> str:
        """How this provider authenticates."""
        return self._description

    def _save(self) -> None:
        if not self._cache.has_state_changed:
            return
        self._cache_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self._cache_path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self._cache.serialize())
        temporary.replace(self._cache_path)

    def access_token(self, *, refresh: bool = False, claims: str | None = None) -> str:
        """A cached token, a refreshed one, or a device-code sign-in."""
        with self._lock, reaching(f"the token endpoint of {self.settings.authority}"):
            result: dict[str, Any] | None = None
            accounts = self._app.get_accounts()
            if accounts:
                result = self._app.acquire_token_silent(
                    self._scopes,
                    account=accounts[0],
                    force_refresh=refresh,
                    claims_challenge=claims,
                )
            if not result or "access_token" not in result:
                if not self._interactive:
                    msg = "the device-code sign-in needs a person at a terminal"
                    raise AuthError(
                        msg,
                        hint="run the same command in a terminal to sign in, then resume",
                    )
                flow = self._app.initiate_device_flow(scopes=self._scopes, claims_challenge=claims)
                if "user_code" not in flow:
                    return _token_or_raise(flow, self._description)
                self._prompt(str(flow["message"]))
                result = self._app.acquire_token_by_device_flow(flow)
            token = _token_or_raise(result, self._description)
            self._save()
            return token


def token_provider(
    settings: Settings,
    *,
    prompt: Prompt | None = None,
    interactive: bool = False,
    delegated_scopes: list[str] | None = None,
    cache_path: Path | None = None,
) -> TokenProvider:
    """The provider for a profile's auth mode."""
    session = http_session(settings)
    if settings.auth in {AuthMode.CLIENT_SECRET, AuthMode.CERTIFICATE}:
        return ConfidentialClientProvider(settings, session)
    if settings.auth is AuthMode.MANAGED_IDENTITY:
        return ManagedIdentityProvider(settings, session)
    scopes = delegated_scopes or [f"{settings.cloud.graph_url}/.default"]
    path = settings.token_cache_path or cache_path
    if path is None:
        msg = "device-code sign-in needs a token cache path"
        raise ConfigError(msg)
    return DeviceCodeProvider(
        settings,
        session,
        scopes=scopes,
        cache_path=path,
        prompt=prompt or (lambda _message: None),
        interactive=interactive,
    )
