"""Reading MariaDB/MySQL text and integer columns as Arrow tables, with connectorx instead of PyMySQL.

PyMySQL decodes every value in Python (about 0.7 µs each); connectorx reads the same rows
into Arrow arrays in Rust, five to six times faster. It connects on its own, so it is used only
where it reaches the same server as the SQLAlchemy connection given, the same way: a TCP host
and port, a user and password, and no driver options in the URL (TLS settings, a socket, a
charset, ...); anything else reads through the connection itself. It reads the connection's
current database, and only committed rows (what the loaded copy holds once it is verified).

connectorx's pool retries a failed connection for half a minute and reports through Rust's log
(which could name the server); its log is turned off (``RUST_LOG=off`` in this process), each
process asks once per server whether it connects within :data:`PROBE_SECONDS` (:func:`usable`),
and its errors are never shown: a server error during a read is a Rust panic whose message goes
to a closed standard error; a read that fails before its first batch is read again through
PyMySQL, one that fails later is a :class:`ArrowReadError` that says only which step failed.

Example (``None`` where connectorx cannot reach the server as the connection does):
    >>> import sqlalchemy as sa
    >>> with sa.create_engine("sqlite://").connect() as conn:
    ...     print(arrow_url(conn))
    None
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pandas as pd
from sqlalchemy.engine import Connection

from datastage.source.values import arrow_to_frame

# Rust's log would write connection failures (server and user names) to stderr: off, before any import of
# connectorx and before any thread starts.
os.environ["RUST_LOG"] = "off"


class ArrowReadError(Exception):
    """connectorx failed after some batches were read (its message, which may name the server, is dropped)."""


def arrow_url(conn: Connection) -> str | None:
    """The connectorx URL of ``conn``'s server, credentials and current database, or None where connectorx
    would not connect as the connection does (not MySQL/MariaDB, a socket, driver options in the URL)."""
    url = conn.engine.url
    # PyMySQL only: other drivers read option files, take localhost for a socket or give SET values as sets.
    if conn.dialect.name not in ("mysql", "mariadb") or conn.dialect.driver != "pymysql":
        return None
    # No user (PyMySQL would log in as the OS user), driver options, or a socket path: the driver reads.
    if url.query or not url.username or not url.host or "/" in url.host:
        return None
    # With no current database the connection's statements name their tables in full; so do connectorx's.
    database = conn.exec_driver_sql("SELECT DATABASE()").scalar() or "information_schema"
    user = quote(url.username, safe="")
    password = f":{quote(url.password, safe='')}" if url.password else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    # prefer_socket=false: on a loopback host the client would switch to the server's socket path, which
    # logs in as another account (user@localhost), and behind a forwarded port may be another server.
    return f"mysql://{user}{password}@{host}:{url.port or 3306}/{quote(str(database), safe='')}?prefer_socket=false"


PROBE_SECONDS = 3.0  # how long the first connection of a process to a server may take before PyMySQL reads instead
_usable: dict[str, bool] = {}  # per URL digest: whether connectorx connected (asked once per process)


def _connectorx() -> Any:
    import connectorx

    return connectorx


_ENDING = (KeyboardInterrupt, SystemExit, GeneratorExit)  # what a failed read must not swallow


@contextmanager
def _stderr_closed() -> Iterator[None]:
    """File descriptor 2 on the null device for a while: a Rust panic (connectorx reports a server error
    during a stream that way) prints its message, which may name the server, there. connectorx holds
    the interpreter lock while it reads, so no Python thread writes meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def usable(url: str) -> bool:
    """Whether connectorx connects to ``url`` (within :data:`PROBE_SECONDS`; its pool would retry a failing
    connection for 30 s). Asked once per process and server; the answer is kept under a digest of the URL."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
    if digest not in _usable:
        answers: list[bool] = []

        def probe() -> None:
            try:
                _connectorx().read_sql(url, "SELECT 1", return_type="arrow")
                answers.append(True)
            except Exception:  # noqa: BLE001 - any failure means: read through the connection instead
                answers.append(False)

        thread = threading.Thread(target=probe, name="datastage-connectorx-probe", daemon=True)
        thread.start()
        thread.join(PROBE_SECONDS)
        _usable[digest] = bool(answers and answers[0])
    return _usable[digest]


def read_tables(url: str, select: str, batch_size: int) -> Iterator[Any] | None:
    """The rows of ``select`` as ``pyarrow.Table`` batches of up to ``batch_size`` rows, or None when
    connectorx cannot start the read (the caller reads another way). Raises :class:`ArrowReadError`."""
    import pyarrow as pa

    if not usable(url):
        return None
    try:
        with _stderr_closed():
            reader = _connectorx().read_sql(url, select, return_type="arrow_stream", batch_size=batch_size)
            first = reader.read_next_batch()
    except StopIteration:
        return iter(())
    except _ENDING:
        raise
    except BaseException:  # noqa: BLE001 - a Rust panic is no Exception; the connection's driver reads instead
        return None

    def batches() -> Iterator[Any]:
        batch = first
        while True:
            if batch.num_rows:
                yield pa.Table.from_batches([batch])
            try:
                with _stderr_closed():
                    batch = reader.read_next_batch()
            except StopIteration:
                return
            except _ENDING:
                raise
            except BaseException:  # noqa: BLE001 - a Rust panic too; its message may name the server
                raise ArrowReadError("the Arrow reader failed") from None

    return batches()


def read_frames(url: str, select: str, columns: list[str], batch_size: int) -> Iterator[pd.DataFrame] | None:
    """:func:`read_tables` as DataFrames of ``object`` columns holding the values PyMySQL would give
    (``str``, ``int``, None), or None when connectorx cannot start the read."""
    tables = read_tables(url, select, batch_size)
    if tables is None:
        return None
    return (arrow_to_frame(table, columns) for table in tables)
