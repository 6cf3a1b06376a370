"""Local worker processes (to be built): one per core by default."""

from __future__ import annotations

from datastage.executor.base import InlineExecutor


class LocalExecutor(InlineExecutor):
    """Placeholder until the worker-process executor lands: runs jobs in this process."""

    label = "local"

    def __init__(self, workers: int | None = None) -> None:
        super().__init__()
