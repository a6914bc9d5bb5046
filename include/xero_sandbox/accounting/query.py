"""Xero's ``where`` and ``order`` query parameters: parsed with a lark grammar, compiled to Python callables.

Xero's filters are .NET Dynamic LINQ expressions over the model (``Status=="AUTHORISED" AND Total>100``,
``Name.Contains("Ltd")``, ``Contact.ContactID==Guid("...")``, ``Date>=DateTime(2020,01,31)``). We accept the
same syntax, resolve field names case-insensitively against the model's schema, compare strings
case-insensitively (Xero's database collation; no ``ToLower()`` needed), and answer what Xero answers for an
expression it cannot parse: a 400 ``QueryParseException`` with a short message.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from . import schema
from .wire import BadDate, parse_datetime_input

Record = dict[str, Any]
Lookup = Callable[[str, Any], Any]
"""``lookup(model_name, stub)`` turns a stored reference (e.g. an invoice's ``{"ContactID": ...}``) into the
live record the client sees, so ``Contact.Name`` filters on the contact's current name."""

WHERE_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> not_
         | comparison
?comparison: primary (COMP_OP primary)?
?primary: path                  -> field
        | call
        | STRING                -> string
        | CHAR                  -> char
        | NUMBER                -> number
        | TRUE                  -> true
        | FALSE                 -> false
        | NULL                  -> null
        | "(" or_expr ")"
call: path "(" [args] ")" method*
method: "." NAME "(" [args] ")"
args: or_expr ("," or_expr)*
path: NAME ("." NAME)*

_OR.2: /(?i:or)\b/ | "||"
_AND.2: /(?i:and)\b/ | "&&"
_NOT.2: /(?i:not)\b/ | "!"
TRUE.2: /(?i:true)\b/
FALSE.2: /(?i:false)\b/
NULL.2: /(?i:null)\b/
COMP_OP: "==" | "!=" | "<>" | "<=" | ">=" | "=" | "<" | ">"
STRING: /"(?:[^"\\]|\\.|"")*"/
CHAR: /'[^']*'/
NUMBER: /-?\d+(\.\d+)?[mMdDfF]?/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
%import common.WS
%ignore WS
"""

_PARSER = Lark(WHERE_GRAMMAR, parser="lalr", start="start", maybe_placeholders=False)


class QueryError(ValueError):
    """A ``where`` or ``order`` Xero would refuse; ``str(exc)`` is Xero's message."""


# Kinds of compiled expressions (field kinds from schema plus literal kinds).
_NULL, _CHAR = "null", "char"
_TYPE_NAMES = {
    schema.GUID: "Guid",
    schema.STRING: "String",
    schema.ENUM: "String",
    schema.BOOL: "Boolean",
    schema.NUMBER: "Decimal",
    schema.DATE: "DateTime",
    schema.DATETIME: "DateTime",
    schema.OBJECT: "Object",
    schema.LIST: "List",
    _NULL: "null",
    _CHAR: "Char",
}
_STRINGY = {schema.STRING, schema.ENUM}
_DATES = {schema.DATE, schema.DATETIME}


@dataclass(frozen=True)
class _Expr:
    kind: str
    fn: Callable[[Record, Lookup], Any]
    constant: bool = False


# ------------------------------------------------------------------------------------------------------ where
@lru_cache(maxsize=512)
def compile_where(model_name: str, where: str) -> Callable[[Record, Lookup], bool]:
    """Compile a ``where`` for one model into ``predicate(record, lookup) -> bool``; raise QueryError."""
    try:
        tree = _PARSER.parse(where)
    except UnexpectedEOF as exc:
        raise QueryError("Expression expected") from exc
    except UnexpectedCharacters as exc:
        raise QueryError(f"Syntax error '{exc.char}'") from exc
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            raise QueryError("Expression expected") from exc
        raise QueryError("')' or operator expected") from exc
    except LarkError as exc:  # pragma: no cover - any other grammar failure is still a parse error
        raise QueryError("Syntax error") from exc
    expr = _Compiler(model_name).compile(tree)
    if expr.kind != schema.BOOL:
        raise QueryError(
            f"Expression of type '{_TYPE_NAMES.get(expr.kind, expr.kind)}' expected to be Boolean"
        )
    fn = expr.fn

    def predicate(record: Record, lookup: Lookup) -> bool:
        return bool(fn(record, lookup))

    return predicate


