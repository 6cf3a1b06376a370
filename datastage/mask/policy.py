"""Rules files: parse a YAML policy into tables of column rules (resolution is :mod:`datastage.mask.resolve`).

A rules file says, per table and column, what happens::

    version: 1
    locale: en_US
    default: fail                # unclassified columns stop the refresh
    tables:
      customer:
        first_name: fake.first_name
        email: {strategy: email, unique: true}
        phone: {strategy: partial, keep_last: 2}
        active: keep
        notes: {strategy: keep, reason: "free text reviewed, no personal data"}
        race: {strategy: keep, classify: non_personal, reason: "race category of the horse, 5 values"}
        nickname: {strategy: keep, reason: "REVIEW: user-chosen; mask it or say why it is kept"}
      audit_log: truncate

Parsing checks every strategy name and its parameters (with a "did you mean"), locales
and ``when:`` conditions, and names file, line and key in every error.

``classify:`` states a column's classification (one of ``direct_identifier``,
``quasi_identifier``, ``sensitive``, ``non_personal``) in place of the scan's, with a
``reason`` (required). A rule whose ``reason`` (or strategy) holds the word ``REVIEW``
is a decision still to make: the policy lists it in :attr:`Policy.reviews`, and
resolving it (``rules check``, ``plan``, ``refresh``) refuses the file until a person
edits the rule. ``REVIEW`` in a YAML comment is only a comment.

Example:
    >>> policy = policy_from_text("{version: 1, tables: {customer: {email: {strategy: email, unique: true}}}}")
    >>> rule = policy.tables["customer"].columns["email"]
    >>> rule.strategy, rule.unique, policy.default
    ('email', True, 'fail')
    >>> policy = policy_from_text("version: 1\\ntables:\\n  horse:\\n"
    ...     "    race: {strategy: keep, classify: non_personal, reason: 5 values}\\n"
    ...     "    owner: {strategy: keep, reason: 'REVIEW: a name?'}\\n")
    >>> policy.tables["horse"].columns["race"].classify
    'non_personal'
    >>> print(policy.review_errors()[0])  # doctest: +NORMALIZE_WHITESPACE
    <rules>:5: tables.horse.owner: REVIEW: a name? - a person has to decide this rule:
    edit it and remove the REVIEW marker
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from datastage.errors import RulesError
from datastage.identify.kinds import CLASSIFICATIONS
from datastage.mask.condition import Condition, ConditionError, parse_condition
from datastage.mask.contract import StrategySpec
from datastage.mask.fakepool import faker_for
from datastage.mask.registry import get_strategy, suggestion_names
from datastage.settings import Origin
from datastage.source.schema import ColumnInfo, TableInfo
from datastage.yamlfile import Node, describe, did_you_mean, load_yaml_text, read_yaml_bytes

RULE_KEYS = {"strategy", "unique", "domain", "when", "reason", "locale", "classify"}
TOP_KEYS = {"version", "locale", "default", "tables", "quasi_identifiers", "checks", "description"}
DEFAULTS = ("fail", "keep", "null")
STATED_CLASSIFICATIONS = tuple(c for c in CLASSIFICATIONS if c != "unknown")  # what ``classify:`` may say
REVIEW_MARKER = re.compile(r"\bREVIEW\b")  # the word, in capitals: 'REVIEWED' or 'review' is no marker


def has_review_marker(text: object) -> bool:
    """Whether ``text`` holds the marker of a decision still to make.

    >>> [has_review_marker(t) for t in ["REVIEW: pick one", "needs REVIEW", "REVIEWED by legal", "review", None]]
    [True, True, False, False, False]
    """
    return isinstance(text, str) and REVIEW_MARKER.search(text) is not None


@dataclass
class ColumnRule:
    """What happens to one column: a strategy with parameters, or ``keep``."""

    table: str
    column: str
    strategy: str | None
    params: dict[str, Any] = field(default_factory=dict)
    unique: bool = False
    domain: str = ""
    when: str | None = None
    reason: str | None = None
    locale: str = "en_US"
    origin: Origin | None = None
    inherited_from: str | None = None
    spec: StrategySpec | None = None
    column_info: ColumnInfo = None  # type: ignore[assignment]
    table_info: TableInfo | None = None
    nested: dict[str, ColumnRule] = field(default_factory=dict)
    condition: Condition | None = None  # ``when`` parsed; checked against the table by resolve_policy
    when_origin: Origin | None = None
    classify: str | None = None  # the classification the rules state (``classify:``), with ``reason``
    review: str | None = None  # the text holding REVIEW: a decision still to make

    @property
    def is_keep(self) -> bool:
        return self.strategy is None

    def describe(self) -> str:
        """``email(keep_domain=True)`` style summary without secrets."""
        if self.strategy is None:
            return "keep"
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()) if k != "value")
        return f"{self.strategy}({params})" if params else self.strategy

    def same_mapping(self, other: ColumnRule) -> bool:
        return (self.strategy, self.params, self.domain) == (other.strategy, other.params, other.domain)


@dataclass
class TableRule:
    """A table's action (``mask`` by column rules, ``truncate`` or ``keep`` whole) and its column rules."""

    name: str
    action: Literal["mask", "truncate", "keep"]
    columns: dict[str, ColumnRule]
    origin: Origin | None = None
    reason: str | None = None


