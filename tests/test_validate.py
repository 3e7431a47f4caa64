"""The bad-input catalogue (reliability.md Part 2 section 2.2): each fixture, its exact text."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import validate
from runner.planfile import CsvDialect
from runner.problem import Severity

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "plans"
CSV_ACTIONS = validate.CsvPlanSettings(actions=("disable_account",))
VALID = (
    "reset_password, require_mfa_reregistration, revoke_sessions, delete_app_passwords, "
    "disable_account, enable_account, set_per_user_mfa, create_temporary_access_pass, "
    "remove_auth_methods"
)
UPN_ASCII = "UPNs are ASCII only, so this is a look-alike or hidden character; retype the UPN"
UPN_CHARS = "only letters, digits and ' . - _ ! # ^ ~ may surround the @"
GUID_HINT = "object ids are GUIDs like 5a1b0c3e-0000-4000-8000-000000000001"

CATALOGUE: list[tuple[str, list[str]]] = [
    (
        "01-python-tag.yaml",
        [
            "{p}:4:10: tags are not allowed (found !!python/object/apply:os.system): "
            "a plan holds plain values only"
        ],
    ),
    (
        "02-billion-laughs.yaml",
        ["{p}:1:4: anchors (&a) are not allowed: write each value out in full"],
    ),
    (
        "03-merge-key.yaml",
        ["{p}:1:11: anchors (&defaults) are not allowed: write each value out in full"],
    ),
    (
        "03-merge-key-inline.yaml",
        ["{p}:3:1: merge keys (<<) are not allowed: write the keys out in full"],
    ),
    (
        "04-duplicate-key.yaml",
        ["{p}:7:5: /targets/0/actions: duplicate key 'actions' (first at line 5): keep one"],
    ),
    (
        "05-yaml11-booleans.yaml",
        [
            "{p}:6:32: /options/reset_password/require_mfa_before_change: expected true or "
            "false, got the text 'on' (plans read 'on' as text); write true or false",
            "{p}:8:18: /options/create_temporary_access_pass/usable_once: expected true or "
            "false, got the text 'no' (plans read 'no' as text); write true or false",
        ],
    ),
    (
        "07-date.yaml",
        [
            "{p}:7:17: /options/create_temporary_access_pass/start_time: expected a date and "
            "time with a time zone, like 2026-11-28T09:00:00Z"
        ],
    ),
    (
        "08-multi-document.yaml",
        [
            "{p}:6:1: exactly one document expected: this file has another one from here; "
            "put each plan in its own file"
        ],
    ),
    (
        "09-empty.yaml",
        ["{p}:1:1: plan is empty: start with `version: 1` (the plans/ folder has examples)"],
    ),
    (
        "09-comments-only.yaml",
        ["{p}:1:1: plan is empty: start with `version: 1` (the plans/ folder has examples)"],
    ),
    (
        "10-typo-key.yaml",
        [
            "{p}:3:1: /actoins: unknown key 'actoins'; did you mean 'actions'?",
            "{p}:5:5: /targets/0: 1 target has no actions: add `actions:` to the plan "
            "(for every target) or to the target",
        ],
    ),
    (
        "11-unknown-action.yaml",
        [
            "{p}:3:11: /actions/0: unknown action 'disabel'; did you mean 'disable_account'? "
            f"(valid: {VALID})"
        ],
    ),
    (
        "12-targets-string.yaml",
        [
            "{p}:4:10: /targets: expected a list, got the text 'adele.vance@contoso.com'; "
            "list one target per line, like `- user: alice@contoso.com`"
        ],
    ),
    (
        "13-tab-indent.yaml",
        [
            "{p}:5:1: invalid YAML: found character '\\t' that cannot start any token; "
            "indent with spaces, not tabs\n"
            "     - user: adele.vance@contoso.com\n"
            "    ^"
        ],
    ),
    (
        "13-invalid-syntax.yaml",
        [
            "{p}:6:4: invalid YAML: expected <block end>, but found '<block mapping start>'; "
            "this line's indentation does not line up with the lines above\n"
            "       note: [unclosed\n"
            "       ^"
        ],
    ),
    (
        "16-cp1252.yaml",
        ["{p}:4:17: not valid UTF-8 at byte offset 84 (byte 0xE9); save the plan as UTF-8"],
    ),
    (
        "17-version-2.yaml",
        [
            "{p}:1:10: /version: unsupported plan version 2: this entra-bulk reads version 1 "
            "plans; upgrade entra-bulk or write a version 1 plan"
        ],
    ),
    (
        "24-cp1252.csv",
        [
            "{p}:2: not valid UTF-8 at byte offset 38 (byte 0xE9); re-save it as CSV UTF-8 "
            "or pass --encoding cp1252"
        ],
    ),
    (
        "25-excel-replaced.csv",
        [
            "{p}:2: column user: character '?' (U+003F) at position 2 is not allowed in a UPN: "
            + UPN_CHARS
        ],
    ),
    (
        "26-semicolon.csv",
        ["{p}:1: expected ',' between columns but the header uses ';' (use --delimiter ';')"],
    ),
    (
        "28-embedded-newline.csv",
        [
            "{p}:4: column user: character ' ' (U+0020) at position 5 is not allowed in a UPN: "
            + UPN_CHARS
        ],
    ),
    (
        "29-unterminated-quote.csv",
        [
            "{p}:2: unterminated quoted field starting at line 2; close the quote",
            "{p}:4: column user: character ' ' (U+0020) at position 6 is not allowed in a UPN: "
            + UPN_CHARS,
        ],
    ),
    (
        "31-nul.csv",
        ["{p}:3: NUL byte in this line: the file is damaged or not text; re-save it as CSV UTF-8"],
    ),
    (
        "32-ragged.csv",
        [
            "{p}:2: row has 3 fields, the header has 2; check the separators and quotes in "
            "this line",
            "{p}:3: row has 1 field, the header has 2; check the separators and quotes in "
            "this line",
        ],
    ),
    (
        "33-duplicate-header.csv",
        ["{p}:1: column UPN: duplicate column 'UPN' (also column 1); keep one"],
    ),
    (
        "34-missing-column.csv",
        [
            "{p}:1: column mail: warning: column 'mail' is not used by entra-bulk and is ignored",
            "{p}:1: missing the target column: name it user, userPrincipalName, UPN, id, "
            "objectId or memberObjectIdOrUpn",
        ],
    ),
    (
        "35-header-only.csv",
        ["{p}:1: no targets: the file has a header but no rows; add one user per row"],
    ),
    (
        "37-nbsp.yaml",
        [
            "{p}:5:11: /targets/0/user: character U+00A0 (NO-BREAK SPACE) at position 24 is "
            f"not allowed in a UPN: {UPN_ASCII}"
        ],
    ),
    (
        "40-homoglyph.yaml",
        [
            "{p}:5:11: /targets/0/user: character U+0430 (CYRILLIC SMALL LETTER A) at position "
            f"1 is not allowed in a UPN: {UPN_ASCII}"
        ],
    ),
    (
        "41-invisible.yaml",
        [
            "{p}:5:11: /targets/0/user: character U+200B (ZERO WIDTH SPACE) at position 6 is "
            f"not allowed in a UPN: {UPN_ASCII}",
            "{p}:6:11: /targets/1/user: character U+202E (RIGHT-TO-LEFT OVERRIDE) at position "
            f"24 is not allowed in a UPN: {UPN_ASCII}",
            "{p}:7:11: /targets/2/user: character U+FF20 (FULLWIDTH COMMERCIAL AT) at position "
            f"12 is not allowed in a UPN: {UPN_ASCII}",
        ],
    ),
    (
        "42-lengths.yaml",
        [
            "{p}:5:11: /targets/0/user: the UPN is 117 characters long; Entra allows at most 113",
            "{p}:5:11: /targets/0/user: the domain after the @ is 52 characters long; "
            "Entra allows at most 48",
            "{p}:6:11: /targets/1/user: the part before the @ is 65 characters long; "
            "Entra allows at most 64",
            "{p}:7:11: /targets/2/user: the domain after the @ is 49 characters long; "
            "Entra allows at most 48",
            "{p}:8:11: /targets/3/user: 'adele.@contoso.com' has a '.' directly before the @, "
            "which Entra forbids",
        ],
    ),
    (
        "45-bad-guid.yaml",
        [
            "{p}:5:11: /targets/0/user: '5a1b0c3e-0000-4000-8000-00000000001' is not an object "
            f"id: {GUID_HINT}",
            "{p}:8:22: /safety/allow_privileged/0: 'adele.vance@contoso.com' is not an object "
            f"id: {GUID_HINT}",
        ],
    ),
    (
        "50-wildcards.yaml",
        [
            "{p}:5:11: /targets/0/user: wildcards are not allowed (there is no implicit "
            "'all users'): list each user, or target a group or a query",
            "{p}:6:11: /targets/1/user: empty target: there is no implicit 'all users'; "
            "name who to act on",
            "{p}:7:11: /targets/2/user: empty target: there is no implicit 'all users'; "
            "name who to act on",
            "{p}:8:12: /targets/3/group: wildcards are not allowed (there is no implicit "
            "'all users'): list each user, or target a group or a query",
        ],
    ),
    (
        "template-example-row.csv",
        [
            "{p}:3: this is the template's example row; delete it and list your own users "
            "from the row after the header"
        ],
    ),
]


def _lines(name: str, **kwargs: object) -> tuple[validate.Validated, list[str]]:
    path = os.path.relpath(FIXTURES / name)
    result = validate.load(path, settings=CSV_ACTIONS, **kwargs)  # type: ignore[arg-type]
    return result, validate.render_text([result])


@pytest.mark.parametrize(("name", "expected"), CATALOGUE, ids=[name for name, _ in CATALOGUE])
def test_catalogue_fixture_reports_exact_text(name: str, expected: list[str]) -> None:
    """Each bad input is refused with exactly these lines, in file order, and no plan."""
    result, lines = _lines(name)
    path = os.path.relpath(FIXTURES / name)
    assert lines == [line.replace("{p}", path) for line in expected]
    assert result.plan is None


def test_billion_laughs_is_refused_at_once() -> None:
    """Anchors are refused at the first one: no expansion, well under 100 ms."""
    _lines("02-billion-laughs.yaml")
    started = time.perf_counter()
    result, _ = _lines("02-billion-laughs.yaml")
    assert time.perf_counter() - started < 0.1
    assert result.errors == 1


def test_leading_zeros_and_dates_stay_text() -> None:
    """`0123` stays the string "0123" and `2024-01-01` the string it is (items 6 and 7)."""
    result, lines = _lines("06-leading-zero.yaml")
    assert lines == []
    assert result.plan is not None
    assert result.plan.ticket == "0123"
    assert result.plan.targets[0].note == "0042"


def test_nesting_depth_is_refused_without_recursion_error(tmp_path: Path) -> None:
    """10,000 levels of nesting stop at level 65 with a message, not a RecursionError."""
    path = tmp_path / "deep.yaml"
    path.write_text("targets: " + "[" * 10_000 + "]" * 10_000 + "\n")
    result = validate.load(path)
    assert validate.render_text([result]) == [
        f"{path}:1:73: nesting depth > 64: a plan is never this deep; is the file a plan?"
    ]


def test_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    """A 500 MB plan is refused by size alone (a sparse file: nothing is read)."""
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(500 * 1024 * 1024)
    started = time.perf_counter()
    result = validate.load(path)
    assert time.perf_counter() - started < 1
    assert validate.render_text([result]) == [
        f"{path}: plan exceeds 10 MB (500.0 MB); split it into several files"
    ]


def test_field_over_128_kib_is_reported_by_line(tmp_path: Path) -> None:
    """A field over 128 KiB is refused at its physical line (item 30)."""
    path = tmp_path / "big.csv"
    path.write_text(
        "user,note\nadele.vance@contoso.com,ok\nalex.wilber@contoso.com," + "x" * 140_000
    )
    result = validate.load(path, settings=CSV_ACTIONS)
    assert validate.render_text([result]) == [f"{path}:3: field too large (over 128 KiB)"]


@pytest.mark.parametrize(
    ("name", "count"),
    [("22-utf8-bom.csv", 1), ("23-utf16-unicode-text.txt", 1), ("27-mixed-newlines.csv", 2)],
)
def test_csv_encodings_and_newlines_that_are_accepted(name: str, count: int) -> None:
    """UTF-8 with BOM, UTF-16 "Unicode Text" (tab separated), mixed newlines: read as meant."""
    result, lines = _lines(name)
    assert lines == []
    assert result.plan is not None
    assert [target.value for target in result.plan.targets][:1] == ["adele.vance@contoso.com"]
    assert len(result.plan.targets) == count


def test_blank_lines_are_counted() -> None:
    """Blank lines and rows of empty cells are skipped, and the summary counts them."""
    result, _ = _lines("27-mixed-newlines.csv")
    assert result.blank_lines == 3
    path = os.path.relpath(FIXTURES / "27-mixed-newlines.csv")
    assert validate.summary(result) == f"{path}: valid (2 targets, 3 blank lines ignored)"


def test_cp1252_is_read_with_encoding_option() -> None:
    """The cp1252 file that was refused reads correctly with `--encoding cp1252`."""
    result, lines = _lines("24-cp1252.csv", dialect=CsvDialect(encoding="cp1252"))
    assert lines == []
    assert result.plan is not None
    assert result.plan.targets[0].note == "Café staff"


def test_semicolon_file_reads_with_delimiter_option() -> None:
    """The semicolon file that was refused reads as two columns with `--delimiter ';'`."""
    result, lines = _lines("26-semicolon.csv", dialect=CsvDialect(delimiter=";"))
    assert lines == []
    assert result.plan is not None
    assert result.plan.targets[0].note == "Retail"


def test_surrounding_whitespace_is_stripped_with_a_warning() -> None:
    """ASCII whitespace around a UPN is removed, with a warning; the plan is valid (37)."""
    result, lines = _lines("37-whitespace.yaml")
    path = os.path.relpath(FIXTURES / "37-whitespace.yaml")
    assert lines == [
        f"{path}:5:11: /targets/0/user: warning: surrounding whitespace removed from "
        "' adele.vance@contoso.com\\t'"
    ]
    assert result.plan is not None
    assert result.plan.targets[0].value == "adele.vance@contoso.com"


def test_case_duplicates_become_one_target_with_a_warning() -> None:
    """The same UPN in two cases is one target, acted on once, with a warning (38)."""
    result, lines = _lines("38-case-duplicate.yaml")
    path = os.path.relpath(FIXTURES / "38-case-duplicate.yaml")
    assert lines == [
        f"{path}:6:11: /targets/1/user: warning: user adele.vance@contoso.com is listed twice "
        "(first at line 5); it is acted on once"
    ]
    assert result.plan is not None
    assert [t.value for t in result.plan.targets] == ["adele.vance@contoso.com"]
    assert result.warnings == 1


def _check_yaml(text: str) -> validate.Validated:
    from runner.planfile import parse_yaml

    return validate.check(parse_yaml(text.encode(), path="p.yaml"))


HEAD = "version: 1\nname: t\n"


def test_duplicates_with_different_actions_are_an_error() -> None:
    """The same user twice with different actions cannot be collapsed silently."""
    result = _check_yaml(
        HEAD + "targets:\n  - user: a@contoso.com\n    actions: [disable_account]\n"
        "  - user: A@contoso.com\n    actions: [reset_password]\n"
    )
    assert validate.render_text([result]) == [
        "p.yaml:6:11: /targets/1/user: user a@contoso.com is listed twice (first at line 4) "
        "with different actions; keep one"
    ]


def test_revoking_before_the_reset_is_a_warning() -> None:
    """revoke_sessions before reset_password or disable_account warns, naming the fix (§4)."""
    result = _check_yaml(
        HEAD + "actions: [revoke_sessions, disable_account]\ntargets:\n  - user: a@contoso.com\n"
    )
    assert validate.render_text([result]) == [
        "p.yaml:3:11: /actions/0: warning: revoke_sessions comes before disable_account, so a "
        "stolen password could sign in again after the revocation; put disable_account first "
        "(Microsoft's order: disable or reset, then revoke, then remove methods)"
    ]
    assert result.ok


def test_microsofts_order_gives_no_warning() -> None:
    """Reset, then revoke, then remove methods is accepted without a warning."""
    result = _check_yaml(
        HEAD + "actions: [reset_password, revoke_sessions, require_mfa_reregistration]\n"
        "targets:\n  - user: a@contoso.com\n    actions: [disable_account, revoke_mfa_sessions]\n"
    )
    assert result.problems == ()


def test_alias_listed_with_its_action_is_a_duplicate() -> None:
    """revoke_mfa_sessions next to revoke_sessions is the same action twice."""
    result = _check_yaml(
        HEAD
        + "actions: [revoke_sessions, revoke_mfa_sessions]\ntargets:\n  - user: a@contoso.com\n"
    )
    assert validate.render_text([result]) == [
        "p.yaml:3:28: /actions/1: revoke_mfa_sessions is another name for revoke_sessions, "
        "which is already listed; keep one"
    ]


def test_required_options_are_named_with_an_example() -> None:
    """set_per_user_mfa without its state says what to add."""
    result = _check_yaml(HEAD + "actions: [set_per_user_mfa]\ntargets:\n  - user: a@contoso.com\n")
    assert validate.render_text([result]) == [
        "p.yaml:3:11: /actions/0: set_per_user_mfa needs options: add "
        "`options: {set_per_user_mfa: {state: enforced}}`"
    ]


def test_missing_key_inside_options_is_reported_at_its_mapping() -> None:
    """An options mapping without a required key is reported at that mapping's key."""
    result = _check_yaml(
        HEAD + "actions: [remove_auth_methods]\noptions:\n  remove_auth_methods: {}\n"
        "targets:\n  - user: a@contoso.com\n"
    )
    assert validate.render_text([result]) == [
        "p.yaml:5:3: /options/remove_auth_methods: missing required key 'method_types' "
        "(a list of method types, like [fido2, email])"
    ]


