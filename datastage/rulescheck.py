"""``datastage rules check``: validate a rules file against the reflected source schema.

Every problem is collected (not only the first): unknown tables, columns, strategies and
parameters with a "did you mean", type mismatches, uniqueness conflicts, columns in scope
without a rule (the fail-closed gate), and columns that appeared since the environment's
last refresh. Each error names file, line and key path. Every rule still marked
``REVIEW`` is an error (a person has to decide it), with or without ``strict``. Columns
left to ``default: keep`` or ``default: null`` and schema drift are warnings; ``strict``
makes warnings errors.

Example (a misspelt column, which leaves the real one without a rule):
    >>> import sqlite3, tempfile
    >>> from datastage.settings import load_project
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = sqlite3.connect(folder / "prod.db").execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT)")
    >>> _ = (folder / "datastage.yaml").write_text('source: {url: "sqlite:///prod.db"}\\n'
    ...     'masking: {key_file: masking.key}\\nenvironments: {qa: {url: "sqlite:///qa.db", rules: pii.yaml}}\\n')
    >>> _ = (folder / "pii.yaml").write_text("version: 1\\ntables:\\n  customer: {id: keep, emial: email}\\n")
    >>> result = check_rules(load_project(folder / "datastage.yaml"), None, "qa")
    >>> result.exit_code
    2
    >>> for line in result.failed: print(line)  # doctest: +ELLIPSIS
    /.../pii.yaml:3: tables.customer.emial: table customer has no column 'emial' (did you mean 'email'?)
    /.../pii.yaml:1: 1 column(s) in scope have no rule (default: fail): customer.email; add a strategy or ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datastage.discover.scan import DEFAULT_SAMPLE_ROWS, scan_source
from datastage.errors import EXIT_OK, EXIT_USAGE, RulesError, UsageError
from datastage.mask.checkspec import parse_check_settings
from datastage.mask.policy import Policy, load_policy
from datastage.mask.resolve import ResolvedPolicy, resolve_policy
from datastage.report.history import last_schema, schema_drift
from datastage.settings import Environment, Project
from datastage.source.db import make_engine, snapshot
from datastage.source.schema import SchemaModel, reflect


@dataclass
class RulesCheckResult:
    """The outcome of checking one rules file: errors, warnings and the resolved policy."""

    rules: Path
    environment: str | None
    errors: list[RulesError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    drift: dict[str, list[str]] = field(default_factory=dict)
    policy: ResolvedPolicy | None = None
    strict: bool = False
    reviews: list[dict[str, Any]] = field(default_factory=list)  # rules marked REVIEW (each also an error)

    @property
    def failed(self) -> list[str]:
        """Error lines (``file:line: key: message``), warnings included under ``strict``."""
        lines = [str(e) for e in self.errors]
        if self.strict:
            lines += [f"{self.rules}: {w} (--strict)" for w in self.warnings]
        return lines

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_USAGE

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": str(self.rules),
            "environment": self.environment,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "strict": self.strict,
            "errors": [{"message": str(e), **{k: v for k, v in e.to_dict().items() if k in ("file", "line", "key")}}
                       for e in self.errors],
            "warnings": list(self.warnings),
            "schema_drift": self.drift,
            "reviews": list(self.reviews),
            "columns": ([{"table": d.table, "column": d.column, "status": d.status, "treatment": d.treatment,
                          "inherited_from": d.rule.inherited_from if d.rule else None,
                          "classification": d.classification, "classified_reason": d.classified_reason}
                         for d in self.policy.decisions.values()] if self.policy else []),
        }


def new_columns_of(drift: dict[str, list[str]], columns: dict[str, list[str]]) -> set[str]:
    """``table.column`` names that appeared since the last refresh (columns of new tables included)."""
    new = set(drift.get("added_columns", []))
    for table in drift.get("added_tables", []):
        new.update(f"{table}.{c}" for c in columns.get(table, []))
    return new


def drift_warnings(drift: dict[str, list[str]]) -> list[str]:
    """One line per kind of schema change since the last refresh."""
    out = []
    if drift.get("added_tables"):
        out.append(f"{len(drift['added_tables'])} table(s) new since the last refresh: "
                   f"{', '.join(drift['added_tables'])}")
    if drift.get("added_columns"):
        out.append(f"{len(drift['added_columns'])} column(s) new since the last refresh: "
                   f"{', '.join(drift['added_columns'])}")
    return out


def check_policy_file(rules: Path, model: SchemaModel, *, env: Environment | None = None,
                      drift: dict[str, list[str]] | None = None, strict: bool = False,
                      personal: Mapping[tuple[str, str], str] | None = None) -> RulesCheckResult:
    """Check ``rules`` against a reflected ``model`` (and the environment's scope), collecting every problem.

    ``personal`` (the scan's personal columns) applies the same coverage gate as a refresh.
    """
    result = RulesCheckResult(rules=rules, environment=env.name if env else None, strict=strict,
                              drift=drift or {})
    policy = _load_for_check(rules, result)
    if policy is None:
        return result
    return _check_loaded(result, policy, model, env, personal)


def _load_for_check(rules: Path, result: RulesCheckResult) -> Policy | None:
    """The parsed policy (problems in single rules collected in ``result``), or None when the file
    itself cannot be read, is too large or is not valid YAML."""
    try:
        return load_policy(rules, result.errors)
    except RulesError as exc:
        result.errors.append(exc)
        return None


def _check_loaded(result: RulesCheckResult, policy: Policy, model: SchemaModel, env: Environment | None,
                  personal: Mapping[tuple[str, str], str] | None) -> RulesCheckResult:
    out_of_scope: set[str] = set()
    kept: set[str] = set()
    if env is not None:
        for name in env.subset.exclude:
            try:
                out_of_scope.add(model.table(name).key)
            except Exception as exc:  # noqa: BLE001 - reported as a config problem below
                result.errors.append(RulesError(str(exc)))
        for name in env.keep:
            if model.resolve(name):
                kept.add(model.table(name).key)
    columns = {t.key: list(t.columns) for t in model.tables.values()}
    result.reviews = [{"table": r.table, "column": r.column, "file": r.origin.file if r.origin else str(result.rules),
                       "line": r.origin.line if r.origin else None, "key": r.origin.path if r.origin else None,
                       "text": r.review} for r in policy.reviews]
    result.policy = resolve_policy(policy, model, out_of_scope=out_of_scope, kept_from_target=kept,
                                   new_columns=new_columns_of(result.drift, columns), errors=result.errors,
                                   personal=personal)
    try:
        parse_check_settings(policy, model)
    except RulesError as exc:
        result.errors.append(exc)
    result.warnings = list(result.policy.warnings) + drift_warnings(result.drift)
    return result


def check_rules(project: Project, rules: str | os.PathLike[str] | None = None, environment: str | None = None,
                *, strict: bool = False) -> RulesCheckResult:
    """Reflect the source of ``project`` (read-only) and check ``rules`` (default: the environment's).

    Without ``environment``, a project with exactly one environment is checked for that one (its
    scope, its rules file and its schema drift); with several, none applies unless named.
    """
    name = environment or project.only_environment
    env = project.environment(name) if name else None
    if rules is not None:
        path = Path(rules)
    elif env is not None and env.rules is not None:
        path = env.rules
    else:
        raise UsageError("name the rules file with --rules (or an environment with rules: via --env)")
    # The file is read and parsed first: a file that is too large or malformed fails before the
    # source is touched.
    result = RulesCheckResult(rules=path, environment=env.name if env else None, strict=strict)
    policy = _load_for_check(path, result)
    if policy is None:
        return result
    source = make_engine(project.source_url, read_only=True, role="source database")
    try:
        with snapshot(source) as conn:
            model = reflect(conn, project.source_schemas, env.subset if env else None, project.schemas_origin)
            personal = scan_source(conn, model, sample_rows=DEFAULT_SAMPLE_ROWS).personal()
    finally:
        source.dispose()
    drift: dict[str, list[str]] = {}
    if env is not None:
        columns = {t.key: list(t.columns) for t in model.tables.values()}
        drift = schema_drift(last_schema(project.state_dir, env.name), columns)
    result.drift = drift
    return _check_loaded(result, policy, model, env, personal)
