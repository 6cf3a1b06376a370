"""Measures discovery against the corpus's ground truth, through the public API only.

For one labelled database: scan it (``scan_source``), propose rules (``propose_rules``),
resolve the proposal against the schema (``resolve_policy``) and compare each column with
its label. A column is

- *found* when the scan classifies it as personal data (or the proposal masks it, e.g. a
  key that inherits the rule of the masked key it references);
- *masked* when the resolved proposal protects it (a masking strategy, own or inherited);
- *review* when the proposal keeps it with a ``REVIEW`` reason (a person must decide).

Figures: recall of direct identifiers (found, and masked), recall of all personal columns,
false positives (columns that hold no personal data and that the proposal masks), class
accuracy (found personal columns given their labelled classification), kind accuracy
(found personal columns given a labelled kind), strategy accuracy (masked text columns given
the rule the taxonomy names for their kind), each miss and false positive by name, and the
scan's seconds. Judgement calls (labels with a defensible alternative) are counted apart.

Example:
    >>> import tempfile
    >>> from corpus_dbs import build_generated
    >>> db = build_generated("crime", f"sqlite:///{tempfile.mkdtemp()}/crime.db")
    >>> result = measure(db)
    >>> result.columns > 30, 0 <= result.direct_recall <= 1
    (True, True)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from corpus_dbs import CorpusDB
from corpus_kit import Label

from datastage.discover.proposals import propose_rules
from datastage.discover.scan import ScanResult, scan_source
from datastage.errors import DatastageError
from datastage.identify.kinds import KINDS
from datastage.mask.policy import policy_from_text
from datastage.mask.resolve import resolve_policy
from datastage.source.db import make_engine, snapshot
from datastage.source.schema import SchemaModel, reflect

PERSONAL = ("direct_identifier", "quasi_identifier", "sensitive")


@dataclass
class ColumnOutcome:
    """One column: its label, what the scan said, and what the proposal does with it."""

    table: str
    column: str
    label: Label
    classification: str
    kind: str | None
    masked: bool
    review: bool
    rule: str
    category: str = "text"
    strategy: str | None = None

    @property
    def expected_strategies(self) -> set[str]:
        """The rules the taxonomy gives a text column of the labelled kinds (empty: a person decides)."""
        if self.category != "text":
            return set()
        return {s for k in self.label.kinds if (s := KINDS[k].text_strategy)}

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    @property
    def found(self) -> bool:
        return self.classification in PERSONAL or self.masked

    def describe(self) -> str:
        """``table.column [label] -> scan: class/kind, rule``, for lists of misses and false positives."""
        kinds = f"/{'|'.join(self.label.kinds)}" if self.label.kinds else ""
        return (f"{self.name} [{_short(self.label.classification)}{kinds}] -> {_short(self.classification)}"
                f"{'/' + self.kind if self.kind else ''}, {self.rule}")


def _short(classification: str) -> str:
    return {"direct_identifier": "direct", "quasi_identifier": "quasi", "non_personal": "non-personal"}.get(
        classification, classification)


@dataclass
class Measurement:
    """Discovery's figures on one corpus database."""

    database: str
    style: str
    outcomes: list[ColumnOutcome]
    scan_seconds: float
    propose_seconds: float
    proposal_error: str | None = None
    review_rules: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    # -- selections --------------------------------------------------------------------
    def _where(self, predicate: Any) -> list[ColumnOutcome]:
        return [o for o in self.outcomes if predicate(o)]

    @property
    def columns(self) -> int:
        return len(self.outcomes)

    @property
    def direct(self) -> list[ColumnOutcome]:
        return self._where(lambda o: o.label.classification == "direct_identifier" and o.label.must_catch)

    @property
    def personal(self) -> list[ColumnOutcome]:
        return self._where(lambda o: o.label.must_catch)

    @property
    def non_personal(self) -> list[ColumnOutcome]:
        return self._where(lambda o: o.label.must_keep)

    @property
    def judgement(self) -> list[ColumnOutcome]:
        return self._where(lambda o: o.label.judgement)

    @property
    def missed_direct(self) -> list[ColumnOutcome]:
        """Direct identifiers the scan did not find."""
        return [o for o in self.direct if not o.found]

    @property
    def unmasked_direct(self) -> list[ColumnOutcome]:
        """Direct identifiers the proposal does not mask (found or not)."""
        return [o for o in self.direct if not o.masked]

    @property
    def missed_personal(self) -> list[ColumnOutcome]:
        return [o for o in self.personal if not o.found]

    @property
    def false_positives(self) -> list[ColumnOutcome]:
        """Columns holding no personal data that the proposal masks."""
        return [o for o in self.non_personal if o.masked]

    @property
    def flagged_non_personal(self) -> list[ColumnOutcome]:
        """Columns holding no personal data that the scan calls personal (masked or not)."""
        return [o for o in self.non_personal if o.classification in PERSONAL]

    @property
    def wrong_class(self) -> list[ColumnOutcome]:
        """Columns called personal with a classification their label does not accept (``race`` or an eye colour
        as a direct identifier); non-personal ones are counted as false positives instead."""
        return [o for o in self.outcomes if o.classification in PERSONAL and not o.label.must_keep
                and not o.label.accepts(o.classification)]

    @property
    def wrong_strategy(self) -> list[ColumnOutcome]:
        """Masked text columns whose strategy is not the one the taxonomy gives their kind (``person.*``,
        ``phone``, ``tokenize``, ``scrub``, ...): type-blind or incoherent proposals."""
        return [o for o in self.personal if o.masked and o.expected_strategies
                and o.strategy not in o.expected_strategies]

    @property
    def wrong_kind(self) -> list[ColumnOutcome]:
        return [o for o in self.personal if o.classification in PERSONAL and o.label.kinds
                and o.kind not in o.label.kinds]

    # -- figures -----------------------------------------------------------------------
    @staticmethod
    def _share(part: int, whole: int) -> float:
        return part / whole if whole else 1.0

    @property
    def direct_recall(self) -> float:
        return self._share(len(self.direct) - len(self.missed_direct), len(self.direct))

    @property
    def direct_masked(self) -> float:
        return self._share(len(self.direct) - len(self.unmasked_direct), len(self.direct))

    @property
    def personal_recall(self) -> float:
        return self._share(len(self.personal) - len(self.missed_personal), len(self.personal))

    @property
    def class_accuracy(self) -> float:
        found = [o for o in self.outcomes if o.classification in PERSONAL and not o.label.must_keep]
        return self._share(len(found) - len(self.wrong_class), len(found))

    @property
    def kind_accuracy(self) -> float:
        found = [o for o in self.personal if o.classification in PERSONAL and o.label.kinds]
        return self._share(len(found) - len(self.wrong_kind), len(found))

    @property
    def strategy_accuracy(self) -> float:
        judged = [o for o in self.personal if o.masked and o.expected_strategies]
        return self._share(len(judged) - len(self.wrong_strategy), len(judged))

    def report(self) -> str:
        """A multi-line account: the figures, then every miss and false positive by name."""
        lines = [f"{self.database}: {self.style}; {self.columns} columns, scan {self.scan_seconds:.2f} s",
                 f"  direct identifiers: {len(self.direct)}, found {self.direct_recall:.0%}, "
                 f"masked {self.direct_masked:.0%}; personal: {len(self.personal)}, found {self.personal_recall:.0%}",
                 f"  non-personal: {len(self.non_personal)}, masked (false positives) {len(self.false_positives)}, "
                 f"called personal {len(self.flagged_non_personal)}; judgement calls {len(self.judgement)} "
                 f"(masked {sum(o.masked for o in self.judgement)})",
                 f"  class accuracy {self.class_accuracy:.0%}, kind accuracy {self.kind_accuracy:.0%}, "
                 f"strategy accuracy {self.strategy_accuracy:.0%}"]
        if self.review_rules:
            lines.append(f"  {self.review_rules} proposed rule(s) marked REVIEW: a person decides")
        if self.proposal_error:
            lines.append(f"  proposal did not resolve: {self.proposal_error}")
        for title, items in (("direct identifiers not masked", self.unmasked_direct),
                             ("personal columns not found", [o for o in self.missed_personal
                                                             if o not in self.unmasked_direct]),
                             ("false positives (masked, not personal)", self.false_positives),
                             ("called personal, not masked", [o for o in self.flagged_non_personal if not o.masked]),
                             ("wrong classification", self.wrong_class),
                             ("wrong kind", [o for o in self.wrong_kind if o not in self.wrong_class]),
                             ("strategy not the taxonomy's", self.wrong_strategy)):
            if items:
                lines.append(f"  {title} ({len(items)}):")
                lines.extend(f"    {o.describe()}" + (f" (expected {' or '.join(sorted(o.expected_strategies))})"
                                                 if title.startswith("strategy") else "") for o in items)
        return "\n".join(lines)


