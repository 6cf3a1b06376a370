"""Resolves a parsed rules file against the reflected source schema: a decision for every column.

Resolution checks every table, column and rule against the schema (column types,
uniqueness, ``when:`` conditions, with a "did you mean"), gives ``person.*`` rules their
default ``by``, passes the rule of a masked key column on to every column that
references it, and applies coverage (the fail-closed gate, and personal data kept only
with a reason). A classification stated with ``classify:`` replaces the scan's in the
gate (a column the rules classify as ``non_personal`` may be kept), and a rule still
marked ``REVIEW`` stops resolution.

Example (the surrogate key needs no rule; the other columns have one):
    >>> import sqlalchemy as sa
    >>> from datastage.mask.policy import policy_from_text
    >>> from datastage.source.schema import reflect
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE customer (id INTEGER PRIMARY KEY, phone TEXT, tier TEXT)")
    ...     model = reflect(conn)
    >>> rules = "version: 1\\ntables:\\n  customer: {phone: phone, tier: {strategy: keep, reason: plan names}}"
    >>> resolved = resolve_policy(policy_from_text(rules), model)
    >>> [resolved.decision("customer", column).status for column in ("id", "phone", "tier")]
    ['non_personal', 'protected', 'kept-with-reason']
    >>> rules = "version: 1\\ntables:\\n  customer: {phone: phone, tier: {strategy: keep, reason: REVIEW}}"
    >>> resolve_policy(policy_from_text(rules), model)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    datastage.errors.RulesError: <rules>:3: tables.customer.tier: REVIEW - a person has to decide this rule: ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from datastage.errors import RulesError
from datastage.identify.keys import carried_key
from datastage.mask.condition import ConditionError
from datastage.mask.policy import ColumnRule, Policy, collecting_errors
from datastage.mask.registry import get_strategy
from datastage.mask.strategies.address import COUNTRY_COLUMNS
from datastage.mask.strategies.scrub import complete_rules as complete_scrub_rules
from datastage.settings import Origin
from datastage.source.schema import ColumnInfo, ForeignKey, SchemaModel, TableInfo, propagate_along_keys
from datastage.yamlfile import did_you_mean

STRUCTURAL_CATEGORIES = {"integer", "uuid"}


Status = Literal["protected", "kept-with-reason", "non_personal", "kept-by-default", "excluded", "truncated"]


@dataclass
class ColumnDecision:
    """The final treatment of one column, as the plan and the report show it."""

    table: str
    column: str
    status: Status
    rule: ColumnRule | None = None
    reason: str | None = None
    classification: str | None = None  # stated by the rules (``classify:``); None: the scan's applies
    classified_reason: str | None = None  # why the rules state it

    @property
    def treatment(self) -> str:
        if self.status in ("excluded", "truncated"):
            return self.status
        return self.rule.describe() if self.rule else "keep"


@dataclass
class ResolvedPolicy:
    """A policy checked against the schema: a decision for every column in scope."""

    policy: Policy
    decisions: dict[tuple[str, str], ColumnDecision]
    truncated: dict[str, str]
    kept_tables: set[str]
    warnings: list[str] = field(default_factory=list)
    new_columns: set[str] = field(default_factory=set)

    def masked_columns(self, table: str) -> list[ColumnRule]:
        return [d.rule for (t, _), d in self.decisions.items()
                if t == table and d.rule is not None and not d.rule.is_keep and d.status == "protected"]

    def decision(self, table: str, column: str) -> ColumnDecision:
        return self.decisions[(table, column)]

    def table_decisions(self, table: str) -> list[ColumnDecision]:
        return [d for (t, _), d in self.decisions.items() if t == table]


def _error(rule_origin: Origin | None, message: str) -> RulesError:
    if rule_origin is None:
        return RulesError(message)
    error = rule_origin.error(message, RulesError)
    assert isinstance(error, RulesError)
    return error


def resolve_policy(
    policy: Policy,
    model: SchemaModel,
    *,
    out_of_scope: set[str] | None = None,
    kept_from_target: set[str] | None = None,
    new_columns: set[str] | None = None,
    errors: list[RulesError] | None = None,
    personal: Mapping[tuple[str, str], str] | None = None,
) -> ResolvedPolicy:
    """Check ``policy`` against ``model`` and decide every in-scope column's treatment.

    ``out_of_scope`` tables get no rows (subset excludes); ``kept_from_target`` tables
    take their rows from the current target; ``new_columns`` (``table.column``) appeared
    since the last refresh and are named so in the coverage error. ``personal`` maps the
    columns the scan classified as personal data to a description; keeping one of them
    without a ``reason`` stops the refresh (coverage gate). Raises :class:`RulesError` on
    the first problem, or one error listing every column without a rule under
    ``default: fail``; with ``errors`` given, problems are collected there.
    """
    out_of_scope = out_of_scope or set()
    kept_from_target = kept_from_target or set()
    new_columns = new_columns or set()
    if errors is None:
        policy.refuse_reviews()
    else:
        errors.extend(policy.review_errors())
    rules: dict[tuple[str, str], ColumnRule] = {}
    truncated: dict[str, str] = {}
    kept_tables: set[str] = set()
    kept_origins: dict[str, Origin | None] = {}
    for written, table_rule in policy.tables.items():
        table = model.table(written, None) if model.resolve(written) else None
        if table is None:
            with collecting_errors(errors):
                raise _error(table_rule.origin,
                             f"unknown table '{written}'{did_you_mean(written, list(model.tables))}")
            continue
        if table_rule.action == "truncate":
            truncated[table.key] = "empty"
            continue
        if table_rule.action == "keep":
            kept_tables.add(table.key)
            kept_origins[table.key] = table_rule.origin
            continue
        table_rules: dict[str, ColumnRule] = {}
        for column_name, rule in table_rule.columns.items():
            with collecting_errors(errors):
                if column_name not in table.columns:
                    raise _error(rule.origin, f"table {table.key} has no column '{column_name}'"
                                              f"{did_you_mean(column_name, list(table.columns))}")
                column = table.columns[column_name]
                table_rules[column_name] = replace(rule, table=table.key, column_info=column, table_info=table,
                                                   params=dict(rule.params))
        _default_person_by(table, table_rules)
        _default_address_params(table, table_rules)
        complete_scrub_rules(table_rules)
        for column_name, rule in table_rules.items():
            with collecting_errors(errors):
                _check_rule(rule, table, table.columns[column_name])
                rules[(table.key, column_name)] = rule

    with collecting_errors(errors):
        _propagate_key_rules(model, rules)

    decisions: dict[tuple[str, str], ColumnDecision] = {}
    missing: list[str] = []
    warnings: list[str] = []
    for key, table in model.tables.items():
        for column_name, column in table.columns.items():
            slot = (key, column_name)
            if key in out_of_scope or key in kept_from_target:
                decisions[slot] = ColumnDecision(key, column_name, "excluded",
                                                 reason="kept from target" if key in kept_from_target else None)
            elif key in truncated:
                decisions[slot] = ColumnDecision(key, column_name, "truncated")
            elif key in kept_tables:
                decisions[slot] = ColumnDecision(key, column_name, "kept-with-reason", reason="table kept as is")
            elif slot in rules:
                rule = rules[slot]
                if rule.is_keep:
                    status: Status = "kept-with-reason" if rule.reason else "non_personal"
                    decisions[slot] = ColumnDecision(key, column_name, status, rule, rule.reason)
                else:
                    decisions[slot] = ColumnDecision(key, column_name, "protected", rule)
                if rule.classify:
                    decisions[slot].classification = rule.classify
                    decisions[slot].classified_reason = rule.reason
            elif column.generated:
                decisions[slot] = ColumnDecision(key, column_name, "non_personal",
                                                 reason="generated by the database")
            elif _is_structural_key(table, column, model):
                decisions[slot] = ColumnDecision(key, column_name, "non_personal", reason="surrogate key")
            elif policy.default == "keep":
                decisions[slot] = ColumnDecision(key, column_name, "kept-by-default", reason="default: keep")
            elif policy.default == "null":
                if not column.nullable:
                    raise _error(policy.default_origin,
                                 f"default: null cannot apply to {key}.{column_name}, which is NOT NULL; "
                                 "give it a rule")
                null_spec = get_strategy("null")
                rule = ColumnRule(key, column_name, "null", domain="null", spec=null_spec, column_info=column,
                                  table_info=table, locale=policy.locale)
                decisions[slot] = ColumnDecision(key, column_name, "protected", rule, "default: null")
            elif not _rule_rejected(errors, table, column_name):
                missing.append(f"{key}.{column_name}")
    if missing:
        named = [f"{m} (new since the last refresh)" if m in new_columns else m for m in missing]
        shown = ", ".join(named[:20]) + (f" and {len(named) - 20} more" if len(named) > 20 else "")
        with collecting_errors(errors):
            raise _error(policy.default_origin,
                         f"{len(missing)} column(s) in scope have no rule (default: fail): {shown}; "
                         "add a strategy or 'keep' for each")
    by_default = [f"{d.table}.{d.column}" for d in decisions.values()
                  if d.reason in ("default: keep", "default: null")]
    if by_default:
        shown = ", ".join(by_default[:20]) + (f" and {len(by_default) - 20} more" if len(by_default) > 20 else "")
        warnings.append(f"default: {policy.default} applies to {len(by_default)} column(s) without a rule: {shown}")
    if personal:
        with collecting_errors(errors):
            _gate_personal(policy, decisions, personal, kept_origins)
    return ResolvedPolicy(policy, decisions, truncated, kept_tables, warnings, set(new_columns))


EMAIL_STRATEGIES = ("email", "person.email")


def _default_person_by(table: TableInfo, rules: dict[str, ColumnRule]) -> None:
    """``person.*`` rules without ``by`` follow the table's e-mail rule, else its primary key."""
    email_columns = [c for c, r in rules.items() if r.strategy == "email"]
    email_columns += [c for c, r in rules.items() if r.strategy == "person.email" and r.params.get("by")]
    for column, rule in rules.items():
        if not (rule.strategy or "").startswith("person.") or rule.params.get("by"):
            continue
        if email_columns and column not in email_columns:
            rule.params["by"] = email_columns[0]
        elif table.primary_key:
            rule.params["by"] = list(table.primary_key) if len(table.primary_key) > 1 else table.primary_key[0]
        else:
            raise _error(rule.origin, f"{table.key}.{column}: strategy {rule.strategy} needs 'by' (the column(s) "
                                      "naming the person): the table has no e-mail rule and no primary key")


