"""Whole-column helpers between numpy character matrices, Arrow/polars arrays and Python strings.

Masking strategies build their outputs as character matrices (one row per value); these
helpers turn such matrices into object arrays of ``str`` through Arrow (about twice as
fast as numpy's fixed-width unicode), and group, hash and measure object arrays of ``str``
through polars, without a Python call per value. Hashes made here are not keyed: they only
group or identify values inside one process and never reach an output.

Example:
    >>> rows = np.frombuffer(b"ab\\x00cde", dtype=np.uint8).reshape(2, 3)
    >>> ascii_objects(rows, np.array([2, 3])).tolist()
    ['ab', 'cde']
    >>> text_lengths(np.array(["ab", "äöü"], dtype=object)).tolist()
    [2, 3]
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

__all__ = ["ascii_objects", "ascii_series", "code_objects", "polars_text", "series_objects", "text_hashes",
           "text_lengths"]


def ascii_objects(rows: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Object array of str from an (n, width) uint8 matrix of ASCII bytes, row i cut to ``lengths[i]``.

    Without ``lengths`` every row is ``width`` characters long.
    """
    if rows.shape[0] == 0:
        return np.empty(0, dtype=object)
    return np.asarray(_ascii_arrow(rows, lengths).to_numpy(zero_copy_only=False), dtype=object)


def ascii_series(rows: np.ndarray, lengths: np.ndarray | None = None) -> pl.Series:
    """:func:`ascii_objects` as a polars String Series (no Python strings made)."""
    series = pl.from_arrow(_ascii_arrow(rows, lengths))
    assert isinstance(series, pl.Series)
    return series


def _ascii_arrow(rows: np.ndarray, lengths: np.ndarray | None) -> pa.LargeStringArray:
    n, width = rows.shape
    if lengths is None:
        data = np.ascontiguousarray(rows)
        offsets = np.arange(0, n * width + 1, width, dtype=np.int64)
    else:
        data = rows[np.arange(width)[None, :] < lengths[:, None]]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def series_objects(series: pl.Series) -> np.ndarray:
    """A polars String Series as an object array of str."""
    return np.asarray(series.to_numpy(), dtype=object)


def code_objects(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Object array of str from an (n, width) uint32 matrix of code points, row i cut to ``lengths[i]``.

    >>> code_objects(np.array([[104, 105, 0], [233, 0, 0]], dtype=np.uint32), np.array([2, 1])).tolist()
    ['hi', 'é']
    """
    n, width = codes.shape
    if n == 0:
        return np.empty(0, dtype=object)
    if width and int(codes.max()) < 128:
        return ascii_objects(codes.astype(np.uint8), lengths)
    out = np.ascontiguousarray(codes).view(f"U{max(width, 1)}").ravel().astype(object)
    # Fixed-width strings lose trailing NUL characters: put them back from the lengths.
    short = np.flatnonzero(np.fromiter(map(len, out), dtype=np.int64, count=n) != lengths)
    for i in short.tolist():
        out[i] = "".join(map(chr, codes[i, :lengths[i]].tolist()))
    return out


def polars_text(values: np.ndarray) -> pl.Series | None:
    """``values`` (an object array of str) as a polars String Series, None when they do not convert
    (a lone surrogate has no UTF-8, another type is not text)."""
    try:
        return pl.Series(values=values, dtype=pl.String, strict=True)
    except Exception:  # noqa: BLE001 - polars raises several types here; the caller falls back
        return None


def text_hashes(values: np.ndarray, series: pl.Series | None = None) -> np.ndarray | None:
    """Unkeyed 64-bit hashes of an object array of str (polars' hash), None when it does not convert.

    For grouping and in-process identity only: equal strings hash equal, and the hashes
    never leave the process.
    """
    series = polars_text(values) if series is None else series
    if series is None:
        return None
    return series.hash(seed=0x5EED).to_numpy()


def text_lengths(values: np.ndarray) -> np.ndarray:
    """``len`` of each str of an object array (code points), as int64."""
    series = polars_text(values)
    if series is None:
        return np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    return series.str.len_chars().to_numpy().astype(np.int64, copy=False)
