"""Search a loaded shadow's tables in parts, in parallel worker processes.

The leak check reads every text value of the loaded copy and searches it in Python, which
keeps one core busy. When the shadow can be read by another session, large copies are cut
into parts and searched by worker processes (:class:`~datastage.executor.local.LocalExecutor`),
each with its own connection; a worker returns counts only. Parts are block ranges (``ctid``, scanned as TID ranges) on
PostgreSQL, ``rowid`` ranges on SQLite and whole tables on MariaDB/MySQL. Small copies and
systems other than Linux are searched in the calling process.

``DATASTAGE_CHECK_WORKERS`` sets the number of workers (``1``: no workers); the default is
the number of CPUs, at most 4.

Example (how a SQLite copy is cut: 1,000 rows stay in this process, 200,000 make four parts):
    >>> import sqlalchemy as sa
    >>> from datastage.source.schema import reflect
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)")
    ...     _ = conn.exec_driver_sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
    ...                              " WHERE i < 200000) INSERT INTO t (id) SELECT i FROM n")
    ...     work = [(reflect(conn).table("t"), '"t"')]
    ...     small, large = _plan_parts(conn, work, {"t": 1_000}), _plan_parts(conn, work, {"t": 200_000})
    >>> small, [where for _, _, where in large]  # doctest: +NORMALIZE_WHITESPACE
    ([], [' WHERE rowid < 50001', ' WHERE rowid >= 50001 AND rowid < 100001',
          ' WHERE rowid >= 100001 AND rowid < 150001', ' WHERE rowid >= 150001'])
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import DatastageError, StepError
from datastage.executor.base import context, shared
from datastage.executor.local import LocalExecutor, start_forkserver
from datastage.mask.keys import MaskingKey
from datastage.progress import Progress
from datastage.settings import tuning_from_env
from datastage.source.db import db_error_message, make_engine
from datastage.source.schema import TableInfo
from datastage.verify.leaks.scanner import Found, Scanner

MIN_PAGES = 2_000  # below about 16 MB of table pages, starting workers costs more than it saves
PART_PAGES = 1_000  # about 8 MB of rows per part
MIN_ROWS = 200_000  # the same for targets measured in rows
PART_ROWS = 50_000
CANCEL_SECONDS = 30.0  # how long a cancelled search may take to hand back its last part



def worker_count() -> int:
    """Workers for the search: ``$DATASTAGE_CHECK_WORKERS``, else the CPUs (at most 4).

    The count comes from :func:`datastage.settings.tuning_from_env`, which validates it."""
    configured = tuning_from_env().check_workers
    return configured or max(1, min(os.cpu_count() or 1, 4))


def _pages(conn: Connection, name: str) -> int:
    """Blocks of a plain table (0 for a partitioned parent, whose rows live in its partitions)."""
    row = conn.exec_driver_sql(
        "SELECT CASE WHEN c.relkind = 'r' THEN pg_relation_size(c.oid) / current_setting('block_size')::int ELSE 0 END "
        "FROM pg_class c WHERE c.oid = to_regclass(%(name)s)", {"name": name}).fetchone()
    return int(row[0]) if row and row[0] else 0


def _parts(pages: int, tid_ranges: bool) -> list[str]:
    """``WHERE`` clauses that split a table of ``pages`` blocks into TID ranges (the last one open).

    >>> _parts(2500, True)[1:]
    [" WHERE ctid >= '(1000,0)'::tid AND ctid < '(2000,0)'::tid", " WHERE ctid >= '(2000,0)'::tid"]
    """
    if pages < 2 * PART_PAGES or not tid_ranges:
        return [""]
    bounds = list(range(0, pages, PART_PAGES))
    clauses = [f" WHERE ctid >= '({a},0)'::tid AND ctid < '({a + PART_PAGES},0)'::tid" for a in bounds[:-1]]
    return [*clauses, f" WHERE ctid >= '({bounds[-1]},0)'::tid"]


def _rowid_parts(conn: Connection, table: TableInfo, name: str) -> list[str]:
    """``WHERE`` clauses that split a SQLite table into about ``PART_ROWS``-row ``rowid`` ranges
    (the first and last open). A table without rowids, or whose columns take every rowid alias,
    is one part."""
    taken = {c.lower() for c in table.columns}
    alias = next((a for a in ("rowid", "_rowid_", "oid") if a not in taken), None)
    if alias is None:
        return [""]
    try:
        low, high, count = conn.exec_driver_sql(f"SELECT min({alias}), max({alias}), count(*) FROM {name}").one()
    except SQLAlchemyError:
        conn.rollback()
        return [""]
    if low is None or count < 2 * PART_ROWS:
        return [""]
    parts = -(-count // PART_ROWS)
    step = -(-(high - low + 1) // parts)  # parts of equal rowid spans, as many as the rows call for
    bounds = [low + step * i for i in range(1, parts)]
    return [f" WHERE {alias} < {bounds[0]}",
            *(f" WHERE {alias} >= {a} AND {alias} < {b}" for a, b in itertools.pairwise(bounds)),
            f" WHERE {alias} >= {bounds[-1]}"]


def _plan_parts(conn: Connection, work: list[tuple[TableInfo, str]],
                rows: dict[str, int]) -> list[tuple[str, str, str]]:
    """(table, name, where) parts, largest tables first, or none when the copy is too small for workers."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        sized = [(table, name, _pages(conn, name)) for table, name in work]
        if sum(size for _, _, size in sized) < MIN_PAGES:
            return []
        version = conn.exec_driver_sql("SHOW server_version_num").scalar()
        tid_ranges = int(version or 0) >= 140000  # older servers scan the whole table for a TID range
        sized.sort(key=lambda item: -item[2])  # large parts first: the last ones to finish are small
        return [(table.key, name, where) for table, name, pages in sized for where in _parts(pages, tid_ranges)]
    counted = sorted(((table, name, rows.get(table.key, 0)) for table, name in work), key=lambda item: -item[2])
    if sum(size for _, _, size in counted) < MIN_ROWS:
        return []
    if dialect == "sqlite":
        return [(table.key, name, where) for table, name, _ in counted for where in _rowid_parts(conn, table, name)]
    return [(table.key, name, "") for table, name, _ in counted]


