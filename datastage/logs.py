"""Structured logging: one JSON object per line in ``--log-file``, for cron and log shippers.

The file is created 0600 (missing folders 0700), and no line holds a known secret: the
handler and datastage's loggers redact every record (message, arguments, ``extra`` fields)
and the formatter redacts the finished line once more.

Example (one record as :func:`configure_logging` writes it to the file):
    >>> record = logging.makeLogRecord({"name": "datastage", "levelname": "INFO", "msg": "refresh started",
    ...                                 "created": 0, "target": "postgresql://app:s3cret@db/qa"})
    >>> print(JsonLineFormatter().format(record))  # doctest: +NORMALIZE_WHITESPACE
    {"time": "1970-01-01T00:00:00.000Z", "level": "info", "logger": "datastage",
     "event": "refresh started", "target": "postgresql://app:***@db/qa"}
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from datastage.errors import UsageError
from datastage.private import PrivateFileHandler
from datastage.secrets import get_logger, redact, redacting_filter

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_HANDLER_NAME = "datastage-log-file"


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one JSON line with its ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        return redact(json.dumps(data, default=str))


def configure_logging(log_file: Path | None) -> None:
    """Send datastage's log records to ``log_file`` as JSON lines (appending)."""
    logger = get_logger("datastage")
    for handler in list(logger.handlers):
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
            handler.close()
    if log_file is None:
        return
    try:
        handler = PrivateFileHandler(log_file, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot open log file: {exc.strerror}", file=str(log_file)) from None
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(redacting_filter())
    handler.setFormatter(JsonLineFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
