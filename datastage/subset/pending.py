"""Per-table queues of rows waiting for the subset closure to follow their foreign keys.

Queued rows are held compactly (NULL-free integer columns as ``int64``) and handed back
merged, a bounded number of rows at a time, with the driver's Python values again.

Example:
    >>> queue: dict[str, list[pd.DataFrame]] = {}
    >>> queue_rows(queue, "t", pd.DataFrame({"id": [1, 2]}, dtype=object))
    >>> queue_rows(queue, "t", pd.DataFrame({"id": [3]}, dtype=object))
    >>> take(queue, "t", 2)["id"].tolist(), take(queue, "t", 2)["id"].tolist(), take(queue, "t", 2)
    ([1, 2], [3], None)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

Queue = dict[str, list[pd.DataFrame]]


def queue_rows(queue: Queue, key: str, rows: pd.DataFrame) -> None:
    """Queue ``rows`` (if any) for table ``key``."""
    if not rows.empty:
        queue.setdefault(key, []).append(compact(rows))


def take(queue: Queue, key: str, limit: int) -> pd.DataFrame | None:
    """Up to ``limit`` queued rows of ``key`` (at least one batch), merged into one frame; None if none."""
    frames = queue.get(key)
    if not frames:
        return None
    taken, rows = 0, 0
    while taken < len(frames) and (rows == 0 or rows + len(frames[taken]) <= limit):
        rows += len(frames[taken])
        taken += 1
    if taken == len(frames):
        del queue[key]
    else:
        queue[key] = frames[taken:]
    return merged(frames[:taken])


def compact(rows: pd.DataFrame) -> pd.DataFrame:
    """Queued rows with NULL-free integer columns as int64 (8 bytes a value instead of a Python int)."""
    columns = {}
    for name in rows.columns:
        column = rows[name]
        if column.dtype == object and pd.api.types.infer_dtype(column, skipna=False) == "integer":
            try:
                columns[name] = column.astype(np.int64)
                continue
            except OverflowError:
                pass
        columns[name] = column
    return pd.DataFrame(columns, copy=False)


def merged(frames: list[pd.DataFrame]) -> pd.DataFrame | None:
    """One frame of queued rows, with the driver's Python values again (int64 back to ``int``)."""
    if not frames:
        return None
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return frame.astype({c: object for c in frame.columns if frame[c].dtype != object})
