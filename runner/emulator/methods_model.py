"""A user's authentication methods as Graph shows them (graph-reference.md §6, §7).

Owns the kinds of method (store kind → collection segment, `@odata.type`, API versions),
their wire shapes, phone-number masking, Temporary Access Pass usability, the
default-method rule (which methods `userPreferredMethodForSecondaryAuthentication` points
at), and who may read or change another user's methods. The route modules
(`graph_methods`, `graph_auth_states`, `graph_operations`) build on it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.emulator import authz
from runner.emulator.routing import BETA, BOTH, Ctx
from runner.emulator.seed import PASSWORD_METHOD_ID
from runner.emulator.wire import GraphError


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodKind:
    """One type of authentication method."""

    name: str  # `methods.kind` in the store
    collection: str  # path segment under /users/{id}/authentication/
    odata_type: str
    versions: frozenset[str]


KINDS: tuple[MethodKind, ...] = (
    MethodKind(
        name="password",
        collection="passwordMethods",
        odata_type="#microsoft.graph.passwordAuthenticationMethod",
        versions=BOTH,
    ),
    MethodKind(
        name="phone",
        collection="phoneMethods",
        odata_type="#microsoft.graph.phoneAuthenticationMethod",
        versions=BOTH,
    ),
    MethodKind(
        name="email",
        collection="emailMethods",
        odata_type="#microsoft.graph.emailAuthenticationMethod",
        versions=BOTH,
    ),
    MethodKind(
        name="microsoftAuthenticator",
        collection="microsoftAuthenticatorMethods",
        odata_type="#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
        versions=BOTH,
    ),
    MethodKind(
        name="fido2",
        collection="fido2Methods",
        odata_type="#microsoft.graph.fido2AuthenticationMethod",
        versions=BOTH,
    ),
    MethodKind(
        name="softwareOath",
        collection="softwareOathMethods",
        odata_type="#microsoft.graph.softwareOathAuthenticationMethod",
        versions=BOTH,
    ),
    MethodKind(
        name="temporaryAccessPass",
        collection="temporaryAccessPassMethods",
        odata_type="#microsoft.graph.temporaryAccessPassAuthenticationMethod",
        versions=BOTH,
    ),
    MethodKind(
        name="windowsHelloForBusiness",
        collection="windowsHelloForBusinessMethods",
        odata_type="#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
        versions=BOTH,
    ),
    MethodKind(
        name="platformCredential",
        collection="platformCredentialMethods",
        odata_type="#microsoft.graph.platformCredentialAuthenticationMethod",
        versions=BOTH,
    ),
    MethodKind(
        name="hardwareOath",
        collection="hardwareOathMethods",
        odata_type="#microsoft.graph.hardwareOathAuthenticationMethod",
        versions=BETA,
    ),
)
BY_NAME = {kind.name: kind for kind in KINDS}
BY_COLLECTION = {kind.collection: kind for kind in KINDS}
V1_COLLECTIONS = tuple(kind.collection for kind in KINDS if "v1.0" in kind.versions)
BETA_ONLY_COLLECTIONS = tuple(kind.collection for kind in KINDS if "v1.0" not in kind.versions)

# Methods that can be a user's default second factor (signInPreferences); the default-method
# rule counts these as "other MFA methods".
DEFAULT_CAPABLE = frozenset({"phone", "microsoftAuthenticator", "softwareOath", "hardwareOath"})
PREFERRED_VALUES = (
    "push",
    "oath",
    "voiceMobile",
    "voiceAlternateMobile",
    "voiceOffice",
    "sms",
    "unknownFutureValue",
)
_PHONE_FOR_PREFERENCE = {
    "sms": "mobile",
    "voiceMobile": "mobile",
    "voiceAlternateMobile": "alternateMobile",
    "voiceOffice": "office",
}
# Delegated callers holding one of these see phone numbers in full; other admins (the
# Authentication Administrator, readers) see them masked.
_FULL_PHONE_READERS = frozenset({authz.PRIVILEGED_AUTH_ADMIN, authz.GLOBAL_ADMIN})
# A user acting on their own methods needs only the self-service scopes.
_SELF_READ = frozenset({"UserAuthenticationMethod.Read", "UserAuthenticationMethod.ReadWrite"})
_SELF_WRITE = frozenset({"UserAuthenticationMethod.ReadWrite"})


def precise(moment: dt.datetime) -> str:
    """A sortable UTC timestamp with microseconds, for the store's time columns."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 timestamp (`Z` or an offset; naive means UTC); ValueError if malformed."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# -- who may look and touch ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Access:
    """What an authorised caller may see of the target's methods."""

    mask_phones: bool