def test_unreal_start_time_is_refused() -> None:
    """A start time of the right shape but no real date (month 13) is refused."""
    result = _check_yaml(
        HEAD + "actions: [create_temporary_access_pass]\noptions:\n"
        "  create_temporary_access_pass: {start_time: '2026-13-01T09:00:00Z'}\n"
        "targets:\n  - user: a@contoso.com\n"
    )
    assert validate.render_text([result]) == [
        "p.yaml:5:46: /options/create_temporary_access_pass/start_time: "
        "'2026-13-01T09:00:00Z' is not a real date and time"
    ]


def test_a_final_newline_inside_a_value_is_refused() -> None:
    """`$` in a pattern would let "name\\n" and a start time with a final newline through."""
    result = _check_yaml(
        'version: 1\nname: "quick\\n"\nactions: [create_temporary_access_pass]\noptions:\n'
        '  create_temporary_access_pass: {start_time: "2026-12-01T09:00:00Z\\n"}\n'
        'targets:\n  - user: "a@contoso.com\\n"\n'
    )
    assert [p.pointer for p in result.problems] == [
        "/name",
        "/options/create_temporary_access_pass/start_time",
        "/targets/0/user",
    ]


def test_target_with_two_kinds_or_none_is_refused() -> None:
    """A target names exactly one of user, group or query."""
    result = _check_yaml(
        HEAD + "actions: [disable_account]\ntargets:\n"
        "  - user: a@contoso.com\n    group: Finance\n  - note: nobody\n"
    )
    assert validate.render_text([result]) == [
        "p.yaml:5:5: /targets/0: a target names exactly one of user, group or query; this one "
        "has user and group",
        "p.yaml:7:5: /targets/1: a target needs one of user, group or query",
    ]


