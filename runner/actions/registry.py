"""The one registry of action names: canonical names, aliases, option schemas and defaults.

Everything that needs to know which actions exist asks this module: the plan schema in
`schemas/plan.schema.json` (a test proves the two agree), the validator, `plan.build`, and the
behaviour modules later issues add under `runner/actions/` (reads, diff, requests,
verification), which look their `ActionSpec` up here by name rather than defining their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

# Authentication method kinds a plan can name (product-spec section 5). `password` is not one:
# Graph cannot delete the password method; `reset_password` is the action for it.
METHOD_KINDS: tuple[str, ...] = (
    "phone",
    "email",
    "microsoftAuthenticator",
    "fido2",
    "softwareOath",
    "hardwareOath",
    "temporaryAccessPass",
    "windowsHelloForBusiness",
    "platformCredential",
    "passwordlessMicrosoftAuthenticator",
)

# What the portal's "Require re-register MFA" button removes (product-spec section 5).
PORTAL_REREGISTRATION_KINDS: tuple[str, ...] = (
    "phone",
    "microsoftAuthenticator",
    "softwareOath",
    "hardwareOath",
)

# Entra accepts passwords of 8 to 256 characters; a generated temporary password shorter than
# 12 is needlessly weak, so plans may ask for 12 to 256.
PASSWORD_LENGTH_MIN = 12
PASSWORD_LENGTH_MAX = 256
PASSWORD_LENGTH_DEFAULT = 20

# Graph's bounds for a temporary access pass (graph-reference.md section 7).
TAP_LIFETIME_MIN = 10
TAP_LIFETIME_MAX = 43200
TAP_LIFETIME_DEFAULT = 60

# RFC 3339 date and time with an explicit offset; editors show `patternErrorMessage`. Patterns
# end in `(?![\s\S])`, not `$`: Python's `$` (jsonschema uses `re.search`) also matches before
# a final newline, ECMA-262's does not; the lookahead means "the very end" in both.
END = r"(?![\s\S])"
DATE_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})" + END
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSpec:
    """What the plan language knows about one action; behaviour lives in other modules."""

    name: str
    summary: str
    aliases: tuple[str, ...] = ()
    options_schema: Mapping[str, Any]
    repeatable: bool
    manual: bool = False
    example_options: str = ""  # shown when a plan omits a required option

    @property
    def option_names(self) -> tuple[str, ...]:
        """The option keys this action accepts, in schema order."""
        return tuple(self.options_schema.get("properties", {}))

    @property
    def required_options(self) -> tuple[str, ...]:
        """The options a plan must give whenever it uses this action."""
        return tuple(self.options_schema.get("required", ()))

    @property
    def defaults(self) -> Mapping[str, Any]:
        """Option defaults taken from the schema fragment (options without one are absent)."""
        properties: Mapping[str, Mapping[str, Any]] = self.options_schema.get("properties", {})
        return MappingProxyType(
            {key: _freeze(prop["default"]) for key, prop in properties.items() if "default" in prop}
        )


def _freeze(value: Any) -> Any:
    """Read-only copy of JSON data: mappings become mappingproxies, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """Plain JSON data (dicts and lists) from a frozen value, e.g. to write a schema file."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(item) for item in value]
    return value


def _options(
    properties: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    required: tuple[str, ...] = (),
) -> Mapping[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": dict(properties or {}),
    }
    if required:
        schema["required"] = list(required)
    frozen: Mapping[str, Any] = _freeze(schema)
    return frozen


def _method_types(description: str, default: tuple[str, ...] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "description": description,
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": {"$ref": "#/$defs/method_kind"},
    }
    if default is not None:
        schema["default"] = list(default)
    return schema


_SPECS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="reset_password",
        summary="Set a generated temporary password that must be changed at next sign-in.",
        repeatable=False,
        options_schema=_options(
            {
                "require_mfa_before_change": {
                    "description": "Ask for MFA before the user may change the temporary password.",
                    "type": "boolean",
                    "default": False,
                },
                "length": {
                    "description": "Length of the generated temporary password.",
                    "type": "integer",
                    "minimum": PASSWORD_LENGTH_MIN,
                    "maximum": PASSWORD_LENGTH_MAX,
                    "default": PASSWORD_LENGTH_DEFAULT,
                },
            }
        ),
    ),
    ActionSpec(
        name="require_mfa_reregistration",
        summary="Delete the user's MFA methods so that the next sign-in registers new ones.",
        repeatable=True,
        options_schema=_options(
            {
                "method_types": _method_types(
                    "Method kinds to delete (default: the portal's set).",
                    PORTAL_REREGISTRATION_KINDS,
                )
            }
        ),
    ),
    ActionSpec(
        name="revoke_sessions",
        aliases=("revoke_mfa_sessions",),
        summary="Revoke every sign-in session and refresh token (a superset of MFA sessions).",
        repeatable=True,
        options_schema=_options(),
    ),
    ActionSpec(
        name="delete_app_passwords",
        summary="Delete all app passwords: Graph has no API, so this is a manual portal step.",
        repeatable=True,
        manual=True,
        options_schema=_options(),
    ),
    ActionSpec(
        name="disable_account",
        summary="Block sign-in (accountEnabled: false).",
        repeatable=True,
        options_schema=_options(),
    ),
    ActionSpec(
        name="enable_account",
        summary="Allow sign-in again (accountEnabled: true).",
        repeatable=True,
        options_schema=_options(),
    ),
    ActionSpec(
        name="set_per_user_mfa",
        summary="Set the legacy per-user MFA state (enabled, enforced or disabled).",
        repeatable=True,
        options_schema=_options(
            {
                "state": {
                    "description": "The per-user MFA state to set.",
                    "enum": ["enabled", "enforced", "disabled"],
                }
            },
            required=("state",),
        ),
        example_options="{state: enforced}",
    ),
    ActionSpec(
        name="create_temporary_access_pass",
        summary="Issue a temporary access pass (it replaces any previous pass).",
        repeatable=False,
        options_schema=_options(
            {
                "lifetime_minutes": {
                    "description": "How long the pass is valid, in minutes.",
                    "type": "integer",
                    "minimum": TAP_LIFETIME_MIN,
                    "maximum": TAP_LIFETIME_MAX,
                    "default": TAP_LIFETIME_DEFAULT,
                },
                "usable_once": {
                    "description": "One sign-in only (always allowed by the tenant's policy).",
                    "type": "boolean",
                    "default": True,
                },
                "start_time": {
                    "description": "When the pass becomes valid (RFC 3339); default: at once.",
                    "type": "string",
                    "format": "date-time",
                    "pattern": DATE_TIME_PATTERN,
                    "patternErrorMessage": (
                        "expected a date and time with a time zone, like 2026-11-28T09:00:00Z"
                    ),
                },
            }
        ),
    ),
    ActionSpec(
        name="remove_auth_methods",
        summary="Delete the user's authentication methods of the listed kinds.",
        repeatable=True,
        options_schema=_options(
            {"method_types": _method_types("Method kinds to delete.")},
            required=("method_types",),
        ),
        example_options="{method_types: [fido2, email]}",
    ),
)

ACTIONS: Mapping[str, ActionSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})
ALIASES: Mapping[str, str] = MappingProxyType(
    {alias: spec.name for spec in _SPECS for alias in spec.aliases}
)


def names() -> tuple[str, ...]:
    """Canonical action names, in the order of product-spec section 5."""
    return tuple(ACTIONS)


def accepted_names() -> tuple[str, ...]:
    """Every name a plan may use: canonical names, then aliases."""
    return (*ACTIONS, *ALIASES)


def canonical(name: str) -> str | None:
    """The canonical name for `name` (itself or an alias), or None if no action has it."""
    if name in ACTIONS:
        return name
    return ALIASES.get(name)


def get(name: str) -> ActionSpec:
    """The spec of the action called `name` (canonical or alias); KeyError if there is none."""
    found = canonical(name)
    if found is None:
        msg = f"no action is called {name!r}"
        raise KeyError(msg)
    return ACTIONS[found]


def with_defaults(name: str, given: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The options of `name`: its defaults overlaid with `given`, lists frozen to tuples."""
    spec = get(name)
    merged = dict(spec.defaults)
    merged.update({key: _freeze(value) for key, value in (given or {}).items()})
    return MappingProxyType(dict(sorted(merged.items())))
