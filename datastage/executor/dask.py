"""Chunks on an existing Dask distributed cluster (to be built)."""

from __future__ import annotations

from datastage.executor.base import InlineExecutor


class DaskExecutor(InlineExecutor):
    """Placeholder until the Dask executor lands."""

    label = "dask"

    def __init__(self, address: str | None, workers: int | None = None) -> None:
        super().__init__()
        self.address = address