def test_problem_list_is_capped_with_a_count_of_the_rest() -> None:
    """Past the cap, one line says how many problems are not shown."""
    users = "".join(f"  - user: bad user {n}@contoso.com\n" for n in range(60))
    result = _check_yaml(HEAD + "actions: [disable_account]\ntargets:\n" + users)
    lines = validate.render_text([result])
    assert len(lines) == validate.PROBLEM_LIMIT + 1
    assert lines[-1] == (
        "p.yaml: 10 more problems not shown; fix these and run `entra-bulk validate` again"
    )


def test_json_rendering_lists_every_field() -> None:
    """The JSON form has the file's verdict, counts, and each problem's fields."""
    result = _check_yaml(HEAD + "actions: [disabel]\ntargets:\n  - user: a@contoso.com\n")
    data = validate.render_json([result])
    assert data["valid"] is False
    (file,) = data["files"]
    assert {key: file[key] for key in ("path", "form", "valid", "errors", "warnings")} == {
        "path": "p.yaml",
        "form": "yaml",
        "valid": False,
        "errors": 1,
        "warnings": 0,
    }
    assert file["problems"][0] == {
        "path": "p.yaml",
        "line": 3,
        "col": 11,
        "pointer": "/actions/0",
        "column": None,
        "option": None,
        "severity": "error",
        "message": f"unknown action 'disabel'; did you mean 'disable_account'? (valid: {VALID})",
    }


