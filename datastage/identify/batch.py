"""A batch of values joined into one text, so a detector scans all of them with one regex pass.

Python's ``re`` is fast inside one call and slow across many: a pandas ``.str`` method
calls it once per value. A :class:`Batch` joins its values with line feeds and runs each
pattern once over the whole text (``re.MULTILINE``: ``^`` and ``$`` are a value's start and
end), then maps match positions back to values with :func:`numpy.searchsorted`. Character
classes (digits, letters, ``@``, blanks) are counted per value with numpy over the text's
code points. A value never holds a line feed (they are blanked), and every pattern is made
line-safe first (:func:`line_safe`: no part of it matches a line feed), so no match and no
look-around runs into the next value: the result is that of a per-value ``fullmatch`` /
``search``, in one C-level pass.

Example:
    >>> batch = Batch(["ann@example.com", "12 Main Street", "hello"])
    >>> batch.fullmatch(r"[^@\\s]+@[^@\\s]+").tolist(), batch.digits.tolist()
    ([True, False, False], [0, 2, 0])
    >>> batch.contains(r"\\d+ \\w+").tolist(), batch.take(batch.letters > 5).values.tolist()
    ([False, True, False], ['ann@example.com', '12 Main Street'])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd

from datastage.identify import prefilter

_OUTSIDE = {"s": r"[^\S\n]", "W": r"[^\w\n]", "D": r"[^\d\n]"}
_INSIDE = {"s": r" \t\r\f\v"}


def line_safe(pattern: str) -> str:
    r"""``pattern`` rewritten so that nothing in it matches a line feed: ``\s``, ``\W``, ``\D`` and negated
    classes leave it out (so a match, or a look-ahead, never runs into the next value).

    >>> line_safe(r"[^@\s]+@\s*\d")
    '[^\\n@ \\t\\r\\f\\v]+@[^\\S\\n]*\\d'
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if in_class and nxt in _INSIDE:
                out.append(_INSIDE[nxt])
            elif not in_class and nxt in _OUTSIDE:
                out.append(_OUTSIDE[nxt])
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if not in_class and ch == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^\\n")
                i += 2
            else:
                out.append("[")
                i += 1
            if i < len(pattern) and pattern[i] == "]":  # a literal ] first in a class
                out.append("]")
                i += 1
            continue
        if in_class and ch == "]":
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


# What str.split() splits on: every code point Python calls whitespace.
_WHITESPACE = np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)
_MARK = "\x01"  # what a match becomes; a value never holds it (it is blanked like a line feed)
PREFILTER_MIN = 16  # fewer values than this: the regex alone is cheaper than profiling them
# Per code point up to 127, then one entry for every code point beyond: its class, its place in TRACKED.
_CLASS_OF = np.array([prefilter.char_class(c) for c in range(129)], dtype=np.uint8)
_SPACE_OR_HIGH = np.append(prefilter.ASCII_SPACE, True)
_PER_VALUE = ("digits", "letters", "blanks")  # the per-value counts a sub-batch inherits (see Batch.take)
_TRACKED_INDEX = np.array([prefilter.TRACKED.find(chr(c)) for c in range(128)] + [-1], dtype=np.int8)


@lru_cache(maxsize=1024)
def _compiled(pattern: str, flags: int, anchored: bool) -> re.Pattern[str]:
    """The pattern for the joined text: line-safe, anchored to a value's start and end if ``anchored``."""
    safe = line_safe(pattern)
    return re.compile(f"^(?:{safe})$" if anchored else f"(?:{safe})", flags | re.MULTILINE)


def _running(flags: np.ndarray) -> np.ndarray:
    """The running count of ``flags`` (booleans), in the narrowest integers that hold it (numpy sums
    bytes into 32-bit integers many times faster than into 64-bit ones)."""
    dtype = np.int32 if len(flags) < 2**31 - 1 else np.int64
    return np.cumsum(flags.view(np.uint8), dtype=dtype)


