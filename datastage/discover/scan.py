"""PII discovery: classify every column of the source from its name and a sample of its values.

Each column gets a classification (``direct_identifier``, ``quasi_identifier``,
``sensitive``, ``non_personal``, ``unknown``), a confidence and *redacted* evidence:
which name pattern or value pattern hit, and in what share of the sampled values; never
a value. The sample is drawn inside the read-only snapshot, bounded per table
(``sample_rows``, seeded). The same classification drives the coverage gate (a personal
column kept without a reason stops the refresh) and the report's column table, and
:func:`propose_rules` turns it into a reviewable rules file.

Example (the column's name says nothing; its values do):
    >>> import sqlite3, tempfile
    >>> from datastage.source.db import make_engine, snapshot
    >>> from datastage.source.schema import reflect
    >>> path = f"{tempfile.mkdtemp()}/prod.db"
    >>> _ = sqlite3.connect(path).executescript("CREATE TABLE customer (id INTEGER PRIMARY KEY, contact TEXT UNIQUE);"
    ...     "INSERT INTO customer (contact) VALUES ('ann@example.com'), ('bob@example.org'), ('eve@example.net');")
    >>> with snapshot(make_engine(f"sqlite:///{path}", read_only=True)) as conn:
    ...     result = scan_source(conn, reflect(conn))
    >>> result.finding("customer", "contact").classification
    'direct_identifier'
    >>> result.finding("customer", "contact").evidence
    [{'source': 'values', 'pattern': 'email', 'share': 1.0, 'matched': 3, 'sampled': 3}]
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import SourceError
from datastage.identify import vocabulary
from datastage.identify.keys import carried_key
from datastage.identify.kinds import CLASSIFICATIONS, PERSONAL, Classification
from datastage.identify.kinds import KINDS as IDENTIFIER_KINDS
from datastage.identify.values import Analysis, analyse
from datastage.mask.policy import Policy, load_policy
from datastage.settings import Project
from datastage.source.db import db_error_message, dialect_of, make_engine, redact_url, snapshot
from datastage.source.schema import ColumnInfo, SchemaModel, TableInfo, reflect
from datastage.source.values import canonical_text, rows_to_frame
from datastage.subset.extract import raw_column

DEFAULT_SAMPLE_ROWS = 1000
SCAN_FACTOR = 20  # rows read at most per table: SCAN_FACTOR * sample_rows (then a seeded sample of them)
TEXT_CATEGORIES = frozenset({"text", "json", "other", "array"})
KEY_CATEGORIES = frozenset({"integer", "uuid"})  # surrogate keys: a row's number, not a person's
FULL_MATCH_SHARE = 0.5  # share of sampled values a whole-value pattern needs (0.2 where the name agrees)
HINTED_SHARE = 0.2
NAME_SHARE = 0.6  # share of dictionary names a column needs when its name says nothing
HINTED_NAME_SHARE = 0.3  # ... when its name says names
NAME_SHAPE_SHARE = 0.8  # share of name-shaped values a person table's name column needs
DATE_SHARE = 0.8  # share of values that must parse as dates for a date kind on a text column
KINDS = IDENTIFIER_KINDS  # the taxonomy (kind -> label, classification, HIPAA letter, GDPR category)
NAME_KINDS = frozenset({"first_name", "last_name", "full_name"})
DATE_KINDS = frozenset({"date_of_birth", "event_date"})
# Person attributes: one of these (by name) makes a table a table of people.
PERSON_ATTRIBUTES = frozenset({"first_name", "last_name", "date_of_birth", "national_id", "passport",
                               "drivers_licence", "gender", "ethnicity", "medical_record_number", "name_affix"})
PERSON_HINTS = frozenset({"full_name", "email", "username"})  # two of these do too
# What an organisation's row holds about the organisation, not about a person.
ORGANISATION_CONTACT = frozenset({"street_address", "city", "postcode", "phone", "fax", "geo_coordinates", "url"})
# Tables of a patient's health items: their descriptions and codes are health data (what the patient has).
HEALTH_RECORD_TABLES = {"condition": "health_condition", "diagnosis": "health_condition",
                        "allergy": "health_condition", "problem": "health_condition", "procedure": "health_condition",
                        "immunization": "health_condition", "careplan": "health_condition",
                        "medication": "medication", "prescription": "medication", "drug": "medication",
                        "device": "health_condition"}
HEALTH_RECORD_COLUMNS = frozenset({"description", "desc", "code", "reason", "value", "diagnosis", "name"})
# Tables of events and measurements of care: their code and description name the *type* of visit or of
# measurement (a catalogue entry); the patient's health data there is the reason, the finding, the value.
HEALTH_EVENT_TABLES = frozenset({"encounter", "visit", "admission", "observation", "measurement", "vital", "lab"})
HEALTH_EVENT_COLUMNS = frozenset({"reason", "diagnosis", "value", "result", "finding", "complaint", "indication"})
# Kinds that are a person's only in a person's record (a job's salary band, a category's picture are not).
PERSON_RECORD_KINDS = frozenset({"financial", "photo"})
PLACE_KINDS = frozenset({"city", "street_address", "postcode"})
PRIORITY = {"direct_identifier": 3, "sensitive": 2, "quasi_identifier": 1, "non_personal": 0, "unknown": 0}


@dataclass
class ColumnFinding:
    """What the scan concluded about one column, with redacted evidence (never a value)."""

    table: str
    column: str
    data_type: str
    category: str
    classification: Classification
    confidence: float
    kind: str | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    sampled: int = 0
    note: str = ""
    value_kinds: dict[str, float] = field(default_factory=dict)
    stats: dict[str, float | int] = field(default_factory=dict)  # sampled, distinct, distinct_share, mean_length ...
    context: str | None = None  # the table's role: person, organisation, thing (or None)

    @property
    def personal(self) -> bool:
        return self.classification in PERSONAL

    @property
    def hipaa(self) -> str | None:
        """The HIPAA Safe Harbor identifier category (letter A-R) of the kind, if any."""
        return KINDS[self.kind].hipaa if self.kind else None

    @property
    def gdpr(self) -> str | None:
        """The GDPR special category (art. 9/10) of the kind, if any."""
        return KINDS[self.kind].gdpr if self.kind else None

    def describe(self) -> str:
        """One line: classification and the strongest evidence, e.g. for errors and comments."""
        label = KINDS[self.kind].label if self.kind else None
        text = self.classification + (f": {label}" if label else "")
        values = [e for e in self.evidence if e["source"] == "values"
                  and (e["pattern"] == self.kind or e["pattern"].startswith(f"{self.kind}:"))]
        if values:
            e = max(values, key=lambda item: item["share"])
            what = f" ({KINDS[e['pattern'].split(':')[1]].label})" if ":" in e["pattern"] else ""
            text += f"{what} in {e['share']:.0%} of {e['sampled']} sampled values"
        elif (distinct := next((e for e in self.evidence if e["pattern"] == "distinct"), None)) is not None:
            text += f" ({distinct['share']:.0%} distinct in {distinct['sampled']} sampled values, and its name)"
        elif any(e["source"] == "name" for e in self.evidence):
            text += " (column name)"
        return text

    def to_dict(self) -> dict[str, Any]:
        info = KINDS[self.kind] if self.kind else None
        return {"table": self.table, "column": self.column, "type": self.data_type,
                "classification": self.classification, "confidence": round(self.confidence, 2),
                "kind": self.kind, "label": info.label if info else None,
                "hipaa": info.hipaa if info else None, "gdpr": info.gdpr if info else None,
                "categories": info.categories() if info else [], "evidence": self.evidence,
                "stats": self.stats, "context": self.context, "sampled": self.sampled, "note": self.note}


@dataclass
class ScanResult:
    """Findings for every column of the scanned tables."""

    findings: dict[tuple[str, str], ColumnFinding]
    sample_rows: int
    seed: int
    seconds: float = 0.0
    sampled_tables: dict[str, int] = field(default_factory=dict)

    def finding(self, table: str, column: str) -> ColumnFinding:
        return self.findings[(table, column)]

    def get(self, table: str, column: str) -> ColumnFinding | None:
        return self.findings.get((table, column))

    def personal(self) -> dict[tuple[str, str], str]:
        """(table, column) -> description, for every column classified as personal data."""
        return {slot: f.describe() for slot, f in self.findings.items() if f.personal}

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(CLASSIFICATIONS, 0)
        for finding in self.findings.values():
            out[finding.classification] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"sample_rows": self.sample_rows, "seed": self.seed, "seconds": round(self.seconds, 3),
                "sampled_tables": self.sampled_tables, "counts": self.counts(),
                "columns": [f.to_dict() for f in self.findings.values()]}


# -- sampling -----------------------------------------------------------------------------

def _pg_estimate(conn: Connection, table: TableInfo) -> int:
    row = conn.execute(sa.text(
        "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema AND c.relname = :name"),
        {"schema": table.schema or conn.dialect.default_schema_name or "public", "name": table.name}).first()
    return int(row[0]) if row and row[0] is not None else -1


def sample_table(conn: Connection, table: TableInfo, columns: list[str], sample_rows: int,
                 seed: int) -> pd.DataFrame:
    """Up to ``sample_rows`` rows of ``columns``, chosen by ``seed``, reading a bounded number of rows.

    PostgreSQL tables larger than the bound are sampled with ``TABLESAMPLE BERNOULLI ...
    REPEATABLE (seed)``; elsewhere the first ``SCAN_FACTOR * sample_rows`` rows are read.
    """
    bound = sample_rows * SCAN_FACTOR
    source: Any = table.sa_table
    if dialect_of(conn) == "postgresql":
        estimate = _pg_estimate(conn, table)
        if estimate > bound:
            percent = max(0.01, min(100.0, 100.0 * sample_rows * 2 / estimate))
            source = sa.tablesample(table.sa_table, sa.func.bernoulli(percent), seed=sa.literal(seed))
    stmt = sa.select(*(sa.type_coerce(source.c[c], sa.types.NullType()).label(c) for c in columns)) \
        if source is not table.sa_table else sa.select(*(raw_column(table, c) for c in columns))
    stmt = stmt.limit(bound)
    try:
        rows = conn.execute(stmt).fetchall()
    except SQLAlchemyError as exc:
        raise SourceError(f"sampling {table.key} failed: {db_error_message(exc)}", table=table.key) from None
    frame = rows_to_frame(rows, columns)
    if len(frame) > sample_rows:
        frame = frame.sample(n=sample_rows, random_state=seed).reset_index(drop=True)
    return frame


# -- classification -----------------------------------------------------------------------

@dataclass(frozen=True)
class TableContext:
    """What a table's name and columns say about its rows: a person, an organisation, a thing."""

    role: str | None  # "person", "organisation", "thing" or None
    words: frozenset[str]  # the table name's singular words
    address: bool = False  # it holds a street address or a postcode column
    health: bool = False  # it is about health care or health cover
    first_name: bool = False  # it has a given-name column
    last_name: bool = False  # ... a family-name column
    owned: bool = False  # its rows belong to a person: a foreign key to a table of people (not a sale)
    keys: dict[str, vocabulary.NameHint] = field(default_factory=dict, compare=False, hash=False)
    # key columns holding an identifier the person carries (``income.ssn``, ``drivers_license.id``)

    @property
    def person(self) -> bool:
        return self.role == "person"

    @property
    def personal_record(self) -> bool:
        """A person's own row, or a row that belongs to one (a patient's conditions, an employee's jobs)."""
        return self.person or self.owned


