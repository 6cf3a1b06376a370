"""The kept-column check's flagging, done by a worker process while the copy goes on.

Most of the kept-column check (:mod:`datastage.verify.checks.kept`) is flagging: reading every kept
text column of the loaded copy and running the identifier detectors over its distinct values. That
reads only the copy, so when other sessions can read it (:meth:`~datastage.targets.base.Shadow.reader_url`)
a worker process flags each table as soon as the copy has committed it
(:meth:`~datastage.targets.base.Shadow.when_committed`), on a core the copy leaves idle much of the
time. The check then compares the flagged rows with the source in the refresh's own process, as it
does for a table it flags itself: the outcome is the same.

It applies to PostgreSQL and MariaDB/MySQL shadows (the others never report a table committed), when
no ``post_load`` hook will run (a hook may still change the copy after it is flagged), on Linux with
at least two workers for the checks (:func:`~datastage.verify.leaks.pool.worker_count`), to copies
of at least :data:`~datastage.verify.leaks.pool.MIN_ROWS` rows. A table with more than
:data:`MAX_FLAGGED_ROWS` flagged rows or :data:`MAX_FLAGGED_BYTES` of their keys and value digests
(the worker holds them all until the check asks), or whose flagging failed in the worker (a warning
says so), is flagged again by the check itself; so is every table when the worker cannot start. The
worker receives the shadow's URL over its pipe, in memory only, and never the masking key; its
sessions carry the run's name.

Example (a small copy is flagged by the check, after the load):
    >>> applies(rows=1_000, post_load_hooks=False, reader_url="postgresql://host/db")
    False
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import DatastageError
from datastage.executor.base import shared
from datastage.executor.local import LocalExecutor
from datastage.plan import PlanResult
from datastage.secrets import get_logger
from datastage.source.db import db_error_message, make_engine
from datastage.source.schema import TableInfo
from datastage.targets.base import Shadow
from datastage.verify.checks.kept import Flagged, KeptColumn, checked_columns, flag_table
from datastage.verify.leaks.pool import MIN_ROWS, URL_SECRET, worker_count

FLAG_RUN = "kept-flags"
LABEL_SECRET = "session_label"  # noqa: S105 - the name the run's session label travels under, not a secret
MAX_FLAGGED_ROWS = 250_000  # flagged rows a worker holds for one table before leaving it to the check
MAX_FLAGGED_BYTES = 16 << 20  # and bytes of their keys and value digests
log = get_logger("datastage.verify")
_ENGINES: dict[str, Engine] = {}  # in a worker: its engine for the shadow, made on first use

# (table, its kept columns, comparison key, its name in the shadow, batch size, most rows held, most bytes held)
Job = tuple[TableInfo, list[KeptColumn], tuple[str, ...] | None, str, int, int, int]


def applies(*, rows: int, post_load_hooks: bool, reader_url: str | None) -> bool:
    """Whether a copy of ``rows`` rows is flagged while it loads."""
    return (rows >= MIN_ROWS and not post_load_hooks and reader_url is not None and worker_count() > 1
            and sys.platform.startswith("linux"))


def _flag(job: Job) -> Flagged | str | None:
    """In a worker: :func:`~datastage.verify.checks.kept.flag_table` of one committed table; None when it
    holds too many flagged rows, a one-line reason when it failed (the check then flags it itself)."""
    table, columns, key, name, batch_size, max_rows, max_bytes = job
    try:
        url = shared(URL_SECRET, FLAG_RUN).decode()
        label = shared(LABEL_SECRET, FLAG_RUN).decode()
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = make_engine(url, role="shadow", application_name=label)
        with engine.connect() as conn:
            try:
                flagged = flag_table(conn, table, columns, key, name, batch_size, max_rows, max_bytes)
            except BaseException:
                conn.invalidate()  # it may be in the middle of a COPY: closed, never reset
                raise
            if flagged is None:
                conn.invalidate()  # left in the middle of its COPY
            return flagged
    except SQLAlchemyError as exc:
        return db_error_message(exc)
    except DatastageError as exc:
        return exc.message
    except Exception as exc:  # noqa: BLE001 - the check flags the table again and reports what fails there
        return type(exc).__name__


class KeptFlags:
    """Flags the kept columns of each table :meth:`offer` hands it, one table at a time, in a worker
    process driven by a thread of this process; calling it with a table's key waits for that table."""

    def __init__(self, plan: PlanResult, reader_url: str, batch_size: int, session_label: str) -> None:
        self._columns = {table.key: checked_columns(plan, table) for table in plan.tables}
        self._batch_size = batch_size
        self._jobs: queue.SimpleQueue[tuple[str, Job] | None] = queue.SimpleQueue()
        self._done: dict[str, threading.Event] = {}
        self._results: dict[str, Flagged | None] = {}
        self._executor = LocalExecutor(1)
        self._secrets = {URL_SECRET: reader_url.encode(), LABEL_SECRET: session_label.encode()}
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._work, name="datastage-kept-flags", daemon=True)
        self._thread.start()

    def offer(self, table: TableInfo, name: str) -> None:
        """Flag ``table``, which the shadow has committed (``name``: its name as sessions of
        :meth:`~datastage.targets.base.Shadow.reader_url` see it); from any thread."""
        columns, key = self._columns.get(table.key, ([], None))
        if not columns or table.key in self._done:
            return
        self._done[table.key] = threading.Event()
        self._jobs.put((table.key, (table, columns, key, name, self._batch_size, MAX_FLAGGED_ROWS,
                                    MAX_FLAGGED_BYTES)))

    def __call__(self, table_key: str) -> Flagged | None:
        """The flagging of ``table_key`` (waited for), or None when the check must flag it itself."""
        event = self._done.get(table_key)
        if event is None:
            return None
        event.wait()
        return self._results.pop(table_key, None)  # asked for once: not held until the run ends

    def _work(self) -> None:
        working = self._start()
        while (item := self._jobs.get()) is not None:
            table_key, job = item
            result: Flagged | None = None
            if working:
                try:
                    for _, outcome in self._executor.run(_flag, [job]):
                        if isinstance(outcome, str):
                            log.warning("the kept-column check flags this table after the load: flagging it "
                                        f"during the copy failed: {outcome}", extra={"table": table_key})
                        else:
                            result = outcome
                except Exception:  # noqa: BLE001 - the worker died or was stopped: the check flags the rest
                    if not self._closing.is_set():
                        log.warning("the kept-column check flags the remaining tables after the load: its worker "
                                    "stopped", extra={"table": table_key})
                    working = False
            self._results[table_key] = result
            self._done[table_key].set()

    def _start(self) -> bool:
        """Start the worker (here, in the driver thread: starting it takes about a second, which the
        copy does not wait for); False when it cannot start, and the check flags every table itself."""
        try:
            self._executor.share(FLAG_RUN, self._secrets)
        except Exception as exc:  # noqa: BLE001 - whatever stops it, the tables waiting for it must not wait forever
            reason = exc if isinstance(exc, OSError | DatastageError) else type(exc).__name__
            log.warning(f"the kept-column check flags the copy after the load: its worker did not start ({reason})")
            return False
        finally:
            self._secrets = {}
        return True

    def close(self) -> None:
        """Stop the worker (at once, if it is still flagging: nobody will ask for the rest)."""
        self._closing.set()
        self._jobs.put(None)
        if any(not event.is_set() for event in self._done.values()):
            with suppress(OSError, ValueError):
                self._executor.kill()
        self._thread.join()
        self._executor.close()


@contextmanager
def kept_flags(plan: PlanResult, shadow: Shadow, *, post_load_hooks: bool, batch_size: int,
               session_label: str) -> Iterator[KeptFlags | None]:
    """A :class:`KeptFlags` for the copy into ``shadow`` when it :func:`applies` (``session_label``: the
    run's name for its sessions), closed on the way out; None when it does not apply or cannot start."""
    rows = sum(plan.subset.tables[t.key].selected_rows for t in plan.tables)
    url = shadow.reader_url()
    if url is None or not applies(rows=rows, post_load_hooks=post_load_hooks, reader_url=url):
        yield None
        return
    flags = KeptFlags(plan, url, batch_size, session_label)
    try:
        yield flags
    finally:
        flags.close()
