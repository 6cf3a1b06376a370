"""On-demand environments: copies of an environment's latest verified copy, with an expiry.

``provision NAME --from ENV`` creates a new database next to ENV's (same server, database
``NAME``; for SQLite the file ``NAME.db`` beside ENV's) and copies ENV's current copy into
it through the same shadow, verify and swap steps as a refresh — the data is already
masked and verified, so nothing is masked again. The copy is registered in
``.datastage/provisioned.json`` with its expiry; ``teardown`` drops it, ``gc`` drops the
expired ones. Registry entries never hold a password.

Example (a one-table project in a temporary folder: refresh staging, then copy it to ``pr_1234``):
    >>> import sqlite3, tempfile
    >>> import datastage
    >>> from datastage.mask.keys import write_key_file
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = sqlite3.connect(folder / "prod.db").executescript("CREATE TABLE t (id INTEGER PRIMARY KEY);"
    ...                                                        "INSERT INTO t VALUES (1), (2);")
    >>> _ = write_key_file(folder / "masking.key")
    >>> _ = (folder / "rules.yaml").write_text("version: 1\\n")
    >>> config = folder / "datastage.yaml"
    >>> _ = config.write_text("source: {url: sqlite:///prod.db}\\nmasking: {key_file: masking.key}\\n"
    ...                       "environments: {staging: {url: sqlite:///staging.db, rules: rules.yaml}}\\n")
    >>> project = datastage.load_project(config)
    >>> datastage.refresh("staging", config=project).verdict
    'pass'
    >>> copy = provision(project, "pr_1234", "staging", ttl=dt.timedelta(hours=8))
    >>> copy.rows, Path(copy.database).name, sorted(load_registry(project)), teardown(project, "pr_1234").name
    (2, 'pr_1234.db', ['pr_1234'], 'pr_1234')
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from datastage._version import __version__
from datastage.errors import (
    DatastageError,
    SafetyError,
    TargetError,
    UsageError,
    VerificationFailed,
)
from datastage.limits import MAX_STATE_BYTES, read_json_file
from datastage.mask.keys import MaskingKey, optional_key
from datastage.mask.policy import policy_from_text
from datastage.mask.resolve import resolve_policy
from datastage.pipeline import entered, load_into_shadow, step, verify_shadow
from datastage.plan import PlanResult
from datastage.progress import NoProgress, Progress
from datastage.report.history import append_history, read_history, write_state
from datastage.results import current_user, new_run_id, utc_now
from datastage.settings import ONDEMAND_NAME, Environment, Project, SubsetSpec
from datastage.settings import parse_ttl as ttl_of
from datastage.source.db import db_error_message, dialect_of, make_engine, parse_url, redact_url, snapshot
from datastage.source.identifiers import MYSQL, POSTGRESQL, quote_identifier
from datastage.source.identity import check_not_source
from datastage.source.schema import reflect
from datastage.subset.planner import plan_subset
from datastage.targets.registry import open_target

NAME_PATTERN = ONDEMAND_NAME


@dataclass
class Provisioned:
    """One on-demand environment in the registry."""

    name: str
    source_environment: str
    dialect: str
    database: str
    created_at: str
    expires_at: str | None
    created_by: str
    run_id: str
    rows: int = 0
    verdict: str = "pass"  # the worse of the source copy's last verdict and the copy's own checks
    source_verdict: str | None = None  # the last refresh verdict of the copy it came from
    source_run_id: str | None = None  # and that refresh's run id
    template: str | None = None  # the on-demand template it was made by (None: no template)
    owner: str | None = None  # who it is for (``--owner``; default the OS user who made it)
    state: str = "ready"  # provisioning | ready | failed (a post_provision test failed and it was kept)
    last_test: str | None = None  # the outcome of its last post_provision tests: passed | failed | None (none)
    report_json: str | None = None  # its provision report

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and dt.datetime.fromisoformat(self.expires_at.replace("Z", "+00:00")) <= now


def parse_ttl(text: str) -> dt.timedelta:
    """``30m``, ``8h``, ``2d``, ``1w`` as a duration.

    >>> parse_ttl("8h")
    datetime.timedelta(seconds=28800)
    """
    try:
        return ttl_of(text)
    except ValueError as exc:
        raise UsageError(f"--ttl {exc}") from None


def registry_path(project: Project) -> Path:
    return project.state_dir / "provisioned.json"


def load_registry(project: Project) -> dict[str, Provisioned]:
    path = registry_path(project)
    if not path.is_file():
        return {}
    raw = read_json_file(path, MAX_STATE_BYTES, UsageError, "the registry of on-demand environments is not valid JSON")
    known = set(Provisioned.__dataclass_fields__)
    if not isinstance(raw, dict) or not all(isinstance(e, dict) and set(e) <= known for e in raw.values()):
        raise UsageError("the registry of on-demand environments is not a mapping of environments", file=str(path))
    try:
        return {str(name): Provisioned(**entry) for name, entry in raw.items()}
    except TypeError:  # an entry without a required field
        raise UsageError("the registry of on-demand environments has an incomplete entry", file=str(path)) from None


def save_registry(project: Project, registry: dict[str, Provisioned]) -> None:
    write_state(registry_path(project), {k: asdict(v) for k, v in registry.items()}, root=project.state_dir)


def derived_url(env_url: str, name: str) -> str:
    """The URL of on-demand environment ``name`` next to ``env_url`` (same server or same folder)."""
    parsed = parse_url(env_url)
    if dialect_of(parsed) == "sqlite":
        path = Path(parsed.database or "")
        return parsed.set(database=str(path.with_name(f"{name}.db"))).render_as_string(hide_password=False)
    return parsed.set(database=name).render_as_string(hide_password=False)


def _check_name(project: Project, name: str, registry: dict[str, Provisioned]) -> None:
    if not NAME_PATTERN.match(name):
        raise UsageError(f"'{name}' is not a valid name: lower-case letters, digits and _, starting with a letter")
    if name in project.environments:
        raise UsageError(f"'{name}' is a configured environment; choose another name")
    if name in registry:
        raise UsageError(f"'{name}' already exists (from {registry[name].source_environment}); tear it down first")


def _server_execute(url: str, sql: str) -> None:
    """Run one statement outside a transaction on the server of ``url`` (CREATE/DROP DATABASE)."""
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(sql)
    except SQLAlchemyError as exc:
        raise TargetError(db_error_message(exc)) from None
    finally:
        engine.dispose()


def _create_database(env_url: str, name: str) -> None:
    dialect = dialect_of(parse_url(env_url))
    if dialect == "sqlite":
        path = Path(parse_url(derived_url(env_url, name)).database or "")
        if path.exists():
            raise UsageError(f"{path} already exists; choose another name")
        return
    with step("provision"):
        _server_execute(env_url, f"CREATE DATABASE {quote_identifier(dialect, name)}")


def drop_database(env_url: str, name: str) -> None:
    """Drop on-demand environment ``name`` (and what its target created beside it)."""
    parsed = parse_url(env_url)
    dialect = dialect_of(parsed)
    if dialect == "sqlite":
        path = Path(parse_url(derived_url(env_url, name)).database or "")
        for item in path.parent.glob(path.name + "*"):
            if item.name == path.name or item.name.startswith(path.name + "."):
                item.unlink(missing_ok=True)
        return
    if dialect == "postgresql":
        _server_execute(env_url, f"DROP DATABASE IF EXISTS {quote_identifier(POSTGRESQL, name)} WITH (FORCE)")
        return
    engine = make_engine(env_url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            names = [r[0] for r in conn.exec_driver_sql(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name = %s "
                "OR schema_name LIKE %s", (name, name.replace("_", "\\_") + "\\_\\_ds\\_%")).all()]
            for database in names:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote_identifier(MYSQL, database)}")
    except SQLAlchemyError as exc:
        raise TargetError(db_error_message(exc)) from None
    finally:
        engine.dispose()


def _latest_refresh(env: Environment) -> dict[str, Any] | None:
    """The refresh log row of ``env``'s current copy ({} when it has no log; None when there is no copy)."""
    target = open_target(env.url, env.name, env.shadow_mode)
    if not target.exists():
        return None
    log = target.refresh_log()
    return dict(log[-1]) if log else {}