def _in_key(table: TableInfo, column: ColumnInfo) -> bool:
    return column.name in table.primary_key or any(column.name in fk.columns for fk in table.foreign_keys)


def _is_key(table: TableInfo, column: ColumnInfo, context: TableContext | None = None) -> bool:
    """An integer or UUID column of the primary key or a foreign key: a row's number, not a person's
    (unless its name says it is an identifier the person carries, see ``identify.keys``)."""
    if column.category not in KEY_CATEGORIES or not _in_key(table, column):
        return False
    carried = context.keys.get(column.name) if context is not None else carried_key(table, column)
    return carried is None or carried.strength != "strong"


def table_context(table: TableInfo, model: SchemaModel | None = None) -> TableContext:
    """The table's role from its name (``patients``) or its columns (a ``first_name``, a ``dob`` ...).

    With ``model``, foreign keys are followed: a key referencing an identifier is one
    (``person.license_id`` -> ``drivers_license.id``), and a table referencing a table of people
    (other than a sale, an order, a payment) holds rows that belong to a person.
    """
    words = vocabulary.table_words(table.name)
    role = vocabulary.table_role(table.name)
    keys = {c.name: hint for c in table.columns.values()
            if _in_key(table, c) and (hint := carried_key(table, c, model)) is not None}
    strong: list[str] = [h.kind for h in keys.values() if h.strength == "strong"]
    tokens: set[str] = set()
    for column in table.columns.values():
        reading = vocabulary.read_name(column.name, column.category, words)
        tokens.update(reading.tokens)
        if _in_key(table, column) and (column.category in KEY_CATEGORIES or column.name in keys):
            continue
        strong.extend(h.kind for h in reading.hints if h.strength == "strong")
        strong.extend(h.kind for h in reading.hints if h.kind in NAME_KINDS and h.strength == "weak"
                      and reading.tokens in {("first",), ("last",), ("middle",), ("given",)})
    attributes = sum(1 for k in set(strong) if k in PERSON_ATTRIBUTES)
    hints = sum(1 for k in set(strong) if k in PERSON_HINTS)
    if role != "person" and (attributes >= (1 if role is None else 2) or (role is None and hints >= 2)):
        role = "person"
    health = bool((words | tokens) & vocabulary.HEALTH_WORDS) or bool(words & set(HEALTH_RECORD_TABLES))
    return TableContext(role, words, "street_address" in strong or "postcode" in strong, health,
                        "first_name" in strong, "last_name" in strong, keys=keys)


