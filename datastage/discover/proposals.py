"""A proposed rules file from a scan: a rule for every column, each with a comment saying why.

The proposal is a starting point for review, not a policy to trust blindly: personal
columns get the masking strategy of their kind (:mod:`datastage.identify.kinds`) where it
fits their type, values, length and keys, the names of one person in a row ``person.*``
rules that follow the row's e-mail; everything else is kept; columns that reference a
masked key inherit its rule automatically (noted in a comment). Where a person has to
decide, the rule says so with ``REVIEW`` in its reason, which ``rules check`` and
``refresh`` refuse until it is edited. Every other rule passes the rules checker against
the scanned schema.

Example (the rules of a one-table source, below a header that says where and when it was scanned):
    >>> import sqlite3, tempfile
    >>> from datastage.discover.scan import scan_source
    >>> from datastage.source.db import make_engine, snapshot
    >>> from datastage.source.schema import reflect
    >>> path = f"{tempfile.mkdtemp()}/prod.db"
    >>> _ = sqlite3.connect(path).executescript(
    ...     "CREATE TABLE customer (id INTEGER PRIMARY KEY, first_name TEXT, contact TEXT UNIQUE);"
    ...     "INSERT INTO customer (first_name, contact) VALUES ('Ann', 'ann@example.com'), "
    ...     "('Bob', 'bob@example.org'), ('Eve', 'eve@example.net');")
    >>> with snapshot(make_engine(f"sqlite:///{path}", read_only=True)) as conn:
    ...     model = reflect(conn)
    ...     text = propose_rules(scan_source(conn, model), model, source="sqlite:///prod.db")
    >>> rules = text.split("tables:\\n")[1].splitlines()
    >>> for line in rules: print(line.split("   #")[0])  # the rules; the names follow the row's e-mail
      customer:
        id: keep
        first_name: person.first_name
        contact: {strategy: email, unique: true}
    >>> print(rules[-1].split("   # ")[1])  # and why
    direct_identifier: e-mail address in 100% of 3 sampled values [HIPAA F]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from datastage.discover.scan import ColumnFinding, ScanResult
from datastage.errors import UsageError
from datastage.identify.kinds import GDPR_CATEGORIES, KINDS, IdentifierKind
from datastage.mask.fakepool import fake_pool
from datastage.mask.policy import ColumnRule
from datastage.mask.registry import get_strategy
from datastage.mask.resolve import rule_problem
from datastage.mask.strategies.basic import local_part_pool
from datastage.results import utc_now
from datastage.source.schema import ColumnInfo, ForeignKey, SchemaModel, TableInfo, propagate_along_keys

NUMERIC = frozenset({"integer", "decimal", "float"})
DATE_CATEGORIES = frozenset({"date", "datetime"})
DATE_KINDS = frozenset({"date_of_birth", "event_date"})
PERSON_KINDS = frozenset({"first_name", "last_name", "full_name", "email", "username"})
NUMERIC_BUCKETS = {"postcode": 100, "age": 5}  # generalize: numbers rounded down to a multiple of this
ISO_DATE_SHARES = ("iso_date", "date")  # value_kinds a scan gives for text whose values are ISO-8601 dates
ALL_VALUES = 0.999  # share of sampled values a date strategy on text needs (any other value would stay as it is)
# A kind name of earlier scans: (kind for number columns, kind for others), named as the scan labels it.
LEGACY_KINDS = {"special_category": ("financial", "health_condition", "special-category or financial data")}


@dataclass
class ProposedRule:
    """A rule as written in YAML (``None``: no rule, inherited from a referenced key) and why."""

    text: str | None
    why: str
    masked: bool
    review: bool = False  # the rule holds a REVIEW marker: a person has to decide it


# -- writing YAML -------------------------------------------------------------------------
# Every name and value is written by PyYAML's emitter, which quotes whatever YAML would read
# as something else (``no``, ``null``, ``~``, ``010``, ``a: b``, ``#x``, leading blanks, ...).
# Strings with characters that do not print (line breaks, tabs, U+2028) are double-quoted
# with escapes, so every entry stays on its one line; so are strings that a YAML 1.2 reader
# would take for a number, although PyYAML would not (``1e3``).

_NO_WRAP = 1 << 30
_YAML12_SPECIAL = re.compile(r"[-+]?\.?[0-9]|[-+]?\.(?:inf|Inf|INF)$|\.(?:nan|NaN|NAN)$"
                             r"|(?:null|Null|NULL|true|True|TRUE|false|False|FALSE)$")
_SIMPLE_KEY_CHARS = 1000  # YAML allows an implicit key of at most 1024 characters; longer ones use '? '


def _emit(value: object, style: str | None = None) -> str:
    text = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=_NO_WRAP,
                          default_style=style)
    return text.strip()[1:-1]  # the one item of the flow sequence "[...]"


def yaml_scalar(value: str | int | float | bool | None) -> str:
    r"""``value`` as one YAML scalar on one line that reads back as exactly ``value``.

    >>> [yaml_scalar(v) for v in ["email", "no", "a: b", "010", "new\nline", True, 5]]
    ['email', "'no'", "'a: b'", "'010'", '"new\\nline"', 'true', '5']
    """
    if isinstance(value, str):
        value = str(value)  # names reflected by SQLAlchemy are str subclasses the emitter does not know
    text = _emit(value)
    if isinstance(value, str) and (not value.isprintable() or "\n" in text
                                   or (text == value and _YAML12_SPECIAL.match(value))):
        text = _emit(value, '"')
    return text


def yaml_flow(value: object) -> str:
    """A value (mapping, list or scalar) in YAML flow style on one line, every scalar by :func:`yaml_scalar`."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_scalar(k)}: {yaml_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_flow(v) for v in value) + "]"
    return yaml_scalar(value)  # type: ignore[arg-type]