def _default_address_params(table: TableInfo, rules: dict[str, ColumnRule]) -> None:
    """``address.*`` rules read the row's country from the column with an ``address.country`` rule, else
    from a column named like a country (``country``, ``country_code`` ...); without ``by`` they need a
    primary key."""
    masked_country = [c for c, r in rules.items() if r.strategy == "address.country"]
    named_country = [c for c in table.columns if c.lower() in COUNTRY_COLUMNS]
    for column, rule in rules.items():
        if not (rule.strategy or "").startswith("address."):
            continue
        if rule.strategy != "address.country" and "country" not in rule.params:
            country = next((c for c in masked_country + named_country if c != column), None)
            if country is not None:
                rule.params["country"] = country
        if not rule.params.get("by") and not table.primary_key:
            raise _error(rule.origin, f"{table.key}.{column}: strategy {rule.strategy} needs 'by' (the column(s) "
                                      "naming whose address it is): the table has no primary key")


def _gate_personal(policy: Policy, decisions: dict[tuple[str, str], ColumnDecision],
                   personal: Mapping[tuple[str, str], str], kept_origins: dict[str, Origin | None]) -> None:
    """A column the scan classified as personal data may be kept only with a reason (or classified otherwise
    by the rules, with one)."""
    kept_without_reason: list[tuple[Origin | None, str]] = []
    for slot, decision in decisions.items():
        if slot not in personal or decision.classification == "non_personal":
            continue
        if decision.status == "kept-by-default":
            origin = policy.default_origin
        elif decision.rule is None and decision.table in kept_origins and decision.status == "kept-with-reason":
            origin = kept_origins[decision.table]
        elif decision.status == "non_personal" and decision.rule is not None and decision.rule.is_keep:
            origin = decision.rule.origin
        else:
            continue
        kept_without_reason.append((origin, f"{decision.table}.{decision.column} ({personal[slot]})"))
    if kept_without_reason:
        origin, first = kept_without_reason[0]
        more = len(kept_without_reason) - 1
        others = "; also " + ", ".join(w.split(" (")[0] for _, w in kept_without_reason[1:6]) + (
            f" and {more - 5} more" if more > 5 else "") if more else ""
        raise _error(origin, f"{first} is personal data but kept without a reason; mask it or write "
                             f"{{strategy: keep, reason: ...}} (or, if it holds none, {{strategy: keep, classify: "
                             f"non_personal, reason: ...}}){others}")