def table_contexts(model: SchemaModel, tables: Iterable[str] | None = None) -> dict[str, TableContext]:
    """:func:`table_context` of each of ``tables`` (default: all), with ``owned`` from the foreign keys."""
    wanted = list(tables) if tables is not None else list(model.tables)
    base = {key: table_context(table, model) for key, table in model.tables.items()}
    out: dict[str, TableContext] = {}
    for key in wanted:
        context = base[key]
        owned = not context.person and not (context.words & vocabulary.TRANSACTION_TABLES) and any(
            fk.ref_table in base and base[fk.ref_table].person for fk in model.tables[key].foreign_keys)
        out[key] = replace(context, owned=owned)
    return out


def _hints(reading: vocabulary.NameReading, column: ColumnInfo, table: TableInfo, context: TableContext,
           address: bool) -> dict[str, str]:
    """The name's hints (kind -> strength) the table's context supports."""
    if _in_key(table, column) and column.name in context.keys:
        hint = context.keys[column.name]
        if hint.strength == "strong":  # a key that is the identifier itself: income.ssn, drivers_license.id
            kind = hint.kind
            if kind == "health_plan_id" and not context.health:
                kind = "other_identifier"
            return {kind: "strong"}
        # a text key a name calls a member id: its own name and its values decide (see _identifier_like)
    if _is_key(table, column, context):
        return {}
    out: dict[str, str] = {}
    for hint in reading.hints:
        kind, strength = hint.kind, hint.strength
        if context.role == "organisation" and kind in ORGANISATION_CONTACT:
            continue  # an organisation's own address and phone number
        if kind in NAME_KINDS | {"name_affix"} and strength == "weak":
            if not (context.person or reading.person_role):
                continue  # a lone "name", "first", "prefix" outside a table of people: a thing's
        elif kind in ("city", "geo_coordinates") and not (address or context.person):
            continue  # a city on its own is a lookup value; in an address or a person's record it narrows people down
        elif kind in ("url", "photo") and strength == "weak":
            if not context.person:
                continue
            strength = "strong"
        elif kind == "health_plan_id" and strength == "weak":
            kind, strength = ("health_plan_id", "strong") if context.health else ("other_identifier", "strong")
        if kind in PERSON_RECORD_KINDS and not context.personal_record:
            continue  # a job's salary band, a product category's picture: nobody's
        out.setdefault(kind, strength)
    if not out and context.role in ("thing", None) and column.category in TEXT_CATEGORIES | {"integer"}:
        record = next((v for w, v in HEALTH_RECORD_TABLES.items() if w in context.words), None)
        if record and reading.tokens and reading.tokens[-1] in HEALTH_RECORD_COLUMNS and context.health:
            out[record] = "strong"  # conditions.description, medications.code: a patient's health data
        elif context.words & HEALTH_EVENT_TABLES and context.health and set(reading.tokens) & HEALTH_EVENT_COLUMNS:
            out["health_condition"] = "strong"  # encounters.reasoncode, observations.value (not their type's code)
    if (not out and column.category in ("date", "datetime") and context.personal_record
            and not set(reading.tokens) & vocabulary.BOOKKEEPING):
        out["event_date"] = "strong"  # a date in a person's care or working life (HIPAA C), not last_update
    return out


