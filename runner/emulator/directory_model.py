"""Directory objects of the emulated Graph besides users: groups, service principals,
directory roles, role definitions, the organization and its domains.

Entity types with their `$filter` capabilities, shaping of tenant rows into Graph's JSON,
resolution of (id, type) references into typed objects for the polymorphic collections
(`memberOf`, `members`, role members), OData casts, and the in-memory paging of small
collections. Routes are in `graph_directory` and `graph_roles`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from runner.emulator import odata_query
from runner.emulator.authz import READ_GROUP_MEMBERS, READ_USERS
from runner.emulator.odata import EntityType, Prop, prop
from runner.emulator.odata_query import ListQuery
from runner.emulator.routing import Ctx
from runner.emulator.users_model import DEFAULT_SELECT, USER, collection_response, user_object
from runner.emulator.wire import GraphError, Response, json_response

_TEXT, _TEXT_ADV = "eq in ge le startsWith", "ne not null"

GROUP = EntityType(
    name="microsoft.graph.group",
    resource="Group",
    props=(
        prop("id", default="eq in", advanced="ne not"),
        prop("deletedDateTime", "Edm.DateTimeOffset"),
        prop("classification", default="eq in ge le startsWith", advanced="ne not null"),
        prop("createdDateTime", "Edm.DateTimeOffset"),
        prop("creationOptions", "Collection(Edm.String)"),
        prop("description", default=_TEXT, advanced=_TEXT_ADV),
        prop("displayName", default=_TEXT, advanced=_TEXT_ADV, sort="default"),
        prop("expirationDateTime", "Edm.DateTimeOffset"),
        prop("groupTypes", "Collection(Edm.String)"),
        prop("isAssignableToRole", "Edm.Boolean", default="eq in", advanced="ne not"),
        prop("mail", default=_TEXT, advanced="ne not null endsWith"),
        prop("mailEnabled", "Edm.Boolean", default="eq in", advanced="ne not"),
        prop("mailNickname", default=_TEXT, advanced=_TEXT_ADV),
        prop("membershipRule", default="eq in startsWith", advanced=_TEXT_ADV),
        prop("onPremisesSyncEnabled", "Edm.Boolean", default="eq in null", advanced="ne not"),
        prop("proxyAddresses", "Collection(Edm.String)"),
        prop("renewedDateTime", "Edm.DateTimeOffset"),
        prop("securityEnabled", "Edm.Boolean", default="eq in", advanced="ne not"),
        prop("visibility"),
    ),
)
SERVICE_PRINCIPAL = EntityType(
    name="microsoft.graph.servicePrincipal",
    resource="ServicePrincipal",
    props=(
        prop("id", default="eq in", advanced="ne not"),
        prop("deletedDateTime", "Edm.DateTimeOffset"),
        prop("accountEnabled", "Edm.Boolean", default="eq in", advanced="ne not"),
        prop("appDisplayName", default="eq in startsWith", advanced=_TEXT_ADV),
        prop("appId", default="eq in", advanced="ne not"),
        prop("appOwnerOrganizationId", default="eq in", advanced="ne not"),
        prop("appRoleAssignmentRequired", "Edm.Boolean", default="eq in", advanced="ne not"),
        prop("displayName", default="eq in startsWith", advanced=_TEXT_ADV, sort="advanced"),
        prop("servicePrincipalNames", "Collection(Edm.String)"),
        prop("servicePrincipalType", default="eq in", advanced="ne not"),
        prop("signInAudience", default="eq in", advanced="ne not"),
        prop("tags", "Collection(Edm.String)"),
    ),
)
DIRECTORY_ROLE = EntityType(
    name="microsoft.graph.directoryRole",
    resource="DirectoryRole",
    props=(
        prop("id", default="eq in", advanced="ne not"),
        prop("deletedDateTime", "Edm.DateTimeOffset"),
        prop("description"),
        prop("displayName", default="eq in startsWith", advanced=_TEXT_ADV),
        prop("roleTemplateId", default="eq in", advanced="ne not"),
    ),
)
_ALL_OPS = "eq ne not in startsWith ge le null"
ROLE_DEFINITION = EntityType(
    name="microsoft.graph.unifiedRoleDefinition",
    resource="UnifiedRoleDefinition",
    directory=False,
    props=(
        prop("id", default=_ALL_OPS),
        prop("description", default=_ALL_OPS),
        prop("displayName", default=_ALL_OPS, sort="default"),
        prop("isBuiltIn", "Edm.Boolean", default=_ALL_OPS),
        prop("isEnabled", "Edm.Boolean", default=_ALL_OPS),
        prop("isPrivileged", "Edm.Boolean", default=_ALL_OPS),
        prop("resourceScopes", "Collection(Edm.String)"),
        prop("rolePermissions", "Collection(microsoft.graph.unifiedRolePermission)"),
        prop("templateId", default=_ALL_OPS),
        prop("version", default=_ALL_OPS),
    ),
)


def _union(name: str, types: Iterable[EntityType]) -> EntityType:
    props: dict[str, Prop] = {}
    for entity in types:
        for item in entity.props:
            props.setdefault(item.name.lower(), item)
    return EntityType(name=name, resource="DirectoryObject", props=tuple(props.values()))


DIRECTORY_OBJECT = _union(
    "microsoft.graph.directoryObject", (USER, GROUP, SERVICE_PRINCIPAL, DIRECTORY_ROLE)
)
GROUP_DEFAULT = tuple(p.name for p in GROUP.props)
SP_DEFAULT = tuple(p.name for p in SERVICE_PRINCIPAL.props)
ROLE_DEFAULT = tuple(p.name for p in DIRECTORY_ROLE.props)
TYPES = {
    "user": (USER, DEFAULT_SELECT, "users"),
    "group": (GROUP, GROUP_DEFAULT, "groups"),
    "servicePrincipal": (SERVICE_PRINCIPAL, SP_DEFAULT, "servicePrincipals"),
    "directoryRole": (DIRECTORY_ROLE, ROLE_DEFAULT, "directoryRoles"),
}
READ_MEMBERSHIPS = READ_USERS | READ_GROUP_MEMBERS
REFERENCE_FILTER = (
    "The specified filter to the reference property query is currently not supported."
)
PARAMS = 900  # SQLite host parameters per IN (...) chunk


# -- shaping --------------------------------------------------------------------------------


def group_object(row: Mapping[str, Any]) -> dict[str, Any]:
    """A group row, Graph-shaped."""
    return {
        "id": row["id"],
        "deletedDateTime": None,
        "classification": None,
        "createdDateTime": row["created"],
        "creationOptions": [],
        "description": row["description"],
        "displayName": row["display_name"],
        "expirationDateTime": None,
        "groupTypes": [],
        "isAssignableToRole": bool(row["is_assignable_to_role"]),
        "mail": None,
        "mailEnabled": False,
        "mailNickname": row["mail_nickname"],
        "membershipRule": None,
        "onPremisesSyncEnabled": None,
        "proxyAddresses": [],
        "renewedDateTime": row["created"],
        "securityEnabled": bool(row["security_enabled"]),
        "visibility": None,
    }


def sp_object(row: Mapping[str, Any], tenant_id: str) -> dict[str, Any]:
    """A service principal (from an app registration row), Graph-shaped."""
    managed = row["kind"] == "managed_identity"
    return {
        "id": row["sp_id"],
        "deletedDateTime": None,
        "accountEnabled": True,
        "appDisplayName": row["name"],
        "appId": row["client_id"],
        "appOwnerOrganizationId": None if managed else tenant_id,
        "appRoleAssignmentRequired": False,
        "displayName": row["name"],
        "servicePrincipalNames": [row["client_id"]],
        "servicePrincipalType": "ManagedIdentity" if managed else "Application",
        "signInAudience": None if managed else "AzureADMyOrg",
        "tags": [] if managed else ["WindowsAzureActiveDirectoryIntegratedApp"],
    }


def role_object(row: Mapping[str, Any]) -> dict[str, Any]:
    """An activated directory role, Graph-shaped."""
    return {
        "id": row["id"],
        "deletedDateTime": None,
        "description": row["description"],
        "displayName": row["display_name"],
        "roleTemplateId": row["template_id"],
    }


def _rows_by_id(ctx: Ctx, sql: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), PARAMS):
        chunk = list(ids[start : start + PARAMS])
        marks = ", ".join("?" for _ in chunk)
        for row in ctx.app.store.query(sql.format(marks=marks), chunk):
            found[str(row["_key"])] = row
    return found


def resolve(ctx: Ctx, refs: Sequence[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    """(type, full Graph object) for (id, type) references, in the given order."""
    by_type: dict[str, list[str]] = {}
    for object_id, kind in refs:
        by_type.setdefault(kind, []).append(object_id)
    sql = {
        "user": "SELECT *, id AS _key FROM users WHERE id IN ({marks})",
        "group": "SELECT *, id AS _key FROM groups_ WHERE id IN ({marks})",
        "servicePrincipal": "SELECT *, sp_id AS _key FROM apps WHERE sp_id IN ({marks})",
        "directoryRole": "SELECT *, id AS _key FROM roles WHERE id IN ({marks})",
    }
    shape: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
        "user": lambda row: user_object(row, ctx.now),
        "group": group_object,
        "servicePrincipal": lambda row: sp_object(row, ctx.app.tenant_id),
        "directoryRole": role_object,
    }
    rows = {kind: _rows_by_id(ctx, sql[kind], ids) for kind, ids in by_type.items() if kind in sql}
    out = []
    for object_id, kind in refs:
        row = rows.get(kind, {}).get(object_id)
        if row is not None:
            out.append((kind, shape[kind](row)))
    return out


def typed(kind: str, obj: Mapping[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
    """An item of a polymorphic collection: `@odata.type`, then its properties."""
    names = select if select is not None else TYPES[kind][1]
    return {"@odata.type": f"#microsoft.graph.{kind}", **odata_query.project(obj, names)}


# -- casts ----------------------------------------------------------------------------------

CAST = r"(?:/(?P<cast>microsoft\.graph\.[A-Za-z]+))?"
MEMBER_CASTS = {"user", "group", "servicePrincipal", "device", "orgContact"}
MEMBER_OF_CASTS = {"group", "directoryRole", "administrativeUnit"}


def resolve_cast(cast: str | None, allowed: set[str]) -> tuple[str | None, EntityType, str]:
    """The cast's type name, its entity type and `@odata.context` collection name."""
    if cast is None:
        return None, DIRECTORY_OBJECT, "directoryObjects"
    kind = cast.removeprefix("microsoft.graph.")
    by_lower = {name.lower(): name for name in allowed}
    if kind.lower() not in by_lower:
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{cast}'.")
    kind = by_lower[kind.lower()]
    entity, _, collection = TYPES.get(kind, (DIRECTORY_OBJECT, (), f"{kind}s"))
    return kind, entity, collection