def _is_structural_key(table: TableInfo, column: ColumnInfo, model: SchemaModel | None = None) -> bool:
    """Integer/UUID primary and foreign key columns carry no personal data by themselves, unless the key is
    an identifier the person carries (``income.ssn``, ``drivers_license.id`` and keys referencing them)."""
    if column.category not in STRUCTURAL_CATEGORIES:
        return False
    in_pk = column.name in table.primary_key
    in_fk = any(column.name in fk.columns for fk in table.foreign_keys)
    if not (in_pk or in_fk):
        return False
    carried = carried_key(table, column, model)
    return carried is None or carried.strength != "strong"


def _rule_rejected(errors: list[RulesError] | None, table: TableInfo, column: str) -> bool:
    """Whether ``errors`` already hold a problem with the rule of ``column`` (or of its table), so the
    column is not also listed as having no rule."""
    if not errors:
        return False
    paths = {f"tables.{name}" for name in (table.key, table.name)}
    for error in errors:
        key = error.key or ""
        for path in paths:
            if key == path or key == f"{path}.{column}" or key.startswith(f"{path}.{column}."):
                return True
    return False


def rule_problem(rule: ColumnRule, table: TableInfo, column: ColumnInfo) -> str | None:
    """Why ``rule`` cannot apply to ``column`` of ``table`` (what ``rules check`` would say), or None."""
    try:
        _check_rule(replace(rule, params=dict(rule.params)), table, column)
    except RulesError as exc:
        return exc.message
    return None