def _comment(text: str) -> str:
    """Text for a ``#`` comment: anything that does not print (a line break would end the comment) becomes a blank."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _entry(indent: str, key: str, value: str, why: str) -> list[str]:
    """The line(s) of ``key: value   # why`` in a block mapping (an over-long key written as ``? key``)."""
    written = yaml_scalar(key)
    if len(written) > _SIMPLE_KEY_CHARS:
        return [f"{indent}? {written}", f"{indent}: {value}   # {_comment(why)}"]
    return [f"{indent}{written}: {value}   # {_comment(why)}"]


def _flow(strategy: str, **params: object) -> str:
    if not params:
        return yaml_scalar(strategy)
    return yaml_flow({"strategy": strategy, **params})


def _keep(reason: str | None = None) -> str:
    return "keep" if reason is None else yaml_flow({"strategy": "keep", "reason": reason})


def _in_key(table: TableInfo, column: str) -> bool:
    return any(column in key for key in [table.primary_key, *table.unique_keys] if key)


# -- choosing a rule -----------------------------------------------------------------------
# The kind's strategy (``IdentifierKind.text_strategy``, ``numeric_strategy`` for number columns)
# is taken only where it fits the column: the strategy takes the column's type, its values are
# of the kind the strategy reads (a date strategy only on dates, or on text whose sampled values
# are all ISO dates), the output fits the column's length, and a key gets a deterministic,
# unique-capable strategy. Every candidate is checked as ``rules check`` checks it. Otherwise
# the rule falls back to ``tokenize`` (format-keeping, bijective), to ``null`` (nullable
# columns), or to a rule a person has to decide, marked REVIEW.

@dataclass
class _Choice:
    strategy: str
    params: dict[str, object]
    note: str = ""


