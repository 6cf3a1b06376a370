"""A refresh's parallel copy: the chunks of a table through an executor, their results merged.

:class:`ParallelCopy` runs every chunk of one table (:func:`~datastage.executor.work.copy_chunk`)
through the run's executor and merges what they return: rows, masking statistics, the leak
index's hashes (the observer's :meth:`~datastage.executor.work.Observer.merge`) and the
``checked``-unique identities into the refresh's own masking engine, so later tables (chunked or
not) keep those domains injective across the whole run.

Determinism: a chunk masks with an engine of its own, which cannot see the other chunks. When
merging finds that two chunks (or an earlier table of the same domain) gave one output to two
different inputs, or one input two outputs, the chunks' rows are thrown away and the table is
copied again on the sequential path (:meth:`ParallelCopy.copy_table` returns ``None``), which
sees every earlier output as a single-process refresh does. Whether that happens depends on the
data and the key only, never on the number of workers; it is rare (outputs of a ``checked``
domain collide about as often as a redraw is needed at all).

Example (unique pairs: one output per input and one input per output):
    >>> import numpy as np
    >>> injective(np.array([1, 2, 2], dtype=np.uint64), np.array([7, 8, 8], dtype=np.uint64))
    True
    >>> injective(np.array([1, 2], dtype=np.uint64), np.array([7, 7], dtype=np.uint64))
    False
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datastage.executor.base import Executor
from datastage.executor.chunks import Chunk
from datastage.executor.work import ChunkJob, ChunkResult, Observer, copy_chunk
from datastage.mask.engine import MaskingEngine, MaskStats, TrackerExport, _UniqueTracker
from datastage.secrets import get_logger
from datastage.source.schema import TableInfo
from datastage.targets.base import Shadow

log = get_logger("datastage.refresh")


def injective(outputs: np.ndarray, inputs: np.ndarray) -> bool:
    """Whether the (output, input) identity pairs map each input to one output and back."""
    if not len(outputs):
        return True
    order = np.lexsort((inputs, outputs))  # by output, then input
    outs, ins = outputs[order], inputs[order]
    distinct = np.ones(len(outs), dtype=bool)
    distinct[1:] = (outs[1:] != outs[:-1]) | (ins[1:] != ins[:-1])
    outs, ins = outs[distinct], ins[distinct]  # each pair once
    if bool((outs[1:] == outs[:-1]).any()):
        return False  # one output, two inputs
    ins = np.sort(ins)
    return not bool((ins[1:] == ins[:-1]).any())  # one input, two outputs

class ParallelCopy:
    """Copies chunked tables through ``executor`` for one run; ``engine`` and ``observer`` are the
    refresh's own (they receive what the chunks collected)."""

    def __init__(self, executor: Executor, run_id: str, shadow: Shadow, engine: MaskingEngine,
                 observer: Observer | None) -> None:
        self.executor = executor
        self.run_id = run_id
        self.shadow = shadow
        self.engine = engine
        self.observer = observer
        self.redone: list[str] = []

    def copy_table(self, table: TableInfo, chunks: list[Chunk], progress: Any) -> tuple[int, MaskStats] | None:
        """Copy ``table`` chunk by chunk: (rows, statistics), or None when it must be copied again sequentially."""
        name, stored = self.shadow.chunk_table(table)
        jobs = [ChunkJob(self.run_id, chunk, name, stored) for chunk in chunks]
        results: list[ChunkResult | None] = [None] * len(jobs)
        for position, result in self.executor.run(copy_chunk, jobs):
            results[position] = result
            progress.advance(result.rows)
        done = [r for r in results if r is not None]
        if not self._consistent(done):
            self.redone.append(table.key)
            log.info("chunks gave one masked value to two inputs: copying the table again in one process",
                     extra={"table": table.key, "chunks": len(chunks)})
            return None
        stats = MaskStats()
        for result in done:  # in chunk order: what the refresh holds does not depend on who finished first
            for domain, exported in result.unique.items():
                self.engine.trackers.setdefault(domain, _UniqueTracker()).absorb(exported)
            if self.observer is not None and result.observed is not None:
                self.observer.merge(result.observed)
            stats.add(result.stats)
        self.shadow.chunks_written(table)
        return sum(r.rows for r in done), stats

    def _consistent(self, results: list[ChunkResult]) -> bool:
        """Whether every ``checked`` domain stays injective with the chunks' outputs added."""
        domains = {domain for r in results for domain in r.unique}
        for domain in domains:
            parts: list[TrackerExport] = [r.unique[domain] for r in results if domain in r.unique]
            known = self.engine.trackers.get(domain)
            if known is not None:
                parts.append(known.export())
            outputs = np.concatenate([p.outputs for p in parts])
            inputs = np.concatenate([p.inputs for p in parts])
            if not injective(outputs, inputs):
                return False
        return True
