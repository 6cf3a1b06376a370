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
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import SourceError
from datastage.identify import reference as pii
from datastage.identify.kinds import CLASSIFICATIONS, PERSONAL, Classification
from datastage.identify.values import contains_masks, detect, free_text, share
from datastage.mask.policy import Policy, load_policy
from datastage.settings import Project
from datastage.source.db import db_error_message, dialect_of, make_engine, redact_url, snapshot
from datastage.source.schema import ColumnInfo, SchemaModel, TableInfo, reflect
from datastage.source.values import canonical_text, rows_to_frame
from datastage.subset.extract import raw_column

DEFAULT_SAMPLE_ROWS = 1000
SCAN_FACTOR = 20  # rows read at most per table: SCAN_FACTOR * sample_rows (then a seeded sample of them)
TEXT_CATEGORIES = frozenset({"text", "json", "other", "array"})
FULL_MATCH_SHARE = 0.5  # share of sampled values a whole-value pattern needs
NAME_SHARE = 0.6


@dataclass(frozen=True)
class Kind:
    """One kind of personal data: how it is classified and what its column names look like."""

    name: str
    classification: Classification
    label: str
    name_pattern: str | None = None
    categories: frozenset[str] | None = None  # column types the name hint applies to (None: any)
    weak_name: bool = False  # a name hint that needs the values to agree


_TEXT = frozenset({"text", "json", "other"})
_DATES = frozenset({"date", "datetime", "text"})
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("email", "direct_identifier", "e-mail address",
         r"(^|_)(e_?mail|mail)(_?addr(ess)?)?$|courriel|correo|^mail_?to$", _TEXT),
    Kind("phone", "direct_identifier", "phone number",
         r"phone|(^|_)tel(e?fon[oe]?)?($|_)|mobile|(^|_)cell(ular)?($|_)|(^|_)fax($|_)|handy|msisdn",
         frozenset({"text", "integer", "other"})),
    Kind("first_name", "direct_identifier", "given name",
         r"first_?name|given_?name|fore_?name|vorname|pr[eé]nom|^f_?name$|^nombre$", _TEXT),
    Kind("last_name", "direct_identifier", "family name",
         r"last_?name|sur_?name|family_?name|nach_?name|apellido|^l_?name$|^nom$", _TEXT),
    Kind("full_name", "direct_identifier", "person's name",
         r"full_?name|person_?name|contact_?name|card_?holder|holder_?name|customer_?name|display_?name"
         r"|employee_?name|patient_?name|recipient(_?name)?$|^name$", _TEXT),
    Kind("username", "direct_identifier", "user name",
         r"user_?name|(^|_)login($|_?name)|screen_?name|nick_?name|(^|_)handle$", _TEXT),
    Kind("street_address", "direct_identifier", "street address",
         r"(^|_)(street|addr(ess)?\d?|address_?line_?\d?|line_?[12]|stra(ss|ß)e|rue|calle)($|_)", _TEXT),
    Kind("city", "quasi_identifier", "city", r"(^|_)(city|town|ort|ville|ciudad|locality|municipality)($|_)",
         _TEXT),
    Kind("postcode", "quasi_identifier", "postcode",
         r"post_?code|postal_?code|(^|_)zip(_?code)?($|_)|(^|_)plz($|_)|postleitzahl|(^|_)cap($|_)",
         frozenset({"text", "integer", "other"})),
    Kind("date_of_birth", "quasi_identifier", "date of birth",
         r"birth|(^|_)dob($|_)|(^|_)born|geburt|naissance|nacimiento", frozenset({"date", "datetime", "text"})),
    Kind("gender", "quasi_identifier", "gender", r"(^|_)(gender|sex|geschlecht|genre)($|_)", None),
    Kind("age", "quasi_identifier", "age", r"(^|_)age($|_?years)", frozenset({"integer", "decimal", "float"})),
    Kind("card_number", "direct_identifier", "payment card number",
         r"card_?(number|no|num|nr)|(^|_)cc_?(number|num|no)|(^|_)pan($|_)|credit_?card", None),
    Kind("iban", "direct_identifier", "bank account (IBAN)",
         r"(^|_)iban($|_)|bank_?account|account_?number|(^|_)bic($|_)", None),
    Kind("national_id", "direct_identifier", "national identification number",
         r"(^|_)ssn($|_)|social_?security|national_?id|(^|_)nino($|_)|ni_?number|passport|tax_?id|(^|_)tin($|_)"
         r"|(^|_)bsn($|_)|steuer_?id|personal_?number|id_?card", None),
    Kind("ip_address", "direct_identifier", "IP address",
         r"(^|_)ip(_?addr(ess)?)?($|_)|remote_?addr|client_?ip|(^|_)ipv[46]", None),
    Kind("secret", "sensitive", "password or secret",
         r"pass_?(word|wd)|(^|_)pwd($|_)|secret|(^|_)token($|_)|api_?key|private_?key|(^|_)salt($|_)"
         r"|password_?hash|(^|_)otp($|_)|(^|_)pin($|_)|credential", None),
    Kind("special_category", "sensitive", "special-category or financial data",
         r"salary|income|wage|health|diagnos|medical|religio|ethnic|(^|_)race($|_)|sexual|politic|union_?member"
         r"|disabilit|criminal|biometric|blood_?type|allerg", None),
    Kind("photo", "direct_identifier", "photo of a person",
         r"photo|picture|avatar|portrait|selfie|(^|_)face($|_)", None),
    Kind("free_text", "direct_identifier", "free text containing personal data", None),
)}
PRIORITY = {"direct_identifier": 3, "sensitive": 2, "quasi_identifier": 1, "non_personal": 0, "unknown": 0}
TEXT_KINDS = ("email", "phone", "card_number", "iban", "national_id", "ip_address", "full_name")


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

    @property
    def personal(self) -> bool:
        return self.classification in PERSONAL

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
        elif any(e["source"] == "name" for e in self.evidence):
            text += " (column name)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "column": self.column, "type": self.data_type,
                "classification": self.classification, "confidence": round(self.confidence, 2),
                "kind": self.kind, "evidence": self.evidence, "sampled": self.sampled, "note": self.note}


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