def _worse(*verdicts: str | None) -> str:
    """The worst of ``verdicts`` (pass < warn < fail)."""
    order = ("pass", "warn", "fail")
    return max((v for v in verdicts if v in order), key=order.index, default="pass")


def provision(project: Project, name: str, source_env: str, *, ttl: dt.timedelta | None = None,
              progress: Progress | None = None) -> Provisioned:
    """Copy ``source_env``'s current (verified) copy into a new database ``name``."""
    progress = progress or NoProgress()
    env = project.environment(source_env)
    registry = load_registry(project)
    _check_name(project, name, registry)
    key = f"environments.{env.name}.url"
    # ENV is read (and locked) as the copy's source: it must not be the unmasked source itself.
    check_not_source(project.source_url, project.source_schemas, env.url, what=f"environment '{env.name}'",
                     file=str(project.path), key=key, verb="copy")
    url = derived_url(env.url, name)
    check_not_source(project.source_url, project.source_schemas, url,
                     what=f"on-demand environment '{name}' next to '{env.name}'", file=str(project.path), key=key)
    latest = _latest_refresh(env)
    if latest is None:
        raise UsageError(f"environment '{env.name}' has no copy yet; refresh it first")
    verdict = str(latest.get("verdict") or "unknown")
    source_run_id = str(latest["run_id"]) if latest.get("run_id") else None
    if verdict not in ("pass", "warn"):
        raise UsageError(f"the current copy of '{env.name}' is not a verified copy (last verdict: {verdict})")
    run_id = new_run_id()
    started = time.monotonic()
    _create_database(env.url, name)
    # The new database is empty: the copy goes into a shadow schema there, whatever ENV's shadow is.
    copy_env = replace(env, name=name, url=url, keep=(), hooks={}, access=(), notify=None, notify_secret=None,
                       subset=SubsetSpec(), shadow_mode="schema")
    try:
        rows, copied = _copy(project, env, copy_env, run_id, progress, verdict)
    except BaseException:
        with suppress(DatastageError):
            drop_database(env.url, name)
        raise
    now = dt.datetime.now(dt.UTC)
    entry = Provisioned(
        name=name, source_environment=env.name, dialect=dialect_of(parse_url(url)),
        database=parse_url(url).database or name, created_at=utc_now(),
        expires_at=(now + ttl).isoformat(timespec="seconds").replace("+00:00", "Z") if ttl else None,
        created_by=current_user(), run_id=run_id, rows=rows, verdict=copied, source_verdict=verdict,
        source_run_id=source_run_id,
    )
    registry = load_registry(project)  # fresh: another provision may have finished meanwhile
    registry[name] = entry
    save_registry(project, registry)
    append_history(project.state_dir, {
        "run_id": run_id, "environment": name, "kind": "provision", "trigger": "cli", "verdict": copied,
        "exit_code": 0, "rows": rows, "started_at": entry.created_at, "finished_at": utc_now(),
        "seconds": round(time.monotonic() - started, 3), "source_environment": env.name,
        "source_verdict": verdict, "source_run_id": source_run_id,
        "target": redact_url(url), "expires_at": entry.expires_at, "report_json": None, "report_html": None,
        "error": None,
    })
    return entry