SEARCH_RUN = "leak-search"
KEY_SECRET, URL_SECRET = "masking_key", "shadow_url"
_ENGINES: dict[str, Engine] = {}  # in a worker: its own engine for the shadow, made on first use


def _search_part(task: tuple[str, str, str]) -> Found | str:
    """Search one part of one table in a worker; a failure comes back as its one-line message."""
    table_key, name, where = task
    scanner, batch_size, key_source = context(SEARCH_RUN)
    try:
        if scanner.index.key is None:  # a pickled index travels without its key: the worker's copy gets it back
            scanner.index.key = MaskingKey(shared(KEY_SECRET, SEARCH_RUN), key_source)
        url = shared(URL_SECRET, SEARCH_RUN).decode()
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = make_engine(url, read_only=url.startswith("sqlite"), role="shadow")
        with engine.connect() as conn:
            return scanner.scan(conn, scanner.tables[table_key], name, batch_size, where)
    except DatastageError as exc:
        return str(exc)
    except SQLAlchemyError as exc:
        return f"reading {table_key} for the leak check: {db_error_message(exc)}"
    except Exception as exc:  # noqa: BLE001 - reported in the parent as a failed step, never a traceback
        return f"searching {table_key} for the leak check failed: {type(exc).__name__}: {exc}"


def warm_up(rows: int) -> None:
    """Start the workers' process early when a copy of ``rows`` rows will likely be searched by workers."""
    if rows >= MIN_ROWS and worker_count() > 1 and sys.platform.startswith("linux"):
        start_forkserver()