def relation_query(ctx: Ctx, entity: EntityType) -> ListQuery:
    """List options of a relationship: `$filter`/`$search` only in advanced queries."""
    level = ctx.req.header("ConsistencyLevel")
    query = ctx.req.query
    options = {k.lower() for k in query}
    advanced = (level or "").strip().lower() == "eventual" and str(
        query.get("$count", "")
    ).lower() == "true"
    if "$filter" in options and not advanced:
        raise GraphError(400, "Request_UnsupportedQuery", REFERENCE_FILTER)
    return odata_query.list_query(query, level, entity)


def paged_response(
    ctx: Ctx,
    objects: list[tuple[str, dict[str, Any]]],
    q: ListQuery,
    fragment: str,
    *,
    odata_type: bool = True,
) -> Response:
    """Filter, sort (by id unless `$orderby`), page and answer a small in-memory collection.
    Items carry `@odata.type` in polymorphic collections, not in lists of the declared type."""
    kept = sorted(
        ((kind, obj) for kind, obj in objects if odata_query.accepts(q, obj)),
        key=lambda pair: str(pair[1]["id"]),
    )
    if q.orderby is not None:
        name, reverse = q.orderby.prop.name, q.orderby.descending
        kept.sort(key=lambda pair: str(pair[1].get(name) or "").casefold(), reverse=reverse)
    keys = [_sort_key(obj, q) for _, obj in kept]
    start = 0
    if q.after is not None:
        start = next((i for i, key in enumerate(keys) if _after(key, q.after, q)), len(kept))
    page = kept[start : start + q.top]
    more = start + q.top < len(kept)
    items = [typed(kind, obj, q.select) for kind, obj in page]
    if not odata_type:
        for item in items:
            del item["@odata.type"]
    context = odata_query.context_with_select(fragment, q.select)
    return collection_response(
        ctx,
        context,
        items,
        count=len(kept) if q.count else None,
        next_key=keys[start + q.top - 1] if more else None,
    )


