"""OData query options of Graph's directory: capabilities, evaluation, SQL, paging.

`list_query` validates a collection request the way the directory does (graph-reference §8
and Microsoft's "advanced query capabilities" page): `$top` 1-999, `$select`, `$orderby`,
`$count`, `$search`, `$skiptoken`, and the `ConsistencyLevel: eventual` rules. `matches`
evaluates a parsed `$filter` on a Graph-shaped dict; `to_sql` translates the common filters
so that lookups by id or UPN use the tenant database's indexes. String comparisons are
case-insensitive, as in the directory. Page tokens are opaque `X'…'` hex literals carrying
the sort key of the last item served.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from runner.emulator.odata import (
    BoolProp,
    Compare,
    EntityType,
    Expr,
    Func,
    In,
    Lit,
    Logical,
    Not,
    Prop,
    parse_filter,
    unsupported_clause,
)
from runner.emulator.wire import GraphError

ADVANCED_MESSAGE = (
    "Operator '{op}' is not supported because the required parameters might be missing. "
    "Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
    "Refer to https://aka.ms/graph-docs/advanced-queries for more information"
)
SEARCH_MESSAGE = (
    "Request with $search query parameter only works through MSGraph with a special "
    "request header: 'ConsistencyLevel: eventual'"
)


# -- capabilities: what the directory serves by default, in advanced queries, or never ------


def _uses(expr: Expr) -> Iterable[tuple[str, Prop | None]]:
    """(operator, property) pairs a filter uses, `not` and `null` included."""
    if isinstance(expr, Logical):
        yield from _uses(expr.left)
        yield from _uses(expr.right)
    elif isinstance(expr, Not):
        yield "not", None
        yield from _uses(expr.operand)
    elif isinstance(expr, Compare):
        if expr.lit.edm == "null":
            yield "null", expr.prop
            if expr.op == "ne":
                yield "ne", expr.prop
        else:
            yield {"gt": "ge", "lt": "le"}.get(expr.op, expr.op), expr.prop
    elif isinstance(expr, In):
        yield "in", expr.prop
    elif isinstance(expr, Func):
        yield expr.name, expr.prop
    else:
        yield "eq", expr.prop


def check_capabilities(expr: Expr, entity: EntityType, *, advanced: bool) -> None:
    """400 when the filter needs advanced query parameters that are missing, or uses an
    operator the property does not support at all."""
    global_advanced = {"ne", "not", "endsWith"}
    for op, target in _uses(expr):
        if not entity.directory:
            if target is not None and not (target.default_ops | target.advanced_ops):
                raise unsupported_clause(target.name, entity)
            continue
        if op in global_advanced and not advanced:
            raise GraphError(400, "Request_UnsupportedQuery", ADVANCED_MESSAGE.format(op=op))
        if target is None:
            continue
        allowed = target.default_ops | (target.advanced_ops if advanced else frozenset())
        if op not in allowed:
            raise unsupported_clause(target.name, entity)


# -- evaluation -----------------------------------------------------------------------------


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _comparable(prop_: Prop, value: Any) -> Any:
    if value is None:
        return None
    if prop_.edm == "Edm.DateTimeOffset" and isinstance(value, str):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return _fold(value)


def matches(expr: Expr, obj: Mapping[str, Any]) -> bool:
    """Does a Graph-shaped object satisfy the filter? (Strings compare case-insensitively.)"""
    if isinstance(expr, Logical):
        if expr.op == "and":
            return matches(expr.left, obj) and matches(expr.right, obj)
        return matches(expr.left, obj) or matches(expr.right, obj)
    if isinstance(expr, Not):
        return not matches(expr.operand, obj)
    if isinstance(expr, BoolProp):
        return obj.get(expr.prop.name) is True
    value = _comparable(expr.prop, obj.get(expr.prop.name))
    if isinstance(expr, In):
        return any(value == _fold(lit.value) for lit in expr.lits if value is not None)
    if isinstance(expr, Func):
        if not isinstance(value, str):
            return False
        needle = str(expr.lit.value).casefold()
        return value.startswith(needle) if expr.name == "startsWith" else value.endswith(needle)
    expected = _fold(expr.lit.value)
    if expr.op == "eq":
        return bool(value == expected)
    if expr.op == "ne":
        return bool(value != expected)
    if value is None or expected is None:
        return False
    try:
        return bool(
            {
                "gt": value > expected,
                "ge": value >= expected,
                "lt": value < expected,
                "le": value <= expected,
            }[expr.op]
        )
    except TypeError:
        return False


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def to_sql(expr: Expr) -> tuple[str, list[Any]] | None:
    """A SQL condition equivalent to the filter, or None when a part has no plain column.

    `not` is left to `matches` (SQL's NULL logic differs); the rest keeps NULL as false."""
    if isinstance(expr, Logical):
        left, right = to_sql(expr.left), to_sql(expr.right)
        if left is None or right is None:
            return None
        return f"({left[0]} {expr.op.upper()} {right[0]})", left[1] + right[1]
    if isinstance(expr, Not):
        return None
    column = expr.prop.column
    if column is None or expr.prop.edm not in {"Edm.String", "Edm.Boolean"}:
        return None
    boolean = expr.prop.edm == "Edm.Boolean"

    def value(lit: Lit) -> Any:
        if boolean:
            return int(bool(lit.value))
        return str(lit.value).lower() if expr.prop.lower_key else lit.value

    collate = "" if boolean or expr.prop.lower_key else " COLLATE NOCASE"
    if isinstance(expr, BoolProp):
        return f"{column} = 1", []
    if isinstance(expr, In):
        marks = ", ".join("?" for _ in expr.lits)
        return f"{column}{collate} IN ({marks})", [value(lit) for lit in expr.lits]
    if isinstance(expr, Func):
        pattern = _like(str(expr.lit.value))
        pattern = f"{pattern}%" if expr.name == "startsWith" else f"%{pattern}"
        return f"{column} LIKE ? ESCAPE '\\'", [pattern]
    if expr.lit.edm == "null":
        return f"{column} IS {'NOT ' if expr.op == 'ne' else ''}NULL", []
    sql_op = {"eq": "=", "ne": "IS NOT", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}[expr.op]
    return f"{column} {sql_op} ?{collate}", [value(expr.lit)]


# -- $select, $top, $orderby, $count, $search, $skiptoken -----------------------------------


def parse_select(text: str | None, entity: EntityType) -> tuple[str, ...] | None:
    """Canonical property names of `$select` in request order; None when absent."""
    if text is None or not text.strip():
        return None
    names: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if name == "*":
            return tuple(p.name for p in entity.props)
        canonical = entity.get(name).name if name else ""
        if not canonical:
            msg = f"Syntax error at position {len(text)} in '{text}'."
            raise GraphError(400, "BadRequest", msg)
        if canonical not in names:
            names.append(canonical)
    return tuple(names)


def parse_top(text: str | None, *, default: int = 100, maximum: int = 999) -> int:
    """`$top` (page size): Graph's exact 400 outside 1..maximum."""
    if text is None:
        return default
    if not re.fullmatch(r"-?\d+", text.strip()):
        msg = (
            f"Invalid value '{text}' for $top query option found. "
            "The $top query option requires a non-negative integer value."
        )
        raise GraphError(400, "BadRequest", msg)
    size = int(text)
    if not 1 <= size <= maximum:
        msg = f"Invalid page size specified: '{size}'. Must be between 1 and {maximum} inclusive."
        raise GraphError(400, "Request_UnsupportedQuery", msg)
    return size


def parse_count(text: str | None) -> bool:
    """`$count=true|false`."""
    if text is None:
        return False
    if text.strip().lower() not in {"true", "false"}:
        raise GraphError(400, "BadRequest", f"'{text}' is not a valid count option.")
    return text.strip().lower() == "true"


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One `$orderby` property and its direction."""

    prop: Prop
    descending: bool


def parse_orderby(text: str | None, entity: EntityType, *, advanced: bool) -> OrderBy | None:
    """`$orderby=prop [asc|desc]` on one property Graph sorts on."""
    if text is None or not text.strip():
        return None
    parts = text.split()
    if (
        len(parts) > 2
        or "," in text
        or (len(parts) == 2 and parts[1].lower() not in {"asc", "desc"})
    ):
        msg = f"Syntax error at position {len(text)} in '{text}'."
        raise GraphError(400, "BadRequest", msg)
    target = entity.get(parts[0])
    if target.sort is None or (target.sort == "advanced" and not advanced):
        msg = f"Unsupported sort property '{target.name}' for '{entity.resource}'."
        raise GraphError(400, "Request_UnsupportedQuery", msg)
    return OrderBy(target, len(parts) == 2 and parts[1].lower() == "desc")


_SEARCH_CLAUSE = re.compile(r'\s*"([A-Za-z]+):([^"]*)"\s*')


@dataclass(frozen=True, slots=True)
class Search:
    """`$search="prop:term" [AND|OR "prop:term"]...` (evaluated left to right)."""

    clauses: tuple[tuple[str, str], ...]  # (property, term)
    joins: tuple[str, ...]  # AND | OR between clauses


def parse_search(text: str, entity: EntityType) -> Search:
    """Parse `$search`; a malformed value is 400 (message unverified against Graph)."""
    clauses: list[tuple[str, str]] = []
    joins: list[str] = []
    pos = 0
    while True:
        match = _SEARCH_CLAUSE.match(text, pos)
        if match is None:
            msg = f"Syntax error: character '{text[pos : pos + 1]}' is not valid at position {pos}."
            raise GraphError(400, "Request_UnsupportedQuery", f"Invalid $search: {msg}")
        clauses.append((entity.get(match.group(1)).name, match.group(2)))
        pos = match.end()
        if pos >= len(text):
            return Search(tuple(clauses), tuple(joins))
        join = re.match(r"(AND|OR)\b", text[pos:])
        if join is None:
            msg = f"Syntax error: character '{text[pos]}' is not valid at position {pos}."
            raise GraphError(400, "Request_UnsupportedQuery", f"Invalid $search: {msg}")
        joins.append(join.group(1))
        pos += len(join.group(1))


def search_matches(search: Search, obj: Mapping[str, Any]) -> bool:
    """Tokenized prefix match: a term matches a value, or any word of it, that it starts."""

    def hit(name: str, term: str) -> bool:
        value = obj.get(name)
        if not isinstance(value, str):
            return False
        needle = term.casefold()
        words = re.split(r"[^0-9A-Za-z]+", value.casefold())
        return value.casefold().startswith(needle) or any(w.startswith(needle) for w in words)

    result = hit(*search.clauses[0])
    for join, clause in zip(search.joins, search.clauses[1:], strict=True):
        result = (result and hit(*clause)) if join == "AND" else (result or hit(*clause))
    return result


def encode_skiptoken(key: Sequence[str]) -> str:
    """An opaque `X'…'` page token carrying the sort key of the last item served."""
    return "X'" + json.dumps(list(key), separators=(",", ":")).encode().hex().upper() + "'"


def expired_token() -> GraphError:
    """Graph's 400 for a page token it cannot use."""
    msg = (
        "The specified page token value has expired and can no longer be included in your request."
    )
    return GraphError(400, "Directory_ExpiredPageToken", msg)


def decode_skiptoken(token: str) -> tuple[str, ...]:
    """The sort key inside a page token; a token we did not make is 400."""
    match = re.fullmatch(r"X'([0-9A-Fa-f]+)'", token.strip())
    if match is None:
        raise expired_token()
    try:
        key = json.loads(bytes.fromhex(match.group(1)).decode())
    except ValueError:
        raise expired_token() from None
    if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
        raise expired_token()
    return tuple(key)


def next_link(root: str, path: str, query: Mapping[str, str], token: str) -> str:
    """`@odata.nextLink`: the request's own URL and parameters, with the new `$skiptoken`."""
    params = [(k, v) for k, v in query.items() if k.lower() != "$skiptoken"]
    params.append(("$skiptoken", token))
    encoded = "&".join(f"{quote(k, safe='$')}={quote(v, safe=',:@$()')}" for k, v in params)
    return f"{root}{quote(path, safe='/@$()=,:')}?{encoded}"


# -- a parsed list request ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ListQuery:
    """The query options of one collection request, validated."""

    filter: Expr | None = None
    select: tuple[str, ...] | None = None
    top: int = 100
    count: bool = False  # add @odata.count (advanced query)
    orderby: OrderBy | None = None
    search: Search | None = None
    after: tuple[str, ...] | None = None  # from $skiptoken
    advanced: bool = False


def list_query(
    query: Mapping[str, str],
    consistency_level: str | None,
    entity: EntityType,
    *,
    default_top: int = 100,
    max_top: int = 999,
) -> ListQuery:
    """Validate a collection request's query options the way Graph's directory does.

    `$count=true` without `ConsistencyLevel: eventual` is silently ignored (as documented);
    `$search` needs the header; `ne`, `not`, `endsWith`, advanced-only properties and
    `$filter` with `$orderby` need the header and `$count=true`."""
    options = {k.lower(): v for k, v in query.items()}
    eventual = (consistency_level or "").strip().lower() == "eventual"
    wants_count = parse_count(options.get("$count"))
    advanced = entity.directory and eventual and wants_count
    if not entity.directory:
        advanced = True
    top = parse_top(options.get("$top"), default=default_top, maximum=max_top)
    select = parse_select(options.get("$select"), entity)
    expr = None
    if "$filter" in options:
        expr = parse_filter(options["$filter"], entity)
        check_capabilities(expr, entity, advanced=advanced)
    search = None
    if "$search" in options:
        if entity.directory and not eventual:
            raise GraphError(400, "Request_UnsupportedQuery", SEARCH_MESSAGE)
        search = parse_search(options["$search"], entity)
    orderby = parse_orderby(options.get("$orderby"), entity, advanced=advanced)
    if orderby is not None and expr is not None and entity.directory and not advanced:
        raise GraphError(
            400, "Request_UnsupportedQuery", "Sorting not supported for current query."
        )
    after = decode_skiptoken(options["$skiptoken"]) if "$skiptoken" in options else None
    return ListQuery(
        filter=expr,
        select=select,
        top=top,
        count=wants_count and (eventual or not entity.directory) and after is None,
        orderby=orderby,
        search=search,
        after=after,
        advanced=advanced,
    )


def accepts(q: ListQuery, obj: Mapping[str, Any]) -> bool:
    """Does an object pass the request's `$filter` and `$search`?"""
    if q.filter is not None and not matches(q.filter, obj):
        return False
    return q.search is None or search_matches(q.search, obj)


def project(obj: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The named properties of a Graph-shaped object, in that order."""
    return {name: obj.get(name) for name in names}


def context_with_select(base: str, select: tuple[str, ...] | None) -> str:
    """`users` → `users(id,displayName)` when `$select` narrows the properties."""
    return base if select is None else f"{base}({','.join(select)})"
