"""Builds each loaded table's keys and indexes on a second connection while the next table loads.

Once a table's rows are committed in the shadow, its primary, unique and exclusion constraints
and its indexes are independent of every other table: a worker thread builds them on its own
connection (the server works on them while the loader streams the next table; psycopg releases
the GIL while it waits). Foreign keys, triggers and views wait for :meth:`IndexBuilder.close`.
The first failure stops the worker and is raised by ``close``.

Example (a failure, here of the worker's connection itself, is raised by :meth:`IndexBuilder.close`):
    >>> def connect():
    ...     raise psycopg.OperationalError("connection refused")
    >>> builder = IndexBuilder(connect, ["SET search_path = public__ds_shadow_1"])
    >>> builder.submit("customer", [("constraint customer_pkey", "ALTER TABLE customer ADD PRIMARY KEY (id)")])
    >>> builder.close()
    Traceback (most recent call last):
    datastage.errors.TargetError: building indexes in the shadow: OperationalError: connection refused
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import psycopg

from datastage.errors import TargetError

_STOP = object()


class IndexBuilder:
    """One worker thread with its own connection, running submitted statements table by table."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], setup: list[str]) -> None:
        self._connect = connect
        self._setup = setup
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._cancelled = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="datastage-index-builder", daemon=True)
        self._thread.start()

    def submit(self, table: str, statements: list[tuple[str, str]]) -> None:
        if statements:
            self._queue.put((table, statements))

    def _run(self) -> None:
        try:
            self._conn = self._connect()
            for statement in self._setup:
                self._conn.execute(statement)
            self._conn.commit()
            while (item := self._queue.get()) is not _STOP:
                if self._error is not None or self._cancelled.is_set():
                    continue
                table, statements = item
                what = table
                try:
                    for name, sql in statements:
                        what = name
                        self._conn.execute(sql)
                    self._conn.commit()
                except psycopg.Error as exc:
                    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    self._error = TargetError(f"creating {what} in the shadow: {text}", table=table)
                    with suppress(psycopg.Error):
                        self._conn.rollback()
        except BaseException as exc:  # noqa: BLE001 - reported by close()
            self._error = exc if isinstance(exc, TargetError) else TargetError(
                f"building indexes in the shadow: {type(exc).__name__}: {exc}")
        finally:
            if self._conn is not None:
                with suppress(psycopg.Error):
                    self._conn.close()

    def close(self) -> None:
        """Wait for every submitted table; raise the first failure."""
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        """Stop after the statement running now (the shadow is being discarded)."""
        self._cancelled.set()
        self._queue.put(_STOP)
        conn = self._conn
        if conn is not None:
            with suppress(psycopg.Error):
                conn.cancel_safe(timeout=5) if hasattr(conn, "cancel_safe") else conn.cancel()
        self._thread.join(timeout=30)
