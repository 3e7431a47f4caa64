"""The token host (HTTPS): OpenID configuration, token endpoint, device code, managed identity.

Interface used by the rest of the emulator (implementation in progress):

    TokenService(app)
    .handle(req)              -> Response   every request to the HTTPS token host
    .managed_identity(req)    -> Response   GET /metadata/identity/oauth2/token on the Graph host
    .admin_device(body, approve=bool) -> Response   POST /_emulator/device/approve|deny
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner.emulator.wire import Request, Response, json_response

if TYPE_CHECKING:
    from runner.emulator.app import EmulatorApp


class TokenService:
    """Issues tokens for the tenant's apps and users."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app

    def handle(self, req: Request) -> Response:
        """Serve the token host."""
        return json_response(404, {"error": "not_found", "error_description": req.path})

    def managed_identity(self, req: Request) -> Response:
        """Serve the managed-identity endpoint."""
        return json_response(404, {"error": "not_found", "error_description": req.path})

    def admin_device(self, body: dict[str, Any], *, approve: bool) -> Response:
        """Approve or deny a pending device code."""
        return json_response(404, {"error": "not_found", "approve": approve, "body": body})
