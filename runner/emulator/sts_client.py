"""Who is asking the token endpoint: client lookup, client secrets, certificate assertions, scopes.

A client assertion is checked the way Entra checks it (graph-reference.md section 12):

- header `x5t` (SHA-1, msal pairs it with RS256) or `x5t#S256` (SHA-256, msal pairs it with
  PS256) names a certificate registered on the app; `x5c`, when sent, must be that certificate;
- the signature verifies with that certificate's key;
- `iss` = `sub` = client_id, `aud` = the token endpoint, `exp`/`nbf` around now (5 min skew).

The same assertion may be replayed while it is valid (msal reuses one for up to 9 minutes),
so `jti` is not tracked.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from runner.emulator.store import Store
from runner.emulator.sts_wire import (
    EntraError,
    invalid_assertion,
    unknown_client,
    unknown_resource,
)
from runner.emulator.tokens import GRAPH_APP_ID, GRAPH_AUDIENCE

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
_GRAPH_RESOURCES = frozenset({GRAPH_AUDIENCE, GRAPH_APP_ID})
_SKEW_S = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Client:
    """An app registration as the token endpoint sees it."""

    client_id: str
    sp_id: str
    name: str
    kind: str  # confidential | public | managed_identity
    permissions: tuple[str, ...]  # app roles, or the delegated scopes a public client may get
    secret: str | None
    thumbprint_sha1: str | None
    thumbprint_sha256: str | None
    cert_pem: str | None


def find_client(store: Store, client_id: str, *, tenant_name: str) -> Client:
    """The app with this client id; AADSTS700016 when there is none."""
    row = store.query_one("SELECT * FROM apps WHERE client_id = ?", (client_id.lower(),))
    if row is None:
        raise unknown_client(client_id, tenant_name)
    return Client(
        client_id=str(row["client_id"]),
        sp_id=str(row["sp_id"]),
        name=str(row["name"]),
        kind=str(row["kind"]),
        permissions=tuple(json.loads(row["permissions"])),
        secret=row["secret"],
        thumbprint_sha1=row["cert_thumbprint_sha1"],
        thumbprint_sha256=row["cert_thumbprint_sha256"],
        cert_pem=row["cert_pem"],
    )


def authenticate(
    client: Client, form: dict[str, str], *, audiences: Collection[str], now: float
) -> bool:
    """Check the credential a request presents; True when it presented one.

    Public clients must present none; confidential ones must present a valid one when
    `form` carries one. Whether a credential is required is the grant's decision.
    """
    secret = form.get("client_secret", "")
    assertion = form.get("client_assertion", "")
    if not secret and not assertion:
        return False
    if client.kind == "public":
        raise EntraError(
            401,
            "invalid_client",
            700025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be "
            "presented.",
        )
    if secret:
        _check_secret(client, secret)
    if assertion:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise EntraError(
                400,
                "invalid_request",
                50027,
                f"Invalid JWT token. 'client_assertion_type' must be '{ASSERTION_TYPE}'.",
            )
        check_assertion(client, assertion, audiences=audiences, now=now)
    return True


def credential_required(client: Client) -> EntraError:
    """AADSTS7000218: a confidential client (or a client-credentials call) sent no credential."""
    del client
    return EntraError(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    )


def _check_secret(client: Client, secret: str) -> None:
    if client.kind == "managed_identity":
        raise EntraError(
            401,
            "invalid_client",
            7000232,
            "MSI identity should not use ClientSecretCredential.",
        )
    expected = client.secret or ""
    if not expected or not hmac.compare_digest(expected.encode(), secret.encode()):
        raise EntraError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            "client secret value, not the client secret ID, for a secret added to app "
            f"'{client.client_id}'.",
        )


def _b64url_thumbprint(value: Any) -> str | None:
    """A header thumbprint (base64url of the digest) as upper-case hex, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw.hex().upper()


