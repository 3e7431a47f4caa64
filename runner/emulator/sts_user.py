"""Delegated sign-in on the token host: the device-code flow and refresh tokens.

    POST /{tid}/oauth2/v2.0/devicecode            -> user_code, device_code, interval, message
    POST /_emulator/device/approve|deny (admin)   -> a person signs in (or declines)
    POST /{tid}/oauth2/v2.0/token                 grant_type=...device_code | refresh_token

Device codes and refresh tokens are credentials: the tenant database keeps only their
SHA-256 digests, never the values it handed out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from typing import TYPE_CHECKING, Any

from runner.emulator.sts_client import (
    Client,
    DelegatedScopes,
    credential_required,
    delegated_scopes,
    find_client,
)
from runner.emulator.sts_wire import (
    EntraError,
    entra_json,
    invalid_grant,
    required_field,
)
from runner.emulator.tokens import user_claims
from runner.emulator.wire import PLAIN_JSON, Response, dumps

if TYPE_CHECKING:
    from runner.emulator.sts import TokenService

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# No vowels (no words), no 0/O/1/I: short codes a person can read out and type.
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"
_USER_CODE_LENGTH = 9
_REFRESH_LIFETIME = dt.timedelta(days=90)
_ID_TOKEN_LIFETIME_S = 3600
_FORGET_EXPIRED_AFTER = dt.timedelta(hours=1)


def digest(credential: str) -> str:
    """How a device code or refresh token is stored: its SHA-256, in hex."""
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()


def normalize_user_code(text: str) -> str:
    """A user code as typed (`abcd-efgh`, spaces) in the form the tenant stores it."""
    return "".join(char for char in text.upper() if char.isalnum())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _admin_reply(status: int, message: str | None = None) -> Response:
    if message is None:
        return Response(status=status)
    return Response(
        status=status, headers={"Content-Type": PLAIN_JSON}, body=dumps({"error": message})
    )


def _stamp(moment: dt.datetime) -> str:
    """How the tenant stores an instant: ISO 8601 in UTC with microseconds (sorts as text)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _when(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class UserFlows:
    """Device codes, their approval, and the tokens a signed-in user gets."""

    def __init__(self, service: TokenService) -> None:
        self.service = service
        self.app = service.app

    # -- device authorization endpoint -------------------------------------------------------

    def start_device_flow(self, form: dict[str, str], *, now: dt.datetime) -> Response:
        """`POST /{tid}/oauth2/v2.0/devicecode`."""
        tenant_name = self.service.tenant_name
        client_id = required_field(form, "client_id")
        client = find_client(self.app.store, client_id, tenant_name=tenant_name)
        raw_scope = required_field(form, "scope")
        requested = delegated_scopes(raw_scope, tenant_name=tenant_name)
        lifetime = self.service.device_code_lifetime_s
        device_code = secrets.token_urlsafe(48)
        expires_at = _stamp(now + dt.timedelta(seconds=lifetime))
        with self.app.store.transaction() as db:
            # Codes past their lifetime answer as unknown from here on.
            db.execute(
                "DELETE FROM device_codes WHERE expires_at < ?",
                (_stamp(now - _FORGET_EXPIRED_AFTER),),
            )
            while True:
                user_code = "".join(
                    secrets.choice(_USER_CODE_ALPHABET) for _ in range(_USER_CODE_LENGTH)
                )
                taken = db.execute(
                    "SELECT 1 FROM device_codes WHERE user_code = ?", (user_code,)
                ).fetchone()
                if taken is None:
                    break
            db.execute(
                "INSERT INTO device_codes (device_code, user_code, client_id, scopes, expires_at, "
                "state, user_id) VALUES (?, ?, ?, ?, ?, 'pending', NULL)",
                (
                    digest(device_code),
                    user_code,
                    client.client_id,
                    json.dumps({"graph": list(requested.graph), "oidc": sorted(requested.oidc)}),
                    expires_at,
                ),
            )
        verification_uri = f"{self.app.sts_url}/devicelogin"
        return entra_json(
            200,
            {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": verification_uri,
                "expires_in": lifetime,
                "interval": self.service.device_code_interval_s,
                "message": self.service.approval_message(user_code),
            },
        )

    # -- admin: a person approves or declines ---------------------------------------------

    def admin_device(self, body: dict[str, Any], *, approve: bool) -> Response:
        """`POST /_emulator/device/approve` `{"user_code", "user"}` or `/deny` `{"user_code"}`."""
        if not isinstance(body, dict) or not isinstance(body.get("user_code"), str):
            return _admin_reply(400, 'body must be {"user_code": "...", "user": "<upn or id>"}')
        user_code = normalize_user_code(body["user_code"])
        user: dict[str, Any] | None = None
        if approve:
            key = body.get("user")
            if not isinstance(key, str) or not key:
                return _admin_reply(400, 'approving needs the signing-in user: "user": UPN or id')
            user = self.app.store.user(key)
            if user is None:
                return _admin_reply(404, f"no user {key} in the emulated tenant")
            if not user["account_enabled"]:
                return _admin_reply(409, f"{user['upn']} is disabled and cannot sign in")
        now = self.app.clock()
        with self.app.store.transaction() as db:
            row = db.execute(
                "SELECT expires_at, state FROM device_codes WHERE user_code = ?", (user_code,)
            ).fetchone()
            if row is None:
                return _admin_reply(404, f"no device code with user code {user_code}")
            if row["state"] != "pending":
                return _admin_reply(409, f"user code {user_code} is already {row['state']}")
            if _when(str(row["expires_at"])) <= now:
                return _admin_reply(404, f"user code {user_code} has expired")
            db.execute(
                "UPDATE device_codes SET state = ?, user_id = ? WHERE user_code = ?",
                (
                    "approved" if approve else "denied",
                    None if user is None else user["id"],
                    user_code,
                ),
            )
        return _admin_reply(204)

    # -- token endpoint grants ------------------------------------------------------------

    def redeem_device_code(
        self, form: dict[str, str], client: Client, *, presented: bool, now: dt.datetime
    ) -> Response:
        """`grant_type=urn:ietf:params:oauth:grant-type:device_code`: pending, declined,
        expired, or the user's tokens (once: device codes are single-use)."""
        code = form.get("device_code") or form.get("code") or required_field(form, "device_code")
        if client.kind != "public" and not presented:
            raise credential_required(client)
        with self.app.store.transaction() as db:
            row = db.execute(
                "SELECT * FROM device_codes WHERE device_code = ?", (digest(code),)
            ).fetchone()
            if row is None or row["client_id"] != client.client_id:
                raise EntraError(
                    400,
                    "bad_verification_code",
                    70018,
                    "The provided value for the input parameter 'device_code' is not valid.",
                )
            state = str(row["state"])
            if state == "redeemed":
                raise invalid_grant(
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new "
                    "valid code or use an existing refresh token.",
                )
            if state != "approved" and _when(str(row["expires_at"])) <= now:
                raise EntraError(
                    400,
                    "expired_token",
                    70020,
                    "The provided value for the input parameter 'device_code' is not valid. "
                    "This device code has expired.",
                )
            if state == "pending":
                raise EntraError(
                    400,
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            if state == "denied":
                raise EntraError(
                    400,
                    "authorization_declined",
                    65004,
                    "User declined to consent to access the app.",
                )
            db.execute(
                "UPDATE device_codes SET state = 'redeemed' WHERE device_code = ?",
                (row["device_code"],),
            )
            user_id = str(row["user_id"])
            stored = json.loads(row["scopes"])
        requested = DelegatedScopes(graph=tuple(stored["graph"]), oidc=frozenset(stored["oidc"]))
        user = self._signed_in_user(user_id)
        granted = requested.granted(client.permissions)
        return self._issue(
            client=client,
            user=user,
            requested=requested,
            granted=granted,
            form=form,
            now=now,
            refresh=("offline_access" in requested.oidc),
        )

    def redeem_refresh_token(
        self, form: dict[str, str], client: Client, *, presented: bool, now: dt.datetime
    ) -> Response:
        """`grant_type=refresh_token`: new tokens and a new refresh token for a stored one."""
        token = required_field(form, "refresh_token")
        if client.kind != "public" and not presented:
            raise credential_required(client)
        row = self.app.store.query_one(
            "SELECT * FROM refresh_tokens WHERE token = ?", (digest(token),)
        )
        if row is None:
            raise EntraError(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if row["client_id"] != client.client_id:
            raise invalid_grant(70000, "Provided grant is invalid or malformed.")
        issued = _when(str(row["issued_at"]))
        if now - issued > _REFRESH_LIFETIME:
            raise invalid_grant(
                700082,
                f"The refresh token has expired due to inactivity. The token was issued on "
                f"{issued.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z and was inactive for 90.00:00:00.",
            )
        user = self._signed_in_user(str(row["user_id"]))
        valid_from = _when(str(user["sessions_valid_from"]))
        if issued.replace(microsecond=0) <= valid_from:
            raise invalid_grant(
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is "
                "needed. The user might have changed or reset their password. The grant was "
                f"issued on '{issued.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z' and the TokensValidFrom "
                f"date (before which tokens are not valid) for this user is "
                f"'{valid_from.strftime('%Y-%m-%dT%H:%M:%S')}Z'.",
            )
        requested = delegated_scopes(form.get("scope", ""), tenant_name=self.service.tenant_name)
        consented = json.loads(row["scopes"])
        granted = requested.granted(client.permissions) if requested.graph else consented
        return self._issue(
            client=client,
            user=user,
            requested=requested,
            granted=granted,
            form=form,
            now=now,
            refresh=True,
            consented=sorted(set(consented) | set(granted)),
        )

    # -- issuing --------------------------------------------------------------------------

    def _signed_in_user(self, user_id: str) -> dict[str, Any]:
        user = self.app.store.user(user_id)
        if user is None:
            raise invalid_grant(
                50034,
                f"The user account {user_id} does not exist in the {self.app.tenant_id} "
                "directory. To sign into this application, the account must be added to the "
                "directory.",
            )
        if not user["account_enabled"]:
            raise invalid_grant(50057, "The user account is disabled.")
        return user

    def _issue(
        self,
        *,
        client: Client,
        user: dict[str, Any],
        requested: DelegatedScopes,
        granted: list[str],
        form: dict[str, str],
        now: dt.datetime,
        refresh: bool,
        consented: list[str] | None = None,
    ) -> Response:
        app = self.app
        issued = now.timestamp()
        lifetime = app.config.token_lifetime_s
        user_id = str(user["id"])
        access_token = app.signer.sign(
            user_claims(
                tenant_id=app.tenant_id,
                client_id=client.client_id,
                app_name=client.name,
                user_id=user_id,
                upn=str(user["upn"]),
                display_name=str(user["display_name"]),
                scopes=granted,
                role_templates=sorted(app.roles_of(user_id)),
                now=issued,
                lifetime_s=lifetime,
            )
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": requested.reply_scope(granted),
            "expires_in": max(lifetime - 1, 0),
            "ext_expires_in": max(lifetime - 1, 0),
            "access_token": access_token,
        }
        if refresh:
            refresh_token = "1.A" + secrets.token_urlsafe(96)
            app.store.execute(
                "INSERT INTO refresh_tokens (token, client_id, user_id, scopes, issued_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    digest(refresh_token),
                    client.client_id,
                    user_id,
                    json.dumps(consented if consented is not None else granted),
                    _stamp(now),
                ),
            )
            body["refresh_token"] = refresh_token
        if "openid" in requested.oidc:
            body["id_token"] = app.signer.sign(self._id_claims(client, user, issued))
        if form.get("client_info") == "1":
            info = {"uid": user_id, "utid": app.tenant_id}
            body["client_info"] = _b64url(json.dumps(info, separators=(",", ":")).encode())
        return entra_json(200, body)

    def _id_claims(self, client: Client, user: dict[str, Any], issued: float) -> dict[str, Any]:
        user_id = str(user["id"])
        pairwise = hashlib.sha256(f"{client.client_id}:{user_id}".encode()).digest()
        start = int(issued)
        return {
            "aud": client.client_id,
            "iss": self.service.issuer,
            "iat": start,
            "nbf": start,
            "exp": start + _ID_TOKEN_LIFETIME_S,
            "name": str(user["display_name"]),
            "oid": user_id,
            "preferred_username": str(user["upn"]),
            "sub": _b64url(pairwise),
            "tid": self.app.tenant_id,
            "ver": "2.0",
        }