def name_hints(column: ColumnInfo, table: TableInfo | None = None) -> list[str]:
    """Kinds the column's name suggests (respecting its type and, with ``table``, the table's context)."""
    if table is None:
        return [h.kind for h in vocabulary.read_name(column.name, column.category).hints]
    context = table_context(table)
    reading = vocabulary.read_name(column.name, column.category, context.words)
    return list(_hints(reading, column, table, context, context.address))


def _value_text(series: pd.Series) -> pd.Series:
    """The non-blank values of a sampled column as canonical, stripped text."""
    canonical = canonical_text(series)
    present = canonical[pd.notna(canonical)]
    if _UNSTRIPPED.search("\n".join(present.tolist())):  # a blank at either end of some value (or a line feed)
        present = pd.Series(present, dtype=object).str.strip().to_numpy(dtype=object)
    return pd.Series(present[present != ""], dtype=object)


_UNSTRIPPED = re.compile(r"^\s|\s$", re.MULTILINE)


@dataclass
class _Candidate:
    kind: str
    confidence: float
    tier: int  # 3: the name and the values agree; 2: the values alone; 1: the name alone

    def key(self) -> tuple[int, int, float, bool]:
        return (self.tier, PRIORITY[KINDS[self.kind].classification], self.confidence, self.kind != "phone")


