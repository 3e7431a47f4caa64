"""Graph routes: a user's authentication methods (graph-reference.md §6, §7).

    GET    /users/{key}/authentication/methods                 every method, this version's types
    GET    /users/{key}/authentication/methods/{id}
    GET    /users/{key}/authentication/{collection}            one type (hardwareOath: beta)
    GET    /users/{key}/authentication/{collection}/{id}
    DELETE /users/{key}/authentication/{collection}/{id}       not the password; default rule
    POST   /users/{key}/authentication/temporaryAccessPassMethods

Every path also works as `/me/authentication/...` for a delegated caller's own methods.
Deleted methods stay in lists for `consistency_delay_s` (eventual consistency) but are 404
by id at once. Importing this module also registers `graph_auth_states` and
`graph_operations`.

Choices where graph-reference.md marks Graph's answer UNVERIFIED:
- A method that is not there (never was, deleted, other type's path): 404 `itemNotFound`
  (the authentication-methods service's workload code, like its `badRequest`).
- No generic `DELETE …/methods/{id}` and no password DELETE: 405 `Request_BadRequest`
  "Specified HTTP method is not allowed for the request target." (the route table's answer).
- Default-method rule: the default is the method `preferred_method` names (push →
  Authenticator, oath → software/hardware OATH, sms/voiceMobile → mobile, ...); it is
  protected only while no other method of the same kind could stay the default and another
  default-capable method (phone, Authenticator, OATH) remains. Deleting it last unsets it.
- Deleting the mobile phone while an alternateMobile exists: 400 `badRequest`.
- TAP lifetime outside 10-43200, non-boolean `isUsableOnce`, bad `startDateTime`: 400
  `badRequest`. A pass is 8 characters, the policy's default length.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from runner.emulator import authz, graph_auth_states, graph_operations
from runner.emulator.lookup import GUID, user_or_404
from runner.emulator.methods_model import (
    BETA_ONLY_COLLECTIONS,
    BY_COLLECTION,
    BY_NAME,
    DEFAULT_CAPABLE,
    V1_COLLECTIONS,
    Access,
    authorize,
    default_method_error,
    is_default,
    method_not_found,
    parse_time,
    password_shape,
    precise,
    shape,
)
from runner.emulator.routing import BETA, BOTH, Ctx, route
from runner.emulator.seed import PASSWORD_METHOD_ID
from runner.emulator.wire import GraphError, Response, empty_response, iso, json_response

del graph_auth_states, graph_operations  # imported for their route registrations

_BASE = r"/(?:users/|(?=me/))(?P<key>[^/]+)/authentication"  # /users/{key} or /me
_V1 = "|".join(V1_COLLECTIONS)
_BETA_ONLY = "|".join(BETA_ONLY_COLLECTIONS)
_DELETABLE_V1 = "|".join(name for name in V1_COLLECTIONS if name != "passwordMethods")
_ID = r"(?P<method_id>[^/]+)"

# Defaults of the Temporary Access Pass policy
# (temporaryAccessPassAuthenticationMethodConfiguration).
TAP_DEFAULT_LIFETIME = 60
TAP_MIN_LIFETIME = 10
TAP_MAX_LIFETIME = 43200
TAP_LENGTH = 8
_TAP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789+-=@#$%&*!?"


def _method_id(raw: str) -> str:
    """Method ids that are GUIDs compare case-insensitively (stored lower-case)."""
    return raw.lower() if GUID.match(raw) else raw


def _context(ctx: Ctx, user_id: str, tail: str) -> str:
    return ctx.context_url(f"users('{user_id}')/authentication/{tail}")


def _visible(ctx: Ctx, user_id: str) -> list[dict[str, Any]]:
    """The user's methods as lists show them: live ones, and ones deleted too recently."""
    cutoff = precise(ctx.now - dt.timedelta(seconds=ctx.app.consistency_delay_s))
    return ctx.app.store.query(
        "SELECT id, kind, created, data FROM methods "
        "WHERE user_id = ? AND (deleted_at IS NULL OR deleted_at > ?) ORDER BY created, id",
        (user_id, cutoff),
    )


def _listing(
    ctx: Ctx, user: Mapping[str, Any], access: Access, only: str | None
) -> list[dict[str, Any]]:
    """Methods of this API version's types (only kind `only`, if given), password first."""
    shown: list[dict[str, Any]] = []
    if only in {None, "password"} and user["password_set"]:
        shown.append(password_shape(user))
    if only == "password":
        return shown
    for row in _visible(ctx, str(user["id"])):
        kind = BY_NAME.get(str(row["kind"]))
        if kind is None or ctx.version not in kind.versions:
            continue
        if only is not None and kind.name != only:
            continue
        shown.append(shape(row, user=user, now=ctx.now, mask_phones=access.mask_phones))
    return shown


