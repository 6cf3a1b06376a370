"""``when:`` conditions: a small expression language, parsed, checked and evaluated on whole columns.

A rule's ``when:`` selects the rows it masks. The text is never handed to Python: it is
read by the scanner and recursive-descent parser of :mod:`~datastage.mask.condition_parser`
into an AST of a few node types,
checked against the table's columns (names and types) when the rules are checked, and
evaluated with numpy/pandas operations on whole column batches. Regular expressions and
``like`` patterns run on RE2 (linear time, no backreferences or look-arounds), compiled once
when the rules are read.

Grammar (keywords in any case)::

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | predicate
    predicate  := sum [ ("==" | "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") sum
                      | ["not"] "in" "(" literal ("," literal)* [","] ")"
                      | "is" ["not"] "null"
                      | ["not"] ("like" | "ilike" | "matches") string ]
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/" | "%") unary)*
    unary      := ("-" | "+") unary | atom
    atom       := number | string | "true" | "false" | column | "(" condition ")"
    column     := name | `any name`            (backticks; a backtick inside is doubled)
    string     := 'text' | "text"              (the quote doubled inside; no backslash escapes)

Null semantics are SQL's three-valued logic: a comparison, arithmetic, ``in``, ``like`` or
``matches`` with a NULL operand is unknown, ``not`` unknown is unknown, ``false and
unknown`` is false, ``true or unknown`` is true, and only rows where the whole condition is
true are selected. ``is null`` / ``is not null`` are never unknown.

Example:
    >>> condition = parse_condition("tier = 'vip' and score > 10")
    >>> sorted(condition.columns)
    ['score', 'tier']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from datastage.mask.condition_parser import (
    KEYWORDS,
    MAX_LENGTH,
    Arith,
    Compare,
    ConditionError,
    Const,
    Logic,
    Member,
    Name,
    Negate,
    Node,
    Not,
    NullTest,
    Parser,
    Pattern,
    children,
    scan,
)
from datastage.source.values import canonical_text
from datastage.yamlfile import did_you_mean

__all__ = ["Condition", "ConditionError", "compile_condition", "parse_condition"]

NUMBER_CATEGORIES = frozenset({"integer", "decimal", "float"})
TRUE_WORDS = ("1", "t", "true", "y", "yes", "on")
FALSE_WORDS = ("0", "f", "false", "n", "no", "off")

Kind = Literal["number", "text", "boolean"]


class ColumnLike(Protocol):
    """What binding needs of a column: its type family (``ColumnInfo.category``)."""

    category: str


# -- checking against the table -----------------------------------------------------------

def column_kind(category: str) -> Kind:
    """How a column's values take part in a condition: numbers, booleans, or text (everything else)."""
    if category in NUMBER_CATEGORIES:
        return "number"
    if category == "boolean":
        return "boolean"
    return "text"


def _const_kind(value: object) -> Kind:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "text"


_KIND_NAMES = {"number": "a number", "text": "text", "boolean": "true/false"}


def _comparable(left: Kind, right: Kind) -> bool:
    return left == right or {left, right} == {"number", "boolean"}


