"""The emulator's OData layer: `$filter` parsing, evaluation, SQL translation, query options."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.emulator import odata_query
from runner.emulator.odata import Compare, EntityType, Func, In, Logical, Not, parse_filter, prop
from runner.emulator.users_model import USER
from runner.emulator.wire import GraphError

SIMPLE = EntityType(
    name="microsoft.graph.thing",
    resource="Thing",
    props=(
        prop("id", default="eq in", advanced="ne not", column="id", lower_key=True),
        prop(
            "name", default="eq in ge le startsWith", advanced="ne not null endsWith", column="name"
        ),
        prop("enabled", "Edm.Boolean", default="eq in", advanced="ne not", column="enabled"),
        prop("created", "Edm.DateTimeOffset", default="eq ge le"),
        prop("tags", "Collection(Edm.String)"),
    ),
)


def _error(text: str, entity: EntityType = SIMPLE) -> GraphError:
    with pytest.raises(GraphError) as caught:
        parse_filter(text, entity)
    return caught.value


# -- parsing ---------------------------------------------------------------------------------


def test_parse_comparison_and_logic() -> None:
    """`and` binds tighter than `or`; property names resolve case-insensitively."""
    expr = parse_filter("NAME eq 'a' or name eq 'b' and enabled eq true", SIMPLE)
    assert isinstance(expr, Logical) and expr.op == "or"
    assert isinstance(expr.right, Logical) and expr.right.op == "and"
    assert isinstance(expr.left, Compare) and expr.left.prop.name == "name"


def test_parse_doubled_quote_is_one_apostrophe() -> None:
    """`''` inside a string literal is an escaped apostrophe."""
    expr = parse_filter("name eq 'o''brien@contoso.com'", SIMPLE)
    assert isinstance(expr, Compare)
    assert expr.lit.value == "o'brien@contoso.com"


def test_parse_functions_in_and_not() -> None:
    """startsWith/endswith (any case), `in` lists and `not` parse into their nodes."""
    assert isinstance(parse_filter("startsWith(name,'ab')", SIMPLE), Func)
    assert isinstance(parse_filter("ENDSWITH(name, 'ab')", SIMPLE), Func)
    in_expr = parse_filter("id in ('A', 'b')", SIMPLE)
    assert isinstance(in_expr, In) and len(in_expr.lits) == 2
    assert isinstance(parse_filter("NOT(name eq 'x')", SIMPLE), Not)
    assert isinstance(parse_filter("not startswith(name,'x')", SIMPLE), Not)


def test_parse_datetime_literals() -> None:
    """DateTimeOffset and Date literals compare with DateTimeOffset properties."""
    expr = parse_filter("created ge 2026-01-02T03:04:05Z", SIMPLE)
    assert isinstance(expr, Compare)
    assert expr.lit.value == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    day = parse_filter("created le 2026-01-02", SIMPLE)
    assert isinstance(day, Compare) and day.lit.edm == "Edm.Date"


@pytest.mark.parametrize(
    ("text", "position"),
    [
        # The token after the broken literal ends at 29 ("brien").
        ("userPrincipalName eq 'o'brien@x.com'", 29),
        # Graph's own example (a Dataverse report): the stray token 's' ends at 183.
        (
            "_admin_environment_value eq 8a84df77-b312-4da4-ac92-93e80810d0ab and "
            "admin_securityroletemplateid eq 627090ff-40a3-4053-8790-584edc5be201 and "
            "admin_businessunitname eq 'Commissioner's Office'",
            183,
        ),
        ("name eq 'unterminated", 21),
        ("name eq #", 8),
        ("name eq", 7),
        ("(name eq 'a'", 12),
        ("", 0),
        ("name eq 'a' and", 15),
    ],
)
def test_syntax_error_message_and_position(text: str, position: int) -> None:
    """Syntax errors are 400 BadRequest with Graph's exact message and the lexer position."""
    entity = USER
    if text.startswith("_admin"):
        entity = EntityType(
            name="x",
            resource="X",
            props=(
                prop("_admin_environment_value", "Edm.Guid", default="eq"),
                prop("admin_securityroletemplateid", "Edm.Guid", default="eq"),
                prop("admin_businessunitname", default="eq"),
            ),
        )
    err = _error(text, entity)
    assert (err.status, err.code) == (400, "BadRequest")
    assert err.message == f"Invalid filter clause: Syntax error at position {position} in '{text}'."


def test_unknown_property_is_400() -> None:
    """An unknown property is the OData library's 400."""
    err = _error("colour eq 'red'")
    assert (err.status, err.code) == (400, "BadRequest")
    assert (
        err.message == "Could not find a property named 'colour' on type 'microsoft.graph.thing'."
    )