def _name_candidates(analysis: Analysis, hints: dict[str, str], reading: vocabulary.NameReading,
                     context: TableContext) -> list[_Candidate]:
    """Names: dictionaries anywhere, name shapes where the column and the table say so, never a categorical."""
    names = analysis.names
    categorical = analysis.stats is not None and analysis.stats.categorical
    dictionary = {"first_name": names.get("dict_first", 0.0), "last_name": names.get("dict_last", 0.0),
                  "full_name": names.get("dict_full", 0.0)}
    shape = {"first_name": names.get("shape_part", 0.0), "last_name": names.get("shape_part", 0.0),
             "full_name": names.get("shape_full", 0.0)}
    other_kind = any(k not in NAME_KINDS and s == "strong" for k, s in hints.items())
    blocked = reading.thing or other_kind or (context.role in ("thing", "organisation") and not hints)
    out: list[_Candidate] = []
    for kind in ("full_name", "first_name", "last_name"):
        strength = hints.get(kind)
        found = max(dictionary[kind], shape[kind] if strength else 0.0)
        if strength is not None:
            ok = dictionary[kind] >= HINTED_NAME_SHARE or shape[kind] >= NAME_SHAPE_SHARE
            if strength == "weak" and categorical:
                ok = False  # a handful of repeated words in a person table: a category, not names
            if ok:
                out.append(_Candidate(kind, min(0.99, 0.6 + 0.35 * found), 3))
        elif not blocked and not categorical and dictionary[kind] >= NAME_SHARE:
            out.append(_Candidate(kind, min(0.99, 0.55 + 0.4 * dictionary[kind]), 2))
    if "name_affix" in hints and names.get("affix", 0.0) >= FULL_MATCH_SHARE:
        out.append(_Candidate("name_affix", min(0.99, 0.55 + 0.4 * names["affix"]), 3))
    return out


