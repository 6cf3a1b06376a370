r"""What a value must look like for a pattern to match it: bounds on its length and character counts.

A :class:`~datastage.identify.batch.Batch` profiles every value with numpy: its length, its
ASCII digits, ASCII letters and characters beyond ASCII, its longest run of ASCII digits, how
often it holds a few punctuation marks (:data:`TRACKED`), and the classes of its first and last
characters. :func:`bounds` reads a pattern's syntax tree (Python's own parser, so the pattern
means exactly what it means to ``re``) and works out the fewest and most of each that a text the
pattern matches can hold, and the classes it can start and end with. A value outside the bounds
cannot match, so the regex itself runs only on the values inside them, and the result is the same.

The bounds are conservative: a look-around or an anchor counts as nothing, a back-reference as
anything, a character beyond ASCII as a possible match of every class that has one (``\d`` and
``\s`` match digits and spaces of other scripts, case folding maps ``k`` onto the Kelvin sign).

Example:
    >>> b = bounds(r"\s*(?:\d{3}-\d{2}-\d{4})\s*")
    >>> b.high[DIGITS], b.high[ALPHA], b.low[FIXED + TRACKED.index("-")], b.high[LENGTH] >= INF, b.high[RUN]
    (9, 0, 2, True, 4)
    >>> bounds(r"(?:\+|00)?[\d(]\d+").first == DIGIT | OTHER | HIGH
    True
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

try:  # Python's own regular-expression parser (re._parser from 3.11, sre_parse before)
    sre: Any = importlib.import_module("re._constants")
    sre_parse: Any = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - older Pythons
    sre = importlib.import_module("sre_constants")
    sre_parse = importlib.import_module("sre_parse")

DIGIT, ALPHA, OTHER, HIGH = 1, 2, 4, 8  # classes of a character (ASCII digit, ASCII letter, other ASCII, beyond)
LENGTH, DIGITS, ALPHA_COUNT, HIGH_COUNT, RUN, SPACE = 0, 1, 2, 3, 4, 5  # the profile's quantities, then TRACKED
FIXED = 6  # SPACE: ASCII whitespace and characters beyond ASCII (where ``\s`` may match)
TRACKED = "-/.:@+()_ ,$#'"  # punctuation whose count bounds a pattern well
INF = 1 << 30
_WIDTH = FIXED + len(TRACKED)
_ASCII = [chr(c) for c in range(128)]
_CLASS_OF = np.array([DIGIT if c.isdigit() else ALPHA if c.isalpha() else OTHER for c in _ASCII], dtype=np.int64)
ASCII_SPACE = np.array([c.isspace() for c in _ASCII], dtype=bool)
_CATEGORY_RE = {
    sre.CATEGORY_DIGIT: re.compile(r"\d"), sre.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    sre.CATEGORY_SPACE: re.compile(r"\s"), sre.CATEGORY_NOT_SPACE: re.compile(r"\S"),
    sre.CATEGORY_WORD: re.compile(r"\w"), sre.CATEGORY_NOT_WORD: re.compile(r"\W"),
}


@dataclass(frozen=True)
class Bounds:
    """For the texts a pattern matches (whole): the fewest and most of each profiled quantity (``low``,
    ``high``, indexed by :data:`LENGTH` ... then :data:`TRACKED`), the classes of their first and last
    characters, and whether the empty text is one of them. ``high[RUN]`` bounds the longest digit run."""

    low: tuple[int, ...]
    high: tuple[int, ...]
    first: int
    last: int
    nullable: bool
    runs: tuple[int, int, int, int] = (0, 0, 0, 0)  # digit runs: (all digits, prefix, suffix, anywhere)


def _add(a: int, b: int) -> int:
    return min(INF, a + b)


def _char_set(ascii_chars: np.ndarray, high: bool) -> Bounds:
    """One character out of ``ascii_chars`` (128 booleans), or beyond ASCII if ``high``."""
    classes = int(np.bitwise_or.reduce(_CLASS_OF[ascii_chars])) if ascii_chars.any() else 0
    classes |= HIGH if high else 0
    only = int(np.count_nonzero(ascii_chars)) == 1 and not high
    spaced = ascii_chars & ASCII_SPACE
    all_space = not (ascii_chars & ~ASCII_SPACE).any()
    low = [1, int(classes == DIGIT), int(classes == ALPHA), int(classes == HIGH), int(classes == DIGIT),
           int(all_space)]
    high_ = [1, int(bool(classes & DIGIT)), int(bool(classes & ALPHA)), int(bool(classes & HIGH)),
             int(bool(classes & DIGIT)), int(bool(spaced.any()) or high)]
    for char in TRACKED:
        may = bool(ascii_chars[ord(char)])
        low.append(int(may and only))
        high_.append(int(may))
    digit = 1 if classes & DIGIT else -1
    run = max(digit, 0)
    return Bounds(tuple(low), tuple(high_), classes, classes, False, (digit, run, run, run))


_EMPTY = Bounds((0,) * _WIDTH, (0,) * _WIDTH, 0, 0, True, (0, 0, 0, 0))
_ANYTHING = Bounds((0,) * _WIDTH, (INF,) * _WIDTH, OTHER | DIGIT | ALPHA | HIGH, OTHER | DIGIT | ALPHA | HIGH, True,
                   (INF, INF, INF, INF))


def _concat(parts: list[Bounds]) -> Bounds:
    out = _EMPTY
    for part in parts:
        out = _pair(out, part)
    return out


def _pair(a: Bounds, b: Bounds) -> Bounds:
    low = [_add(x, y) for x, y in zip(a.low, b.low, strict=True)]
    high = [_add(x, y) for x, y in zip(a.high, b.high, strict=True)]
    first = a.first | (b.first if a.nullable else 0)
    last = b.last | (a.last if b.nullable else 0)
    a_all, a_pre, a_suf, a_in = a.runs
    b_all, b_pre, b_suf, b_in = b.runs
    runs = (_add(a_all, b_all) if a_all >= 0 and b_all >= 0 else -1,
            max(a_pre, _add(a_all, b_pre) if a_all >= 0 else 0),
            max(b_suf, _add(b_all, a_suf) if b_all >= 0 else 0),
            max(a_in, b_in, _add(a_suf, b_pre)))
    high[RUN] = max(runs[3], 0)
    low[RUN] = 0
    return Bounds(tuple(low), tuple(high), first, last, a.nullable and b.nullable, runs)


def _either(options: list[Bounds]) -> Bounds:
    if not options:
        return _EMPTY
    low = tuple(min(o.low[k] for o in options) for k in range(_WIDTH))
    high = tuple(max(o.high[k] for o in options) for k in range(_WIDTH))
    first = last = 0
    for option in options:
        first, last = first | option.first, last | option.last
    runs = tuple(max(o.runs[k] for o in options) for k in range(4))
    return Bounds(low, high, first, last, any(o.nullable for o in options), runs)  # type: ignore[arg-type]


def _repeat(part: Bounds, least: int, most: int) -> Bounds:
    most = INF if most >= sre.MAXREPEAT else most
    if most == 0:
        return _EMPTY
    low = [min(INF, v * least) for v in part.low]
    high = [0 if not v else INF if most >= INF else min(INF, v * most) for v in part.high]
    every, pre, suf, inner = part.runs
    if every > 0 and most <= 64:  # copies chain into runs of digits: as long as ``most`` copies make them
        chained = part
        for _ in range(most - 1):
            chained = _pair(chained, part)
        runs = chained.runs
    elif every > 0:
        span = INF if most >= INF else min(INF, every * most + pre + suf)
        runs = (INF if most >= INF else min(INF, every * most), span, span, span)
    else:
        joined = _add(suf, pre) if most >= 2 else 0
        runs = (0 if least == 0 or every == 0 else -1, pre, suf, max(inner, joined))
    low[RUN] = 0
    high[RUN] = max(runs[3], 0)
    return Bounds(tuple(low), tuple(high), part.first, part.last, least == 0 or part.nullable, runs)


_CODES = np.arange(128)
_LOWER = np.array([ord(c.lower()) if len(c.lower()) == 1 and ord(c.lower()) < 128 else i
                   for i, c in enumerate(_ASCII)], dtype=np.int64)
_UPPER = np.array([ord(c.upper()) if len(c.upper()) == 1 and ord(c.upper()) < 128 else i
                   for i, c in enumerate(_ASCII)], dtype=np.int64)
_CATEGORY_CHARS = {category: np.array([bool(pattern.match(c)) for c in _ASCII], dtype=bool)
                   for category, pattern in _CATEGORY_RE.items()}
_IS_ALPHA = _CLASS_OF == ALPHA


def _members(items: list[tuple[Any, Any]], ignorecase: bool) -> np.ndarray:
    """Which ASCII characters the (not negated) class of ``items`` matches."""
    chars = np.zeros(128, dtype=bool)
    for op, arg in items:
        if op is sre.LITERAL:
            if arg < 128:
                chars[arg] = True
            elif ignorecase:
                chars |= _IS_ALPHA  # the Kelvin sign folds onto k, ſ onto s, ı onto i: any letter, to be safe
        elif op is sre.RANGE:
            low, high = arg
            if low < 128:
                chars[low:min(high, 127) + 1] = True
            if ignorecase and high >= 128:
                chars |= _IS_ALPHA
        elif op is sre.CATEGORY and arg in _CATEGORY_CHARS:
            chars |= _CATEGORY_CHARS[arg]
        else:
            chars[:] = True
    if ignorecase:
        chars = chars | chars[_LOWER] | chars[_UPPER]
    return chars


def _class(items: list[tuple[Any, Any]], ignorecase: bool) -> Bounds:
    negated = bool(items) and items[0][0] is sre.NEGATE
    positive = items[1:] if negated else items
    chars = _members(positive, ignorecase)
    if negated:
        chars, high = ~chars, True
    else:
        high = any(op is sre.CATEGORY or op not in (sre.LITERAL, sre.RANGE)
                   or (op is sre.LITERAL and arg >= 128) or (op is sre.RANGE and arg[1] >= 128)
                   for op, arg in positive)
        high = high or (ignorecase and bool((chars & _IS_ALPHA).any()))  # k: the Kelvin sign, s: ſ
    return _char_set(chars, high)


def _literal(code: int, ignorecase: bool) -> Bounds:
    chars = _members([(sre.LITERAL, code)], ignorecase)
    high = code >= 128 or (ignorecase and chr(code).isalpha())
    return _char_set(chars, high)


def _walk(pattern: Any, flags: int) -> Bounds:
    return _concat([_node(op, arg, flags) for op, arg in pattern])


def _node(op: Any, arg: Any, flags: int) -> Bounds:
    ignorecase = bool(flags & re.IGNORECASE)
    if op is sre.LITERAL:
        return _literal(arg, ignorecase)
    if op is sre.NOT_LITERAL:
        return _class([(sre.NEGATE, None), (sre.LITERAL, arg)], ignorecase)
    if op is sre.ANY:
        return _class([(sre.NEGATE, None), (sre.LITERAL, 10)], ignorecase)
    if op is sre.IN:
        return _class(list(arg), ignorecase)
    if op is sre.CATEGORY:
        return _class([(op, arg)], ignorecase)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT) or op is getattr(sre, "POSSESSIVE_REPEAT", None):
        least, most, sub = arg
        return _repeat(_walk(sub, flags), least, most)
    if op is sre.SUBPATTERN:
        _, add, remove, sub = arg
        return _walk(sub, (flags | add) & ~remove)
    if op is getattr(sre, "ATOMIC_GROUP", None):
        return _walk(arg, flags)
    if op is sre.BRANCH:
        return _either([_walk(option, flags) for option in arg[1]])
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return _EMPTY
    return _ANYTHING  # back-references, conditionals: anything


@lru_cache(maxsize=2048)
def bounds(pattern: str, flags: int = 0) -> Bounds | None:
    """The :class:`Bounds` of ``pattern`` (None if Python cannot parse it, or it is verbose)."""
    try:
        parsed = sre_parse.parse(pattern, flags)
    except (re.error, RecursionError, OverflowError):
        return None
    flags |= parsed.state.flags
    if flags & re.VERBOSE:
        return None
    return _walk(parsed, flags)


def could_match(counts: np.ndarray, first: np.ndarray, last: np.ndarray, found: Bounds, anchored: bool) -> np.ndarray:
    r"""Per value: whether its ``counts`` (quantities × values) and the classes of its ``first`` and ``last``
    characters lie within ``found`` (``anchored``: a whole-value match; else a match somewhere in it).

    >>> counts = np.zeros((_WIDTH, 2), dtype=np.int64)
    >>> counts[:SPACE + 1] = [[15, 11], [12, 9], [3, 0], [0, 0], [12, 3], [0, 0]]
    >>> counts[FIXED + TRACKED.index("-")] = [0, 2]
    >>> could_match(counts, np.array([ALPHA, DIGIT]), np.array([DIGIT, DIGIT]),
    ...             bounds(r"\s*(?:\d{3}-\d{2}-\d{4})\s*"), True).tolist()
    [False, True]
    """
    ok = np.ones(counts.shape[1], dtype=bool)
    for k in range(_WIDTH):
        if found.low[k] > 0:
            ok &= counts[k] >= found.low[k]
        if anchored and found.high[k] < INF:
            ok &= counts[k] <= found.high[k]
    if anchored and not found.nullable:
        ok &= ((first & found.first) != 0) & ((last & found.last) != 0)
    return ok


def char_class(code: int) -> int:
    """The class of one code point (:data:`DIGIT`, :data:`ALPHA`, :data:`OTHER` or :data:`HIGH`).

    >>> char_class(ord("7")), char_class(ord("K")), char_class(ord("-")), char_class(ord("é"))
    (1, 2, 4, 8)
    """
    if code >= 128:
        return HIGH
    return int(_CLASS_OF[code])
