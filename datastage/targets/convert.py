"""Driver values to values the target's driver writes faithfully, column by column.

Rows arrive as the source driver returned them (``Decimal``, aware ``datetime``, ``dict`` and
``list`` for JSON, ``list`` for arrays, ``UUID``, ``bytes``, ``timedelta``, ranges ...). Each
target needs a few of them converted, and only those columns pay for it:

- PostgreSQL: JSON values are serialised (a JSON string ``"abc"`` must not be written as the
  bare text ``abc``); everything else is written by psycopg's own dumpers.
- MariaDB/MySQL: JSON and arrays as JSON text, aware datetimes as UTC, ``UUID``/ranges/
  intervals as text (bytes of other types, e.g. BIT, as they are).
- SQLite: anything without a native SQLite form as text.

Example (the JSON string ``"abc"`` stays a JSON string):
    >>> frame = pd.DataFrame({"id": [1, 2], "doc": [{"a": 1}, "abc"]})
    >>> convert_rows(frame, ["id", "doc"], {"doc": to_json_text})
    [(1, '{"a": 1}'), (2, '"abc"')]
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from datastage.source.schema import TableInfo
from datastage.source.values import column_values

Converter = Callable[[Any], Any]
ORIGIN_ATTR = "datastage_origin"  # DataFrame.attrs key: the dialect whose driver produced the values


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value) if value == value.to_integral_value() or abs(value) < 1e15 else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def to_json_text(value: Any) -> Any:
    """Any JSON value (already parsed by the driver) as JSON text."""
    if value is None:
        return None
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def to_json_text_unless_text(value: Any) -> Any:
    """JSON text for parsed values; text (already JSON, e.g. from MariaDB or SQLite) as it is."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def to_text(value: Any) -> Any:
    """Text for values the target has no type for (ranges, intervals, tsvector, geometry ...)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list):
        return to_json_text(value)
    return str(value)


def to_text_or_bytes(value: Any) -> Any:
    """:func:`to_text`, but bytes stay bytes (MariaDB BIT and GEOMETRY values, written as binary strings)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return to_text(value)


def to_utc_naive(value: Any) -> Any:
    """Aware datetimes as naive UTC (MariaDB DATETIME has no time zone); naive ones unchanged."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.time) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def to_time_text(value: Any) -> Any:
    """A time of day as ISO text; MariaDB's driver returns TIME as a ``timedelta`` (``1:02:03``)."""
    if isinstance(value, dt.timedelta):
        seconds, micros = divmod(value // dt.timedelta(microseconds=1), 1_000_000)
        hours, rest = divmod(seconds, 3600)
        text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
        return f"{text}.{micros:06d}" if micros else text
    if isinstance(value, dt.time):
        return value.isoformat()
    return value


def to_uuid_text(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def to_bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview | bytearray) else value


def converters_for(table: TableInfo, columns: Sequence[str], target: str, origin: str,
                   target_categories: dict[str, str] | None = None) -> dict[str, Converter]:
    """The converters ``columns`` of ``table`` need for a ``target`` dialect, values from ``origin``.

    ``target_categories`` names the type family a column has *in the target* where it differs
    from the source's (e.g. an interval stored as text).
    """
    out: dict[str, Converter] = {}
    for name in columns:
        info = table.columns.get(name)
        category = info.category if info is not None else "text"
        stored = (target_categories or {}).get(name, category)
        converter = _converter(category, stored, target, origin)
        if converter is not None:
            out[name] = converter
    return out


def _converter(category: str, stored: str, target: str, origin: str) -> Converter | None:
    if target == "postgresql":
        if stored == "json" or (category == "array" and stored == "json"):
            return to_json_text if origin == "postgresql" else to_json_text_unless_text
        if stored == "text" and category in ("other", "interval", "array", "json"):
            return to_text
        if category == "binary":
            return to_bytes
        return None
    if target == "mysql":
        if category in ("json", "array"):
            return to_json_text if origin == "postgresql" else to_json_text_unless_text
        if category in ("datetime", "time"):
            return to_utc_naive
        if category == "uuid":
            return to_uuid_text
        if category == "binary":
            return to_bytes
        if category == "other":
            return to_text_or_bytes
        if category == "interval":
            return to_text
        return None
    if category in ("json", "array"):
        return to_json_text if origin == "postgresql" else to_json_text_unless_text
    if category in ("other", "interval"):
        return to_text
    if category == "binary":
        return to_bytes
    if category == "time" and origin == "mysql":
        return to_time_text
    return None


def convert_rows(frame: pd.DataFrame, columns: Sequence[str],
                 converters: dict[str, Converter]) -> list[tuple[Any, ...]]:
    """Rows of ``frame`` (``columns`` only) as tuples, each column passed through its converter."""
    data = []
    for name in columns:
        values = column_values(frame[name])
        converter = converters.get(name)
        if converter is not None:
            values = [converter(v) for v in values]
        data.append(values)
    if not data:
        return [() for _ in range(len(frame))]
    return list(zip(*data, strict=True))
