"""How text reaches the consoles: every value printed as written, no table cut short.

The consoles (:mod:`datastage.present.streams`) interpret no markup and no emoji codes, so a
string printed as it is (a table name, a rule's regex, a report path) shows literally. Style
comes only from a template written in this package, whose fields :func:`styled` escapes,
and tables go through :func:`print_table`: a rich table on a terminal (long values fold,
never end in an ellipsis), full rows of plain aligned text when stdout is a pipe or a file,
so ``grep`` sees every value whole.

Example:
    >>> styled("[bold]{}[/] {:>3}", "(?<=this is )[A-Z][a-z]+", 7).plain
    '(?<=this is )[A-Z][a-z]+   7'
    >>> doc_text("Keeps ``first.last`` apart.").plain
    'Keeps first.last apart.'
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from datastage.present import streams

CODE_STYLE = "cyan"
_CODE = re.compile(r"``(.+?)``", re.DOTALL)  # RST inline literals, as the strategies' docstrings write them


class _Escaping(string.Formatter):
    """``str.format`` that escapes each field after formatting it (so widths and ``,`` still apply)."""

    def format_field(self, value: Any, format_spec: str) -> str:
        return escape(super().format_field(value, format_spec))


_ESCAPING = _Escaping()


def styled(template: str, *args: Any, **kwargs: Any) -> Text:
    """``template`` (rich markup written in this package) with its ``{}`` fields filled in literally."""
    return Text.from_markup(_ESCAPING.vformat(template, args, kwargs), emoji=False)


def say(template: str, *args: Any, **kwargs: Any) -> None:
    """Print :func:`styled` ``template`` to stdout, one line, never wrapped or cropped."""
    streams.out.print(styled(template, *args, **kwargs), crop=False, overflow="ignore")


def doc_text(doc: str) -> Text:
    """A docstring for the terminal: ````code```` in :data:`CODE_STYLE`, without its backticks."""
    text = Text()
    at = 0
    for match in _CODE.finditer(doc):
        text.append(doc[at:match.start()])
        text.append(match.group(1), style=CODE_STYLE)
        at = match.end()
    text.append(doc[at:])
    return text


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
                console: Console | None = None) -> None:
    """Print a table whole: on a terminal a rich table whose long values fold; otherwise a title
    line, a header and one line per row (a cell's lines joined by ``, ``), columns aligned."""
    console = console or streams.out
    cells = [[_cell(value) for value in row] for row in rows]
    if console.is_terminal:
        table = Table(title=Text(title) if title else None)
        for name in columns:
            table.add_column(Text(name), overflow="fold")
        for row in cells:
            table.add_row(*(Text(value) for value in row))
        console.print(table)
        return
    lines = [list(columns)] + [[value.replace("\n", ", ") for value in row] for row in cells]
    widths = [max(cell_len(line[i]) for line in lines) for i in range(len(columns))]
    if title:
        console.print(Text(title), crop=False, overflow="ignore")
    for line in lines:
        padded = "  ".join(value + " " * (widths[i] - cell_len(value)) for i, value in enumerate(line))
        console.print(Text(padded.rstrip()), crop=False, overflow="ignore")
