"""Graph routes: memberships, groups and their (transitive) members.

    GET /users/{key}/memberOf | transitiveMemberOf [/microsoft.graph.group|directoryRole]
    GET /me/memberOf | transitiveMemberOf [...]
    GET /servicePrincipals/{id}/memberOf    (also (appId='…')): an app reads its own roles
    GET /groups                         $filter (displayName eq '…', startswith), $select, $top
    GET /groups/{id}
    GET /groups/{id}/members | transitiveMembers [/microsoft.graph.user|group|servicePrincipal]

Transitive expansion walks nested groups breadth-first with a visited set, so cycles are
safe. Member pages are keyed by member id (`$skiptoken` = last id served), straight from the
`group_members` primary key. Costs per graph-reference §10: members 3, transitiveMembers 5,
memberOf and transitiveMemberOf 2. Importing this module also registers `graph_roles`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runner.emulator import odata_query
from runner.emulator.authz import READ_APPLICATIONS, READ_GROUP_MEMBERS, require_permission
from runner.emulator.directory_model import (
    CAST,
    GROUP,
    GROUP_DEFAULT,
    MEMBER_CASTS,
    MEMBER_OF_CASTS,
    PARAMS,
    READ_MEMBERSHIPS,
    entity_response,
    group_object,
    paged_response,
    relation_query,
    resolve,
    resolve_cast,
    typed,
)
from runner.emulator.graph_roles import SP_KEY, sp_row
from runner.emulator.lookup import not_found, user_or_404
from runner.emulator.odata_query import ListQuery
from runner.emulator.routing import Ctx, route
from runner.emulator.users_model import READ_ME, collection_response, me_row
from runner.emulator.wire import Response

_CHUNK = 1000  # member rows per query when Python evaluates $filter / $search


# -- memberships (memberOf, transitiveMemberOf) ---------------------------------------------


def _groups_above(ctx: Ctx, object_ids: Iterable[str], transitive: bool) -> list[str]:
    """Groups the objects belong to: directly, or through nesting (cycle-safe)."""
    seen: dict[str, None] = {}
    frontier = list(object_ids)
    while frontier:
        rows = []
        for start in range(0, len(frontier), PARAMS):
            chunk = frontier[start : start + PARAMS]
            marks = ", ".join("?" for _ in chunk)
            rows += ctx.app.store.query(
                f"SELECT group_id FROM group_members WHERE member_id IN ({marks})", chunk
            )
        frontier = []
        for row in rows:
            group_id = str(row["group_id"])
            if group_id not in seen:
                seen[group_id] = None
                frontier.append(group_id)
        if not transitive:
            break
    return list(seen)


def _member_of(ctx: Ctx, object_id: str, relation: str, cast: str | None) -> Response:
    kind, entity, collection = resolve_cast(cast, MEMBER_OF_CASTS)
    q = relation_query(ctx, entity)
    transitive = relation.lower() == "transitivememberof"
    groups = _groups_above(ctx, [object_id], transitive)
    holders = [object_id, *groups] if transitive else [object_id]
    marks = ", ".join("?" for _ in holders)
    roles = ctx.app.store.query(
        f"SELECT DISTINCT role_id FROM role_members WHERE principal_id IN ({marks})", holders
    )
    refs = [(group_id, "group") for group_id in groups]
    refs += [(str(row["role_id"]), "directoryRole") for row in roles]
    if kind is not None:
        refs = [ref for ref in refs if ref[1] == kind]
    return paged_response(ctx, resolve(ctx, refs), q, collection)


_RELATION = r"/(?P<relation>memberOf|transitiveMemberOf)"


@route("GET", rf"(?i)/users/(?P<key>[^/]+){_RELATION}{CAST}", resource_units=2)
def user_member_of(ctx: Ctx, key: str, relation: str, cast: str | None = None) -> Response:
    """GET /users/{key}/memberOf | transitiveMemberOf."""
    require_permission(ctx.principal, READ_MEMBERSHIPS)
    return _member_of(ctx, str(user_or_404(ctx, key)["id"]), relation, cast)


@route("GET", rf"(?i)/me{_RELATION}{CAST}", resource_units=2)
def my_member_of(ctx: Ctx, relation: str, cast: str | None = None) -> Response:
    """GET /me/memberOf | transitiveMemberOf."""
    row = me_row(ctx)
    require_permission(ctx.principal, READ_MEMBERSHIPS | READ_ME)
    return _member_of(ctx, str(row["id"]), relation, cast)


# -- groups ---------------------------------------------------------------------------------


def _group_row(ctx: Ctx, group_id: str) -> dict[str, Any]:
    row = ctx.app.store.query_one("SELECT * FROM groups_ WHERE id = ?", (group_id.lower(),))
    if row is None:
        raise not_found(group_id)
    return row


@route("GET", r"(?i)/groups")
def list_groups(ctx: Ctx) -> Response:
    """GET /groups."""
    require_permission(ctx.principal, READ_GROUP_MEMBERS)
    q = odata_query.list_query(ctx.req.query, ctx.req.header("ConsistencyLevel"), GROUP)
    rows = ctx.app.store.query("SELECT * FROM groups_")
    objects = [("group", group_object(row)) for row in rows]
    return paged_response(ctx, objects, q, "groups", odata_type=False)


@route("GET", r"(?i)/groups/(?P<group_id>[^/]+)")
def get_group(ctx: Ctx, group_id: str) -> Response:
    """GET /groups/{id}."""
    require_permission(ctx.principal, READ_GROUP_MEMBERS)
    obj = group_object(_group_row(ctx, group_id))
    return entity_response(ctx, "groups", obj, GROUP, GROUP_DEFAULT)


def _groups_below(ctx: Ctx, group_id: str) -> list[str]:
    """The group and every group nested in it (cycle-safe)."""
    seen = {group_id: None}
    frontier = [group_id]
    while frontier:
        marks = ", ".join("?" for _ in frontier)
        rows = ctx.app.store.query(
            f"SELECT member_id FROM group_members WHERE group_id IN ({marks}) "
            "AND member_type = 'group'",
            frontier,
        )
        frontier = [str(r["member_id"]) for r in rows if str(r["member_id"]) not in seen]
        seen.update(dict.fromkeys(frontier))
    return list(seen)


def _member_refs(
    ctx: Ctx, holders: list[str], root: str, kind: str | None, after: str | None, limit: int
) -> list[tuple[str, str]]:
    """Distinct (member id, type) of the groups, by member id, after `after`."""
    marks = ", ".join("?" for _ in holders)
    where = f"group_id IN ({marks}) AND member_id != ?"
    params: list[Any] = [*holders, root]
    if kind is not None:
        where += " AND member_type = ?"
        params.append(kind)
    if after is not None:
        where += " AND member_id > ?"
        params.append(after)
    rows = ctx.app.store.query(
        f"SELECT DISTINCT member_id, member_type FROM group_members WHERE {where} "
        "ORDER BY member_id LIMIT ?",
        [*params, limit],
    )
    return [(str(row["member_id"]), str(row["member_type"])) for row in rows]


def _scan_members(
    ctx: Ctx, holders: list[str], root: str, kind: str | None, q: ListQuery, limit: int | None
) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """Members passing the query, after its page token: at most `limit`, and whether more
    remain. Without `$filter`/`$search` one indexed query serves the page."""
    python_side = q.filter is not None or q.search is not None
    if q.after is not None and len(q.after) != 1:
        raise odata_query.expired_token()
    after = q.after[0] if q.after is not None else None
    picked: list[tuple[str, dict[str, Any]]] = []
    while True:
        want = limit + 1 if limit is not None and not python_side else _CHUNK
        refs = _member_refs(ctx, holders, root, kind, after, want)
        for pair in resolve(ctx, refs):
            if not python_side or odata_query.accepts(q, pair[1]):
                picked.append(pair)
        if limit is not None and len(picked) > limit:
            return picked[:limit], True
        if len(refs) < want:
            return picked, False
        after = refs[-1][0]


def _members(ctx: Ctx, group_id: str, transitive: bool, cast: str | None) -> Response:
    kind, entity, collection = resolve_cast(cast, MEMBER_CASTS)
    q = relation_query(ctx, entity)
    root = str(_group_row(ctx, group_id)["id"])
    holders = _groups_below(ctx, root) if transitive else [root]
    if q.orderby is not None:  # sorted lists are served from memory
        unpaged = ListQuery(filter=q.filter, search=q.search)
        every = _scan_members(ctx, holders, root, kind, unpaged, None)[0]
        return paged_response(ctx, every, q, collection)
    picked, more = _scan_members(ctx, holders, root, kind, q, q.top)
    count = None
    if q.count:
        unpaged = ListQuery(filter=q.filter, search=q.search)
        count = len(_scan_members(ctx, holders, root, kind, unpaged, None)[0])
    items = [typed(k, obj, q.select) for k, obj in picked]
    context = odata_query.context_with_select(collection, q.select)
    next_key = (str(picked[-1][1]["id"]),) if more and picked else None
    return collection_response(ctx, context, items, count=count, next_key=next_key)


@route("GET", rf"(?i)/groups/(?P<group_id>[^/]+)/members{CAST}", resource_units=3)
def group_members(ctx: Ctx, group_id: str, cast: str | None = None) -> Response:
    """GET /groups/{id}/members."""
    require_permission(ctx.principal, READ_GROUP_MEMBERS)
    return _members(ctx, group_id, False, cast)


@route("GET", rf"(?i)/groups/(?P<group_id>[^/]+)/transitiveMembers{CAST}", resource_units=5)
def group_transitive_members(ctx: Ctx, group_id: str, cast: str | None = None) -> Response:
    """GET /groups/{id}/transitiveMembers: nested groups expanded, cycles safe."""
    require_permission(ctx.principal, READ_GROUP_MEMBERS)
    return _members(ctx, group_id, True, cast)


@route(
    "GET",
    rf"(?i)/servicePrincipals{SP_KEY}/(?P<relation>memberOf|transitiveMemberOf){CAST}",
    resource_units=2,
)
def sp_member_of(
    ctx: Ctx,
    relation: str,
    sp_id: str | None = None,
    app_id: str | None = None,
    cast: str | None = None,
) -> Response:
    """GET /servicePrincipals/{id}/memberOf: an app can read its own directory roles."""
    require_permission(ctx.principal, READ_APPLICATIONS)
    row = sp_row(ctx, sp_id=sp_id, app_id=app_id)
    return _member_of(ctx, str(row["sp_id"]), relation, cast)
