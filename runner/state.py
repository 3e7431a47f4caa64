"""A target user's current state as read from Graph, and its fingerprint.

`UserState` is what the dry-run shows and what the actions' diffs look at: account, type,
synced flag, privileged roles, methods with the default, per-user MFA state, password and
session timestamps. The fingerprint covers identity and risk only (existence, UPN, user
type, synced flag, privileged roles; product-spec §6), never the state the actions change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

# Graph's @odata.type of each method kind (graph-reference §6).
ODATA_KIND = {
    "#microsoft.graph.passwordAuthenticationMethod": "password",
    "#microsoft.graph.phoneAuthenticationMethod": "phone",
    "#microsoft.graph.emailAuthenticationMethod": "email",
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": "microsoftAuthenticator",
    "#microsoft.graph.fido2AuthenticationMethod": "fido2",
    "#microsoft.graph.softwareOathAuthenticationMethod": "softwareOath",
    "#microsoft.graph.hardwareOathAuthenticationMethod": "hardwareOath",
    "#microsoft.graph.temporaryAccessPassAuthenticationMethod": "temporaryAccessPass",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": "windowsHelloForBusiness",
    "#microsoft.graph.platformCredentialAuthenticationMethod": "platformCredential",
    "#microsoft.graph.passwordlessMicrosoftAuthenticatorAuthenticationMethod": (
        "passwordlessMicrosoftAuthenticator"
    ),
    "#microsoft.graph.externalAuthenticationMethod": "external",
    "#microsoft.graph.qrCodePinAuthenticationMethod": "qrCodePin",
}

# The per-type collection of each kind, and the API version whose DELETE exists.
COLLECTION = {
    "phone": ("phoneMethods", "v1.0"),
    "email": ("emailMethods", "v1.0"),
    "microsoftAuthenticator": ("microsoftAuthenticatorMethods", "v1.0"),
    "fido2": ("fido2Methods", "v1.0"),
    "softwareOath": ("softwareOathMethods", "v1.0"),
    "hardwareOath": ("hardwareOathMethods", "beta"),
    "temporaryAccessPass": ("temporaryAccessPassMethods", "v1.0"),
    "windowsHelloForBusiness": ("windowsHelloForBusinessMethods", "v1.0"),
    "platformCredential": ("platformCredentialMethods", "v1.0"),
    "passwordlessMicrosoftAuthenticator": ("passwordlessMicrosoftAuthenticatorMethods", "beta"),
}

# Methods that are MFA methods (the default can only be one of these).
MFA_KINDS = frozenset({"phone", "microsoftAuthenticator", "softwareOath", "hardwareOath"})

# signInPreferences.userPreferredMethodForSecondaryAuthentication → which method is default.
PREFERRED_TO_METHOD = {
    "push": ("microsoftAuthenticator", None),
    "oath": ("softwareOath", None),
    "sms": ("phone", "mobile"),
    "voiceMobile": ("phone", "mobile"),
    "voiceAlternateMobile": ("phone", "alternateMobile"),
    "voiceOffice": ("phone", "office"),
}

_PHONE_LABEL = {
    "mobile": "mobile phone",
    "alternateMobile": "alternate mobile phone",
    "office": "office phone",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Method:
    """One registered authentication method."""

    id: str
    kind: str
    label: str  # what a reviewer recognises: "mobile phone +1 425555 0123"
    phone_type: str | None = None
    created: str | None = None

    @classmethod
    def from_graph(cls, item: dict[str, Any]) -> Method:
        """A method from an item of `GET .../authentication/methods` (or a per-type list)."""
        kind = ODATA_KIND.get(str(item.get("@odata.type", "")), "unknown")
        phone_type = item.get("phoneType") if kind == "phone" else None
        return cls(
            id=str(item.get("id", "")),
            kind=kind,
            label=_label(kind, item),
            phone_type=str(phone_type) if phone_type else None,
            created=item.get("createdDateTime") or item.get("creationDateTime"),
        )


def _label(kind: str, item: dict[str, Any]) -> str:
    if kind == "phone":
        phone = _PHONE_LABEL.get(str(item.get("phoneType")), "phone")
        return f"{phone} {item.get('phoneNumber', '')}".strip()
    if kind == "email":
        return f"email {item.get('emailAddress', '')}".strip()
    if kind == "microsoftAuthenticator":
        device = item.get("displayName") or "a device"
        return f"Authenticator on {device}"
    if kind == "fido2":
        return f"security key {item.get('displayName') or item.get('model') or ''}".strip()
    if kind == "softwareOath":
        return "software OATH token"
    if kind == "hardwareOath":
        serial = item.get("serialNumber") or item.get("displayName") or ""
        return f"hardware OATH token {serial}".strip()
    if kind == "windowsHelloForBusiness":
        return f"Windows Hello for Business on {item.get('displayName') or 'a device'}"
    if kind == "temporaryAccessPass":
        return "temporary access pass"
    if kind == "platformCredential":
        return f"platform credential {item.get('displayName') or ''}".strip()
    return kind


@dataclass(frozen=True, slots=True, kw_only=True)
class UserState:
    """What Graph says of one target user now (None: not read, or not readable)."""

    id: str
    upn: str
    display_name: str = ""
    user_type: str = "Member"
    account_enabled: bool | None = None
    synced: bool = False
    privileged_roles: tuple[str, ...] = ()
    methods: tuple[Method, ...] | None = None
    preferred_method: str | None = None  # signInPreferences (beta), when read
    per_user_mfa: str | None = None  # requirements (beta), when read
    last_password_change: str | None = None
    sessions_valid_from: str | None = None

    @property
    def is_guest(self) -> bool:
        """An external (B2B) user."""
        return self.user_type.lower() == "guest" or "#ext#" in self.upn.lower()

    def default_method(self) -> Method | None:
        """The default MFA method, when signInPreferences was read and names one we have."""
        if self.methods is None or self.preferred_method is None:
            return None
        wanted = PREFERRED_TO_METHOD.get(self.preferred_method)
        if wanted is None:
            return None
        kind, phone_type = wanted
        for method in self.methods:
            if method.kind == kind and (phone_type is None or method.phone_type == phone_type):
                return method
        if kind == "softwareOath":
            return next((m for m in self.methods if m.kind == "hardwareOath"), None)
        return None

    def fingerprint(self) -> str:
        """`sha256:` of the identity-and-risk facts (product-spec §6)."""
        return fingerprint_of(
            exists=True,
            object_id=self.id,
            upn=self.upn,
            user_type=self.user_type,
            synced=self.synced,
            privileged_roles=self.privileged_roles,
        )


def fingerprint_of(
    *,
    exists: bool,
    object_id: str,
    upn: str,
    user_type: str,
    synced: bool,
    privileged_roles: tuple[str, ...],
) -> str:
    """The fingerprint of a target's identity and risk."""
    data = {
        "exists": exists,
        "id": object_id.lower(),
        "upn": upn.lower(),
        "user_type": user_type,
        "synced": synced,
        "privileged_roles": sorted(privileged_roles),
    }
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_time(value: str | None) -> dt.datetime | None:
    """A Graph DateTimeOffset (`2026-11-28T06:09:33Z`) as an aware datetime."""
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
