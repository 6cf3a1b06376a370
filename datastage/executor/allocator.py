"""The C allocator of a worker process while it holds a run: adaptive, not the fixed thresholds a Dask nanny sets.

A Dask nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536``. Any such setting turns off
glibc's adaptive mmap threshold, so every array above 128 KiB becomes a fresh ``mmap``. The kernel
then zeroes its pages on first touch, and masking a column takes about 1.8× the CPU time it takes
elsewhere. While a run holds a worker whose environment fixed the thresholds, they are raised with
``mallopt``; when the last run ends, the values the environment set come back. A worker whose
environment set nothing is left alone: glibc adapts by itself there.

Example (the thresholds an environment sets, and glibc's default where it sets none):
    >>> threshold_in({"MALLOC_TRIM_THRESHOLD_": "65536"}, "MALLOC_TRIM_THRESHOLD_")
    65536
    >>> name = "MALLOC_MMAP_THRESHOLD_"
    >>> threshold_in({}, name), threshold_in({name: "x"}, name)
    (131072, 131072)
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt(3) parameters
RUN_MMAP_THRESHOLD = 32 << 20  # arrays up to 32 MiB are reused from the heap
RUN_TRIM_THRESHOLD = 64 << 20  # the heap keeps up to 64 MiB free at its top between batches
GLIBC_DEFAULT = 128 * 1024  # both thresholds' glibc default
FIXING = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")

_holding: set[str] = set()  # the runs for which the thresholds are raised in this process


def _mallopt(option: int, value: int) -> bool:
    try:
        return bool(ctypes.CDLL(None).mallopt(option, value))
    except (OSError, AttributeError):  # no glibc (musl, macOS): nothing to tune
        return False


def threshold_in(environ: Mapping[str, str], name: str) -> int:
    """The threshold ``name`` an environment sets (glibc's default when it sets none, or nothing valid)."""
    try:
        return max(0, int(environ.get(name, GLIBC_DEFAULT)))
    except ValueError:
        return GLIBC_DEFAULT


def tuned() -> bool:
    """Whether this process's thresholds are raised for a run."""
    return bool(_holding)


def tune_for_run(run_id: str) -> bool:
    """Raise the thresholds for ``run_id`` when this process's environment fixed them (else change
    nothing); whether they are raised."""
    if not _holding:
        if not sys.platform.startswith("linux") or not any(name in os.environ for name in FIXING):
            return False
        if not (_mallopt(M_MMAP_THRESHOLD, RUN_MMAP_THRESHOLD) and _mallopt(M_TRIM_THRESHOLD, RUN_TRIM_THRESHOLD)):
            return False
    _holding.add(run_id)
    return True


def restore_after_run(run_id: str) -> None:
    """The run ended here: when no other run holds the raised thresholds, the environment's come back."""
    if run_id not in _holding:
        return
    _holding.discard(run_id)
    if not _holding:
        _mallopt(M_MMAP_THRESHOLD, threshold_in(os.environ, "MALLOC_MMAP_THRESHOLD_"))
        _mallopt(M_TRIM_THRESHOLD, threshold_in(os.environ, "MALLOC_TRIM_THRESHOLD_"))
