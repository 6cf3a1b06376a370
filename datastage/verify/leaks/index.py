"""The leak check and the card sweep: every row of the loaded copy against keyed hashes of the source.

While the source subset streams through masking, :class:`LeakIndex` keeps keyed hashes
(never values) of

* every original value of every masked column, per column, and
* the identifier tokens inside them (e-mail addresses, phone numbers, card numbers,
  IBANs, national ids, distinctive full names), plus those of columns the scan
  classified as direct identifiers but the rules keep (with a reason).

After the load, :func:`scan_loaded_copy` streams every text and JSON column of the
shadow (all rows) and counts

* ``leak_masked_columns``: rows of a masked column that still hold their own original
  value (each original value is bound to its row as the target holds it: the masked row
  key, or the other masked columns of a table without one; another row's value that
  happens to be equal is no leak). A value the rule maps onto
  itself, such as a date already at the start of its year under ``generalize``, or a
  value from the rule's own fake pool, is counted as excused, not as a leak;
* ``leak_identifiers``: identifier tokens anywhere in the target that come from the
  source (a kept column's own identifiers are not counted in that column);
* ``card_sweep``: Luhn-valid card numbers in a real issuer range outside the reserved
  test ranges, whatever their origin.

The hashes are SipHash under a ``leakcheck`` subkey of the masking key, so the report
holds counts only.

Example:
    >>> index = LeakIndex(key, planned)                     # doctest: +SKIP
    >>> index.observe("customer", batch)                    # doctest: +SKIP
    >>> checks = scan_loaded_copy(conn, planned, index, key, settings, name_of)   # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.cards import is_test_card
from datastage.discover import reference as pii
from datastage.errors import StepError
from datastage.mask.checkspec import CheckSettings
from datastage.mask.engine import MaskingEngine
from datastage.mask.fakepool import fake_pool
from datastage.mask.keys import MaskingKey
from datastage.mask.policy import ColumnRule
from datastage.progress import NoProgress, Progress
from datastage.results import CheckResult, Status
from datastage.source.db import db_error_message
from datastage.source.identifiers import quote_as_needed
from datastage.source.schema import TableInfo
from datastage.source.values import canonical_text, rows_to_frame
from datastage.targets.postgres.stream import read_frames
from datastage.verify.leaks.pool import search_tables

if TYPE_CHECKING:
    from datastage.plan import PlanResult

TEXT_CATEGORIES = frozenset({"text", "json", "other", "array"})
VALUE_DOMAIN = "leakcheck/value"
BINDING_DOMAIN = "leakcheck/row"
TOKEN_DOMAIN = "leakcheck/token"  # noqa: S105 - a hashing domain name, not a secret


class HashSet:
    """A growing set of uint64 hashes, compacted to a sorted unique array."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self._size = 0
        self._sorted = np.zeros(0, dtype=np.uint64)

    def add(self, hashes: np.ndarray) -> None:
        if len(hashes):
            self._parts.append(np.asarray(hashes, dtype=np.uint64))
            self._size += len(hashes)
            if self._size > 4 * max(len(self._sorted), 1 << 16):
                self._compact()

    def _compact(self) -> None:
        if self._parts:
            merged = np.concatenate([self._sorted, *self._parts])
            merged.sort()
            self._sorted = merged[np.concatenate(([True], merged[1:] != merged[:-1]))] if len(merged) else merged
            self._parts, self._size = [], 0

    def __len__(self) -> int:
        self._compact()
        return len(self._sorted)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        self._compact()
        if not len(self._sorted) or not len(hashes):
            return np.zeros(len(hashes), dtype=bool)
        pos = np.searchsorted(self._sorted, hashes)
        pos[pos == len(self._sorted)] = 0
        return self._sorted[pos] == hashes


def _text(series: pd.Series) -> pd.Series:
    """Non-NULL, non-blank canonical text of a column, index kept (an empty string reveals nothing)."""
    values = canonical_text(series)
    present = ~pd.isna(values)
    if not present.all():
        values, index = values[present], series.index[present]
    else:
        index = series.index
    blank = np.fromiter(map(str.isspace, values), dtype=bool, count=len(values)) | (values == "")
    if blank.any():
        values, index = values[~blank], index[~blank]
    return pd.Series(values, index=index, dtype=object)


SEP = "\x00"  # joins a batch's values into one text: no pattern matches it, so none spans two values
WHOLE_PHONE = re.compile(rf"(?<![^{SEP}])(?:{pii.PHONE_SHAPE})(?![^{SEP}])", re.IGNORECASE)
CAPITALISED = re.compile(r"\b[A-Z][^\W\d_]+\b")
NON_DIGITS = re.compile(rf"[^\d{SEP}]")