def _normalize_name(name: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"[^0-9a-zA-Zßäöüéèà]+", "_", snake).strip("_").lower()


def name_hints(column: ColumnInfo) -> list[str]:
    """Kinds whose column-name pattern matches (respecting the column type)."""
    name = _normalize_name(column.name)
    hits = []
    for kind in KINDS.values():
        if kind.name_pattern is None:
            continue
        if kind.categories is not None and column.category not in kind.categories:
            continue
        if re.search(kind.name_pattern, name):
            hits.append(kind.name)
    return hits


def _value_text(series: pd.Series) -> pd.Series:
    text = pd.Series(canonical_text(series), dtype=object)
    text = text[text.notna()].astype(str).str.strip()
    return text[text != ""].reset_index(drop=True)


def value_shares(values: pd.Series, hints: Iterable[str], category: str) -> tuple[dict[str, float], bool]:
    """Share of sampled values matching each kind (whole values, or contained in free text)."""
    hints = set(hints)
    shares: dict[str, float] = {}
    if values.empty:
        return shares, False
    shares.update({kind: share(mask) for kind, mask in detect(values, hints).items()})
    folded = values.str.lower()
    distinct = folded.nunique()
    if 2 <= distinct <= 6 or (distinct == 1 and "gender" in hints):
        # A constant column says nothing about gender unless its name does.
        shares["gender"] = share(folded.isin(pii.GENDER_VALUES).to_numpy())
    free = category == "json" or free_text(values)
    if free:
        for kind, mask in contains_masks(values).items():
            shares[f"free_text:{kind}"] = share(mask)
    return {k: round(v, 3) for k, v in shares.items() if v > 0}, free


