"""Graph routes: users (graph-reference.md §1a, §3, §8, §11).

    GET   /users                              list: $filter $select $top $orderby $search $count
    GET   /users/$count                       text/plain count (ConsistencyLevel: eventual)
    GET   /users/{id | upn}   /users('upn')   one user; default property set or $select
    GET   /me                                 the signed-in user (delegated tokens only)
    PATCH /users/{id | upn}                   passwordProfile, accountEnabled, simple properties
    POST  /users/{id | upn}/revokeSignInSessions   (also /me/revokeSignInSessions)

Lists page by a key (`$skiptoken` = sort key of the last user served) straight from the
tenant database's indexes; filters on plain columns run as SQL, the rest in Python. Writes
of `passwordProfile` and `accountEnabled` and session revocation are sensitive actions (the
reset matrix), refused on synced users; each applied write goes to the ledger, which never
holds a password. Revocation returns 200 `{value: true}` (the documented known issue), also
for guests, whose B2B sessions Graph does not revoke: the ledger row says `guest: true`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from runner.emulator import odata_query
from runner.emulator.authz import (
    READ_USERS,
    REVOKE_SESSIONS,
    WRITE_ACCOUNT_ENABLED,
    WRITE_PASSWORD_PROFILE,
    WRITE_USER,
    require_permission,
)
from runner.emulator.lookup import user_or_404
from runner.emulator.odata_query import ListQuery
from runner.emulator.routing import Ctx, route
from runner.emulator.users_model import (
    CLOUD_MASTERED,
    COMPLEXITY_MESSAGE,
    ON_PREM_MESSAGE,
    READ_ME,
    USER,
    WRITABLE,
    UserPatch,
    collection_response,
    me_row,
    parse_patch,
    password_is_complex,
    require_sensitive,
    user_json,
    user_object,
    visible_sessions,
)
from runner.emulator.wire import GraphError, Response, empty_response, iso, json_response

# -- reads ----------------------------------------------------------------------------------

_CHUNK = 1000  # rows per query when Python evaluates part of a filter


def _sort(q: ListQuery) -> tuple[str, bool]:
    if q.orderby is None:
        return "id", False
    column = q.orderby.prop.column or "id"
    return (column if column == "id" else f"{column} COLLATE NOCASE"), q.orderby.descending


def _page_key(row: Mapping[str, Any], q: ListQuery) -> tuple[str, ...]:
    if q.orderby is None or q.orderby.prop.column in {None, "id"}:
        return (str(row["id"]),)
    return (str(row[str(q.orderby.prop.column)]), str(row["id"]))


def _scan(ctx: Ctx, q: ListQuery, *, limit: int | None) -> tuple[list[dict[str, Any]], bool]:
    """Users passing the query after its page token, in page order: at most `limit` (all when
    None); also whether more remain. SQL does what it can; Python evaluates the rest."""
    where: list[str] = []
    params: list[Any] = []
    translated = odata_query.to_sql(q.filter) if q.filter is not None else ("", [])
    python_side = translated is None or q.search is not None
    if translated is not None and translated[0]:
        where.append(translated[0])
        params.extend(translated[1])
    sort, descending = _sort(q)
    if q.after is not None and len(q.after) != (1 if sort == "id" else 2):
        raise odata_query.expired_token()
    direction, compare = ("DESC", "<") if descending else ("ASC", ">")
    after: tuple[str, ...] | None = q.after
    found: list[dict[str, Any]] = []
    while True:
        conditions = list(where)
        key_params: list[Any] = []
        if after is not None:
            if sort == "id":
                conditions.append(f"id {compare} ?")
            else:
                conditions.append(f"({sort}, id) {compare} (?, ?)")
            key_params = list(after)
        want = (limit + 1 - len(found)) if limit is not None and not python_side else _CHUNK
        sql = (
            "SELECT * FROM users"
            + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
            + f" ORDER BY {sort} {direction}, id {direction} LIMIT ?"
        )
        rows = ctx.app.store.query(sql, [*params, *key_params, want])
        for row in rows:
            if python_side and not odata_query.accepts(q, user_object(row, ctx.now)):
                continue
            found.append(row)
            if limit is not None and len(found) > limit:
                return found[:limit], True
        if len(rows) < want:
            return found, False
        after = _page_key(rows[-1], q)


@route("GET", r"(?i)/users", resource_units=2)
def list_users(ctx: Ctx) -> Response:
    """GET /users."""
    require_permission(ctx.principal, READ_USERS)
    q = odata_query.list_query(ctx.req.query, ctx.req.header("ConsistencyLevel"), USER)
    rows, more = _scan(ctx, q, limit=q.top)
    count = None
    if q.count:
        translated = odata_query.to_sql(q.filter) if q.filter is not None else ("", [])
        if translated is not None and q.search is None:
            where = f" WHERE {translated[0]}" if translated[0] else ""
            counted = ctx.app.store.query_one(
                f"SELECT COUNT(*) AS n FROM users{where}", translated[1]
            )
            count = int(counted["n"]) if counted else 0
        else:
            count = len(_scan(ctx, q, limit=None)[0])
    items = [user_json(row, ctx.now, q.select) for row in rows]
    fragment = odata_query.context_with_select("users", q.select)
    next_key = _page_key(rows[-1], q) if more and rows else None
    return collection_response(ctx, fragment, items, count=count, next_key=next_key)


@route("GET", r"(?i)/users/\$count")
def count_users(ctx: Ctx) -> Response:
    """GET /users/$count: text/plain; only in advanced queries (header needed)."""
    require_permission(ctx.principal, READ_USERS)
    if (ctx.req.header("ConsistencyLevel") or "").strip().lower() != "eventual":
        raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
    query = {k: v for k, v in ctx.req.query.items() if k.lower() in {"$filter", "$search"}}
    q = odata_query.list_query({**query, "$count": "true"}, "eventual", USER)
    total = len(_scan(ctx, q, limit=None)[0])
    return Response(
        status=200,
        headers={"Content-Type": "text/plain;charset=utf-8"},
        body=str(total).encode(),
    )


def _entity(ctx: Ctx, row: Mapping[str, Any]) -> Response:
    select = odata_query.parse_select(ctx.req.query.get("$select"), USER)
    body = {
        "@odata.context": ctx.context_url(
            odata_query.context_with_select("users", select) + "/$entity"
        )
    }
    body.update(user_json(row, ctx.now, select))
    return json_response(200, body)


@route("GET", r"(?i)/users/(?P<key>[^/]+)")
def get_user(ctx: Ctx, key: str) -> Response:
    """GET /users/{id | userPrincipalName}."""
    require_permission(ctx.principal, READ_USERS)
    return _entity(ctx, user_or_404(ctx, key))


@route("GET", r"(?i)/me")
def get_me(ctx: Ctx) -> Response:
    """GET /me."""
    row = me_row(ctx)
    require_permission(ctx.principal, READ_ME)
    return _entity(ctx, row)


# -- writes ---------------------------------------------------------------------------------


def _apply_patch(ctx: Ctx, row: Mapping[str, Any], patch: UserPatch) -> None:
    user_id = str(row["id"])
    updates = {WRITABLE[name]: value for name, value in patch.columns.items()}
    if "upn" in updates:
        other = ctx.app.store.user(str(updates["upn"]))
        if other is not None and other["id"] != user_id:
            msg = (
                "Another object with the same value for property userPrincipalName already exists."
            )
            raise GraphError(400, "Request_BadRequest", msg)
    if patch.account_enabled is not None:
        updates["account_enabled"] = int(patch.account_enabled)
    if patch.password is not None:
        updates["force_change"] = int(patch.password.force)
        updates["force_change_mfa"] = int(patch.password.force_mfa)
        if patch.password.password is not None:
            updates["last_password_change"] = iso(ctx.now)
            updates["password_set"] = 1
    ctx.app.store.update_user(user_id, **updates)
    if patch.account_enabled is not None:
        ctx.record(
            user_id=user_id,
            effect="account_enabled" if patch.account_enabled else "account_disabled",
            detail={
                "accountEnabled": patch.account_enabled,
                "changed": bool(row["account_enabled"]) != patch.account_enabled,
            },
        )
    if patch.password is not None:
        ctx.record(
            user_id=user_id,
            effect="password_reset",
            detail={
                "via": "passwordProfile",
                "passwordSet": patch.password.password is not None,
                "forceChangePasswordNextSignIn": patch.password.force,
                "forceChangePasswordNextSignInWithMfa": patch.password.force_mfa,
            },
        )


@route("PATCH", r"(?i)/users/(?P<key>[^/]+)")
def patch_user(ctx: Ctx, key: str) -> Response:
    """PATCH /users/{id | userPrincipalName}: 204."""
    patch = parse_patch(ctx.req.json())
    if patch.password is not None:
        require_permission(ctx.principal, WRITE_PASSWORD_PROFILE)
    if patch.account_enabled is not None:
        require_permission(ctx.principal, WRITE_ACCOUNT_ENABLED)
    if patch.columns or (patch.password is None and patch.account_enabled is None):
        require_permission(ctx.principal, WRITE_USER)
    row = user_or_404(ctx, key)
    if patch.password is not None or patch.account_enabled is not None:
        require_sensitive(ctx, row)
    on_prem = set(patch.columns) - CLOUD_MASTERED
    if row["synced"] and (
        on_prem or patch.password is not None or patch.account_enabled is not None
    ):
        raise GraphError(400, "Request_BadRequest", ON_PREM_MESSAGE)
    new_password = patch.password.password if patch.password is not None else None
    if new_password is not None and not password_is_complex(new_password):
        raise GraphError(400, "Request_BadRequest", COMPLEXITY_MESSAGE)
    _apply_patch(ctx, row, patch)
    return empty_response(204)


# -- revokeSignInSessions -------------------------------------------------------------------


def _revoke(ctx: Ctx, row: Mapping[str, Any]) -> Response:
    previous = visible_sessions(row, ctx.now)
    visible_at = ctx.now + dt.timedelta(seconds=ctx.app.consistency_delay_s)
    valid_from = iso(ctx.now)
    ctx.app.store.update_user(
        str(row["id"]),
        sessions_valid_from=valid_from,
        sessions_prev=previous,
        sessions_visible_at=visible_at.astimezone(dt.UTC).isoformat(),
    )
    # Graph answers 200 for guests too but does not revoke their (home-tenant) B2B sessions:
    # the effect is recorded with guest=true so tests can tell it changed nothing real.
    ctx.record(
        user_id=str(row["id"]),
        effect="sessions_revoked",
        detail={
            "guest": row["user_type"] == "Guest",
            "signInSessionsValidFromDateTime": valid_from,
        },
    )
    body = {"@odata.context": ctx.context_url("Edm.Boolean"), "value": True}
    return json_response(200, body)


@route("POST", r"(?i)/users/(?P<key>[^/]+)/revokeSignInSessions")
def revoke_sessions(ctx: Ctx, key: str) -> Response:
    """POST /users/{key}/revokeSignInSessions: 200 {value: true} (the known issue)."""
    require_permission(ctx.principal, REVOKE_SESSIONS)
    row = user_or_404(ctx, key)
    require_sensitive(ctx, row)
    return _revoke(ctx, row)


@route("POST", r"(?i)/me/revokeSignInSessions")
def revoke_my_sessions(ctx: Ctx) -> Response:
    """POST /me/revokeSignInSessions."""
    row = me_row(ctx)
    require_permission(ctx.principal, REVOKE_SESSIONS | {"User.ReadWrite"})
    return _revoke(ctx, row)
