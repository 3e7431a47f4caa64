"""Access tokens of the emulated tenant: RS256 JWTs signed by a key kept in the state folder.

Graph verifies what the token endpoint issued: signature, audience, expiry. A verified
token becomes a `Principal` (app-only when it carries `roles` and `idtyp: app`, delegated
when it carries `scp`).
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from runner.emulator.authz import Principal
from runner.emulator.wire import GraphError

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
KEY_ID = "entra-bulk-emulator-1"


def _load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):  # pragma: no cover - we wrote it
            msg = f"{path} is not an RSA key"
            raise TypeError(msg)
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)
    return key


class TokenSigner:
    """Signs and verifies the tenant's tokens; verified tokens are cached by their text."""

    def __init__(self, key_path: Path, *, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self._key = _load_or_create_key(key_path)
        self._public = self._key.public_key()
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def issuer(self) -> str:
        """The `iss` of Graph access tokens (the v1 STS form Entra uses for Graph)."""
        return f"https://sts.windows.net/{self.tenant_id}/"

    def public_jwk(self) -> dict[str, Any]:
        """The signing key as a JWK, for the `jwks_uri` document."""
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(self._public, as_dict=True)
        jwk.update({"kid": KEY_ID, "use": "sig", "alg": "RS256"})
        return jwk

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact RS256 JWT with `claims` (and a `uti` when missing)."""
        payload = {"uti": uuid.uuid4().hex, **claims}
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": KEY_ID})

    def verify(self, token: str, *, now: float) -> dict[str, Any]:
        """The claims of a valid Graph token; 401 `InvalidAuthenticationToken` otherwise."""
        with self._lock:
            claims = self._cache.get(token)
        if claims is None:
            try:
                claims = jwt.decode(
                    token,
                    self._public,
                    algorithms=["RS256"],
                    audience=[GRAPH_AUDIENCE, GRAPH_APP_ID, f"{GRAPH_AUDIENCE}/"],
                    options={"verify_exp": False, "verify_nbf": False},
                )
            except jwt.PyJWTError:
                raise GraphError(
                    401,
                    "InvalidAuthenticationToken",
                    "IDX14100: JWT is not well formed, there are no dots (.).",
                ) from None
            if claims.get("tid") != self.tenant_id:
                raise GraphError(
                    401, "InvalidAuthenticationToken", "Invalid audience or tenant of token."
                )
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[token] = claims
        if float(claims.get("exp", 0)) <= now:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        return claims


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The caller described by verified claims."""
    if "scp" in claims:
        return Principal(
            kind="user",
            app_id=str(claims.get("appid", "")),
            object_id=str(claims.get("oid", "")),
            tenant_id=str(claims.get("tid", "")),
            permissions=frozenset(str(claims["scp"]).split()),
            upn=claims.get("upn"),
            token_id=str(claims.get("uti", "")),
        )
    return Principal(
        kind="app",
        app_id=str(claims.get("appid", "")),
        object_id=str(claims.get("oid", "")),
        tenant_id=str(claims.get("tid", "")),
        permissions=frozenset(str(role) for role in claims.get("roles", [])),
        token_id=str(claims.get("uti", "")),
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header; 401 when absent."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    token = authorization[7:].strip()
    if not token:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    return token


def app_claims(
    *,
    tenant_id: str,
    client_id: str,
    sp_id: str,
    app_name: str,
    permissions: list[str],
    now: float,
    lifetime_s: int,
) -> dict[str, Any]:
    """Claims of an app-only Graph token (client credentials or managed identity)."""
    issued = int(now)
    return {
        "aud": GRAPH_AUDIENCE,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_s,
        "tid": tenant_id,
        "appid": client_id,
        "app_displayname": app_name,
        "appidacr": "1",
        "idp": f"https://sts.windows.net/{tenant_id}/",
        "idtyp": "app",
        "oid": sp_id,
        "sub": sp_id,
        "roles": sorted(permissions),
        "ver": "1.0",
    }


def user_claims(
    *,
    tenant_id: str,
    client_id: str,
    app_name: str,
    user_id: str,
    upn: str,
    display_name: str,
    scopes: list[str],
    role_templates: list[str],
    now: float,
    lifetime_s: int,
) -> dict[str, Any]:
    """Claims of a delegated Graph token (a signed-in administrator)."""
    issued = int(now)
    return {
        "aud": GRAPH_AUDIENCE,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_s,
        "tid": tenant_id,
        "appid": client_id,
        "app_displayname": app_name,
        "appidacr": "0",
        "amr": ["pwd", "mfa"],
        "idtyp": "user",
        "name": display_name,
        "oid": user_id,
        "sub": user_id,
        "upn": upn,
        "unique_name": upn,
        "scp": " ".join(sorted(scopes)),
        "wids": sorted(role_templates),
        "ver": "1.0",
    }
