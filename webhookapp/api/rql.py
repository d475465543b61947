"""A small RQL parser for list endpoints, as the Connect API and its Python client speak it.

Supported: ``eq ne in out like ilike`` on whitelisted fields, ``gt ge lt le`` on those that have
an order (times, numbers), combined with ``and or not``, ``ordering(field,-field)`` (or
``ordering=field,-field``) and ``select(...)`` (accepted and ignored); ``limit`` and ``offset``
come as ordinary parameters. Several top-level terms (``a&b``) mean ``and``. ``like``/``ilike``
use ``*`` as the wildcard. Anything else is a :class:`RQLError` with a message for the caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from sqlalchemy import and_, false, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from webhookapp.core.errors import ServiceError

TOKEN = re.compile(r"\s*([(),])\s*|([^(),]+)")
NAMED_PARAMETERS = {"limit", "offset", "search"}
MAX_LENGTH = 4096
MAX_DEPTH = 32  # nested terms: more than any real filter, far below the interpreter's recursion limit


class RQLError(ServiceError, ValueError):
    """A query that cannot be understood; the message says where. The API answers it as any
    :class:`ServiceError`, with 400 and ``RQL_001``."""

    def __init__(self, message: str):
        super().__init__(400, "RQL_001", message)


COMPARISONS = {"gt": "__gt__", "ge": "__ge__", "lt": "__lt__", "le": "__le__"}


@dataclass(frozen=True)
class Field:
    """A filterable field: its column, and how to turn RQL text into a value.

    ``match`` replaces ``column == value`` for a field that is not a column (an event's
    ``webhook.id``, a test inside a JSON list): such a field has eq, ne, in and out only, and
    cannot be ordered by when ``column`` is None.
    """

    column: Any
    convert: Callable[[str], Any] = str
    text: bool = True  # like/ilike apply to text fields only
    comparable: bool = False  # gt/ge/lt/le apply to fields with an order: times, numbers
    match: Callable[[Any], ColumnElement[bool]] | None = None

    def value(self, name: str, text: str) -> Any:
        """``text`` converted for this field, or an RQLError naming the field."""
        try:
            return self.convert(text)
        except RQLError:
            raise
        except ValueError:
            raise RQLError(f"'{text}' is not a valid value for {name}.") from None


def integer(text: str) -> int:
    """A whole number that fits a database integer."""
    value = int(text)
    if not -(2**31) <= value < 2**31:
        raise RQLError(f"'{text}' is out of range.")
    return value


def boolean(text: str) -> bool:
    if text in ("true", "True", "1"):
        return True
    if text in ("false", "False", "0"):
        return False
    raise RQLError(f"'{text}' is not true or false.")


@dataclass
class Node:
    name: str
    args: list[Node | str]


@dataclass
class Query:
    where: ColumnElement[bool]
    order_by: list[Any]
    params: dict[str, str]
    filtered: bool = False  # a condition at all (``where`` is more than ``true()``)


def _tokens(text: str) -> list[str]:
    out = []
    position = 0
    for match in TOKEN.finditer(text):
        if match.start() != position:  # pragma: no cover - the pattern covers every character
            raise RQLError(f"Unexpected text at position {position}.")
        out.append(match.group(1) or match.group(2).strip())
        position = match.end()
    return [token for token in out if token != ""]


def _value(text: str) -> str:
    """A value as the query names it, %-escapes decoded; NUL never reaches the database."""
    value = unquote(text)
    if "\x00" in value:
        raise RQLError(f"'{text}' may not contain control characters.")
    return value


def _parse(tokens: list[str], position: int = 0, depth: int = 0) -> tuple[Node | str, int]:
    if depth > MAX_DEPTH:
        raise RQLError(f"The query is nested too deeply (at most {MAX_DEPTH} levels).")
    if position >= len(tokens):
        raise RQLError("The query ends too early.")
    name = tokens[position]
    if name in "(),":
        if name == "(":  # a bare list: (a,b)
            node = Node("", [])
            position += 1
        else:
            raise RQLError(f"Unexpected '{name}'.")
    else:
        position += 1
        if position >= len(tokens) or tokens[position] != "(":
            return _value(name), position
        node = Node(name, [])
        position += 1
    if position < len(tokens) and tokens[position] == ")":
        return node, position + 1
    while True:
        arg, position = _parse(tokens, position, depth + 1)
        node.args.append(arg)
        if position >= len(tokens):
            raise RQLError(f"Missing ')' after {node.name or 'a list'}.")
        if tokens[position] == ")":
            return node, position + 1
        if tokens[position] != ",":
            raise RQLError(f"Expected ',' or ')' in {node.name or 'a list'}.")
        position += 1


def parse_expression(text: str) -> Node:
    """Parse one RQL term such as ``and(eq(a,1),in(b,(x,y)))``."""
    tokens = _tokens(text)
    node, position = _parse(tokens)
    if position != len(tokens):
        raise RQLError(f"Unexpected '{''.join(tokens[position:])}' after '{''.join(tokens[:position])}'.")
    if not isinstance(node, Node):
        raise RQLError(f"'{text}' is not an RQL expression such as eq(field,value).")
    return node


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


@dataclass(frozen=True)
class Operand:
    """A field operator's parts: ``eq(label,x)`` is ``operator`` eq on field ``name`` with ``value`` x."""

    operator: str
    name: str
    field: Field
    value: Node | str

    def plain(self) -> str:
        """The value, which must be one: only in() and out() take a list."""
        if not isinstance(self.value, str):
            raise RQLError(f"{self.operator}() takes a plain value.")
        return self.value


