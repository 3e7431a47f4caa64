"""The canonical plan: one `Plan` whatever the form, canonical JSON blind to formatting."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import validate
from runner.plan import Plan, SourceRef, TargetKind, TargetSelector, build, canonical_json
from runner.planfile import parse_yaml


def _plan(text: str) -> Plan:
    result = validate.check(parse_yaml(text.encode(), path="p.yaml"))
    assert result.plan is not None, validate.render_text([result])
    return result.plan


YAML_PLAN = """\
version: 1
name: leavers
ticket: CHG-1
actions: [disable_account, revoke_mfa_sessions]
targets:
  - user: Adele.Vance@contoso.com
    ticket: HR-1
  - user: alex.wilber@contoso.com
    actions: [revoke_sessions]
    note: keeps laptop
"""
CSV_PLAN = (
    "userPrincipalName,actions,ticket,note\r\n"
    "adele.vance@contoso.com,,HR-1,\r\n"
    "ALEX.WILBER@contoso.com,revoke_sessions,,keeps laptop\r\n"
)


def test_yaml_and_csv_plans_that_say_the_same_thing_are_equal(tmp_path: Path) -> None:
    """A YAML plan and a CSV with --actions/--name/--ticket build the same Plan and JSON."""
    (tmp_path / "plan.yaml").write_text(YAML_PLAN)
    (tmp_path / "leavers.csv").write_text(CSV_PLAN)
    from_yaml = validate.load(tmp_path / "plan.yaml").plan
    settings_ = validate.CsvPlanSettings(
        actions=("disable_account", "revoke_sessions"), name="leavers", ticket="CHG-1"
    )
    from_csv = validate.load(tmp_path / "leavers.csv", settings=settings_).plan
    assert from_yaml is not None
    assert from_csv is not None
    assert from_yaml == from_csv
    assert canonical_json(from_yaml) == canonical_json(from_csv)
    assert from_yaml.targets[0].source != from_csv.targets[0].source


def test_yaml_naming_the_csv_in_targets_from_is_the_same_plan(tmp_path: Path) -> None:
    """Plan-level settings from YAML plus targets from its `targets_from` CSV: same Plan."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "leavers.csv").write_text(CSV_PLAN)
    head = YAML_PLAN.split("targets:")[0]
    (tmp_path / "plan.yaml").write_text(head + "targets_from: sub/leavers.csv\n")
    (tmp_path / "inline.yaml").write_text(YAML_PLAN)
    merged = validate.load(tmp_path / "plan.yaml").plan
    inline = validate.load(tmp_path / "inline.yaml").plan
    assert merged is not None
    assert merged == inline
    assert merged.targets[1].source == SourceRef(path=str(tmp_path / "sub" / "leavers.csv"), line=3)


def test_source_refs_take_no_part_in_equality() -> None:
    """Two targets that differ only in where they were written are equal."""
    one = TargetSelector(kind=TargetKind.USER, value="a@contoso.com", source=SourceRef(path="a"))
    two = TargetSelector(
        kind=TargetKind.USER, value="a@contoso.com", source=SourceRef(path="b", line=3)
    )
    assert one == two


def test_build_applies_defaults_and_canonical_names() -> None:
    """Aliases become canonical, defaults fill the options of every action in use only."""
    plan = _plan(
        "version: 1\nname: t\nactions: [revoke_mfa_sessions]\n"
        "options:\n  reset_password: {length: 32}\n"
        "  create_temporary_access_pass: {usable_once: false}\n"
        "targets:\n  - user: a@contoso.com\n    actions: [reset_password]\n"
    )
    assert plan.actions == ("revoke_sessions",)
    assert {name: dict(opts) for name, opts in plan.options.items()} == {
        "reset_password": {"length": 32, "require_mfa_before_change": False},
        "revoke_sessions": {},
    }
    assert plan.actions_for(plan.targets[0]) == ("reset_password",)
    assert plan.used_actions() == ("reset_password", "revoke_sessions")
    assert plan.safety.required_approvals == 1
    assert plan.safety.halt_on_failure_rate == 0.05


