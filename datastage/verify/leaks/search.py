"""The one search of the loaded copy that the leak check and the card sweep both report on.

Every text and JSON column (and every masked column) of every loaded table is read once,
in this process or, for a large copy another process can read, in parts by worker
processes (:mod:`datastage.verify.leaks.pool`); what they found is merged into one
:class:`~datastage.verify.leaks.scanner.Found`.

Example (the loaded row 1 still holds its original e-mail address; row 3 a test card number):
    >>> import pandas as pd
    >>> import sqlalchemy as sa
    >>> from datastage.mask.policy import policy_from_text
    >>> from datastage.mask.resolve import resolve_policy
    >>> from datastage.settings import SubsetSpec
    >>> from datastage.source.schema import reflect
    >>> from datastage.subset.planner import plan_subset
    >>> key = MaskingKey(b"an example key, not a real one", source="example")
    >>> source = pd.DataFrame({"id": [1, 2], "email": ["ann@example.com", "bob@example.org"]})
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     _ = conn.exec_driver_sql("CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT)")
    ...     model = reflect(conn)
    ...     policy = resolve_policy(policy_from_text("version: 1\\ntables: {customer: {email: hash}}"), model)
    ...     planned = PlanResult("staging", model, plan_subset(conn, model, SubsetSpec()), policy, {},
    ...                          [model.table("customer")], {})
    ...     index = LeakIndex.for_plan(key, planned)
    ...     index.observe("customer", source, source)  # the source rows as the extract streams them
    ...     _ = conn.exec_driver_sql("INSERT INTO customer VALUES (1, 'ann@example.com'), (2, '5f0c1b2e'),"
    ...                              " (3, 'card 4111 1111 1111 1111')")  # the loaded copy
    ...     found = search_loaded_copy(conn, planned, index, key, planned.checks, lambda table: table.name)
    >>> found.masked.matches, found.identifiers.by_kind, found.test_cards
    (Counter({'customer.email': 1}), {'customer.email': Counter({'email': 1})}, 1)
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
from datastage.verify.leaks.pool import PendingSearch, start_search
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
    return start_loaded_search(conn, planned, index, key, settings, name_of, batch_size, reader_url, rows,
                               progress).result()


class LoadedSearch:
    """A search of the loaded copy begun by :func:`start_loaded_search`; :meth:`result` waits for it."""

    def __init__(self, found: Found, pending: PendingSearch) -> None:
        self._found, self._pending = found, pending

    def result(self) -> Found:
        for part in self._pending.results():
            self._found.merge(part)
        return self._found

    def cancel(self) -> None:
        self._pending.cancel()


def start_loaded_search(conn: Connection, planned: PlanResult, index: LeakIndex, key: MaskingKey,
                        settings: CheckSettings, name_of: Callable[[TableInfo], str],
                        batch_size: int = DEFAULT_BATCH_SIZE, reader_url: str | None = None,
                        rows: dict[str, int] | None = None, progress: Progress | None = None) -> LoadedSearch:
    """:func:`search_loaded_copy`, begun: worker processes search a large copy while the caller goes on
    (``conn`` stays the caller's: only the planning of the parts uses it)."""
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
    pending = start_search(conn, scanner, work, batch_size, reader_url, rows or {}, progress or NoProgress())
    return LoadedSearch(found, pending)