def authorize(
    ctx: Ctx,
    user: Mapping[str, Any],
    *,
    write: bool,
    permissions: Iterable[str],
    readers: Iterable[str] = authz.METHOD_READERS,
    self_service: bool = True,
) -> Access:
    """403 unless the caller may read (or change) this user's methods.

    App-only tokens need the permission. Delegated callers acting on another user need the
    permission and a role (`readers` to read; `METHOD_WRITERS` covering the target by the
    "who can reset" matrix to write); acting on themselves, the self-service scope suffices
    unless `self_service` is False (then they are treated like any other target).
    """
    principal = ctx.principal
    accepted = frozenset(permissions)
    if principal.is_app:
        authz.require_permission(principal, accepted)
        return Access(mask_phones=False)
    if self_service and principal.object_id == user["id"]:
        authz.require_permission(principal, accepted | (_SELF_WRITE if write else _SELF_READ))
        return Access(mask_phones=False)
    authz.require_permission(principal, accepted)
    roles = ctx.actor_roles()
    if write:
        authz.require_any_role(roles, authz.METHOD_WRITERS)
        authz.require_role_over(roles, ctx.app.roles_of(str(user["id"])))
    else:
        authz.require_any_role(roles, readers)
    return Access(mask_phones=roles.isdisjoint(_FULL_PHONE_READERS))


# -- wire shapes -----------------------------------------------------------------------------


def mask_phone(number: str) -> str:
    """A phone number as an Authentication Administrator sees it: `+1 XXXXXXXX34`."""
    country, space, rest = number.partition(" ")
    if not space:
        country, rest = "", number
    hidden = "".join("X" if ch.isdigit() else ch for ch in rest[:-2]) + rest[-2:]
    return f"{country} {hidden}" if country else hidden


def tap_usability(data: Mapping[str, Any], now: dt.datetime) -> tuple[bool, str]:
    """`isUsable` and `methodUsabilityReason` of a Temporary Access Pass at `now`."""
    start = parse_time(str(data["startDateTime"]))
    end = start + dt.timedelta(minutes=int(data["lifetimeInMinutes"]))
    if now < start:
        return False, "NotYetValid"
    if now >= end:
        return False, "Expired"
    if data.get("isUsableOnce") and data.get("used"):
        return False, "OneTimeUsed"
    return True, "EnabledByPolicy"


def password_shape(user: Mapping[str, Any]) -> dict[str, Any]:
    """The password method: fixed id, `password` always null."""
    return {
        "@odata.type": BY_NAME["password"].odata_type,
        "id": PASSWORD_METHOD_ID,
        "password": None,
        "createdDateTime": user["last_password_change"],
    }


