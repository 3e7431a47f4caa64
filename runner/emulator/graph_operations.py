"""Graph routes: the delegated password reset and its long-running operation (§1b).

    POST /users/{key}/authentication/methods/{pwId}/resetPassword          (v1.0 docs)
    POST /users/{key}/authentication/passwordMethods/{pwId}/resetPassword  (beta docs)
    GET  /users/{key}/authentication/operations/{opId}

The reset answers 202 with `Location` (and `Retry-After`); the operation is `notStarted`,
then `running` once polled, and ends `succeeded` `operation_delay_s` after its creation: a
settler applies the change then (`lastPasswordChangeDateTime`, must-change flag, ledger
`password_reset`), whether or not anyone polls. Fault rules `operation_fails` (ends `failed`,
nothing applied) and `operation_slow` (`seconds` of running) apply at creation. Passwords are
never stored, logged or echoed in errors; a generated one is returned once, in the body.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import string
import uuid
from typing import TYPE_CHECKING, Any

from runner.emulator import authz
from runner.emulator.faults import FaultKind
from runner.emulator.lookup import user_or_404
from runner.emulator.methods_model import parse_time, precise
from runner.emulator.routing import SETTLERS, Ctx, route
from runner.emulator.seed import PASSWORD_METHOD_ID
from runner.emulator.users_model import COMPLEXITY_MESSAGE, password_is_complex
from runner.emulator.wire import GraphError, Response, iso, json_response

if TYPE_CHECKING:
    from runner.emulator.app import EmulatorApp

_BASE = r"/(?:users/|(?=me/))(?P<key>[^/]+)/authentication"  # /users/{key} or /me
_LOCATION_QUERY = "aadgdc=EMU01P&aadgsu=ssprprod-a"
# Delegated roles that may poll another user's reset (longrunningoperation-get).
OPERATION_READERS = frozenset(
    {authz.GLOBAL_ADMIN, authz.GLOBAL_READER, authz.PRIVILEGED_AUTH_ADMIN, authz.AUTH_ADMIN}
)
GENERATED_LENGTH = 12
_GENERATED_ALPHABET = string.ascii_letters + string.digits + "!#%+-=?@"
_PENDING = ("notStarted", "running")
_FAILED_DETAIL = "The password could not be reset."


def generate_password() -> str:
    """A system-generated password that meets the complexity rules (the PATCH path's rule)."""
    while True:
        candidate = "".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(GENERATED_LENGTH))
        if password_is_complex(candidate):
            return candidate


def _denied() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", authz.DENIED_MESSAGE)


def _new_password(ctx: Ctx, *, synced: bool) -> tuple[str, bool]:
    """The password to set and whether the service generated it (400 when unacceptable)."""
    body = ctx.req.json()
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise GraphError(400, "badRequest", "The request body must be a JSON object.")
    given = body.get("newPassword")
    if given is None:
        if synced:
            raise GraphError(
                400,
                "badRequest",
                "A new password is required for a user whose password is written back on-premises.",
            )
        return generate_password(), True
    if not isinstance(given, str) or not password_is_complex(given):
        raise GraphError(400, "Request_BadRequest", COMPLEXITY_MESSAGE)
    return given, False


def reset_password(ctx: Ctx, key: str, method_id: str) -> Response:
    """Start a password reset (202 + Location); delegated callers only."""
    principal = ctx.principal
    if principal.is_app:
        raise _denied()
    authz.require_permission(principal, authz.WRITE_METHODS)
    user = user_or_404(ctx, key)
    if method_id.lower() != PASSWORD_METHOD_ID:
        raise GraphError(400, "badRequest", "The method is not supported for this URL.")
    user_id = str(user["id"])
    if principal.object_id == user_id:
        raise GraphError(
            400, "badRequest", "This operation cannot be performed on the caller's own account."
        )
    authz.require_role_over(ctx.actor_roles(), ctx.app.roles_of(user_id))
    password, generated = _new_password(ctx, synced=bool(user["synced"]))
    app = ctx.app
    delay = app.operation_delay_s
    outcome = "succeeded"
    fault = app.faults.operation_fault(user_id)
    if fault is not None and fault.kind is FaultKind.OPERATION_FAILS:
        outcome = "failed"
    elif fault is not None and fault.kind is FaultKind.OPERATION_SLOW:
        delay = float(fault.params.get("seconds", delay))
    operation_id = str(uuid.uuid4())
    created = precise(ctx.now)
    app.store.execute(
        "INSERT INTO operations (id, user_id, app, status, created, last_action, completes_at, "
        "outcome) VALUES (?, ?, ?, 'notStarted', ?, ?, ?, ?)",
        (
            operation_id,
            user_id,
            principal.app_id,
            created,
            created,
            precise(ctx.now + dt.timedelta(seconds=delay)),
            outcome,
        ),
    )
    headers = {
        "Location": f"{app.graph_url}/v1.0/users/{user_id}/authentication/operations/"
        f"{operation_id}?{_LOCATION_QUERY}"
    }
    if delay > 0:
        headers["Retry-After"] = str(max(1, math.ceil(delay)))
    body: dict[str, Any] = {}
    if generated:
        body = {
            "@odata.context": ctx.context_url("microsoft.graph.passwordResetResponse"),
            "newPassword": password,
        }
    return json_response(202, body, headers=headers)


