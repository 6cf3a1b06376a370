"""The chunk function: copy one chunk of one table from the source snapshot into the shadow.

:func:`copy_chunk` is a pure function of its :class:`ChunkJob`, the run's :class:`CopyContext`
(:func:`~datastage.executor.base.context`: the plan, the resolved policy, the source's
identifier hashes, the exported snapshot) and the run's secrets
(:func:`~datastage.executor.base.shared`: the masking key and the two database URLs, which
carry passwords). It opens its own source session inside the refresh's snapshot
(``REPEATABLE READ READ ONLY`` + ``SET TRANSACTION SNAPSHOT``, as ``pg_dump -j`` does), reads its
rows (COPY text where the table's fast path applies, else DataFrames), masks them with an
engine of its own, lets a fresh observer (the leak index) see them, writes them into the shadow
table (created and committed by the refresh) over its own target session, commits, and returns
what the refresh merges: rows, masking statistics, the observer's hashes and, for every
``checked``-unique domain, the keyed (output, input) identities its masking gave
(:class:`~datastage.mask.engine.TrackerExport`), so the refresh sees collisions between chunks.

A failure is one line without any secret of the run (:class:`~datastage.errors.StepError`).

``$DATASTAGE_TEST_CHUNK_FAULT`` (``kill`` or ``raise``) makes the second chunk of a table fail
after writing its rows, and ``$DATASTAGE_TEST_CHUNK_PAUSE`` (a folder) makes every chunk, once in
the snapshot, leave ``ready-<table>-<n>`` there and wait for ``go``: test points for a worker that
dies and for writes on the source while chunks run.

Example (a job shows no secret, only what it copies):
    >>> from datastage.executor.chunks import Chunk
    >>> ChunkJob("run-1", Chunk("public.customer", 1, 4, " WHERE ctid < '(9,0)'::tid"), '"s"."customer"', {})
    ChunkJob(run-1, public.customer 2/4)
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import DatastageError, StepError
from datastage.executor.base import context, shared
from datastage.executor.chunks import Chunk
from datastage.mask.engine import MaskingEngine, MaskStats, TrackerExport
from datastage.mask.keys import MaskingKey
from datastage.mask.resolve import ResolvedPolicy
from datastage.mask.source_identifiers import HashSet, SourceIdentifiers
from datastage.secrets import Secrets
from datastage.source.db import db_error_message, make_engine
from datastage.source.identifiers import POSTGRESQL, quote_identifier
from datastage.source.schema import SchemaModel, TableInfo
from datastage.subset.extract import stream_rows
from datastage.targets.convert import ORIGIN_ATTR, convert_rows, converters_for
from datastage.targets.postgres.stream import stream_table, streamable

FAULT_ENV = "DATASTAGE_TEST_CHUNK_FAULT"
PAUSE_ENV = "DATASTAGE_TEST_CHUNK_PAUSE"
KEY_SECRET, SOURCE_SECRET, TARGET_SECRET = "masking_key", "source_url", "target_url"
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+-[0-9A-Fa-f]+(-[0-9]+)?")


class Observer(Protocol):
    """What sees every source batch and its masked copy (the leak index,
    :class:`~datastage.verify.leaks.index.LeakIndex`); a chunk observes with a :meth:`fresh` one and
    returns its :meth:`export`, which the refresh's observer merges."""

    def needed_columns(self, table: str) -> list[str]: ...
    def observe(self, table: str, batch: pd.DataFrame, masked: pd.DataFrame) -> None: ...
    def fresh(self, key: MaskingKey | None = None) -> Observer: ...
    def export(self) -> Any: ...
    def merge(self, exported: Any) -> None: ...


@dataclass
class CopyContext:
    """What every chunk of a run reads (shared once per worker; no secret in it)."""

    policy: ResolvedPolicy
    identifiers: dict[str, HashSet]  # the source identifiers' keyed hashes, per kind
    model: SchemaModel
    tables: dict[str, TableInfo]
    plans: dict[str, Any]  # table key -> TablePlan
    snapshot: str  # pg_export_snapshot() of the refresh's source transaction
    batch_size: int
    session_label: str  # application_name of the run's target sessions
    key_source: str = "the refresh"
    observer: Observer | None = None
    # The test points set in the refresh's environment ($DATASTAGE_TEST_CHUNK_*), read where the
    # refresh starts: a worker process may have started before they were set.
    test_points: dict[str, str] = field(default_factory=lambda: {
        name: value for name in (FAULT_ENV, PAUSE_ENV) if (value := os.environ.get(name))})


@dataclass(frozen=True)
class ChunkJob:
    """One chunk to copy into the shadow table ``shadow_name`` (``stored``: its columns' stored categories)."""

    run_id: str
    chunk: Chunk
    shadow_name: str
    stored: dict[str, str] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"ChunkJob({self.run_id}, {self.chunk.table} {self.chunk.position + 1}/{self.chunk.count})"


@dataclass
class ChunkResult:
    """What one chunk copied: rows, masking statistics, the observer's hashes, unique identities."""

    table: str
    position: int
    rows: int
    stats: MaskStats
    observed: Any = None
    unique: dict[str, TrackerExport] = field(default_factory=dict)


class _ChunkSink:
    """The shadow table a chunk writes into, over the chunk's own target session."""

    def __init__(self, model: SchemaModel, conn: psycopg.Connection[Any], name: str) -> None:
        self.model = model
        self.conn = conn
        self.name = name

    def db(self) -> psycopg.Connection[Any]:
        return self.conn

    def sql_name(self, table: TableInfo, conn: Connection) -> str:
        return self.name

    def copy_options(self, table: TableInfo) -> str:
        return ""  # FREEZE needs the table created in the same transaction; chunks share it