def _sort_key(obj: Mapping[str, Any], q: ListQuery) -> tuple[str, ...]:
    if q.orderby is None:
        return (str(obj["id"]),)
    return (str(obj.get(q.orderby.prop.name) or "").casefold(), str(obj["id"]))


def _after(key: tuple[str, ...], after: tuple[str, ...], q: ListQuery) -> bool:
    if len(after) != len(key):
        raise odata_query.expired_token()
    if q.orderby is not None and q.orderby.descending:
        return (key[0] < after[0]) or (key[0] == after[0] and key[1:] > after[1:])
    return key > after


def entity_response(
    ctx: Ctx, collection: str, obj: Mapping[str, Any], entity: EntityType, default: Sequence[str]
) -> Response:
    """One entity with its default properties or `$select`, and its `@odata.context`."""
    select = odata_query.parse_select(ctx.req.query.get("$select"), entity)
    context = ctx.context_url(odata_query.context_with_select(collection, select) + "/$entity")
    return json_response(
        200, {"@odata.context": context, **odata_query.project(obj, select or default)}
    )


def definition_object(row: Mapping[str, Any]) -> dict[str, Any]:
    """A built-in role's unifiedRoleDefinition (`id` is the role template id)."""
    return {
        "id": row["template_id"],
        "description": row["description"],
        "displayName": row["display_name"],
        "isBuiltIn": bool(row["is_builtin"]),
        "isEnabled": True,
        "isPrivileged": bool(row["is_privileged"]),
        "resourceScopes": ["/"],
        "rolePermissions": [],
        "templateId": row["template_id"],
        "version": "1",
    }