def _condition(node: Node, fields: Mapping[str, Field]) -> ColumnElement[bool]:
    """The WHERE clause for one term: a combination of terms, or an operator on a field."""
    combine = _COMBINATIONS.get(node.name)
    if combine is not None:
        return combine(node, fields)
    apply = _FIELD_OPERATORS.get(node.name)
    if apply is None:
        raise RQLError(
            f"Unknown operator '{node.name}'. Use eq, ne, in, out, like, ilike, gt, ge, lt, le, and, or, not."
        )
    if len(node.args) != 2 or not isinstance(node.args[0], str):
        raise RQLError(f"{node.name}() takes a field and a value, as in {node.name}(label,value).")
    field = fields.get(node.args[0])
    if field is None:
        raise RQLError(f"Cannot filter on '{node.args[0]}'. Fields: {', '.join(sorted(fields))}.")
    return apply(Operand(node.name, node.args[0], field, node.args[1]))


def _all_or_any(node: Node, fields: Mapping[str, Field]) -> ColumnElement[bool]:
    if not node.args:
        raise RQLError(f"{node.name}() needs at least one condition.")
    parts = [_condition(_expect_node(arg, node.name), fields) for arg in node.args]
    return and_(*parts) if node.name == "and" else or_(*parts)


def _negation(node: Node, fields: Mapping[str, Field]) -> ColumnElement[bool]:
    if len(node.args) != 1:
        raise RQLError("not() takes one condition.")
    return not_(_condition(_expect_node(node.args[0], node.name), fields))


def _membership(operand: Operand) -> ColumnElement[bool]:
    """in() and out(): a list, ``(a,b)``, or a single value."""
    operator, value, field = operand.operator, operand.value, operand.field
    values = value.args if isinstance(value, Node) and value.name == "" else [value]
    texts = [item for item in values if isinstance(item, str)]
    if len(texts) != len(values):
        raise RQLError(f"{operator}() takes a list of values, as in {operator}(field,(a,b)).")
    converted = [field.value(operand.name, text) for text in texts]
    if not converted:
        return false() if operator == "in" else true()
    match = field.match
    clause = or_(*(match(item) for item in converted)) if match is not None else field.column.in_(converted)
    return clause if operator == "in" else not_(clause)


