"""Graph routes: directory roles, role definitions, service principals, organization.

    GET /directoryRoles                 activated roles, no paging
    GET /directoryRoles/{id}   /directoryRoles(roleTemplateId='…')   [/members]
    GET /roleManagement/directory/roleDefinitions[/{id}]    $filter=isPrivileged eq true
    GET /servicePrincipals              $filter=appId eq '…'
    GET /servicePrincipals/{id}   /servicePrincipals(appId='…')
    GET /organization[/{id}]   GET /domains[/{id}]

Role definitions use the role template id as `id`, as Graph does for built-in roles.
"""

from __future__ import annotations

from typing import Any

from runner.emulator import odata_query
from runner.emulator.authz import (
    READ_APPLICATIONS,
    READ_ORGANIZATION,
    READ_ROLES,
    require_permission,
)
from runner.emulator.directory_model import (
    CAST,
    DEFINITION_DEFAULT,
    DIRECTORY_ROLE,
    MEMBER_CASTS,
    ROLE_DEFAULT,
    ROLE_DEFINITION,
    SERVICE_PRINCIPAL,
    SP_DEFAULT,
    definition_object,
    domain_object,
    entity_response,
    organization_object,
    paged_response,
    relation_query,
    resolve,
    resolve_cast,
    role_object,
    sp_object,
    tenant_domains,
)
from runner.emulator.lookup import not_found
from runner.emulator.routing import Ctx, route
from runner.emulator.users_model import collection_response
from runner.emulator.wire import Response, json_response

# -- directory roles and role definitions ---------------------------------------------------


def _role_row(
    ctx: Ctx, *, role_id: str | None = None, template: str | None = None
) -> dict[str, Any]:
    key = role_id if role_id is not None else str(template)
    column = "id" if role_id is not None else "template_id"
    row = ctx.app.store.query_one(f"SELECT * FROM roles WHERE {column} = ?", (key.lower(),))
    if row is None:
        raise not_found(key)
    return row


@route("GET", r"(?i)/directoryRoles")
def list_directory_roles(ctx: Ctx) -> Response:
    """GET /directoryRoles: the activated roles, in one page (this list does not page)."""
    require_permission(ctx.principal, READ_ROLES)
    q = odata_query.list_query(ctx.req.query, ctx.req.header("ConsistencyLevel"), DIRECTORY_ROLE)
    objects = [role_object(row) for row in ctx.app.store.query("SELECT * FROM roles ORDER BY id")]
    kept = [
        odata_query.project(obj, q.select or ROLE_DEFAULT)
        for obj in objects
        if odata_query.accepts(q, obj)
    ]
    context = odata_query.context_with_select("directoryRoles", q.select)
    return collection_response(ctx, context, kept, count=len(kept) if q.count else None)


_ROLE_KEY = r"(?:/(?P<role_id>[^/()]+)|\(roleTemplateId='(?P<template>[^']*)'\))"


@route("GET", rf"(?i)/directoryRoles{_ROLE_KEY}")
def get_directory_role(
    ctx: Ctx, role_id: str | None = None, template: str | None = None
) -> Response:
    """GET /directoryRoles/{id} and /directoryRoles(roleTemplateId='…')."""
    require_permission(ctx.principal, READ_ROLES)
    row = _role_row(ctx, role_id=role_id, template=template)
    return entity_response(ctx, "directoryRoles", role_object(row), DIRECTORY_ROLE, ROLE_DEFAULT)


@route("GET", rf"(?i)/directoryRoles{_ROLE_KEY}/members{CAST}")
def directory_role_members(
    ctx: Ctx, role_id: str | None = None, template: str | None = None, cast: str | None = None
) -> Response:
    """GET /directoryRoles/{id}/members: users, service principals (and role groups)."""
    require_permission(ctx.principal, READ_ROLES)
    kind, entity, collection = resolve_cast(cast, MEMBER_CASTS)
    q = relation_query(ctx, entity)
    role = _role_row(ctx, role_id=role_id, template=template)
    rows = ctx.app.store.query(
        "SELECT principal_id, principal_type FROM role_members WHERE role_id = ?", (role["id"],)
    )
    refs = [(str(r["principal_id"]), str(r["principal_type"])) for r in rows]
    if kind is not None:
        refs = [ref for ref in refs if ref[1] == kind]
    return paged_response(ctx, resolve(ctx, refs), q, collection)