def identifier_kind(finding: ColumnFinding) -> IdentifierKind | None:
    """The taxonomy entry of the finding's kind (a kind name of earlier scans mapped to today's).

    >>> from datastage.discover.scan import ColumnFinding
    >>> [identifier_kind(ColumnFinding("t", "c", "", category, "sensitive", 0.7, "special_category")).name
    ...  for category in ("decimal", "text")]
    ['financial', 'health_condition']
    """
    if finding.kind in LEGACY_KINDS:
        numeric, other, label = LEGACY_KINDS[finding.kind]
        return replace(KINDS[numeric if finding.category in NUMERIC else other], label=label)
    return KINDS.get(finding.kind) if finding.kind else None


def _iso_dates(finding: ColumnFinding) -> bool:
    """Whether (nearly) every sampled value of a text column is an ISO-8601 date, as the scan measured it."""
    return finding.sampled > 0 and any(finding.value_kinds.get(k, 0) >= ALL_VALUES for k in ISO_DATE_SHARES)


def _params(strategy: str, kind: IdentifierKind, column: ColumnInfo,
            finding: ColumnFinding) -> dict[str, object] | str:
    """Parameters of ``strategy`` for this column, or why the strategy cannot mask its values."""
    category = column.category
    dates = category in DATE_CATEGORIES or (category == "text" and _iso_dates(finding))
    not_dates = f"{strategy} reads dates, and the sampled values are not all ISO dates"
    if strategy == "generalize":
        if kind.name in DATE_KINDS:
            return {"to": "year"} if dates else not_dates
        if category == "text":
            return {"keep": 2} if kind.name == "postcode" else "generalize would leave these text values as they are"
        if category in NUMERIC:
            return {"bucket": NUMERIC_BUCKETS.get(kind.name, 10)}
        return f"generalize does not coarsen {category} values"
    if strategy == "date_shift":
        return {} if dates else not_dates
    if strategy == "noise":
        return {"absolute": 0.01} if kind.name == "geo_coordinates" else {"relative": 0.1}
    if strategy == "hash":
        length = min(column.length or 32, 32)
        return {"length": length} if length >= 8 else f"a hash needs 8 characters and the column holds {length}"
    return {}


def _preferred(kind: IdentifierKind, column: ColumnInfo, finding: ColumnFinding) -> _Choice | str | None:
    """The kind's own strategy for this column's type; why it cannot mask these values; or None when the
    kind names no strategy for the type."""
    name = kind.numeric_strategy if column.category in NUMERIC else kind.text_strategy
    if name is None:
        return None
    if get_strategy(name) is None:  # e.g. ``scrub`` in an installation without it
        if kind.name == "free_text" and column.category == "text":
            return _Choice("fake.sentence" if column.length is not None and column.length < 200 else "fake.paragraph",
                           {}, f"{name} is not installed, so the text is replaced whole")
        return f"{name} is not installed"
    params = _params(name, kind, column, finding)
    return params if isinstance(params, str) else _Choice(name, params)


def _max_length(choice: _Choice, locale: str) -> int | None:
    """The most characters the strategy writes (None: never more than the value it replaces, or unbounded)."""
    name, params = choice.strategy, choice.params
    if name == "email":
        firsts, lasts = local_part_pool(locale, "first_name"), local_part_pool(locale, "last_name")
        return _longest(firsts) + _longest(lasts) + 8 + 3 + len(str(params.get("mail_domain") or "example.com"))
    if name in ("person.first_name", "person.last_name", "person.full_name"):
        first, last = _longest(fake_pool(locale, "first_name")), _longest(fake_pool(locale, "last_name"))
        return {"person.first_name": first, "person.last_name": last}.get(name, first + 1 + last)
    if name == "person.username":
        return _longest(local_part_pool(locale, "first_name")) + _longest(local_part_pool(locale, "last_name")) + 3
    if name.startswith("fake."):
        return _longest(fake_pool(locale, name.split(".", 1)[1]))
    if name == "hash":
        return int(str(params.get("length") or 16)) + len(str(params.get("prefix") or ""))
    return None