def test_canonical_json_is_sorted_compact_utf8() -> None:
    """Sorted keys, no whitespace between tokens, UTF-8 (not \\u escapes)."""
    plan = _plan(
        "version: 1\nname: t\ndescription: Équipe\nactions: [disable_account]\n"
        "targets:\n  - group: Équipe Finance\n"
    )
    data = canonical_json(plan)
    assert "Équipe".encode() in data
    assert (
        data
        == json.dumps(
            json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
    assert data.startswith(b'{"actions":["disable_account"],"description":"\xc3\x89quipe"')


def test_build_refuses_unvalidated_data() -> None:
    """build() is the factory for validated data only: anything else is a ValueError."""
    with pytest.raises(ValueError, match="build\\(\\) needs a validated plan"):
        build({"version": 1, "name": "t", "targets": [{"user": "not a upn"}]})
    with pytest.raises(ValueError, match="version 2"):
        build({"version": 2, "name": "t", "targets": []})


# Property: reformatting never changes the canonical JSON; a semantic change always does.

_ACTIONS = [
    "reset_password",
    "revoke_sessions",
    "disable_account",
    "require_mfa_reregistration",
    "delete_app_passwords",
    "create_temporary_access_pass",
]
_TEXTS = [
    "INC-4821",
    "yes",
    "no",
    "0123",
    "2024-01-01",
    "a: b",
    "#7",
    "O'Brien case",
    "Café",
    "true",
]
_PLAIN_SAFE = re.compile(r"^[A-Za-z][A-Za-z0-9 ._@-]*$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def _model() -> st.SearchStrategy[dict[str, Any]]:
    target = st.one_of(
        st.integers(0, 30).map(lambda n: {"user": f"user{n}@contoso.com"}),
        st.sampled_from(["Finance Contractors", "Sales Team"]).map(lambda g: {"group": g}),
        st.just({"query": "department eq 'Sales' and accountEnabled eq true"}),
    )
    target_full = st.tuples(
        target,
        st.none() | st.lists(st.sampled_from(_ACTIONS), min_size=1, max_size=3, unique=True),
        st.none() | st.sampled_from(_TEXTS),
    ).map(
        lambda t: {
            **t[0],
            **({"actions": t[1]} if t[1] else {}),
            **({"note": t[2]} if t[2] else {}),
        }
    )
    return st.fixed_dictionaries(
        {
            "version": st.just(1),
            "name": st.sampled_from(["breach", "wave-2", "q4.leavers"]),
            "actions": st.lists(st.sampled_from(_ACTIONS), min_size=1, max_size=4, unique=True).map(
                lambda names: ["reset_password", *[n for n in names if n != "reset_password"]]
            ),
            "options": st.fixed_dictionaries(
                {"reset_password": st.fixed_dictionaries({"length": st.integers(12, 64)})}
            ),
            "targets": st.lists(
                target_full,
                min_size=1,
                max_size=5,
                unique_by=lambda t: json.dumps(
                    {k: v for k, v in t.items() if k in ("user", "group", "query")}
                ),
            ),
        },
        optional={
            "ticket": st.sampled_from(_TEXTS),
            "safety": st.fixed_dictionaries(
                {},
                optional={
                    "canary": st.integers(0, 50),
                    "halt_on_failure_rate": st.sampled_from([0.0, 0.05, 0.5, 1.0]),
                    "protected_groups": st.just(["Emergency Access Accounts"]),
                },
            ),
        },
    )


def _scalar(value: Any, draw: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    styles = ["single", "double"]
    if _PLAIN_SAFE.match(text) and text.casefold() not in _RESERVED:
        styles.append("plain")
    style = draw(st.sampled_from(styles))
    if style == "plain":
        return text
    if style == "single":
        return "'" + text.replace("'", "''") + "'"
    return json.dumps(text, ensure_ascii=False)


def _flow(value: Any, draw: Any) -> str:
    if isinstance(value, dict):
        keys = draw(st.permutations(list(value)))
        return "{" + ", ".join(f"{key}: {_flow(value[key], draw)}" for key in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item, draw) for item in value) + "]"
    return _scalar(value, draw)


def _comment(draw: Any) -> str:
    return draw(st.sampled_from(["", "", "  # a comment", " # key: value, [x]"]))


def _block(
    mapping: dict[str, Any], indent: int, draw: Any, *, lead_comment: bool = True
) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for key in draw(st.permutations(list(mapping))):
        value = mapping[key]
        if lead_comment and lines and draw(st.booleans()):
            lines.append(pad + "# " + draw(st.sampled_from(["note", "- not a list", "x: y"])))
        if isinstance(value, dict | list) and value and draw(st.booleans()):
            lines.append(f"{pad}{key}:{_comment(draw)}")
            if isinstance(value, dict):
                lines.extend(_block(value, indent + 2, draw))
            else:
                for item in value:
                    if isinstance(item, dict):
                        inner = _block(item, indent + 4, draw, lead_comment=False)
                        inner[0] = " " * (indent + 2) + "- " + inner[0][indent + 4 :]
                        lines.extend(inner)
                    else:
                        lines.append(f"{pad}  - {_scalar(item, draw)}{_comment(draw)}")
        else:
            lines.append(f"{pad}{key}: {_flow(value, draw)}{_comment(draw)}")
    return lines


def _render(model: dict[str, Any], draw: Any) -> str:
    head = draw(
        st.sampled_from(["", "# yaml-language-server: $schema=../schemas/plan.schema.json\n"])
    )
    return head + "\n".join(_block(model, 0, draw)) + "\n"


def _cosmetic(model: dict[str, Any], draw: Any) -> dict[str, Any]:
    """Same meaning, different spelling: UPN case, alias names, explicit defaults."""
    copy = json.loads(json.dumps(model))
    for target in copy["targets"]:
        if "user" in target and draw(st.booleans()):
            target["user"] = target["user"].upper()
    alias = {"revoke_sessions": "revoke_mfa_sessions"}
    copy["actions"] = [alias.get(n, n) if draw(st.booleans()) else n for n in copy["actions"]]
    if draw(st.booleans()):
        copy["options"]["reset_password"]["require_mfa_before_change"] = False
    return copy


def _mutate(model: dict[str, Any], draw: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(model))
    kinds = ["add", "drop", "ticket", "action", "option", "canary", "override", "note"]
    kind = draw(st.sampled_from(kinds))
    if kind == "add":
        copy["targets"].append({"user": "someone.new@contoso.com"})
    elif kind == "drop" and len(copy["targets"]) > 1:
        copy["targets"].pop()
    elif kind == "ticket":
        copy["ticket"] = copy.get("ticket", "") + "-2"
    elif kind == "action":
        missing = [name for name in _ACTIONS if name not in copy["actions"]]
        if missing:
            copy["actions"].append(missing[0])
        else:
            copy["actions"].pop()
    elif kind == "option":
        copy["options"]["reset_password"]["length"] += 1
    elif kind == "override":
        target = copy["targets"][0]
        target["actions"] = (
            ["delete_app_passwords"]
            if target.get("actions") != ["delete_app_passwords"]
            else ["disable_account"]
        )
    elif kind == "note":
        target = copy["targets"][-1]
        target[draw(st.sampled_from(["note", "ticket"]))] = "changed"
    else:
        copy.setdefault("safety", {})
        copy["safety"]["canary"] = copy["safety"].get("canary", 10) + 1
    return copy


@settings(max_examples=150, deadline=None)
@given(model=_model(), data=st.data())
def test_reformatting_never_changes_canonical_json(
    model: dict[str, Any], data: st.DataObject
) -> None:
    """Key order, comments, quoting, flow/block style, UPN case and aliases: same bytes."""
    first = _plan(_render(model, data.draw))
    second = _plan(_render(_cosmetic(model, data.draw), data.draw))
    assert canonical_json(first) == canonical_json(second)


@settings(max_examples=150, deadline=None)
@given(model=_model(), data=st.data())
def test_any_semantic_change_changes_canonical_json(
    model: dict[str, Any], data: st.DataObject
) -> None:
    """Adding or dropping a target, changing a ticket, action, option or rail: other bytes."""
    mutated = _mutate(model, data.draw)
    if mutated == model:  # dropping the only target is not a change this test can make
        return
    assert canonical_json(_plan(_render(model, data.draw))) != canonical_json(
        _plan(_render(mutated, data.draw))
    )