def _check_truth(db: CorpusDB, result: ScanResult) -> None:
    found, labelled = set(result.findings), set(db.truth)
    if found != labelled:
        raise AssertionError(f"{db.name}: ground truth and schema differ: unlabelled columns "
                             f"{sorted(found - labelled)}, labelled but absent {sorted(labelled - found)}")


Treatment = tuple[bool, bool, str, str | None]  # masked, review, rule as text, strategy name


def _treatments(text: str, model: SchemaModel) -> tuple[dict[tuple[str, str], Treatment], str | None, int]:
    """(table, column) -> (masked, review, rule, strategy) from a proposed rules file, resolved against ``model``;
    and the first errors other than REVIEW markers, and the number of REVIEW markers."""
    out: dict[tuple[str, str], Treatment] = {}
    error: str | None = None
    reviews = 0
    try:
        errors: list[Any] = []
        resolved = resolve_policy(policy_from_text(text), model, errors=errors)
        others = [str(e).splitlines()[0] for e in errors if "REVIEW" not in str(e)]
        reviews = len(errors) - len(others)
        if others:
            error = "; ".join(others[:3])
        for slot, decision in resolved.decisions.items():
            masked = decision.status == "protected"
            review = bool(decision.reason and "REVIEW" in decision.reason)
            out[slot] = (masked, review, decision.treatment if masked else
                         (f"keep ({decision.reason})" if decision.reason else "keep"),
                         decision.rule.strategy if masked and decision.rule else None)
        return out, error, reviews
    except DatastageError as exc:  # read the YAML as written instead
        error = str(exc).splitlines()[0]
    tables = (yaml.safe_load(text) or {}).get("tables") or {}
    for table, columns in tables.items():
        for column, rule in (columns or {}).items():
            strategy = rule.get("strategy") if isinstance(rule, dict) else rule
            reason = str(rule.get("reason", "")) if isinstance(rule, dict) else ""
            out[(model.resolve(table) or table, column)] = (strategy != "keep", "REVIEW" in reason, str(strategy),
                                                            None if strategy == "keep" else str(strategy))
            reviews += "REVIEW" in reason
    return out, error, reviews