def _one(
    ctx: Ctx, user: Mapping[str, Any], access: Access, method_id: str, only: str | None
) -> dict[str, Any]:
    """One live method by id (of kind `only`, if given) in this version, else 404."""
    method_id = _method_id(method_id)
    if method_id == PASSWORD_METHOD_ID and only in {None, "password"} and user["password_set"]:
        return password_shape(user)
    row = ctx.app.store.query_one(
        "SELECT id, kind, created, data FROM methods "
        "WHERE user_id = ? AND id = ? AND deleted_at IS NULL",
        (user["id"], method_id),
    )
    kind = BY_NAME.get(str(row["kind"])) if row is not None else None
    if (
        row is None
        or kind is None
        or ctx.version not in kind.versions
        or (only is not None and kind.name != only)
    ):
        raise method_not_found(method_id)
    return shape(row, user=user, now=ctx.now, mask_phones=access.mask_phones)


# -- reads -----------------------------------------------------------------------------------


@route("GET", _BASE + "/methods")
def list_methods(ctx: Ctx, key: str) -> Response:
    """Every method of the user that this API version knows."""
    user = user_or_404(ctx, key)
    access = authorize(ctx, user, write=False, permissions=authz.READ_METHODS)
    body = {
        "@odata.context": _context(ctx, str(user["id"]), "methods"),
        "value": _listing(ctx, user, access, None),
    }
    return json_response(200, body)


@route("GET", _BASE + "/methods/" + _ID)
def get_method(ctx: Ctx, key: str, method_id: str) -> Response:
    """One method of any type by id."""
    user = user_or_404(ctx, key)
    access = authorize(ctx, user, write=False, permissions=authz.READ_METHODS)
    method = _one(ctx, user, access, method_id, None)
    return json_response(
        200, {"@odata.context": _context(ctx, str(user["id"]), "methods/$entity"), **method}
    )


def list_collection(ctx: Ctx, key: str, collection: str) -> Response:
    """The user's methods of one type."""
    user = user_or_404(ctx, key)
    access = authorize(ctx, user, write=False, permissions=authz.READ_METHODS)
    body = {
        "@odata.context": _context(ctx, str(user["id"]), collection),
        "value": _listing(ctx, user, access, BY_COLLECTION[collection].name),
    }
    return json_response(200, body)


def get_in_collection(ctx: Ctx, key: str, collection: str, method_id: str) -> Response:
    """One method of one type by id."""
    user = user_or_404(ctx, key)
    access = authorize(ctx, user, write=False, permissions=authz.READ_METHODS)
    method = _one(ctx, user, access, method_id, BY_COLLECTION[collection].name)
    context = _context(ctx, str(user["id"]), f"{collection}/$entity")
    return json_response(200, {"@odata.context": context, **method})


route("GET", f"{_BASE}/(?P<collection>{_V1})", versions=BOTH)(list_collection)
route("GET", f"{_BASE}/(?P<collection>{_BETA_ONLY})", versions=BETA)(list_collection)
route("GET", f"{_BASE}/(?P<collection>{_V1})/{_ID}", versions=BOTH)(get_in_collection)
route("GET", f"{_BASE}/(?P<collection>{_BETA_ONLY})/{_ID}", versions=BETA)(get_in_collection)


# -- delete ----------------------------------------------------------------------------------


def delete_method(ctx: Ctx, key: str, collection: str, method_id: str) -> Response:
    """Delete one method by its type's path; the default method only once it is the last."""
    kind = BY_COLLECTION[collection]
    user = user_or_404(ctx, key)
    permissions = authz.WRITE_TAP if kind.name == "temporaryAccessPass" else authz.WRITE_METHODS
    authorize(ctx, user, write=True, permissions=permissions)
    user_id = str(user["id"])
    method_id = _method_id(method_id)
    with ctx.app.store.transaction() as db:
        live = [
            (str(row["id"]), str(row["kind"]), json.loads(row["data"]))
            for row in db.execute(
                "SELECT id, kind, data FROM methods WHERE user_id = ? AND deleted_at IS NULL",
                (user_id,),
            )
        ]
        target = next((m for m in live if m[0] == method_id and m[1] == kind.name), None)
        if target is None:
            raise method_not_found(method_id)
        others = [m for m in live if m[0] != method_id]
        data = target[2]
        if (
            kind.name == "phone"
            and data.get("phoneType") == "mobile"
            and any(k == "phone" and d.get("phoneType") == "alternateMobile" for _, k, d in others)
        ):
            raise GraphError(
                400,
                "badRequest",
                "A user can't have an alternateMobile phone without a mobile phone. Update the "
                "mobile phone number, or delete the alternateMobile phone first.",
            )
        row = db.execute("SELECT preferred_method FROM users WHERE id = ?", (user_id,)).fetchone()
        preferred = None if row is None else row["preferred_method"]
        clears_default = False
        if is_default(preferred, kind.name, data) and not any(
            is_default(preferred, k, d) for _, k, d in others
        ):
            if any(k in DEFAULT_CAPABLE for _, k, _ in others):
                raise default_method_error(method_id)
            clears_default = True
        db.execute(
            "UPDATE methods SET deleted_at = ? WHERE user_id = ? AND id = ?",
            (precise(ctx.now), user_id, method_id),
        )
        if clears_default:
            db.execute("UPDATE users SET preferred_method = NULL WHERE id = ?", (user_id,))
    detail = {"kind": kind.name, "id": method_id}
    ctx.record(user_id=user_id, effect="method_deleted", detail=detail)
    if clears_default:
        ctx.record(
            user_id=user_id,
            effect="default_method_changed",
            detail={"from": preferred, "to": None, "cause": "last MFA method deleted"},
        )
    return empty_response(204)