def test_csv_plan_without_actions_names_both_fixes() -> None:
    """A CSV with no --actions and no actions column says how to give actions."""
    result = validate.load(os.path.relpath(FIXTURES / "22-utf8-bom.csv"))
    path = os.path.relpath(FIXTURES / "22-utf8-bom.csv")
    assert validate.render_text([result]) == [
        f"{path}:2: 1 target has no actions: pass --actions (like --actions "
        "disable_account,revoke_sessions) or add an actions column"
    ]


def test_csv_option_problems_name_the_option() -> None:
    """An unknown action given with --actions is reported at the option, not a line."""
    settings = validate.CsvPlanSettings(actions=("disable_acount",), name="bad name")
    path = os.path.relpath(FIXTURES / "22-utf8-bom.csv")
    result = validate.load(path, settings=settings)
    assert validate.render_text([result]) == [
        f"{path}: option --name: a plan name is 1 to 64 letters, digits, '.', '-' or '_', "
        "starting with a letter or digit (it names the run folder)",
        f"{path}: option --actions: unknown action 'disable_acount'; did you mean "
        f"'disable_account'? (valid: {VALID})",
    ]


def test_targets_from_problems_point_into_the_csv(tmp_path: Path) -> None:
    """A YAML plan's targets_from CSV is read relative to the plan; its problems name it."""
    (tmp_path / "plan.yaml").write_text(
        HEAD + "actions: [disable_account]\ntargets:\n  - user: a@contoso.com\n"
        "targets_from: people.csv\n"
    )
    (tmp_path / "people.csv").write_text("user,actions\nb@contoso.com,\nc d@contoso.com,\n")
    result = validate.load(tmp_path / "plan.yaml")
    assert validate.render_text([result]) == [
        f"{tmp_path / 'people.csv'}:3: column user: character ' ' (U+0020) at position 2 is "
        f"not allowed in a UPN: {UPN_CHARS}"
    ]


