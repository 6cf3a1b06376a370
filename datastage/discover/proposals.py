"""A proposed rules file from a scan: a rule for every column, each with a comment saying why.

The proposal is a starting point for review, not a policy to trust blindly: personal
columns get a masking strategy that fits their kind, type and keys; everything else is
kept; columns that reference a masked key inherit its rule automatically (noted in a
comment). The result passes the rules checker against the scanned schema.

Example (the rules of a one-table source, below a header that says where and when it was scanned):
    >>> import sqlite3, tempfile
    >>> from datastage.discover.scan import scan_source
    >>> from datastage.source.db import make_engine, snapshot
    >>> from datastage.source.schema import reflect
    >>> path = f"{tempfile.mkdtemp()}/prod.db"
    >>> _ = sqlite3.connect(path).executescript("CREATE TABLE customer (id INTEGER PRIMARY KEY, contact TEXT UNIQUE);"
    ...     "INSERT INTO customer (contact) VALUES ('ann@example.com'), ('bob@example.org'), ('eve@example.net');")
    >>> with snapshot(make_engine(f"sqlite:///{path}", read_only=True)) as conn:
    ...     model = reflect(conn)
    ...     text = propose_rules(scan_source(conn, model), model, source="sqlite:///prod.db")
    >>> print(text.split("tables:\\n")[1])
      customer:
        id: keep   # non_personal: no personal data found
        contact: {strategy: email, unique: true}   # direct_identifier: e-mail address in 100% of 3 sampled values
    <BLANKLINE>
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from datastage.discover.scan import KINDS, ColumnFinding, ScanResult
from datastage.mask.registry import get_strategy
from datastage.results import utc_now
from datastage.source.schema import ColumnInfo, ForeignKey, SchemaModel, TableInfo, propagate_along_keys

NUMERIC = frozenset({"integer", "decimal", "float"})


@dataclass
class ProposedRule:
    """A rule as written in YAML (``None``: no rule, inherited from a referenced key) and why."""

    text: str | None
    why: str
    masked: bool


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


def _strategy_for(finding: ColumnFinding, column: ColumnInfo, table: TableInfo) -> tuple[str, dict[str, object]] | None:
    """(strategy, params) for a personal column, or None when it is better kept (with a reason)."""
    kind = finding.kind or ""
    length = column.length
    shares = finding.value_kinds
    if kind == "email":
        return "email", {}
    if kind == "phone":
        return ("fake.phone_number", {}) if column.category == "text" else ("generalize", {"bucket": 1000})
    if kind in ("first_name", "last_name"):
        return f"fake.{kind}", {}
    if kind == "full_name":
        return "fake.name", {}
    if kind == "username":
        return "fake.user_name", {}
    if kind == "street_address":
        return "fake.street_address", {}
    if kind == "city":
        return "fake.city", {}
    if kind == "postcode":
        return ("generalize", {"keep": 2}) if column.category == "text" else ("generalize", {"bucket": 100})
    if kind == "date_of_birth":
        return "generalize", {"to": "year"}
    if kind == "age":
        return "generalize", {"bucket": 5}
    if kind == "card_number":
        return "card_number", {}
    if kind == "iban":
        return "fake.iban", {}
    if kind == "national_id":
        return "fake.ssn", {}
    if kind == "ip_address":
        return ("fake.ipv6", {}) if shares.get("ip_address", 0) and ":" in str(column.type_name) else ("fake.ipv4", {})
    if kind == "secret":
        return "hash", {"length": max(4, min(length or 32, 32))}
    if kind == "special_category":
        return ("generalize", {"bucket": 1000}) if column.category in NUMERIC else ("null", {})
    if kind == "free_text":
        return ("fake.sentence", {}) if length is not None and length < 200 else ("fake.paragraph", {})
    if kind == "photo":
        return "null", {}
    if kind == "gender":
        return None
    return None


def _fits(strategy: str, params: dict[str, object], column: ColumnInfo, table: TableInfo) -> str | None:
    """Why ``strategy`` cannot be used on this column, or None."""
    spec = get_strategy(strategy)
    if spec is None:
        return f"no strategy {strategy}"
    if column.category not in spec.types:
        return f"{strategy} does not apply to {column.category} columns"
    if strategy == "null" and not column.nullable:
        return "the column is NOT NULL"
    if _in_key(table, column.name) and spec.unique is None:
        return "the column is a key and needs a unique-capable strategy"
    return None


def propose_column(finding: ColumnFinding, column: ColumnInfo, table: TableInfo) -> ProposedRule:
    """The proposed rule for one column and the comment explaining it."""
    why = finding.describe()
    if not finding.personal:
        reason = "no personal data found" if finding.classification == "non_personal" else (
            f"REVIEW: {finding.note or 'nothing to inspect'}")
        return ProposedRule(_keep(), f"{finding.classification}: {reason}", False)
    choice = _strategy_for(finding, column, table)
    if choice is None:
        label = KINDS[finding.kind].label if finding.kind else finding.classification
        return ProposedRule(_keep(f"REVIEW: {label} kept for realism; declare it in quasi_identifiers"),
                            why, False)
    strategy, params = choice
    problem = _fits(strategy, params, column, table)
    if problem and column.category == "text" and _in_key(table, column.name) and strategy != "email":
        strategy, params = "hash", {"length": max(8, min(column.length or 16, 32))}
        problem = _fits(strategy, params, column, table)
        why += "; hashed because the column is a key"
    if problem and column.nullable:
        strategy, params, problem = "null", {}, None
        why += "; set to NULL: no masking strategy fits its type"
    if problem:
        return ProposedRule(_keep(f"REVIEW: no masking strategy fits ({problem})"), why, False)
    if _in_key(table, column.name) and (spec := get_strategy(strategy)) is not None and spec.unique:
        params = {**params, "unique": True}
    return ProposedRule(_flow(strategy, **params), why, True)


def propose_rules(result: ScanResult, model: SchemaModel, *, source: str = "", locale: str = "en_US") -> str:
    """A complete rules file (YAML text) covering every scanned column."""
    rules: dict[tuple[str, str], ProposedRule] = {}
    for (table_key, column_name), finding in result.findings.items():
        table = model.tables[table_key]
        rules[(table_key, column_name)] = propose_column(finding, table.columns[column_name], table)
    _inherit_key_rules(model, rules)
    counts = result.counts()
    lines = [
        "# Proposed by `datastage scan --write`: review every rule before using it.",
        _comment(f"# Source: {source or 'the configured source'}; scanned {utc_now()}; up to {result.sample_rows} "
                 f"sampled rows per table (seed {result.seed})."),
        "# Findings: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v) + ".",
        "# Each comment says why; 'REVIEW' marks a decision a person has to make.",
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
