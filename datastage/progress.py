"""Progress events of long steps: the CLI draws bars from them, the library ignores them.

Example:
    >>> bars = NoProgress()
    >>> bars.table("customer", 1_000); bars.advance(500)
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress events (a stage, a table with its expected rows, rows done)."""

    def stage(self, name: str) -> None: ...

    def table(self, name: str, rows: int) -> None: ...

    def advance(self, rows: int) -> None: ...


class NoProgress:
    """Progress that shows nothing (library calls, ``--quiet``, no terminal)."""

    def stage(self, name: str) -> None:
        pass

    def table(self, name: str, rows: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass
