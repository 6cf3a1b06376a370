"""``export ENV --to DIR``: an environment's current verified copy as signed files.

ENV is a configured or an on-demand environment whose current copy passed its checks (last verdict
``pass`` or ``warn``). The copy is read while ENV's refresh lock is held, so a refresh cannot swap
it mid-export. The files are written into a temporary folder beside DIR and renamed to DIR at the
end: a failed export leaves nothing behind. DIR must not exist or be empty.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from datastage._version import __version__
from datastage.errors import SigningKeyError, UsageError
from datastage.ops.artifacts import pgdump
from datastage.ops.artifacts.manifest import FORMATS, NAMESPACE, remove_tree, write_manifest
from datastage.ops.artifacts.parquetfiles import export_parquet
from datastage.ops.artifacts.sqlitefile import bare_environment, export_sqlite
from datastage.ops.ondemand import derived_url, latest_refresh, load_registry
from datastage.pipeline import step
from datastage.progress import NoProgress, Progress
from datastage.report.history import append_history
from datastage.report.signing import project_signing_key, signing_key_path
from datastage.results import new_run_id, utc_now
from datastage.settings import SIGNING_KEY_ENV_VAR, Environment, Project
from datastage.source.db import dialect_of, make_engine, parse_url, redact_url, snapshot
from datastage.source.identity import check_not_source
from datastage.source.schema import SchemaModel, reflect
from datastage.targets.registry import open_target


@dataclass
class ExportResult:
    """A written artifact folder."""

    environment: str
    format: str
    folder: Path
    run_id: str
    source_run_id: str | None
    source_verdict: str
    tables: dict[str, int]
    files: list[str]
    fingerprint: str
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "folder": str(self.folder), "rows": self.rows}


def environment_of(project: Project, name: str) -> Environment:
    """Configured environment ``name``, or on-demand environment ``name`` (next to the one it came from)."""
    if name not in project.environments:
        entry = load_registry(project).get(name)
        if entry is not None and entry.source_environment in project.environments:
            source = project.environment(entry.source_environment)
            return replace(bare_environment(name, derived_url(source.url, name), source), shadow_mode="schema")
    return project.environment(name)  # an unknown name is refused here, with the names it knows


def _signing_key(project: Project) -> Any:
    if signing_key_path(project) is None:
        raise SigningKeyError("an export is signed, and the project has no signing key: create one with "
                              "`datastage key new --signing --output FILE` and set signing.key_file in "
                              f"datastage.yaml (or ${SIGNING_KEY_ENV_VAR})")
    return project_signing_key(project, required=True)


def _verified(env: Environment) -> tuple[str, str | None]:
    """(verdict, refresh run id) of ``env``'s current copy; refused unless it passed its checks."""
    latest = latest_refresh(env)
    if latest is None:
        raise UsageError(f"environment '{env.name}' has no copy yet; refresh it first")
    verdict = str(latest.get("verdict") or "unknown")
    if verdict not in ("pass", "warn"):
        raise UsageError(f"the current copy of '{env.name}' is not a verified copy (last verdict: {verdict}); "
                         "only a copy that passed its checks is exported")
    return verdict, str(latest["run_id"]) if latest.get("run_id") else None


def _check_folder(folder: Path) -> None:
    if folder.is_symlink() or (folder.exists() and (not folder.is_dir() or any(folder.iterdir()))):
        raise UsageError("the export folder must not exist or be empty", file=str(folder))
    if not folder.parent.is_dir():
        raise UsageError("the folder that would hold the export does not exist", file=str(folder.parent))


