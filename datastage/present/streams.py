"""Where a command's output goes: the consoles, ``--json`` objects and redacting streams.

While a command runs, stdout and stderr are :class:`RedactingStream` objects
(:func:`redacted_output`), so no error line, ``--json`` object, table or progress line
shows a known secret (:mod:`datastage.secrets`).

Example:
    >>> import io
    >>> sink = io.StringIO()
    >>> stream = RedactingStream(sink)
    >>> stream.write("half a line")
    11
    >>> sink.getvalue()
    ''
    >>> stream.flush()
    >>> sink.getvalue()
    'half a line'
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import click
from rich.console import Console

from datastage.secrets import redact, redacted_json

# No markup, no emoji codes, no highlighting: a string printed as it is shows literally (a rule's
# regex, a table name); style comes only from templates (:func:`datastage.present.text.styled`).
out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def emit_json(data: Any) -> None:
    """Print ``data`` as one indented JSON object, every string redacted."""
    click.echo(redacted_json(data, indent=2))


class RedactingStream(io.TextIOBase):
    """A text stream that redacts what passes through it, a line at a time (and what is pending
    at each ``flush``), before it reaches ``stream``."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        if "\n" in self.pending:
            lines, _, self.pending = self.pending.rpartition("\n")
            self.stream.write(redact(lines + "\n"))
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.stream.write(redact(self.pending))
            self.pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    def fileno(self) -> int:
        return int(self.stream.fileno())

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.stream, "encoding", None) or "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.stream, "errors", None)


@contextmanager
def redacted_output() -> Iterator[None]:
    """stdout and stderr through :class:`RedactingStream` while the block runs."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(saved[0]), RedactingStream(saved[1])
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = saved