class _NoProgress:
    def advance(self, rows: int) -> None:
        pass


def copy_chunk(job: ChunkJob) -> ChunkResult:
    """Copy one chunk (see the module docstring); raises a one-line StepError without secrets."""
    secrets = Secrets()
    try:
        key_bytes = shared(KEY_SECRET, job.run_id)
        source_url, target_url = shared(SOURCE_SECRET, job.run_id).decode(), shared(TARGET_SECRET, job.run_id).decode()
        secrets.add_key(key_bytes)
        secrets.add_url(source_url)
        secrets.add_url(target_url)
        ctx: CopyContext = context(job.run_id)
        return _copy(job, ctx, MaskingKey(key_bytes, ctx.key_source), source_url, target_url)
    except DatastageError as exc:
        exc.message = secrets.redact(exc.message)
        raise
    except SQLAlchemyError as exc:
        raise StepError(secrets.redact(f"copying {job.chunk!r}: {db_error_message(exc)}"), step="load",
                        table=job.chunk.table) from None
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StepError(secrets.redact(f"copying {job.chunk!r}: {text}"), step="load", table=job.chunk.table) from None
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback (nor a secret)
        raise StepError(secrets.redact(f"copying {job.chunk!r} failed: {type(exc).__name__}: {exc}"), step="load",
                        table=job.chunk.table) from None


def _copy(job: ChunkJob, ctx: CopyContext, key: MaskingKey, source_url: str, target_url: str) -> ChunkResult:
    chunk = job.chunk
    table, plan = ctx.tables[chunk.table], ctx.plans[chunk.table]
    engine = MaskingEngine(ctx.policy, key, SourceIdentifiers(key, dict(ctx.identifiers)))
    observer = ctx.observer.fresh(key) if ctx.observer is not None else None
    with _source(source_url, ctx.snapshot) as source, _target(target_url, ctx.session_label) as target:
        _pause(chunk, ctx.test_points)
        sink = _ChunkSink(ctx.model, target, job.shadow_name)
        decoded = streamable(sink, table, plan, engine, observer)
        raw = source.connection.driver_connection
        if decoded is not None and isinstance(raw, psycopg.Connection) and \
                {raw.info.encoding, target.info.encoding} == {"utf-8"}:
            streamed = stream_table(source, sink, table, decoded, engine, ctx.batch_size, _NoProgress(), observer,
                                    where=chunk.where)
            rows, stats = streamed.rows, streamed.stats
        else:
            rows, stats = _copy_frames(source, sink, table, chunk, engine, observer, job.stored, ctx.batch_size)
        _fault(chunk, source_url, ctx.test_points)
        target.commit()
    unique = {domain: tracker.export() for domain, tracker in engine.trackers.items()}
    return ChunkResult(chunk.table, chunk.position, rows, stats, observer.export() if observer else None, unique)


def _copy_frames(source: Connection, sink: _ChunkSink, table: TableInfo, chunk: Chunk, engine: MaskingEngine,
                 observer: Observer | None, stored: dict[str, str], batch_size: int) -> tuple[int, MaskStats]:
    """The row-by-row path: DataFrames from the source, masked, written by COPY rows."""
    columns = table.insertable_columns
    names = ", ".join(quote_identifier(POSTGRESQL, c) for c in columns)
    copy_sql = f"COPY {sink.name} ({names}) FROM STDIN"
    stats = MaskStats()
    rows = 0
    converters = None
    for batch in stream_rows(source, table, columns, where=chunk.condition or None, batch_size=batch_size):
        masked, batch_stats = engine.mask_batch(table.key, batch)
        if observer is not None:
            observer.observe(table.key, batch, masked)
        stats.add(batch_stats)
        if converters is None:
            origin = str(masked.attrs.get(ORIGIN_ATTR, "postgresql"))
            converters = converters_for(table, columns, "postgresql", origin, stored or None)
        with sink.conn.cursor().copy(copy_sql) as copy:
            for row in convert_rows(masked, columns, converters):
                copy.write_row(row)
        rows += len(batch)
    return rows, stats


@contextmanager
def _source(url: str, snapshot_id: str) -> Iterator[Connection]:
    """A read-only session on the refresh's exported snapshot (rolled back and closed at the end)."""
    if not _SNAPSHOT_ID.fullmatch(snapshot_id):
        raise StepError("the source snapshot to copy from has no valid id", step="load")
    engine = make_engine(url, read_only=True, role="source database")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
            try:
                yield conn
            finally:
                with suppress(SQLAlchemyError):
                    conn.rollback()
    finally:
        engine.dispose()


@contextmanager
def _target(url: str, label: str) -> Iterator[psycopg.Connection[Any]]:
    """A target session named after the run (so a crashed run's shadow is known to be in use)."""
    engine = make_engine(url, role="target database", application_name=label)
    try:
        proxy = engine.raw_connection()
        conn = proxy.driver_connection
        assert isinstance(conn, psycopg.Connection)
        proxy.detach()
        try:
            conn.execute("SET synchronous_commit = off")
            yield conn
        finally:
            conn.close()
    finally:
        engine.dispose()


def _pause(chunk: Chunk, points: dict[str, str]) -> None:
    folder = points.get(PAUSE_ENV)
    if not folder:
        return
    (Path(folder) / f"ready-{chunk.table}-{chunk.position}").touch()
    deadline = time.monotonic() + 60
    while not (Path(folder) / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _fault(chunk: Chunk, source_url: str, points: dict[str, str]) -> None:
    fault = points.get(FAULT_ENV)
    if not fault or chunk.position != 1:
        return
    if fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "raise":
        raise RuntimeError(f"injected failure after writing {chunk!r} read from {source_url}")