def _copy(project: Project, env: Environment, copy_env: Environment, run_id: str, progress: Progress,
          source_verdict: str, log: dict[str, Any] | None = None) -> tuple[int, str]:
    """Full copy of ``env``'s current copy into ``copy_env``: shadow, load, verify, swap.

    Returns the rows copied and the copy's verdict: never better than ``source_verdict``. ``log``
    adds to (or replaces fields of) the copy's refresh-log row.
    """
    # Before any connection: an empty $DATASTAGE_MASKING_KEY (or a key file others may read) stops here.
    # A copy masks nothing, so any key will do when the project has none.
    key = optional_key(project.key_file)
    if key is None:
        key = MaskingKey(secrets.token_bytes(32), source="unused")
    source = make_engine(env.url, read_only=True, role=f"database of {env.name}")
    live = open_target(env.url, env.name, env.shadow_mode)
    target = open_target(copy_env.url, copy_env.name, copy_env.shadow_mode)
    try:
        # ENV's lock keeps a refresh of ENV from swapping its copy while it is being read.
        with live.lock(run_id), target.lock(run_id), snapshot(source) as conn:
            with step("plan"):
                # ENV's copy, where its dialect put it: source.schemas name the source's schemas, which a
                # MariaDB or SQLite target holds in its one database, PostgreSQL under their names.
                model = reflect(conn, live.copy_schemas(project.source_schemas))
                subset = plan_subset(conn, model, SubsetSpec(), batch_size=copy_env.batch_size)
                # Already masked and verified: every column is copied as it is.
                policy = resolve_policy(policy_from_text("version: 1\ndefault: keep\n", f"copy of {env.name}"),
                                        model)
                tables = [model.tables[k] for k in model.load_order()]
                planned = PlanResult(copy_env.name, model, subset, policy, {}, tables,
                                     {t.key: list(t.columns) for t in tables})
            with entered("load", target.shadow(model, run_id)) as shadow:
                load, extracted, _ = load_into_shadow(conn, planned, shadow, target, key, copy_env,
                                                      progress, copy_env.batch_size, source_url=env.url,
                                                      run_id=run_id)
                verified = verify_shadow(planned, shadow, load, extracted)
                if verified.verdict == "fail":
                    failed = "; ".join(c.summary for c in verified.failed)
                    raise VerificationFailed(f"the copy of {env.name} did not verify: {failed}", step="provision")
                verdict = _worse(source_verdict, verified.verdict)
                with step("swap"):
                    shadow.go_live({"run_id": run_id, "environment": copy_env.name, "started_at": utc_now(),
                                    "finished_at": utc_now(), "verdict": verdict,
                                    "source": redact_url(env.url), "datastage_version": __version__,
                                    "rows_loaded": load.total_rows, **(log or {})}, target.refresh_log())
        return load.total_rows, verdict
    finally:
        source.dispose()