DEFINITION_DEFAULT = tuple(p.name for p in ROLE_DEFINITION.props)


def tenant_domains(ctx: Ctx) -> list[tuple[str, bool]]:
    """(name, is initial) of the tenant's verified domains; the custom domain is default."""
    store = ctx.app.store
    return [(store.meta("domain") or "", False), (store.meta("initial_domain") or "", True)]


def organization_object(ctx: Ctx) -> dict[str, Any]:
    """The tenant's organization object."""
    store = ctx.app.store
    synced = store.query_one("SELECT 1 FROM users WHERE synced = 1 LIMIT 1") is not None
    return {
        "id": ctx.app.tenant_id,
        "deletedDateTime": None,
        "businessPhones": [],
        "city": None,
        "country": None,
        "countryLetterCode": "US",
        "createdDateTime": store.meta("created"),
        "displayName": store.meta("display_name"),
        "onPremisesSyncEnabled": True if synced else None,
        "preferredLanguage": "en",
        "tenantType": "AAD",
        "verifiedDomains": [
            {
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": not initial,
                "isInitial": initial,
                "name": name,
                "type": "Managed",
            }
            for name, initial in tenant_domains(ctx)
        ],
    }


def domain_object(name: str, initial: bool) -> dict[str, Any]:
    """A verified, managed domain of the tenant."""
    return {
        "authenticationType": "Managed",
        "availabilityStatus": None,
        "id": name,
        "isAdminManaged": True,
        "isDefault": not initial,
        "isInitial": initial,
        "isRoot": True,
        "isVerified": True,
        "passwordNotificationWindowInDays": 14,
        "passwordValidityPeriodInDays": 2147483647,
        "state": None,
        "supportedServices": ["Email", "OfficeCommunicationsOnline"],
    }