def start_search(conn: Connection, scanner: Scanner, work: list[tuple[TableInfo, str]], batch_size: int,
                 reader_url: str | None, rows: dict[str, int], progress: Progress) -> PendingSearch:
    """The search of ``work``, begun: a large copy another process can read is cut into parts now and
    searched by worker processes while the caller goes on (:class:`PendingSearch`); any other copy is
    searched in this process when its results are asked for."""
    tasks: list[tuple[str, str, str]] = []
    workers = worker_count()
    if reader_url and workers > 1 and sys.platform.startswith("linux"):
        tasks = _plan_parts(conn, work, rows)
        conn.commit()  # the workers read committed data; this session holds no snapshot meanwhile
    if not tasks:
        def here() -> Iterator[Found]:
            for table, name in work:
                progress.table(f"checking {table.key}", rows.get(table.key, 0))
                yield scanner.scan(conn, table, name, batch_size, progress=progress)
        return PendingSearch(here, None)
    background = _Background(lambda: _run(scanner, tasks, reader_url or "", batch_size, workers))
    return PendingSearch(background.results, (f"checking {len(work)} tables ({len(tasks)} parts)", len(tasks),
                                              progress), background)


class _Background:
    """A generator run to its end by a thread of its own (the worker processes' dispatcher, which
    mostly waits for them), so this process can do other work meanwhile."""

    def __init__(self, make: Callable[[], Iterator[Found]]) -> None:
        self._found: list[Found] = []
        self._error: BaseException | None = None
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(make,), name="datastage-leak-search", daemon=True)
        self._thread.start()

    def _work(self, make: Callable[[], Iterator[Found]]) -> None:
        try:
            parts = make()
            for found in parts:
                self._found.append(found)
                if self._cancelled.is_set():
                    close = getattr(parts, "close", None)
                    if close is not None:
                        close()  # the executor stops its workers
                    return
        except BaseException as exc:  # noqa: BLE001 - raised again in the thread that asks for the results
            self._error = exc

    def results(self) -> Iterator[Found]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        yield from self._found

    def cancel(self) -> None:
        self._cancelled.set()
        self._thread.join(CANCEL_SECONDS)  # a part still running ends the wait; the workers die with the refresh


class PendingSearch:
    """A search begun by :func:`start_search`: :meth:`results` waits for it, :meth:`cancel` stops it."""

    def __init__(self, results: Callable[[], Iterator[Found]], bar: tuple[str, int, Progress] | None,
                 background: _Background | None = None) -> None:
        self._results, self._bar, self._background = results, bar, background

    def results(self) -> Iterator[Found]:
        """What each table or part found, in any order."""
        if self._bar is not None:
            label, parts, progress = self._bar
            progress.table(label, parts)
            found = list(self._results())
            progress.advance(parts)
            yield from found
            return
        yield from self._results()

    def cancel(self) -> None:
        """Stop the workers of a search whose results nobody will ask for (after another failure)."""
        if self._background is not None:
            self._background.cancel()


def _run(scanner: Scanner, tasks: list[tuple[str, str, str]], url: str, batch_size: int,
         workers: int) -> Iterator[Found]:
    """The parts searched by worker processes (:class:`~datastage.executor.local.LocalExecutor`)."""
    key = scanner.index.key
    assert key is not None  # the refresh's index holds the masking key
    try:
        with LocalExecutor(min(workers, len(tasks))) as executor:
            executor.share(SEARCH_RUN, {KEY_SECRET: key.secret_material(), URL_SECRET: url.encode()},
                           context=(scanner, batch_size, key.source))
            for _, outcome in executor.run(_search_part, tasks):
                if isinstance(outcome, str):
                    raise StepError(outcome, step="verify")
                yield outcome
    except StepError as exc:
        exc.step = "verify"
        raise
    except DatastageError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line naming the step, never a traceback
        raise StepError(f"the leak check's worker processes failed: {type(exc).__name__}: {exc}",
                        step="verify") from None