def shape(
    row: Mapping[str, Any],
    *,
    user: Mapping[str, Any],
    now: dt.datetime,
    mask_phones: bool,
) -> dict[str, Any]:
    """A stored method (a `methods` row) in the documented form of its type."""
    kind = str(row["kind"])
    raw = row["data"]
    data: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    created = row["created"]
    body: dict[str, Any] = {"@odata.type": BY_NAME[kind].odata_type, "id": row["id"]}
    if kind == "phone":
        number = data.get("phoneNumber")
        if mask_phones and isinstance(number, str):
            number = mask_phone(number)
        body |= {
            "phoneNumber": number,
            "phoneType": data.get("phoneType"),
            "smsSignInState": data.get("smsSignInState", "notAllowedByPolicy"),
        }
    elif kind == "email":
        body["emailAddress"] = data.get("emailAddress")
    elif kind == "microsoftAuthenticator":
        body |= {
            "displayName": data.get("displayName"),
            "deviceTag": data.get("deviceTag"),
            "phoneAppVersion": data.get("phoneAppVersion"),
            "createdDateTime": created,
        }
    elif kind == "fido2":
        # The resource page says createdDateTime, the list example creationDateTime: send both.
        body |= {
            "displayName": data.get("displayName"),
            "createdDateTime": created,
            "creationDateTime": created,
            "aaGuid": data.get("aaGuid"),
            "model": data.get("model"),
            "attestationCertificates": list(data.get("attestationCertificates") or []),
            "attestationLevel": data.get("attestationLevel"),
        }
    elif kind == "softwareOath":
        body["secretKey"] = None
    elif kind == "temporaryAccessPass":
        usable, reason = tap_usability(data, now)
        body |= {
            "temporaryAccessPass": None,
            "createdDateTime": created,
            "startDateTime": data.get("startDateTime"),
            "lifetimeInMinutes": data.get("lifetimeInMinutes"),
            "isUsableOnce": bool(data.get("isUsableOnce")),
            "isUsable": usable,
            "methodUsabilityReason": reason,
        }
    elif kind in {"windowsHelloForBusiness", "platformCredential"}:
        body |= {
            "displayName": data.get("displayName"),
            "createdDateTime": created,
            "keyStrength": data.get("keyStrength", "normal"),
        }
        if kind == "platformCredential":
            body["platform"] = data.get("platform", "macOS")
    elif kind == "hardwareOath":
        body["createdDateTime"] = created
        body["device"] = {
            "id": row["id"],
            "displayName": data.get("displayName"),
            "serialNumber": data.get("serialNumber"),
            "manufacturer": data.get("manufacturer"),
            "model": data.get("model"),
            "secretKey": None,
            "timeIntervalInSeconds": data.get("timeIntervalInSeconds", 30),
            "status": data.get("status", "activated"),
            "hashFunction": data.get("hashFunction", "hmacsha1"),
            "assignedTo": {"id": user["id"], "displayName": user["display_name"]},
        }
    return body


# -- the default method ----------------------------------------------------------------------


def is_default(preferred: str | None, kind: str, data: Mapping[str, Any]) -> bool:
    """True when this method is what `userPreferredMethodForSecondaryAuthentication` names."""
    if preferred == "push":
        return kind == "microsoftAuthenticator"
    if preferred == "oath":
        return kind in {"softwareOath", "hardwareOath"}
    phone_type = _PHONE_FOR_PREFERENCE.get(preferred or "")
    return phone_type is not None and kind == "phone" and data.get("phoneType") == phone_type


def has_preferred(preferred: str, methods: Iterable[tuple[str, Mapping[str, Any]]]) -> bool:
    """True when the user holds a (live) method that `preferred` can point at."""
    return any(is_default(preferred, kind, data) for kind, data in methods)


def default_method_error(method_id: str) -> GraphError:
    """Graph's 400 for deleting the default method while other MFA methods remain (§6)."""
    message = (
        f"The requested authentication method id of [{method_id}] matches the user's current "
        "default authentication method, and cannot be deleted until the default "
        "authentication method is changed"
    )
    return GraphError(400, "badRequest", message, inner={"message": message})


def method_not_found(method_id: str) -> GraphError:
    """404 for a method that does not exist (or no longer exists) on this user."""
    return GraphError(
        404, "itemNotFound", f"The authentication method '{method_id}' was not found."
    )