def test_syntax_errors_win_over_binding_errors() -> None:
    """As in the OData library, the whole text is parsed before names and types are bound."""
    assert _error("colour eq 'a' and").message.startswith("Invalid filter clause: Syntax error")
    assert _error("enabled eq 'x' or (").message.startswith("Invalid filter clause")
    assert _error("nosuch(name,'a') and").message.startswith("Invalid filter clause")


def test_incompatible_types_are_400() -> None:
    """A Boolean compared with a string (or a date with a string) is refused, as OData does."""
    err = _error("enabled eq 'true'")
    assert err.message == (
        "A binary operator with incompatible types was detected. Found operand types "
        "'Edm.Boolean' and 'Edm.String' for operator kind 'Equal'."
    )
    assert "GreaterThanOrEqual" in _error("created ge '2020-01-01'").message


def test_unknown_function_and_wrong_arguments() -> None:
    """Functions other than startswith/endswith, or with wrong arguments, are 400."""
    assert "unknown function with name 'contains'" in _error("contains(name,'a')").message
    assert _error("startswith(enabled,'a')").message.startswith(
        "No function signature for the function with name 'startswith'"
    )


def test_collections_and_lambdas_are_unsupported() -> None:
    """Collection properties (lambda `any`) answer the directory's unsupported-clause 400."""
    err = _error("tags/any(t:t eq 'x')")
    assert (err.status, err.code) == (400, "Request_UnsupportedQuery")
    assert err.message == (
        "Unsupported or invalid query filter clause specified for property 'tags' "
        "of resource 'Thing'."
    )


def test_deep_nesting_is_a_graph_error() -> None:
    """Pathologically nested parentheses are a 400, never a RecursionError."""
    text = "(" * 3000 + "name eq 'a'" + ")" * 3000
    assert _error(text).status == 400


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("nameidtrufls eqorNTI()',/#-0123456789:TZ"))))
def test_parser_raises_only_graph_errors(text: str) -> None:
    """Whatever the input, the parser returns a tree or raises GraphError (nothing else)."""
    try:
        parse_filter(text, SIMPLE)
    except GraphError as err:
        assert err.status == 400


@settings(max_examples=200)
@given(st.text())
def test_parser_raises_only_graph_errors_on_any_text(text: str) -> None:
    """Arbitrary Unicode input never escapes as anything but a GraphError."""
    try:
        parse_filter(text, USER)
    except GraphError as err:
        assert err.status == 400


# -- capabilities: default vs advanced queries -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "operator"),
    [
        ("name ne 'a'", "ne"),
        ("not (name eq 'a')", "not"),
        ("endswith(name,'a')", "endsWith"),
    ],
)
def test_advanced_operators_need_advanced_queries(text: str, operator: str) -> None:
    """ne, not and endsWith need ConsistencyLevel + $count: Graph's exact message without."""
    expr = parse_filter(text, SIMPLE)
    with pytest.raises(GraphError) as caught:
        odata_query.check_capabilities(expr, SIMPLE, advanced=False)
    assert caught.value.code == "Request_UnsupportedQuery"
    assert caught.value.message == (
        f"Operator '{operator}' is not supported because the required parameters might be "
        "missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
        "Refer to https://aka.ms/graph-docs/advanced-queries for more information"
    )
    odata_query.check_capabilities(expr, SIMPLE, advanced=True)


def test_property_specific_capabilities() -> None:
    """An operator a property lacks (even in advanced queries) is the unsupported-clause 400."""
    for text in ("startswith(id,'a')", "created in (2020-01-01T00:00:00Z)", "name eq null"):
        with pytest.raises(GraphError) as caught:
            odata_query.check_capabilities(parse_filter(text, SIMPLE), SIMPLE, advanced=False)
        assert caught.value.code == "Request_UnsupportedQuery"
    odata_query.check_capabilities(parse_filter("name eq null", SIMPLE), SIMPLE, advanced=True)


# -- evaluation and SQL ----------------------------------------------------------------------

ROWS: list[dict[str, Any]] = [
    {"id": "0a", "name": "Adele", "enabled": 1, "created": "2020-01-01T00:00:00Z"},
    {"id": "0b", "name": "adele.v", "enabled": 0, "created": "2021-06-01T00:00:00Z"},
    {"id": "0c", "name": "O'Brien", "enabled": 1, "created": "2022-01-01T00:00:00Z"},
    {"id": "0d", "name": None, "enabled": 0, "created": "2023-01-01T00:00:00Z"},
    {"id": "0e", "name": "Zed_100%", "enabled": 1, "created": "2024-01-01T00:00:00Z"},
]