route("DELETE", f"{_BASE}/(?P<collection>{_DELETABLE_V1})/{_ID}", versions=BOTH)(delete_method)
route("DELETE", f"{_BASE}/(?P<collection>{_BETA_ONLY})/{_ID}", versions=BETA)(delete_method)


# -- Temporary Access Pass -------------------------------------------------------------------


def _tap_request(ctx: Ctx) -> tuple[dt.datetime, int, bool]:
    """startDateTime, lifetimeInMinutes and isUsableOnce of a create request (400 if bad)."""
    body = ctx.req.json()
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise GraphError(
            400, "badRequest", "The request body must be a temporaryAccessPassAuthenticationMethod."
        )
    lifetime = body.get("lifetimeInMinutes", TAP_DEFAULT_LIFETIME)
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, int)
        or not TAP_MIN_LIFETIME <= lifetime <= TAP_MAX_LIFETIME
    ):
        raise GraphError(
            400,
            "badRequest",
            f"lifetimeInMinutes must be between {TAP_MIN_LIFETIME} and {TAP_MAX_LIFETIME}.",
        )
    once = body.get("isUsableOnce", False)
    if not isinstance(once, bool):
        raise GraphError(400, "badRequest", "isUsableOnce must be true or false.")
    start = ctx.now
    if body.get("startDateTime") is not None:
        try:
            start = parse_time(str(body["startDateTime"]))
        except ValueError:
            raise GraphError(
                400, "badRequest", "startDateTime is not a valid DateTimeOffset."
            ) from None
    return start, lifetime, once


@route("POST", _BASE + "/temporaryAccessPassMethods")
def create_tap(ctx: Ctx, key: str) -> Response:
    """201 with the new pass (shown this once); any previous pass is deleted."""
    user = user_or_404(ctx, key)
    authorize(ctx, user, write=True, permissions=authz.WRITE_TAP, self_service=False)
    start, lifetime, once = _tap_request(ctx)
    user_id = str(user["id"])
    method_id = str(uuid.uuid4())
    data = {"startDateTime": iso(start), "lifetimeInMinutes": lifetime, "isUsableOnce": once}
    created = iso(ctx.now)
    with ctx.app.store.transaction() as db:
        replaced = [
            str(row["id"])
            for row in db.execute(
                "SELECT id FROM methods WHERE user_id = ? AND kind = 'temporaryAccessPass' "
                "AND deleted_at IS NULL",
                (user_id,),
            )
        ]
        db.execute(
            "UPDATE methods SET deleted_at = ? WHERE user_id = ? "
            "AND kind = 'temporaryAccessPass' AND deleted_at IS NULL",
            (precise(ctx.now), user_id),
        )
        db.execute(
            "INSERT INTO methods (user_id, id, kind, created, data, deleted_at) "
            "VALUES (?, ?, 'temporaryAccessPass', ?, ?, NULL)",
            (user_id, method_id, created, json.dumps(data)),
        )
    for old in replaced:
        ctx.record(
            user_id=user_id,
            effect="method_deleted",
            detail={"kind": "temporaryAccessPass", "id": old, "replacedBy": method_id},
        )
    ctx.record(user_id=user_id, effect="tap_created", detail={"id": method_id, **data})
    row = {"id": method_id, "kind": "temporaryAccessPass", "created": created, "data": data}
    body: dict[str, Any] = {
        "@odata.context": _context(ctx, user_id, "temporaryAccessPassMethods/$entity"),
        **shape(row, user=user, now=ctx.now, mask_phones=False),
    }
    body["temporaryAccessPass"] = "".join(secrets.choice(_TAP_ALPHABET) for _ in range(TAP_LENGTH))
    return json_response(201, body)
