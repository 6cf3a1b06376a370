"""Target writers: build a shadow copy, verify it, swap it in atomically, roll back.

A :class:`Target` is one environment's database. A refresh asks it for a lock, cleans up
shadows a crashed run left behind, and creates a :class:`Shadow` (a new file, schema or
database) that receives the masked rows. Only after verification does :meth:`Shadow.swap`
make the shadow the current copy in one atomic step; the copy it replaces is kept as the
rollback point, and anything older is dropped.

The dialect-specific writers live in :mod:`datastage.targets`; :func:`~datastage.targets.registry.open_target`
picks the one for a URL.

Example (two refreshes of a SQLite target; each run's row joins the copy's refresh log):
    >>> import tempfile
    >>> import sqlalchemy as sa
    >>> from datastage.source.schema import reflect
    >>> from datastage.targets.registry import open_target
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE customer (id INTEGER PRIMARY KEY)")
    ...     model = reflect(conn)
    >>> target = open_target(f"sqlite:///{tempfile.mkdtemp()}/staging.db", "staging")
    >>> for run_id in ("run-1", "run-2"):
    ...     with target.lock(run_id), target.shadow(model, run_id) as shadow:
    ...         _ = shadow.create_tables([model.table("customer")])
    ...         _ = shadow.write(model.table("customer"), pd.DataFrame({"id": [1, 2]}))
    ...         shadow.finish()
    ...         shadow.go_live({"run_id": run_id, "verdict": "pass"}, target.refresh_log())
    >>> type(target).__name__, [row["run_id"] for row in target.refresh_log()]
    ('SqliteTarget', ['run-1', 'run-2'])
"""

from __future__ import annotations

import json
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection

from datastage.errors import LockHeld, LockLost, TargetError
from datastage.results import RollbackResult, current_user, utc_now
from datastage.secrets import redact
from datastage.settings import AccessGrant
from datastage.source.db import redact_url
from datastage.source.identifiers import quote_as_needed
from datastage.source.schema import SchemaModel, TableInfo

REFRESH_LOG_TABLE = "datastage_refresh_log"
RUN_LABEL = "datastage:"  # application_name of every target session of a run: datastage:<run_id>
OWNER_GRACE_SECONDS = 5.0  # how long a refresh waits for the sessions of a shadow's owner to end
REFRESH_LOG_COLUMNS = ("run_id", "environment", "started_at", "finished_at", "verdict", "rules_sha256",
                       "key_id", "source", "datastage_version", "rows_loaded")


def lock_holder_info(run_id: str, environment: str) -> dict[str, Any]:
    """Who holds a refresh lock, recorded so a second refresh can name them."""
    return {"run_id": run_id, "environment": environment, "user": current_user(), "host": socket.gethostname(),
            "pid": os.getpid(), "started_at": utc_now()}


def wait_for_owners(environment: str, sweep: Callable[[], list[str]], grace: float | None = None) -> None:
    """Run ``sweep`` (drop the shadows whose owning run is gone; return those whose owner still
    runs) until no owner is left, for at most ``grace`` seconds (default: ``OWNER_GRACE_SECONDS``, read
    at the call; the sessions of a process that was just killed take a moment to end). An owner that
    still runs lost its refresh lock: it fails at its check before the swap, and its shadow is not
    ours to drop, so give up."""
    deadline = time.monotonic() + (OWNER_GRACE_SECONDS if grace is None else grace)
    while True:
        running = sweep()
        if not running:
            return
        if time.monotonic() >= deadline:
            raise LockHeld(f"another refresh of {environment} still runs: {running[0]}; it lost the refresh "
                           "lock and stops before its swap, so its shadow copy was left alone")
        time.sleep(0.2)


def describe_holder(info: dict[str, Any] | None) -> str:
    if not info:
        return "another refresh holds the lock"
    return (f"run {info.get('run_id', '?')} by {info.get('user', '?')}@{info.get('host', '?')} "
            f"(pid {info.get('pid', '?')}) since {info.get('started_at', '?')}")


class Shadow(ABC):
    """A copy of the target under construction. Nothing in it is visible until :meth:`swap`."""

    name: str
    swapped: bool = False  # set by :meth:`go_live`: the shadow is the current copy now

    @abstractmethod
    def create_tables(self, tables: list[TableInfo]) -> list[str]:
        """Create ``tables`` without secondary indexes (and, where the dialect allows, without FKs).

        Returns notes about lossy type mappings or objects not copied.
        """

    @abstractmethod
    def write(self, table: TableInfo, frame: pd.DataFrame) -> int:
        """Append one batch of rows to ``table``; returns rows written."""

    @abstractmethod
    def finish(self) -> None:
        """Create indexes and foreign keys, reset sequences, ``ANALYZE``."""

    accepts_chunks: bool = False  # whether other sessions may write chunks of a table (:meth:`chunk_table`)

    def chunk_table(self, table: TableInfo) -> tuple[str, dict[str, str]]:
        """Ready ``table`` for chunks that other sessions write and commit: (its quoted name in the
        shadow, its columns' stored categories). Only where :attr:`accepts_chunks`."""
        raise NotImplementedError(f"{type(self).__name__} takes rows from this process only")

    def chunks_written(self, table: TableInfo) -> None:
        """Every chunk of ``table`` is written and committed: its keys and indexes may follow."""
        raise NotImplementedError(f"{type(self).__name__} takes rows from this process only")

    def when_committed(self, table: TableInfo, then: Callable[[], None]) -> None:
        """Call ``then`` (in any thread, before :meth:`finish` returns) once every row written for ``table``
        is committed, so that :meth:`reader_url` sessions see the table as verification will; called
        when the copy has written its last row. Never, here: such a shadow is read after the load."""
        return None

    @abstractmethod
    def connect(self) -> AbstractContextManager[Connection]:
        """A connection to the shadow for verification."""

    @abstractmethod
    def record_refresh(self, row: dict[str, Any], previous: list[dict[str, Any]]) -> None:
        """Write the refresh log (previous rows plus this run) into the shadow."""

    @abstractmethod
    def swap(self) -> None:
        """Make the shadow the current copy atomically; keep the replaced copy as the previous one."""

    @abstractmethod
    def discard(self) -> None:
        """Drop the shadow; the current copy stays as it was."""

    def go_live(self, row: dict[str, Any], previous: list[dict[str, Any]]) -> None:
        """Record this run in the shadow's refresh log (after ``previous``), then :meth:`swap` it in."""
        self.record_refresh(row, previous)
        self.swap()
        self.swapped = True

    def stream_table(self, source: Connection, table: TableInfo, plan: Any, engine: Any, batch_size: int,
                     progress: Any, observer: Any = None) -> tuple[int, Any] | None:
        """Copy ``table`` straight from the source snapshot, masking on the way, when the target has a
        faster path than batches of Python values; returns (rows, mask stats), or None to use batches.

        ``observer`` (the leak check's index) must see the original and masked values of the
        columns it names (``needed_columns``), exactly as the batch path shows them.
        """
        return None

    def sql_name(self, table: TableInfo, conn: Connection) -> str:
        """The quoted name of ``table`` as seen from a :meth:`connect` connection."""
        return quote_as_needed(conn, table.name)

    def hook_url(self) -> str | None:
        """A URL that opens the shadow (for ``post_load`` shell hooks), or None."""
        return None

    def reader_url(self) -> str | None:
        """A SQLAlchemy URL from which other processes can read the shadow's tables by their
        :meth:`sql_name`, once it is loaded (None: only :meth:`connect` can)."""
        return None

    def hook_connection(self) -> AbstractContextManager[Connection]:
        """A connection where unqualified table names mean the shadow's tables (``post_load`` SQL hooks)."""
        return self.connect()

    def grant(self, grants: list[AccessGrant]) -> None:
        """Give each role read or write access to the shadow's tables."""
        raise TargetError("this target has no access control; remove access: from the environment")


