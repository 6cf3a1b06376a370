"""Where a refresh's chunks run: in this process, in local worker processes, or on a Dask cluster.

A chunk is one slice of one table (a key range, a block range, a slice of planned keys). Its
work is a pure function of the chunk and of what every worker holds in memory for the run (the
plan, the masking key): read the chunk's rows from the source snapshot, mask them, collect the
source values' keyed hashes, write them into the shadow, return counts and evidence. Every
executor runs the same functions (:mod:`datastage.executor.base`).

Choosing one (:func:`open_executor`; here, not in :mod:`~datastage.executor.base`, so the module
that defines the contract imports none of its executors):
    >>> from datastage.settings import ExecutorSetting
    >>> open_executor(ExecutorSetting(workers=2)).label
    'local'
"""

from __future__ import annotations

import os
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


def default_workers(servers_here: bool) -> int:
    """Workers when ``workers:`` is not set: one per core, or half the cores when a database server of the
    run runs on this machine (``servers_here``), whose backends do about as much work as the workers."""
    cores = os.cpu_count() or 1
    return max(1, cores // 2) if servers_here else cores
