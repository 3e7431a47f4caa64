"""Graph routes (beta only): per-user MFA state and sign-in preferences (graph-reference §5).

    GET/PATCH /beta/users/{key}/authentication/requirements       {"perUserMfaState": ...}
    GET/PATCH /beta/users/{key}/authentication/signInPreferences  the user's default method

On v1.0 these segments, and beta-only method collections such as `hardwareOathMethods`, do
not exist: Graph answers 400 "Resource not found for the segment '…'", and so do we.
"""

from __future__ import annotations

import json
from typing import Any

from runner.emulator import authz
from runner.emulator.lookup import user_or_404
from runner.emulator.methods_model import (
    BETA_ONLY_COLLECTIONS,
    PREFERRED_VALUES,
    authorize,
    has_preferred,
)
from runner.emulator.routing import BETA, Ctx, route
from runner.emulator.wire import GraphError, Response, empty_response, json_response

_BASE = r"/(?:users/|(?=me/))(?P<key>[^/]+)/authentication"  # /users/{key} or /me
_MFA_STATES = ("disabled", "enabled", "enforced")
# Delegated readers of per-user MFA state (rbac-authentication-methods-policy-apis-read).
_POLICY_READERS = authz.POLICY_WRITERS | {authz.GLOBAL_READER}
_V1_ONLY = frozenset({"v1.0"})


def _bad_value(value: Any, *, prop: str, allowed: tuple[str, ...]) -> GraphError:
    return GraphError(
        400,
        "badRequest",
        f"Invalid value '{value}' for property '{prop}'. Allowed values: {', '.join(allowed)}.",
    )


def _patch_body(ctx: Ctx, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The PATCH body as an object holding only known properties (400 otherwise)."""
    body = ctx.req.json()
    if not isinstance(body, dict) or not body:
        raise GraphError(400, "badRequest", "The request body must be a non-empty JSON object.")
    for name in body:
        if name not in allowed and name != "@odata.type":
            raise GraphError(
                400,
                "badRequest",
                f"Property '{name}' does not exist on the target type or cannot be updated.",
            )
    return body


# -- per-user MFA: strongAuthenticationRequirements ------------------------------------------


@route("GET", _BASE + "/requirements", versions=BETA)
def get_requirements(ctx: Ctx, key: str) -> Response:
    """The user's per-user MFA state."""
    user = user_or_404(ctx, key)
    authorize(
        ctx,
        user,
        write=False,
        permissions=authz.READ_MFA_REQUIREMENTS,
        readers=_POLICY_READERS,
        self_service=False,
    )
    return json_response(
        200,
        {
            "@odata.context": ctx.context_url(f"users('{user['id']}')/authentication/requirements"),
            "@odata.type": "#microsoft.graph.strongAuthenticationRequirements",
            "perUserMfaState": user["per_user_mfa"],
        },
    )


@route("PATCH", _BASE + "/requirements", versions=BETA)
def patch_requirements(ctx: Ctx, key: str) -> Response:
    """Set the per-user MFA state (204); delegated callers need a policy-writing role."""
    user = user_or_404(ctx, key)
    authz.require_permission(ctx.principal, authz.WRITE_MFA_REQUIREMENTS)
    if not ctx.principal.is_app:
        authz.require_any_role(ctx.actor_roles(), authz.POLICY_WRITERS)
    body = _patch_body(ctx, ("perUserMfaState",))
    state = body.get("perUserMfaState")
    if state not in _MFA_STATES:
        raise _bad_value(state, prop="perUserMfaState", allowed=_MFA_STATES)
    previous = user["per_user_mfa"]
    if state != previous:
        ctx.app.store.update_user(str(user["id"]), per_user_mfa=state)
        ctx.record(
            user_id=str(user["id"]),
            effect="per_user_mfa_set",
            detail={"from": previous, "to": state},
        )
    return empty_response(204)


# -- sign-in preferences: the default MFA method ---------------------------------------------


@route("GET", _BASE + "/signInPreferences", versions=BETA)
def get_sign_in_preferences(ctx: Ctx, key: str) -> Response:
    """Whether system-preferred MFA is on, and the user's preferred (default) method."""
    user = user_or_404(ctx, key)
    authorize(ctx, user, write=False, permissions=authz.READ_METHODS)
    return json_response(
        200,
        {
            "@odata.context": ctx.context_url(
                f"users('{user['id']}')/authentication/signInPreferences"
            ),
            "@odata.type": "#microsoft.graph.signInPreferences",
            "isSystemPreferredAuthenticationMethodEnabled": bool(user["system_preferred"]),
            "userPreferredMethodForSecondaryAuthentication": user["preferred_method"],
        },
    )


@route("PATCH", _BASE + "/signInPreferences", versions=BETA)
def patch_sign_in_preferences(ctx: Ctx, key: str) -> Response:
    """Change the default method (one the user holds) or the system-preferred switch (204)."""
    user = user_or_404(ctx, key)
    authorize(ctx, user, write=True, permissions=authz.WRITE_METHODS)
    system_key = "isSystemPreferredAuthenticationMethodEnabled"
    preferred_key = "userPreferredMethodForSecondaryAuthentication"
    body = _patch_body(ctx, (system_key, preferred_key))
    changes: dict[str, Any] = {}
    detail: dict[str, Any] = {}
    if system_key in body:
        enabled = body[system_key]
        if not isinstance(enabled, bool):
            raise _bad_value(enabled, prop=system_key, allowed=("true", "false"))
        if enabled != bool(user["system_preferred"]):
            changes["system_preferred"] = int(enabled)
            detail[system_key] = enabled
    if preferred_key in body:
        preferred = body[preferred_key]
        if preferred not in PREFERRED_VALUES:
            raise _bad_value(preferred, prop=preferred_key, allowed=PREFERRED_VALUES)
        rows = ctx.app.store.query(
            "SELECT kind, data FROM methods WHERE user_id = ? AND deleted_at IS NULL",
            (user["id"],),
        )
        held = [(str(row["kind"]), json.loads(row["data"])) for row in rows]
        if not has_preferred(preferred, held):
            raise GraphError(
                400,
                "badRequest",
                f"The user has no registered authentication method that supports '{preferred}'; "
                "register one before making it the default.",
            )
        if preferred != user["preferred_method"]:
            changes["preferred_method"] = preferred
            detail |= {"from": user["preferred_method"], "to": preferred}
    if changes:
        ctx.app.store.update_user(str(user["id"]), **changes)
        ctx.record(user_id=str(user["id"]), effect="default_method_changed", detail=detail)
    return empty_response(204)


# -- beta-only segments on v1.0 --------------------------------------------------------------


def segment_not_found(ctx: Ctx, key: str, segment: str, rest: str | None = None) -> Response:
    """v1.0 has no such segment: Graph's 400 BadRequest."""
    del ctx, key, rest
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


_BETA_SEGMENTS = "|".join(("requirements", "signInPreferences", *BETA_ONLY_COLLECTIONS))
for _method in ("GET", "POST", "PATCH", "DELETE"):
    route(_method, f"{_BASE}/(?P<segment>{_BETA_SEGMENTS})(?P<rest>/.*)?", versions=_V1_ONLY)(
        segment_not_found
    )
