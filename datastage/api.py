"""The library: one function per CLI command, returning the objects the CLI renders.

Each function takes the environment (where it has one) and ``config=``: a path to
datastage.yaml or an already loaded :class:`~datastage.settings.Project`.

Example (a one-table project in a temporary folder; its staging copy gets birth decades, not years):
    >>> import sqlite3, tempfile
    >>> import datastage
    >>> from datastage.mask.keys import write_key_file
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = sqlite3.connect(folder / "prod.db").executescript("CREATE TABLE customer (id INTEGER PRIMARY KEY,"
    ...                                                        " born INTEGER); INSERT INTO customer VALUES (1, 1984);")
    >>> _ = write_key_file(folder / "masking.key")
    >>> _ = (folder / "rules.yaml").write_text("version: 1\\ntables: {customer: {born: {strategy: generalize,"
    ...                                          " bucket: 10}}}\\n")
    >>> config = folder / "datastage.yaml"
    >>> _ = config.write_text("source: {url: sqlite:///prod.db}\\nmasking: {key_file: masking.key}\\n"
    ...                       "environments: {staging: {url: sqlite:///staging.db, rules: rules.yaml}}\\n")
    >>> result = datastage.refresh("staging", config=config)
    >>> result.verdict, result.exit_code, [run["kind"] for run in datastage.history(config=config)]
    ('pass', 0, ['refresh'])
    >>> sqlite3.connect(folder / "staging.db").execute("SELECT id, born FROM customer").fetchall()
    [(1, 1980)]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datastage.demo import DemoResult, build_demo
from datastage.discover.proposals import propose_rules as _propose
from datastage.discover.proposals import write_rules_file
from datastage.discover.scan import DEFAULT_SAMPLE_ROWS, ScanOutcome, scan_project
from datastage.errors import UsageError
from datastage.logs import configure_logging
from datastage.mask.contract import StrategySpec
from datastage.mask.keys import write_key_file
from datastage.mask.registry import all_strategies
from datastage.ops.artifacts.export import ExportResult, export_environment
from datastage.ops.artifacts.manifest import NAMESPACE as ARTIFACT_NAMESPACE
from datastage.ops.artifacts.restore import ImportResult, import_folder
from datastage.ops.envops import RefreshOps
from datastage.ops.ondemand import Provisioned, environments, parse_ttl
from datastage.ops.ondemand import gc as _gc
from datastage.ops.ondemand import provision as _provision
from datastage.ops.ondemand import teardown as _teardown
from datastage.ops.schedule import Scheduler, load_state, schedules
from datastage.pipeline import DEFAULT_PREVIEW_ROWS, PreviewResult, RefreshResult, run_refresh
from datastage.pipeline import plan as _plan
from datastage.pipeline import preview as _preview
from datastage.plan import PlanResult
from datastage.progress import Progress
from datastage.report.compose import VerifyOutcome, load_report, verify_report_file
from datastage.report.findings import report_findings as _report_findings
from datastage.report.history import find_run, of_kind, read_history
from datastage.report.records import PENDING, complete_pending, run_rollback
from datastage.report.signing import PUBLIC_KEY_NAME, read_trusted_keys, write_signing_key
from datastage.results import NewKey, RollbackResult
from datastage.rulescheck import RulesCheckResult
from datastage.rulescheck import check_rules as _check_rules
from datastage.secrets import get_logger
from datastage.settings import Project, config_path, load_project
from datastage.signals import sigterm_stops
from datastage.source.identity import check_target_safety

ConfigArg = str | os.PathLike[str] | Project | None

__all__ = ["check_rules", "demo", "envs", "export", "gc", "history", "import_artifact", "load_project", "new_key",
           "plan", "preview",
           "propose_rules", "provision", "refresh", "report", "report_entry", "report_findings", "rollback", "scan",
           "schedule_list", "schedule_run", "strategies", "teardown", "verify_report", "write_proposed_rules"]


def project_of(config: ConfigArg) -> Project:
    """A loaded project from a path, ``$DATASTAGE_CONFIG``, ``./datastage.yaml`` or a Project."""
    return config if isinstance(config, Project) else load_project(config)


def refresh(
    environment: str,
    *,
    rules: str | os.PathLike[str] | None = None,
    config: ConfigArg = None,
    trigger: str = "library",
    progress: Progress | None = None,
) -> RefreshResult:
    """Refresh ``environment``: subset, mask, load into a shadow, verify, swap, report.

    Returns the result (``verdict`` ``fail`` with ``exit_code`` 3 when a check failed and
    the target was left untouched); raises a :class:`~datastage.errors.DatastageError`
    for anything else that went wrong. SIGINT raises :class:`~datastage.errors.Interrupted`
    (a ``KeyboardInterrupt``), SIGTERM :class:`~datastage.errors.Terminated` (a ``SystemExit``
    with code 143), after the run was recorded; their text says whether the new copy is live.
    """
    with sigterm_stops():  # SIGTERM ends the refresh like Ctrl-C (unless the program handles SIGTERM itself)
        return run_refresh(project_of(config), environment, operations=RefreshOps, rules=rules, trigger=trigger,
                           progress=progress)


def plan(environment: str, *, rules: str | os.PathLike[str] | None = None, config: ConfigArg = None,
         trigger: str = "library") -> PlanResult:
    """What a refresh of ``environment`` would copy and how each column would be treated.

    Writes no database; records a plan report and a history line.
    """
    return _plan(project_of(config), environment, rules=rules, trigger=trigger)


def preview(table: str, *, environment: str | None = None, rows: int = DEFAULT_PREVIEW_ROWS,
            rules: str | os.PathLike[str] | None = None, config: ConfigArg = None) -> PreviewResult:
    """The first ``rows`` rows a refresh would copy of ``table`` (``schema.table`` allowed), each column's
    source value beside the masked value a refresh loads (the same engine, key and pseudonyms).

    ``environment`` may be left out when the project has exactly one. Reads the source read-only;
    writes nothing anywhere (no target, report, history line or logged value).
    """
    project = project_of(config)
    if environment is None:
        if len(project.environments) != 1:
            known = ", ".join(sorted(project.environments)) or "none"
            raise UsageError(f"name the environment whose rules to preview with --env (known: {known})")
        environment = next(iter(project.environments))
    return _preview(project, environment, table, rows=rows, rules=rules)


def rollback(environment: str, *, config: ConfigArg = None, trigger: str = "library") -> RollbackResult:
    """Swap the previous copy of ``environment`` back in (the current one becomes the previous).

    Recorded in the history (kind ``rollback``); ``live_run_id`` names the run whose copy is live now.
    """
    project = project_of(config)
    env = project.environment(environment)
    check_target_safety(project, env)
    return run_rollback(project, env, trigger=trigger)


def demo(directory: str | os.PathLike[str] = "demo", *, scale: int = 1, seed: int = 42) -> DemoResult:
    """Build the demo project (sample production database, config, rules, key) in ``directory``."""
    return build_demo(Path(directory), scale=scale, seed=seed)


def strategies() -> list[StrategySpec]:
    """Every masking strategy in the registry."""
    return all_strategies()


def check_rules(
    rules: str | os.PathLike[str] | None = None,
    *,
    environment: str | None = None,
    config: ConfigArg = None,
    strict: bool = False,
) -> RulesCheckResult:
    """Check a rules file against the reflected source schema; collects every problem.

    ``environment`` (default: the project's only environment, when it has exactly one) adds its
    scope (excluded and kept tables), its rules file when ``rules`` is None, and schema drift
    since its last refresh. ``result.exit_code`` is 2
    when there are errors (or warnings with ``strict``).
    """
    return _check_rules(project_of(config), rules, environment, strict=strict)


def history(environment: str | None = None, *, config: ConfigArg = None, kind: str = "all") -> list[dict[str, Any]]:
    """Past runs (oldest first), optionally of one environment and of one ``kind``: ``refresh``
    (refreshes and rollbacks), ``plan``, ``provision`` (provisions and teardowns), ``artifact`` (exports
    and imports) or ``all``."""
    project = project_of(config)
    if environment is not None:
        project.environment(environment)
    of_kind([], kind)  # an unknown kind is refused before anything is read
    complete_pending(project, environment)
    return of_kind(read_history(project.state_dir, environment), kind)


def report_entry(run_id: str, *, config: ConfigArg = None) -> dict[str, Any]:
    """The history entry of one run (its report paths included)."""
    project = project_of(config)
    entry = find_run(project.state_dir, run_id)
    if entry.get("verdict") == PENDING and complete_pending(project, str(entry.get("environment"))):
        entry = find_run(project.state_dir, run_id)
    if not entry.get("report_json"):
        raise UsageError(f"run {entry['run_id']} has no report")
    return entry


def scan(environment: str | None = None, *, config: ConfigArg = None, sample_rows: int = DEFAULT_SAMPLE_ROWS,
         seed: int = 0) -> ScanOutcome:
    """Classify every source column (names and a seeded sample of values); with ``environment``, compare
    with its rules."""
    if sample_rows < 1:
        raise UsageError("--sample must be at least 1")
    return scan_project(project_of(config), environment, sample_rows=sample_rows, seed=seed)


def propose_rules(outcome: ScanOutcome, *, locale: str = "en_US") -> str:
    """A reviewable rules file (YAML text) covering every column of a scan."""
    return _propose(outcome.result, outcome.model, source=outcome.source, locale=locale)


def write_proposed_rules(outcome: ScanOutcome, path: str | os.PathLike[str], *, force: bool = False,
                         locale: str = "en_US") -> Path:
    """Write :func:`propose_rules` of a scan to ``path`` (its folders created; an existing file only
    with ``force``); returns the path."""
    return write_rules_file(Path(path), propose_rules(outcome, locale=locale), force=force)


def report(run_id: str, *, config: ConfigArg = None) -> dict[str, Any]:
    """The report of one run (a unique run-id prefix is enough)."""
    entry = report_entry(run_id, config=config)
    return load_report(Path(entry["report_json"]))


def report_findings(run_id: str, *, config: ConfigArg = None) -> list[dict[str, Any]]:
    """The leak findings of one run's report: per finding its check and status, the column it was found in,
    its origin (source columns), kind, count and the target's primary keys of up to 20 rows."""
    return _report_findings(report(run_id, config=config))


def verify_report(path: str | os.PathLike[str], *, public_key: str | os.PathLike[str] | None = None,
                  allowed_signers: str | os.PathLike[str] | None = None, config: ConfigArg = None) -> VerifyOutcome:
    """Check a report file (JSON or HTML) against its detached signature ``FILE.sig`` with a public key.

    The key is ``public_key`` (an OpenSSH ``.pub`` file) or any key of ``allowed_signers`` (the file
    ``ssh-keygen -Y verify -f`` reads); without either, the project's own ``signing.pub`` in its state
    folder (from ``config``, ``$DATASTAGE_CONFIG`` or ``./datastage.yaml`` when they exist). The masking
    key is never needed.
    """
    if public_key is not None or allowed_signers is not None:
        trusted = read_trusted_keys(Path(public_key) if public_key is not None else None,
                                    Path(allowed_signers) if allowed_signers is not None else None)
    else:
        trusted = []
        if isinstance(config, Project) or config is not None or config_path(None).is_file():
            own = project_of(config).state_dir / PUBLIC_KEY_NAME
            trusted = read_trusted_keys(own) if own.is_file() else []
    return verify_report_file(Path(path), trusted)


def new_key(path: str | os.PathLike[str] | None = None, *, signing: bool = False, encoding: str = "hex") -> NewKey:
    """Create a key file that never existed: a masking key (32 random bytes as ``hex`` or ``base64``
    text, default ``masking.key``) or, with ``signing``, an Ed25519 report-signing key (OpenSSH private
    key, default ``signing.key``) and its public key ``PATH.pub``. Both are mode 600; an existing file
    is refused."""
    if signing:
        written = write_signing_key(Path(path if path is not None else "signing.key"))
        assert written.path is not None
        return NewKey(written.path, "signing", written.fingerprint, Path(f"{written.path}.pub"))
    target = Path(path if path is not None else "masking.key")
    return NewKey(target, "masking", write_key_file(target, encoding).key_id)


def schedule_list(*, config: ConfigArg = None, count: int = 3) -> list[dict[str, Any]]:
    """Each scheduled environment with its cron, zone, last run and next ``count`` runs."""
    project = project_of(config)
    state = load_state(project)
    now = datetime.now(UTC)
    rows = []
    for spec in schedules(project):
        entry = state.get(spec.environment)
        rows.append({
            "environment": spec.environment, "cron": spec.cron, "timezone": spec.timezone,
            "last_slot": entry.last_slot if entry else None,
            "last_outcome": entry.last_verdict if entry else None,
            "next_runs": [t.isoformat() for t in spec.next_runs(now, count)],
        })
    return rows


def schedule_run(*, config: ConfigArg = None, once: bool = False, poll_seconds: float = 30.0,
                 echo: Callable[[Any], None] | None = None) -> list[Any]:
    """Run scheduled refreshes: what is due now (``once``), or until SIGTERM/SIGINT.

    The first signal lets the refresh in progress finish; a second one abandons it (its
    shadow is discarded, the target stays as it was).
    """
    scheduler = Scheduler(project_of(config), poll_seconds=poll_seconds)
    if echo is not None:
        scheduler.on_record = echo
    if once:
        return scheduler.run_due()
    with scheduler.signals():
        scheduler.run_forever()
    return scheduler.records


def provision(name: str | None, *, from_env: str, ttl: str | None = None, variables: Mapping[str, str] | None = None,
              owner: str | None = None, config: ConfigArg = None, progress: Progress | None = None) -> Provisioned:
    """Create an on-demand environment from ``from_env`` (an environment or an on-demand template): its latest
    verified copy, then the template's grants and ``post_provision`` tests. ``name`` may be None when the
    template has a name pattern (filled from ``variables``); ``ttl`` like ``8h``; ``owner`` defaults to the
    OS user."""
    return _provision(project_of(config), name, from_env, ttl=parse_ttl(ttl) if ttl else None,
                      variables=variables, owner=owner, progress=progress)


def teardown(name: str, *, force: bool = False, config: ConfigArg = None) -> Provisioned:
    """Drop on-demand environment ``name`` after its template's ``pre_teardown`` hooks (``force``: without them)."""
    return _teardown(project_of(config), name, force=force)


def gc(*, config: ConfigArg = None) -> list[Provisioned]:
    """Drop every on-demand environment whose time to live has passed."""
    return _gc(project_of(config))


def envs(*, owner: str | None = None, config: ConfigArg = None) -> list[dict[str, Any]]:
    """Configured and on-demand environments: last refresh, verdict, size, expiry; template, owner, state and
    last test of the on-demand ones (``owner``: only the on-demand ones of that owner)."""
    return environments(project_of(config), owner=owner)


def export(environment: str, *, to: str | os.PathLike[str], format: str = "sqlite",
           config: ConfigArg = None, progress: Progress | None = None) -> ExportResult:
    """Write ``environment``'s current verified copy (configured or on-demand) as a signed artifact
    folder ``to``: ``format`` ``sqlite`` (one SQLite file, any dialect), ``parquet`` (a file per table)
    or ``pgdump`` (``pg_dump -Fd``, PostgreSQL), with ``manifest.json``, ``SHA256SUMS`` and
    ``SHA256SUMS.sig`` (signed with the project's signing key)."""
    return export_environment(project_of(config), environment, Path(to), format, progress)


def import_artifact(folder: str | os.PathLike[str], *, into: str, config: ConfigArg = None,
                    public_key: str | os.PathLike[str] | None = None,
                    allowed_signers: str | os.PathLike[str] | None = None,
                    progress: Progress | None = None) -> ImportResult:
    """Check artifact ``folder`` (signature by a trusted key, every file's hash, nothing unlisted) and
    restore it into the database at ``into``; a mismatch raises
    :class:`~datastage.errors.ArtifactInvalid` (exit code 3) before the target is touched.

    Trusted keys: ``public_key`` (a ``.pub`` file) or ``allowed_signers``, else the project's own
    ``signing.pub``. With a project (``config``, ``$DATASTAGE_CONFIG`` or ``./datastage.yaml``) the
    target must not be its source, and the import is recorded in its history."""
    project = None
    if isinstance(config, Project) or config is not None or config_path(None).is_file():
        project = project_of(config)
    if public_key is not None or allowed_signers is not None:
        trusted = read_trusted_keys(Path(public_key) if public_key is not None else None,
                                    Path(allowed_signers) if allowed_signers is not None else None,
                                    ARTIFACT_NAMESPACE)
    else:
        own = project.state_dir / PUBLIC_KEY_NAME if project is not None else None
        trusted = read_trusted_keys(own, namespace=ARTIFACT_NAMESPACE) if own and own.is_file() else []
    return import_folder(Path(folder), into, trusted, project, progress)


# -- what every command does around its body (used by the command line) --------------------

def configure_log_file(path: str | os.PathLike[str] | None) -> None:
    """Append datastage's log records to ``path`` as JSON lines (file 0600), or stop writing them (None)."""
    configure_logging(Path(path) if path else None)


def log_error(event: str, **fields: Any) -> None:
    """Log ``event`` at error level on datastage's logger, with ``fields`` as its structured data (redacted)."""
    get_logger("datastage").error(event, extra=fields, stacklevel=2)
