"""OData `$filter` as Graph's directory reads it: entity types and a strict parser.

`EntityType` lists a Graph type's properties with their EDM type, the `$filter` operators
each supports by default or only in advanced queries (Microsoft's "advanced query
capabilities" tables), sortability and SQL column. `parse_filter` is a recursive-descent
parser that raises only `GraphError` (400): syntax errors as "Invalid filter clause: Syntax
error at position N in '…'." where N is the end of the offending token (the OData lexer's
position) or the index of an invalid character; unknown properties, unknown functions and
incompatible operand types with the OData library's messages. Evaluation, SQL translation
and the other query options live in `odata_query`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from runner.emulator.wire import GraphError

# Operator names of the capability tables ("null" = `eq null` / `ne null`).
OPS = frozenset({"eq", "ne", "not", "ge", "le", "in", "startsWith", "endsWith", "null"})

# -- entity types ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Prop:
    """One property: its EDM type, the `$filter` operators it supports by default and in
    advanced queries only, whether it sorts, and its SQL column when it has one."""

    name: str
    edm: str = "Edm.String"  # Edm.String | Edm.Boolean | Edm.DateTimeOffset | Collection(...)
    default_ops: frozenset[str] = frozenset()
    advanced_ops: frozenset[str] = frozenset()
    sort: str | None = None  # None | "default" | "advanced"
    column: str | None = None
    lower_key: bool = False  # values are stored lower-case (object ids): compare lowered


def prop(
    name: str,
    edm: str = "Edm.String",
    *,
    default: str = "",
    advanced: str = "",
    sort: str | None = None,
    column: str | None = None,
    lower_key: bool = False,
) -> Prop:
    """A `Prop` from space-separated operator lists (`"eq in startsWith"`)."""
    unknown = (set(default.split()) | set(advanced.split())) - OPS
    if unknown:
        msg = f"{name}: unknown $filter operators {sorted(unknown)}; known: {sorted(OPS)}"
        raise ValueError(msg)
    return Prop(
        name=name,
        edm=edm,
        default_ops=frozenset(default.split()),
        advanced_ops=frozenset(advanced.split()),
        sort=sort,
        column=column,
        lower_key=lower_key,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityType:
    """The properties of one Graph type (`microsoft.graph.user`, ...)."""

    name: str  # "microsoft.graph.user"
    resource: str  # "User", as named in directory error messages
    props: tuple[Prop, ...]
    directory: bool = True  # the advanced-query rules apply
    _by_lower: dict[str, Prop] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_lower.update({p.name.lower(): p for p in self.props})

    def find(self, name: str) -> Prop | None:
        """A property by case-insensitive name."""
        return self._by_lower.get(name.lower())

    def get(self, name: str) -> Prop:
        """A property by name, or Graph's 400 for an unknown one."""
        found = self.find(name)
        if found is None:
            msg = f"Could not find a property named '{name}' on type '{self.name}'."
            raise GraphError(400, "BadRequest", msg)
        return found


# -- $filter syntax tree --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lit:
    """A literal and its EDM type (`null` for null)."""

    value: Any
    edm: str


@dataclass(frozen=True, slots=True)
class Compare:
    """`prop op literal` with op one of eq ne gt ge lt le."""

    op: str
    prop: Prop
    lit: Lit


@dataclass(frozen=True, slots=True)
class In:
    """`prop in (literal, ...)`."""

    prop: Prop
    lits: tuple[Lit, ...]


@dataclass(frozen=True, slots=True)
class Func:
    """`startswith(prop, 'x')` or `endswith(prop, 'x')`."""

    name: str  # startsWith | endsWith
    prop: Prop
    lit: Lit


@dataclass(frozen=True, slots=True)
class BoolProp:
    """A Boolean property used as a predicate on its own."""

    prop: Prop