def test_missing_targets_from_file_is_reported_at_the_key(tmp_path: Path) -> None:
    """A targets_from file that does not exist is reported where the plan names it."""
    (tmp_path / "plan.yaml").write_text(
        HEAD + "actions: [disable_account]\ntargets_from: gone.csv\n"
    )
    result = validate.load(tmp_path / "plan.yaml")
    assert validate.render_text([result]) == [
        f"{tmp_path / 'plan.yaml'}:4:15: /targets_from: {tmp_path / 'gone.csv'}: no such file"
    ]


def test_warnings_are_marked_and_errors_are_not() -> None:
    """Severity is part of the record and of the rendered line."""
    result, _ = _lines("38-case-duplicate.yaml")
    assert [p.severity for p in result.problems] == [Severity.WARNING]


def test_rows_of_the_same_shape_are_each_reported_at_their_own_line(tmp_path: Path) -> None:
    """Schema checks shared by identical rows still point at every row that has the problem."""
    path = tmp_path / "wave.csv"
    rows = [
        f"user{n}@contoso.com,{'disabel' if n in (3, 19_998) else 'disable_account'}"
        for n in range(20_000)
    ]
    path.write_text("user,actions\n" + "\n".join(rows) + "\n")
    result = validate.load(path)
    lines = validate.render_text([result])
    guess = f"unknown action 'disabel'; did you mean 'disable_account'? (valid: {VALID})"
    assert lines == [f"{path}:5: column actions: {guess}", f"{path}:20000: column actions: {guess}"]