@dataclass
class Tokens:
    """Identifier tokens (``kind:token``) found in a batch of text, the value each came from, and
    the values holding test card numbers."""

    tokens: list[str] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    test_card_origins: list[int] = field(default_factory=list)

    @property
    def test_cards(self) -> int:
        return len(self.test_card_origins)

    def series(self) -> pd.Series:
        return pd.Series(self.tokens, dtype=object)


def _items(values: pd.Series) -> list[str]:
    """The values as strings that hold no ``SEP`` (one inside a value becomes a space)."""
    items: list[str] = values.tolist()
    if SEP.join(items).count(SEP) != len(items) - 1:
        items = [item.replace(SEP, " ") for item in items]
    return items


def _joined(values: pd.Series) -> str:
    """The values joined by ``SEP``, so positions in the text map to values."""
    return SEP.join(_items(values))


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _origins(text: str, positions: list[int]) -> np.ndarray:
    """Which value of a ``SEP``-joined text each character position belongs to."""
    if not positions:
        return np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(_codes(text) == 0)
    return np.searchsorted(ends, np.asarray(positions, dtype=np.int64))


class _Batch:
    """A batch of values joined into one text, with per-value facts that rule patterns out.

    A value with fewer than 13 digits holds no card number, one without ``@`` no e-mail
    address, and so on: each pattern runs only over the values that could hold a match,
    which are usually few. Non-ASCII characters count as possible digits and letters.
    """

    def __init__(self, values: pd.Series) -> None:
        self.items = _items(values)
        self.text = SEP.join(self.items)
        # One code per character and a closing SEP; each value's segment runs up to the next value.
        if self.text.isascii():
            codes = np.frombuffer((self.text + SEP).encode("ascii"), dtype=np.uint8)
            wide = np.zeros(len(codes), dtype=bool)
        else:
            codes = _codes(self.text + SEP)
            wide = codes > 127
        starts = np.concatenate(([0], np.flatnonzero(codes[:-1] == 0) + 1))
        digit = ((codes >= 48) & (codes <= 57)) | wide
        folded = codes | 32
        letter = ((folded >= 97) & (folded <= 122)) | wide

        def per_value(flags: np.ndarray) -> np.ndarray:
            return np.add.reduceat(flags, starts, dtype=np.int64)

        self.digits = per_value(digit)
        # Upper-casing turns one non-ASCII character into up to three letters (ﬃ → FFI).
        self.letters = per_value(letter) + 2 * per_value(wide)
        self.dashes = per_value(codes == 45)
        self.at_sign = per_value(codes == 64) > 0
        # Two letters followed by two digits: how every IBAN starts (ß02: one character, two letters).
        iban_start = np.zeros(len(codes), dtype=bool)
        iban_start[:-3] = letter[:-3] & letter[1:-2] & digit[2:-1] & digit[3:]
        iban_start[:-2] |= wide[:-2] & digit[1:-1] & digit[2:]
        self.iban_like = per_value(iban_start) > 0

    def part(self, wanted: np.ndarray) -> tuple[str, np.ndarray]:
        """The joined text of the ``wanted`` values, and their positions in the batch."""
        chosen = np.flatnonzero(wanted)
        if len(chosen) == len(self.items):
            return self.text, chosen
        return SEP.join([self.items[i] for i in chosen]), chosen