class _Compiler:
    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def compile(self, node: Tree | Token) -> _Expr:
        if isinstance(node, Token):  # pragma: no cover - every token is wrapped by a rule
            raise QueryError("Syntax error")
        handler = getattr(self, f"_{node.data}", None)
        if handler is None:  # pragma: no cover - grammar and compiler are kept in step
            raise QueryError("Syntax error")
        return handler(node)

    # -- literals
    def _string(self, node: Tree) -> _Expr:
        raw = node.children[0][1:-1]
        value = raw.replace('""', '"')
        value = re.sub(r"\\(.)", r"\1", value)
        return _const(schema.STRING, value)

    def _char(self, node: Tree) -> _Expr:
        raw = node.children[0][1:-1]
        if len(raw) != 1:
            raise QueryError("Character literal must contain exactly one character")
        return _const(schema.STRING, raw)

    def _number(self, node: Tree) -> _Expr:
        text = str(node.children[0]).rstrip("mMdDfF")
        return _const(schema.NUMBER, float(text) if "." in text else int(text))

    def _true(self, _node: Tree) -> _Expr:
        return _const(schema.BOOL, True)

    def _false(self, _node: Tree) -> _Expr:
        return _const(schema.BOOL, False)

    def _null(self, _node: Tree) -> _Expr:
        return _const(_NULL, None)

    # -- fields
    def _field(self, node: Tree) -> _Expr:
        path = [str(token) for token in node.children[0].children]
        try:
            fields = schema.resolve_path(self.model_name, path)
        except schema.UnknownField as exc:
            raise QueryError(str(exc)) from exc
        names = [field.name for field in fields]
        models = [field.model if field.kind == schema.OBJECT else None for field in fields]
        if len(names) == 1:
            name = names[0]
            return _Expr(fields[-1].kind, lambda record, _lookup: record.get(name))

        def get(record: Record, lookup: Lookup) -> Any:
            value: Any = record
            for name, model in zip(names, models, strict=True):
                if not isinstance(value, dict):
                    return None
                value = value.get(name)
                if value is None:
                    return None
                if model is not None:
                    value = lookup(model, value)
            return value

        return _Expr(fields[-1].kind, get)

    # -- calls: Guid("..."), DateTime(2020,1,31), DateTime.Parse("..."), Field.Contains("x"), ...
    def _call(self, node: Tree) -> _Expr:
        path_node, *rest = node.children
        path = [str(token) for token in path_node.children]
        args_node = rest[0] if rest and isinstance(rest[0], Tree) and rest[0].data == "args" else None
        methods = [child for child in rest if isinstance(child, Tree) and child.data == "method"]
        args = self._args(args_node)
        lowered = [part.lower() for part in path]
        if lowered == ["guid"]:
            expr = self._guid(args)
        elif lowered == ["datetime"]:
            expr = self._datetime_ctor(args)
        elif lowered == ["datetime", "parse"]:
            expr = self._datetime_parse(args)
        else:
            if len(path) < 2:
                raise QueryError(f"No applicable method '{path[0]}' exists in type '{self.model_name}'")
            target = self._field(Tree("field", [Tree("path", [Token("NAME", p) for p in path[:-1]])]))
            expr = self._method(target, path[-1], args)
        for method in methods:
            name_token, *method_args = method.children
            expr = self._method(expr, str(name_token), self._args(method_args[0] if method_args else None))
        return expr

    def _args(self, node: Tree | None) -> list[_Expr]:
        if node is None:
            return []
        return [self.compile(child) for child in node.children]

    def _guid(self, args: list[_Expr]) -> _Expr:
        if len(args) != 1 or args[0].kind != schema.STRING or not args[0].constant:
            raise QueryError("No matching constructor in type 'Guid'")
        text = args[0].fn({}, _no_lookup)
        if not re.fullmatch(
            r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}", text
        ):
            raise QueryError(
                "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."
            )
        compact = text.replace("-", "").lower()
        canonical = f"{compact[:8]}-{compact[8:12]}-{compact[12:16]}-{compact[16:20]}-{compact[20:]}"
        return _const(schema.GUID, canonical)

    def _datetime_ctor(self, args: list[_Expr]) -> _Expr:
        if not 3 <= len(args) <= 6 or any(a.kind != schema.NUMBER or not a.constant for a in args):
            raise QueryError("No matching constructor in type 'DateTime'")
        parts = [int(a.fn({}, _no_lookup)) for a in args]
        try:
            value = datetime(*parts, tzinfo=UTC)  # type: ignore[misc]
        except ValueError as exc:
            raise QueryError(
                "Year, Month, and Day parameters describe an un-representable DateTime."
            ) from exc
        return _const(schema.DATETIME, value)

    def _datetime_parse(self, args: list[_Expr]) -> _Expr:
        if len(args) != 1 or args[0].kind != schema.STRING or not args[0].constant:
            raise QueryError("No applicable method 'Parse' exists in type 'DateTime'")
        try:
            value = parse_datetime_input(args[0].fn({}, _no_lookup))
        except BadDate as exc:
            raise QueryError("String was not recognized as a valid DateTime.") from exc
        return _const(schema.DATETIME, value)

    def _method(self, target: _Expr, name: str, args: list[_Expr]) -> _Expr:
        lowered = name.lower()
        get = target.fn
        if lowered in ("contains", "startswith", "endswith"):
            if target.kind not in _STRINGY or len(args) != 1 or args[0].kind not in _STRINGY:
                raise QueryError(f"No applicable method '{name}' exists in type '{_type_name(target.kind)}'")
            arg = args[0].fn
            test = {
                "contains": lambda s, a: a in s,
                "startswith": lambda s, a: s.startswith(a),
                "endswith": lambda s, a: s.endswith(a),
            }[lowered]

            def string_test(record: Record, lookup: Lookup) -> bool:
                value, needle = get(record, lookup), arg(record, lookup)
                if value is None or needle is None:
                    return False
                return test(str(value).casefold(), str(needle).casefold())

            return _Expr(schema.BOOL, string_test)
        if lowered in ("tolower", "toupper", "tostring", "trim") and not args:
            transform = {"tolower": str.lower, "toupper": str.upper, "tostring": str, "trim": str.strip}[
                lowered
            ]

            def as_string(record: Record, lookup: Lookup) -> Any:
                value = get(record, lookup)
                if value is None:
                    return None
                if isinstance(value, bool):
                    value = "True" if value else "False"
                return transform(str(value))

            return _Expr(schema.STRING, as_string)
        raise QueryError(f"No applicable method '{name}' exists in type '{_type_name(target.kind)}'")

    # -- operators
    def _not_(self, node: Tree) -> _Expr:
        inner = self.compile(node.children[0])
        _require_bool(inner, "!")
        fn = inner.fn
        return _Expr(schema.BOOL, lambda record, lookup: not fn(record, lookup))

    def _or_expr(self, node: Tree) -> _Expr:
        parts = [self.compile(child) for child in node.children]
        for part in parts:
            _require_bool(part, "||")
        fns = [part.fn for part in parts]
        return _Expr(schema.BOOL, lambda record, lookup: any(fn(record, lookup) for fn in fns))

    def _and_expr(self, node: Tree) -> _Expr:
        parts = [self.compile(child) for child in node.children]
        for part in parts:
            _require_bool(part, "&&")
        fns = [part.fn for part in parts]
        return _Expr(schema.BOOL, lambda record, lookup: all(fn(record, lookup) for fn in fns))

    def _comparison(self, node: Tree) -> _Expr:
        left_node, op_token, right_node = node.children
        left, right = self.compile(left_node), self.compile(right_node)
        op = {"=": "==", "<>": "!="}.get(str(op_token), str(op_token))
        normalise = _comparable(left.kind, right.kind, op)
        lfn, rfn = left.fn, right.fn
        compare = _OPERATORS[op]
        if right.constant and not left.constant:
            constant = rfn({}, _no_lookup)
            if constant is None:
                wants_null = op == "=="
                return _Expr(schema.BOOL, lambda record, lookup: (lfn(record, lookup) is None) == wants_null)
            folded = normalise(constant)

            def against_constant(record: Record, lookup: Lookup) -> bool:
                value = lfn(record, lookup)
                if value is None:
                    return op == "!="
                return compare(normalise(value), folded)

            return _Expr(schema.BOOL, against_constant)

        def comparison(record: Record, lookup: Lookup) -> bool:
            a, b = lfn(record, lookup), rfn(record, lookup)
            if a is None or b is None:
                # C# semantics: null equals only null; ordering against null is false.
                if op == "==":
                    return a is None and b is None
                if op == "!=":
                    return not (a is None and b is None)
                return False
            return compare(normalise(a), normalise(b))

        return _Expr(schema.BOOL, comparison)