def _longest(pool: Iterable[object]) -> int:
    return max((len(str(v)) for v in pool), default=0)


def _problem(choice: _Choice, column: ColumnInfo, table: TableInfo, locale: str) -> str | None:
    """Why ``choice`` cannot be the rule of this column (what ``rules check`` would say), or None."""
    spec = get_strategy(choice.strategy)
    if spec is None:
        return f"no strategy {choice.strategy}"
    for _param, written in spec.check_params(choice.params):
        return written
    rule = ColumnRule(table.key, column.name, choice.strategy, params=spec.with_defaults(choice.params),
                      unique=_in_key(table, column.name) and spec.unique is not None, locale=locale, spec=spec,
                      column_info=column, table_info=table)
    problem = rule_problem(rule, table, column)
    if problem:
        return problem
    if column.category == "text" and column.length:
        longest = _max_length(choice, locale)
        if longest is not None and longest > column.length:
            return f"{choice.strategy} writes up to {longest} characters and the column holds {column.length}"
    return None


def describe_finding(finding: ColumnFinding) -> str:
    """One line for a comment: the classification, the kind's label and the strongest evidence.

    >>> from datastage.discover.scan import ColumnFinding
    >>> describe_finding(ColumnFinding("p", "dl", "TEXT", "text", "direct_identifier", 0.9, "drivers_licence",
    ...                                [{"source": "name", "pattern": "drivers_licence"}]))
    "direct_identifier: driver's licence number (column name)"
    """
    kind = identifier_kind(finding)
    if kind is None or finding.kind not in KINDS:
        return finding.describe()
    text = f"{finding.classification}: {kind.label}"
    values = [e for e in finding.evidence if e.get("source") == "values"
              and (e.get("pattern") == finding.kind or str(e.get("pattern")).startswith(f"{finding.kind}:"))]
    if values:
        best = max(values, key=lambda item: item.get("share") or 0)
        inner = str(best["pattern"]).split(":", 1)[1] if ":" in str(best["pattern"]) else None
        what = f" ({KINDS[inner].label})" if inner in KINDS else ""
        text += f"{what} in {best.get('share') or 0:.0%} of {best.get('sampled')} sampled values"
    elif any(e.get("source") == "name" for e in finding.evidence):
        text += " (column name)"
    return text


def _taxonomy(kind: IdentifierKind) -> str:
    """Short taxonomy tags for a comment: ``HIPAA F``, ``GDPR data concerning health (art. 9)``."""
    tags = [f"HIPAA {kind.hipaa}"] if kind.hipaa else []
    return "; ".join(tags + ([f"GDPR {GDPR_CATEGORIES[kind.gdpr]}"] if kind.gdpr else []))


def _label(kind: IdentifierKind | None, finding: ColumnFinding) -> str:
    return kind.label if kind else finding.classification.replace("_", " ")


