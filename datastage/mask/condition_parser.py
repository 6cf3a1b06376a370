"""The syntax of ``when:`` conditions: a scanner and a recursive-descent parser into a small AST.

Input is bounded before and while it is read: the length of the text, the nesting depth,
the size of every literal, the items of an ``in`` list and the number of patterns. Every
character outside the language is an error naming its position (with a hint for the
Python that does not belong here: attribute access, indexing, calls, ``**``, ``@``).
``like``/``ilike``/``matches`` patterns are compiled here, once, with RE2. The grammar
and the meaning of a condition are documented in :mod:`datastage.mask.condition`.

Example:
    >>> root = Parser(scan("tier = 'vip' and score > 10")).parse()
    >>> type(root).__name__, root.op, len(root.items)
    ('Logic', 'and', 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import re2

MAX_LENGTH = 2000  # characters of a condition
MAX_DEPTH = 40  # nesting of the AST (parentheses, not, arithmetic chains)
MAX_STRING = 500  # characters of one string literal (regexes and like patterns included)
MAX_NUMBER = 40  # characters of one number literal
MAX_ITEMS = 500  # literals in one in (...) list
MAX_PATTERNS = 20  # like / ilike / matches in one condition
REGEX_MEMORY = 8 << 20  # bytes RE2 may use for one compiled pattern
INT_MAX = 2**63 - 1

DIGITS = frozenset("0123456789")
KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false", "like", "ilike", "matches"})
COMPARISONS = {"==": "==", "=": "==", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
OPERATORS = ("==", "!=", "<>", "<=", ">=", "**", "<", ">", "=", "+", "-", "*", "/", "%", "(", ")", ",")
_HINTS = {
    ".": "there is no attribute access; name a column (quote odd names in backticks)",
    "[": "there is no indexing",
    "]": "there is no indexing",
    "{": "there are no templates or sets",
    "}": "there are no templates or sets",
    "@": "there are no variables; name a column",
    ":": "there are no lambdas, slices or assignments",
    ";": "a condition is one expression",
    "\\": "there are no escapes outside strings",
    "#": "there are no comments",
    "!": "write != or 'not'",
    "|": "write 'or'",
    "&": "write 'and'",
    "~": "write 'not', or 'matches' for a regular expression",
    "^": "there is no exponentiation or bitwise operator",
    "$": "there are no variables; name a column",
}


class ConditionError(ValueError):
    """A condition that cannot be read or does not fit the table; ``message`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- scanner ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: Literal["number", "string", "name", "quoted", "op", "end"]
    text: str
    at: int  # 1-based character position

    def describe(self) -> str:
        if self.kind == "end":
            return "the end"
        text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"'{text}'"


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``; any character outside the language is an error naming it."""
    return list(scan(text))


def scan(text: str) -> Iterator[Token]:
    """The tokens of ``text`` one by one (so a parse error names the first problem in reading order)."""
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in DIGITS:
            start = i
            while i < n and text[i] in DIGITS:
                i += 1
            if i < n and text[i] == "." and i + 1 < n and text[i + 1] in DIGITS:
                i += 1
                while i < n and text[i] in DIGITS:
                    i += 1
            if i < n and text[i] in "eE":
                j = i + 1
                if j < n and text[j] in "+-":
                    j += 1
                if j < n and text[j] in DIGITS:
                    i = j
                    while i < n and text[i] in DIGITS:
                        i += 1
            if i < n and (text[i].isalnum() or text[i] == "_"):
                raise ConditionError(f"unexpected '{text[i]}' after the number at character {start + 1}")
            yield Token("number", text[start:i], start + 1)
        elif char in "'\"`":
            start = i
            i += 1
            parts: list[str] = []
            while True:
                end = text.find(char, i)
                if end < 0:
                    what = "name" if char == "`" else "string"
                    raise ConditionError(f"unterminated {what} starting at character {start + 1}")
                parts.append(text[i:end])
                if end + 1 < n and text[end + 1] == char:  # a doubled quote stands for itself
                    parts.append(char)
                    i = end + 2
                    continue
                i = end + 1
                break
            yield Token("quoted" if char == "`" else "string", "".join(parts), start + 1)
        elif char.isalpha() or char == "_":
            start = i
            while i < n and (text[i].isalnum() or text[i] == "_"):
                i += 1
            yield Token("name", text[start:i], start + 1)
        else:
            op = next((o for o in OPERATORS if text.startswith(o, i)), None)
            if op is None:
                hint = _HINTS.get(char)
                raise ConditionError(f"unexpected '{char}' at character {i + 1}" + (f": {hint}" if hint else ""))
            if op == "**":
                raise ConditionError(f"'**' at character {i + 1} is not an operator (there is no exponentiation)")
            yield Token("op", op, i + 1)
            i += len(op)
    yield Token("end", "", n + 1)


# -- AST ----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Node:
    at: int


@dataclass(frozen=True, eq=False)
class Name(Node):
    name: str