def teardown(project: Project, name: str) -> Provisioned:
    """Drop on-demand environment ``name`` and record it in the history."""
    registry = load_registry(project)
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none"
        raise UsageError(f"no on-demand environment called '{name}' (known: {known})")
    entry = registry[name]
    if entry.source_environment not in project.environments:
        raise UsageError(f"'{name}' was copied from environment '{entry.source_environment}', which is no longer "
                         f"configured, so its server is unknown; drop database '{entry.database}' by hand and "
                         f"remove '{name}' from {registry_path(project)}")
    env = project.environment(entry.source_environment)
    check_not_source(project.source_url, project.source_schemas, derived_url(env.url, name),
                     what=f"on-demand environment '{name}'", file=str(project.path),
                     key=f"environments.{env.name}.url", verb="drop")
    with step("teardown"):
        drop_database(env.url, name)
    registry = load_registry(project)
    registry.pop(name, None)
    save_registry(project, registry)
    append_history(project.state_dir, {
        "run_id": new_run_id(), "environment": name, "kind": "teardown", "trigger": "cli", "verdict": "pass",
        "exit_code": 0, "rows": 0, "started_at": utc_now(), "finished_at": utc_now(), "seconds": 0,
        "source_environment": entry.source_environment, "report_json": None, "report_html": None, "error": None,
    })
    return entry