@dataclass
class Policy:
    """A parsed rules file (not yet checked against a schema)."""

    path: Path
    sha256: str
    locale: str
    default: str
    tables: dict[str, TableRule]
    quasi_identifiers: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    default_origin: Origin | None = None

    @property
    def reviews(self) -> list[ColumnRule]:
        """Rules marked ``REVIEW`` (a decision a person still has to make), in file order."""
        return [rule for table in self.tables.values() for rule in table.columns.values() if rule.review]

    def review_errors(self) -> list[RulesError]:
        """One error per ``REVIEW`` marker, naming file, line and key."""
        return [_review_error(rule) for rule in self.reviews]

    def refuse_reviews(self) -> None:
        """Raise one :class:`RulesError` (the first marker, and how many more) while any REVIEW is left."""
        errors = self.review_errors()
        if errors:
            first = errors[0]
            if len(errors) > 1:
                first.message += (f" (and {len(errors) - 1} more REVIEW marker(s); 'datastage rules check' "
                                  "lists them)")
            raise first


def _review_error(rule: ColumnRule) -> RulesError:
    message = (f"{rule.review} - a person has to decide this rule: edit it and remove the REVIEW marker")
    if rule.origin is None:
        return RulesError(f"{rule.table}.{rule.column}: {message}")
    error = rule.origin.error(message, RulesError)
    assert isinstance(error, RulesError)
    return error


# -- parsing ------------------------------------------------------------------------------

def load_policy(path: Path | str, errors: list[RulesError] | None = None) -> Policy:
    """Parse a rules file; syntax, strategy and parameter errors name file, line and key.

    With ``errors`` given, problems in single rules are collected there (and the rule is
    left out) instead of raising on the first one.
    """
    path = Path(path)
    raw = read_yaml_bytes(path, RulesError, "rules file")  # a file over the size limit is refused unparsed
    root = load_yaml_text(raw.decode("utf-8", errors="replace"), str(path), RulesError)
    return parse_policy(root, path, hashlib.sha256(raw).hexdigest(), errors)


def parse_policy(root: Node, path: Path, sha256: str, errors: list[RulesError] | None = None) -> Policy:
    root.check_keys(TOP_KEYS)
    version = root.get("version")
    if version is None:
        raise root.error("missing 'version: 1'")
    if version.value != 1:
        raise version.error(f"unsupported rules version {version.value!r} (expected 1)")
    locale = root["locale"].text() if root.get("locale") else "en_US"
    if root.get("locale"):
        _checked_locale(locale, "en_US", root["locale"])
    default_node = root.get("default")
    default = default_node.text() if default_node else "fail"
    if default not in DEFAULTS:
        raise default_node.error(f"must be one of {', '.join(DEFAULTS)}{did_you_mean(default, DEFAULTS)}")  # type: ignore[union-attr]
    tables: dict[str, TableRule] = {}
    tables_node = root.get("tables")
    if tables_node is not None:
        for table_name, table_node in tables_node.items():
            with collecting_errors(errors):
                tables[table_name] = _table_rule(table_name, table_node, locale, errors)
    quasi = root["quasi_identifiers"].expect_list() if root.get("quasi_identifiers") else []
    checks = root["checks"].expect_map() if root.get("checks") else {}
    return Policy(
        path=path, sha256=sha256, locale=locale, default=default, tables=tables,
        quasi_identifiers=list(quasi), checks=dict(checks),
        default_origin=Origin.of(default_node) if default_node else Origin.of(root),
    )


class collecting_errors:
    """Context manager: append a RulesError to ``errors`` and carry on (or re-raise without a list)."""

    def __init__(self, errors: list[RulesError] | None) -> None:
        self.errors = errors

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, RulesError) and self.errors is not None:
            self.errors.append(exc)
            return True
        return False


