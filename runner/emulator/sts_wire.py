"""The token host's wire shapes: form bodies, Entra's JSON replies and its error bodies.

Entra answers every token-endpoint failure with one shape (graph-reference.md section 12):

    {"error": "invalid_client",
     "error_description": "AADSTS7000215: Invalid client secret provided. ...\\r\\nTrace ID: ...
                           \\r\\nCorrelation ID: ...\\r\\nTimestamp: 2023-06-02 21:00:26Z",
     "error_codes": [7000215], "timestamp": "2023-06-02 21:00:26Z", "trace_id": "...",
     "correlation_id": "...", "error_uri": "https://login.microsoftonline.com/error?code=7000215"}

Handlers raise `EntraError`; `TokenService.handle` renders it. The factories below hold the
message texts that several flows share.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from runner.emulator.wire import PLAIN_JSON, Request, Response, dumps

NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache", "Expires": "-1"}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_CERT_DOCS = (
    "Review the documentation at "
    "https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."
)


class EntraError(Exception):
    """A refusal of the token host: HTTP status, OAuth `error`, AADSTS number and message."""

    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(f"{status} {error}: AADSTS{code}: {message}")
        self.status = status
        self.error = error
        self.code = code
        self.message = message


def entra_timestamp(now: dt.datetime) -> str:
    """Entra's error timestamp: `2023-06-02 21:00:26Z`."""
    return now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def correlation_id(req: Request) -> str:
    """The caller's `client-request-id` when it is a GUID (Entra adopts it), else a new one."""
    supplied = req.header("client-request-id") or ""
    return supplied if _GUID.match(supplied) else str(uuid.uuid4())


def entra_json(
    status: int, obj: Any, *, headers: Mapping[str, str] | None = None, cache: bool = False
) -> Response:
    """A JSON reply of the token host (`no-store` unless it is a cacheable document)."""
    base = {"Content-Type": PLAIN_JSON}
    if cache:
        base["Cache-Control"] = "max-age=86400, private"
        base["Access-Control-Allow-Origin"] = "*"
    else:
        base.update(NO_STORE)
    return Response(status=status, headers={**base, **(headers or {})}, body=dumps(obj))


def entra_error_response(
    err: EntraError, *, correlation: str, now: dt.datetime, client_request_id: str | None
) -> Response:
    """Entra's error body for `err`, with a fresh trace id."""
    trace_id = str(uuid.uuid4())
    stamp = entra_timestamp(now)
    description = (
        f"AADSTS{err.code}: {err.message}\r\nTrace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
    )
    body = {
        "error": err.error,
        "error_description": description,
        "error_codes": [err.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={err.code}",
    }
    headers = {"x-ms-request-id": trace_id}
    if client_request_id:
        headers["client-request-id"] = client_request_id
    return entra_json(err.status, body, headers=headers)


def form_fields(req: Request) -> dict[str, str]:
    """The `application/x-www-form-urlencoded` body (the last value wins for a repeated name)."""
    content_type = (req.header("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded" or not req.body:
        return {}
    try:
        text = req.body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return dict(parse_qsl(text, keep_blank_values=True))


# -- shared refusals ---------------------------------------------------------------------


def tenant_not_found(tenant: str) -> EntraError:
    """AADSTS90002: the path names no tenant this emulator holds."""
    return EntraError(
        400,
        "invalid_tenant",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, this "
        "may happen if there are no active subscriptions for the tenant.",
    )


def missing_parameter(name: str) -> EntraError:
    """AADSTS900144: a required form field is absent."""
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def required_field(form: Mapping[str, str], name: str) -> str:
    """A form field that must be present and non-blank; AADSTS900144 otherwise."""
    value = form.get(name, "")
    if not value.strip():
        raise missing_parameter(name)
    return value


def unknown_client(client_id: str, tenant_name: str) -> EntraError:
    """AADSTS700016: no application with that id in the tenant."""
    return EntraError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{tenant_name}'. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant. You may have "
        "sent your authentication request to the wrong tenant.",
    )


def unknown_resource(resource: str, tenant_name: str) -> EntraError:
    """AADSTS500011: a scope names a resource that is not Microsoft Graph."""
    return EntraError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant named "
        f"{tenant_name}. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant. You might "
        "have sent your authentication request to the wrong tenant.",
    )


def invalid_assertion(code: int, message: str, *, docs: bool = True) -> EntraError:
    """A client assertion Entra refuses (401 `invalid_client`), with the pointer to the
    certificate-credentials documentation Entra appends to most of these."""
    return EntraError(401, "invalid_client", code, f"{message} {_CERT_DOCS}" if docs else message)


def invalid_grant(code: int, message: str) -> EntraError:
    """A refresh token or device code that cannot be redeemed (400 `invalid_grant`)."""
    return EntraError(400, "invalid_grant", code, message)


# -- the managed-identity endpoints' own shapes ------------------------------------------


def imds_error(status: int, error: str, description: str) -> Response:
    """Azure IMDS's error body: `{"error": ..., "error_description": ...}`."""
    return Response(
        status=status,
        headers={"Content-Type": PLAIN_JSON},
        body=dumps({"error": error, "error_description": description}),
    )


def app_service_error(status: int, message: str) -> Response:
    """App Service's identity endpoint error body: `{"statusCode": ..., "message": ...}`."""
    return Response(
        status=status,
        headers={"Content-Type": PLAIN_JSON},
        body=dumps({"statusCode": status, "message": message}),
    )