@route("GET", r"(?i)/roleManagement/directory/roleDefinitions")
def list_role_definitions(ctx: Ctx) -> Response:
    """GET /roleManagement/directory/roleDefinitions (e.g. `$filter=isPrivileged eq true`)."""
    require_permission(ctx.principal, READ_ROLES)
    q = odata_query.list_query(ctx.req.query, ctx.req.header("ConsistencyLevel"), ROLE_DEFINITION)
    rows = ctx.app.store.query("SELECT * FROM roles ORDER BY display_name")
    objects = [definition_object(row) for row in rows]
    kept = [
        odata_query.project(obj, q.select or DEFINITION_DEFAULT)
        for obj in objects
        if odata_query.accepts(q, obj)
    ]
    context = odata_query.context_with_select("roleManagement/directory/roleDefinitions", q.select)
    return collection_response(ctx, context, kept, count=len(kept) if q.count else None)


@route("GET", r"(?i)/roleManagement/directory/roleDefinitions/(?P<definition_id>[^/]+)")
def get_role_definition(ctx: Ctx, definition_id: str) -> Response:
    """GET /roleManagement/directory/roleDefinitions/{id}."""
    require_permission(ctx.principal, READ_ROLES)
    row = _role_row(ctx, template=definition_id)
    return entity_response(
        ctx,
        "roleManagement/directory/roleDefinitions",
        definition_object(row),
        ROLE_DEFINITION,
        DEFINITION_DEFAULT,
    )


# -- service principals ---------------------------------------------------------------------


def sp_row(ctx: Ctx, *, sp_id: str | None = None, app_id: str | None = None) -> dict[str, Any]:
    """A service principal's app row by object id or by appId; 404 when absent."""
    key = sp_id if sp_id is not None else str(app_id)
    column = "sp_id" if sp_id is not None else "client_id"
    row = ctx.app.store.query_one(f"SELECT * FROM apps WHERE {column} = ?", (key.lower(),))
    if row is None:
        raise not_found(key)
    return row


@route("GET", r"(?i)/servicePrincipals")
def list_service_principals(ctx: Ctx) -> Response:
    """GET /servicePrincipals (e.g. `$filter=appId eq '…'`)."""
    require_permission(ctx.principal, READ_APPLICATIONS)
    q = odata_query.list_query(ctx.req.query, ctx.req.header("ConsistencyLevel"), SERVICE_PRINCIPAL)
    objects = [
        ("servicePrincipal", sp_object(row, ctx.app.tenant_id))
        for row in ctx.app.store.query("SELECT * FROM apps")
    ]
    return paged_response(ctx, objects, q, "servicePrincipals", odata_type=False)


SP_KEY = r"(?:/(?P<sp_id>[^/()]+)|\(appId='(?P<app_id>[^']*)'\))"


@route("GET", rf"(?i)/servicePrincipals{SP_KEY}")
def get_service_principal(
    ctx: Ctx, sp_id: str | None = None, app_id: str | None = None
) -> Response:
    """GET /servicePrincipals/{id} and /servicePrincipals(appId='…')."""
    require_permission(ctx.principal, READ_APPLICATIONS)
    obj = sp_object(sp_row(ctx, sp_id=sp_id, app_id=app_id), ctx.app.tenant_id)
    return entity_response(ctx, "servicePrincipals", obj, SERVICE_PRINCIPAL, SP_DEFAULT)


# -- organization and domains ---------------------------------------------------------------


@route("GET", r"(?i)/organization(?:/(?P<org_id>[^/]+))?")
def get_organization(ctx: Ctx, org_id: str | None = None) -> Response:
    """GET /organization (a one-item collection) and /organization/{id}."""
    require_permission(ctx.principal, READ_ORGANIZATION | {"User.Read"})
    obj = organization_object(ctx)
    if org_id is None:
        return collection_response(ctx, "organization", [obj])
    if org_id.lower() != ctx.app.tenant_id.lower():
        raise not_found(org_id)
    return json_response(200, {"@odata.context": ctx.context_url("organization/$entity"), **obj})


@route("GET", r"(?i)/domains(?:/(?P<name>[^/]+))?")
def get_domains(ctx: Ctx, name: str | None = None) -> Response:
    """GET /domains and /domains/{name}."""
    require_permission(ctx.principal, READ_ORGANIZATION)
    domains = [domain_object(domain, initial) for domain, initial in tenant_domains(ctx)]
    if name is None:
        return collection_response(ctx, "domains", domains)
    for domain in domains:
        if str(domain["id"]).lower() == name.lower():
            return json_response(
                200, {"@odata.context": ctx.context_url("domains/$entity"), **domain}
            )
    raise not_found(name)
