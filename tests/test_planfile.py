"""Strict reading of YAML and CSV plan files: types, positions, encodings, separators."""

from __future__ import annotations

import codecs
import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import planfile
from runner.planfile import CsvDialect, PlanForm
from runner.problem import PlanFileError

PLAIN = "a plan holds plain values only"
MAPPING = "a plan is a mapping of keys (version, name, actions, targets, ...)"
EXPECTED = "t.csv:1: expected"
USES = "between columns but the header uses"


def _yaml(text: str) -> planfile.RawPlan:
    return planfile.parse_yaml(text.encode(), path="p.yaml")


def _csv(data: bytes | str, **dialect: str) -> planfile.RawPlan:
    raw = data.encode() if isinstance(data, str) else data
    return planfile.parse_csv(raw, path="t.csv", dialect=CsvDialect(**dialect))


def _fails(call: object, *args: object, **kwargs: object) -> list[str]:
    with pytest.raises(PlanFileError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return [problem.render() for problem in caught.value.problems]


def test_plain_scalars_get_only_unsurprising_types() -> None:
    """true/false, null/~/empty, decimal ints and floats are typed; everything else is text."""
    raw = _yaml(
        "a: true\nb: false\nc: null\nd: ~\ne:\nf: 42\ng: -7\nh: 0.05\n"
        "i: no\nj: on\nk: 0123\nl: 2024-01-01\nm: 0x1F\nn: 1e3\no: True\np: .inf\nq: 1_000\n"
    )
    assert raw.data == {
        "a": True, "b": False, "c": None, "d": None, "e": None, "f": 42, "g": -7, "h": 0.05,
        "i": "no", "j": "on", "k": "0123", "l": "2024-01-01", "m": "0x1F", "n": "1e3",
        "o": "True", "p": ".inf", "q": "1_000",
    }  # fmt: skip


def test_quoted_and_block_scalars_are_always_text() -> None:
    """Quoting keeps the text: '42', "true", |-blocks."""
    raw = _yaml("a: '42'\nb: \"true\"\nc: |\n  null\n")
    assert raw.data == {"a": "42", "b": "true", "c": "null\n"}


def test_positions_of_values_and_keys() -> None:
    """Every value and key has its line and column, by JSON pointer (~ and / escaped)."""
    raw = _yaml('version: 1\ntargets:\n  - user: a@contoso.com\n"a/b~c": x\n')
    assert (raw.locations["/targets/0/user"].line, raw.locations["/targets/0/user"].col) == (3, 11)
    assert (
        raw.key_locations["/targets/0/user"].line,
        raw.key_locations["/targets/0/user"].col,
    ) == (
        3,
        5,
    )
    assert raw.locations["/a~1b~0c"].line == 4


def test_every_duplicate_key_is_reported_and_the_first_value_kept() -> None:
    """Duplicate keys are problems naming both lines; reading goes on to find the rest."""
    raw = _yaml("name: a\nname: b\nsafety:\n  canary: 1\n  canary: 2\n")
    assert [p.render() for p in raw.problems] == [
        "p.yaml:2:1: /name: duplicate key 'name' (first at line 1): keep one",
        "p.yaml:5:3: /safety/canary: duplicate key 'canary' (first at line 4): keep one",
    ]
    assert raw.data == {"name": "a", "safety": {"canary": 1}}


def test_duplicate_values_do_not_move_the_kept_values_positions() -> None:
    """Positions of a dropped duplicate never overwrite those of the kept value."""
    raw = _yaml("safety:\n  canary: 1\nsafety:\n  canary: 2\n")
    assert raw.locations["/safety/canary"].line == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: !custom x\n", f"p.yaml:1:4: tags are not allowed (found !custom): {PLAIN}"),
        ("a: *x\n", "p.yaml:1:4: aliases (*x) are not allowed: write the value out in full"),
        ("%TAG !e! t:x,2000:\n---\na: 1\n", "p.yaml:1:1: tag directives (%TAG) are not allowed"),
        ("? [a]\n: 1\n", "p.yaml:1:3: keys must be plain text, not lists or mappings"),
        ("- a\n", f"p.yaml:1:1: {MAPPING}; this file holds a list"),
        ("just text\n", f"p.yaml:1:1: {MAPPING}; this file holds a single value"),
        ("a: 'x\x07'\n", "p.yaml:1:6: character U+0007 is not allowed in a YAML file; remove it"),
    ],
)  # fmt: skip
def test_yaml_structures_that_are_refused(text: str, expected: str) -> None:
    """Tags, aliases, tag directives, complex keys, non-mapping roots, control characters."""
    assert _fails(_yaml, text) == [expected]


