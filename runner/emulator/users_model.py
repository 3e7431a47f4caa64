"""The user resource of the emulated Graph: properties, shaping, PATCH validation, authz.

`USER` lists the properties the runner uses with their `$filter` capabilities
(graph-reference §8, Microsoft's advanced-query tables); `user_object` shapes a tenant row
into Graph's JSON (`onPremisesSyncEnabled` is null for never-synced users, and
`signInSessionsValidFromDateTime` shows a revocation only after the consistency delay);
`parse_patch` validates a PATCH body as Graph's OData layer does; `require_sensitive` applies
the reset matrix of §11 for the sensitive writes. Routes are in `graph_users`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.emulator import odata_query
from runner.emulator.authz import READ_USERS, require_role_over
from runner.emulator.lookup import not_found
from runner.emulator.odata import EntityType, prop
from runner.emulator.routing import Ctx
from runner.emulator.wire import GraphError, Response, json_response

_ADV = "eq ne not ge le in startsWith null"  # served only in advanced queries
USER = EntityType(
    name="microsoft.graph.user",
    resource="User",
    props=(
        prop("businessPhones", "Collection(Edm.String)"),
        prop(
            "displayName",
            default="eq in startsWith",
            advanced="ne not null",
            sort="default",
            column="display_name",
        ),
        prop(
            "givenName", default="eq in ge le startsWith", advanced="ne null", column="given_name"
        ),
        prop("jobTitle", default="eq in ge le startsWith", advanced="ne null", column="job_title"),
        prop(
            "mail", default="eq in ge le startsWith", advanced="ne not endsWith null", column="mail"
        ),
        prop("mobilePhone", advanced=_ADV, column="mobile_phone"),
        prop("officeLocation", advanced=_ADV, column="office_location"),
        prop("preferredLanguage", advanced=_ADV),
        prop("surname", default="eq in ge le startsWith", advanced="ne null", column="surname"),
        prop(
            "userPrincipalName",
            default="eq in ge le startsWith",
            advanced="ne not endsWith",
            sort="default",
            column="upn",
        ),
        prop("id", default="eq in", advanced="ne not", column="id", lower_key=True),
        prop(
            "accountEnabled",
            "Edm.Boolean",
            default="eq in",
            advanced="ne not ge le",
            column="account_enabled",
        ),
        prop("city", default="eq in ge startsWith", advanced="ne not null", column="city"),
        prop("companyName", advanced=_ADV, column="company_name"),
        prop("country", default="eq in ge le startsWith", advanced="ne not null", column="country"),
        prop(
            "createdDateTime",
            "Edm.DateTimeOffset",
            default="eq ge le",
            advanced="ne not in",
            sort="advanced",
            column="created",
        ),
        prop(
            "department",
            default="eq in ge le startsWith",
            advanced="ne not null",
            column="department",
        ),
        prop("employeeId", default="eq in startsWith", advanced="ne le null", column="employee_id"),
        prop("lastPasswordChangeDateTime", "Edm.DateTimeOffset"),
        prop("onPremisesSyncEnabled", "Edm.Boolean", default="eq in null", advanced="ne not"),
        prop("signInSessionsValidFromDateTime", "Edm.DateTimeOffset"),
        prop(
            "usageLocation",
            default="eq in ge le startsWith",
            advanced="ne not",
            column="usage_location",
        ),
        prop("userType", default="eq in", advanced="ne not null", column="user_type"),
    ),
)
# Graph's default property set (user-get.md), in the order Graph writes it.
DEFAULT_SELECT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
READ_ME = READ_USERS | {"User.Read", "User.ReadWrite"}
# A target in a role-assignable group sits in the matrix's top row (PAA / GA only).
ROLE_ASSIGNABLE_MEMBER = "member-of-role-assignable-group"
ON_PREM_MESSAGE = (
    "Unable to update the specified properties for on-premises mastered Directory Sync objects "
    "or objects currently undergoing migration."
)
COMPLEXITY_MESSAGE = (
    "The specified password does not comply with password complexity requirements. "
    "Please provide a different password."
)
_EDM_BOOLEAN, _EDM_STRING = "Edm.Boolean", "Edm.String"
_USER_TYPE, _PASSWORD_TYPE = "microsoft.graph.user", "microsoft.graph.passwordProfile"


# -- shaping --------------------------------------------------------------------------------


def visible_sessions(row: Mapping[str, Any], now: dt.datetime) -> str:
    """`signInSessionsValidFromDateTime` as readers see it: a revocation shows up only after
    the consistency delay (`sessions_prev` until `sessions_visible_at`)."""
    visible_at, previous = row.get("sessions_visible_at"), row.get("sessions_prev")
    if visible_at and previous and now < dt.datetime.fromisoformat(str(visible_at)):
        return str(previous)
    return str(row["sessions_valid_from"])


def user_object(row: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """Every emulated property of a user row, Graph-shaped."""
    return {
        "businessPhones": [],
        "displayName": row["display_name"],
        "givenName": row["given_name"],
        "jobTitle": row["job_title"],
        "mail": row["mail"],
        "mobilePhone": row["mobile_phone"],
        "officeLocation": row["office_location"],
        "preferredLanguage": None,
        "surname": row["surname"],
        "userPrincipalName": row["upn"],
        "id": row["id"],
        "accountEnabled": bool(row["account_enabled"]),
        "city": row["city"],
        "companyName": row["company_name"],
        "country": row["country"],
        "createdDateTime": row["created"],
        "department": row["department"],
        "employeeId": row["employee_id"],
        "lastPasswordChangeDateTime": row["last_password_change"],
        # true when synced; null when the object has never been synced (Graph's default)
        "onPremisesSyncEnabled": True if row["synced"] else None,
        "signInSessionsValidFromDateTime": visible_sessions(row, now),
        "usageLocation": row["usage_location"],
        "userType": row["user_type"],
    }


def user_json(
    row: Mapping[str, Any], now: dt.datetime, select: tuple[str, ...] | None
) -> dict[str, Any]:
    """A user with the default property set or the `$select`ed properties."""
    return odata_query.project(user_object(row, now), select or DEFAULT_SELECT)


def collection_response(
    ctx: Ctx,
    fragment: str,
    items: list[dict[str, Any]],
    *,
    count: int | None = None,
    next_key: tuple[str, ...] | None = None,
) -> Response:
    """A Graph collection page: context, count (page 1 only), nextLink, value."""
    body: dict[str, Any] = {"@odata.context": ctx.context_url(fragment)}
    if count is not None:
        body["@odata.count"] = count
    if next_key is not None:
        token = odata_query.encode_skiptoken(next_key)
        path = ctx.path
        if ctx.literal_key:  # keep the ('key') form: a `$` key is refused in a plain segment
            collection, _, rest = path.lstrip("/").partition("/")
            key, _, tail = rest.partition("/")
            path = f"/{collection}('{key.replace(chr(39), chr(39) * 2)}')" + (
                f"/{tail}" if tail else ""
            )
        body["@odata.nextLink"] = odata_query.next_link(
            ctx.version_root, path, ctx.req.query, token
        )
    body["value"] = items
    return json_response(200, body)


def me_row(ctx: Ctx) -> dict[str, Any]:
    """The signed-in user of a delegated token; 400 for app-only tokens, as Graph answers."""
    if ctx.principal.is_app:
        raise GraphError(
            400, "BadRequest", "/me request is only valid with delegated authentication flow."
        )
    row = ctx.app.store.user(ctx.principal.object_id)
    if row is None:
        raise not_found(ctx.principal.object_id)
    return row


def target_roles(ctx: Ctx, user_id: str) -> frozenset[str]:
    """The target's side of the reset matrix: its roles, plus role-assignable membership."""
    roles = set(ctx.app.roles_of(user_id))
    in_assignable = ctx.app.store.query_one(
        "SELECT 1 FROM group_members m JOIN groups_ g ON g.id = m.group_id "
        "WHERE m.member_id = ? AND g.is_assignable_to_role = 1 LIMIT 1",
        (user_id,),
    )
    if in_assignable is not None:
        roles.add(ROLE_ASSIGNABLE_MEMBER)
    return frozenset(roles)


