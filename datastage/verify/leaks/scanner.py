"""The search of the loaded copy: every row of a table against a :class:`~datastage.verify.leaks.index.LeakIndex`.

:class:`Scanner` streams the text and JSON columns (and the masked columns) of one
shadow table and counts, into a :class:`Found`,

* rows of a masked column that still hold their own original value (another row's value
  that happens to be equal is no leak); a value the rule maps onto itself, such as a date
  already at the start of its year under ``generalize``, or a value from the rule's own
  fake pool, is counted as excused, not as a leak;
* identifier tokens anywhere in the target that come from the source (a kept column's own
  identifiers are not counted in that column);
* Luhn-valid card numbers in a real issuer range outside the reserved test ranges,
  whatever their origin (the card sweep), and those inside them.

Each leak is also recorded as a :class:`Finding`: where it was found, the source column it
came from, its kind, how often, and up to :data:`MAX_ROW_KEYS` primary keys of the target
rows holding it (never the leaked value). A :class:`Found` holds counts, names and those
few keys only, so the search can run in worker processes
(:mod:`datastage.verify.leaks.pool`) and their findings be merged.

Example:
    >>> found = Found()
    >>> found.merge(Found(test_cards=2))
    >>> found.test_cards
    2
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import StepError
from datastage.mask.checkspec import CheckSettings
from datastage.mask.engine import MaskingEngine
from datastage.mask.fakepool import fake_pool
from datastage.mask.keys import MaskingKey
from datastage.mask.policy import ColumnRule
from datastage.mask.source_identifiers import HashSet
from datastage.plan import PlanResult
from datastage.progress import Progress
from datastage.source import mysqlarrow
from datastage.source.db import db_error_message
from datastage.source.identifiers import quote_as_needed
from datastage.source.pgcopy import read_frames
from datastage.source.schema import TableInfo
from datastage.source.values import as_int64, canonical_text, rows_to_frame
from datastage.verify.leaks.index import TEXT_CATEGORIES, LeakIndex
from datastage.verify.leaks.tokens import identifier_tokens, nonblank_text


@dataclass
class Tally:
    columns: int = 0
    values: int = 0
    matches: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    excused: dict[str, Counter[str]] = field(default_factory=dict)

    def merge(self, other: Tally) -> None:
        self.columns += other.columns
        self.values += other.values
        self.matches.update(other.matches)
        for mine, theirs in ((self.by_kind, other.by_kind), (self.excused, other.excused)):
            for label, counts in theirs.items():
                mine.setdefault(label, Counter()).update(counts)


MAX_ROW_KEYS = 20  # target row keys kept per finding
RowKey = tuple[Any, ...]
FindingKey = tuple[str, str, str, tuple[str, ...]]  # (check, found in table.column, kind, origin columns)


@dataclass
class Finding:
    """One leak: how often a kind of value from ``origin`` was found, and the target rows holding it
    (the :data:`MAX_ROW_KEYS` smallest primary keys, so parts searched in any order give the same ones).

    ``key_columns`` is ``None`` for a table without a primary key (its rows cannot be named).

    >>> finding = Finding(2, 2, ("id",), [(9,), (12,)])
    >>> finding.merge(Finding(1, 1, ("id",), [(3,)]))
    >>> finding.count, finding.rows
    (3, [(3,), (9,), (12,)])
    """

    count: int
    row_count: int
    key_columns: tuple[str, ...] | None
    rows: list[RowKey] = field(default_factory=list)

    def merge(self, other: Finding) -> None:
        self.count += other.count
        self.row_count += other.row_count
        self.rows = smallest_keys(self.rows + other.rows)

    def to_dict(self, key: FindingKey) -> dict[str, Any]:
        _, column, kind, origin = key
        return {"column": column, "origin": list(origin), "kind": kind, "count": self.count,
                "row_count": self.row_count,
                "key_columns": list(self.key_columns) if self.key_columns is not None else None,
                "rows": [list(row) for row in self.rows]}


@dataclass
class Found:
    """What the search of some rows found, per check (counts, names and a few row keys, so it can cross processes)."""

    masked: Tally = field(default_factory=Tally)
    identifiers: Tally = field(default_factory=Tally)
    cards: Tally = field(default_factory=Tally)
    ambiguous: int = 0
    test_cards: int = 0
    findings: dict[FindingKey, Finding] = field(default_factory=dict)

    def merge(self, other: Found) -> None:
        self.masked.merge(other.masked)
        self.identifiers.merge(other.identifiers)
        self.cards.merge(other.cards)
        self.ambiguous += other.ambiguous
        self.test_cards += other.test_cards
        for key, finding in other.findings.items():
            self.add(key, finding)

    def add(self, key: FindingKey, finding: Finding) -> None:
        if key in self.findings:
            self.findings[key].merge(finding)
        else:
            self.findings[key] = finding

    def of(self, check: str) -> list[dict[str, Any]]:
        """The findings of one check as the report holds them, largest first."""
        chosen = [finding.to_dict(key) for key, finding in self.findings.items() if key[0] == check]
        return sorted(chosen, key=lambda f: (-f["count"], f["column"], f["kind"], f["origin"]))


def _order(row: RowKey) -> tuple[tuple[int, Any], ...]:
    """How row keys sort: numbers before text before NULL (never comparing unlike types)."""
    return tuple((0, v) if isinstance(v, int) else (1, str(v)) if v is not None else (2, "") for v in row)


def smallest_keys(rows: list[RowKey]) -> list[RowKey]:
    """The :data:`MAX_ROW_KEYS` smallest distinct row keys.

    >>> smallest_keys([(2, "b"), (10, None), (2, "a"), (2, "a")])
    [(2, 'a'), (2, 'b'), (10, None)]
    """
    return heapq.nsmallest(MAX_ROW_KEYS, set(rows), key=_order)


def row_keys(frame: pd.DataFrame, rows: pd.Index, key_columns: tuple[str, ...]) -> list[RowKey]:
    """The smallest :data:`MAX_ROW_KEYS` primary keys of ``rows`` as the loaded copy holds them
    (integers as numbers, anything else as its canonical text).

    >>> frame = pd.DataFrame({"id": [8, 7], "code": ["b", "a"]}, dtype=object)
    >>> row_keys(frame, frame.index, ("id", "code"))
    [(7, 'a'), (8, 'b')]
    """
    positions = frame.index.get_indexer(rows) if frame.index.is_unique else None
    if positions is None or (positions < 0).any():
        chosen = frame.loc[rows]
        columns = {column: chosen[column].to_numpy(dtype=object) for column in key_columns}
    else:  # only the key columns' values of those rows
        columns = {column: frame[column].to_numpy(dtype=object)[positions] for column in key_columns}
    if len(key_columns) == 1:
        smallest = _smallest_integers(columns[key_columns[0]])
        if smallest is not None:
            return [(v,) for v in smallest]
    parts: list[list[Any]] = []
    for values in columns.values():
        if pd.api.types.infer_dtype(values, skipna=True) == "integer":
            parts.append([None if pd.isna(v) else int(v) for v in values])
        else:
            parts.append(canonical_text(pd.Series(values, dtype=object)).tolist())
    return smallest_keys(list(zip(*parts, strict=True))) if parts else []


def _smallest_integers(values: np.ndarray) -> list[int] | None:
    """The :data:`MAX_ROW_KEYS` smallest distinct values of a key column of 64-bit integers without
    NULLs, as Python ints (what :func:`smallest_keys` keeps of them); None for any other column.

    >>> _smallest_integers(np.array([5, 3, 5, 2**40], dtype=object)), _smallest_integers(np.array([1, None]))
    ([3, 5, 1099511627776], None)
    """
    integers = as_int64(values)
    if integers is None:
        return None
    distinct = np.unique(integers)
    return distinct[:MAX_ROW_KEYS].tolist()


@dataclass
class _Values:
    """A column's non-blank values (``text``), each as a code into its distinct values, how often each
    distinct value occurs, and the tokens found in them: the distinct value each came from, its kind
    and its keyed hash."""

    text: pd.Series
    codes: np.ndarray
    occurs: np.ndarray
    origins: np.ndarray
    kinds: np.ndarray
    hashes: np.ndarray


class Excuser:
    """Whether a matched target value could be the rule's own output (fixed point or fake-pool value)."""

    def __init__(self, planned: PlanResult, key: MaskingKey) -> None:
        self.engine = MaskingEngine(planned.policy, key)
        self.pools: dict[str, set[str]] = {}
        # Locales whose fake identities (person.*, email) the policy draws names from.
        self.person_locales = sorted({str(r.params.get("locale") or r.locale)
                                      for d in planned.policy.decisions.values() if (r := d.rule) is not None
                                      and ((r.strategy or "").startswith("person.") or r.strategy == "email")})
        self._names: tuple[set[str], set[str]] | None = None

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
        firsts, lasts = self._person_names()
        for i, token in enumerate(tokens):
            if token.startswith("name:"):
                words = token[5:].split(" ")
                if len(words) == 2:
                    a, b = words
                    out[i] = (a in firsts and b in lasts) or (b in firsts and a in lasts)
        return out

    def _person_names(self) -> tuple[set[str], set[str]]:
        """(first names, last names) the policy's fake identities draw from, lower-cased (made once)."""
        if self._names is None:
            self._names = ({v.lower() for loc in self.person_locales for v in self._drawn(loc, "first_name")},
                           {v.lower() for loc in self.person_locales for v in self._drawn(loc, "last_name")})
        return self._names

    def excuse(self, rule: ColumnRule, frame: pd.DataFrame, hit_index: pd.Index) -> tuple[pd.Series, pd.Series]:
        """Which matched rows hold a fixed point of the rule, and which a value of its fake pool."""
        subset = frame.loc[hit_index]
        text = nonblank_text(subset[rule.column])
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
        return fixed.reindex(text.index, fill_value=False).astype(bool), in_pool.astype(bool)