def segment_sums(flags: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """How many of the booleans ``flags`` are set in each segment, from each of the increasing ``starts``
    up to the next one (the last up to the end), summed as bytes into the narrowest integers that hold
    them (several times faster than summing booleans into 64-bit integers).

    >>> segment_sums(np.array([True, False, True, True, True]), np.array([0, 2, 4])).tolist()
    [1, 2, 1]
    """
    dtype = np.int32 if len(flags) < 2**31 - 1 else np.int64
    return np.add.reduceat(np.asarray(flags, dtype=bool).view(np.uint8), starts, dtype=dtype).astype(np.int64)


class Batch:
    """Distinct non-blank values (as given, line feeds blanked) and their joined text."""

    def __init__(self, values: Iterable[str] | pd.Series | np.ndarray) -> None:
        array = np.asarray(list(values) if not isinstance(values, np.ndarray | pd.Series) else values, dtype=object)
        text = "\n".join(array.tolist())
        if text.count("\n") != max(0, len(array) - 1) or _MARK in text:
            array = np.array([v.replace("\n", " ").replace(_MARK, " ") for v in array.tolist()], dtype=object)
            text = "\n".join(array.tolist())
        self.values: np.ndarray = array
        self.text = text
        lengths = np.fromiter(map(len, array.tolist()), dtype=np.int64, count=len(array))
        self.lengths = lengths
        self.starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1])) if len(array) else np.zeros(0, np.int64)
        self.ends = self.starts + lengths

    def __len__(self) -> int:
        return len(self.values)

    def series(self) -> pd.Series:
        return pd.Series(self.values, dtype=object)

    # -- character classes per value ----------------------------------------------------

    @cached_property
    def _codes(self) -> np.ndarray:
        return np.frombuffer(self.text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)

    def _per_value(self, flags: np.ndarray) -> np.ndarray:
        """How many of ``flags`` (one per code point of the text) are set within each value."""
        if not len(self.values):
            return np.zeros(0, dtype=np.int64)
        # One sum per value's span with its line feed (a zero after the last value), less that line feed.
        padded = np.zeros(len(flags) + 1, dtype=bool)
        padded[:-1] = flags
        return segment_sums(padded, self.starts) - padded[self.ends]

    @cached_property
    def digits(self) -> np.ndarray:
        codes = self._codes
        return self._per_value((codes >= 48) & (codes <= 57))

    @cached_property
    def letters(self) -> np.ndarray:
        """ASCII letters and every character above Latin-1's symbols (letters of other scripts)."""
        codes = self._codes
        return self._per_value(((codes | 32) >= 97) & ((codes | 32) <= 122) | (codes >= 0xC0))

    @cached_property
    def blanks(self) -> np.ndarray:
        return self._per_value(self._codes == 32)

    def count_of(self, char: str) -> np.ndarray:
        """How often ``char`` occurs in each value (from the profile when it is counted there already)."""
        profile = self.__dict__.get("_profile")
        if profile is not None and len(char) == 1 and char in prefilter.TRACKED:
            return profile[0][prefilter.FIXED + prefilter.TRACKED.index(char)]
        counts: dict[str, np.ndarray] = self.__dict__.setdefault("_counts", {})
        if char not in counts:
            counts[char] = self._per_value(self._codes == ord(char))
        return counts[char]

    # -- regular expressions over the joined text ----------------------------------------

    def fullmatch(self, pattern: str, flags: int = 0) -> np.ndarray:
        """Per value: whether ``pattern`` matches it whole (as ``re.fullmatch`` would)."""
        return self._scan(pattern, flags, anchored=True)

    def contains(self, pattern: str, flags: int = 0) -> np.ndarray:
        """Per value: whether ``pattern`` matches somewhere in it (as ``re.search`` would)."""
        return self._scan(pattern, flags, anchored=False)

    @cached_property
    def _profile(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the quantities :mod:`.prefilter` bounds, one row each, one column per value; the classes of each
        value's first and of its last character, 0 for an empty value), counted over the code points at once."""
        n = len(self.values)
        codes = self._codes
        table = np.zeros((prefilter.FIXED + len(prefilter.TRACKED), n), dtype=np.int64)
        if not n:
            return table, np.zeros(0, np.int64), np.zeros(0, np.int64)
        ascii_codes = np.minimum(codes, 128)
        classes = _CLASS_OF.take(ascii_codes)
        digit = classes == prefilter.DIGIT
        table[prefilter.LENGTH] = self.lengths
        table[prefilter.DIGITS] = self._per_value(digit)
        table[prefilter.ALPHA_COUNT] = self._per_value(classes == prefilter.ALPHA)
        table[prefilter.HIGH_COUNT] = self._per_value(classes == prefilter.HIGH)
        edges = np.diff(np.concatenate(([0], digit.view(np.int8), [0])))  # runs of digits: where they start, end
        begins, finishes = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        lines = _running(codes == 10)
        np.maximum.at(table[prefilter.RUN], lines[begins], finishes - begins)
        table[prefilter.SPACE] = self._per_value(_SPACE_OR_HIGH.take(ascii_codes))
        tracked = _TRACKED_INDEX.take(ascii_codes)
        hit = np.flatnonzero(tracked >= 0)
        width = len(prefilter.TRACKED)
        slots = tracked[hit].astype(np.int64) * n + lines[hit]
        table[prefilter.FIXED:] = np.bincount(slots, minlength=width * n).reshape(width, n)
        filled = self.lengths > 0
        first = np.zeros(n, dtype=np.int64)
        last = np.zeros(n, dtype=np.int64)
        first[filled] = classes[self.starts[filled]]
        last[filled] = classes[self.ends[filled] - 1]
        return table, first, last

    def could_match(self, pattern: str, flags: int = 0, anchored: bool = False) -> np.ndarray | None:
        r"""Per value: whether ``pattern`` may match it (whole if ``anchored``) by its length, character counts
        and first and last characters (:mod:`.prefilter`); None where the pattern's bounds are unknown.

        >>> batch = Batch(["TRK000000000123", "999-33-2827", "12-34"])
        >>> batch.could_match(r"\d{3}-\d{2}-\d{4}", anchored=True).tolist()
        [False, True, False]
        """
        found = prefilter.bounds(pattern, flags)
        if found is None or not len(self.values):
            return None
        table, first, last = self._profile
        return prefilter.could_match(table, first, last, found, anchored)

    def _scan(self, pattern: str, flags: int, anchored: bool) -> np.ndarray:
        """:meth:`_scan_re` on the values :meth:`could_match` lets through."""
        n = len(self.values)
        if n < PREFILTER_MIN:
            return self._scan_re(pattern, flags, anchored)
        maybe = self.could_match(pattern, flags, anchored)
        if maybe is None:
            return self._scan_re(pattern, flags, anchored)
        count = int(np.count_nonzero(maybe))
        if not count:
            return np.zeros(n, dtype=bool)
        if count > n // 2:
            return self._scan_re(pattern, flags, anchored) & maybe
        return self.spread(maybe, self.take(maybe)._scan_re(pattern, flags, anchored))

    def _scan_re(self, pattern: str, flags: int, anchored: bool) -> np.ndarray:
        """Every match replaced by a marker in one ``re.sub`` over the text; the markers' lines are the hits."""
        n = len(self.values)
        out = np.zeros(n, dtype=bool)
        if not n:
            return out
        joined = _compiled(pattern, flags, anchored)
        marked, found = joined.subn(_MARK, self.text)
        if not found:
            return out
        codes = np.frombuffer(marked.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        line = np.cumsum(codes == 10)
        out[line[codes == 1]] = True
        return out

    def fullmatch_where(self, select: np.ndarray, pattern: str, flags: int = 0) -> np.ndarray:
        """:meth:`fullmatch` on the values ``select`` picks (False elsewhere), scanning only those."""
        if not select.any():
            return np.zeros(len(self.values), dtype=bool)
        if select.mean() > 0.8:
            return self.fullmatch(pattern, flags) & select
        return self.spread(select, self.take(select).fullmatch(pattern, flags))

    def word_in(self, words: pd.Index, text: str | None = None) -> np.ndarray:
        """Per value: whether one of its blank-separated tokens (of ``text``, default the batch's text) is in
        ``words`` (a hashed index, looked up once per token)."""
        tokens, lines, _ = self.tokens(text)
        out = np.zeros(len(self.values), dtype=bool)
        if tokens:
            hit = words.get_indexer(pd.Index(tokens, dtype=object)) >= 0
            out[lines[hit]] = True
        return out

    def matches(self, pattern: str, flags: int = 0) -> tuple[np.ndarray, list[re.Match[str]]]:
        """Every match of ``pattern`` in the values: (the value each is in, the matches)."""
        found = list(_compiled(pattern, flags, False).finditer(self.text))
        if not found:
            return np.zeros(0, dtype=np.int64), found
        starts = np.fromiter((m.start() for m in found), dtype=np.int64, count=len(found))
        return np.searchsorted(self.starts, starts, side="right") - 1, found

    def any_match(self, pattern: str, check: Callable[[re.Match[str]], bool], flags: int = 0) -> np.ndarray:
        """Per value: whether some match of ``pattern`` in it passes ``check`` (called on the matches only)."""
        out = np.zeros(len(self.values), dtype=bool)
        lines, found = self.matches(pattern, flags)
        if found:
            ok = np.fromiter((check(m) for m in found), dtype=bool, count=len(found))
            out[lines[ok]] = True
        return out

    def take(self, mask: np.ndarray) -> Batch:
        """The sub-batch of the values ``mask`` selects (the batch itself when it selects them all)."""
        if len(mask) == len(self.values) and bool(np.all(mask)):
            return self
        sub = Batch(self.values[mask])
        # What is counted per value already holds for the sub-batch's values (the same strings).
        for name in _PER_VALUE:
            if name in self.__dict__:
                sub.__dict__[name] = self.__dict__[name][mask]
        if "_counts" in self.__dict__:
            sub.__dict__["_counts"] = {char: counts[mask] for char, counts in self.__dict__["_counts"].items()}
        if "_profile" in self.__dict__:
            table, first, last = self.__dict__["_profile"]
            sub.__dict__["_profile"] = (table[:, mask], first[mask], last[mask])
        return sub

    def spread(self, mask: np.ndarray, sub: np.ndarray) -> np.ndarray:
        """A per-value mask from ``sub``, the mask of the sub-batch ``take(mask)``."""
        out = np.zeros(len(self.values), dtype=bool)
        out[np.flatnonzero(mask)] = sub
        return out

    def tokens(self, text: str | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Blank-separated tokens of every value of ``text`` (default: the batch's text; another text with
        the same line structure may be given, e.g. a folded copy): (tokens, value index, position in value)."""
        source = self.text if text is None else text
        words = source.split()
        if not words:
            return [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        codes = np.frombuffer(source.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        blank = np.isin(codes, _WHITESPACE)
        starts = ~blank & np.concatenate(([True], blank[:-1]))  # where str.split() starts a token
        lines = np.cumsum(codes == 10)[starts]
        position = np.arange(len(words)) - np.searchsorted(lines, lines, side="left")
        return words, lines, position

def as_batch(values: pd.Series | Batch | Iterable[str]) -> Batch:
    """``values`` as a batch (a Series or a list of non-blank text, or a batch already)."""
    if isinstance(values, Batch):
        return values
    if isinstance(values, pd.Series):
        return Batch(values.astype(str).to_numpy(dtype=object))
    return Batch([str(v) for v in values])
