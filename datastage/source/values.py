"""Row batches as DataFrames, and the canonical text form of any database value.

Batches keep the driver's Python values in ``object`` columns, so nothing is lost on the
way from source to target (no ints turned into floats by a NULL, no decimals rounded).
The canonical text of a value is what keyed hashes and samples are computed from, so the
same value gives the same result whichever database it came from.

Example:
    >>> frame = rows_to_frame([(1, "a"), (None, "b")], ["id", "name"])
    >>> list(frame["id"])
    [1, None]
    >>> list(canonical_text(pd.Series([5, "x", None], dtype=object)))
    ['5', 'x', None]
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd


def rows_to_frame(rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> pd.DataFrame:
    """A DataFrame of ``object`` columns holding the values exactly as the driver returned them."""
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    if len(rows[0]) != len(columns):
        raise ValueError(f"rows of {len(rows[0])} values for {len(columns)} columns")
    data = {}
    # One 1-D object Series per column: a 2-D object array would let pandas turn
    # datetimes into Timestamps and strings into its own string type. Each column is
    # gathered with itemgetter (zip(*rows) costs several times as much on long batches).
    for position, name in enumerate(columns):
        array = np.fromiter(map(itemgetter(position), rows), dtype=object, count=len(rows))
        data[name] = pd.Series(array, dtype=object, copy=False)
    return pd.DataFrame(data, copy=False)


def arrow_to_frame(table: Any, columns: Sequence[str]) -> pd.DataFrame:
    """A ``pyarrow.Table`` of text and integer columns as the DataFrame :func:`rows_to_frame` would make of
    the driver's rows: ``object`` columns of ``str``, ``int`` and None (named ``columns``, in order).

    >>> import pyarrow as pa
    >>> arrow_to_frame(pa.table({"id": [1, None], "name": ["a", None]}), ["id", "name"]).to_dict("list")
    {'id': [1, None], 'name': ['a', None]}
    """
    import pyarrow as pa

    data = {}
    for name, column in zip(columns, table.columns, strict=True):
        array = np.empty(table.num_rows, dtype=object)
        text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        # Text through numpy (no list in between); integers as Python ints (numpy would make NULLs NaN).
        array[:] = column.to_numpy(zero_copy_only=False) if text else column.to_pylist()
        data[name] = pd.Series(array, dtype=object, copy=False)
    return pd.DataFrame(data, copy=False)


def column_values(series: pd.Series) -> list[Any]:
    """Python values of a column with every missing marker (NaN, NaT, pd.NA) as ``None``."""
    if series.dtype == object:
        values = native_objects(series).tolist()
        return [None if _is_missing(v) else v for v in values] if series.hasnans else values
    return native_objects(series).tolist()


def native_objects(series: pd.Series) -> np.ndarray:
    """A column as an object array of driver-native Python values, converted per column.

    pandas infers typed columns from Python values (``Series.map`` turns datetimes into
    ``datetime64``); their elements are ``pd.Timestamp``, ``pd.Timedelta`` and numpy scalars,
    which database drivers (sqlite3) cannot bind. Typed columns convert as a whole, missing
    markers become ``None``; ``object`` columns only where they hold such values.

    >>> native_objects(pd.Series(pd.to_datetime(["2024-01-02 03:04:05", None]))).tolist()
    [datetime.datetime(2024, 1, 2, 3, 4, 5), None]
    """
    dtype = series.dtype
    if pd.api.types.is_object_dtype(dtype):
        values = series.to_numpy(dtype=object)
        kinds = set(map(type, values))
        if not kinds & _FOREIGN and not any(issubclass(k, np.generic) for k in kinds):
            return values
        return _native_mixed(values)
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        out = np.asarray(series.array.to_pydatetime(), dtype=object)
    elif pd.api.types.is_timedelta64_dtype(dtype):
        out = np.asarray(series.array.to_pytimedelta(), dtype=object)
    else:
        out = np.empty(len(series), dtype=object)
        out[:] = series.astype(object).tolist()  # numpy and pandas scalars as Python ones
    missing = series.isna().to_numpy()
    if missing.any():
        out[missing] = None
    return out


_FOREIGN = {pd.Timestamp, pd.Timedelta, type(pd.NaT), type(pd.NA)}


def _native_mixed(values: np.ndarray) -> np.ndarray:
    """:func:`native_objects` of an object array holding pandas or numpy scalars among Python values
    (rare: the typed columns above are the common case, so this goes value by value)."""
    out = values.copy()
    kinds = list(map(type, values))  # compared by identity: numpy would broadcast some of these classes
    absent = {type(pd.NaT), type(pd.NA)}
    out[np.fromiter((kind in absent for kind in kinds), dtype=bool, count=len(kinds))] = None
    for kind in set(kinds) - absent:
        if kind is pd.Timestamp or kind is pd.Timedelta or issubclass(kind, np.generic):
            rows = np.fromiter((each is kind for each in kinds), dtype=bool, count=len(kinds))
            convert = (lambda v: v.to_pydatetime()) if kind is pd.Timestamp else (
                (lambda v: v.to_pytimedelta()) if kind is pd.Timedelta else (lambda v: v.item()))
            out[rows] = [convert(v) for v in values[rows]]
    return out


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def frame_rows(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> list[tuple[Any, ...]]:
    """Rows of ``frame`` (optionally only ``columns``) as tuples of Python values."""
    cols = list(columns) if columns is not None else list(frame.columns)
    if not cols:
        return [() for _ in range(len(frame))]
    return list(zip(*(column_values(frame[c]) for c in cols), strict=True))


def _canonical_one(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, decimal.Decimal):
        if value.is_nan():
            return None
        normalized = value.normalize()
        return format(normalized, "f") if normalized == normalized.to_integral() else str(normalized)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ")
    return str(value)


def canonical_text(series: pd.Series) -> np.ndarray:
    """Canonical strings of a column (``None`` for NULL), as a numpy object array.

    Integers print in decimal, decimals without trailing zeros, dates in ISO form, bytes
    in hex, JSON with sorted keys: a value reads the same from SQLite, PostgreSQL or MariaDB.
    """
    values = series.to_numpy(dtype=object)
    if len(values) and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values  # plain strings, no NULL (the usual case): nothing to look for
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()
        values[missing] = None
    kind = pd.api.types.infer_dtype(values, skipna=True) if len(values) else ""
    if kind == "string":
        return values
    if kind == "integer" and not missing.any():
        try:  # vectorised decimal text of plain integers (the common key type), by Arrow's cast
            integers = values.astype(np.int64)
        except OverflowError:
            pass
        else:
            import pyarrow as pa

            return pa.array(integers).cast(pa.string()).to_numpy(zero_copy_only=False).astype(object)
    return np.array([_canonical_one(v) for v in values], dtype=object)


def as_int64(values: np.ndarray) -> np.ndarray | None:
    """An object array as int64, or None unless every value is an integer that fits 64 bits.

    >>> as_int64(np.array([3, 2**40], dtype=object)).tolist()
    [3, 1099511627776]
    >>> as_int64(np.array([1, None])), as_int64(np.array([2**70]))
    (None, None)
    """
    if pd.api.types.infer_dtype(values, skipna=False) != "integer":
        return None
    try:
        return values.astype(np.int64)
    except OverflowError:
        return None
