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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from datastage.errors import ConfigError

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _LineMap(dict[Any, Any]):
    """A mapping that remembers the line of each key and of itself."""

    key_lines: dict[Any, int]
    line: int


class _LineList(list[Any]):
    """A sequence that remembers the line of each item and of itself."""

    item_lines: list[int]
    line: int


class _Loader(yaml.SafeLoader):
    """SafeLoader that records line numbers and rejects duplicate keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineMap:
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


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    result = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    result.line = node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


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


def load_yaml_text(
    text: str, file: str, error_class: type[ConfigError] = ConfigError
) -> Node:
    """Parse YAML text into a root :class:`Node`; syntax errors become ``error_class``."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
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


def load_yaml(path: Path, error_class: type[ConfigError] = ConfigError) -> Node:
    """Read and parse a YAML file; a missing or unreadable file is a one-line error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error_class("file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error_class(f"cannot read file: {exc.__class__.__name__}", file=str(path)) from None
    return load_yaml_text(text, str(path), error_class)


def interpolate(node: Node, environ: dict[str, str] | None = None) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in a string node from the environment.

    A variable that is unset (and has no default) is an error naming it and the key.
    """
    env = os.environ if environ is None else environ
    text = node.text()

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise node.error(f"environment variable ${{{name}}} is not set")

    return _ENV_PATTERN.sub(replace, text)


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