@dataclass
class Condition:
    """A parsed ``when:`` condition; :meth:`bind` checks it against a table's columns."""

    text: str
    root: Node
    columns: frozenset[str]
    kinds: dict[str, Kind] = field(default_factory=dict)
    table: str | None = None

    @property
    def bound(self) -> bool:
        return self.table is not None

    def bind(self, table: str, columns: Mapping[str, ColumnLike]) -> Condition:
        """This condition checked against ``columns`` of ``table``: every name exists, every operand fits."""
        missing = sorted(self.columns - set(columns), key=lambda name: _first_at(self.root, name))
        if missing:
            name = missing[0]
            raise ConditionError(f"table {table} has no column '{name}'{did_you_mean(name, list(columns))}")
        kinds = {name: column_kind(columns[name].category) for name in self.columns}
        bound = Condition(self.text, self.root, self.columns, kinds, table)
        kind = bound._check(self.root)
        if kind == "text":
            raise ConditionError("the condition is text, not true or false; compare it, e.g. tier = 'vip'")
        return bound

    def _check(self, node: Node) -> Kind:
        """The kind of ``node``'s value; operands that do not fit their operator are errors."""
        if isinstance(node, Name):
            return self.kinds[node.name]
        if isinstance(node, Const):
            return _const_kind(node.value)
        if isinstance(node, Negate | Arith):
            for operand in children(node):
                if self._check(operand) != "number":
                    symbol = "-" if isinstance(node, Negate) else node.op
                    raise ConditionError(f"'{symbol}' at character {node.at} needs numbers, got "
                                         f"{_KIND_NAMES[self._check(operand)]} ({_show(operand)})")
            return "number"
        if isinstance(node, Not | Logic):
            for operand in children(node):
                if self._check(operand) == "text":
                    word = "not" if isinstance(node, Not) else node.op
                    raise ConditionError(f"'{word}' at character {node.at} needs conditions, got text "
                                         f"({_show(operand)}); compare it, e.g. {_show(operand)} = '...'")
            return "boolean"
        if isinstance(node, Compare):
            left, right = self._check(node.left), self._check(node.right)
            if not _comparable(left, right):
                raise ConditionError(f"'{node.op}' at character {node.at} compares {_KIND_NAMES[left]} "
                                     f"({_show(node.left)}) with {_KIND_NAMES[right]} ({_show(node.right)})")
            return "boolean"
        if isinstance(node, Member):
            kind = self._check(node.operand)
            for item in node.items:
                if not _comparable(kind, _const_kind(item.value)):
                    held = _KIND_NAMES[_const_kind(item.value)]
                    raise ConditionError(f"'in' at character {node.at}: {_show(node.operand)} is "
                                         f"{_KIND_NAMES[kind]}, but the list holds {held} ({_show(item)})")
            return "boolean"
        if isinstance(node, NullTest):
            self._check(node.operand)
            return "boolean"
        if isinstance(node, Pattern):
            kind = self._check(node.operand)
            if kind != "text":
                raise ConditionError(f"'{node.op}' at character {node.at} needs text, got {_KIND_NAMES[kind]} "
                                     f"({_show(node.operand)})")
            return "boolean"
        raise AssertionError(node)

    def select(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the rows of ``frame`` where the condition is true (unknown is not true)."""
        if not self.bound:
            raise ConditionError("condition used before it was checked against the table")
        absent = sorted(self.columns - set(frame.columns))
        if absent:
            raise ConditionError(f"the batch of {self.table} holds no column '{absent[0]}'")
        value = _Evaluator(frame, self.kinds).truth(self.root)
        return value.values & ~value.null


def _first_at(node: Node, name: str) -> int:
    found = [n.at for n in _walk(node) if isinstance(n, Name) and n.name == name]
    return min(found) if found else 0


def _walk(node: Node) -> Iterable[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(children(current))


def _show(node: Node) -> str:
    if isinstance(node, Name):
        return node.name if node.name.isidentifier() and node.name.lower() not in KEYWORDS else \
            "`" + node.name.replace("`", "``") + "`"
    if isinstance(node, Const):
        if isinstance(node.value, bool):
            return "true" if node.value else "false"
        if isinstance(node.value, str):
            return "'" + node.value.replace("'", "''") + "'"
        return repr(node.value)
    return f"the expression at character {node.at}"


def parse_condition(text: str) -> Condition:
    """Parse ``text`` (bounded in length, nesting and literal size); errors are :class:`ConditionError`."""
    if not isinstance(text, str):
        raise ConditionError(f"expected a condition in quotes, got {type(text).__name__} {text!r}")
    if not text.strip():
        raise ConditionError("empty condition")
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"longer than {MAX_LENGTH} characters ({len(text)})")
    if "\x00" in text:
        raise ConditionError("contains a NUL character")
    root = Parser(scan(text)).parse()
    names = frozenset(n.name for n in _walk(root) if isinstance(n, Name))
    return Condition(text, root, names)


def compile_condition(text: str, table: str, columns: Mapping[str, ColumnLike]) -> Condition:
    """Parse ``text`` and check it against ``columns`` of ``table``."""
    return parse_condition(text).bind(table, columns)


# -- evaluation ---------------------------------------------------------------------------

@dataclass
class _Value:
    """A column-long value: ``values`` where ``null`` is false (what ``values`` holds at nulls is unspecified)."""

    kind: Kind
    values: np.ndarray
    null: np.ndarray


class _Evaluator:
    """Evaluates a checked AST over one batch, whole columns at a time."""

    def __init__(self, frame: pd.DataFrame, kinds: Mapping[str, Kind]) -> None:
        self.frame = frame
        self.kinds = kinds
        self.n = len(frame)
        self.cache: dict[str, _Value] = {}

    def none(self) -> np.ndarray:
        return np.zeros(self.n, dtype=bool)

    def value(self, node: Node) -> _Value:
        if isinstance(node, Name):
            if node.name not in self.cache:
                self.cache[node.name] = _column(self.frame[node.name], self.kinds[node.name])
            return self.cache[node.name]
        if isinstance(node, Const):
            return self.const(node.value)
        if isinstance(node, Negate):
            operand = self.value(node.operand)
            return _arith("-", self.const(0), operand)
        if isinstance(node, Arith):
            return _arith(node.op, self.value(node.left), self.value(node.right))
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Member):
            return self.member(node)
        if isinstance(node, NullTest):
            operand = self.value(node.operand)
            return _Value("boolean", ~operand.null if node.negated else operand.null.copy(), self.none())
        if isinstance(node, Pattern):
            return self.pattern(node)
        return self.truth(node)

    def const(self, value: str | int | float | bool) -> _Value:
        if isinstance(value, bool):
            return _Value("boolean", np.full(self.n, value, dtype=bool), self.none())
        if isinstance(value, int):
            return _Value("number", np.full(self.n, value, dtype=np.int64), self.none())
        if isinstance(value, float):
            return _Value("number", np.full(self.n, value, dtype=np.float64), self.none())
        array = np.empty(self.n, dtype=object)
        array[:] = value
        return _Value("text", array, self.none())

    def truth(self, node: Node) -> _Value:
        """``node`` as a three-valued truth: booleans as they are, numbers true when not zero."""
        if isinstance(node, Not):
            operand = self.truth(node.operand)
            return _Value("boolean", ~operand.values, operand.null)
        if isinstance(node, Logic):
            parts = [self.truth(item) for item in node.items]
            true = [p.values & ~p.null for p in parts]
            false = [~p.values & ~p.null for p in parts]
            if node.op == "and":
                is_false = np.logical_or.reduce(false)
                is_true = np.logical_and.reduce(true)
            else:
                is_true = np.logical_or.reduce(true)
                is_false = np.logical_and.reduce(false)
            return _Value("boolean", is_true, ~(is_true | is_false))
        value = self.value(node)
        if value.kind == "number":
            with np.errstate(invalid="ignore"):
                return _Value("boolean", value.values != 0, value.null)
        return value

    def compare(self, node: Compare) -> _Value:
        left, right = _numeric_if_mixed(self.value(node.left), self.value(node.right))
        compare = _COMPARE[node.op]
        with np.errstate(invalid="ignore"):
            result = np.asarray(compare(left.values, right.values), dtype=bool)
        return _Value("boolean", result, left.null | right.null)

    def member(self, node: Member) -> _Value:
        operand = self.value(node.operand)
        items = [item.value for item in node.items]
        if operand.kind == "text":
            found = pd.Series(operand.values, dtype=object).isin(items).to_numpy(dtype=bool)
        else:
            numbers = np.array([float(v) for v in items], dtype=np.float64)
            values = operand.values.astype(np.float64) if operand.kind == "boolean" else operand.values
            exact = [v for v in items if isinstance(v, int) and not isinstance(v, bool)]
            if values.dtype == np.int64 and len(exact) == len(items):
                found = np.isin(values, np.array(exact, dtype=np.int64))
            else:
                found = np.isin(values.astype(np.float64), numbers)
        return _Value("boolean", ~found if node.negated else found, operand.null)

    def pattern(self, node: Pattern) -> _Value:
        operand = self.value(node.operand)
        values = operand.values
        codes, uniques = pd.factorize(pd.Series(np.where(operand.null, "", values), dtype=object))
        match = node.regex.search if node.op == "matches" else node.regex.fullmatch
        # The pattern runs once per distinct value (RE2: linear time in the value's length).
        hit_unique = np.fromiter((match(str(u)) is not None for u in uniques), dtype=bool, count=len(uniques))
        hit = hit_unique[codes] if len(codes) else self.none()
        return _Value("boolean", ~hit if node.negated else hit, operand.null)


_COMPARE: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    "==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
}


def _numeric_if_mixed(left: _Value, right: _Value) -> tuple[_Value, _Value]:
    """A boolean compared with a number counts as 1 or 0."""
    if left.kind == right.kind:
        return left, right
    return (_Value("number", left.values.astype(np.int64), left.null) if left.kind == "boolean" else left,
            _Value("number", right.values.astype(np.int64), right.null) if right.kind == "boolean" else right)


def _arith(op: str, left: _Value, right: _Value) -> _Value:
    """``left op right`` on numbers; integers stay exact 64-bit unless the result would overflow."""
    null = left.null | right.null
    a, b = left.values, right.values
    integers = a.dtype == np.int64 and b.dtype == np.int64
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(all="ignore"):
        if op in ("/", "%"):
            zero = b == 0
            null = null | zero
            if op == "/":
                out = fa / np.where(zero, 1.0, fb)
            elif integers:
                out = np.fmod(a, np.where(zero, 1, b))  # the sign of the dividend, as in SQL
            else:
                out = np.fmod(fa, np.where(zero, 1.0, fb))
        else:
            floats = fa + fb if op == "+" else fa - fb if op == "-" else fa * fb
            out = floats
            if integers and not bool((np.abs(floats[~null]) >= 2.0**62).any()):
                out = a + b if op == "+" else a - b if op == "-" else a * b
    if out.dtype == np.float64:
        null = null | ~np.isfinite(out)
    return _Value("number", out, null)


def _column(series: pd.Series, kind: Kind) -> _Value:
    """A batch column as numbers, text (canonical form) or booleans, with its null mask."""
    raw = series.to_numpy(dtype=object)
    null = np.asarray(pd.isna(raw), dtype=bool)
    if kind == "number":
        return _numbers(raw, null)
    if kind == "boolean":
        return _booleans(raw, null)
    text = canonical_text(pd.Series(raw, dtype=object))
    text = np.where(null, "", text).astype(object)
    return _Value("text", text, null)


def _numbers(raw: np.ndarray, null: np.ndarray) -> _Value:
    inferred = pd.api.types.infer_dtype(raw, skipna=True) if len(raw) else "empty"
    if inferred in ("integer", "empty", "boolean"):
        try:
            return _Value("number", np.where(null, 0, raw).astype(np.int64), null)
        except (OverflowError, TypeError, ValueError):
            pass
    # Decimals, floats, integers beyond 64 bits; text in a number column (SQLite) is read as a
    # number when it is one, else it counts as NULL.
    present = raw.copy()
    present[null] = None
    floats = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce")
    values = np.asarray(floats, dtype=np.float64)
    return _Value("number", values, null | np.isnan(values))


def _booleans(raw: np.ndarray, null: np.ndarray) -> _Value:
    inferred = pd.api.types.infer_dtype(raw, skipna=True) if len(raw) else "empty"
    if inferred in ("boolean", "empty"):
        return _Value("boolean", np.where(null, False, raw).astype(bool), null)
    if inferred in ("integer", "floating", "decimal", "mixed-integer-float"):
        numbers = _numbers(raw, null)
        with np.errstate(invalid="ignore"):
            return _Value("boolean", numbers.values != 0, numbers.null)
    present = raw.copy()
    present[null] = None
    text = canonical_text(pd.Series(present, dtype=object))
    lowered = pd.Series(text, dtype=object).str.strip().str.lower()
    true = lowered.isin(TRUE_WORDS).to_numpy(dtype=bool)
    false = lowered.isin(FALSE_WORDS).to_numpy(dtype=bool)
    return _Value("boolean", true, null | ~(true | false))
