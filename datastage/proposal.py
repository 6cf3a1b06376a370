"""A proposed rules file from a scan: a rule for every column, each with a comment saying why.

The proposal is a starting point for review, not a policy to trust blindly: personal
columns get a masking strategy that fits their kind, type and keys; everything else is
kept; columns that reference a masked key inherit its rule automatically (noted in a
comment). The result passes the rules checker against the scanned schema.

Example:
    >>> text = propose_rules(scan_result, model, source="sqlite:///prod.db")   # doctest: +SKIP
    >>> "email: {strategy: email, unique: true}" in text                       # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from datastage.history import utc_now
from datastage.masking.registry import get_strategy
from datastage.scan import KINDS, ColumnFinding, ScanResult
from datastage.schema import ColumnInfo, SchemaModel, TableInfo

NUMERIC = frozenset({"integer", "decimal", "float"})


@dataclass
class ProposedRule:
    """A rule as written in YAML (``None``: no rule, inherited from a referenced key) and why."""

    text: str | None
    why: str
    masked: bool


def _flow(strategy: str, **params: object) -> str:
    if strategy in ("null", "true", "false", "yes", "no", "on", "off", "~"):
        strategy = f'"{strategy}"'  # YAML would read these as null or booleans
    if not params:
        return strategy
    body = ", ".join(f"{k}: {json.dumps(v) if isinstance(v, str) and not v.isidentifier() else _scalar(v)}"
                     for k, v in params.items())
    return f"{{strategy: {strategy}, {body}}}"


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _keep(reason: str | None = None) -> str:
    return "keep" if reason is None else f"{{strategy: keep, reason: {json.dumps(reason)}}}"


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
        f"# Source: {source or 'the configured source'}; scanned {utc_now()}; up to {result.sample_rows} sampled "
        f"rows per table (seed {result.seed}).",
        "# Findings: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v) + ".",
        "# Each comment says why; 'REVIEW' marks a decision a person has to make.",
        "version: 1",
        f"locale: {locale}",
        "default: fail                       # a column without a rule stops the refresh",
        "tables:",
    ]
    quasi: dict[str, list[str]] = {}
    for table_key in model.load_order():
        columns = [c for c in model.tables[table_key].columns if (table_key, c) in rules]
        if not columns:
            continue
        lines.append(f"  {_yaml_key(table_key)}:")
        for column in columns:
            rule = rules[(table_key, column)]
            finding = result.findings[(table_key, column)]
            if finding.classification == "quasi_identifier":
                quasi.setdefault(table_key, []).append(column)
            if rule.text is None:
                lines.append(f"    # {_yaml_key(column)}: {rule.why}")
            else:
                lines.append(f"    {_yaml_key(column)}: {rule.text}   # {rule.why}")
    if quasi:
        lines.append("# Quasi-identifiers found; declare the sets to measure k-anonymity on the loaded copy:")
        lines.append("# quasi_identifiers:")
        for table_key, columns in quasi.items():
            lines.append(f"#   - {{table: {table_key}, columns: [{', '.join(columns)}], k_min: 5}}")
    return "\n".join(lines) + "\n"


def _yaml_key(name: str) -> str:
    return name if name.replace("_", "a").replace(".", "a").isalnum() and not name[0].isdigit() else json.dumps(name)


def _inherit_key_rules(model: SchemaModel, rules: dict[tuple[str, str], ProposedRule]) -> None:
    """Columns referencing a masked key get no own rule: the parent's rule applies to them."""
    changed = True
    while changed:
        changed = False
        for fk in model.foreign_keys():
            for child, parent in zip(fk.columns, fk.ref_columns, strict=True):
                parent_rule = rules.get((fk.ref_table, parent))
                child_rule = rules.get((fk.table, child))
                if parent_rule is None or child_rule is None or not parent_rule.masked:
                    continue
                if child_rule.text is None:
                    continue
                rules[(fk.table, child)] = ProposedRule(
                    None, f"references {fk.ref_table}.{parent}; its rule applies automatically", True)
                changed = True