def _pool_tokens(planned: PlanResult, index: LeakIndex, excuser: Excuser) -> HashSet:
    """Identifier tokens a fake pool of the policy can produce: a match on them proves nothing."""
    found = HashSet()
    for rules in index.masked.values():
        for rule in rules:
            pool = excuser.pool(rule)
            if pool:
                tokens = identifier_tokens(pd.Series(sorted(pool), dtype=object), whole_phone=True, names=True)
                if tokens.tokens:
                    found.add(index.hash_tokens(tokens.tokens))
    return found


def stream_loaded(conn: Connection, table: TableInfo, columns: list[str], name: str, batch_size: int,
                  where: str = "", purpose: str = "the leak check") -> Iterator[pd.DataFrame]:
    """The loaded rows of ``columns`` of ``table`` (called ``name`` in the shadow), in batches.

    PostgreSQL text and integer columns are read with ``COPY``, MariaDB/MySQL ones with connectorx
    (:mod:`datastage.source.mysqlarrow`); a failed read is a
    :class:`StepError` of the ``verify`` step naming the table and ``purpose``.
    """
    quote = partial(quote_as_needed, conn)
    sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM {name}{where}"
    categories = {c: table.columns[c].category for c in columns}
    try:
        raw = conn.connection.driver_connection if conn.dialect.name == "postgresql" else None
        if isinstance(raw, psycopg.Connection) and raw.info.encoding == "utf-8" and \
                set(categories.values()) <= {"text", "integer"}:
            # COPY CSV is these columns' values as they are; parsed by Arrow it is several times faster.
            integers = {c for c, category in categories.items() if category == "integer"}
            yield from read_frames(raw, sql, columns, integers, batch_size)
            return
        url = mysqlarrow.arrow_url(conn) if set(categories.values()) <= {"text", "integer"} else None
        frames = mysqlarrow.read_frames(url, sql, columns, batch_size) if url is not None else None
        if frames is not None:
            yield from frames
            return
        result = conn.execution_options(stream_results=True, max_row_buffer=batch_size).exec_driver_sql(sql)
        while rows := result.fetchmany(batch_size):
            yield rows_to_frame(rows, columns)
    except (SQLAlchemyError, psycopg.Error, mysqlarrow.ArrowReadError) as exc:
        raise StepError(f"reading {table.key} for {purpose}: {db_error_message(exc)}", step="verify") from None