def test_utf8_bom_and_utf16_yaml_are_read() -> None:
    """A YAML plan saved with a UTF-8 BOM or as UTF-16 reads the same."""
    text = "version: 1\nname: café\n"
    for data in (codecs.BOM_UTF8 + text.encode(), text.encode("utf-16")):
        assert planfile.parse_yaml(data, path="p.yaml").data == {"version": 1, "name": "café"}


def test_read_refuses_unknown_extensions_folders_and_missing_files(tmp_path: Path) -> None:
    """What is not a plan file says so, by path."""
    (tmp_path / "plan.json").write_text("{}")
    (tmp_path / "dir.yaml").mkdir()
    assert _fails(planfile.read, tmp_path / "plan.json") == [
        f"{tmp_path / 'plan.json'}: not a plan file: name it .yaml or .yml (a plan) or .csv "
        "(a list of users)"
    ]
    assert _fails(planfile.read, tmp_path / "dir.yaml") == [
        f"{tmp_path / 'dir.yaml'}: is a folder, not a plan file"
    ]
    assert _fails(planfile.read, tmp_path / "gone.csv") == [
        f"{tmp_path / 'gone.csv'}: no such file"
    ]


def test_form_of_names_the_two_forms() -> None:
    """.yaml/.yml are YAML; .csv/.tsv/.txt (Excel's Unicode Text) are CSV."""
    assert [planfile.form_of(n) for n in ("a.yaml", "a.YML", "a.csv", "a.txt", "a.json")] == [
        PlanForm.YAML, PlanForm.YAML, PlanForm.CSV, PlanForm.CSV, None,
    ]  # fmt: skip


def test_csv_column_spellings_and_template_headers() -> None:
    """user/userPrincipalName/UPN/id/objectId in any case, and `Label [prop] Required`."""
    for header in (
        "user",
        "USERPRINCIPALNAME",
        "upn",
        "Id",
        "objectid",
        "User name [userPrincipalName] Required",
    ):
        raw = _csv(f"{header}\nadele@contoso.com\n")
        assert raw.data == {"targets": [{"user": "adele@contoso.com"}]}, header


def test_csv_entra_template_as_downloaded() -> None:
    """The version line (with trailing separators) is skipped; the header follows it."""
    raw = _csv(
        "version:v1.0,,\r\n"
        "User name [userPrincipalName] Required,Note [note]\r\n"
        "adele@contoso.com,x\r\n"
    )
    assert raw.data == {"targets": [{"user": "adele@contoso.com", "note": "x"}]}
    assert raw.locations["/targets/0/user"].line == 3
    assert raw.locations["/targets/0/user"].column == "userPrincipalName"


def test_csv_actions_column_and_action_columns() -> None:
    """`actions` holds `;`-separated names; action columns hold true/false per action."""
    raw = _csv('user,actions\na@contoso.com,"reset_password; revoke_sessions"\nb@contoso.com,\n')
    assert raw.data["targets"] == [
        {"user": "a@contoso.com", "actions": ["reset_password", "revoke_sessions"]},
        {"user": "b@contoso.com"},
    ]
    raw = _csv("user,disable_account,revoke_mfa_sessions\na@contoso.com,TRUE,1\nb@contoso.com,,\n")
    assert raw.data["targets"] == [
        {"user": "a@contoso.com", "actions": ["disable_account", "revoke_sessions"]},
        {"user": "b@contoso.com"},
    ]


def test_csv_row_whose_action_columns_are_all_false_is_an_error() -> None:
    """A row that says false to every action is refused, never given the plan's actions."""
    raw = _csv("user,disable_account,reset_password\na@contoso.com,false,\nb@contoso.com,0,0\n")
    assert [p.render() for p in raw.problems] == [
        "t.csv:2: every action column of this row is false or empty, so it selects no action; "
        "set one to true, or delete the row",
        "t.csv:3: every action column of this row is false or empty, so it selects no action; "
        "set one to true, or delete the row",
    ]


def test_csv_actions_in_two_places_is_an_error() -> None:
    """A row cannot give actions both in the actions column and in action columns."""
    raw = _csv("user,actions,disable_account\na@contoso.com,reset_password,true\n")
    assert [p.render() for p in raw.problems] == [
        "t.csv:2: actions are given both in the actions column and in action columns; use one"
    ]


def test_csv_misspelt_column_is_an_error_and_unknown_one_a_warning() -> None:
    """A near-miss of a known column is refused with a hint; other columns are ignored."""
    assert _fails(_csv, "user,acitons\na@contoso.com,x\n") == [
        "t.csv:1: column acitons: unknown column 'acitons'; did you mean 'actions'?"
    ]
    raw = _csv("user,department\na@contoso.com,Sales\n")
    assert [p.render() for p in raw.problems] == [
        "t.csv:1: column department: warning: column 'department' is not used by entra-bulk "
        "and is ignored"
    ]


