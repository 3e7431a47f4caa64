"""The action registry and the plan schema say the same thing."""

from __future__ import annotations

import json

import jsonschema
import pytest

from runner import identity
from runner.actions import registry
from runner.plan import Safety
from runner.resources import data_dir

SCHEMA = json.loads((data_dir("schemas") / "plan.schema.json").read_text(encoding="utf-8"))


def test_schema_is_valid_draft_2020_12_with_an_id() -> None:
    """The schema is itself valid, declares draft 2020-12 and has an `$id`."""
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"]


def test_schema_action_enum_equals_the_registry() -> None:
    """The schema accepts exactly the registry's names and aliases."""
    assert SCHEMA["$defs"]["action_name"]["enum"] == list(registry.accepted_names())


def test_schema_option_schemas_equal_the_registry() -> None:
    """Each action's options in the schema are the registry's fragment, and no other."""
    options = SCHEMA["properties"]["options"]["properties"]
    assert list(options) == list(registry.names())
    for name, spec in registry.ACTIONS.items():
        assert options[name] == {"$ref": f"#/$defs/{name}_options"}
        assert SCHEMA["$defs"][f"{name}_options"] == registry.thaw(spec.options_schema)


def test_schema_method_kinds_and_patterns_equal_the_code() -> None:
    """Method kinds, the UPN/GUID patterns and the safety defaults match the code."""
    defs = SCHEMA["$defs"]
    assert defs["method_kind"]["enum"] == list(registry.METHOD_KINDS)
    assert "password" not in registry.METHOD_KINDS
    assert defs["user"]["pattern"] == identity.USER_PATTERN
    assert defs["object_id"]["pattern"] == identity.GUID_PATTERN
    safety = defs["safety"]["properties"]
    defaults = Safety()
    for key in ("required_approvals", "plan_ttl_hours", "halt_on_failure_rate", "canary"):
        assert safety[key]["default"] == getattr(defaults, key), key
    assert set(safety) == set(Safety.__dataclass_fields__)


def test_every_object_in_the_schema_forbids_unknown_keys() -> None:
    """`additionalProperties: false` wherever the schema describes a mapping."""

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, where
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(SCHEMA, "")


def test_aliases_resolve_to_their_action() -> None:
    """`revoke_mfa_sessions` is `revoke_sessions`; unknown names are None or KeyError."""
    assert registry.canonical("revoke_mfa_sessions") == "revoke_sessions"
    assert registry.get("revoke_mfa_sessions") is registry.ACTIONS["revoke_sessions"]
    assert registry.canonical("disabel") is None
    with pytest.raises(KeyError):
        registry.get("disabel")


def test_repeatable_and_manual_flags() -> None:
    """Only the password reset and the access pass are not repeatable; app passwords are manual."""
    assert [s.name for s in registry.ACTIONS.values() if not s.repeatable] == [
        "reset_password",
        "create_temporary_access_pass",
    ]
    assert [s.name for s in registry.ACTIONS.values() if s.manual] == ["delete_app_passwords"]


def test_defaults_are_applied_and_overridden() -> None:
    """Options get the schema's defaults, and a plan's values win."""
    assert dict(registry.with_defaults("reset_password", None)) == {
        "length": 20,
        "require_mfa_before_change": False,
    }
    assert dict(
        registry.with_defaults("require_mfa_reregistration", {"method_types": ["fido2"]})
    ) == {"method_types": ("fido2",)}
    assert dict(registry.with_defaults("create_temporary_access_pass", {})) == {
        "lifetime_minutes": 60,
        "usable_once": True,
    }
    assert registry.ACTIONS["set_per_user_mfa"].required_options == ("state",)


def test_every_summary_is_one_line() -> None:
    """Each action has a one-line summary."""
    for spec in registry.ACTIONS.values():
        assert spec.summary and "\n" not in spec.summary