def _table_rule(name: str, node: Node, locale: str, errors: list[RulesError] | None = None) -> TableRule:
    if isinstance(node.value, str):
        action = node.text()
        if has_review_marker(action):
            raise node.error(f"'{action}': a REVIEW marker goes on a column rule; a table takes 'truncate', 'keep' "
                             "or a mapping of column rules")
        if action not in ("truncate", "keep"):
            raise node.error(f"a table takes 'truncate', 'keep' or a mapping of column rules, got '{action}'"
                             f"{did_you_mean(action, ['truncate', 'keep'])}")
        return TableRule(name, action, {}, Origin.of(node))  # type: ignore[arg-type]
    node.expect_map()
    columns = {}
    for col, child in node.items():
        with collecting_errors(errors):
            try:
                columns[col] = _column_rule(name, col, child, locale)
            except RulesError as exc:
                if col in RULE_KEYS and not isinstance(child.value, dict):
                    # ``table: {classify: ..., reason: ...}``: rule keys written where the column names go.
                    exc.message += (f" ('{col}' is a key of a column rule, not of a table: write it under a column, "
                                    f"e.g. {name}: {{some_column: {{strategy: keep, {col}: ...}}}})")
                raise
    return TableRule(name, "mask", columns, Origin.of(node))


def _column_rule(table: str, column: str, node: Node, locale: str) -> ColumnRule:
    if isinstance(node.value, str):
        name = node.text().strip()
        body: dict[str, Any] = {"strategy": name}
    elif isinstance(node.value, dict):
        body = dict(node.value)
        if "strategy" not in body:
            misspelt = next((str(k) for k in body if did_you_mean(str(k), ["strategy"])), None)
            raise node.error("a column rule mapping needs 'strategy'"
                             + (f" (is '{misspelt}' a misspelling of 'strategy'?)" if misspelt else ""))
    elif node.value is None:
        raise node.error("empty rule; write 'keep' or a strategy")
    else:
        raise node.error(f"expected a strategy name or a mapping, got {node.value!r}")
    name = str(body.pop("strategy"))
    origin = Origin.of(node)
    reason = _reason(body.pop("reason", None), node)
    classify = _classification(body.pop("classify", None), reason, node, table, column)
    review = reason if has_review_marker(reason) else None
    if has_review_marker(name):
        # No strategy chosen yet ("column: REVIEW"): a decision to make, held like a keep until then.
        return ColumnRule(table, column, None, reason=reason, origin=origin, locale=locale, classify=classify,
                          review=name)
    if name == "keep":
        extra = set(body) - {"reason"}
        if extra:
            raise node.error(f"'keep' takes only a reason and classify, not {', '.join(sorted(extra))}")
        return ColumnRule(table, column, None, reason=reason, origin=origin, locale=locale, classify=classify,
                          review=review)
    spec = _strategy(name, node)
    unique = body.pop("unique", False)
    if not isinstance(unique, bool):
        raise node.error("unique must be true or false")
    domain = str(body.pop("domain", "") or _default_domain(name))
    condition: Condition | None = None
    when_origin: Origin | None = None
    if "when" in body:
        when_node = node["when"]
        when_origin = Origin.of(when_node)
        written = body.pop("when")
        if not isinstance(written, str):
            raise when_node.error(f"invalid condition: expected a condition in quotes, e.g. \"tier = 'vip'\", "
                                  f"got {describe(written)}")
        try:
            condition = parse_condition(written)
        except ConditionError as exc:
            raise when_node.error(f"invalid condition: {exc.message}") from None
    column_locale = _checked_locale(body.pop("locale", None), locale, node)
    params = body
    for param, problem in spec.check_params(params):
        target = node[param] if isinstance(node.value, dict) and param in node else node
        raise target.error(problem)
    rule = ColumnRule(
        table=table, column=column, strategy=name, params=spec.with_defaults(params), unique=unique,
        domain=domain, when=condition.text if condition else None, reason=reason,
        locale=column_locale, origin=origin, spec=spec, condition=condition, when_origin=when_origin,
        classify=classify, review=review,
    )
    if spec.validate is not None:
        invalid = spec.validate(rule.params, None, None)
        if invalid:
            raise node.error(invalid)
    if spec.nested is not None:
        for nested_name, raw in spec.nested(rule.params).items():
            rule.nested[nested_name] = _nested_rule(table, column, nested_name, raw, node, column_locale)
    return rule


MAX_REASON = 1000  # characters: a reason is a sentence or two, shown in the report and in messages
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _reason(written: Any, node: Node) -> str | None:
    """A rule's ``reason`` on one line (runs of whitespace and line breaks become one space), or None if blank.

    Text only: a list, mapping, number or true/false, control characters (terminal escapes) and
    reasons over :data:`MAX_REASON` characters are errors at ``node``.
    """
    if written is None:
        return None
    where = node["reason"] if isinstance(node.value, dict) and "reason" in node else node
    if not isinstance(written, str):
        raise where.error(f"reason must be text (a sentence in quotes), got {describe(written)}")
    reason = " ".join(written.split())
    if CONTROL_CHARACTERS.search(reason):
        raise where.error("reason holds control characters (terminal escapes); write plain text")
    if len(reason) > MAX_REASON:
        raise where.error(f"reason is {len(reason)} characters long; say why in at most {MAX_REASON}")
    return reason or None