class Target(ABC):
    """One environment's database."""

    def __init__(self, url: str, environment: str) -> None:
        self.url = url
        self.environment = environment
        self.notes: list[str] = []  # what reading the current copy had to adapt (keep tables)
        self.run_id: str | None = None  # the run that takes this target's lock (names its sessions)

    @property
    def session_label(self) -> str:
        """The name of this run's sessions on the target server (PostgreSQL ``application_name``)."""
        return (RUN_LABEL + self.run_id)[:63] if self.run_id else "datastage"

    def lock_lost(self, why: str, in_doubt: bool = False) -> LockLost:
        """The error of a run whose refresh lock ended before its swap (``in_doubt``: while the swap
        committed, and whether it went through could not be checked)."""
        if in_doubt:
            return LockLost(f"the refresh lock of {self.environment} was lost while the swap committed ({why}); "
                            "whether the new copy is live could not be checked: see its refresh log")
        return LockLost(f"the refresh lock of {self.environment} was lost before the swap completed ({why}); "
                        "the target was left unchanged")

    def settle(self, why: str, committed: Callable[[], bool]) -> None:
        """After the lock session ended (``why``) during a commit: return if ``committed()`` says the commit
        went through (it did while the lock was held), raise :class:`~datastage.errors.LockLost` if it
        did not, or an in-doubt one if that cannot be checked."""
        try:
            went_through = committed()
        except TargetError as exc:
            raise self.lock_lost(f"{why}; then: {exc.message}", in_doubt=True) from None
        if not went_through:
            raise self.lock_lost(why)

    def swapped_in(self, run_id: str) -> dict[str, Any] | None:
        """The refresh-log row of ``run_id`` if its copy was swapped in: the current copy's log holds
        the row of every refresh whose copy led to it (the swap commits the row with the copy)."""
        return next((row for row in self.refresh_log() if str(row.get("run_id")) == run_id), None)

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    @abstractmethod
    def lock(self, run_id: str) -> AbstractContextManager[None]:
        """Hold the refresh lock for this target; raises :class:`~datastage.errors.LockHeld`.

        The swap and the rollback verify, right before they change anything (where the target
        allows it, in the same transaction), that the lock is still held, and raise
        :class:`~datastage.errors.LockLost` otherwise.
        """

    @abstractmethod
    def cleanup_stale(self) -> list[str]:
        """Drop shadows left by crashed refreshes; returns what was removed.

        Only shadows whose owning run is provably gone are dropped; one whose owner still runs
        (it lost the lock but goes on) raises :class:`~datastage.errors.LockHeld`.
        """

    @abstractmethod
    def create_shadow(self, model: SchemaModel, run_id: str) -> Shadow:
        """Start a new shadow copy."""

    @contextmanager
    def shadow(self, model: SchemaModel, run_id: str) -> Iterator[Shadow]:
        """A new shadow copy for the block; discarded when the block ends, however it ends, unless
        :meth:`Shadow.go_live` swapped it in."""
        created = self.create_shadow(model, run_id)
        try:
            yield created
        finally:
            if not created.swapped:
                created.discard()

    @abstractmethod
    def rollback(self) -> RollbackResult:
        """Swap the previous copy back in (the current one becomes the previous)."""

    @abstractmethod
    def current_rows(self, table: TableInfo, batch_size: int) -> Iterator[pd.DataFrame]:
        """Rows of ``table`` in the current copy (for ``keep:`` tables); nothing if absent."""

    @abstractmethod
    def refresh_log(self) -> list[dict[str, Any]]:
        """Rows of the refresh log in the current copy (oldest first)."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether a current copy exists."""

    def copy_schemas(self, source_schemas: tuple[str, ...]) -> tuple[str, ...]:
        """The schemas that hold the current copy of a source read from ``source_schemas`` (for reading
        the copy back, as ``provision`` does). One database or file keeps every table in its default
        schema: none to name."""
        return ()

    def create_database(self) -> bool:
        """Create the target database if the server has none of that name yet (before a first refresh
        takes the lock); returns whether it did. Only after the safety checks passed."""
        return False

    def drop_created(self) -> None:
        """Drop the database :meth:`create_database` created, once the first refresh failed before its swap."""
        return None

    def keep_columns(self, table: TableInfo, present: list[str]) -> list[str]:
        """The columns of a ``keep:`` table to carry from the current copy, whose table has the
        columns ``present`` (none: absent); what does not match is recorded in :attr:`notes`."""
        if not present:
            self.notes.append(f"keep table {table.key}: not in the current copy; created empty")
            return []
        wanted = table.insertable_columns
        missing = [c for c in wanted if c not in present]
        extra = [c for c in present if c not in table.columns]
        if missing or extra:
            self.notes.append(
                f"keep table {table.key}: its shape changed; carried the common columns"
                + (f" (new, left to their defaults: {', '.join(missing)})" if missing else "")
                + (f" (dropped: {', '.join(extra)})" if extra else ""))
        return [c for c in wanted if c in present]


def encode_log_row(row: dict[str, Any]) -> dict[str, Any]:
    """The refresh-log row with every value as text (portable across dialects), redacted: the log is
    text datastage writes into the target."""
    encoded = {k: (json.dumps(v) if isinstance(v, dict | list) else (None if v is None else str(v)))
               for k, v in row.items() if k in REFRESH_LOG_COLUMNS}
    return {k: (redact(v) if isinstance(v, str) else v) for k, v in encoded.items()}