def measure(db: CorpusDB, sample_rows: int = 1000, seed: int = 0) -> Measurement:
    """Scan ``db``, propose rules and compare both with its ground truth."""
    engine = make_engine(db.url, read_only=True)
    try:
        with snapshot(engine) as conn:
            model = reflect(conn, db.schemas)
            started = time.perf_counter()
            result = scan_source(conn, model, sample_rows=sample_rows, seed=seed)
            scan_seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    _check_truth(db, result)
    started = time.perf_counter()
    text = propose_rules(result, model)
    treatments, error, reviews = _treatments(text, model)
    propose_seconds = time.perf_counter() - started
    outcomes = []
    for slot, finding in result.findings.items():
        masked, review, rule, strategy = treatments.get(slot, (False, False, "no rule", None))
        category = model.tables[slot[0]].columns[slot[1]].category
        outcomes.append(ColumnOutcome(slot[0], slot[1], db.truth[slot], finding.classification, finding.kind,
                                      masked, review, rule, category, strategy))
    return Measurement(db.label, db.style, outcomes, scan_seconds, propose_seconds, error, reviews)


@dataclass
class Totals:
    """The corpus's figures over several databases."""

    measurements: list[Measurement]

    def _sum(self, attribute: str) -> int:
        return sum(len(getattr(m, attribute)) for m in self.measurements)

    @property
    def direct_recall(self) -> float:
        total = self._sum("direct")
        return (total - self._sum("missed_direct")) / total if total else 1.0

    @property
    def direct_masked(self) -> float:
        total = self._sum("direct")
        return (total - self._sum("unmasked_direct")) / total if total else 1.0

    @property
    def personal_recall(self) -> float:
        total = self._sum("personal")
        return (total - self._sum("missed_personal")) / total if total else 1.0


def table(measurements: Iterable[Measurement]) -> str:
    """A Markdown table: one row per database and a total."""
    rows = list(measurements)
    head = ("| database | columns | direct ids | found | masked | personal | found | FPs (masked) "
            "| called personal | class acc. | kind acc. | strategy acc. | REVIEW | scan s |")
    lines = [head, "|" + " --- |" * 14]

    def row(name: str, ms: list[Measurement]) -> str:
        total = Totals(ms)
        direct = sum(len(m.direct) for m in ms)
        personal = sum(len(m.personal) for m in ms)
        found_cls = sum(len([o for o in m.outcomes if o.classification in PERSONAL and not o.label.must_keep])
                        for m in ms)
        found_kind = sum(len([o for o in m.personal if o.classification in PERSONAL and o.label.kinds]) for m in ms)
        cls = 1 - sum(len(m.wrong_class) for m in ms) / found_cls if found_cls else 1.0
        kind = 1 - sum(len(m.wrong_kind) for m in ms) / found_kind if found_kind else 1.0
        judged = sum(len([o for o in m.personal if o.masked and o.expected_strategies]) for m in ms)
        strategy = 1 - sum(len(m.wrong_strategy) for m in ms) / judged if judged else 1.0
        return (f"| {name} | {sum(m.columns for m in ms)} | {direct} | {total.direct_recall:.0%} "
                f"| {total.direct_masked:.0%} | {personal} | {total.personal_recall:.0%} "
                f"| {sum(len(m.false_positives) for m in ms)} | {sum(len(m.flagged_non_personal) for m in ms)} "
                f"| {cls:.0%} | {kind:.0%} | {strategy:.0%} | {sum(m.review_rules for m in ms)} "
                f"| {sum(m.scan_seconds for m in ms):.2f} |")

    lines.extend(row(m.database, [m]) for m in rows)
    first: dict[str, Measurement] = {}
    for m in rows:  # a database measured on several dialects counts once, as first measured
        first.setdefault(m.database.split(" (")[0], m)
    once = list(first.values())
    if len(once) > 1:
        lines.append(row(f"**all** ({len(once)} databases, each once)", once))
    return "\n".join(lines)
