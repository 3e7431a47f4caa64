"""Managed identity on the Graph host: `GET /metadata/identity/oauth2/token`.

Two dialects, both as msal's `ManagedIdentityClient` speaks them:

- Azure VM IMDS (`api-version=2018-02-01`, header `Metadata: true`; msal reaches it through
  `AZURE_POD_IDENTITY_AUTHORITY_HOST=<graph_url>`): numbers as strings, IMDS errors;
- App Service (`api-version=2019-08-01`, header `X-IDENTITY-HEADER`; msal reaches it through
  `IDENTITY_ENDPOINT=<managed_identity_endpoint>` + `IDENTITY_HEADER`): `expires_on` only.
  App Service checks the header against a per-container secret; the emulator has none to hand
  out, so it only requires the header to be present.

System-assigned requests get the `entra-bulk-managed-identity` identity; user-assigned ones
name an app of kind `managed_identity` by `client_id`, `object_id` or resource id.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from runner.emulator.sts_wire import app_service_error, imds_error
from runner.emulator.tokens import GRAPH_APP_ID, GRAPH_AUDIENCE, app_claims
from runner.emulator.wire import PLAIN_JSON, Request, Response, dumps

if TYPE_CHECKING:
    from runner.emulator.app import EmulatorApp

SYSTEM_ASSIGNED = "entra-bulk-managed-identity"
_GRAPH_RESOURCES = {GRAPH_AUDIENCE, f"{GRAPH_AUDIENCE}/", GRAPH_APP_ID}
_RESOURCE_MARKER = "/providers/microsoft.managedidentity/userassignedidentities/"
# (IMDS parameter, App Service parameter, apps column): ways to name a user-assigned identity.
_SELECTORS = (
    ("client_id", "client_id", "client_id"),
    ("object_id", "object_id", "sp_id"),
    ("msi_res_id", "mi_res_id", "name"),
)


def resource_id(subscription: str, name: str) -> str:
    """The ARM id the emulator gives a user-assigned identity (its last segment is the name)."""
    return (
        f"/subscriptions/{subscription}/resourceGroups/entra-bulk/providers/"
        f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )


class ManagedIdentityEndpoint:
    """Answers the managed-identity endpoint for the tenant's managed identities."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app

    def handle(self, req: Request) -> Response:
        """Serve one token request in the dialect its headers speak."""
        if req.method != "GET":
            return imds_error(405, "invalid_request", "The request method is not supported.")
        if req.header("x-identity-header") is not None:
            return self._app_service(req)
        return self._imds(req)

    def _identity(self, query: dict[str, str], *, app_service: bool) -> dict[str, Any] | str:
        """The identity a request names, or the reason it names none."""
        chosen = [
            (column, query[name_service if app_service else name_imds])
            for name_imds, name_service, column in _SELECTORS
            if query.get(name_service if app_service else name_imds)
        ]
        if len(chosen) > 1:
            return "Only one of client_id, object_id or msi_res_id may be specified."
        if not chosen:
            return (
                self.app.store.query_one(
                    "SELECT * FROM apps WHERE name = ? AND kind = 'managed_identity'",
                    (SYSTEM_ASSIGNED,),
                )
                or "No managed identity is assigned to this resource."
            )
        column, value = chosen[0]
        if column == "name":
            if _RESOURCE_MARKER not in value.lower():
                return "Identity not found"
            value = value.rstrip("/").rsplit("/", 1)[-1]
        row = self.app.store.query_one(
            f"SELECT * FROM apps WHERE lower({column}) = lower(?) AND kind = 'managed_identity'",
            (value,),
        )
        return row if row is not None else "Identity not found"

    def _token(self, row: dict[str, Any]) -> tuple[str, int, int]:
        now = self.app.clock().timestamp()
        lifetime = self.app.config.token_lifetime_s
        token = self.app.signer.sign(
            app_claims(
                tenant_id=self.app.tenant_id,
                client_id=str(row["client_id"]),
                sp_id=str(row["sp_id"]),
                app_name=str(row["name"]),
                permissions=json.loads(row["permissions"]),
                now=now,
                lifetime_s=lifetime,
            )
        )
        return token, int(now), max(lifetime - 1, 0)

    def _imds(self, req: Request) -> Response:
        if (req.header("metadata") or "").lower() != "true":
            return imds_error(400, "invalid_request", "Required metadata header not specified")
        query = dict(req.query)
        if not query.get("api-version"):
            return imds_error(
                400, "invalid_request", "Required query variable 'api-version' is missing"
            )
        resource = query.get("resource", "")
        if not resource:
            return imds_error(
                400, "invalid_request", "Required query variable 'resource' is missing"
            )
        if resource not in _GRAPH_RESOURCES:
            return imds_error(
                400,
                "invalid_resource",
                f"AADSTS500011: The resource principal named {resource} was not found in the "
                f"tenant named {self.app.tenant_id}. This can happen if the application has "
                "not been installed by the administrator of the tenant or consented to by any "
                "user in the tenant. You might have sent your authentication request to the "
                "wrong tenant.",
            )
        row = self._identity(query, app_service=False)
        if isinstance(row, str):
            return imds_error(400, "invalid_request", row)
        token, now, expires_in = self._token(row)
        body = {
            "access_token": token,
            "client_id": row["client_id"],
            "expires_in": str(expires_in),
            "expires_on": str(now + expires_in),
            "ext_expires_in": str(expires_in),
            "not_before": str(now),
            "resource": resource,
            "token_type": "Bearer",
        }
        return Response(status=200, headers={"Content-Type": PLAIN_JSON}, body=dumps(body))

    def _app_service(self, req: Request) -> Response:
        if not req.header("x-identity-header"):
            return app_service_error(401, "The X-IDENTITY-HEADER header is empty.")
        query = dict(req.query)
        resource = query.get("resource", "")
        if not resource:
            return app_service_error(400, "The resource parameter is required.")
        if resource not in _GRAPH_RESOURCES:
            return app_service_error(400, f"The resource {resource} is not known to the tenant.")
        row = self._identity(query, app_service=True)
        if isinstance(row, str):
            return app_service_error(400, row)
        token, now, expires_in = self._token(row)
        body = {
            "access_token": token,
            "client_id": row["client_id"],
            "expires_on": str(now + expires_in),
            "resource": resource,
            "token_type": "Bearer",
        }
        return Response(status=200, headers={"Content-Type": PLAIN_JSON}, body=dumps(body))