def require_sensitive(ctx: Ctx, row: Mapping[str, Any]) -> None:
    """403 unless the caller's roles cover the target's (self-service is not a sensitive act)."""
    if not ctx.principal.is_app and ctx.principal.object_id == row["id"]:
        return
    require_role_over(ctx.actor_roles(), target_roles(ctx, str(row["id"])))


# -- writes ---------------------------------------------------------------------------------

WRITABLE = {
    "displayName": "display_name",
    "givenName": "given_name",
    "surname": "surname",
    "jobTitle": "job_title",
    "department": "department",
    "companyName": "company_name",
    "officeLocation": "office_location",
    "city": "city",
    "country": "country",
    "usageLocation": "usage_location",
    "employeeId": "employee_id",
    "mobilePhone": "mobile_phone",
    "mail": "mail",
    "userType": "user_type",
    "userPrincipalName": "upn",
}
CLOUD_MASTERED = {"usageLocation"}  # writable even on synced users
_NOT_NULLABLE = {"displayName", "userPrincipalName", "userType"}
_PASSWORD_FIELDS = {
    "forceChangePasswordNextSignIn",
    "forceChangePasswordNextSignInWithMfa",
    "password",
}


def _no_such_property(name: str, type_name: str) -> GraphError:
    msg = (
        f"Property '{name}' does not exist on type '{type_name}'. Make sure to only use property "
        "names that are defined by the type or mark the type as open type."
    )
    return GraphError(400, "BadRequest", msg)


