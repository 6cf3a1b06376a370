"""What a check of the loaded shadow is given: a :class:`CheckContext`.

Every check family (:mod:`datastage.verify.checks`) is a function ``check(ctx) ->
list[CheckResult]``; the context carries the connection to the shadow, the plan (tables,
model, policy, check settings), how the shadow names each table, the rows extracted and
written, for the leak check the index built while the source streamed, and for the
kept-column check the run's read-only snapshot of the source.

Example:
    >>> import sqlalchemy as sa
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     query_count(conn, "SELECT count(*) FROM (SELECT 1 UNION SELECT 2)", "counting")
    2
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import StepError
from datastage.mask.checkspec import CheckSettings
from datastage.mask.keys import MaskingKey
from datastage.plan import PlanResult
from datastage.progress import NoProgress, Progress
from datastage.settings import DEFAULT_BATCH_SIZE
from datastage.source.db import db_error_message
from datastage.source.schema import TableInfo
from datastage.verify.leaks.index import LeakIndex
from datastage.verify.leaks.scanner import Found
from datastage.verify.leaks.search import LoadedSearch, start_loaded_search

NameOf = Callable[[TableInfo], str]


def query_count(conn: Connection, sql: str, what: str) -> int:
    """The one number ``sql`` returns (0 for NULL); a failure is a verify step error about ``what``."""
    try:
        return int(conn.exec_driver_sql(sql).scalar() or 0)
    except SQLAlchemyError as exc:
        raise StepError(f"{what}: {db_error_message(exc)}", step="verify") from None


@dataclass(eq=False)
class CheckContext:
    """The loaded shadow and what is known about it, as every check family reads it."""

    conn: Connection
    plan: PlanResult
    name_of: NameOf
    written: dict[str, int] = field(default_factory=dict)  # rows written into the shadow, per table
    extracted: dict[str, int] = field(default_factory=dict)  # rows read from the source, per table
    leaks: LeakIndex | None = None
    key: MaskingKey | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    reader_url: str | None = None  # where worker processes can read the shadow (None: only ``conn``)
    progress: Progress = field(default_factory=NoProgress)
    source: Connection | None = None  # the run's read-only snapshot of the source (None: nothing to compare with)
    # The kept-column check's flagging of a table, done by a worker while the copy ran (None: flag it here).
    kept_flags: Callable[[str], Any] | None = None

    @property
    def settings(self) -> CheckSettings:
        """The rules' ``checks:`` block (severities, thresholds, exemptions, quasi-identifiers)."""
        return self.plan.checks

    _pending: LoadedSearch | None = field(default=None, init=False, repr=False)

    def start_leak_search(self) -> None:
        """Begin the search of the loaded copy, so worker processes search a large copy while the other
        checks run here (without a leak index, or for a copy searched in this process, nothing starts)."""
        if self.leaks is None or self.key is None or self._pending is not None or "leak_search" in self.__dict__:
            return
        self._pending = start_loaded_search(self.conn, self.plan, self.leaks, self.key, self.settings, self.name_of,
                                            self.batch_size, reader_url=self.reader_url, rows=self.written,
                                            progress=self.progress)

    def stop_leak_search(self) -> None:
        """Stop a search begun by :meth:`start_leak_search` whose results no check asked for."""
        pending, self._pending = self._pending, None
        if pending is not None and "leak_search" not in self.__dict__:
            pending.cancel()

    @cached_property
    def leak_search(self) -> Found | None:
        """What the one search of the loaded copy found (None without a leak index): the leak check
        and the card sweep both report on it, so the copy is read once."""
        if self.leaks is None or self.key is None:
            return None
        self.start_leak_search()
        assert self._pending is not None
        return self._pending.result()