route("POST", _BASE + "/methods/(?P<method_id>[^/]+)/resetPassword")(reset_password)
route("POST", _BASE + "/passwordMethods/(?P<method_id>[^/]+)/resetPassword")(reset_password)


@route("GET", _BASE + "/operations/(?P<operation_id>[^/]+)")
def get_operation(ctx: Ctx, key: str, operation_id: str) -> Response:
    """The reset's longRunningOperation; delegated callers only."""
    principal = ctx.principal
    if principal.is_app:
        raise _denied()
    authz.require_permission(principal, authz.READ_METHODS)
    user = user_or_404(ctx, key)
    user_id = str(user["id"])
    if principal.object_id != user_id:
        authz.require_any_role(ctx.actor_roles(), OPERATION_READERS)
    store = ctx.app.store
    row = store.query_one(
        "SELECT * FROM operations WHERE id = ? AND user_id = ?", (operation_id.lower(), user_id)
    )
    if row is None:
        raise GraphError(404, "itemNotFound", f"The operation '{operation_id}' was not found.")
    if row["status"] == "notStarted":
        row["status"], row["last_action"] = "running", precise(ctx.now)
        store.execute(
            "UPDATE operations SET status = 'running', last_action = ? "
            "WHERE id = ? AND status = 'notStarted'",
            (row["last_action"], row["id"]),
        )
    return json_response(
        200,
        {
            "@odata.context": ctx.context_url(
                f"users('{user_id}')/authentication/operations/$entity"
            ),
            "id": row["id"],
            "createdDateTime": iso(parse_time(str(row["created"]))),
            "lastActionDateTime": iso(parse_time(str(row["last_action"]))),
            "resourceLocation": f"{ctx.app.graph_url}/v1.0/users/{user_id}/authentication/"
            f"passwordMethods/{PASSWORD_METHOD_ID}",
            "status": row["status"],
            "statusDetail": _FAILED_DETAIL if row["status"] == "failed" else None,
        },
    )


def settle_operations(app: EmulatorApp, now: dt.datetime) -> None:
    """Finish every reset operation whose time has come, applying the successful ones."""
    due = app.store.query(
        "SELECT id, user_id, app, completes_at, outcome FROM operations "
        "WHERE status IN (?, ?) AND completes_at <= ?",
        (*_PENDING, precise(now)),
    )
    for operation in due:
        finished = parse_time(str(operation["completes_at"]))
        applied = False
        with app.store.transaction() as db:
            claimed = db.execute(
                "UPDATE operations SET status = ?, last_action = ? WHERE id = ? "
                "AND status IN (?, ?)",
                (operation["outcome"], operation["completes_at"], operation["id"], *_PENDING),
            ).rowcount
            if claimed and operation["outcome"] == "succeeded":
                applied = bool(
                    db.execute(
                        "UPDATE users SET last_password_change = ?, force_change = 1, "
                        "password_set = 1 WHERE id = ?",
                        (iso(finished), operation["user_id"]),
                    ).rowcount
                )
        if applied:
            app.record_effect(
                now=finished,
                app=str(operation["app"]),
                user_id=str(operation["user_id"]),
                effect="password_reset",
                detail={"via": "resetPassword", "operation": operation["id"]},
            )


SETTLERS.append(settle_operations)
