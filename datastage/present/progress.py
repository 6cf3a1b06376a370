"""Progress bars on a terminal (stderr) while a refresh or a provision runs.

Example:
    >>> use_progress(quiet=True, as_json=False)
    False
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from datastage.present.streams import err


def use_progress(quiet: bool, as_json: bool) -> bool:
    """Whether to draw progress bars: not with ``--quiet`` or ``--json``, and only on a terminal."""
    return not quiet and not as_json and sys.stderr.isatty()


class RichProgress:
    """Progress bars on a terminal; the pipeline calls it, it draws (stage and table names literally)."""

    def __init__(self, console: Console | None = None) -> None:
        self.bar = Progress(TextColumn("{task.description:<28}", markup=False), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console or err, transient=True)
        self.task: Any = None

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def stage(self, name: str) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        self.task = self.bar.add_task(name, total=None)

    def table(self, name: str, rows: int) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(name, total=max(rows, 1))

    def advance(self, rows: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, rows)