def _graph(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "enabled": bool(row["enabled"])}


def _matching(text: str) -> list[str]:
    expr = parse_filter(text, SIMPLE)
    return [row["id"] for row in ROWS if odata_query.matches(expr, _graph(row))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name eq 'ADELE'", ["0a"]),
        ("startswith(name,'adele')", ["0a", "0b"]),
        ("endswith(name,'%')", ["0e"]),
        ("name eq 'o''brien'", ["0c"]),
        ("name ne 'adele'", ["0b", "0c", "0d", "0e"]),
        ("name eq null", ["0d"]),
        ("name ne null and enabled eq false", ["0b"]),
        ("not (enabled eq true)", ["0b", "0d"]),
        ("id in ('0A', '0e')", ["0a", "0e"]),
        ("name ge 'b' ", ["0c", "0e"]),
        ("created ge 2022-01-01T00:00:00Z", ["0c", "0d", "0e"]),
        ("created le 2021-06-01", ["0a", "0b"]),
        ("enabled", ["0a", "0c", "0e"]),
    ],
)
def test_matches_case_insensitively(text: str, expected: list[str]) -> None:
    """Evaluation follows the directory: case-insensitive strings, null-safe comparisons."""
    assert _matching(text) == expected


def _sql_ids(text: str) -> list[str] | None:
    translated = odata_query.to_sql(parse_filter(text, SIMPLE))
    if translated is None:
        return None
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT, enabled INTEGER, created TEXT)")
    db.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?)",
        [(r["id"], r["name"], r["enabled"], r["created"]) for r in ROWS],
    )
    sql = f"SELECT id FROM t WHERE {translated[0]} ORDER BY id"  # noqa: S608 - translated filter
    return [row[0] for row in db.execute(sql, translated[1])]


def test_sql_translation_of_common_filters() -> None:
    """eq / in / startswith / null / ne on plain columns run as SQL; `not` and dates do not."""
    assert _sql_ids("name eq 'ADELE'") == ["0a"]
    assert _sql_ids("id in ('0A','0c')") == ["0a", "0c"]
    assert _sql_ids("startswith(name,'zed_1')") == ["0e"]
    assert _sql_ids("startswith(name,'zed_%')") == []
    assert _sql_ids("name eq null or enabled eq false") == ["0b", "0d"]
    assert _sql_ids("not (name eq 'a')") is None
    assert _sql_ids("created ge 2022-01-01T00:00:00Z") is None


_LEAVES = st.sampled_from(
    [
        "name eq 'adele'",
        "name eq 'O''BRIEN'",
        "name ne 'adele'",
        "name eq null",
        "name ne null",
        "startswith(name,'ad')",
        "endswith(name,'%')",
        "name ge 'b'",
        "name le 'adele'",
        "enabled eq true",
        "enabled ne true",
        "id in ('0a','0D')",
        "id eq '0E'",
    ]
)
_FILTERS = st.recursive(
    _LEAVES,
    lambda inner: st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
        lambda parts: f"({parts[0]}) {parts[1]} ({parts[2]})"
    ),
    max_leaves=6,
)


@settings(max_examples=150)
@given(_FILTERS)
def test_sql_translation_agrees_with_evaluation(text: str) -> None:
    """Wherever a filter translates to SQL, SQLite selects exactly what `matches` selects."""
    assert _sql_ids(text) == _matching(text)


# -- query options ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1000", "0", "-1"])
def test_top_outside_range_is_400(text: str) -> None:
    """`$top` outside 1..999 is Request_UnsupportedQuery with Graph's exact message."""
    with pytest.raises(GraphError) as caught:
        odata_query.parse_top(text)
    assert caught.value.code == "Request_UnsupportedQuery"
    assert caught.value.message == (
        f"Invalid page size specified: '{int(text)}'. Must be between 1 and 999 inclusive."
    )


def test_top_defaults_and_non_numbers() -> None:
    """No `$top` means 100; 999 is allowed; a non-number is the OData 400."""
    assert odata_query.parse_top(None) == 100
    assert odata_query.parse_top("999") == 999
    with pytest.raises(GraphError) as caught:
        odata_query.parse_top("ten")
    assert caught.value.code == "BadRequest"


def test_select_is_canonical_ordered_and_strict() -> None:
    """`$select` keeps request order, canonical casing, no duplicates; unknown names are 400."""
    assert odata_query.parse_select("ID, displayname,id", USER) == ("id", "displayName")
    assert odata_query.parse_select(None, USER) is None
    with pytest.raises(GraphError) as caught:
        odata_query.parse_select("id,aboutMe", USER)
    assert caught.value.message == (
        "Could not find a property named 'aboutMe' on type 'microsoft.graph.user'."
    )


