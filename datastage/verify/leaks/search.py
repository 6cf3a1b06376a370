"""The one search of the loaded copy that the leak check and the card sweep both report on.

Every text and JSON column (and every masked column) of every loaded table is read once,
in this process or, for a large copy another process can read, in parts by worker
processes (:mod:`datastage.verify.leaks.pool`); what they found is merged into one
:class:`~datastage.verify.leaks.scanner.Found`.

Example:
    >>> found = search_loaded_copy(conn, planned, index, key, settings, name_of)   # doctest: +SKIP
    >>> found.cards.columns                                                        # doctest: +SKIP
    12
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

from datastage.mask.checkspec import CheckSettings
from datastage.mask.keys import MaskingKey
from datastage.plan import PlanResult
from datastage.progress import NoProgress, Progress
from datastage.settings import DEFAULT_BATCH_SIZE
from datastage.source.schema import TableInfo
from datastage.verify.leaks.index import LeakIndex
from datastage.verify.leaks.pool import search_tables
from datastage.verify.leaks.scanner import Found, Scanner


def search_loaded_copy(conn: Connection, planned: PlanResult, index: LeakIndex, key: MaskingKey,
                       settings: CheckSettings, name_of: Callable[[TableInfo], str],
                       batch_size: int = DEFAULT_BATCH_SIZE, reader_url: str | None = None,
                       rows: dict[str, int] | None = None,
                       progress: Progress | None = None) -> Found:
    """Stream every text/JSON column (and every masked column) of the shadow against ``index``.

    With ``reader_url`` (a shadow another process can read), large tables are searched in
    parts by worker processes (:mod:`datastage.verify.leaks.pool`).
    """
    scanner = Scanner(planned, index, key, settings)
    found = Found()
    work = []
    for table in planned.tables:
        rules, text_columns, columns = scanner.columns(table)
        if columns:
            found.masked.columns += len(rules)
            found.identifiers.columns += len(text_columns)
            found.cards.columns += len(text_columns)
            work.append((table, name_of(table)))
    for part in search_tables(conn, scanner, work, batch_size, reader_url, rows or {}, progress or NoProgress()):
        found.merge(part)
    return found