def _const(kind: str, value: Any) -> _Expr:
    return _Expr(kind, lambda _record, _lookup: value, constant=True)


def _no_lookup(_model: str, stub: Any) -> Any:
    return stub


def _type_name(kind: str) -> str:
    return _TYPE_NAMES.get(kind, kind)


def _require_bool(expr: _Expr, op: str) -> None:
    if expr.kind != schema.BOOL:
        raise QueryError(f"Operator '{op}' incompatible with operand type '{_type_name(expr.kind)}'")


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _comparable(left: str, right: str, op: str) -> Callable[[Any], Any]:
    """Check two operand kinds may be compared (as Xero's typed LINQ would) and return a value normaliser."""
    if _NULL in (left, right):
        if op not in ("==", "!="):
            raise QueryError(
                f"Operator '{op}' incompatible with operand types '{_type_name(left)}' and 'null'"
            )
        return _identity
    kinds = {left, right}
    if kinds <= _STRINGY:
        return _casefold
    if kinds == {schema.GUID}:
        return _casefold
    if kinds <= _DATES:
        return _as_datetime
    if kinds == {schema.NUMBER}:
        return _identity
    if kinds == {schema.BOOL} and op in ("==", "!="):
        return _identity
    raise QueryError(
        f"Operator '{op}' incompatible with operand types '{_type_name(left)}' and '{_type_name(right)}'"
    )