def _comparison(operand: Operand) -> ColumnElement[bool]:
    """gt, ge, lt and le, on fields with an order."""
    value = operand.plain()
    if not operand.field.comparable:
        raise RQLError(f"{operand.operator}() applies to times and numbers; {operand.name} is not one.")
    converted = operand.field.value(operand.name, value)
    compared: ColumnElement[bool] = getattr(operand.field.column, COMPARISONS[operand.operator])(converted)
    return compared


def _like(operand: Operand) -> ColumnElement[bool]:
    """like and ilike, with ``*`` as the wildcard, on text columns."""
    value = operand.plain()
    field = operand.field
    if not field.text or field.match is not None:
        raise RQLError(f"{operand.operator}() applies to text fields; {operand.name} is not one.")
    pattern = _like_pattern(value)
    like = field.column.like if operand.operator == "like" else field.column.ilike
    liked: ColumnElement[bool] = like(pattern, escape="\\")
    return liked


def _equality(operand: Operand) -> ColumnElement[bool]:
    """eq and ne, through the field's ``match`` when it is not a column."""
    field = operand.field
    converted = field.value(operand.name, operand.plain())
    if field.match is not None:
        return field.match(converted) if operand.operator == "eq" else not_(field.match(converted))
    equal: ColumnElement[bool] = field.column == converted if operand.operator == "eq" else field.column != converted
    return equal


_COMBINATIONS: dict[str, Callable[[Node, Mapping[str, Field]], ColumnElement[bool]]] = {
    "and": _all_or_any,
    "or": _all_or_any,
    "not": _negation,
}
_FIELD_OPERATORS: dict[str, Callable[[Operand], ColumnElement[bool]]] = {
    "eq": _equality,
    "ne": _equality,
    "in": _membership,
    "out": _membership,
    "like": _like,
    "ilike": _like,
    **dict.fromkeys(COMPARISONS, _comparison),
}


def _expect_node(arg: Node | str, parent: str) -> Node:
    if not isinstance(arg, Node) or not arg.name:
        raise RQLError(f"{parent}() takes conditions such as eq(field,value).")
    return arg


def parse_query(query_string: str, fields: Mapping[str, Field], default_order: list[Any]) -> Query:
    """Turn a raw query string into a WHERE clause, an ORDER BY and the named parameters."""
    if len(query_string) > MAX_LENGTH:
        raise RQLError(f"The query is longer than {MAX_LENGTH} characters.")
    conditions: list[ColumnElement[bool]] = []
    order_by: list[Any] = []
    params: dict[str, str] = {}
    for term in filter(None, query_string.split("&")):
        key, sep, value = term.partition("=")
        if sep and "(" not in key:
            key = _value(key.replace("+", " "))
            value = _value(value.replace("+", " "))
            if key in NAMED_PARAMETERS:
                params[key] = value
            elif key == "ordering":  # ordering=-a,b is ordering(-a,b)
                order_by.extend(_ordering(Node("ordering", [name for name in value.split(",") if name]), fields))
            elif key in fields:  # field=value is shorthand for eq(field,value)
                conditions.append(_condition(Node("eq", [key, value]), fields))
            else:
                raise RQLError(f"Unknown parameter '{key}'.")
            continue
        node = parse_expression(term)  # values are unquoted one by one, so %2C stays inside a value
        if node.name == "ordering":
            order_by.extend(_ordering(node, fields))
        elif node.name == "select":
            continue  # Connect clients send select(); every field is always returned
        else:
            conditions.append(_condition(node, fields))
    return Query(and_(true(), *conditions), order_by or default_order, params, filtered=bool(conditions))


def _ordering(node: Node, fields: Mapping[str, Field]) -> list[Any]:
    order = []
    for arg in node.args:
        if not isinstance(arg, str):
            raise RQLError("ordering() takes field names, as in ordering(-created,label).")
        descending = arg.startswith("-")
        name = arg.lstrip("+-")
        field = fields.get(name)
        if field is None or field.column is None:
            orderable = sorted(key for key, known in fields.items() if known.column is not None)
            raise RQLError(f"Cannot order by '{name}'. Fields: {', '.join(orderable)}.")
        order.append(field.column.desc() if descending else field.column.asc())
    return order
