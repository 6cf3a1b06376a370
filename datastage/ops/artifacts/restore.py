"""``import DIR --into URL``: check an artifact folder, then restore it atomically into a database.

Before the target is touched, the folder is checked (:func:`~datastage.ops.artifacts.manifest.verify_folder`):
the signature of ``SHA256SUMS`` by a trusted key, every file's hash and size, no file it does not
list, no path leaving the folder. The checked bytes are copied to a private folder and only those
are restored; the artifact itself is never written. ``sqlite`` and ``parquet`` artifacts restore into
any dialect through the target's shadow, verify and swap steps; ``pgdump`` artifacts into an empty
PostgreSQL database with ``pg_restore``. The import is recorded in the target's refresh log and,
with a project, in its history (kind ``import``).
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from datastage._version import __version__
from datastage.errors import ArtifactInvalid, DatastageError, SafetyError, TargetError, UsageError
from datastage.ops.artifacts import pgdump
from datastage.ops.artifacts.manifest import Verified, remove_tree, verify_folder
from datastage.ops.artifacts.parquetfiles import load_parquet, read_model
from datastage.ops.artifacts.sqlitefile import bare_environment, import_sqlite
from datastage.pipeline import entered, step
from datastage.progress import NoProgress, Progress
from datastage.report.history import append_history
from datastage.results import new_run_id, utc_now
from datastage.secrets import KNOWN
from datastage.settings import Environment, Project
from datastage.source.db import (
    db_error_message,
    dialect_of,
    make_engine,
    parse_url,
    redact_url,
    same_database,
    sqlite_path,
)
from datastage.source.identifiers import POSTGRESQL, qualified_name
from datastage.source.identity import check_not_source
from datastage.targets.base import REFRESH_LOG_COLUMNS, REFRESH_LOG_TABLE, Target, encode_log_row
from datastage.targets.registry import open_target


@dataclass
class ImportResult:
    """A restored artifact."""

    folder: Path
    target: str  # the URL, password hidden
    format: str
    run_id: str
    artifact_run_id: str
    environment: str  # the environment the artifact was exported from
    source_run_id: str | None
    verdict: str
    fingerprint: str
    tables: dict[str, int]

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "folder": str(self.folder), "rows": self.rows}


def _target_name(url: str) -> str:
    database = parse_url(url).database or "import"
    return Path(database).stem if dialect_of(parse_url(url)) == "sqlite" else database


def _target_env(project: Project | None, url: str) -> Environment:
    """The environment the import fills: a configured one at the same database (its name and shadow
    mode; refused when ``protected:``), else a bare one named after the database."""
    for env in (project.environments.values() if project else ()):
        if same_database(env.url, url):
            if env.protected:
                raise SafetyError(f"environment '{env.name}' is protected; refusing to import into it",
                                  file=str(project.path) if project else None, key=f"environments.{env.name}")
            return bare_environment(env.name, url, env)
    return bare_environment(_target_name(url), url)


def _empty_sqlite(url: str) -> bool:
    """Whether ``url`` is a SQLite file without tables (what ``sqlite3.connect`` leaves behind)."""
    path = sqlite_path(url)
    if dialect_of(parse_url(url)) != "sqlite" or path is None or not path.is_file():
        return False
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        return not conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


def _check_ours(target: Target) -> None:
    """Refuse a target that holds tables datastage did not load (no refresh log): an import replaces them."""
    if target.exists() and not target.refresh_log() and not _empty_sqlite(target.url):
        raise SafetyError(f"{target.display_url} holds tables datastage did not load (it has no "
                          f"{REFRESH_LOG_TABLE}); import only into an empty database or a datastage copy")


def import_folder(folder: Path, into: str, trusted: list[bytes], project: Project | None = None,
                  progress: Progress | None = None) -> ImportResult:
    """Check artifact ``folder`` with the ``trusted`` public keys and restore it into ``into``."""
    KNOWN.add_url(into)  # its password never reaches an output, a log line or an error
    progress = progress or NoProgress()
    run_id = new_run_id()
    started, started_at = time.monotonic(), utc_now()
    work = Path(tempfile.mkdtemp(prefix="datastage-import-"))
    try:
        with step("verify"):
            checked = verify_folder(folder, trusted, work / "artifact")  # before the target is touched
        result = _restore(checked, folder, into, project, run_id, progress)
    finally:
        remove_tree(work)
    if project is not None:
        append_history(project.state_dir, {
            "run_id": run_id, "environment": _target_env(project, into).name, "kind": "import", "trigger": "cli",
            "verdict": result.verdict, "exit_code": 0, "rows": result.rows, "started_at": started_at,
            "finished_at": utc_now(), "seconds": round(time.monotonic() - started, 3), "format": result.format,
            "artifact": str(folder.absolute()), "artifact_run_id": result.artifact_run_id,
            "source_environment": result.environment, "source_run_id": result.source_run_id,
            "target": redact_url(into), "report_json": None, "report_html": None, "error": None,
        })
    return result


def _restore(checked: Verified, folder: Path, into: str, project: Project | None, run_id: str,
             progress: Progress) -> ImportResult:
    manifest = checked.manifest
    fmt = str(manifest["format"])
    dialect = dialect_of(parse_url(into))
    if fmt == "pgdump" and dialect != "postgresql":
        raise UsageError(f"a pgdump artifact restores into PostgreSQL only, not {dialect}; "
                         "export with --format sqlite or parquet for other databases")
    if project is not None:
        check_not_source(project.source_url, project.source_schemas, into, what="the import target",
                         file=str(project.path), verb="import into")
    target_env = _target_env(project, into)
    verdict = str(manifest.get("source_verdict") or "pass")
    artifact_run_id = str(manifest.get("run_id") or "")
    expected = {str(k): int(v) for k, v in manifest["tables"].items()}
    source = (f"import of artifact {artifact_run_id} ({fmt} export of {manifest.get('environment')}, refresh "
              f"{manifest.get('source_run_id')}, signed by {checked.fingerprint})")
    log = {"source": source, "environment": target_env.name}
    target = open_target(into, target_env.name, target_env.shadow_mode)
    created = target.create_database()
    try:
        _check_ours(target)
        if fmt == "sqlite":
            owner = project or Project(path=Path("datastage.yaml"), source_url="sqlite://", environments={})
            _, verdict = import_sqlite(owner, checked.staged, target_env, run_id, progress, verdict, log, expected)
            tables = expected
        elif fmt == "parquet":
            tables = _import_parquet(checked, target, target_env, run_id, progress, expected,
                                     {**log, "verdict": verdict})
        else:
            tables = _import_pgdump(checked, target, into, run_id, {**log, "verdict": verdict}, expected)
    except BaseException:
        if created:
            with suppress(DatastageError):
                target.drop_created()
        raise
    return ImportResult(folder, redact_url(into), fmt, run_id, artifact_run_id, str(manifest.get("environment")),
                        manifest.get("source_run_id"), verdict, checked.fingerprint, tables)


def _import_parquet(checked: Verified, target: Target, env: Environment, run_id: str, progress: Progress,
                    expected: dict[str, int], log: dict[str, Any]) -> dict[str, int]:
    model, files = read_model(checked.staged)
    listed = {str(f["path"]) for f in checked.manifest["files"]}
    for table, path in files.items():
        if path not in listed:
            raise ArtifactInvalid(f"table {table}: its file {path!r} is not a file of the artifact",
                                  file="schema.json")
    if set(model.tables) != set(expected):
        raise ArtifactInvalid("its tables are not those of schema.json", file="manifest.json")
    with target.lock(run_id), entered("load", target.shadow(model, run_id)) as shadow:
        counted = load_parquet(checked.staged, model, files, shadow, env.batch_size, progress)
        if counted != expected:
            table = next(k for k in expected if counted.get(k) != expected[k])
            raise ArtifactInvalid(f"table {table}: {counted.get(table)} rows loaded; the manifest says "
                                  f"{expected[table]}", file="manifest.json")
        with step("swap"):
            shadow.go_live({"run_id": run_id, "started_at": utc_now(), "finished_at": utc_now(),
                            "datastage_version": __version__, "rows_loaded": sum(counted.values()), **log},
                           target.refresh_log())
    return counted


def _import_pgdump(checked: Verified, target: Target, into: str, run_id: str, log: dict[str, Any],
                   expected: dict[str, int]) -> dict[str, int]:
    if target.exists():
        raise UsageError(f"a pgdump artifact restores into an empty PostgreSQL database; {target.display_url} "
                         "holds tables (use a sqlite or parquet artifact to replace a copy)")
    with target.lock(run_id), step("import"):
        pgdump.restore(checked.staged / "dump", into)
        _record(into, target, {"run_id": run_id, "started_at": utc_now(), "finished_at": utc_now(),
                               "datastage_version": __version__, "rows_loaded": sum(expected.values()), **log})
    return expected


def _record(url: str, target: Target, row: dict[str, Any]) -> None:
    """Add the import's row to the refresh log pg_restore restored (created if the dump had none)."""
    engine = make_engine(url)
    name = qualified_name(POSTGRESQL, str(getattr(target, "default_schema", "public")), REFRESH_LOG_TABLE)
    encoded = encode_log_row(row)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {name} "
                                 f"({', '.join(f'{c} text' for c in REFRESH_LOG_COLUMNS)})")
            conn.execute(sa.text(f"INSERT INTO {name} ({', '.join(REFRESH_LOG_COLUMNS)}) VALUES "
                                 f"({', '.join(':' + c for c in REFRESH_LOG_COLUMNS)})"),
                         {c: encoded.get(c) for c in REFRESH_LOG_COLUMNS})
    except sa.exc.SQLAlchemyError as exc:
        raise TargetError(f"the artifact was restored, but its import could not be recorded: "
                          f"{db_error_message(exc)}") from None
    finally:
        engine.dispose()