def choose_rule(finding: ColumnFinding, column: ColumnInfo, table: TableInfo,
                locale: str = "en_US") -> _Choice | str:
    """The rule for a personal column, or the text of a REVIEW marker when a person has to decide.

    >>> import sqlalchemy as sa
    >>> from datastage.discover.scan import ColumnFinding
    >>> from datastage.source.schema import reflect
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE p (id INTEGER PRIMARY KEY, licence TEXT UNIQUE, born TEXT)")
    ...     table = reflect(conn).tables["p"]
    >>> choose_rule(ColumnFinding("p", "licence", "TEXT", "text", "direct_identifier", 0.9, "drivers_licence"),
    ...             table.columns["licence"], table).strategy
    'tokenize'
    >>> choose_rule(ColumnFinding("p", "born", "TEXT", "text", "quasi_identifier", 0.9, "date_of_birth"),
    ...             table.columns["born"], table).note  # no date strategy on text that holds no dates
    'generalize reads dates, and the sampled values are not all ISO dates'
    """
    kind = identifier_kind(finding)
    label = _label(kind, finding)
    preferred = _preferred(kind, column, finding) if kind else None
    classification = kind.classification if kind else finding.classification
    named = None if kind is None else kind.numeric_strategy if column.category in NUMERIC else kind.text_strategy
    problem = _problem(preferred, column, table, locale) if isinstance(preferred, _Choice) else None
    if isinstance(preferred, _Choice) and problem is None:
        return preferred
    if kind is not None and kind.gdpr:  # special-category data: removed, or a person decides
        category = f"GDPR {GDPR_CATEGORIES[kind.gdpr]}" if finding.kind in KINDS else "GDPR art. 9"
        if column.nullable:
            return _Choice("null", {})
        return (f"REVIEW: {label} is special-category data ({category}) and NOT NULL, so "
                "it cannot be set to NULL: choose a masking strategy, or write why it is kept")
    if classification == "quasi_identifier" and named is None:
        return (f"REVIEW: {label} kept as is: declare it in quasi_identifiers to measure the re-identification "
                "risk (or mask it), then write why it is kept")
    if isinstance(preferred, _Choice):
        note = f"not {preferred.strategy}: {problem}"
    else:
        note = preferred or f"no masking strategy is named for {label}"
    for fallback in (_Choice("tokenize", {}), _Choice("null", {})):
        if fallback.strategy == "null" and not column.nullable:
            continue
        if _problem(fallback, column, table, locale) is None:
            return _Choice(fallback.strategy, fallback.params, note)
    return f"REVIEW: {label}: no masking strategy fits ({note}); choose one, or write why it is kept"


# -- one person per row ----------------------------------------------------------------------

_NAME_PART = re.compile(r"(first_?name|given_?name|fore_?name|f_?name|first|last_?name|sur_?name|family_?name"
                        r"|l_?name|last|full_?name|vor_?name|nach_?name|pr[eé]_?nom|nombre|apellidos?|voornaam"
                        r"|achternaam|cognome|nome|nom|name)$", re.IGNORECASE)


def _person_prefix(column: str) -> str:
    """The column name without its name-part suffix: the name columns of one person share it.

    >>> [_person_prefix(c) for c in ("first_name", "LAST", "maiden", "emergency_contact_first_name", "Vorname")]
    ['', '', 'maiden', 'emergency_contact', '']
    """
    return _NAME_PART.sub("", column.lower()).rstrip("_ ")


def _people(person: dict[str, _Choice]) -> list[list[str]]:
    """The ``person.*`` columns of one row grouped by person, the row's own person first.

    With columns of a bare name part (``first``, ``last_name``), those are the row's person and
    every other name column (``maiden``, ``emergency_contact_first_name``) names another person,
    grouped by name prefix; otherwise the row's person takes one column per name part in table
    order, and a part that repeats is another person.
    """
    order = list(person)
    if any(_person_prefix(c) == "" for c in order):
        main = [c for c in order if _person_prefix(c) == "" or person[c].strategy == "person.username"]
    else:
        parts: set[str] = set()
        main = []
        for column in order:
            if person[column].strategy not in parts:
                parts.add(person[column].strategy)
                main.append(column)
    others: dict[str, list[str]] = {}
    for column in order:
        if column not in main:
            others.setdefault(_person_prefix(column) or column, []).append(column)
    return [main, *others.values()]


