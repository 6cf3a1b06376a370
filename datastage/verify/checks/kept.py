"""The kept-column check: kept text columns of the loaded copy that hold identifiers equal to the source's.

Discovery classifies columns from a sample; whatever it misses, the rules may keep as it is.
This check does not rely on it. After the load it runs the whole-value identifier detectors
(:func:`datastage.identify.values.detect`) over *every* row of every kept text column of the
copy (``keep`` with or without a reason, ``default: keep``, and masking rules that do not
promise to change a value, such as ``regex`` or ``json``), and compares each value they flag
with the source row's value: by the primary key (read inside the run's read-only snapshot of
the source), or, for a table without a usable key, by whether the source column holds it.

A column fails the refresh (``FAIL``, or ``WARN`` at ``checks: {kept_identifiers: warn}``)
when the flagged values equal to the source reach the limits of their kind (:data:`LIMITS`):

* validated kinds (e-mail, card number, IBAN, national and tax id): 3 distinct values;
* person names: half of the column's non-blank rows and 10 distinct values;
* every other direct identifier (phone, IP address, passport, licence, device id ...):
  a tenth of the non-blank rows and 5 distinct values;
* identifiers *inside* free text (notes, comments, transcripts: values that are no whole
  identifier but hold an e-mail address, phone number, card number, IBAN or national id, found by
  :func:`datastage.identify.spans.find_spans`), counted as ``email_in_text``, ``phone_in_text``
  ...: 3 distinct values.

Each column is flagged per distinct value (:class:`ColumnFlags` remembers the values of earlier
batches), and PostgreSQL text and integer columns are read as Arrow tables (:class:`ArrowRows`):
only distinct values and the rows with a flagged value become Python objects.

A column the rules keep with a reason (or classify) is not a failure: the report lists it as
accepted, with the reason. The figures and findings hold kinds, counts and the target's
primary keys, never a value.

Example:
    >>> limit_of("email"), limit_of("name"), limit_of("phone"), limit_of("postcode")
    ... # doctest: +NORMALIZE_WHITESPACE
    (Limit(min_share=0.0, min_distinct=3), Limit(min_share=0.5, min_distinct=10),
     Limit(min_share=0.1, min_distinct=5), None)
    >>> flags(pd.Series(["ann@example.com", "open", "ann@example.com"], dtype=object))
    {'email': array([ True, False,  True])}
    >>> flags(pd.Series(["Call (415) 555-0142 after 5pm", "open", "ann@example.com"], dtype=object))
    {'email': array([False, False,  True]), 'phone_in_text': array([ True, False, False])}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy.engine import Connection

from datastage.errors import StepError
from datastage.identify.batch import Batch
from datastage.identify.kinds import KINDS
from datastage.identify.spans import find_spans
from datastage.identify.values import BASE_KINDS, HINT_KINDS, detect, detect_distinct
from datastage.mask.arrays import text_lengths
from datastage.mask.resolve import ColumnDecision
from datastage.plan import PlanResult
from datastage.results import CheckResult
from datastage.source import mysqlarrow
from datastage.source.db import db_error_message
from datastage.source.identifiers import quote_as_needed
from datastage.source.pgcopy import read_tables
from datastage.source.schema import TableInfo
from datastage.source.values import as_int64, canonical_text
from datastage.subset.extract import fetch_matching, stream_rows
from datastage.verify.context import CheckContext
from datastage.verify.leaks.scanner import (
    MAX_ROW_KEYS,
    Finding,
    FindingKey,
    RowKey,
    row_keys,
    smallest_keys,
    stream_loaded,
)
from datastage.verify.leaks.tokens import nonblank_text

NAME = "kept_identifiers"
CHECKED_CATEGORIES = frozenset({"text", "other"})  # whole values; JSON is searched by the leak check
KEY_CATEGORIES = frozenset({"integer", "text", "uuid"})  # keys that read back the same from every dialect
NAME_KINDS = frozenset({"first_name", "last_name", "full_name"})  # counted together, as ``name``
VALIDATED = frozenset({"email", "card_number", "iban", "national_id", "tax_id"})
SPAN_KINDS = ("email", "card_number", "iban", "national_id", "phone")  # validated spans (and phones) inside text
IN_TEXT = "_in_text"  # suffix of the kinds found inside a value: ``email_in_text``
ROW_DETACHING = frozenset({"shuffle"})  # strategies that keep the source's values, moved to other rows


@dataclass(frozen=True)
class Limit:
    """When flagged values equal to the source make a column a finding: their share of the column's
    non-blank rows, and how many distinct values they are."""

    min_share: float
    min_distinct: int


LIMITS: dict[str, Limit] = {
    "validated": Limit(0.0, 3),  # a checksum or an unambiguous format: a handful of real values is a finding
    "names": Limit(0.5, 10),  # dictionary words: a city or a colour may be a name, a column of them is not
    "other": Limit(0.1, 5),  # formats other codes can share
    "in_text": Limit(0.0, 3),  # validated identifiers (and phones) inside free text, as the text was kept
}
DISTINCT_CAP = max(limit.min_distinct for limit in LIMITS.values())  # distinct values are counted up to this


def limit_of(kind: str) -> Limit | None:
    """The limit for ``kind`` (``name``: the person-name kinds together); None for kinds that are no
    direct identifier (postcodes, cities, secrets), which this check does not count."""
    if kind.endswith(IN_TEXT):
        return LIMITS["in_text"]
    if kind in VALIDATED:
        return LIMITS["validated"]
    if kind == "name":
        return LIMITS["names"]
    info = KINDS.get(kind)
    if info is not None and info.classification != "direct_identifier":
        return None
    return LIMITS["other"]


def flags(text: pd.Series, hints: frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
    """Per kind (the name kinds as ``name``), which of the non-blank ``text`` values are a whole identifier,
    and (kinds ``<kind>_in_text``) which of the others hold one of :data:`SPAN_KINDS` inside.

    Each distinct value is detected once; the spans are searched over the batch's distinct values at once.
    """
    codes, uniques = pd.factorize(text.str.strip())
    out: dict[str, np.ndarray] = {}
    whole = np.zeros(len(uniques), dtype=bool)
    for kind, mask in detect(pd.Series(uniques, dtype=object), hints).items():
        group = "name" if kind in NAME_KINDS else kind
        mask = np.asarray(mask, dtype=bool)
        if limit_of(group) is None or not mask.any():
            continue
        whole |= mask
        out[group] = out[group] | mask if group in out else mask
    out.update(span_flags(np.asarray(uniques, dtype=object), ~whole))
    return {kind: mask[codes] for kind, mask in out.items()}


MEMO_LIMIT = 50_000  # distinct values a column's flags remember across batches
STABLE_DIGITS = 7  # a value with fewer ASCII digits holds no phone number: its flags are the same in any batch
WHOLE = "\x00whole"  # the memo's record of values flagged as a whole identifier (spans are not searched there)


class ColumnFlags:
    """:func:`flags` over the batches of one column, each distinct value detected once per column.

    A value with fewer than :data:`STABLE_DIGITS` ASCII digits is flagged the same whatever else its
    batch holds, so its flags are remembered (up to :data:`MEMO_LIMIT` values) and the next batches
    look them up. A value with more digits may be a phone number, which the detectors judge by the
    batch (the first candidates validated stand for the rest, the words before a number in text), so
    whenever a batch holds one, that batch is detected and searched as :func:`flags` would.

    >>> column = ColumnFlags()
    >>> [column(pd.Series(["ann@example.com", "open"], dtype=object)) for _ in range(2)][1]
    {'email': array([ True, False])}
    """

    def __init__(self, hints: frozenset[str] = frozenset()) -> None:
        self.hints = hints
        self.index = pd.Index([], dtype=object)
        self.memo: dict[str, np.ndarray] = {WHOLE: np.zeros(0, dtype=bool)}

    def __call__(self, text: pd.Series) -> dict[str, np.ndarray]:
        """:func:`flags` of ``text`` (non-blank values)."""
        codes, raw = pd.factorize(text.to_numpy(dtype=object))
        return self.flag_codes(codes, np.asarray(raw, dtype=object))

    def flag_codes(self, raw_codes: np.ndarray, raw: np.ndarray) -> dict[str, np.ndarray]:
        """:func:`flags` of the rows whose values are ``raw[raw_codes]`` (distinct non-blank values; a
        negative code is a row without one, never flagged), per kind over the rows."""
        batch: Batch | None = Batch(raw)
        assert batch is not None
        padded = _padded(batch)
        if padded.any():  # only values with a blank at either end are stripped (and may then coincide)
            stripped = raw.copy()
            stripped[padded] = pd.Series(raw[padded], dtype=object).str.strip().to_numpy(dtype=object)
            codes, uniques = pd.factorize(stripped)
            codes = np.append(codes, -1)[raw_codes]
            values = np.asarray(uniques, dtype=object)
            batch = None
        else:
            codes, values = raw_codes, raw
        n = len(values)
        position = (self.index.get_indexer(pd.Index(values, dtype=object)) if len(self.index)
                    else np.full(n, -1, dtype=np.int64))
        known = position >= 0
        masks = {kind: _gather(memo, position, known) for kind, memo in self.memo.items()}
        fresh = ~known
        if fresh.any():
            part = batch.take(fresh) if batch is not None else Batch(values[fresh])
            stable = np.ones(n, dtype=bool)
            stable[fresh] = part.digits < STABLE_DIGITS
            found = whole_flags(part, self.hints)
            whole_fresh = np.zeros(int(fresh.sum()), dtype=bool)
            for kind, mask in found.items():
                whole_fresh |= mask
                masks.setdefault(kind, np.zeros(n, dtype=bool))[fresh] = mask
            masks[WHOLE][fresh] = whole_fresh
            # With a possible phone number in the batch, the spans are searched over all of it, as flags() does.
            search = ~masks[WHOLE] if not stable.all() else fresh & ~masks[WHOLE]
            for kind, mask in span_flags(values, search).items():
                masks.setdefault(kind, np.zeros(n, dtype=bool))[mask] = True
            self._remember(values, fresh & stable, masks)
        present = codes >= 0
        out = {}
        for kind, mask in _ordered(masks).items():
            if kind != WHOLE and mask.any():
                rows = mask[codes]
                rows &= present
                if rows.any():
                    out[kind] = rows
        return out

    def _remember(self, values: np.ndarray, new: np.ndarray, masks: dict[str, np.ndarray]) -> None:
        if not new.any() or len(self.index) + int(new.sum()) > MEMO_LIMIT:
            return
        size = len(self.index)
        self.index = self.index.append(pd.Index(values[new], dtype=object))
        for kind in masks:
            if kind not in self.memo:
                self.memo[kind] = np.zeros(size, dtype=bool)
        for kind, memo in self.memo.items():
            self.memo[kind] = np.concatenate([memo, masks[kind][new] if kind in masks else
                                              np.zeros(int(new.sum()), dtype=bool)])


def _gather(memo: np.ndarray, position: np.ndarray, known: np.ndarray) -> np.ndarray:
    out = np.zeros(len(position), dtype=bool)
    out[known] = memo[position[known]]
    return out


_GROUPS = list(dict.fromkeys(["name" if kind in NAME_KINDS else kind for kind in (*BASE_KINDS, *HINT_KINDS)]))


def _ordered(masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``masks`` in the order :func:`flags` reports kinds: the whole-value kinds, then the ones in text."""
    order = [*_GROUPS, *sorted(k for k in masks if k not in _GROUPS and not k.endswith(IN_TEXT)),
             *(kind + IN_TEXT for kind in SPAN_KINDS)]
    return {kind: masks[kind] for kind in order if kind in masks}