@dataclass(frozen=True, slots=True)
class Logical:
    """`left and right` / `left or right`."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Not:
    """`not operand`."""

    operand: Expr


Expr = Compare | In | Func | BoolProp | Logical | Not
_UNBOUND = "Edm.Untyped"  # a name that did not bind; its error is deferred
_OPERATOR_KIND = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}

# -- lexer ----------------------------------------------------------------------------------

_TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "Edm.DateTimeOffset",
        re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})"),
    ),
    ("Edm.Guid", re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}(?![\w-])")),
    ("Edm.Date", re.compile(r"\d{4}-\d{2}-\d{2}(?![\w-])")),
    ("number", re.compile(r"-?\d+(?:\.\d+)?(?![\w.])")),
    ("ident", re.compile(r"[A-Za-z_][A-Za-z0-9_]*")),
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # ident | string | number | Edm.* | ( | ) | , | / | end
    text: str
    value: Any
    start: int
    end: int


def _syntax_error(position: int, text: str) -> GraphError:
    return GraphError(
        400,
        "BadRequest",
        f"Invalid filter clause: Syntax error at position {position} in '{text}'.",
    )


def _next_token(text: str, pos: int) -> _Token:
    """The token starting at (or after whitespace from) `pos`. Lexing is lazy, token by
    token, as in the OData library: a parse error before a bad literal wins over it."""
    size = len(text)
    while pos < size and text[pos] in " \t\r\n":
        pos += 1
    if pos >= size:
        return _Token("end", "", None, size, size)
    char = text[pos]
    if char in "(),/:":
        return _Token(char, char, None, pos, pos + 1)
    if char == "'":
        chars: list[str] = []
        cursor = pos + 1
        while True:
            if cursor >= size:
                raise _syntax_error(size, text)
            if text[cursor] == "'":
                if cursor + 1 < size and text[cursor + 1] == "'":
                    chars.append("'")
                    cursor += 2
                    continue
                break
            chars.append(text[cursor])
            cursor += 1
        return _Token("string", text[pos : cursor + 1], "".join(chars), pos, cursor + 1)
    for kind, pattern in _TOKEN_PATTERNS:
        match = pattern.match(text, pos)
        if match is not None:
            return _Token(kind, match.group(), match.group(), pos, match.end())
    raise _syntax_error(pos, text)


def _literal(token: _Token, text: str) -> Lit:
    """The value of a literal token (syntax error if the token is not one)."""
    if token.kind == "string":
        return Lit(token.value, "Edm.String")
    if token.kind == "ident":
        word = token.text.lower()
        if word in {"true", "false"}:
            return Lit(word == "true", "Edm.Boolean")
        if word == "null":
            return Lit(None, "null")
    try:
        if token.kind == "Edm.Guid":
            return Lit(token.text.lower(), "Edm.Guid")
        if token.kind == "Edm.DateTimeOffset":
            return Lit(dt.datetime.fromisoformat(token.text.replace("Z", "+00:00")), token.kind)
        if token.kind == "Edm.Date":
            day = dt.date.fromisoformat(token.text)
            return Lit(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC), token.kind)
        if token.kind == "number":
            is_int = "." not in token.text
            return Lit(
                int(token.text) if is_int else float(token.text),
                "Edm.Int32" if is_int else "Edm.Decimal",
            )
    except ValueError:
        raise _syntax_error(token.end, text) from None
    raise _syntax_error(token.end, text)


# -- parser ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, entity: EntityType) -> None:
        self.text = text
        self.entity = entity
        self.current = _next_token(text, 0)
        # Binding errors (unknown property, wrong types) are reported only once the whole
        # text has parsed: a syntax error anywhere wins, as in the OData library.
        self.deferred: GraphError | None = None

    def defer(self, err: GraphError) -> None:
        if self.deferred is None:
            self.deferred = err

    def advance(self) -> _Token:
        token = self.current
        if token.kind != "end":
            self.current = _next_token(self.text, token.end)
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.current
        if token.kind == "ident" and token.text.lower() in words:
            self.advance()
            return token.text.lower()
        return None

    def expect(self, kind: str) -> _Token:
        if self.current.kind != kind:
            raise _syntax_error(self.current.end, self.text)
        return self.advance()

    def parse(self) -> Expr:
        expr = self.or_expr()
        if self.current.kind != "end":
            raise _syntax_error(self.current.end, self.text)
        result = self.boolean(expr)
        if self.deferred is not None:
            raise self.deferred
        return result

    def boolean(self, node: Expr | Prop | Lit) -> Expr:
        if isinstance(node, Prop):
            if node.edm not in {"Edm.Boolean", _UNBOUND}:
                self.defer(self.unsupported(node))
            return BoolProp(node)
        if isinstance(node, Lit):
            raise _syntax_error(self.current.end, self.text)
        return node

    def or_expr(self) -> Expr | Prop | Lit:
        left = self.and_expr()
        while self.keyword("or"):
            left = Logical("or", self.boolean(left), self.boolean(self.and_expr()))
        return left

    def and_expr(self) -> Expr | Prop | Lit:
        left = self.comparison()
        while self.keyword("and"):
            left = Logical("and", self.boolean(left), self.boolean(self.comparison()))
        return left

    def comparison(self) -> Expr | Prop | Lit:
        left = self.unary()
        op = self.keyword("eq", "ne", "gt", "ge", "lt", "le")
        if op is not None:
            right = self.unary()
            return self.compare(op, left, right)
        if self.keyword("in"):
            self.expect("(")
            items = [_literal(self.advance(), self.text)]
            while self.current.kind == ",":
                self.advance()
                items.append(_literal(self.advance(), self.text))
            self.expect(")")
            if not isinstance(left, Prop):
                raise _syntax_error(self.current.end, self.text)
            for item in items:
                self.check_types("eq", left, item)
            return In(left, tuple(items))
        return left

    def unary(self) -> Expr | Prop | Lit:
        if self.keyword("not"):
            return Not(self.boolean(self.unary()))
        return self.primary()

    def primary(self) -> Expr | Prop | Lit:
        token = self.current
        if token.kind == "(":
            self.advance()
            inner = self.or_expr()
            self.expect(")")
            return inner
        if token.kind == "ident" and token.text.lower() not in {"true", "false", "null"}:
            self.advance()
            if self.current.kind == "(":
                return self.function(token)
            found = self.entity.find(token.text)
            if found is None:
                try:
                    self.entity.get(token.text)
                except GraphError as err:
                    self.defer(err)
                found = Prop(name=token.text, edm=_UNBOUND)
            if self.current.kind == "/":  # lambda any/all and casts: not emulated
                raise self.unsupported(found)
            return found
        if token.kind in {"end", ")", ",", "/"}:
            raise _syntax_error(token.end, self.text)
        return _literal(self.advance(), self.text)

    def function(self, name_token: _Token) -> Expr:
        name = name_token.text.lower()
        self.expect("(")
        args: list[Prop | Lit | Expr] = [self.or_expr()]
        while self.current.kind == ",":
            self.advance()
            args.append(self.or_expr())
        self.expect(")")
        canonical = {"startswith": "startsWith", "endswith": "endsWith"}.get(name)
        if canonical is None:
            msg = (
                f"An unknown function with name '{name_token.text}' was found. This may also be "
                "a function import or a key lookup on a navigation property, which is not allowed."
            )
            self.defer(GraphError(400, "BadRequest", msg))
            return Func("startsWith", Prop(name=name, edm=_UNBOUND), Lit("", "Edm.String"))
        if (
            len(args) != 2
            or not isinstance(args[0], Prop)
            or not isinstance(args[1], Lit)
            or args[0].edm not in {"Edm.String", _UNBOUND}
            or args[1].edm != "Edm.String"
        ):
            msg = (
                f"No function signature for the function with name '{name}' matches the "
                f"specified arguments. The function signatures considered are: {name}"
                "(Edm.String Nullable=true, Edm.String Nullable=true)."
            )
            self.defer(GraphError(400, "BadRequest", msg))
            return Func(canonical, Prop(name=name, edm=_UNBOUND), Lit("", "Edm.String"))
        return Func(canonical, args[0], args[1])

    def compare(self, op: str, left: Expr | Prop | Lit, right: Expr | Prop | Lit) -> Expr:
        if isinstance(left, Lit) and isinstance(right, Prop):
            flipped = {"gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}.get(op, op)
            return self.compare(flipped, right, left)
        if not isinstance(left, Prop) or not isinstance(right, Lit):
            if isinstance(left, Prop):
                self.defer(self.unsupported(left))
                return Compare(op, left, Lit(None, "null"))
            raise _syntax_error(self.current.end, self.text)
        self.check_types(op, left, right)
        return Compare(op, left, right)

    def check_types(self, op: str, left: Prop, right: Lit) -> None:
        if left.edm.startswith("Collection("):
            self.defer(self.unsupported(left))
            return
        if right.edm == "null" or left.edm == _UNBOUND:
            return
        compatible = left.edm == right.edm or (
            left.edm == "Edm.DateTimeOffset" and right.edm == "Edm.Date"
        )
        if not compatible:
            msg = (
                "A binary operator with incompatible types was detected. Found operand types "
                f"'{left.edm}' and '{right.edm}' for operator kind '{_OPERATOR_KIND[op]}'."
            )
            self.defer(GraphError(400, "BadRequest", msg))

    def unsupported(self, target: Prop) -> GraphError:
        return unsupported_clause(target.name, self.entity)


def unsupported_clause(name: str, entity: EntityType) -> GraphError:
    """Graph's 400 for a filter the directory cannot serve on this property."""
    msg = (
        f"Unsupported or invalid query filter clause specified for property '{name}' "
        f"of resource '{entity.resource}'."
    )
    return GraphError(400, "Request_UnsupportedQuery", msg)


def parse_filter(text: str, entity: EntityType) -> Expr:
    """Parse a `$filter` value; every failure is a `GraphError` (400)."""
    try:
        return _Parser(text, entity).parse()
    except RecursionError:
        raise _syntax_error(len(text), text) from None