def test_orderby_rules() -> None:
    """displayName sorts by default; createdDateTime only in advanced queries, as Graph says."""
    order = odata_query.parse_orderby("displayName desc", USER, advanced=False)
    assert order is not None and order.descending and order.prop.name == "displayName"
    with pytest.raises(GraphError) as caught:
        odata_query.parse_orderby("createdDateTime", USER, advanced=False)
    assert caught.value.message == "Unsupported sort property 'createdDateTime' for 'User'."
    assert odata_query.parse_orderby("createdDateTime", USER, advanced=True) is not None


def test_skiptoken_round_trip_and_garbage() -> None:
    """Page tokens are `X'…'` hex literals; a token we did not make is the expired-token 400."""
    token = odata_query.encode_skiptoken(("Adele Vance", "0a"))
    assert token.startswith("X'") and token.endswith("'")
    assert odata_query.decode_skiptoken(token) == ("Adele Vance", "0a")
    for garbage in ("abc", "X'zz'", "X'7B7D'", "X''"):
        with pytest.raises(GraphError) as caught:
            odata_query.decode_skiptoken(garbage)
        assert caught.value.code == "Directory_ExpiredPageToken"


def test_next_link_keeps_parameters_and_encodes() -> None:
    """The nextLink is absolute, keeps the original options and replaces `$skiptoken`."""
    link = odata_query.next_link(
        "https://graph.example/v1.0",
        "/users/x_fabrikam.com#EXT#@contoso.onmicrosoft.com/memberOf",
        {"$select": "id,displayName", "$filter": "name eq 'a b'", "$skiptoken": "X'00'"},
        "X'41'",
    )
    assert link == (
        "https://graph.example/v1.0/users/x_fabrikam.com%23EXT%23@contoso.onmicrosoft.com"
        "/memberOf?$select=id,displayName&$filter=name%20eq%20%27a%20b%27&$skiptoken=X%2741%27"
    )


def test_list_query_consistency_rules() -> None:
    """$count needs the header (else silently ignored); $search needs the header only."""
    plain = odata_query.list_query({"$count": "true"}, None, USER)
    assert not plain.count and not plain.advanced
    advanced = odata_query.list_query({"$count": "true"}, "Eventual", USER)
    assert advanced.count and advanced.advanced
    with pytest.raises(GraphError) as caught:
        odata_query.list_query({"$search": '"displayName:adele"'}, None, USER)
    assert caught.value.message == (
        "Request with $search query parameter only works through MSGraph with a special "
        "request header: 'ConsistencyLevel: eventual'"
    )
    assert odata_query.list_query({"$search": '"displayName:ad"'}, "eventual", USER).search
    with pytest.raises(GraphError) as sorting:
        odata_query.list_query(
            {"$filter": "startswith(displayName,'a')", "$orderby": "displayName"}, None, USER
        )
    assert sorting.value.message == "Sorting not supported for current query."


def test_search_tokenized_prefix_match() -> None:
    """`$search` matches a value or any of its words by prefix, with AND / OR between clauses."""
    search = odata_query.parse_search('"displayName:van" AND "mail:adele"', USER)
    assert odata_query.search_matches(
        search, {"displayName": "Adele Vance", "mail": "adele.vance@contoso.com"}
    )
    assert not odata_query.search_matches(
        search, {"displayName": "Adele Vance", "mail": "alex@contoso.com"}
    )
    either = odata_query.parse_search('"displayName:zzz" OR "mail:alex"', USER)
    assert odata_query.search_matches(either, {"displayName": "Alex", "mail": "alex@x.com"})
    with pytest.raises(GraphError):
        odata_query.parse_search("displayName:adele", USER)


_OPTION_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "5",
            "1000",
            "true",
            "nope",
            "displayName desc",
            "id,displayName",
            "X'5B2261225D'",
            '"displayName:a"',
            "accountEnabled eq true",
            "userType ne 'Guest'",
            "*",
            "id,,x",
        ]
    ),
    st.text(max_size=30),
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(
            ["$top", "$select", "$filter", "$orderby", "$count", "$search", "$skiptoken"]
        ),
        _OPTION_VALUES,
        max_size=5,
    ),
    st.sampled_from([None, "eventual", "strong"]),
)
def test_list_query_raises_only_graph_errors(query: dict[str, str], level: str | None) -> None:
    """Any combination of query options validates to a ListQuery or a 400 GraphError."""
    try:
        parsed = odata_query.list_query(query, level, USER)
    except GraphError as err:
        assert err.status == 400
    else:
        assert 1 <= parsed.top <= 999
