"""YAML loading that remembers where every key came from.

Config and rules files are read through :func:`load_yaml`, which returns a :class:`Node`:
a value plus its file, line and key path. Walking the tree through nodes means every
error can say ``rules/pii.yaml:14: tables.customer.email: unknown strategy 'emial'``.

Example:
    >>> node = load_yaml_text("a:\\n  b: 1\\n", "x.yaml")
    >>> node["a"]["b"].value, node["a"]["b"].line, node["a"]["b"].path
    (1, 2, 'a.b')
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from datastage.errors import ConfigError
from datastage.limits import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_ITEMS,
    MAX_NODES,
    MAX_SCALAR_CHARS,
    read_bounded,
    too_large,
)


class _LineMap(dict[Any, Any]):
    """A mapping that remembers the line of each key and of itself."""

    key_lines: dict[Any, int]
    line: int


class _LineList(list[Any]):
    """A sequence that remembers the line of each item and of itself."""

    item_lines: list[int]
    line: int


class _LimitExceeded(yaml.YAMLError):
    """A YAML document went past one of the bounds of :mod:`datastage.limits`."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.line = mark.line + 1 if mark is not None else None


class _BoundedComposer(Composer):
    """PyYAML's composer, bounded while it composes, before any value is built.

    Nesting depth, items per list or mapping, characters per scalar, and the number of
    values with every alias counted as the whole value it stands for (an alias bomb such as
    ``&a [*a, *a, ...]`` nested ten times is refused at the first alias past the budget).
    An alias used inside its own anchor (a recursive structure) is refused too.
    """

    def __init__(self) -> None:
        super().__init__()
        self._values = 0        # values composed so far, aliases expanded
        self._depth = 0         # collections enclosing the node being composed
        self._deepest = 0       # deepest collection level reached inside the current node
        self._measured: dict[str, tuple[int, int]] = {}  # anchor -> (values, collection height)

    def _count(self, values: int, event: yaml.Event) -> None:
        self._values += values
        if self._values > MAX_NODES:
            raise _LimitExceeded(f"more than {MAX_NODES:,} values (aliases expanded) in one file", event.start_mark)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]
        if parent is not None and len(parent.value) >= MAX_ITEMS:
            what = "list" if isinstance(parent, yaml.SequenceNode) else "mapping"
            raise _LimitExceeded(f"more than {MAX_ITEMS:,} items in one {what}", event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            measured = self._measured.get(event.anchor or "")
            if measured is None and event.anchor in self.anchors:
                raise _LimitExceeded(f"alias *{event.anchor} is used inside its own anchor "
                                     "(a recursive structure)", event.start_mark)
            if measured is not None:
                values, height = measured
                if self._depth + height > MAX_DEPTH:
                    raise _LimitExceeded(f"nested deeper than {MAX_DEPTH} levels (through alias *{event.anchor})",
                                         event.start_mark)
                self._deepest = max(self._deepest, self._depth + height)
                self._count(values, event)
            return Composer.compose_node(self, parent, index)
        if isinstance(event, yaml.ScalarEvent):
            if len(event.value) > MAX_SCALAR_CHARS:
                raise _LimitExceeded(f"a value longer than {MAX_SCALAR_CHARS:,} characters", event.start_mark)
            self._count(1, event)
            node = Composer.compose_node(self, parent, index)
            if event.anchor is not None:
                self._measured[event.anchor] = (1, 0)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _LimitExceeded(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        outer_deepest, self._deepest = self._deepest, self._depth
        before = self._values
        self._count(1, event)
        node = Composer.compose_node(self, parent, index)
        if event.anchor is not None:
            self._measured[event.anchor] = (self._values - before, self._deepest - self._depth + 1)
        self._depth -= 1
        self._deepest = max(outer_deepest, self._deepest)
        return node


class _CheckedConstructor(SafeConstructor):
    """SafeConstructor whose malformed typed values (``2024-13-01``, an int of 5,000 digits,
    ``!!float x``) are YAML errors at their line, not Python exceptions."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, OverflowError):
            kind = str(node.tag).rsplit(":", 1)[-1]
            problem = ("a list or mapping cannot be a key" if isinstance(node, yaml.MappingNode)
                       else f"cannot read this value as {kind} (quote it to keep it as text)")
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


class _PyLoader(_BoundedComposer, Reader, Scanner, Parser, _CheckedConstructor, Resolver):
    """The bounded composer on PyYAML's pure-Python parser."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _CheckedConstructor.__init__(self)
        Resolver.__init__(self)


_Loader: type[_PyLoader] = _PyLoader
if yaml.__with_libyaml__:  # libyaml comes with every PyYAML wheel
    from yaml._yaml import CParser

    class _CLoader(_BoundedComposer, CParser, _CheckedConstructor, Resolver):
        """The bounded composer on libyaml's parser: the same events, two to three times faster."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            _CheckedConstructor.__init__(self)
            Resolver.__init__(self)

    _Loader = _CLoader  # type: ignore[assignment]


def _construct_mapping(loader: SafeConstructor, node: yaml.MappingNode) -> _LineMap:
    loader.flatten_mapping(node)
    result = _LineMap()
    result.key_lines = {}
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: SafeConstructor, node: yaml.SequenceNode) -> _LineList:
    result = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    result.line = node.start_mark.line + 1
    return result


for _loader in (_PyLoader, _Loader):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[type-var]
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)  # type: ignore[type-var]


class Node:
    """A YAML value with its origin; indexing returns child nodes.

    ``node.error("...")`` builds a :class:`ConfigError` (or ``error_class``) that names
    the file, line and key path of this value.
    """

    def __init__(
        self,
        value: Any,
        file: str,
        path: str = "",
        line: int | None = None,
        error_class: type[ConfigError] = ConfigError,
    ) -> None:
        self.value = value
        self.file = file
        self.path = path
        self.line = line if line is not None else getattr(value, "line", None)
        self.error_class = error_class

    def error(self, message: str) -> ConfigError:
        """An error located at this node."""
        return self.error_class(message, file=self.file, line=self.line, key=self.path or None)

    def _child_path(self, key: object) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else str(key)

    def __getitem__(self, key: object) -> Node:
        if isinstance(self.value, list) and isinstance(key, int):
            lines = getattr(self.value, "item_lines", None)
            line = lines[key] if lines else self.line
            return Node(self.value[key], self.file, self._child_path(key), line, self.error_class)
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {describe(self.value)}")
        if key not in self.value:
            raise self.error(f"missing key '{key}'")
        line = getattr(self.value, "key_lines", {}).get(key, self.line)
        return Node(self.value[key], self.file, self._child_path(key), line, self.error_class)

    def get(self, key: str) -> Node | None:
        """Child node, or None when the key is absent or null."""
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {describe(self.value)}")
        if self.value.get(key) is None:
            return None
        return self[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(self.value, dict) and key in self.value

    def items(self) -> Iterator[tuple[str, Node]]:
        """(key, child) pairs of a mapping, in file order."""
        self.expect_map()
        for key in self.value:
            yield str(key), self[key]

    def __iter__(self) -> Iterator[Node]:
        self.expect_list()
        for index in range(len(self.value)):
            yield self[index]

    def expect_map(self) -> dict[Any, Any]:
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {describe(self.value)}")
        return self.value

    def expect_list(self) -> list[Any]:
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {describe(self.value)}")
        return self.value

    def as_list(self) -> list[Node]:
        """A list, or a single value taken as a one-item list."""
        if isinstance(self.value, list):
            return list(self)
        return [self]

    def text(self) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            raise self.error(f"expected a non-empty string, got {describe(self.value)}")
        return self.value

    def flag(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false, got {describe(self.value)}")
        return self.value

    def integer(self, minimum: int | None = None) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.error(f"expected an integer, got {describe(self.value)}")
        if minimum is not None and self.value < minimum:
            raise self.error(f"must be at least {minimum}, got {self.value}")
        return self.value

    def number(self, low: float | None = None, high: float | None = None) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise self.error(f"expected a number, got {describe(self.value)}")
        value = float(self.value)
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.error(f"must be between {low:g} and {high:g}, got {self.value}")
        return value

    def check_keys(self, allowed: Iterable[str], what: str = "key") -> None:
        """Reject unknown keys with a did-you-mean hint."""
        allowed = set(allowed)
        for key in self.expect_map():
            if key not in allowed:
                child = self[key]
                raise child.error(f"unknown {what} '{key}'{did_you_mean(str(key), allowed)}")


def describe(value: Any) -> str:
    """Short description of a YAML value for error messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"'{value}'" if len(value) < 40 else "a long string"
    return f"{type(value).__name__} {value!r}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` when a close match exists, else ``""``.

    >>> did_you_mean("emial", ["email", "phone"])
    " (did you mean 'email'?)"
    """
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def _compose(loader_class: type[_PyLoader], text: str) -> Any:
    loader = loader_class(text)  # built from SafeConstructor: plain data only
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


#: A text libyaml rejects is read again by PyYAML's parser up to this size (see :func:`_parse`).
_REREAD_CHARS = 512 * 1024


def _parse(text: str) -> Any:
    """The data of one YAML document, parsed by libyaml when it is there.

    A text libyaml rejects (a syntax error, text it cannot encode) is read again by PyYAML's
    own parser, so what is accepted and the syntax messages are PyYAML's, as they always
    were. Only a text larger than any real config or policy keeps libyaml's message, so a
    hostile file costs one fast parse, not two. Bounds and construction errors come from the
    same Python code either way and are never retried.
    """
    if _Loader is _PyLoader:
        return _compose(_PyLoader, text)
    try:
        return _compose(_Loader, text)
    except (yaml.reader.ReaderError, yaml.scanner.ScannerError, yaml.parser.ParserError, UnicodeError):
        if len(text) > _REREAD_CHARS:
            raise
        return _compose(_PyLoader, text)


def load_yaml_text(
    text: str, file: str, error_class: type[ConfigError] = ConfigError
) -> Node:
    """Parse YAML text into a root :class:`Node`; syntax errors and exceeded bounds become ``error_class``.

    The text may hold at most :data:`~datastage.limits.MAX_FILE_BYTES` (UTF-8); the bounds on
    depth, items, values and scalar length are checked while the document is composed.
    """
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", errors="surrogatepass")) > MAX_FILE_BYTES:
        raise error_class(too_large(MAX_FILE_BYTES), file=file)
    try:
        data = _parse(text)
    except UnicodeError:  # a lone surrogate in a text too large to read again
        raise error_class("invalid YAML: the text holds a character that is not valid Unicode", file=file) from None
    except _LimitExceeded as exc:
        raise error_class(exc.message, file=file, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise error_class(f"invalid YAML: {problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise error_class(f"invalid YAML: {exc}", file=file) from None
    if data is None:
        raise error_class("file is empty", file=file)
    if not isinstance(data, dict):
        raise error_class(f"expected a mapping at the top level, got {describe(data)}", file=file, line=1)
    return Node(data, file, "", 1, error_class)


def read_yaml_bytes(path: Path, error_class: type[ConfigError] = ConfigError, what: str = "file") -> bytes:
    """The bytes of a YAML file, refused before parsing when larger than the file limit.

    A missing or unreadable file is a one-line ``error_class`` (``what`` names it in the message).
    """
    try:
        return read_bounded(path, MAX_FILE_BYTES, error_class)
    except FileNotFoundError:
        raise error_class(f"{what} not found", file=str(path)) from None
    except IsADirectoryError:
        raise error_class(f"cannot read {what}: it is a directory", file=str(path)) from None
    except OSError as exc:
        raise error_class(f"cannot read {what}: {exc.strerror or exc.__class__.__name__}", file=str(path)) from None


def load_yaml(path: Path, error_class: type[ConfigError] = ConfigError) -> Node:
    """Read and parse a YAML file; a missing, unreadable or too large file is a one-line error."""
    raw = read_yaml_bytes(path, error_class)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error_class(f"cannot read file: {exc.__class__.__name__}", file=str(path)) from None
    return load_yaml_text(text, str(path), error_class)


def interpolate(node: Node, environ: Mapping[str, str] | None = None) -> str:
    """Expand environment variables in a string node, as POSIX shells and Compose do.

    * ``${VAR}``: the value of VAR; unset is an error naming the variable, file, line and key;
    * ``${VAR:-default}``: the default when VAR is unset *or empty*;
    * ``${VAR-default}``: the default only when VAR is unset (an empty value stays empty);
    * ``$$``: one literal ``$`` (``pa$$word`` is ``pa$word``);
    * a ``$`` followed by anything else stays as it is.

    A default may itself hold ``$$`` and references (``${A:-${B}}``); it is expanded only when
    used. Any other ``${`` (``${1X}``, ``${VAR:?x}``, a missing ``}``) is an error. Values from
    the environment are taken as they are, never expanded again.
    """
    env = os.environ if environ is None else environ
    text = node.text()
    expanded, _ = _expand(text, 0, env, node, depth=0, evaluate=True)
    return expanded


_REFERENCE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE_HINT = "write ${NAME}, ${NAME:-default} or ${NAME-default}, and $$ for a literal $"


def _expand(text: str, pos: int, env: Mapping[str, str], node: Node, *, depth: int,
            evaluate: bool) -> tuple[str, int]:
    """Expand ``text`` from ``pos`` to its end (``depth`` 0) or to the ``}`` closing a default.

    Returns the expansion and the index after what was read. With ``evaluate`` false the
    text is only parsed (an unused default), so an unset variable in it is no error.
    """
    out: list[str] = []
    i, end = pos, len(text)
    while i < end:
        char = text[i]
        if depth and char == "}":
            return "".join(out), i + 1
        if char != "$" or i + 1 >= end or text[i + 1] not in "${":
            out.append(char)
            i += 1
            continue
        if text[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        match = _REFERENCE_NAME.match(text, i + 2)
        if match is None:
            raise node.error(f"invalid variable reference at character {i + 1}: {_REFERENCE_HINT}")
        name, i = match.group(), match.end()
        value = env.get(name)
        if text.startswith("}", i):
            if value is None and evaluate:
                raise node.error(f"environment variable ${{{name}}} is not set")
            out.append(value or "")
            i += 1
            continue
        empty_too = text.startswith(":-", i)
        if not empty_too and not text.startswith("-", i):
            raise node.error(f"invalid variable reference ${{{name}...}} at character {match.start() - 1}: "
                             f"{_REFERENCE_HINT}")
        if depth >= MAX_DEPTH:
            raise node.error(f"variable references nested deeper than {MAX_DEPTH} levels")
        use_default = value is None or (empty_too and value == "")
        default, i = _expand(text, i + (2 if empty_too else 1), env, node, depth=depth + 1,
                             evaluate=evaluate and use_default)
        out.append(default if use_default else value or "")
    if depth:
        raise node.error(f"a variable reference is missing its closing '}}': {_REFERENCE_HINT}")
    return "".join(out), i


def walk_strings(node: Node, visit: Callable[[Node], None]) -> None:
    """Call ``visit`` on every string leaf under ``node``."""
    if isinstance(node.value, dict):
        for _, child in node.items():
            walk_strings(child, visit)
    elif isinstance(node.value, list):
        for child in node:
            walk_strings(child, visit)
    elif isinstance(node.value, str):
        visit(node)