def gc(project: Project, now: dt.datetime | None = None) -> list[Provisioned]:
    """Tear down every on-demand environment whose expiry has passed.

    One that cannot be dropped does not stop the others; the error names every failure.
    """
    moment = now or dt.datetime.now(dt.UTC)
    dropped: list[Provisioned] = []
    failures: list[str] = []
    refused = False
    for entry in list(load_registry(project).values()):
        if entry.expired(moment):
            try:
                dropped.append(teardown(project, entry.name))
            except DatastageError as exc:
                failures.append(f"{entry.name}: {exc}")
                refused = refused or isinstance(exc, SafetyError)
    if failures:
        done = f"tore down {', '.join(e.name for e in dropped)}; " if dropped else ""
        kind = SafetyError if refused else TargetError  # a refusal to drop the source says so in the exit code
        raise kind(f"{done}could not tear down {'; '.join(failures)}", step="gc")
    return dropped


def database_size(url: str) -> int | None:
    """Bytes used by the database at ``url`` (None when it cannot be measured)."""
    parsed = parse_url(url)
    dialect = dialect_of(parsed)
    if dialect == "sqlite":
        path = Path(parsed.database or "")
        return path.stat().st_size if path.is_file() else None
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if dialect == "postgresql":
                return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() or 0)
            value = conn.execute(sa.text("SELECT COALESCE(SUM(data_length + index_length), 0) FROM "
                                         "information_schema.tables WHERE table_schema = DATABASE()")).scalar()
            return int(value or 0)
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def environments(project: Project, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Configured and on-demand environments with last refresh, verdict, size and expiry."""
    moment = now or dt.datetime.now(dt.UTC)
    history = read_history(project.state_dir)
    rows = []
    for env in project.environments.values():
        refreshes = [h for h in history if h.get("environment") == env.name and h.get("kind", "refresh") == "refresh"]
        last = refreshes[-1] if refreshes else {}
        rows.append({"name": env.name, "kind": "configured", "url": redact_url(env.url),
                     "protected": env.protected, "schedule": (env.schedule or {}).get("cron"),
                     "last_refresh": last.get("finished_at"), "last_verdict": last.get("verdict"),
                     "last_run_id": last.get("run_id"), "size_bytes": database_size(env.url),
                     "from": None, "source_verdict": None, "source_run_id": None, "expires_at": None,
                     "expired": False})
    for entry in load_registry(project).values():
        source = project.environments.get(entry.source_environment)
        url = derived_url(source.url, entry.name) if source else None
        rows.append({"name": entry.name, "kind": "on-demand", "url": redact_url(url) if url else None,
                     "protected": False, "schedule": None, "last_refresh": entry.created_at,
                     "last_verdict": entry.verdict, "last_run_id": entry.run_id,
                     "size_bytes": database_size(url) if url else None, "from": entry.source_environment,
                     "source_verdict": entry.source_verdict, "source_run_id": entry.source_run_id,
                     "expires_at": entry.expires_at, "expired": entry.expired(moment)})
    return rows


def copy_verified(project: Project, env: Environment, copy_env: Environment, run_id: str, progress: Progress,
                  source_verdict: str, log: dict[str, Any] | None = None) -> tuple[int, str]:
    """Copy ``env``'s current copy into ``copy_env`` as ``provision`` does (shadow, load, verify, swap, with
    ``env``'s lock held while it is read); returns the rows copied and the copy's verdict."""
    return _copy(project, env, copy_env, run_id, progress, source_verdict, log)


def latest_refresh(env: Environment) -> dict[str, Any] | None:
    """The refresh-log row of ``env``'s current copy ({} when it has no log; None when there is no copy)."""
    return _latest_refresh(env)