_ASCII_BLANK = np.array([chr(c).isspace() for c in range(128)] + [True], dtype=bool)  # beyond ASCII: maybe


def _padded(batch: Batch) -> np.ndarray:
    """Per value: whether it may start or end with what ``str.strip`` removes."""
    codes = batch._codes
    filled = batch.lengths > 0
    out = np.zeros(len(batch), dtype=bool)
    if filled.any():
        first = codes[batch.starts[filled]]
        last = codes[batch.ends[filled] - 1]
        out[filled] = _ASCII_BLANK.take(np.minimum(first, 128)) | _ASCII_BLANK.take(np.minimum(last, 128))
    return out


def whole_flags(values: np.ndarray | Batch, hints: frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
    """Per kind (the name kinds as ``name``, only kinds :func:`limit_of` counts), which of the distinct,
    stripped ``values`` :func:`detect` flags as a whole identifier."""
    out: dict[str, np.ndarray] = {}
    batch = values if isinstance(values, Batch) else Batch(values)
    for kind, mask in detect_distinct(batch, hints).items():
        group = "name" if kind in NAME_KINDS else kind
        mask = np.asarray(mask, dtype=bool)
        if limit_of(group) is None or not mask.any():
            continue
        out[group] = out[group] | mask if group in out else mask
    return out


def span_flags(values: np.ndarray, search: np.ndarray) -> dict[str, np.ndarray]:
    """Per kind ``<kind>_in_text``, which of ``values`` (where ``search``) hold an identifier of
    :data:`SPAN_KINDS` inside (one :func:`find_spans` call over them all).

    >>> span_flags(np.array(["mail ann@example.org today", "ann@example.org", "no id"], dtype=object),
    ...            np.array([True, False, True]))
    {'email_in_text': array([ True, False, False])}
    """
    rows = np.flatnonzero(search)
    if not len(rows):
        return {}
    found = find_spans(values[rows].tolist(), kinds=SPAN_KINDS)
    out: dict[str, np.ndarray] = {}
    if not len(found):
        return out
    kinds = found.kind.astype(str)
    for kind in SPAN_KINDS:
        holding = found.value[kinds == kind]
        if len(holding):
            mask = np.zeros(len(values), dtype=bool)
            mask[rows[holding]] = True
            out[kind + IN_TEXT] = mask
    return out


@dataclass(frozen=True)
class KeptColumn:
    """A text column of the loaded copy whose values the rules leave as the source has them."""

    table: str
    column: str
    status: str
    accepted: str | None  # why the rules keep it (a reason, a classification), or None
    hints: frozenset[str] = frozenset()
    strategy: str | None = None  # the rule's strategy for a protected column

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


def accepted_reason(decision: ColumnDecision) -> str | None:
    """Why the rules keep a column, when a person said so: a ``classify:`` override other than
    direct identifier, a ``keep`` with a reason, rows kept from the target; else None.

    >>> from datastage.mask.policy import ColumnRule
    >>> keep = ColumnRule("t", "c", None, reason="public screen names")
    >>> accepted_reason(ColumnDecision("t", "c", "kept-with-reason", keep, keep.reason))
    'kept with reason: public screen names'
    >>> accepted_reason(ColumnDecision("t", "c", "kept-by-default", None, "default: keep")) is None
    True
    """
    if decision.classification and decision.classification != "direct_identifier":
        why = decision.classified_reason or decision.reason
        return f"classified {decision.classification}" + (f": {why}" if why else "")
    rule = decision.rule
    if decision.status == "kept-with-reason" and rule is not None and rule.is_keep and rule.reason:
        return f"kept with reason: {rule.reason}"
    if decision.status == "excluded" and decision.reason:
        return f"rows {decision.reason}"
    return None


def kept_columns(plan: PlanResult, table: TableInfo) -> list[KeptColumn]:
    """The kept text columns of ``table``: every decision but a masking rule that changes values."""
    out = []
    for name in table.insertable_columns:
        decision = plan.policy.decisions.get((table.key, name))
        if decision is None or table.columns[name].category not in CHECKED_CATEGORIES:
            continue
        rule = decision.rule
        if decision.status == "protected":
            spec = rule.spec if rule is not None else None
            if spec is None or spec.changes or spec.name == "null":
                continue
        elif decision.status == "truncated" or (decision.status == "excluded" and not decision.reason):
            continue
        finding = plan.scan.get(table.key, name) if plan.scan else None
        hints = frozenset({finding.kind}) if finding is not None and finding.kind else frozenset()
        strategy = rule.strategy if rule is not None and decision.status == "protected" else None
        out.append(KeptColumn(table.key, name, decision.status, accepted_reason(decision), hints, strategy))
    return out


def comparison_key(plan: PlanResult, table: TableInfo) -> tuple[str, ...] | None:
    """The columns that find a loaded row's source row: a declared primary key (else a NOT NULL unique
    key) of plain integer, text or UUID columns that no rule masks; None to compare by value."""
    keys = [table.primary_key] if table.primary_key and not table.virtual_primary_key else []
    keys += [k for k in table.unique_keys if all(not table.columns[c].nullable for c in k)]
    for key in keys:
        usable = all(c in table.columns and table.columns[c].category in KEY_CATEGORIES
                     and not table.columns[c].generated for c in key)
        masked = any((d := plan.policy.decisions.get((table.key, c))) is not None and d.status == "protected"
                     for c in key)
        if usable and not masked:
            return tuple(key)
    return None


@dataclass
class Tally:
    """What one column showed, per kind: rows flagged, those equal to the source, distinct equal values."""

    rows: int = 0
    flagged: Counter[str] = field(default_factory=Counter)
    equal: Counter[str] = field(default_factory=Counter)
    distinct: dict[str, set[int]] = field(default_factory=dict)  # up to DISTINCT_CAP value hashes
    keys: dict[str, list[RowKey]] = field(default_factory=dict)

    def add_equal(self, kind: str, digests: np.ndarray, keys: list[RowKey] | None = None) -> None:
        """Count flagged values equal to the source, by their hashes (which stay in memory only)."""
        self.equal[kind] += len(digests)
        seen = self.distinct.setdefault(kind, set())
        if len(seen) < DISTINCT_CAP:
            seen.update(np.unique(digests)[:DISTINCT_CAP].tolist())
        if keys:
            self.keys[kind] = smallest_keys(self.keys.get(kind, []) + keys)

    def failing(self) -> list[str]:
        """The kinds whose equal values reach their limit, in the order of :data:`LIMITS`."""
        out = []
        for kind, equal in self.equal.items():
            limit = limit_of(kind)
            if limit is None or not equal or not self.rows:
                continue
            if equal / self.rows >= limit.min_share and len(self.distinct.get(kind, ())) >= limit.min_distinct:
                out.append(kind)
        return sorted(out, key=lambda k: (-self.equal[k], k))

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "kinds": {
            kind: {"flagged": self.flagged[kind], "equal_to_source": self.equal[kind],
                   "distinct_equal": min(len(self.distinct.get(kind, ())), DISTINCT_CAP),
                   "share": round(self.equal[kind] / self.rows, 4) if self.rows else 0.0}
            for kind in sorted(self.flagged)}}


