"""The strategy registry: every masking strategy with its parameters, types and guarantees.

A strategy is a function ``(values, ctx) -> values`` over one batch of a column (a
pandas Series of non-NULL values). The registry records what the policy checker needs
before any row moves: accepted parameters, column types, whether the output is
deterministic, whether distinct inputs stay distinct (``unique``: ``"bijective"`` by
construction or ``"checked"`` by collision-checked redraw), and whether the output is
promised to differ from the input.

Example:
    >>> @strategy("upper", types={"text"}, changes=False)
    ... def upper(values, ctx):
    ...     "Upper-case text. Example: ``name: upper``."
    ...     return values.str.upper()
    >>> get_strategy("upper").types
    frozenset({'text'})
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from datastage.errors import RulesError

if TYPE_CHECKING:
    from datastage.mask.engine import StrategyContext

StrategyFunc = Callable[[pd.Series, "StrategyContext"], pd.Series]
Uniqueness = Literal["bijective", "checked"] | None
ENTRY_POINT_GROUP = "datastage.strategies"
ALL_TYPES = frozenset({"text", "integer", "decimal", "float", "date", "datetime", "time", "boolean",
                       "binary", "json", "uuid", "array", "interval", "other"})


@dataclass(frozen=True)
class Param:
    """One parameter of a strategy."""

    name: str
    kind: type | tuple[type, ...] = object
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] = ()
    doc: str = ""

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(map(str, self.choices))}"
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if object in kinds:
            return None
        if isinstance(value, bool) and bool not in kinds:
            return f"expected {self.kind_name}, got {value!r}"
        if float in kinds and isinstance(value, int):
            return None
        if not isinstance(value, kinds):
            return f"expected {self.kind_name}, got {type(value).__name__} {value!r}"
        return None

    @property
    def kind_name(self) -> str:
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        names = {str: "a string", int: "an integer", float: "a number", bool: "true/false",
                 list: "a list", dict: "a mapping"}
        return " or ".join(names.get(k, k.__name__) for k in kinds)


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy and its guarantees."""

    name: str
    func: StrategyFunc
    params: Mapping[str, Param] = field(default_factory=dict)
    types: frozenset[str] = ALL_TYPES
    deterministic: bool = True
    unique: Uniqueness = None
    changes: bool = True
    keyed: bool = True
    row_independent: bool = True
    doc: str = ""
    origin: str = "built-in"
    reads_masked: bool = False
    nested: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    validate: Callable[[Mapping[str, Any], Any, Any], str | None] | None = None

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    def check_params(self, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(parameter, problem) pairs; empty when the parameters are acceptable."""
        problems = []
        for name, value in params.items():
            if name not in self.params:
                from datastage.yamlfile import did_you_mean

                known = ", ".join(self.params) or "none"
                problems.append((name, f"unknown parameter '{name}' for strategy {self.name}"
                                       f"{did_you_mean(name, list(self.params))} (parameters: {known})"))
                continue
            problem = self.params[name].check(value)
            if problem:
                problems.append((name, problem))
        for name, param in self.params.items():
            if param.required and name not in params:
                problems.append((name, f"strategy {self.name} needs parameter '{name}'"))
        return problems

    def with_defaults(self, params: Mapping[str, Any]) -> dict[str, Any]:
        merged = {name: p.default for name, p in self.params.items() if p.default is not None}
        merged.update(params)
        return merged


REGISTRY: dict[str, StrategySpec] = {}
_PREFIX_FACTORIES: dict[str, Callable[[str], StrategySpec | None]] = {}
_PREFIX_NAMES: dict[str, Callable[[], Iterable[str]]] = {}
_BUILT: dict[str, StrategySpec | None] = {}  # prefix strategies built so far (not listed as their own)
_entry_points_loaded = False


def strategy(
    name: str,
    *,
    params: list[Param] | None = None,
    types: set[str] | frozenset[str] | None = None,
    deterministic: bool = True,
    unique: Uniqueness = None,
    changes: bool = True,
    keyed: bool = True,
    row_independent: bool = True,
    reads_masked: bool = False,
    nested: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    validate: Callable[[Mapping[str, Any], Any, Any], str | None] | None = None,
) -> Callable[[StrategyFunc], StrategyFunc]:
    """Register a strategy under ``name``; the function's docstring is its documentation.

    ``row_independent=False``: the strategy reads other columns of the row (``ctx.rows``).
    ``reads_masked``: it reads other columns' *masked* values (``ctx.masked``), so it runs last.
    ``nested``: returns the nested strategies in its parameters (name -> strategy name or
    mapping), which the policy checks like any rule and the strategy applies with ``ctx.apply``.
    ``validate(params, table, column)``: a problem with the rule on that column, or None.
    """

    def register(func: StrategyFunc) -> StrategyFunc:
        REGISTRY[name] = StrategySpec(
            name=name,
            func=func,
            params={p.name: p for p in params or []},
            types=frozenset(types) if types else ALL_TYPES,
            deterministic=deterministic,
            unique=unique,
            changes=changes,
            keyed=keyed,
            row_independent=row_independent,
            doc=inspect.getdoc(func) or "",
            origin=func.__module__ if not func.__module__.startswith("datastage.") else "built-in",
            reads_masked=reads_masked,
            nested=nested,
            validate=validate,
        )
        return func

    return register


def register_prefix(prefix: str, factory: Callable[[str], StrategySpec | None],
                    names: Callable[[], Iterable[str]] | None = None) -> None:
    """Strategies named ``prefix.<something>`` are built on demand by ``factory``.

    ``names`` lists the ``<something>`` parts that exist, for did-you-mean hints.
    """
    _PREFIX_FACTORIES[prefix] = factory
    if names is not None:
        _PREFIX_NAMES[prefix] = names


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop every command
            raise RulesError(f"strategy plugin '{ep.name}' ({ep.value}) failed to load: {exc}") from None
        if ep.name not in REGISTRY and callable(target):
            REGISTRY[ep.name] = _custom_spec(ep.name, target, origin=f"entry point {ep.value}")


def _custom_spec(name: str, target: Any, origin: str) -> StrategySpec:
    """A spec for a plugin: a ready StrategySpec, or a plain function with optional attributes."""
    if isinstance(target, StrategySpec):
        return target
    attrs = getattr(target, "datastage_strategy", {})
    param_names = attrs.get("params", [])
    return StrategySpec(
        name=name,
        func=target,
        params={p: Param(p) for p in param_names} if param_names else {},
        types=frozenset(attrs.get("types", ALL_TYPES)),
        deterministic=attrs.get("deterministic", True),
        unique=attrs.get("unique"),
        changes=attrs.get("changes", True),
        keyed=attrs.get("keyed", True),
        row_independent=attrs.get("row_independent", True),
        doc=inspect.getdoc(target) or "",
        origin=origin,
    )


NOT_IMPORTED = "strategies are named, not imported; register a plugin via the datastage.strategies entry point"


def get_strategy(name: str) -> StrategySpec | None:
    """The strategy called ``name``: built-in, ``prefix.x`` (e.g. ``fake.city``) or an installed plugin.

    A name is only ever looked up, never imported: ``module:function`` is a :class:`RulesError`.
    """
    from datastage.mask import strategies  # noqa: F401 - registers the built-ins

    if name in REGISTRY:
        return REGISTRY[name]
    if ":" in name:
        raise RulesError(f"'{name}': {NOT_IMPORTED}")
    prefix = name.split(".", 1)[0]
    if prefix in _PREFIX_FACTORIES and "." in name:
        if name not in _BUILT:
            _BUILT[name] = _PREFIX_FACTORIES[prefix](name)
        return _BUILT[name]
    _load_entry_points()
    return REGISTRY.get(name)


def suggestion_names(name: str) -> list[str]:
    """Names a misspelt ``name`` may have meant: the registry, and ``prefix.x`` names for its prefix."""
    names = known_names()
    prefix = name.split(".", 1)[0]
    if "." in name and prefix in _PREFIX_NAMES:
        names += [f"{prefix}.{part}" for part in _PREFIX_NAMES[prefix]()]
    return names


def known_names() -> list[str]:
    """Names for did-you-mean hints."""
    from datastage.mask import strategies  # noqa: F401

    _load_entry_points()
    return sorted(REGISTRY)


def all_strategies() -> list[StrategySpec]:
    """Every registered strategy, sorted by name."""
    return [REGISTRY[name] for name in known_names()]