def classify_column(table: TableInfo, column: ColumnInfo, sample: pd.Series | None,
                    address_context: bool = False, context: TableContext | None = None) -> ColumnFinding:
    """Classify one column from its name, its type, its table and (if text-like) its sampled values."""
    context = context or table_context(table)
    address = address_context or context.address
    reading = vocabulary.read_name(column.name, column.category, context.words)
    hints = _hints(reading, column, table, context, address)
    values = _value_text(sample) if sample is not None else pd.Series([], dtype=object)
    sampled = len(values)
    wants_dates = bool(DATE_KINDS & set(hints)) and column.category not in ("date", "datetime")
    analysis = analyse(values, set(hints), json=column.category == "json", dates=wants_dates) if sampled \
        else Analysis(0)
    if hints.get("full_name") == "weak" and sampled and analysis.names.get("multi_token", 0.0) < 0.5:
        # A one-word "name" (nom) beside a given-name column is the family name, and the other way round.
        swap = "first_name" if context.last_name and not context.first_name else (
            "last_name" if context.first_name and not context.last_name else None)
        if swap and swap not in hints:
            hints = {(swap if k == "full_name" else k): v for k, v in hints.items()}
            analysis = analyse(values, set(hints), json=column.category == "json", dates=wants_dates)
    shares = dict(analysis.shares)
    candidates: list[_Candidate] = []
    value_evidence: dict[str, float] = {}
    for kind, fraction in shares.items():
        if kind in NAME_KINDS:
            continue
        needed = HINTED_SHARE if kind in hints else FULL_MATCH_SHARE
        if context.role == "organisation" and kind in ORGANISATION_CONTACT:
            continue  # an organisation's own address and phone number
        if fraction >= needed:
            value_evidence[kind] = fraction
            candidates.append(_Candidate(kind, min(0.99, 0.55 + 0.4 * fraction + (0.05 if kind in hints else 0)),
                                         3 if kind in hints else 2))
    if sampled:
        for candidate in _name_candidates(analysis, hints, reading, context):
            candidates.append(candidate)
            value_evidence[candidate.kind] = max(shares.get(candidate.kind, 0.0), _name_share(analysis, candidate))
            if candidate.kind in NAME_KINDS:
                shares[candidate.kind] = value_evidence[candidate.kind]
        gender = analysis.gender
        if gender:
            shares["gender"] = gender
            if gender >= (0.5 if hints.get("gender") == "strong" else 0.9):
                value_evidence["gender"] = gender
                candidates.append(_Candidate("gender", min(0.99, 0.55 + 0.4 * gender), 3 if "gender" in hints else 2))
    for kind in DATE_KINDS & set(hints):
        if column.category in ("date", "datetime"):
            candidates.append(_Candidate(kind, 0.7, 3))
        elif sampled and analysis.dates >= DATE_SHARE:
            value_evidence[kind] = analysis.dates
            candidates.append(_Candidate(kind, min(0.99, 0.55 + 0.4 * analysis.dates), 3))
        else:
            hints.pop(kind)  # a date kind on anything else: the name says birth, the values say otherwise
    whole = any(f >= FULL_MATCH_SHARE for k, f in analysis.shares.items() if ":" not in k)
    placed = any(hints.get(k) == "strong" for k in PLACE_KINDS)  # birthplace "Lake Mary  Florida  US"
    if analysis.free_text and not whole and not placed:  # whole addresses, names or places are not free text
        for kind, fraction in analysis.contains.items():
            shares[f"free_text:{kind}"] = fraction
            strong = kind in ("email", "card_number", "iban", "national_id")
            matched = round(fraction * sampled)
            if (strong and matched >= 1) or (fraction >= 0.02 and matched >= 2):
                value_evidence[f"free_text:{kind}"] = fraction
                if not any(c.tier >= 2 and c.kind != "free_text" for c in candidates):
                    candidates.append(_Candidate("free_text", min(0.99, 0.6 + 2 * fraction), 2))
    if any(c.kind != "free_text" for c in candidates):
        candidates = [c for c in candidates if c.kind != "free_text"]  # whole values say more than contents
    confirmed = {c.kind for c in candidates}
    for kind, strength in hints.items():
        if kind in confirmed or strength != "strong":
            continue
        if kind in NAME_KINDS and confirmed & NAME_KINDS:
            continue
        candidates.append(_Candidate(kind, 0.7 if not sampled else 0.55, 1))
    if not candidates and _identifier_like(analysis, reading, column, table, context):
        candidates.append(_Candidate("other_identifier", 0.6, 2))
    evidence: list[dict[str, Any]] = [{"source": "name", "pattern": k} for k, s in hints.items()
                                      if s == "strong" or k in confirmed]
    best_kind = max(candidates, key=_Candidate.key).kind if candidates else None
    for kind, fraction in value_evidence.items():
        if kind.startswith("free_text:") and best_kind != "free_text":
            continue  # whole values decided; what the texts contain is not the evidence
        evidence.append(_value_evidence(kind, fraction, sampled))
    if any(c.kind == "other_identifier" and c.tier == 2 for c in candidates) and analysis.stats is not None:
        evidence.append(_value_evidence("distinct", analysis.stats.distinct_share, sampled))
    stats = analysis.stats.to_dict() if analysis.stats is not None and sampled else {}
    note = ""
    if not candidates:
        if column.category in TEXT_CATEGORIES | {"binary"} and sampled == 0:
            note = "no values to inspect" if column.category != "binary" else "binary values are not inspected"
            return ColumnFinding(table.key, column.name, column.type_name, column.category, "unknown", 0.3,
                                 None, evidence, sampled, note, stats=stats, context=context.role)
        confidence = 0.9 if column.category not in TEXT_CATEGORIES else min(0.95, 0.5 + sampled / 250)
        if analysis.free_text:
            note = "free text; no personal data found in the sample"
        elif analysis.stats is not None and analysis.stats.categorical and any(
                shares.get(k, 0) >= HINTED_NAME_SHARE for k in NAME_KINDS):
            note = "categorical values; name-like words are not names here"
        return ColumnFinding(table.key, column.name, column.type_name, column.category, "non_personal",
                             round(confidence, 2), None, evidence, sampled, note, shares, stats, context.role)
    best = max(candidates, key=_Candidate.key)
    if best.tier == 1:
        note = "column name only; the sampled values did not confirm it" if sampled else "column name only"
    return ColumnFinding(table.key, column.name, column.type_name, column.category, KINDS[best.kind].classification,
                         round(best.confidence, 2), best.kind, evidence, sampled, note, shares, stats, context.role)


