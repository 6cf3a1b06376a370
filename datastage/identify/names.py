"""Person names in whole values, tolerant of digits, case and diacritics.

Two kinds of evidence, kept apart because they mean different things:

* **dictionary**: the value's name tokens are in the given- and family-name lists of the
  supported locales, after folding (``MARÍA`` -> ``maria``) and stripping the digits some
  systems append (``Margorie48`` -> ``margorie``, ``Cormier289`` -> ``cormier``);
* **shape**: the value is written like a name (one or two alphabetic tokens for a name
  part; two to four capitalised tokens, particles and titles allowed, for a full name)
  whether or not a dictionary knows it (``Christoper Peteuil``).

Shape alone proves nothing (``Action``, ``Blue`` are shaped like names), so callers take it
only where the column name and the table already say "person". Everything works on a
whole batch of values with pandas string methods.

Example:
    >>> values = pd.Series(["Margorie48", "Cormier289", "MARÍA", "josé", "Christoper Peteuil", "CA", "42"])
    >>> found = evidence(values)
    >>> found.dict_first.tolist()
    [False, False, True, True, False, False, False]
    >>> found.dict_last.tolist()[:2], found.shape_part.tolist(), found.shape_full.tolist()[4]
    ([False, True], [True, True, True, True, True, False, False], True)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from datastage.identify import reference as pii
from datastage.identify.batch import Batch
from datastage.identify.reference import words_of

NAME_KINDS = ("first_name", "last_name", "full_name")
NAME_KINDS_SET = frozenset(NAME_KINDS)
_L = r"[^\W\d_]"  # a letter of any script
_TOKEN = rf"{_L}+(?:['’-]{_L}+)*"
TITLES = words_of("""
    mr mrs ms miss mx dr prof sir dame lord lady rev fr herr frau hr fr m mme mlle sr sra srta don dona sig
    sigra dhr mevr
""")
SUFFIXES = words_of("jr sr ii iii iv v phd md dds dmd do rn np pa esq mba jd dvm cpa")
PARTICLES = words_of("""
    van von der den de da das do dos du di del della la le el al bin ben ibn y e ter ten zu af av st
""")
# One name token, optionally with the digits some systems append, or an initial.
_PART = rf"{_TOKEN}\.?\d{{0,4}}"
_SHAPE_PART = rf"\s*(?:{_TOKEN})\d{{0,4}}(?:[\s-]+(?:{_TOKEN})\d{{0,4}})?\s*"
_SHAPE_FULL = rf"\s*(?:{_PART})(?:,?\s+(?:{_PART})){{1,5}}\s*"


def normalise(values: pd.Series) -> pd.Series:
    """Folded (lower case, no accents), digits after letters and titles dropped, one blank between tokens."""
    text = values.astype(str).str.lower()
    ascii_ = text.str.isascii().to_numpy(dtype=bool)
    if not ascii_.all():
        folded = text[~ascii_].str.normalize("NFKD").str.replace(r"[\u0300-\u036f]", "", regex=True)
        text = text.copy()
        text[~ascii_] = folded.str.replace("ß", "ss", regex=False).str.replace("ø", "o", regex=False)
    text = text.str.replace(rf"(?<={_L})\d+", "", regex=True)
    return text.str.replace(r"[.,]", " ", regex=True).str.split().str.join(" ")


@dataclass
class NameEvidence:
    """Per value: which dictionary or shape test it passes (boolean arrays of one length)."""

    dict_first: np.ndarray  # every token a given name ("José Eduardo")
    dict_last: np.ndarray  # every token (of a hyphenated or double name) a family name
    dict_full: np.ndarray  # a given name first and a family name last, or "Last, First"
    shape_part: np.ndarray  # one or two name-shaped tokens
    shape_full: np.ndarray  # two to four name-shaped tokens, capitalised, titles and particles allowed
    tokens: np.ndarray  # name tokens per value (titles and suffixes not counted)
    affix: np.ndarray  # a title or a name suffix on its own ("Mr.", "PhD")

    @classmethod
    def none(cls, n: int) -> NameEvidence:
        """No value passes any test (for batches not worth testing)."""
        empty = np.zeros(n, dtype=bool)
        return cls(empty, empty, empty, empty, empty, np.zeros(n, dtype=np.int64), empty)

    def masks(self, hints: frozenset[str] | set[str] = frozenset()) -> dict[str, np.ndarray]:
        """Per name kind: the dictionary test, or (where the column name says so) the shape test too."""
        first = self.dict_first | (self.shape_part if "first_name" in hints else False)
        last = self.dict_last | (self.shape_part if "last_name" in hints else False)
        full = self.dict_full | (self.shape_full if "full_name" in hints else False)
        return {"first_name": np.asarray(first, dtype=bool), "last_name": np.asarray(last, dtype=bool),
                "full_name": np.asarray(full, dtype=bool)}


def _words(words: frozenset[str]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


STOPWORDS = words_of("""
    the and of for with to in on at a an or not my your our is are from by und oder et ou les los las il
    het een och og eller ja tai lub a z w na