def _check_rule(rule: ColumnRule, table: TableInfo, column: ColumnInfo) -> None:
    spec = rule.spec
    if spec is None:
        return
    if column.category not in spec.types:
        raise _error(rule.origin, f"strategy {spec.name} does not apply to {table.key}.{column.name} "
                                  f"of type {column.type_name} ({column.category}); it takes "
                                  f"{', '.join(sorted(spec.types))}")
    in_key = any(column.name in key for key in [table.primary_key, *table.unique_keys] if key)
    if (in_key or rule.unique) and spec.unique is None:
        what = "primary key" if column.name in table.primary_key else (
            "part of a unique key" if in_key else "marked unique")
        raise _error(rule.origin, f"{table.key}.{column.name} is {what}, but strategy {spec.name} cannot keep "
                                  "distinct values distinct; use a unique-capable strategy "
                                  "(tokenize, hash, email, card_number ...)")
    if (in_key or rule.unique) and not spec.deterministic:
        raise _error(rule.origin, f"{table.key}.{column.name} is a key, but strategy {spec.name} is not "
                                  "deterministic, so references to it would break")
    if (in_key or rule.unique) and rule.when:
        raise _error(rule.origin, f"{table.key}.{column.name} is a key or unique column; masking only the rows "
                                  "matching when: could collide with the real values left in the others, and "
                                  "references to it would break; drop 'when'")
    if rule.strategy == "null" and not column.nullable:
        raise _error(rule.origin, f"{table.key}.{column.name} is NOT NULL; strategy null cannot apply")
    if rule.strategy == "value" and rule.params.get("value") is None and not column.nullable:
        raise _error(rule.origin, f"{table.key}.{column.name} is NOT NULL; a null value cannot apply")
    if spec.validate is not None:
        problem = spec.validate(rule.params, table, column)
        if problem:
            raise _error(rule.origin, problem)
    length = rule.params.get("length")
    if column.length and rule.strategy == "hash" and isinstance(length, int):
        written = length + len(str(rule.params.get("prefix") or ""))
        if written > column.length:
            raise _error(rule.origin, f"{table.key}.{column.name} holds at most {column.length} characters, but "
                                      f"strategy hash writes {written}; lower 'length'")
    if rule.condition is not None:
        try:
            rule.condition = rule.condition.bind(table.key, table.columns)
        except ConditionError as exc:
            raise _error(rule.when_origin or rule.origin, f"invalid condition: {exc.message}") from None


def _propagate_key_rules(model: SchemaModel, rules: dict[tuple[str, str], ColumnRule]) -> None:
    """Give every column that references a masked key column the identical rule."""

    def inherit(fk: ForeignKey, child_col: str, parent_col: str) -> bool:
        parent_rule = rules.get((fk.ref_table, parent_col))
        if parent_rule is None or parent_rule.is_keep:
            return False
        child_slot = (fk.table, child_col)
        existing = rules.get(child_slot)
        if existing is not None:
            conflict = existing.is_keep or not existing.same_mapping(parent_rule)
            if conflict and existing.inherited_from is None:
                raise _error(existing.origin,
                             f"{fk.table}.{child_col} references {fk.ref_table}.{parent_col}, which is "
                             f"masked with {parent_rule.describe()}; its own rule "
                             f"{existing.describe()} would break the reference. Remove it: the "
                             "parent's rule is applied automatically")
            return False
        table = model.tables[fk.table]
        rules[child_slot] = replace(
            parent_rule, table=fk.table, column=child_col, column_info=table.columns[child_col],
            table_info=table, inherited_from=f"{fk.ref_table}.{parent_col}", when=None,
            condition=None, when_origin=None,
        )
        return True

    propagate_along_keys(model.foreign_keys(), inherit)