def _classification(written: Any, reason: str | None, node: Node, table: str, column: str) -> str | None:
    """The classification a rule states with ``classify:`` (checked, with its required reason), or None."""
    if written is None:
        return None
    where = node["classify"] if isinstance(node.value, dict) and "classify" in node else node
    allowed = ", ".join(STATED_CLASSIFICATIONS)
    if not isinstance(written, str):
        raise where.error(f"classify must be one of {allowed}, got {describe(written)}")
    if written == "unknown":
        raise where.error(f"classify: 'unknown' is what the scan says when it cannot tell; state one of {allowed}")
    if written not in STATED_CLASSIFICATIONS:
        raise where.error(f"classify must be one of {allowed}, got '{written}'"
                          f"{did_you_mean(written, list(STATED_CLASSIFICATIONS))}")
    if reason is None or not reason.strip():
        raise node.error(f"classify: {written} needs a reason: say why {table}.{column} is {written}, e.g. "
                         f"{{strategy: keep, classify: {written}, reason: \"...\"}}")
    return written


NESTED_COLUMN = ColumnInfo(name="(nested)", type=None, nullable=True, category="text")  # type: ignore[arg-type]


def _nested_rule(table: str, column: str, name: str, raw: Any, node: Node, locale: str) -> ColumnRule:
    """A nested strategy (regex ``with``, json ``paths``), checked like a column rule."""
    where = f"{name}: "
    if isinstance(raw, str):
        body: dict[str, Any] = {"strategy": raw}
    elif isinstance(raw, dict) and "strategy" in raw:
        body = dict(raw)
    else:
        raise node.error(f"{where}expected a strategy name or a mapping with 'strategy', got {raw!r}")
    strategy_name = str(body.pop("strategy"))
    if strategy_name == "keep":
        raise node.error(f"{where}'keep' is not a nested strategy")
    spec = _strategy(strategy_name, node, where)
    if not spec.row_independent:
        raise node.error(f"{where}strategy {strategy_name} reads other columns of the row, so it cannot mask "
                         "parts of a value")
    if "text" not in spec.types:
        raise node.error(f"{where}strategy {strategy_name} does not take text")
    domain = str(body.pop("domain", "") or _default_domain(strategy_name))
    nested_locale = _checked_locale(body.pop("locale", None), locale, node)
    for _param, problem in spec.check_params(body):
        raise node.error(f"{where}{problem}")
    rule = ColumnRule(table=table, column=column, strategy=strategy_name, params=spec.with_defaults(body),
                      domain=domain, locale=nested_locale, origin=Origin.of(node), spec=spec,
                      column_info=NESTED_COLUMN)
    if spec.validate is not None:
        invalid = spec.validate(rule.params, None, None)
        if invalid:
            raise node.error(f"{where}{invalid}")
    if spec.nested is not None:
        for inner, inner_raw in spec.nested(rule.params).items():
            rule.nested[inner] = _nested_rule(table, column, f"{name}.{inner}", inner_raw, node, nested_locale)
    return rule


def _strategy(name: str, node: Node, where: str = "") -> StrategySpec:
    """The registered strategy called ``name``; unknown names (and ``module:function``) are errors at ``node``."""
    try:
        spec = get_strategy(name)
    except RulesError as exc:
        raise node.error(f"{where}{exc.message}") from None
    if spec is None:
        raise node.error(f"{where}unknown strategy '{name}'{did_you_mean(name, suggestion_names(name))}; "
                         "run 'datastage strategies' to list them")
    return spec


def _checked_locale(written: Any, default: str, node: Node) -> str:
    """The rule's Faker locale (``written`` or the file's); an unknown one is an error here, not mid-refresh."""
    if written is None:
        return default
    try:
        faker_for(str(written))
    except RulesError as exc:
        raise node.error(exc.message) from None
    return str(written)


def _default_domain(strategy: str) -> str:
    """Every column masked by the same strategy (or Faker provider) shares one domain."""
    return strategy


def policy_from_text(text: str, path: str = "<rules>") -> Policy:
    """Parse rules from a string (tests, generated policies)."""
    return parse_policy(load_yaml_text(text, path, RulesError), Path(path),
                        hashlib.sha256(text.encode()).hexdigest())