def _persons(table: TableInfo, choices: dict[str, _Choice | str]) -> None:
    """Give ``person.*`` rules of one table their ``by`` where the default (the table's e-mail rule, else
    its primary key) would not name the right person: another person in the row (a maiden name, an
    emergency contact) is named by its own name columns; a table with neither e-mail rule nor primary
    key names its person by a unique key or by the person's names."""
    person = {c: ch for c, ch in choices.items() if isinstance(ch, _Choice) and ch.strategy.startswith("person.")}
    if not person:
        return
    has_email = any(isinstance(ch, _Choice) and ch.strategy == "email" for ch in choices.values())
    main, *others = _people(person)
    if not has_email and not table.primary_key:
        unique = next((list(k) for k in table.unique_keys if k), None)
        by = unique or [c for c in main if person[c].strategy != "person.username"] or main
        for column in main:
            person[column].params["by"] = by[0] if len(by) == 1 else list(by)
            person[column].note = f"no e-mail rule or primary key: the person is named by {', '.join(by)}"
    for columns in others:
        for column in columns:
            person[column].params["by"] = columns[0] if len(columns) == 1 else list(columns)
            person[column].note = f"another person than the row's, named by {', '.join(columns)}"


def _date_entities(table: TableInfo, choices: dict[str, _Choice | str], result: ScanResult,
                   model: SchemaModel | None) -> None:
    """``date_shift`` in a table without people of its own shifts every date of one person alike: ``by``
    the foreign key to the table that holds the person (e.g. ``orders.ordered_at`` by ``customer_id``)."""
    dates = [ch for ch in choices.values() if isinstance(ch, _Choice) and ch.strategy == "date_shift"]
    if not dates or _holds_people(table, result):
        return
    fk = next((fk for fk in table.foreign_keys if model is not None and fk.ref_table in model.tables
               and _holds_people(model.tables[fk.ref_table], result)), None)
    if fk is None:
        return
    for choice in dates:
        choice.params["by"] = fk.columns[0] if len(fk.columns) == 1 else list(fk.columns)
        choice.note = f"every date of one {fk.ref_table} shifts alike"


def _holds_people(table: TableInfo, result: ScanResult) -> bool:
    """Whether columns of ``table`` other than its foreign keys name or reach a person."""
    references = {c for fk in table.foreign_keys for c in fk.columns}
    return any((f := result.get(table.key, c)) is not None and f.kind in PERSON_KINDS
               for c in table.columns if c not in references)


# -- the proposal ----------------------------------------------------------------------------

def propose_table(result: ScanResult, table: TableInfo, locale: str = "en_US",
                  model: SchemaModel | None = None) -> dict[str, ProposedRule]:
    """The proposed rule of every scanned column of ``table``, coherent across the row (and, with
    ``model``, date shifts by the person a foreign key names)."""
    findings = {c: result.findings[(table.key, c)] for c in table.columns if (table.key, c) in result.findings}
    choices: dict[str, _Choice | str] = {}
    for name, finding in findings.items():
        if finding.personal:
            choices[name] = choose_rule(finding, table.columns[name], table, locale)
    _persons(table, choices)
    _date_entities(table, choices, result, model)
    out: dict[str, ProposedRule] = {}
    for name, finding in findings.items():
        column = table.columns[name]
        kind = identifier_kind(finding)
        if not finding.personal:
            why = "no personal data found" if finding.classification == "non_personal" else (
                f"{finding.note or 'nothing to inspect'}; every refresh scans it again")
            out[name] = ProposedRule(_keep(), f"{finding.classification}: {why}", False)
            continue
        why = describe_finding(finding)
        if kind is not None and finding.kind in KINDS and (kind.hipaa or kind.gdpr):
            why += f" [{_taxonomy(kind)}]"
        choice = choices[name]
        if isinstance(choice, str):
            out[name] = ProposedRule(_keep(choice), why, False, review=True)
            continue
        if choice.strategy.startswith("person.") and "by" in choice.params:
            problem = _problem(choice, column, table, locale)  # ``by`` names columns of this table
            if problem:
                out[name] = ProposedRule(_keep(f"REVIEW: {_label(kind, finding)}: {problem}; choose a rule"), why,
                                         False, review=True)
                continue
        params = dict(choice.params)
        spec = get_strategy(choice.strategy)
        if _in_key(table, name) and spec is not None and spec.unique:
            params["unique"] = True
        if choice.note:
            why += f"; {choice.note}"
        out[name] = ProposedRule(_flow(choice.strategy, **params), why, True)
    return out


