r"""Driver errors of the PostgreSQL writers as one-line :class:`~datastage.errors.TargetError` messages.

Example:
    >>> first_line(ValueError("relation x does not exist\nLINE 1: ..."))
    'relation x does not exist'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa

from datastage.errors import TargetError


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its class name if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def pg_errors(what: str, table: str | None = None) -> Iterator[None]:
    """Driver errors as one-line :class:`TargetError` naming what was being done."""
    try:
        yield
    except psycopg.Error as exc:
        raise TargetError(f"{what}: {first_line(exc)}", table=table) from None
    except sa.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        raise TargetError(f"{what}: {first_line(orig if orig is not None else exc)}", table=table) from None