@pytest.mark.parametrize(
    ("data", "dialect", "expected"),
    [
        ("user\ta\nx\ty\n", {}, f"{EXPECTED} ',' {USES} tab (use --delimiter tab)"),
        ("user,a\nx,y\n", {"delimiter": ";"}, f"{EXPECTED} ';' {USES} ',' (use --delimiter ,)"),
        ("user;a\nx;y\n", {"delimiter": "\t"}, f"{EXPECTED} tab {USES} ';' (use --delimiter ';')"),
    ],
)  # fmt: skip
def test_csv_separator_is_never_guessed(data: str, dialect: dict[str, str], expected: str) -> None:
    """A header with another separator is an error naming the option to pass."""
    assert _fails(_csv, data, **dialect) == [expected]


def test_csv_tab_with_option_and_utf16_comma() -> None:
    """Tab works with --delimiter tab; a UTF-16 file may also be comma separated."""
    assert _csv("user\tnote\na@contoso.com\tx\n", delimiter="\t").data["targets"] == [
        {"user": "a@contoso.com", "note": "x"}
    ]
    data = "user,note\r\na@contoso.com,x\r\n".encode("utf-16")
    assert _csv(data).data["targets"] == [{"user": "a@contoso.com", "note": "x"}]


def test_csv_encoding_problems() -> None:
    """UTF-16 without BOM, unknown and non-text encodings are refused with a way forward."""
    assert _fails(_csv, "user\r\na@contoso.com\r\n".encode("utf-16-le")) == [
        "t.csv:1: the file looks like UTF-16 without a byte-order mark; re-save it as CSV "
        "UTF-8 or pass --encoding utf-16-le"
    ]
    assert _csv("user\r\na@contoso.com\r\n".encode("utf-16-le"), encoding="utf-16-le").data == {
        "targets": [{"user": "a@contoso.com"}]
    }
    assert _fails(_csv, b"user\n", encoding="klingon") == [
        "t.csv: unknown encoding 'klingon': try utf-8, utf-16 or cp1252"
    ]
    assert _fails(_csv, b"user\n", encoding="rot13") == [
        "t.csv: 'rot13' is not a text encoding: try utf-8, utf-16 or cp1252"
    ]


def test_csv_quote_followed_by_text_is_reported_at_its_line() -> None:
    """`"a"b` is an error at that line; the following rows are still read."""
    raw = _csv('user,note\na@contoso.com,"x"y\nb@contoso.com,z\n')
    assert [p.render() for p in raw.problems] == [
        't.csv:2: text after a closing quote; double a quote inside a quoted field ("")'
    ]
    assert raw.data["targets"] == [{"user": "b@contoso.com", "note": "z"}]


def test_csv_quote_closed_on_a_later_line_is_blamed_on_its_opening() -> None:
    """A quote that swallows lines and then meets text is reported where it opened."""
    raw = _csv('user,note\na@contoso.com,"x\nb@contoso.com,"y"z\nc@contoso.com,w\n')
    assert next(p.render() for p in raw.problems) == (
        "t.csv:2: the quoted field starting at line 2 is not closed properly (the quote that "
        "ends it on line 3 is followed by text); check its quotes"
    )
    assert {"user": "c@contoso.com", "note": "w"} in raw.data["targets"]


def test_csv_empty_file_says_what_to_write() -> None:
    """An empty or blank file has no targets, and the message says what a CSV plan holds."""
    assert _fails(_csv, "\n\n") == [
        "t.csv:1: no targets: the file is empty; write a header (user) and one user per row"
    ]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_yaml_reader_raises_only_its_own_error(data: bytes) -> None:
    """On any bytes, the YAML reader returns a RawPlan or raises PlanFileError, nothing else."""
    with contextlib.suppress(PlanFileError):
        planfile.parse_yaml(data, path="fuzz.yaml")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=2000)
    | st.text(alphabet='user,actions;"\r\n\t\x00 a@b.c' + "\u00e9\ufeff", max_size=300).map(
        lambda text: text.encode()
    )
)
def test_csv_reader_raises_only_its_own_error(data: bytes) -> None:
    """On any bytes, the CSV reader returns a RawPlan or raises PlanFileError, nothing else."""
    for dialect in (CsvDialect(), CsvDialect(delimiter=";"), CsvDialect(encoding="cp1252")):
        with contextlib.suppress(PlanFileError):
            planfile.parse_csv(data, path="fuzz.csv", dialect=dialect)


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("version: 1\nname- [{}]&*!|>'\"#%@`,?~<\t")),
        max_size=200,
    )
)
def test_yaml_reader_on_yaml_like_text_raises_only_its_own_error(text: str) -> None:
    """YAML-shaped noise (anchors, tags, flows, quotes) never escapes as another exception."""
    with contextlib.suppress(PlanFileError):
        planfile.parse_yaml(text.encode(), path="fuzz.yaml")