def propose_column(finding: ColumnFinding, column: ColumnInfo, table: TableInfo, locale: str = "en_US"
                   ) -> ProposedRule:
    """The proposed rule for one column on its own (without the other columns of its row)."""
    single = ScanResult({(table.key, column.name): finding}, 0, 0)
    return propose_table(single, table, locale)[column.name]


def propose_rules(result: ScanResult, model: SchemaModel, *, source: str = "", locale: str = "en_US") -> str:
    """A complete rules file (YAML text) covering every scanned column."""
    rules: dict[tuple[str, str], ProposedRule] = {}
    for table_key in {t for t, _ in result.findings}:
        for column, rule in propose_table(result, model.tables[table_key], locale, model).items():
            rules[(table_key, column)] = rule
    _inherit_key_rules(model, rules)
    counts = result.counts()
    reviews = sum(1 for r in rules.values() if r.review)
    lines = [
        "# Proposed by `datastage scan --write`: review every rule before using it.",
        _comment(f"# Source: {source or 'the configured source'}; scanned {utc_now()}; up to {result.sample_rows} "
                 f"sampled rows per table (seed {result.seed})."),
        "# Findings: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v) + ".",
        "# Each comment says why. A rule whose reason starts with REVIEW is a decision a person has to make",
        f"# ({reviews} here): `rules check` and `refresh` refuse the file until each one is edited.",
        "version: 1",
        f"locale: {yaml_scalar(locale)}",
        "default: fail                       # a column without a rule stops the refresh",
        "tables:",
    ]
    quasi: dict[str, list[str]] = {}
    for table_key in model.load_order():
        columns = [c for c in model.tables[table_key].columns if (table_key, c) in rules]
        if not columns:
            continue
        written = yaml_scalar(table_key)
        lines.extend([f"  ? {written}", "  :"] if len(written) > _SIMPLE_KEY_CHARS else [f"  {written}:"])
        for column in columns:
            rule = rules[(table_key, column)]
            finding = result.findings[(table_key, column)]
            if finding.classification == "quasi_identifier":
                quasi.setdefault(table_key, []).append(column)
            if rule.text is None:
                lines.append(_comment(f"    # {yaml_scalar(column)}: {rule.why}"))
            else:
                lines.extend(_entry("    ", column, rule.text, rule.why))
    if quasi:
        lines.append("# Quasi-identifiers found; declare the sets to measure k-anonymity on the loaded copy:")
        lines.append("# quasi_identifiers:")
        for table_key, columns in quasi.items():
            lines.append(_comment("#   - " + yaml_flow({"table": table_key, "columns": columns, "k_min": 5})))
    return "\n".join(lines) + "\n"


def write_rules_file(path: Path, text: str, *, force: bool = False) -> Path:
    """Write a proposed rules file to ``path``, creating its folders; an existing file only with ``force``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: cannot create its folder: {exc.strerror}") from None
    try:
        with open(path, "w" if force else "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise UsageError(f"{path} exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    return path


def _inherit_key_rules(model: SchemaModel, rules: dict[tuple[str, str], ProposedRule]) -> None:
    """Columns referencing a masked key get no own rule: the parent's rule applies to them."""

    def inherit(fk: ForeignKey, child: str, parent: str) -> bool:
        parent_rule = rules.get((fk.ref_table, parent))
        child_rule = rules.get((fk.table, child))
        if parent_rule is None or child_rule is None or not parent_rule.masked:
            return False
        if child_rule.text is None:
            return False
        rules[(fk.table, child)] = ProposedRule(
            None, f"references {fk.ref_table}.{parent}; its rule applies automatically", True)
        return True

    propagate_along_keys(model.foreign_keys(), inherit)