def _name_share(analysis: Analysis, candidate: _Candidate) -> float:
    names = analysis.names
    if candidate.kind == "name_affix":
        return names.get("affix", 0.0)
    if candidate.kind == "full_name":
        return max(names.get("dict_full", 0.0), names.get("shape_full", 0.0) if candidate.tier == 3 else 0.0)
    key = "dict_first" if candidate.kind == "first_name" else "dict_last"
    return max(names.get(key, 0.0), names.get("shape_part", 0.0) if candidate.tier == 3 else 0.0)


def _identifier_like(analysis: Analysis, reading: vocabulary.NameReading, column: ColumnInfo, table: TableInfo,
                     context: TableContext) -> bool:
    """A unique, varied code in a person's record whose name says id / number / code (not the table's own key)."""
    stats = analysis.stats
    if stats is None or not context.person or not reading.identifier_word or column.category not in TEXT_CATEGORIES:
        return False
    if _in_key(table, column) and column.name not in context.keys:
        return False  # the table's own key (a text key a name calls a member id is judged by its values)
    return stats.identifier_like and stats.digit_share >= 0.5


def _value_evidence(kind: str, share: float, sampled: int) -> dict[str, Any]:
    return {"source": "values", "pattern": kind, "share": round(share, 3), "matched": round(share * sampled),
            "sampled": sampled}