@dataclass(frozen=True, eq=False)
class Const(Node):
    value: str | int | float | bool


@dataclass(frozen=True, eq=False)
class Negate(Node):
    operand: Node


@dataclass(frozen=True, eq=False)
class Not(Node):
    operand: Node


@dataclass(frozen=True, eq=False)
class Logic(Node):
    op: Literal["and", "or"]
    items: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Compare(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, eq=False)
class Arith(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, eq=False)
class Member(Node):
    operand: Node
    items: tuple[Const, ...]
    negated: bool


@dataclass(frozen=True, eq=False)
class NullTest(Node):
    operand: Node
    negated: bool


@dataclass(frozen=True, eq=False)
class Pattern(Node):
    operand: Node
    op: Literal["like", "ilike", "matches"]
    source: str
    regex: Any  # a compiled RE2 pattern
    negated: bool


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Negate | Not | NullTest | Pattern | Member):
        return (node.operand,)
    if isinstance(node, Logic):
        return node.items
    if isinstance(node, Compare | Arith):
        return (node.left, node.right)
    return ()


# -- parser -------------------------------------------------------------------------------

class Parser:
    """Recursive descent over the tokens; every nesting step is counted against MAX_DEPTH."""

    def __init__(self, tokens: Iterable[Token]) -> None:
        self.tokens = iter(tokens)
        self.current = next(self.tokens)
        self.depth = 0
        self.patterns = 0

    @property
    def token(self) -> Token:
        return self.current

    def keyword(self, *words: str) -> bool:
        token = self.token
        return token.kind == "name" and token.text.lower() in words

    def op(self, *ops: str) -> bool:
        return self.token.kind == "op" and self.token.text in ops

    def advance(self) -> Token:
        token = self.current
        if token.kind != "end":
            self.current = next(self.tokens)
        return token

    def fail(self, expected: str) -> ConditionError:
        token = self.token
        if token.kind == "end":
            return ConditionError(f"expected {expected} at the end")
        return ConditionError(f"expected {expected} at character {token.at}, found {token.describe()}")

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError(f"nested more than {MAX_DEPTH} levels deep at character {self.token.at}")

    def parse(self) -> Node:
        node = self.condition()
        if self.token.kind != "end":
            token = self.token
            if token.kind == "op" and token.text == "(":
                raise ConditionError(f"'(' at character {token.at}: there are no function calls")
            if token.kind in ("string", "quoted", "name", "number"):
                raise ConditionError(f"expected an operator at character {token.at}, found {token.describe()}")
            raise ConditionError(f"unexpected {token.describe()} at character {token.at}")
        return node

    def condition(self) -> Node:
        return self.logic("or", self.conjunction)

    def conjunction(self) -> Node:
        return self.logic("and", self.negation)

    def logic(self, word: Literal["and", "or"], operand: Callable[[], Node]) -> Node:
        at = self.token.at
        items = [operand()]
        while self.keyword(word):
            self.advance()
            items.append(operand())
        return items[0] if len(items) == 1 else Logic(at, word, tuple(items))

    def negation(self) -> Node:
        if self.keyword("not"):
            at = self.advance().at
            self.nest()
            operand = self.negation()
            self.depth -= 1
            return Not(at, operand)
        return self.predicate()

    def predicate(self) -> Node:
        left = self.sum()
        at = self.token.at
        if self.token.kind == "op" and self.token.text in COMPARISONS:
            op = COMPARISONS[self.advance().text]
            right = self.sum()
            if self.token.kind == "op" and self.token.text in COMPARISONS:
                raise ConditionError(f"comparisons do not chain (character {self.token.at}); join them with 'and'")
            return Compare(at, op, left, right)
        if self.keyword("is"):
            self.advance()
            negated = self.keyword("not")
            if negated:
                self.advance()
            if not self.keyword("null"):
                raise self.fail("'null' after 'is'" if not negated else "'null' after 'is not'")
            self.advance()
            return NullTest(at, left, negated)
        negated = False
        if self.keyword("not"):
            self.advance()
            negated = True
            if not self.keyword("in", "like", "ilike", "matches"):
                raise self.fail("'in', 'like', 'ilike' or 'matches' after 'not'")
        if self.keyword("in"):
            self.advance()
            return Member(at, left, self.literal_list(), negated)
        if self.keyword("like", "ilike", "matches"):
            word = self.advance().text.lower()
            return self.pattern(at, left, word, negated)  # type: ignore[arg-type]
        return left

    def literal_list(self) -> tuple[Const, ...]:
        if not self.op("("):
            raise self.fail("'(' after 'in'")
        self.advance()
        items: list[Const] = []
        while True:
            items.append(self.literal("a literal in the list"))
            if len(items) > MAX_ITEMS:
                raise ConditionError(f"more than {MAX_ITEMS} items in one in (...) list")
            if self.op(","):
                self.advance()
                if self.op(")"):
                    break
                continue
            break
        if not self.op(")"):
            raise self.fail("',' or ')' in the in (...) list")
        self.advance()
        return tuple(items)

    def literal(self, expected: str) -> Const:
        token = self.token
        sign = 1
        if self.op("-", "+"):
            sign = -1 if token.text == "-" else 1
            self.advance()
            if self.token.kind != "number":
                raise self.fail("a number after the sign")
        token = self.token
        if token.kind == "number":
            self.advance()
            return Const(token.at, sign * _number(token))
        if token.kind == "string":
            self.advance()
            return Const(token.at, _string(token))
        if self.keyword("true", "false"):
            self.advance()
            return Const(token.at, token.text.lower() == "true")
        if self.keyword("null"):
            raise ConditionError(f"null at character {token.at} never equals anything; test it with 'is null'")
        raise self.fail(expected)

    def pattern(self, at: int, operand: Node, op: Literal["like", "ilike", "matches"], negated: bool) -> Pattern:
        token = self.token
        if token.kind != "string":
            raise self.fail(f"a quoted pattern after '{op}'")
        self.advance()
        self.patterns += 1
        if self.patterns > MAX_PATTERNS:
            raise ConditionError(f"more than {MAX_PATTERNS} like/ilike/matches patterns in one condition")
        source = _string(token)
        regex_text = like_to_regex(source) if op != "matches" else source
        regex = compile_regex(regex_text, case_sensitive=op != "ilike", what="pattern" if op != "matches" else
                              "regular expression", at=token.at)
        return Pattern(at, operand, op, source, regex, negated)

    def sum(self) -> Node:
        return self.chain(("+", "-"), self.product)

    def product(self) -> Node:
        return self.chain(("*", "/", "%"), self.unary)

    def chain(self, ops: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        node = operand()
        chained = 0
        while self.op(*ops):
            token = self.advance()
            self.nest()  # a left-deep chain nests one level per operator
            chained += 1
            node = Arith(token.at, token.text, node, operand())
        self.depth -= chained
        return node

    def unary(self) -> Node:
        if self.op("-", "+"):
            token = self.advance()
            if self.token.kind == "number":
                number = self.advance()
                value = _number(number)
                return Const(token.at, -value if token.text == "-" else value)
            self.nest()
            operand = self.unary()
            self.depth -= 1
            return Negate(token.at, operand) if token.text == "-" else operand
        return self.atom()

    def atom(self) -> Node:
        token = self.token
        if token.kind == "op" and token.text == "(":
            self.advance()
            self.nest()
            node = self.condition()
            self.depth -= 1
            if not self.op(")"):
                raise self.fail("')'")
            self.advance()
            return node
        if token.kind == "number":
            self.advance()
            return Const(token.at, _number(token))
        if token.kind == "string":
            self.advance()
            return Const(token.at, _string(token))
        if token.kind == "quoted":
            self.advance()
            if not token.text:
                raise ConditionError(f"empty column name at character {token.at}")
            return Name(token.at, token.text)
        if token.kind == "name":
            word = token.text.lower()
            if word in ("true", "false"):
                self.advance()
                return Const(token.at, word == "true")
            if word == "null":
                raise ConditionError(f"null at character {token.at} is not a value; test a column with "
                                     "'is null' or 'is not null'")
            if word in KEYWORDS:
                raise ConditionError(f"expected a column or a value at character {token.at}, found the keyword "
                                     f"'{token.text}' (quote a column of that name in backticks)")
            self.advance()
            if self.op("("):
                raise ConditionError(f"'{token.text}(' at character {token.at}: there are no function calls")
            return Name(token.at, token.text)
        raise self.fail("a column or a value")


def _number(token: Token) -> int | float:
    if len(token.text) > MAX_NUMBER:
        raise ConditionError(f"number at character {token.at} is longer than {MAX_NUMBER} characters")
    if all(c in DIGITS for c in token.text):
        value = int(token.text)
        if value > INT_MAX:
            raise ConditionError(f"integer at character {token.at} is out of range (at most {INT_MAX})")
        return value
    number = float(token.text)
    if not math.isfinite(number):
        raise ConditionError(f"number at character {token.at} is out of range")
    return number


def _string(token: Token) -> str:
    if len(token.text) > MAX_STRING:
        raise ConditionError(f"string at character {token.at} is longer than {MAX_STRING} characters")
    return token.text


def like_to_regex(pattern: str) -> str:
    """The RE2 pattern for an SQL ``like`` pattern: ``%`` any text, ``_`` one character, ``\\`` escapes."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re2.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re2.escape(char))
        i += 1
    return "(?s)" + "".join(out)


def compile_regex(pattern: str, *, case_sensitive: bool = True, what: str = "regular expression",
                  at: int | None = None) -> Any:
    """An RE2 pattern (linear-time matching, bounded memory); invalid syntax is a ConditionError."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = REGEX_MEMORY
    options.case_sensitive = case_sensitive
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        where = f" at character {at}" if at is not None else ""
        raise ConditionError(f"invalid {what}{where}: {reason} (RE2 syntax: no backreferences or "
                             "look-arounds)") from None