""")


@lru_cache(maxsize=1)
def plain_words() -> frozenset[str]:
    """Everyday words that are no one's name in any dictionary."""
    return pii.common_words() - pii.first_names() - pii.last_names()


# A token starting with a lower-case letter that is not a particle: not written as a name.
_LOWER_START = rf"(?:^|[ ,])(?!(?:{_words(PARTICLES)})(?:[ ,]|$))[a-zß-öø-ÿ]"


def evidence(values: pd.Series | Batch) -> NameEvidence:
    """Dictionary and shape evidence for every value of ``values`` (non-blank text)."""
    batch = values if isinstance(values, Batch) else Batch(values.astype(str).to_numpy(dtype=object))
    n = len(batch)
    if not n:
        return NameEvidence.none(0)
    text = batch.text.lower()
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text.replace("ß", "ss").replace("ø", "o")))
    text = _DIGITS_AFTER_LETTERS.sub("", text)
    text = _PUNCTUATION.sub(" ", text)
    words, lines, _ = batch.tokens(text.replace("-", " "))
    lines = np.asarray(lines, dtype=np.int64)
    index, bits = _lexicon()
    found = index.get_indexer(pd.Index(words, dtype=object)) if words else np.zeros(0, dtype=np.int64)
    classes = np.where(found >= 0, bits[np.maximum(found, 0)], 0)

    def per_value(flags: np.ndarray) -> np.ndarray:
        return np.bincount(lines, weights=flags.astype(np.float64), minlength=n).astype(np.int64)

    def has(bit: int) -> np.ndarray:
        return (classes & bit) != 0

    affix_token = has(_AFFIX)
    particle = has(_PARTICLE) & ~affix_token
    named_token = ~affix_token & ~particle
    total = per_value(np.ones(len(words), dtype=bool))
    count = per_value(~affix_token)
    lengths = per_value(named_token)
    in_first = has(_FIRST) & named_token
    in_last = has(_LAST) & named_token
    plain = (per_value(has(_PLAIN) & named_token) == lengths) & (lengths > 0)
    stop = per_value(has(_STOP)) > 0
    named_lines = lines[named_token]
    head_first, head_last, tail_first, tail_last = (np.zeros(n, dtype=bool) for _ in range(4))
    if len(named_lines):
        _, head = np.unique(named_lines, return_index=True)
        _, tail_rev = np.unique(named_lines[::-1], return_index=True)
        tail = len(named_lines) - 1 - tail_rev
        rows = named_lines[head]
        head_first[rows], head_last[rows] = in_first[named_token][head], in_last[named_token][head]
        tail_first[rows], tail_last[rows] = in_first[named_token][tail], in_last[named_token][tail]
    multi = (lengths >= 2) & (lengths <= 4)
    comma = batch.count_of(",") > 0
    dict_full = multi & ((head_first & tail_last) | (head_last & tail_first & comma))
    # A double given name (José Eduardo) or a double family name (García López), not a full name.
    one_or_two = ((lengths == 1) | ((lengths == 2) & ~dict_full)) & (count <= 3)
    dict_first = one_or_two & (per_value(in_first) == lengths)
    dict_last = one_or_two & (per_value(in_last) == lengths)
    shape_part = batch.fullmatch(_SHAPE_PART) & ~batch.fullmatch(r"[A-Z]{1,2}\d*") & (batch.letters >= 2)
    shape_part &= ~plain & ~stop
    shape_full = batch.fullmatch(_SHAPE_FULL) & multi & ~plain & ~stop
    if shape_full.any():
        shape_full &= ~batch.contains(_LOWER_START)
    affix = (total == 1) & (count == 0)
    return NameEvidence(dict_first, dict_last, dict_full, shape_part, shape_full, count, affix)


_FIRST, _LAST, _AFFIX, _PARTICLE, _STOP, _PLAIN = 1, 2, 4, 8, 16, 32


@lru_cache(maxsize=1)
def _lexicon() -> tuple[pd.Index, np.ndarray]:
    """Every word the name tests know, hashed once, and its classes as bits (given, family, title ...)."""
    classes: dict[str, int] = {}
    for words, bit in ((pii.first_names(), _FIRST), (pii.last_names(), _LAST), (TITLES | SUFFIXES, _AFFIX),
                       (PARTICLES, _PARTICLE), (STOPWORDS, _STOP), (plain_words(), _PLAIN)):
        for word in words:
            classes[word] = classes.get(word, 0) | bit
    return pd.Index(list(classes), dtype=object), np.fromiter(classes.values(), dtype=np.int64, count=len(classes))


_COMBINING = re.compile(r"[\u0300-\u036f]")
_DIGITS_AFTER_LETTERS = re.compile(rf"(?<={_L})\d+")
_PUNCTUATION = re.compile(r"[.,]")


def share_where(mask: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Share of (weighted) values where ``mask`` holds."""
    if not len(mask):
        return 0.0
    if weights is None:
        return float(np.mean(mask))
    total = float(weights.sum())
    return float(weights[mask].sum()) / total if total else 0.0