def _der(value: Any) -> bytes | None:
    """An `x5c` entry (standard base64 of DER; msal keeps the PEM's line breaks) decoded."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _bad_key(client: Client, thumbprint: str, reason: str) -> EntraError:
    return invalid_assertion(
        700027,
        f"Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of "
        f"key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or "
        f"directly use MS Graph to see configured keys for app Id '{client.client_id}'. Review "
        "the documentation at https://docs.microsoft.com/en-us/graph/deployment-environments "
        "to learn more about key credentials.]",
        docs=False,
    )


def _key_not_found(client: Client, thumbprint: str) -> EntraError:
    return _bad_key(client, thumbprint, "The key was not found.")


def check_assertion(
    client: Client, assertion: str, *, audiences: Collection[str], now: float
) -> None:
    """Verify a certificate client assertion against the app's registered certificate."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise invalid_assertion(50027, "JWT token is invalid or malformed.") from None
    algorithm = header.get("alg")
    if algorithm not in {"RS256", "PS256"}:
        raise _bad_key(client, "", f"The signing algorithm {algorithm!r} is not supported.")
    sha1 = _b64url_thumbprint(header.get("x5t"))
    sha256 = _b64url_thumbprint(header.get("x5t#S256"))
    if sha1 is None and sha256 is None:
        raise _key_not_found(client, "")
    for sent, registered in ((sha1, client.thumbprint_sha1), (sha256, client.thumbprint_sha256)):
        if sent is not None and (not registered or sent != registered.upper()):
            raise _key_not_found(client, sent)
    if client.cert_pem is None:
        raise _key_not_found(client, sha256 or sha1 or "")
    certificate = x509.load_pem_x509_certificate(client.cert_pem.encode("ascii"))
    chain = header.get("x5c")
    if chain is not None:
        registered_der = certificate.public_bytes(serialization.Encoding.DER)
        if not isinstance(chain, list) or not chain or _der(chain[0]) != registered_der:
            raise _key_not_found(client, sha256 or sha1 or "")
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            certificate.public_key(),  # type: ignore[arg-type]  # an RSA key for RS256/PS256
            algorithms=[algorithm],
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError:
        raise _bad_key(
            client,
            sha256 or sha1 or "",
            "The provided signature value did not match the expected signature value.",
        ) from None
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise invalid_assertion(
            700021, "Client assertion application identifier doesn't match 'client_id' parameter."
        )
    audience = claims.get("aud")
    sent_audiences = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(item, str) and item in audiences for item in sent_audiences):
        raise invalid_assertion(
            700023, "Client assertion audience claim does not match Realm issuer."
        )
    expires = claims.get("exp")
    not_before = claims.get("nbf", claims.get("iat", now))
    if (
        not isinstance(expires, int | float)
        or not isinstance(not_before, int | float)
        or expires + _SKEW_S < now
        or not_before - _SKEW_S > now
    ):
        raise invalid_assertion(
            700024,
            f"Client assertion is not within its valid time range. Current time: {int(now)}, "
            f"assertion valid from {not_before}, expiry time of assertion {expires}.",
        )


# -- scopes ------------------------------------------------------------------------------


def _graph_name(scope: str, *, tenant_name: str) -> str:
    """The Graph permission a scope names (`User.Read.All`, or `.default`)."""
    lowered = scope.lower()
    for resource in _GRAPH_RESOURCES:
        if lowered.startswith(resource.lower() + "/"):
            return scope[len(resource) + 1 :].lstrip("/")
    if "/" in scope:
        resource = scope.rsplit("/", 1)[0]
        raise unknown_resource(resource, tenant_name)
    return scope


def app_only_scope(raw: str, *, tenant_name: str) -> None:
    """Client credentials take exactly Graph's `/.default` scope; Entra's errors otherwise."""
    scopes = [scope for scope in raw.split() if scope not in OIDC_SCOPES]
    if not scopes:
        raise EntraError(
            400,
            "invalid_request",
            90014,
            "The required field 'scope' is missing from the credential. Ensure that you have all "
            "the necessary parameters for the login request.",
        )
    for scope in scopes:
        if not scope.endswith("/.default"):
            raise EntraError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        if _graph_name(scope, tenant_name=tenant_name) != ".default":
            raise unknown_resource(scope.removesuffix("/.default"), tenant_name)


@dataclass(frozen=True, slots=True, kw_only=True)
class DelegatedScopes:
    """What a user flow asked for: Graph permissions (bare names) and OpenID scopes."""

    graph: tuple[str, ...]
    oidc: frozenset[str]

    def granted(self, permissions: Collection[str]) -> list[str]:
        """Requested Graph scopes the app may be granted (`.default`: all of them)."""
        if ".default" in self.graph:
            return sorted(permissions)
        allowed = {name.lower(): name for name in permissions}
        return sorted({allowed[name.lower()] for name in self.graph if name.lower() in allowed})

    def reply_scope(self, granted: Collection[str]) -> str:
        """The `scope` of a token reply: granted Graph scopes, then OpenID ones (not
        `offline_access`, as Entra leaves it out)."""
        oidc = [name for name in ("openid", "profile", "email") if name in self.oidc]
        return " ".join([*sorted(granted), *oidc])


def delegated_scopes(raw: str, *, tenant_name: str) -> DelegatedScopes:
    """Split a user flow's `scope` field into Graph permissions and OpenID scopes."""
    graph: list[str] = []
    oidc: set[str] = set()
    for scope in raw.split():
        if scope.lower() in OIDC_SCOPES:
            oidc.add(scope.lower())
            continue
        graph.append(_graph_name(scope, tenant_name=tenant_name))
    return DelegatedScopes(graph=tuple(graph), oidc=frozenset(oidc))