def test_twenty_thousand_rows_build_a_plan(tmp_path: Path) -> None:
    """A large CSV validates into a plan with every target, in file order."""
    path = tmp_path / "wave.csv"
    path.write_text("user\n" + "".join(f"user{n}@contoso.com\n" for n in range(20_000)))
    result = validate.load(path, settings=CSV_ACTIONS)
    assert result.plan is not None
    assert len(result.plan.targets) == 20_000
    assert result.plan.targets[-1].source is not None
    assert result.plan.targets[-1].source.line == 20_001


_JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 50)
    | st.sampled_from([0.05, "", "x", "disable_account", "revoke_mfa_sessions", "a@contoso.com"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["user", "group", "query", "actions", "state", "method_types", "note"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "version": st.sampled_from([1, 2, "1", None]),
            "name": _JSONISH,
            "actions": _JSONISH,
            "options": st.dictionaries(
                st.sampled_from(["reset_password", "set_per_user_mfa", "nope"]), _JSONISH
            ),
            "targets": _JSONISH,
            "targets_from": _JSONISH,
            "safety": st.dictionaries(
                st.sampled_from(["protected_users", "allow_privileged", "canary"]), _JSONISH
            ),
        },
    )
)
def test_checking_any_shape_of_data_never_crashes(data: dict[str, object]) -> None:
    """Whatever a YAML file holds, `check` returns problems or a plan; it never raises."""
    from runner.planfile import PlanForm, RawPlan

    raw = RawPlan(path="p.yaml", form=PlanForm.YAML, data=data, locations={})
    result = validate.check(raw)
    assert (result.plan is None) == any(problem.is_error for problem in result.problems)