def scan_table(conn: Connection, table: TableInfo, sample_rows: int = DEFAULT_SAMPLE_ROWS,
               seed: int = 0, context: TableContext | None = None) -> tuple[list[ColumnFinding], int]:
    """Findings for every column of ``table`` and the number of rows sampled (``context``: see table_contexts)."""
    text_columns = [c.name for c in table.columns.values() if c.category in TEXT_CATEGORIES]
    sample = sample_table(conn, table, text_columns, sample_rows, seed) if text_columns and sample_rows else None
    context = context or table_context(table)
    findings = [classify_column(table, column, sample[column.name] if sample is not None and column.name in sample
                                else None, context.address, context) for column in table.columns.values()]
    return findings, 0 if sample is None else len(sample)


def scan_source(conn: Connection, model: SchemaModel, *, tables: Iterable[str] | None = None,
                sample_rows: int = DEFAULT_SAMPLE_ROWS, seed: int = 0) -> ScanResult:
    """Classify every column of ``tables`` (default: all) from names and a seeded sample of values."""
    started = time.monotonic()
    wanted = list(tables) if tables is not None else list(model.tables)
    result = ScanResult({}, sample_rows, seed)
    contexts = table_contexts(model, wanted)
    for key in wanted:
        table = model.tables[key]
        findings, rows = scan_table(conn, table, sample_rows, seed, contexts[key])
        result.sampled_tables[key] = rows
        for finding in findings:
            result.findings[(key, finding.column)] = finding
    result.seconds = time.monotonic() - started
    return result


@dataclass
class ScanOutcome:
    """A scan of a project's source, with the current treatment of each column when an environment was named."""

    result: ScanResult
    model: SchemaModel
    source: str
    environment: str | None = None
    rules_path: str | None = None
    treatment: dict[tuple[str, str], str] = field(default_factory=dict)

    def gaps(self) -> list[ColumnFinding]:
        """Personal columns the environment's rules keep without a reason or do not cover."""
        if self.environment is None:
            return []
        return [f for slot, f in self.result.findings.items()
                if f.personal and self.treatment.get(slot) in ("keep", "keep (table)", "no rule")]

    def to_dict(self) -> dict[str, Any]:
        data = self.result.to_dict()
        data.update(source=self.source, environment=self.environment, rules=self.rules_path)
        if self.environment is not None:
            for column in data["columns"]:
                column["rule"] = self.treatment.get((column["table"], column["column"]))
            data["gaps"] = [f"{f.table}.{f.column}" for f in self.gaps()]
        return data


def current_treatment(policy: Policy, model: SchemaModel) -> dict[tuple[str, str], str]:
    """How a rules file treats each column, as written (no schema checks): for comparing with the scan."""
    out: dict[tuple[str, str], str] = {}
    rules = {model.resolve(name) or name: rule for name, rule in policy.tables.items()}
    for key, table in model.tables.items():
        rule = rules.get(key)
        for column in table.columns:
            if rule is None:
                out[(key, column)] = "no rule"
            elif rule.action != "mask":
                out[(key, column)] = f"{rule.action} (table)"
            elif column in rule.columns:
                col = rule.columns[column]
                out[(key, column)] = (f"keep ({col.reason})" if col.reason else "keep") if col.is_keep \
                    else col.describe()
            else:
                out[(key, column)] = "no rule"
    return out


def scan_project(project: Project, environment: str | None = None, *, sample_rows: int = DEFAULT_SAMPLE_ROWS,
                 seed: int = 0) -> ScanOutcome:
    """Scan the project's source in a read-only snapshot (with ``environment``: its virtual keys and rules)."""
    env = project.environment(environment) if environment else None
    source = make_engine(project.source_url, read_only=True, role="source database")
    try:
        with snapshot(source) as conn:
            model = reflect(conn, project.source_schemas, env.subset if env else None, project.schemas_origin)
            result = scan_source(conn, model, sample_rows=sample_rows, seed=seed)
    finally:
        source.dispose()
    outcome = ScanOutcome(result, model, redact_url(project.source_url), env.name if env else None)
    if env is not None and env.rules is not None and env.rules.is_file():
        policy = load_policy(env.rules)
        outcome.rules_path = str(env.rules)
        outcome.treatment = current_treatment(policy, model)
    return outcome