def _digits(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The digits of each span of ``text``, with one regex pass over all of them."""
    return NON_DIGITS.sub("", SEP.join(text[a:b] for a, b in spans)).split(SEP) if spans else []


def _phone_spans(text: str, whole_phone: bool) -> list[tuple[int, int]]:
    spans = [m.span() for m in pii.PHONE_IN_TEXT.finditer(text)]
    if whole_phone:
        found_starts = np.array([a for a, _ in spans], dtype=np.int64)
        # Whole values the in-text pattern did not find (no in-text match starts inside them).
        whole = [m.span() for m in WHOLE_PHONE.finditer(text)]
        if whole:
            bounds = np.array(whole, dtype=np.int64)
            first = np.searchsorted(found_starts, bounds[:, 0])
            following = np.append(found_starts, np.iinfo(np.int64).max)[first]
            spans += [(a, b) for a, b in bounds[following >= bounds[:, 1]].tolist()
                      if not pii.DATE_SHAPE.fullmatch(text, a, b)]
    return spans


def identifier_tokens(values: pd.Series, *, phones: bool = True, names: bool = False,
                      whole_phone: bool = False) -> Tokens:
    """Normalised identifier tokens in text values: e-mail, card, IBAN, SSN, NI, phone (and name pairs).

    Each pattern runs once per batch, over the joined text of the values that could hold a
    match; each token records the position in ``values`` of the value it came from.

    >>> identifier_tokens(pd.Series(["mail ann@example.org", "call +44 20 7946 0018"], dtype=object)).tokens
    ['email:ann@example.org', 'phone:2079460018']
    """
    found = Tokens()
    if values.empty:
        return found
    batch = _Batch(values)
    kinds: list[str] = []
    tokens: list[str] = []
    origins: list[np.ndarray] = []

    def add(kind: str, text: str, chosen: np.ndarray, hits: list[tuple[int, str]]) -> None:
        if hits:
            kinds.extend([kind] * len(hits))
            tokens.extend(token for _, token in hits)
            origins.append(chosen[_origins(text, [start for start, _ in hits])])

    text, chosen = batch.part(batch.at_sign)
    add("email", text, chosen, [(m.start(), m.group(0).lower()) for m in pii.EMAIL_RE.finditer(text)])
    text, chosen = batch.part(batch.digits >= 13)
    cards = [m.span() for m in pii.CARD_IN_TEXT.finditer(text)]
    test_starts, live = [], []
    for (a, _), digits in zip(cards, _digits(text, cards), strict=True):
        if pii.plausible_card(digits):
            if is_test_card(digits):
                test_starts.append(a)
            else:
                live.append((a, digits))
    add("card", text, chosen, live)
    found.test_card_origins = chosen[_origins(text, test_starts)].tolist()
    text, chosen = batch.part((batch.digits >= 9) & (batch.dashes >= 2))
    add("ssn", text, chosen, [(m.start(), m.group(0).replace("-", "")) for m in pii.SSN_RE.finditer(text)])
    # Upper-casing can change a text's length (ß → SS), so positions are taken in the upper-cased text.
    text, chosen = batch.part(batch.iban_like)
    text = text.upper()
    add("iban", text, chosen, [(m.start(), m.group(0).replace(" ", "")) for m in pii.IBAN_IN_TEXT.finditer(text)
                               if pii.iban_valid(m.group(0))])
    text, chosen = batch.part((batch.digits >= 6) & (batch.letters >= 3))
    text = text.upper()
    add("ni", text, chosen, [(m.start(), m.group(0).replace(" ", "")) for m in pii.UK_NI_RE.finditer(text)])
    if phones:
        text, chosen = batch.part(batch.digits >= 8)
        spans = _phone_spans(text, whole_phone)
        numbers = zip(spans, _digits(text, spans), strict=True)
        add("phone", text, chosen, [(a, digits[-10:]) for (a, _), digits in numbers if 8 <= len(digits) <= 15])
    found.tokens = [f"{kind}:{token}" for kind, token in zip(kinds, tokens, strict=True)]
    found.origins = np.concatenate(origins).tolist() if origins else []
    if names:
        for token, origin in name_bigrams(values):
            found.tokens.append(token)
            found.origins.append(origin)
    return found


WORD_OR_SEP = re.compile(rf"[^\W\d_]+|{SEP}")


@lru_cache(maxsize=1 << 18)
def _distinctive(word: str) -> bool:
    return pii.distinctive_name(word)


def _folded_names(names: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each name folded, and whether it is distinctive (each distinct name looked up once)."""
    codes, uniques = pd.factorize(names.astype(str).to_numpy(dtype=object))
    folded = np.array([pii.fold(name) for name in uniques], dtype=object)
    rare = np.array([_distinctive(name) for name in folded], dtype=bool)
    return folded[codes], rare[codes]


def name_bigrams(values: pd.Series, mode: str = "all") -> list[tuple[str, int]]:
    """``(name:first last, value position)`` for pairs of consecutive words (folded).

    ``all``: every pair with a distinctive word (what the target is searched for);
    ``names``: the same, from columns holding names; ``text``: capitalised pairs in free
    text that start with a known given name and contain a distinctive word.

    >>> name_bigrams(pd.Series(["Zbigniew Brzęczyszczykiewicz", "ann lee"], dtype=object))
    [('name:zbigniew brzeczyszczykiewicz', 0)]
    """
    if values.empty:
        return []
    if mode == "text":
        text = _joined(values)
        matches = list(CAPITALISED.finditer(text))
        firsts = pii.first_names()
        # A name is two capitalised words with only spaces between them (not across a full stop).
        pairs = [(pii.fold(a.group(0)), pii.fold(b.group(0)), a.start()) for a, b in itertools.pairwise(matches)
                 if text[a.end():b.start()].isspace()]
        rows = _origins(text, [start for _, _, start in pairs]).tolist()
        return [(f"name:{a} {b}", row) for (a, b, _), row in zip(pairs, rows, strict=True)
                if a in firsts and (_distinctive(a) or _distinctive(b))]
    # Words and value separators in order: a pair is two neighbours that are both words.
    items = np.array(WORD_OR_SEP.findall(pii.fold(_joined(values))), dtype=object)
    if len(items) < 2:
        return []
    codes, uniques = pd.factorize(items)
    is_sep = np.isin(codes, [i for i, word in enumerate(uniques) if word == SEP])
    # Every mode keeps only pairs with a distinctive word: the source side harvests no other
    # pairs, so in the target ("all") any other pair could never match.
    rare = np.array([word != SEP and _distinctive(word) for word in uniques], dtype=bool)[codes]
    pair = ~is_sep[:-1] & ~is_sep[1:] & (rare[:-1] | rare[1:])
    first = np.flatnonzero(pair)
    if not len(first):
        return []
    tokens: list[str] = ("name:" + items[first] + " " + items[first + 1]).tolist()
    origins: list[int] = np.cumsum(is_sep)[first].tolist()
    return list(zip(tokens, origins, strict=True))


@dataclass
class LeakIndex:
    """Keyed hashes of what must not reach the target, collected while the source subset streams."""

    key: MaskingKey
    masked: dict[str, list[ColumnRule]]
    harvest: dict[str, dict[str, dict[str, bool]]]
    name_pairs: dict[str, tuple[str, str]]
    bindings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[tuple[str, str], HashSet] = field(default_factory=dict)
    tokens: HashSet = field(default_factory=HashSet)
    kept_tokens: dict[tuple[str, str], HashSet] = field(default_factory=dict)
    harvested: Counter[str] = field(default_factory=Counter)
    all_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rows_observed: int = 0

    @classmethod
    def for_plan(cls, key: MaskingKey, planned: PlanResult) -> LeakIndex:
        """What to collect for each table, from the resolved policy and the scan's classification."""
        masked: dict[str, list[ColumnRule]] = {}
        harvest: dict[str, dict[str, dict[str, bool]]] = {}
        name_pairs: dict[str, tuple[str, str]] = {}
        bindings: dict[str, tuple[str, ...]] = {}
        all_columns: dict[str, tuple[str, ...]] = {}
        scan = planned.scan
        for table in planned.tables:
            rules = planned.policy.masked_columns(table.key)
            masked[table.key] = rules
            masked_names = {r.column for r in rules}
            if rules:
                bindings[table.key] = table.identity or tuple(table.insertable_columns)
            all_columns[table.key] = tuple(table.insertable_columns)
            per_column: dict[str, dict[str, bool]] = {}
            firsts, lasts = [], []
            for column in table.columns.values():
                finding = scan.get(table.key, column.name) if scan else None
                kind = finding.kind if finding else None
                shares = finding.value_kinds if finding else {}
                is_masked = column.name in masked_names
                direct = finding is not None and finding.classification == "direct_identifier"
                if not (is_masked or direct) or column.category not in TEXT_CATEGORIES:
                    continue
                free = kind == "free_text" or column.category == "json"
                per_column[column.name] = {
                    "phones": kind == "phone" or (free and "free_text:phone" in shares),
                    "names": kind == "full_name" or (free and "free_text:full_name" in shares),
                    "whole_names": kind == "full_name",
                    "masked": is_masked,
                }
                if kind == "first_name" and is_masked:
                    firsts.append(column.name)
                if kind == "last_name" and is_masked:
                    lasts.append(column.name)
            harvest[table.key] = per_column
            if firsts and lasts:
                name_pairs[table.key] = (firsts[0], lasts[0])
        return cls(key, masked, harvest, name_pairs, bindings, all_columns=all_columns)

    def binding_columns(self, table: str, column: str) -> list[str]:
        """The columns that identify a row as the target holds it: the row key, else every other column."""
        chosen = [c for c in self.bindings.get(table, ()) if c != column]
        if not chosen:
            chosen = [c for c in self.all_columns.get(table, ()) if c != column]
        return chosen

    def needed_columns(self, table: str) -> list[str]:
        """Every column :meth:`observe` reads of ``table`` (masked, binding, harvested, name pairs)."""
        columns = [r.column for r in self.masked.get(table, [])]
        for rule in self.masked.get(table, []):
            columns += self.binding_columns(table, rule.column)
        columns += list(self.harvest.get(table, {}))
        columns += list(self.name_pairs.get(table, ()))
        return list(dict.fromkeys(columns))

    def value_hashes(self, table: str, values: pd.DataFrame, column: str, rows: pd.DataFrame) -> np.ndarray:
        """Keyed hashes of a masked column's non-NULL ``values``, each bound to its row as the target
        holds it (``rows``: the masked batch, or the loaded copy). A match means that this row
        still holds its own original value; another row's value that happens to be equal is no leak."""
        text = _text(values[column])
        hashes = self.key.hash_text(VALUE_DOMAIN, text.to_numpy(dtype=object))
        bound = np.zeros(len(text), dtype=np.uint64)
        for name in self.binding_columns(table, column):
            part = canonical_text(rows.loc[text.index, name])
            part = np.where(pd.isna(part), "\x00", part)
            # Keyed hashes of the binding columns, folded in order (uint64 arithmetic wraps).
            bound = bound * np.uint64(0x100000001B3) ^ self.key.hash_text(BINDING_DOMAIN, part)
        return hashes ^ self.key.hash_uint64(BINDING_DOMAIN, bound)

    def _hash_tokens(self, tokens: list[str]) -> np.ndarray:
        array = np.empty(len(tokens), dtype=object)
        array[:] = tokens
        return self.key.hash_text(TOKEN_DOMAIN, array)

    def observe(self, table: str, batch: pd.DataFrame, masked: pd.DataFrame) -> None:
        """Record the original values of one source batch (``masked``: the same rows after masking)."""
        if batch.empty:
            return
        self.rows_observed += len(batch)
        for rule in self.masked.get(table, []):
            if rule.column not in batch.columns:
                continue
            self.values.setdefault((table, rule.column), HashSet()).add(
                self.value_hashes(table, batch, rule.column, masked))
        for column, how in self.harvest.get(table, {}).items():
            if column not in batch.columns:
                continue
            text = _text(batch[column])
            distinct = pd.Series(text.unique(), dtype=object)  # a set of tokens: each value once is enough
            tokens = identifier_tokens(distinct, phones=how["phones"], whole_phone=how["phones"]).tokens
            if how["names"]:
                tokens += [t for t, _ in name_bigrams(distinct, "names" if how["whole_names"] else "text")]
            self._add(table, column, tokens, how["masked"])
        if table in self.name_pairs:
            first, last = self.name_pairs[table]
            if first in batch.columns and last in batch.columns:
                both = batch[[first, last]].dropna()
                a, rare_a = _folded_names(both[first])
                b, rare_b = _folded_names(both[last])
                distinctive = rare_a | rare_b
                a, b = a[distinctive], b[distinctive]
                pairs = [*("name:" + a + " " + b).tolist(), *("name:" + b + " " + a).tolist()]
                self._add(table, first, pairs, True)

    def _add(self, table: str, column: str, tokens: list[str], masked: bool) -> None:
        if not tokens:
            return
        self.harvested.update(t.split(":", 1)[0] for t in tokens)
        hashes = self._hash_tokens(tokens)
        if masked:
            self.tokens.add(hashes)
        else:
            self.kept_tokens.setdefault((table, column), HashSet()).add(hashes)


@dataclass
class _Tally:
    columns: int = 0
    values: int = 0
    matches: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    excused: dict[str, Counter[str]] = field(default_factory=dict)

    def merge(self, other: _Tally) -> None:
        self.columns += other.columns
        self.values += other.values
        self.matches.update(other.matches)
        for mine, theirs in ((self.by_kind, other.by_kind), (self.excused, other.excused)):
            for label, counts in theirs.items():
                mine.setdefault(label, Counter()).update(counts)


@dataclass
class _Found:
    """What the search of some rows found, per check (counts only, so it can cross processes)."""

    masked: _Tally = field(default_factory=_Tally)
    identifiers: _Tally = field(default_factory=_Tally)
    cards: _Tally = field(default_factory=_Tally)
    ambiguous: int = 0
    test_cards: int = 0

    def merge(self, other: _Found) -> None:
        self.masked.merge(other.masked)
        self.identifiers.merge(other.identifiers)
        self.cards.merge(other.cards)
        self.ambiguous += other.ambiguous
        self.test_cards += other.test_cards


class _Excuser:
    """Whether a matched target value could be the rule's own output (fixed point or fake-pool value)."""

    def __init__(self, planned: PlanResult, key: MaskingKey) -> None:
        self.engine = MaskingEngine(planned.policy, key)
        self.pools: dict[str, set[str]] = {}
        # Locales whose fake identities (person.*, email) the policy draws names from.
        self.person_locales = sorted({str(r.params.get("locale") or r.locale)
                                      for d in planned.policy.decisions.values() if (r := d.rule) is not None
                                      and ((r.strategy or "").startswith("person.") or r.strategy == "email")})

    def _drawn(self, locale: str, provider: str, size: int = 4096, args: dict[str, Any] | None = None) -> set[str]:
        cache_key = f"{locale}/{provider}/{size}/{sorted((args or {}).items())!r}"
        if cache_key not in self.pools:
            try:
                values = fake_pool(locale, provider, size, **(args or {}))
            except Exception:  # noqa: BLE001 - a pool that cannot be drawn excuses nothing
                values = ()
            self.pools[cache_key] = {str(v) for v in canonical_text(pd.Series(list(values), dtype=object))
                                     if v is not None}
        return self.pools[cache_key]

    def pool(self, rule: ColumnRule) -> set[str]:
        """Values the rule can output by drawing from a fake pool (a match on one proves nothing)."""
        name = rule.strategy or ""
        params = rule.params
        locale = str(params.get("locale") or rule.locale)
        if name.startswith("fake."):
            return self._drawn(locale, name.split(".", 1)[1], int(params.get("pool_size") or 4096),
                               params.get("args"))
        if name in ("person.first_name", "person.last_name"):
            return self._drawn(locale, name.split(".", 1)[1])
        return set()

    def person_pair(self, tokens: pd.Series) -> np.ndarray:
        """Which ``name:a b`` tokens a fake identity of the policy could spell (in either order)."""
        out = np.zeros(len(tokens), dtype=bool)
        if tokens.empty or not self.person_locales:
            return out
        firsts = {v.lower() for loc in self.person_locales for v in self._drawn(loc, "first_name")}
        lasts = {v.lower() for loc in self.person_locales for v in self._drawn(loc, "last_name")}
        for i, token in enumerate(tokens):
            if token.startswith("name:"):
                words = token[5:].split(" ")
                if len(words) == 2:
                    a, b = words
                    out[i] = (a in firsts and b in lasts) or (b in firsts and a in lasts)
        return out

    def excuse(self, rule: ColumnRule, frame: pd.DataFrame, hit_index: pd.Index) -> tuple[int, int]:
        """(fixed points, fake-pool values) among the matched rows."""
        subset = frame.loc[hit_index]
        text = _text(subset[rule.column])
        pool = self.pool(rule)
        in_pool = text.isin(pool) if pool else pd.Series(False, index=text.index)
        fixed = pd.Series(False, index=text.index)
        rest = text[~in_pool]
        if not rest.empty:
            try:
                # The strategy itself, without the rule's when: (rows it skips are not excused).
                again, _, _ = self.engine.mask_column(replace(rule, when=None), subset.loc[rest.index])
                fixed = pd.Series(canonical_text(again), index=rest.index, dtype=object) == rest
            except Exception:  # noqa: BLE001 - a rule that cannot run on its output excuses nothing
                fixed = pd.Series(False, index=rest.index)
        return int(fixed.sum()), int(in_pool.sum())


def _pool_tokens(planned: PlanResult, index: LeakIndex, excuser: _Excuser) -> HashSet:
    """Identifier tokens a fake pool of the policy can produce: a match on them proves nothing."""
    found = HashSet()
    for rules in index.masked.values():
        for rule in rules:
            pool = excuser.pool(rule)
            if pool:
                tokens = identifier_tokens(pd.Series(sorted(pool), dtype=object), whole_phone=True, names=True)
                if tokens.tokens:
                    found.add(index._hash_tokens(tokens.tokens))
    return found


def _stream(conn: Connection, table: TableInfo, columns: list[str], name: str, batch_size: int,
            where: str = "") -> Iterator[pd.DataFrame]:
    quote = partial(quote_as_needed, conn)
    sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM {name}{where}"
    categories = {c: table.columns[c].category for c in columns}
    try:
        raw = conn.connection.driver_connection if conn.dialect.name == "postgresql" else None
        if isinstance(raw, psycopg.Connection) and raw.info.encoding == "utf-8" and \
                set(categories.values()) <= {"text", "integer"}:
            # COPY text is these columns' values as they are; reading it is several times faster.
            integers = {c for c, category in categories.items() if category == "integer"}
            yield from read_frames(raw, f"COPY ({sql}) TO STDOUT", columns, integers, batch_size)
            return
        result = conn.execution_options(stream_results=True, max_row_buffer=batch_size).exec_driver_sql(sql)
        while rows := result.fetchmany(batch_size):
            yield rows_to_frame(rows, columns)
    except SQLAlchemyError as exc:
        raise StepError(f"reading {table.key} for the leak check: {db_error_message(exc)}", step="verify") from None
    except psycopg.Error as exc:
        raise StepError(f"reading {table.key} for the leak check: {db_error_message(exc)}", step="verify") from None


class _Scanner:
    """Searches the loaded rows of one table at a time against a :class:`LeakIndex`."""

    def __init__(self, planned: PlanResult, index: LeakIndex, key: MaskingKey, settings: CheckSettings) -> None:
        self.index = index
        self.excuser = _Excuser(planned, key)
        self.pool_tokens = _pool_tokens(planned, index, self.excuser)
        self.exempt = {name: settings.exempt(name)
                       for name in ("leak_masked_columns", "leak_identifiers", "card_sweep")}
        self.names_wanted = len(index.tokens) > 0 and index.harvested.get("name", 0) > 0
        self.tables = {t.key: t for t in planned.tables}
        for hashes in [*index.values.values(), *index.kept_tokens.values()]:
            len(hashes)  # sorted once here, not in every worker process

    def columns(self, table: TableInfo) -> tuple[dict[str, ColumnRule], list[str], list[str]]:
        """(masked columns' rules, text columns, every column to read) of ``table``."""
        rules = {r.column: r for r in self.index.masked.get(table.key, [])}
        text_columns = [c.name for c in table.columns.values() if c.category in TEXT_CATEGORIES]
        binding = [c for column in rules for c in self.index.binding_columns(table.key, column)]
        columns = list(dict.fromkeys([*text_columns, *rules, *binding]))
        return rules, text_columns, [c for c in columns if c in table.insertable_columns]

    def scan(self, conn: Connection, table: TableInfo, name: str, batch_size: int, where: str = "",
             progress: Progress | None = None) -> _Found:
        """Search the rows of ``table`` (``where``: a part of them) read from ``name``."""
        found = _Found()
        rules, text_columns, columns = self.columns(table)
        if columns:
            for frame in _stream(conn, table, columns, name, batch_size, where):
                self.scan_frame(table, frame, rules, text_columns, found)
                if progress is not None:
                    progress.advance(len(frame))
        return found

    def scan_frame(self, table: TableInfo, frame: pd.DataFrame, rules: dict[str, ColumnRule],
                   text_columns: list[str], found: _Found) -> None:
        index, exempt = self.index, self.exempt
        for column in frame.columns:
            if column not in rules and column not in text_columns:
                continue  # a row-key column, read only to bind masked values to their rows
            label = f"{table.key}.{column}"
            text = _text(frame[column])
            if text.empty:
                continue
            rule = rules.get(column)
            if rule is not None and label not in exempt["leak_masked_columns"]:
                found.masked.values += len(text)
                source = index.values.get((table.key, column))
                if source is not None:
                    hit = source.contains(index.value_hashes(table.key, frame, column, frame))
                    if hit.any():
                        fixed, pooled = self.excuser.excuse(rule, frame, text.index[hit])
                        leaked = int(hit.sum()) - fixed - pooled
                        if leaked:
                            found.masked.matches[label] += leaked
                        if fixed or pooled:
                            excused = found.masked.excused.setdefault(label, Counter())
                            excused.update({"fixed_points": fixed, "fake_pool": pooled})
            if column in text_columns:
                self._search(table, column, label, text, found)

    def _search(self, table: TableInfo, column: str, label: str, text: pd.Series, found: _Found) -> None:
        index, exempt = self.index, self.exempt
        # Each distinct value is searched once; its tokens count as often as it occurs.
        counts = text.value_counts(sort=False)
        tokens = identifier_tokens(pd.Series(counts.index, dtype=object), whole_phone=True, names=self.names_wanted)
        occurs = counts.to_numpy()
        weights = occurs[np.asarray(tokens.origins, dtype=np.int64)] if tokens.origins else np.zeros(0, int)
        if label not in exempt["leak_identifiers"]:
            found.identifiers.values += len(text)
            series = tokens.series()
            if not series.empty:
                hashes = index._hash_tokens(tokens.tokens)
                hit = index.tokens.contains(hashes)
                for (t, c), kept in index.kept_tokens.items():
                    if (t, c) != (table.key, column):
                        hit |= kept.contains(hashes)
                excused = hit & self.pool_tokens.contains(hashes)
                rest = hit & ~excused
                if rest.any():
                    excused[rest] = self.excuser.person_pair(series[rest])
                found.ambiguous += int(weights[excused].sum())
                hit &= ~excused
                if hit.any():
                    kinds = pd.Series(weights[hit], index=series[hit].str.split(":", n=1).str[0].to_numpy())
                    found.identifiers.matches[label] += int(weights[hit].sum())
                    found.identifiers.by_kind.setdefault(label, Counter()).update(
                        {str(k): int(v) for k, v in kinds.groupby(level=0).sum().items()})
        if label not in exempt["card_sweep"]:
            found.cards.values += len(text)
            found.test_cards += int(occurs[np.asarray(tokens.test_card_origins, dtype=np.int64)].sum())
            live = sum(int(w) for t, w in zip(tokens.tokens, weights, strict=True) if t.startswith("card:"))
            if live:
                found.cards.matches[label] += live


def scan_loaded_copy(conn: Connection, planned: PlanResult, index: LeakIndex, key: MaskingKey,
                     settings: CheckSettings, name_of: Callable[[TableInfo], str],
                     batch_size: int = 10_000, reader_url: str | None = None, rows: dict[str, int] | None = None,
                     progress: Progress | None = None) -> list[CheckResult]:
    """Stream every text/JSON column (and every masked column) of the shadow; three checks.

    With ``reader_url`` (a PostgreSQL shadow another process can read), large tables are
    searched in parts by worker processes (:mod:`datastage.verify.leaks.pool`).
    """
    scanner = _Scanner(planned, index, key, settings)
    found = _Found()
    work = []
    for table in planned.tables:
        rules, text_columns, columns = scanner.columns(table)
        if columns:
            found.masked.columns += len(rules)
            found.identifiers.columns += len(text_columns)
            found.cards.columns += len(text_columns)
            work.append((table, name_of(table)))
    for part in search_tables(conn, scanner, work, batch_size, reader_url, rows or {}, progress or NoProgress()):
        found.merge(part)
    return [
        _masked_result(found.masked, index, settings),
        _identifier_result(found.identifiers, index, settings, found.ambiguous),
        _card_result(found.cards, settings, found.test_cards),
    ]


def _status(settings: CheckSettings, name: str, count: int) -> Status:
    if count <= int(settings.threshold(name, "max_matches", 0)):
        return "PASS"
    return "WARN" if settings.severity(name) == "warn" else "FAIL"


def _masked_result(tally: _Tally, index: LeakIndex, settings: CheckSettings) -> CheckResult:
    total = sum(tally.matches.values())
    figures = {
        "masked_columns": tally.columns, "values_checked": tally.values,
        "source_rows_observed": index.rows_observed,
        "source_values_hashed": sum(len(s) for s in index.values.values()),
        "matches": dict(sorted(tally.matches.items())),
        "excused": {k: dict(v) for k, v in sorted(tally.excused.items())},
        "exempt": sorted(settings.exempt("leak_masked_columns")),
    }
    status = _status(settings, "leak_masked_columns", total)
    if total:
        where = ", ".join(f"{k} ({v})" for k, v in sorted(tally.matches.items()))
        summary = f"{total} row(s) of masked columns still hold their original value: {where}"
    else:
        summary = (f"no row of {tally.columns} masked column(s) still holds its original value "
                   f"({tally.values:,} values checked)")
    return CheckResult("leak_masked_columns", status, summary, figures)


def _identifier_result(tally: _Tally, index: LeakIndex, settings: CheckSettings, ambiguous: int) -> CheckResult:
    total = sum(tally.matches.values())
    figures = {
        "text_columns": tally.columns, "values_checked": tally.values,
        "source_tokens_hashed": dict(sorted(index.harvested.items())),
        "matches": {k: dict(v) for k, v in sorted(tally.by_kind.items())},
        "ambiguous_fake_pool_matches": ambiguous,
        "exempt": sorted(settings.exempt("leak_identifiers")),
    }
    status = _status(settings, "leak_identifiers", total)
    if total:
        where = ", ".join(f"{k} ({', '.join(f'{n} {kind}' for kind, n in sorted(tally.by_kind[k].items()))})"
                          for k in sorted(tally.by_kind))
        summary = f"{total} source identifier(s) found in the target: {where}"
    else:
        harvested = sum(index.harvested.values())
        summary = (f"none of {harvested:,} source identifiers appears in {tally.columns} text column(s) "
                   f"({tally.values:,} values checked)")
    return CheckResult("leak_identifiers", status, summary, figures)


def _card_result(tally: _Tally, settings: CheckSettings, test_cards: int) -> CheckResult:
    total = sum(tally.matches.values())
    figures = {"text_columns": tally.columns, "values_checked": tally.values,
               "matches": dict(sorted(tally.matches.items())), "test_range_numbers": test_cards,
               "exempt": sorted(settings.exempt("card_sweep"))}
    status = _status(settings, "card_sweep", total)
    if total:
        where = ", ".join(f"{k} ({v})" for k, v in sorted(tally.matches.items()))
        summary = f"{total} card number(s) outside the test ranges: {where}"
    else:
        summary = (f"no card number outside the test ranges in {tally.columns} text column(s) "
                   f"({tally.values:,} values checked)")
    return CheckResult("card_sweep", status, summary, figures)