def _not_convertible(edm: str) -> GraphError:
    # The value itself is never echoed: it may be a password.
    msg = (
        f"Cannot convert a primitive value to the expected type '{edm}'. "
        "See the inner exception for more details."
    )
    return GraphError(400, "BadRequest", msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordChange:
    """A `passwordProfile` write. The password is kept out of repr and out of the ledger."""

    force: bool
    force_mfa: bool
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserPatch:
    """A validated PATCH body."""

    columns: dict[str, Any]
    account_enabled: bool | None = None
    password: PasswordChange | None = None


def password_is_complex(password: str) -> bool:
    """Entra's rule: 8-256 printable ASCII characters from at least 3 of 4 classes."""
    if not 8 <= len(password) <= 256 or any(not " " <= ch <= "~" for ch in password):
        return False
    classes = (
        any(ch.islower() for ch in password),
        any(ch.isupper() for ch in password),
        any(ch.isdigit() for ch in password),
        any(not ch.isalnum() for ch in password),
    )
    return sum(classes) >= 3


def _parse_password(value: Any) -> PasswordChange:
    if not isinstance(value, dict):
        raise _not_convertible(_PASSWORD_TYPE)
    for name in value:
        if name not in _PASSWORD_FIELDS and not name.startswith("@"):
            raise _no_such_property(name, "microsoft.graph.passwordProfile")
    flags = []
    for name in ("forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa"):
        flag = value.get(name, False)
        if not isinstance(flag, bool):
            raise _not_convertible(_EDM_BOOLEAN)
        flags.append(flag)
    password = value.get("password")
    if password is not None and not isinstance(password, str):
        raise _not_convertible(_EDM_STRING)
    return PasswordChange(force=flags[0], force_mfa=flags[1], password=password)


def parse_patch(body: Any) -> UserPatch:
    """Validate a PATCH body as Graph's OData layer does (400 before any permission check)."""
    if body is None:
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    if not isinstance(body, dict):
        raise _not_convertible(_USER_TYPE)
    columns: dict[str, Any] = {}
    account_enabled: bool | None = None
    password: PasswordChange | None = None
    for raw_name, value in body.items():
        if raw_name.startswith("@"):
            continue
        known = USER.find(raw_name)
        name = known.name if known is not None else raw_name
        if name == "passwordProfile" or raw_name.lower() == "passwordprofile":
            password = _parse_password(value)
        elif name == "accountEnabled":
            if not isinstance(value, bool):
                raise _not_convertible(_EDM_BOOLEAN)
            account_enabled = value
        elif name in WRITABLE:
            if value is not None and not isinstance(value, str):
                raise _not_convertible(_EDM_STRING)
            if (
                (value is None and name in _NOT_NULLABLE)
                or (name == "userType" and value not in {"Member", "Guest"})
                or (name == "userPrincipalName" and "@" not in str(value))
            ):
                msg = f"Invalid value specified for property '{name}' of resource 'User'."
                raise GraphError(400, "Request_BadRequest", msg)
            columns[name] = value
        elif known is not None:
            msg = f"Property '{name}' is read-only and cannot be set."
            raise GraphError(400, "Request_BadRequest", msg)
        else:
            raise _no_such_property(raw_name, "microsoft.graph.user")
    return UserPatch(columns=columns, account_enabled=account_enabled, password=password)
