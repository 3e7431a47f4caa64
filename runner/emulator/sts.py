"""The token host (HTTPS): OpenID configuration, token endpoint, device code, managed identity.

msal talks to it unmodified (graph-reference.md section 12):

    GET  /{tid}/v2.0/.well-known/openid-configuration    the discovery document msal reads
    GET  /{tid}/.well-known/openid-configuration         the v1 document, for other clients
    GET  /{tid}/discovery/v2.0/keys                      the signing key (JWKS)
    POST /{tid}/oauth2/v2.0/token                        client_credentials (secret or
                                                         certificate assertion), device_code,
                                                         refresh_token
    POST /{tid}/oauth2/v2.0/devicecode                   start a device-code sign-in
    GET  /devicelogin                                    how a person approves a code here

`{tid}` is the tenant id or one of its domains. Entra's error bodies come from `sts_wire`;
client authentication and scopes from `sts_client`; user flows from `sts_user`; the
managed-identity endpoint on the Graph host from `sts_identity`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from runner.emulator.sts_client import (
    app_only_scope,
    authenticate,
    credential_required,
    find_client,
)
from runner.emulator.sts_identity import ManagedIdentityEndpoint
from runner.emulator.sts_user import DEVICE_GRANT, UserFlows
from runner.emulator.sts_wire import (
    EntraError,
    correlation_id,
    entra_error_response,
    entra_json,
    form_fields,
    required_field,
    tenant_not_found,
)
from runner.emulator.tokens import KEY_ID, app_claims
from runner.emulator.wire import Request, Response

if TYPE_CHECKING:
    from runner.emulator.app import EmulatorApp

CLIENT_CREDENTIALS = "client_credentials"
REFRESH_TOKEN = "refresh_token"
APPROVER = "pa.admin"  # the seeded Privileged Authentication Administrator, for the hint


class TokenService:
    """Issues tokens for the tenant's apps and users."""

    device_code_lifetime_s = 900
    device_code_interval_s = 1

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app
        self.users = UserFlows(self)
        self._identity = ManagedIdentityEndpoint(app)

    # -- names ----------------------------------------------------------------------------

    @property
    def base(self) -> str:
        """`https://127.0.0.1:PORT/{tid}`: the authority."""
        return f"{self.app.sts_url}/{self.app.tenant_id}"

    @property
    def issuer(self) -> str:
        """The v2 issuer (of id tokens and the discovery document)."""
        return f"{self.base}/v2.0"

    @property
    def token_endpoint(self) -> str:
        """The v2 token endpoint."""
        return f"{self.base}/oauth2/v2.0/token"

    @property
    def tenant_name(self) -> str:
        """The tenant's display name, as Entra's messages quote it."""
        return self.app.store.meta("display_name") or self.app.tenant_id

    def approval_message(self, user_code: str) -> str:
        """The device flow's `message`: how a person approves this code in the emulator."""
        domain = self.app.store.meta("domain") or "contoso.com"
        admin = f"{self.app.graph_url}/_emulator"
        return (
            f"To sign in to the emulated tenant, approve the code {user_code} as one of its "
            f"users: curl -sS -X POST {admin}/device/approve -H 'Content-Type: "
            f'application/json\' -d \'{{"user_code": "{user_code}", "user": '
            f'"{APPROVER}@{domain}"}}\''
        )

    def _tenant_matches(self, key: str) -> bool:
        names = {self.app.tenant_id.lower()}
        for meta in ("domain", "initial_domain"):
            value = self.app.store.meta(meta)
            if value:
                names.add(value.lower())
        return key.lower() in names

    # -- entry points ---------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        """Serve the token host."""
        now = self.app.clock()
        try:
            return self._route(req, now)
        except EntraError as err:
            return entra_error_response(
                err,
                correlation=correlation_id(req),
                now=now,
                client_request_id=req.header("client-request-id"),
            )

    def managed_identity(self, req: Request) -> Response:
        """Serve the managed-identity endpoint (on the Graph host)."""
        return self._identity.handle(req)

    def admin_device(self, body: dict[str, Any], *, approve: bool) -> Response:
        """Approve or deny a pending device code."""
        return self.users.admin_device(body, approve=approve)

    # -- routing --------------------------------------------------------------------------

    def _route(self, req: Request, now: dt.datetime) -> Response:
        path = req.path.rstrip("/") or "/"
        if path == "/devicelogin" and req.method == "GET":
            return self._device_login_page()
        tenant, _, rest = path.lstrip("/").partition("/")
        rest = "/" + rest
        documents = {
            "/v2.0/.well-known/openid-configuration": self._discovery_v2,
            "/.well-known/openid-configuration": self._discovery_v1,
            "/discovery/v2.0/keys": self._keys,
            "/discovery/keys": self._keys,
        }
        if rest in documents and req.method == "GET":
            self._check_tenant(tenant)
            return entra_json(200, documents[rest](), cache=True)
        if rest in {"/oauth2/v2.0/token", "/oauth2/v2.0/devicecode"}:
            self._check_tenant(tenant)
            if req.method != "POST":
                raise EntraError(
                    400,
                    "invalid_request",
                    900561,
                    f"The endpoint only accepts POST, OPTIONS requests. Received a "
                    f"{req.method} request.",
                )
            form = form_fields(req)
            if rest.endswith("/devicecode"):
                return self.users.start_device_flow(form, now=now)
            return self._token(form, tenant=tenant, now=now)
        return entra_json(404, {"error": "not_found", "error_description": f"No route {path}"})

    def _check_tenant(self, tenant: str) -> None:
        if not self._tenant_matches(tenant):
            raise tenant_not_found(tenant)

    # -- documents ------------------------------------------------------------------------

    def _discovery_v2(self) -> dict[str, Any]:
        base, host = self.base, self.app.sts_url
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self.issuer,
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{host}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "cloud_instance_name",
                "cloud_instance_host_name",
                "cloud_graph_host_name",
                "msgraph_host",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def _discovery_v1(self) -> dict[str, Any]:
        base = self.base
        document = self._discovery_v2()
        document.update(
            {
                "token_endpoint": f"{base}/oauth2/token",
                "jwks_uri": f"{base}/discovery/keys",
                "issuer": self.app.signer.issuer,
                "authorization_endpoint": f"{base}/oauth2/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/devicecode",
                "end_session_endpoint": f"{base}/oauth2/logout",
            }
        )
        return document

    def _keys(self) -> dict[str, Any]:
        jwk = self.app.signer.public_jwk()
        jwk.setdefault("kid", KEY_ID)
        jwk["issuer"] = self.issuer
        return {"keys": [jwk]}

    def _device_login_page(self) -> Response:
        domain = self.app.store.meta("domain") or "contoso.com"
        text = (
            "entra-bulk emulated tenant: device-code sign-in\n\n"
            "There is no browser sign-in here. Approve the code your application shows as one\n"
            "of the tenant's users through the admin API:\n\n"
            f"  curl -sS -X POST {self.app.graph_url}/_emulator/device/approve \\\n"
            "       -H 'Content-Type: application/json' \\\n"
            f'       -d \'{{"user_code": "CODE", "user": "{APPROVER}@{domain}"}}\'\n\n'
            'or decline it with POST .../_emulator/device/deny and {"user_code": "CODE"}.\n'
        )
        return Response(
            status=200,
            headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"},
            body=text.encode("utf-8"),
        )

    # -- token endpoint -------------------------------------------------------------------

    def _token(self, form: dict[str, str], *, tenant: str, now: dt.datetime) -> Response:
        grant = required_field(form, "grant_type")
        client_id = required_field(form, "client_id")
        client = find_client(self.app.store, client_id, tenant_name=self.tenant_name)
        if grant not in {CLIENT_CREDENTIALS, DEVICE_GRANT, REFRESH_TOKEN}:
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        audiences = {
            f"{self.app.sts_url}/{name}/{suffix}"
            for name in {self.app.tenant_id, tenant}
            for suffix in ("oauth2/v2.0/token", "oauth2/token", "v2.0")
        }
        presented = authenticate(client, form, audiences=audiences, now=now.timestamp())
        if grant == DEVICE_GRANT:
            return self.users.redeem_device_code(form, client, presented=presented, now=now)
        if grant == REFRESH_TOKEN:
            return self.users.redeem_refresh_token(form, client, presented=presented, now=now)
        if not presented:
            raise credential_required(client)
        app_only_scope(form.get("scope", ""), tenant_name=self.tenant_name)
        lifetime = self.app.config.token_lifetime_s
        token = self.app.signer.sign(
            app_claims(
                tenant_id=self.app.tenant_id,
                client_id=client.client_id,
                sp_id=client.sp_id,
                app_name=client.name,
                permissions=list(client.permissions),
                now=now.timestamp(),
                lifetime_s=lifetime,
            )
        )
        return entra_json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": max(lifetime - 1, 0),
                "ext_expires_in": max(lifetime - 1, 0),
                "access_token": token,
            },
        )