def _identity(value: Any) -> Any:
    return value


def _casefold(value: Any) -> Any:
    return value.casefold() if type(value) is str else str(value).casefold()


def _as_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


# ------------------------------------------------------------------------------------------------------ order
@dataclass(frozen=True)
class OrderKey:
    """One ``order`` term: a resolved field path and its direction."""

    path: tuple[str, ...]
    models: tuple[str | None, ...]
    descending: bool
    kind: str = schema.STRING


_ORDER_TERM_RE = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*(?:\s(ASC|DESC))?\s*$", re.I
)


@lru_cache(maxsize=256)
def parse_order(model_name: str, order: str) -> tuple[OrderKey, ...]:
    """``"Name ASC, UpdatedDateUTC DESC"`` -> resolved OrderKeys; raise QueryError like Xero for bad input."""
    keys: list[OrderKey] = []
    for term in order.split(","):
        match = _ORDER_TERM_RE.match(term)
        if not match:
            raise QueryError("Syntax error")
        try:
            fields = schema.resolve_path(model_name, match.group(1).split("."))
        except schema.UnknownField as exc:
            raise QueryError(str(exc)) from exc
        if fields[-1].kind in (schema.OBJECT, schema.LIST):
            raise QueryError(f"Expression of type '{fields[-1].name}' is not comparable")
        keys.append(
            OrderKey(
                path=tuple(field.name for field in fields),
                models=tuple(field.model if field.kind == schema.OBJECT else None for field in fields),
                descending=(match.group(2) or "ASC").upper() == "DESC",
                kind=fields[-1].kind,
            )
        )
    return tuple(keys)


def sort_records(
    records: Sequence[Record], keys: Sequence[OrderKey], id_field: str, lookup: Lookup
) -> list[Record]:
    """Sort by the order keys, ties broken by the entity's ID so pages stay stable between requests.

    The ID tie-break runs in the direction of the keys when they all share one (a single sort); mixed
    directions take one stable sort per key, least significant first, after an ascending ID sort.
    """
    getters = [_sort_value_getter(key, lookup) for key in keys]
    directions = {key.descending for key in keys}
    if len(directions) == 1:
        if len(getters) == 1:
            only = getters[0]
            composite = lambda record: (only(record), record.get(id_field) or "")  # noqa: E731
        else:
            composite = lambda record: (*(g(record) for g in getters), record.get(id_field) or "")  # noqa: E731
        return sorted(records, key=composite, reverse=directions.pop())
    ordered = sorted(records, key=lambda record: record.get(id_field) or "")
    for key, getter in zip(reversed(keys), reversed(getters), strict=True):
        ordered.sort(key=getter, reverse=key.descending)
    return ordered


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What a null sorts as, per kind: below every value, so nulls come first ascending (as SQL Server sorts them).
_NULL_KEYS: dict[str, Any] = {
    schema.DATETIME: timedelta.min,
    schema.DATE: date.min,
    schema.NUMBER: float("-inf"),
    schema.BOOL: -1,
}


def _scalar_key(kind: str) -> Callable[[Any], Any]:
    """A cheap, totally ordered sort key for one value of ``kind`` (None included).

    Timestamps become their distance from the epoch (comparing timedeltas skips the time-zone work of aware
    datetimes) and nulls become a minimum of the same type, avoiding (is-null, value) tuples: together these
    make sorting 200,000 records about three times faster.
    """
    null = _NULL_KEYS.get(kind, "")
    if kind == schema.DATETIME:
        return lambda value: null if value is None else value - _EPOCH
    if kind in (schema.DATE, schema.NUMBER, schema.BOOL):
        return lambda value: null if value is None else value
    return lambda value: (
        null if value is None else (value.casefold() if type(value) is str else str(value).casefold())
    )


def _sort_value_getter(key: OrderKey, lookup: Lookup) -> Callable[[Record], Any]:
    path, models = key.path, key.models
    scalar = _scalar_key(key.kind)
    if len(path) == 1:
        name = path[0]
        return lambda record: scalar(record.get(name))

    def value_of(record: Record) -> Any:
        value: Any = record
        for name, model in zip(path, models, strict=True):
            if not isinstance(value, dict):
                return scalar(None)
            value = value.get(name)
            if value is None:
                return scalar(None)
            if model is not None:
                value = lookup(model, value)
        return scalar(value)

    return value_of