def export_environment(project: Project, name: str, to: Path, fmt: str = "sqlite",
                       progress: Progress | None = None) -> ExportResult:
    """Write ``name``'s current verified copy as a signed artifact folder ``to`` in format ``fmt``."""
    progress = progress or NoProgress()
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'; expected one of {', '.join(FORMATS)}")
    env = environment_of(project, name)
    key = _signing_key(project)  # before anything is read or written
    _check_folder(to)
    check_not_source(project.source_url, project.source_schemas, env.url, what=f"environment '{env.name}'",
                     file=str(project.path), key=f"environments.{env.name}.url", verb="export")
    if fmt == "pgdump" and dialect_of(parse_url(env.url)) != "postgresql":
        raise UsageError(f"the pgdump format is for PostgreSQL environments; '{env.name}' is "
                         f"{dialect_of(parse_url(env.url))} (use --format sqlite or parquet)")
    run_id = new_run_id()
    started, started_at = time.monotonic(), utc_now()
    work = Path(tempfile.mkdtemp(prefix=f".{to.name}.export-", dir=to.parent))
    try:
        staging = work / "artifact"
        staging.mkdir()
        notes: list[str] = []
        if fmt == "sqlite":
            verdict, source_run_id = _verified(env)
            tables = export_sqlite(project, env, work, staging, run_id, progress, verdict)
            if _verified(env)[1] != source_run_id:  # a refresh swapped in between: the run ids would not match
                raise UsageError(f"environment '{env.name}' was refreshed during the export; run the export again")
        else:
            verdict, source_run_id, tables, notes = _export_locked(project, env, staging, fmt, run_id, progress)
        manifest = {
            "format": fmt, "datastage_version": __version__, "run_id": run_id, "environment": env.name,
            "dialect": dialect_of(parse_url(env.url)), "source": redact_url(env.url),
            "source_run_id": source_run_id, "source_verdict": verdict, "created_at": utc_now(),
            "namespace": NAMESPACE, "tables": tables, "notes": notes,
        }
        with step("export"):
            written = write_manifest(staging, manifest, key)
            if to.exists():
                to.rmdir()  # empty, checked above
            os.rename(staging, to)
    finally:
        remove_tree(work)
    result = ExportResult(env.name, fmt, to, run_id, source_run_id, verdict, tables,
                          [f["path"] for f in written["files"]], key.fingerprint, notes)
    append_history(project.state_dir, {
        "run_id": run_id, "environment": env.name, "kind": "export", "trigger": "cli", "verdict": verdict,
        "exit_code": 0, "rows": result.rows, "started_at": started_at, "finished_at": utc_now(),
        "seconds": round(time.monotonic() - started, 3), "format": fmt, "artifact": str(to.absolute()),
        "source_run_id": source_run_id, "report_json": None, "report_html": None, "error": None,
    })
    return result


def _export_locked(project: Project, env: Environment, staging: Path, fmt: str, run_id: str,
                   progress: Progress) -> tuple[str, str | None, dict[str, int], list[str]]:
    """Parquet and pgdump: read ``env``'s copy while its refresh lock is held."""
    live = open_target(env.url, env.name, env.shadow_mode)
    source = make_engine(env.url, read_only=True, role=f"database of {env.name}")
    try:
        with live.lock(run_id):
            verdict, source_run_id = _verified(env)
            schemas = live.copy_schemas(project.source_schemas)
            with snapshot(source) as conn:
                with step("plan"):
                    model = reflect(conn, schemas)
                if fmt == "parquet":
                    tables, notes = export_parquet(conn, model, staging, env.batch_size, progress)
                    return verdict, source_run_id, tables, notes
                tables = _count_rows(conn, model)
                dump_schemas = schemas or (str(conn.exec_driver_sql("SELECT current_schema()").scalar()),)
            with step("export"):
                pgdump.dump(env.url, tuple(dump_schemas), staging / "dump")
            return verdict, source_run_id, tables, []
    finally:
        source.dispose()


def _count_rows(conn: Connection, model: SchemaModel) -> dict[str, int]:
    return {key: int(conn.execute(sa.select(sa.func.count()).select_from(model.tables[key].sa_table)).scalar() or 0)
            for key in model.load_order()}