class Scanner:
    """Searches the loaded rows of one table at a time against a :class:`LeakIndex`."""

    def __init__(self, planned: PlanResult, index: LeakIndex, key: MaskingKey, settings: CheckSettings) -> None:
        self.index = index
        self.excuser = Excuser(planned, key)
        self.pool_tokens = _pool_tokens(planned, index, self.excuser)
        self.exempt = {name: settings.exempt(name)
                       for name in ("leak_masked_columns", "leak_identifiers", "card_sweep")}
        self.names_wanted = len(index.tokens) > 0 and index.harvested.get("name", 0) > 0
        self.tables = {t.key: t for t in planned.tables}
        for hashes in [index.tokens, *index.values.values(), *index.kept_tokens.values()]:
            len(hashes)  # sorted once here, not in every worker process
        scan = planned.scan
        self.kinds = {(t, c): finding.kind for (t, c), finding in scan.findings.items()} if scan else {}

    def key_columns(self, table: TableInfo) -> tuple[str, ...] | None:
        """The primary key of ``table`` in the loaded copy (None without one)."""
        key = tuple(c for c in table.primary_key if c in table.columns)
        return key if key and not table.virtual_primary_key else None

    def columns(self, table: TableInfo) -> tuple[dict[str, ColumnRule], list[str], list[str]]:
        """(masked columns' rules, text columns, every column to read) of ``table``."""
        rules = {r.column: r for r in self.index.masked.get(table.key, [])}
        text_columns = [c.name for c in table.columns.values() if c.category in TEXT_CATEGORIES]
        binding = [c for column in rules for c in self.index.binding_columns(table.key, column)]
        columns = list(dict.fromkeys([*text_columns, *rules, *binding]))
        columns = [c for c in columns if c in table.insertable_columns]
        if columns:  # the primary key too, to name the rows a finding is in
            columns += [c for c in self.key_columns(table) or () if c not in columns]
        return rules, text_columns, columns

    def scan(self, conn: Connection, table: TableInfo, name: str, batch_size: int, where: str = "",
             progress: Progress | None = None) -> Found:
        """Search the rows of ``table`` (``where``: a part of them) read from ``name``."""
        found = Found()
        rules, text_columns, columns = self.columns(table)
        if columns:
            for frame in stream_loaded(conn, table, columns, name, batch_size, where):
                self.scan_frame(table, frame, rules, text_columns, found)
                if progress is not None:
                    progress.advance(len(frame))
        return found

    def scan_frame(self, table: TableInfo, frame: pd.DataFrame, rules: dict[str, ColumnRule],
                   text_columns: list[str], found: Found) -> None:
        index, exempt = self.index, self.exempt
        bindings: dict[tuple[str, ...], np.ndarray] = {}
        for column in frame.columns:
            if column not in rules and column not in text_columns:
                continue  # a row-key column, read only to bind masked values to their rows
            label = f"{table.key}.{column}"
            text = nonblank_text(frame[column])
            if text.empty:
                continue
            rule = rules.get(column)
            if rule is not None and label not in exempt["leak_masked_columns"]:
                found.masked.values += len(text)
                source = index.values.get((table.key, column))
                if source is not None:
                    hit = source.contains(index.value_hashes(table.key, frame, column, frame, bindings, text))
                    if hit.any():
                        fixed, pooled = self.excuser.excuse(rule, frame, text.index[hit])
                        leaked_rows = fixed.index[~(fixed | pooled).to_numpy()]
                        if len(leaked_rows):
                            found.masked.matches[label] += len(leaked_rows)
                            kind = self.kinds.get((table.key, column)) or "value"
                            self._record(found, ("leak_masked_columns", label, kind, (label,)), len(leaked_rows),
                                         table, frame, leaked_rows)
                        if fixed.any() or pooled.any():
                            excused = found.masked.excused.setdefault(label, Counter())
                            excused.update({"fixed_points": int(fixed.sum()), "fake_pool": int(pooled.sum())})
            if column in text_columns:
                self._search(table, column, label, text, found, frame)

    def _search(self, table: TableInfo, column: str, label: str, text: pd.Series, found: Found,
                frame: pd.DataFrame) -> None:
        index, exempt = self.index, self.exempt
        # Each distinct value is searched once; its tokens count as often as it occurs.
        codes, distinct = pd.factorize(text.to_numpy(dtype=object))
        occurs = np.bincount(codes, minlength=len(distinct))
        tokens = identifier_tokens(pd.Series(distinct, dtype=object), whole_phone=True, names=self.names_wanted)
        origins = np.asarray(tokens.origins, dtype=np.int64)
        weights = occurs[origins]
        kinds = np.asarray(tokens.kinds, dtype=object)
        hashes = index.hash_tokens(tokens.tokens) if tokens.tokens else np.zeros(0, dtype=np.uint64)
        values = _Values(text, codes, occurs, origins, kinds, hashes)
        if label not in exempt["leak_identifiers"]:
            found.identifiers.values += len(text)
            if len(hashes):
                hit = index.tokens.contains(hashes)
                for (t, c), kept in index.kept_tokens.items():
                    if (t, c) != (table.key, column):
                        hit |= kept.contains(hashes)
                excused = hit & self.pool_tokens.contains(hashes)
                rest = np.flatnonzero(hit & ~excused)
                if len(rest):
                    excused[rest] = self.excuser.person_pair(pd.Series([tokens.tokens[i] for i in rest.tolist()],
                                                                       dtype=object))
                found.ambiguous += int(weights[excused].sum())
                hit &= ~excused
                if hit.any():
                    found.identifiers.matches[label] += int(weights[hit].sum())
                    kind_names, kind_ids = np.unique(kinds[hit], return_inverse=True)  # sorted, as groupby
                    per_kind = np.bincount(kind_ids.ravel(), weights=weights[hit], minlength=len(kind_names))
                    found.identifiers.by_kind.setdefault(label, Counter()).update(
                        {str(k): int(v) for k, v in zip(kind_names.tolist(), per_kind.tolist(), strict=True)})
                    self._record_tokens(found, "leak_identifiers", table, column, label, values,
                                        np.flatnonzero(hit), frame)
        if label not in exempt["card_sweep"]:
            found.cards.values += len(text)
            found.test_cards += int(occurs[np.asarray(tokens.test_card_origins, dtype=np.int64)].sum())
            cards = np.flatnonzero(kinds == "card")
            if len(cards):
                found.cards.matches[label] += int(weights[cards].sum())
                self._record_tokens(found, "card_sweep", table, column, label, values, cards, frame)

    def _record_tokens(self, found: Found, check: str, table: TableInfo, column: str, label: str,
                       values: _Values, chosen: np.ndarray, frame: pd.DataFrame) -> None:
        """Findings for the ``chosen`` tokens of a column's distinct values, one per kind and origin."""
        unique, inverse = np.unique(values.hashes[chosen], return_inverse=True)
        labels: list[tuple[str, ...]] = self.index.origins(unique, skip=(table.key, column))
        origin_ids, origin_names = pd.factorize(pd.Series(labels, dtype=object))
        kind_ids, kind_names = pd.factorize(values.kinds[chosen])
        groups, group_of = np.unique(kind_ids * len(origin_names) + origin_ids[inverse.ravel()], return_inverse=True)
        group_of = group_of.ravel()
        distinct_values = values.origins[chosen]
        weights = np.bincount(group_of, weights=values.occurs[distinct_values], minlength=len(groups))
        for number, group in enumerate(groups.tolist()):
            kind, origin = str(kind_names[group // len(origin_names)]), origin_names[group % len(origin_names)]
            rows = values.text.index[np.isin(values.codes, distinct_values[group_of == number])]
            self._record(found, (check, label, kind, tuple(origin)), int(weights[number]), table, frame, rows)

    def _record(self, found: Found, key: FindingKey, count: int, table: TableInfo, frame: pd.DataFrame,
                rows: pd.Index) -> None:
        key_columns = self.key_columns(table)
        keys = row_keys(frame, rows, key_columns) if key_columns is not None else []
        found.add(key, Finding(count, len(rows), key_columns, keys))