def classify_column(table: TableInfo, column: ColumnInfo, sample: pd.Series | None,
                    address_context: bool = False) -> ColumnFinding:
    """Classify one column from its name, its type and (if text-like) its sampled values."""
    hints = name_hints(column)
    if "street_address" in hints and {"ip_address", "email"} & set(hints):
        hints.remove("street_address")  # ip_address, email_address
    if "city" in hints and not address_context:
        hints.remove("city")  # a city on its own is a lookup value; in an address record it narrows people down
    values = _value_text(sample) if sample is not None else pd.Series([], dtype=object)
    sampled = len(values)
    shares, free = value_shares(values, hints, column.category) if sampled else ({}, False)
    name_weak = {"full_name"} if _normalize_name(column.name) == "name" else set()
    evidence: list[dict[str, Any]] = [{"source": "name", "pattern": h} for h in hints if h not in name_weak]
    candidates: list[tuple[str, float]] = []  # (kind, confidence)
    for kind, fraction in shares.items():
        base = kind.split(":", 1)[0]
        if base == "free_text":
            inner = kind.split(":", 1)[1]
            strong = inner in ("email", "card_number", "iban", "national_id")
            matched = round(fraction * sampled)
            if (strong and matched >= 1) or (fraction >= 0.02 and matched >= 2):
                evidence.append(_value_evidence(kind, fraction, sampled))
                candidates.append(("free_text", min(0.99, 0.6 + 2 * fraction)))
            continue
        needed = NAME_SHARE if kind in ("first_name", "last_name", "full_name") else FULL_MATCH_SHARE
        if kind == "gender":
            needed = 0.9 if "gender" not in hints else 0.5
        if fraction >= needed or (kind in hints and fraction >= 0.2):
            evidence.append(_value_evidence(kind, fraction, sampled))
            candidates.append((kind, min(0.99, 0.55 + 0.4 * fraction + (0.05 if kind in hints else 0))))
    if any(k != "free_text" for k, _ in candidates):
        candidates = [kc for kc in candidates if kc[0] != "free_text"]  # whole values say more than contents
    confirmed = {k for k, _ in candidates}
    if confirmed & name_weak:
        evidence.insert(0, {"source": "name", "pattern": "full_name"})
    for hint in hints:
        if hint in confirmed or hint in name_weak:
            continue
        if hint in ("first_name", "last_name", "full_name") and confirmed & {"first_name", "last_name", "full_name"}:
            continue
        candidates.append((hint, 0.7 if not sampled else 0.55))
    note = ""
    if not candidates:
        if column.category in TEXT_CATEGORIES | {"binary"} and sampled == 0:
            classification: Classification = "unknown"
            note = "no values to inspect" if column.category != "binary" else "binary values are not inspected"
            return ColumnFinding(table.key, column.name, column.type_name, column.category, classification, 0.3,
                                 None, evidence, sampled, note)
        confidence = 0.9 if column.category not in TEXT_CATEGORIES else min(0.95, 0.5 + sampled / 250)
        if free:
            note = "free text; no personal data found in the sample"
        return ColumnFinding(table.key, column.name, column.type_name, column.category, "non_personal",
                             round(confidence, 2), None, evidence, sampled, note, shares)
    candidates.sort(key=lambda kc: (PRIORITY[KINDS[kc[0]].classification], kc[1], kc[0] != "phone"), reverse=True)
    kind, confidence = candidates[0]
    if kind not in confirmed:
        note = "column name only; the sampled values did not confirm it" if sampled else "column name only"
    return ColumnFinding(table.key, column.name, column.type_name, column.category, KINDS[kind].classification,
                         round(confidence, 2), kind, evidence, sampled, note, shares)


def _value_evidence(kind: str, share: float, sampled: int) -> dict[str, Any]:
    return {"source": "values", "pattern": kind, "share": round(share, 3), "matched": round(share * sampled),
            "sampled": sampled}


def _address_context(table: TableInfo) -> bool:
    """Whether the table looks like address records (a street or postcode column)."""
    for column in table.columns.values():
        hints = name_hints(column)
        if "street_address" in hints or "postcode" in hints:
            return True
    return False


def scan_table(conn: Connection, table: TableInfo, sample_rows: int = DEFAULT_SAMPLE_ROWS,
               seed: int = 0) -> tuple[list[ColumnFinding], int]:
    """Findings for every column of ``table`` and the number of rows sampled."""
    text_columns = [c.name for c in table.columns.values() if c.category in TEXT_CATEGORIES]
    sample = sample_table(conn, table, text_columns, sample_rows, seed) if text_columns and sample_rows else None
    context = _address_context(table)
    findings = [classify_column(table, column, sample[column.name] if sample is not None and column.name in sample
                                else None, context) for column in table.columns.values()]
    return findings, 0 if sample is None else len(sample)


def scan_source(conn: Connection, model: SchemaModel, *, tables: Iterable[str] | None = None,
                sample_rows: int = DEFAULT_SAMPLE_ROWS, seed: int = 0) -> ScanResult:
    """Classify every column of ``tables`` (default: all) from names and a seeded sample of values."""
    started = time.monotonic()
    wanted = list(tables) if tables is not None else list(model.tables)
    result = ScanResult({}, sample_rows, seed)
    for key in wanted:
        table = model.tables[key]
        findings, rows = scan_table(conn, table, sample_rows, seed)
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
            model = reflect(conn, project.source_schemas, env.subset if env else None)
            result = scan_source(conn, model, sample_rows=sample_rows, seed=seed)
    finally:
        source.dispose()
    outcome = ScanOutcome(result, model, redact_url(project.source_url), env.name if env else None)
    if env is not None and env.rules is not None and env.rules.is_file():
        policy = load_policy(env.rules)
        outcome.rules_path = str(env.rules)
        outcome.treatment = current_treatment(policy, model)
    return outcome