def _key_text(frame: pd.DataFrame, key: tuple[str, ...]) -> np.ndarray:
    """One string per row for the key's values (as every dialect reads them back)."""
    joined = pd.Series(canonical_text(frame[key[0]]), index=frame.index, dtype=object).fillna("\x00")
    for column in key[1:]:
        joined = joined + "\x1f" + pd.Series(canonical_text(frame[column]), index=frame.index,
                                             dtype=object).fillna("\x00")
    return joined.to_numpy(dtype=object)


def _smallest_row_keys(frame: pd.DataFrame, rows: pd.Index, key: tuple[str, ...]) -> list[RowKey]:
    """:func:`row_keys` of ``rows``, choosing the smallest integer keys first without sorting them all.

    >>> frame = pd.DataFrame({"id": list(range(100, 0, -1))}, dtype=object)
    >>> _smallest_row_keys(frame, frame.index, ("id",))[:3]
    [(1,), (2,), (3,)]
    """
    if len(key) == 1 and len(rows) > MAX_ROW_KEYS:
        values = frame.loc[rows, key[0]].to_numpy(dtype=object)
        if pd.api.types.infer_dtype(values, skipna=False) == "integer":
            numbers = values.astype(np.int64)
            rows = rows[np.argpartition(numbers, MAX_ROW_KEYS)[:MAX_ROW_KEYS]]
    return row_keys(frame, rows, key)


