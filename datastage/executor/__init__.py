"""Where a refresh's chunks run: in this process, in local worker processes, or on a Dask cluster.

A chunk is one slice of one table (a key range, a block range, a slice of planned keys). Its
work is a pure function of the chunk and of what every worker holds in memory for the run (the
plan, the masking key): read the chunk's rows from the source snapshot, mask them, collect the
source values' keyed hashes, write them into the shadow, return counts and evidence. Every
executor runs the same functions (:mod:`datastage.executor.base`).
"""

from __future__ import annotations

from typing import Any

from datastage.executor.base import Executor


def open_executor(setting: Any) -> Executor:
    """The executor an environment's ``executor:``/``workers:`` settings name
    (a :class:`~datastage.settings.ExecutorSetting`)."""
    if setting.kind == "dask":
        from datastage.executor.dask import DaskExecutor  # distributed is imported only for a Dask run

        return DaskExecutor(setting.address, setting.workers)
    from datastage.executor.local import LocalExecutor

    return LocalExecutor(setting.workers)
