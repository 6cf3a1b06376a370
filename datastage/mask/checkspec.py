"""The ``checks:`` and ``quasi_identifiers:`` blocks of a rules file: severities and thresholds.

Every post-load check fails the refresh unless the rules say otherwise::

    checks:
      leak_identifiers: fail                 # fail | warn
      card_sweep: {severity: fail, max_matches: 0}
      leak_masked_columns: {exempt: [customer.city]}
      kept_identifiers: warn                 # kept columns holding identifiers: warn instead of fail
      k_anonymity: {severity: warn, k_min: 5, max_unique_share: 0.01}
    quasi_identifiers:
      - {table: customer, columns: [birth_date, country_code], k_min: 10}

Example:
    >>> from datastage.mask.policy import policy_from_text
    >>> settings = parse_check_settings(policy_from_text("version: 1\\nchecks: {card_sweep: warn}"))
    >>> settings.severity("card_sweep"), settings.severity("row_counts")
    ('warn', 'fail')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datastage.errors import RulesError
from datastage.mask.policy import Policy
from datastage.source.schema import SchemaModel
from datastage.yamlfile import Node, did_you_mean

SEVERITIES = ("fail", "warn")
DEFAULT_K_MIN = 5
DEFAULT_MAX_UNIQUE_SHARE: float | None = None  # reported always, enforced when set
CHECK_NAMES: dict[str, set[str]] = {
    # check name -> threshold keys it takes (besides severity)
    "subset_counts": set(),
    "row_counts": set(),
    "foreign_keys": set(),
    "unique_keys": set(),
    "leak_masked_columns": {"max_matches", "exempt"},
    "leak_identifiers": {"max_matches", "exempt"},
    "card_sweep": {"max_matches", "exempt"},
    "kept_identifiers": set(),
    "k_anonymity": {"k_min", "max_unique_share"},
}


@dataclass(frozen=True)
class QuasiIdentifierSet:
    """Columns of one table that together could single a person out, and the thresholds they must meet."""

    table: str
    columns: tuple[str, ...]
    k_min: int
    max_unique_share: float | None
    path: str = ""

    @property
    def label(self) -> str:
        return f"{self.table}({', '.join(self.columns)})"


@dataclass
class CheckSettings:
    """Severity and thresholds per check, and the declared quasi-identifier sets."""

    severities: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)
    quasi_identifiers: list[QuasiIdentifierSet] = field(default_factory=list)

    def severity(self, check: str) -> str:
        return self.severities.get(check, "fail")

    def threshold(self, check: str, name: str, default: Any) -> Any:
        return self.thresholds.get(check, {}).get(name, default)

    def exempt(self, check: str) -> set[str]:
        return set(self.thresholds.get(check, {}).get("exempt", ()))

    def summary_note(self, check: str, *, downgraded: bool = False) -> str:
        """What the rules changed about a check, for the end of its summary line: the columns they
        exempt from it, and a failure they turned into a warning.

        >>> CheckSettings(thresholds={"card_sweep": {"exempt": ["t.b", "t.a"]}}).summary_note("card_sweep",
        ...                                                                                downgraded=True)
        ' [exempt by the rules: t.a, t.b; would fail, severity warn in the rules]'
        """
        parts = []
        if self.exempt(check):
            parts.append(f"exempt by the rules: {', '.join(sorted(self.exempt(check)))}")
        if downgraded:
            parts.append("would fail, severity warn in the rules")
        return f" [{'; '.join(parts)}]" if parts else ""

    def to_dict(self) -> dict[str, Any]:
        """What the report records about the configuration of the checks."""
        return {
            "severities": {name: self.severity(name) for name in CHECK_NAMES},
            "thresholds": {k: v for k, v in self.thresholds.items() if v},
            "quasi_identifiers": [{"table": q.table, "columns": list(q.columns), "k_min": q.k_min,
                                   "max_unique_share": q.max_unique_share} for q in self.quasi_identifiers],
        }


def parse_check_settings(policy: Policy, model: SchemaModel | None = None) -> CheckSettings:
    """Validate the two blocks; with ``model``, tables and columns must exist. Errors name file and key."""
    file = str(policy.path)
    settings = CheckSettings()
    checks = Node(policy.checks, file, "checks", getattr(policy.checks, "line", None), RulesError)
    for name, node in checks.items():
        if name not in CHECK_NAMES:
            raise node.error(f"unknown check '{name}'{did_you_mean(name, CHECK_NAMES)}; "
                             f"known: {', '.join(CHECK_NAMES)}")
        if isinstance(node.value, str):
            settings.severities[name] = _severity(node)
            continue
        node.check_keys({"severity", *CHECK_NAMES[name]})
        if node.get("severity") is not None:
            settings.severities[name] = _severity(node["severity"])
        values: dict[str, Any] = {}
        if node.get("max_matches") is not None:
            values["max_matches"] = node["max_matches"].integer(minimum=0)
        if node.get("exempt") is not None:
            values["exempt"] = sorted(_column_name(n, model) for n in node["exempt"].as_list())
        if node.get("k_min") is not None:
            values["k_min"] = node["k_min"].integer(minimum=1)
        if node.get("max_unique_share") is not None:
            values["max_unique_share"] = node["max_unique_share"].number(0.0, 1.0)
        settings.thresholds[name] = values
    k_min = settings.threshold("k_anonymity", "k_min", DEFAULT_K_MIN)
    unique_share = settings.threshold("k_anonymity", "max_unique_share", DEFAULT_MAX_UNIQUE_SHARE)
    quasi = Node(policy.quasi_identifiers, file, "quasi_identifiers", getattr(policy.quasi_identifiers, "line", None),
                 RulesError)
    for item in quasi.as_list() if policy.quasi_identifiers else []:
        item.check_keys({"table", "columns", "k_min", "max_unique_share"})
        table = item["table"].text()
        columns = tuple(n.text() for n in item["columns"].as_list())
        if not columns:
            raise item["columns"].error("name at least one column")
        if model is not None:
            key = model.resolve(table)
            if key is None:
                raise item["table"].error(f"unknown table '{table}'{did_you_mean(table, list(model.tables))}")
            table = key
            for column in columns:
                if column not in model.tables[key].columns:
                    raise item["columns"].error(f"table {key} has no column '{column}'"
                                                f"{did_you_mean(column, list(model.tables[key].columns))}")
        settings.quasi_identifiers.append(QuasiIdentifierSet(
            table=table, columns=columns,
            k_min=item["k_min"].integer(minimum=1) if item.get("k_min") is not None else k_min,
            max_unique_share=item["max_unique_share"].number(0.0, 1.0) if item.get("max_unique_share") is not None
            else unique_share,
            path=item.path,
        ))
    return settings


def _severity(node: Node) -> str:
    value = node.text()
    if value not in SEVERITIES:
        raise node.error(f"severity must be fail or warn, got '{value}'{did_you_mean(value, SEVERITIES)}")
    return value


def _column_name(node: Node, model: SchemaModel | None) -> str:
    text = node.text()
    table, _, column = text.rpartition(".")
    if not table or not column:
        raise node.error(f"write exempt columns as table.column, got '{text}'")
    if model is not None:
        key = model.resolve(table)
        if key is None or column not in model.tables[key].columns:
            raise node.error(f"no column {text} in the source")
        return f"{key}.{column}"
    return text