class Rows:
    """One batch of loaded rows: each column's distinct non-blank values, and a frame of chosen rows."""

    def __len__(self) -> int:
        raise NotImplementedError

    def factorized(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(per row, the position of its value among the distinct ones, -1 for NULL or blank; the distinct
        non-blank values, as ``str``)."""
        raise NotImplementedError

    def frame(self, positions: np.ndarray) -> pd.DataFrame:
        """The rows at ``positions`` (the frame's index), values as the driver gives them."""
        raise NotImplementedError


class FrameRows(Rows):
    """A batch read as a pandas frame of Python values."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.data = frame.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.data)

    def factorized(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        text = nonblank_text(self.data[column])
        codes = np.full(len(self.data), -1, dtype=np.int64)
        found, values = pd.factorize(text.to_numpy(dtype=object))
        codes[text.index.to_numpy()] = found
        return codes, np.asarray(values, dtype=object)

    def frame(self, positions: np.ndarray) -> pd.DataFrame:
        return self.data.iloc[positions]


class ArrowRows(Rows):
    """A batch read as an Arrow table (text and integer columns): values become Python objects only for
    the distinct values of a column and the rows :meth:`frame` picks.

    >>> import pyarrow as pa
    >>> rows = ArrowRows(pa.table({"id": [1, 2, 3, 4], "c": ["a", None, " ", "a"]}))
    >>> rows.factorized("c")
    (array([ 0, -1, -1,  0]), array(['a'], dtype=object))
    >>> rows.frame(np.array([0, 3])).to_dict("list")
    {'id': [1, 4], 'c': ['a', 'a']}
    """

    def __init__(self, table: Any) -> None:
        self.table = table

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def factorized(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(self.table.column(column).combine_chunks())
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        values = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
        if not len(values):
            return codes, values
        blank = (values == "") | np.fromiter(map(str.isspace, values), dtype=bool, count=len(values))
        if blank.any():
            renumber = np.where(blank, -1, np.cumsum(~blank) - 1)
            codes = np.where(codes >= 0, renumber[np.maximum(codes, 0)], -1)
            values = values[~blank]
        return codes, values

    def frame(self, positions: np.ndarray) -> pd.DataFrame:
        import pyarrow as pa

        chosen = self.table.take(pa.array(positions, type=pa.int64()))
        data = {}
        for name in chosen.column_names:
            array = np.empty(len(positions), dtype=object)
            array[:] = chosen.column(name).to_pylist()
            data[name] = pd.Series(array, index=positions, dtype=object, copy=False)
        return pd.DataFrame(data, index=positions, copy=False)


def read_loaded(conn: Connection, table: TableInfo, columns: list[str], name: str,
                batch_size: int) -> Iterator[Rows]:
    """The loaded rows of ``columns`` of ``table`` (called ``name`` in the shadow), in batches: PostgreSQL
    text and integer columns as Arrow tables read with ``COPY``, MariaDB/MySQL ones read by connectorx
    (:mod:`datastage.source.mysqlarrow`), anything else as frames
    (:func:`~datastage.verify.leaks.scanner.stream_loaded`)."""
    purpose = "the kept-column check"
    categories = {c: table.columns[c].category for c in columns}
    plain = set(categories.values()) <= {"text", "integer"}  # columns whose text is the value
    quote = partial(quote_as_needed, conn)
    select = f"SELECT {', '.join(quote(c) for c in columns)} FROM {name}"
    raw = conn.connection.driver_connection if conn.dialect.name == "postgresql" else None
    if isinstance(raw, psycopg.Connection) and raw.info.encoding == "utf-8" and plain:
        integers = {c for c, category in categories.items() if category == "integer"}
        try:
            # From the table's first block, never mid-table beside another scan of it: phone numbers are
            # judged by their batch, so the batches must be the same whoever else reads the table.
            raw.execute("SET synchronize_seqscans = off")
            for batch in read_tables(raw, select, columns, integers, batch_size):
                yield ArrowRows(batch)
        except psycopg.Error as exc:
            raise StepError(f"reading {table.key} for {purpose}: {db_error_message(exc)}", step="verify") from None
        return
    url = mysqlarrow.arrow_url(conn) if plain else None
    if url is not None:
        tables = mysqlarrow.read_tables(url, select, batch_size)
        if tables is not None:
            try:
                for batch in tables:
                    yield ArrowRows(batch)
            except mysqlarrow.ArrowReadError as exc:
                raise StepError(f"reading {table.key} for {purpose}: {exc}", step="verify") from None
            return
    for frame in stream_loaded(conn, table, columns, name, batch_size, purpose=purpose):
        yield FrameRows(frame)


# (the batch's rows with a flagged value: their comparison key's columns, indexed by position in the
# batch; per kept column with flagged values, the digests of its non-blank values among those rows, on
# the same index, and per kind which of them are flagged). Digests, not the text: a worker that flags a
# table while the copy goes on holds a few bytes per flagged row.
FlaggedBatch = tuple[pd.DataFrame, dict[str, tuple[pd.Series, dict[str, np.ndarray]]]]


def checked_columns(plan: PlanResult, table: TableInfo) -> tuple[list[KeptColumn], tuple[str, ...] | None]:
    """The kept columns the check reads of ``table`` and the key that finds their source rows (None:
    compared by value, when the shuffled columns, whose values are only moved, are left out)."""
    columns = kept_columns(plan, table)
    key = comparison_key(plan, table)
    if key is None:  # shuffled values are the source's, only not in their rows: that needs a key
        columns = [c for c in columns if c.strategy not in ROW_DETACHING]
    return columns, key


@dataclass
class Flagged:
    """What the flagging pass over one loaded table found: per kept column its rows and flagged counts
    (:class:`Tally` without the comparison), and each batch holding flagged rows (:data:`FlaggedBatch`)."""

    tallies: dict[str, Tally]
    batches: list[FlaggedBatch]


class Flagger:
    """Flags the kept columns of one loaded table, batch by batch; reads only the loaded copy, so a worker
    process can run it (:func:`flag_table`) while the refresh's own process compares with the source."""

    def __init__(self, table: TableInfo, columns: list[KeptColumn], key: tuple[str, ...] | None) -> None:
        self.table, self.columns, self.key = table, columns, key
        self.tallies = {c.column: Tally() for c in columns}
        self.flaggers = {c.column: ColumnFlags(c.hints) for c in columns}

    @property
    def read(self) -> list[str]:
        """The columns each batch needs: the comparison key's (if any), then the kept ones."""
        return list(dict.fromkeys([*(self.key or ()), *(c.column for c in self.columns)]))

    def flagged(self, batches: Iterator[Rows]) -> Iterator[FlaggedBatch]:
        """The batches of ``batches`` that hold a flagged value (:meth:`flag_frame` of each)."""
        for rows in batches:
            frame, flagged = self.flag_frame(rows)
            if flagged:
                yield frame, flagged

    def _flag_rows(self, rows: Rows) -> dict[str, dict[str, np.ndarray]]:
        """Per kept column with flagged values: per kind, which rows of the batch are flagged."""
        out = {}
        for column in self.columns:
            codes, values = rows.factorized(column.column)
            tally = self.tallies[column.column]
            tally.rows += int(np.count_nonzero(codes >= 0))
            if not len(values):
                continue
            masks = self.flaggers[column.column].flag_codes(codes, values)
            for kind, mask in masks.items():
                tally.flagged[kind] += int(mask.sum())
            if masks:
                out[column.column] = masks
        return out

    def flag_frame(self, rows: Rows) -> FlaggedBatch:
        """The batch's rows with a flagged value (their key columns, indexed by row position) and, per kept
        column, the digests of its non-blank values among them and, per kind, which of those are flagged."""
        flagged = self._flag_rows(rows)
        needed = np.zeros(len(rows), dtype=bool)
        for masks in flagged.values():
            for mask in masks.values():
                needed |= mask
        if not flagged:
            return pd.DataFrame(), {}
        frame = rows.frame(np.flatnonzero(needed))
        out = {}
        for name, masks in flagged.items():
            text = nonblank_text(frame[name])
            out[name] = (pd.Series(value_digests(text.to_numpy(dtype=object)), index=text.index, dtype=np.uint64),
                         {kind: mask[text.index.to_numpy()] for kind, mask in masks.items()})
        return _compact_keys(frame[list(self.key or ())]), out


def _compact_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Key columns of 64-bit integers as int64 (8 bytes a value, not a Python int's 36); others as they are."""
    out = frame.copy()
    for column in frame.columns:
        numbers = as_int64(frame[column].to_numpy(dtype=object))
        if numbers is not None:
            out[column] = numbers
    return out


def _object_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The key columns as the driver's Python values again (int64 columns as Python ints)."""
    return frame.astype(object) if any(dtype.kind != "O" for dtype in frame.dtypes) else frame


def value_digests(text: np.ndarray) -> np.ndarray:
    """pandas' (unkeyed) 64-bit hash of each string: how the check compares and counts flagged values,
    in memory only.

    >>> digests = value_digests(np.array(["a", "b", "a"], dtype=object))
    >>> bool(digests[0] == digests[2]), bool(digests[0] == digests[1])
    (True, False)
    """
    return pd.util.hash_array(text) if len(text) else np.zeros(0, dtype=np.uint64)


def held_bytes(frame: pd.DataFrame, flagged: dict[str, tuple[pd.Series, dict[str, np.ndarray]]]) -> int:
    """About what a :data:`FlaggedBatch` holds: 8 bytes per key number, a text key's characters (16 bytes
    per other key value), 9 bytes per flagged value (its digest and a mask byte).

    >>> held_bytes(pd.DataFrame({"id": [1, 2]}, dtype=object), {"city": (pd.Series([5], dtype=np.uint64), {})})
    25
    """
    size = sum(9 * len(digests) for digests, _ in flagged.values())
    for column in frame.columns:
        values = frame[column].to_numpy(dtype=object)
        kind = pd.api.types.infer_dtype(values, skipna=False) if len(values) else "empty"
        size += int(text_lengths(values).sum()) if kind == "string" else (8 if kind == "integer" else 16) * len(values)
    return size


def flag_table(conn: Connection, table: TableInfo, columns: list[KeptColumn], key: tuple[str, ...] | None,
               name: str, batch_size: int, max_rows: int, max_bytes: int) -> Flagged | None:
    """The whole flagging pass over ``table`` (``name`` in the shadow), or None once more than ``max_rows``
    rows, or ``max_bytes`` of their values' text, are flagged (they are then flagged again where they are
    compared, without being held)."""
    flagger = Flagger(table, columns, key)
    batches: list[FlaggedBatch] = []
    rows = size = 0
    for frame, flagged in flagger.flagged(read_loaded(conn, table, flagger.read, name, batch_size)):
        rows += len(frame)
        size += held_bytes(frame, flagged)
        if rows > max_rows or size > max_bytes:
            return None
        batches.append((frame, flagged))
    return Flagged(flagger.tallies, batches)


class TableCheck:
    """The kept columns of one loaded table, flagged (here, or beforehand by :func:`flag_table`) and
    compared with the source."""

    def __init__(self, ctx: CheckContext, table: TableInfo, columns: list[KeptColumn],
                 key: tuple[str, ...] | None, flagged: Flagged | None = None) -> None:
        assert ctx.source is not None
        self.ctx, self.table = ctx, table
        self.source: Connection = ctx.source
        self.key = key
        self.columns = columns
        self.flagger = Flagger(table, columns, key)
        self.early = flagged
        self.tallies = flagged.tallies if flagged is not None else self.flagger.tallies

    def run(self) -> dict[str, Tally]:
        if self.key is not None:
            self._by_key(self.key)
        else:
            self._by_value()
        return self.tallies

    def _flagged(self) -> Iterator[FlaggedBatch]:
        if self.early is not None:
            yield from self.early.batches
            return
        ctx = self.ctx
        ctx.progress.table(f"checking kept columns of {self.table.key}", ctx.written.get(self.table.key, 0))

        def batches() -> Iterator[Rows]:
            for rows in read_loaded(ctx.conn, self.table, self.flagger.read, ctx.name_of(self.table),
                                    ctx.batch_size):
                yield rows
                ctx.progress.advance(len(rows))

        yield from self.flagger.flagged(batches())

    def _by_key(self, key: tuple[str, ...]) -> None:
        for compact, flagged in self._flagged():
            frame = _object_keys(compact)
            wanted = frame[list(key)].drop_duplicates()
            columns = list(dict.fromkeys([*key, *flagged]))
            parts = list(fetch_matching(self.source, self.table, columns, list(key), wanted, self.ctx.batch_size))
            source = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
            source_keys = pd.Index(_key_text(source, key)) if len(source) else pd.Index([], dtype=object)
            keep = ~source_keys.duplicated()
            source, source_keys = source.loc[keep].reset_index(drop=True), source_keys[keep]
            for name, (digests, masks) in flagged.items():
                chosen = frame.loc[digests.index]
                position = source_keys.get_indexer(pd.Index(_key_text(chosen, key))) if len(source) else \
                    np.full(len(chosen), -1)
                original = canonical_text(source[name]) if len(source) else np.empty(0, dtype=object)
                present = original != None  # noqa: E711 - elementwise: a NULL in the source equals nothing
                original_digests = np.zeros(len(original), dtype=np.uint64)
                original_digests[present] = value_digests(original[present])
                found = position >= 0
                found[found] = present[position[found]]
                loaded = digests.to_numpy()
                same = np.zeros(len(loaded), dtype=bool)
                same[found] = original_digests[position[found]] == loaded[found]
                for kind, mask in masks.items():
                    equal = mask & same
                    if equal.any():
                        keys = _smallest_row_keys(frame, digests.index[equal], key)
                        self.tallies[name].add_equal(kind, loaded[equal], keys)

    def _by_value(self) -> None:
        """Tables without a usable key: the flagged values' hashes, then one read of the source columns
        that had any, and which of those values the source column holds."""
        parts: dict[str, list[tuple[np.ndarray, dict[str, np.ndarray]]]] = {}  # per column and batch
        for _, flagged in self._flagged():
            for name, (loaded, masks) in flagged.items():
                any_kind = np.logical_or.reduce(list(masks.values()))
                digests = loaded.to_numpy()[any_kind]
                parts.setdefault(name, []).append((digests, {k: m[any_kind] for k, m in masks.items()}))
        if not parts:
            return
        wanted = {name: np.unique(np.concatenate([d for d, _ in batches])) for name, batches in parts.items()}
        held: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
        for batch in stream_rows(self.source, self.table, list(wanted), batch_size=self.ctx.batch_size):
            for name, targets in wanted.items():
                digests = value_digests(nonblank_text(batch[name]).to_numpy(dtype=object))
                held[name].append(np.unique(digests[np.isin(digests, targets)]))
        for name, batches in parts.items():
            digests = np.concatenate([d for d, _ in batches])
            present = np.isin(digests, np.concatenate(held[name])) if held[name] else np.zeros(len(digests), bool)
            for kind in {k for _, masks in batches for k in masks}:
                mask = np.concatenate([masks.get(kind, np.zeros(len(d), dtype=bool)) for d, masks in batches])
                if (mask & present).any():
                    self.tallies[name].add_equal(kind, digests[mask & present])


def check(ctx: CheckContext) -> list[CheckResult]:
    """``kept_identifiers`` (none without a source to compare with, as for a copy of a copy)."""
    if ctx.source is None:
        return []
    checked: list[tuple[TableInfo, KeptColumn, Tally]] = []
    by_key: list[str] = []
    by_value: list[str] = []
    for table in ctx.plan.tables:
        columns, key = checked_columns(ctx.plan, table)
        if not columns:
            continue
        early = ctx.kept_flags(table.key) if ctx.kept_flags is not None else None
        run = TableCheck(ctx, table, columns, key, early)
        (by_key if run.key is not None else by_value).append(table.key)
        tallies = run.run()
        checked += [(table, column, tallies[column.column]) for column in run.columns]
    return [kept_result(checked, by_key, by_value, ctx.plan)]


def kept_result(checked: list[tuple[TableInfo, KeptColumn, Tally]], by_key: list[str], by_value: list[str],
                plan: PlanResult) -> CheckResult:
    """The result: the failing columns (with findings), the accepted ones (with their reason), the figures."""
    columns: dict[str, Any] = {}
    failing: list[str] = []
    accepted: dict[str, str] = {}
    findings: list[dict[str, Any]] = []
    described: list[str] = []
    for table, column, tally in checked:
        if not tally.flagged:
            continue
        kinds = tally.failing()
        entry = {"decision": column.status, **tally.to_dict(), "reason": column.accepted}
        if not kinds:
            entry["outcome"] = "below the limits" if tally.equal else "differs from the source"
        elif column.accepted:
            entry["outcome"] = "accepted"
            accepted[column.label] = column.accepted
        else:
            entry["outcome"] = "identifiers"
            failing.append(column.label)
            kind = kinds[0]
            described.append(f"{column.label} ({kind}: {tally.equal[kind]:,} of {tally.rows:,} rows)")
            key = comparison_key(plan, table)
            for each in kinds:
                finding_key: FindingKey = (NAME, column.label, each, (column.label,))
                finding = Finding(tally.equal[each], tally.equal[each], key, tally.keys.get(each, []))
                findings.append(finding.to_dict(finding_key))
        columns[column.label] = entry
    figures: dict[str, Any] = {
        "columns_checked": len(checked), "values_checked": sum(t.rows for _, _, t in checked),
        "compared_by_key": sorted(by_key), "compared_by_value": sorted(by_value),
        "limits": {group: {"min_share": limit.min_share, "min_distinct": limit.min_distinct}
                   for group, limit in LIMITS.items()},
        "validated_kinds": sorted(VALIDATED), "in_text_kinds": [kind + IN_TEXT for kind in SPAN_KINDS],
        "columns": dict(sorted(columns.items())), "failing": sorted(failing),
        "accepted": dict(sorted(accepted.items())),
    }
    note = f"; accepted by the rules: {', '.join(sorted(accepted))}" if accepted else ""
    if failing:
        summary = (f"{len(failing)} kept column(s) hold identifiers equal to their source values: "
                   f"{', '.join(sorted(described))}; mask them, or keep them with a reason{note}")
        return CheckResult(NAME, "FAIL", summary, figures, findings=sorted(
            findings, key=lambda f: (-f["count"], f["column"], f["kind"])))
    summary = (f"no kept text column holds identifiers equal to the source ({len(checked)} column(s), "
               f"{figures['values_checked']:,} values checked){note}")
    return CheckResult(NAME, "PASS", summary, figures, findings=[])
