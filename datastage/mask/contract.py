"""The contract between the masking engine and its strategies (as the strategies see it).

A strategy is a function ``(values, ctx) -> values`` over one batch of a column (a
pandas Series of non-NULL values) and a :class:`StrategyContext`. :func:`strategy`
records it with what the policy checker needs before any row moves: accepted
parameters (:class:`Param`), column types, whether the output is deterministic,
whether distinct inputs stay distinct (``unique``: ``"bijective"`` by construction or
``"checked"`` by collision-checked redraw), and whether the output is promised to differ
from the input. Strategy modules import this module only; the lookup of a strategy by
name is :mod:`datastage.mask.registry`.

Example:
    >>> @strategy("upper", types={"text"}, changes=False)
    ... def upper(values, ctx):
    ...     "Upper-case text. Example: ``name: upper``."
    ...     return values.str.upper()
    >>> REGISTRY.pop("upper").types
    frozenset({'text'})
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from datastage.errors import StepError
from datastage.mask.keys import MaskingKey
from datastage.source.schema import ColumnInfo, TableInfo
from datastage.source.values import canonical_text
from datastage.yamlfile import describe, did_you_mean

StrategyFunc = Callable[[pd.Series, "StrategyContext"], pd.Series]
Uniqueness = Literal["bijective", "checked"] | None
ALL_TYPES = frozenset({"text", "integer", "decimal", "float", "date", "datetime", "time", "boolean",
                       "binary", "json", "uuid", "array", "interval", "other"})


@dataclass
class StrategyContext:
    """What a strategy may use besides the values: the key, its domain, parameters, the row batch."""

    key: MaskingKey
    domain: str
    params: dict[str, Any]
    column: ColumnInfo
    table: TableInfo | None = None
    frame: pd.DataFrame | None = None
    locale: str = "en_US"
    attempt: int = 0
    unique: bool = False
    masked: pd.DataFrame | None = None
    nested: Callable[[str, pd.Series], pd.Series] | None = None

    def hash(self, values: pd.Series | np.ndarray, salt: str = "") -> np.ndarray:
        """Keyed uint64 per value, from its canonical text, in this domain (and redraw attempt)."""
        return self.key.hash_text(self._domain(salt), values_text(values))

    def hash_ints(self, values: np.ndarray, salt: str = "") -> np.ndarray:
        """Keyed uint64 per 64-bit integer (fast path for numeric work)."""
        return self.key.hash_uint64(self._domain(salt), np.asarray(values).astype(np.uint64))

    def _domain(self, salt: str) -> str:
        domain = f"{self.domain}/{salt}" if salt else self.domain
        return f"{domain}#{self.attempt}" if self.attempt else domain

    def rows(self, index: pd.Index) -> pd.DataFrame:
        """The original batch rows for ``index`` (for strategies that read other columns)."""
        if self.frame is None:
            raise StepError(f"strategy needs the row batch but none was given for {self.column.name}")
        return self.frame.loc[index]

    def masked_rows(self, index: pd.Index) -> pd.DataFrame:
        """The batch rows for ``index`` with every other rule already applied (``reads_masked``)."""
        if self.masked is None:
            return self.rows(index)
        return self.masked.loc[index]

    def apply(self, name: str, values: pd.Series) -> pd.Series:
        """Mask ``values`` with the nested strategy called ``name`` in this rule's parameters.

        The nested rule runs through the engine like a column rule (its own domain, its
        redraws and uniqueness tracking), so an e-mail found inside free text masks to
        exactly what the ``email`` column rule gives for the same address.
        """
        if self.nested is None:
            raise StepError(f"strategy on {self.column.name} has no nested strategies")
        return self.nested(name, values)

    def with_domain(self, domain: str) -> StrategyContext:
        """This context under another domain (to reproduce another strategy's output)."""
        return replace(self, domain=domain)


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
            got = describe(value) if isinstance(value, (dict, list)) else f"{type(value).__name__} {value!r}"
            return f"expected {self.kind_name}, got {got}"
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
PREFIX_FACTORIES: dict[str, Callable[[str], StrategySpec | None]] = {}
PREFIX_NAMES: dict[str, Callable[[], Iterable[str]]] = {}


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
    PREFIX_FACTORIES[prefix] = factory
    if names is not None:
        PREFIX_NAMES[prefix] = names


def values_text(values: pd.Series | np.ndarray) -> np.ndarray:
    """Canonical text of values; plain strings (the common case) pass through without a copy."""
    array = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    if len(array) and pd.api.types.infer_dtype(array, skipna=False) == "string":
        return array
    return canonical_text(pd.Series(array, dtype=object))


def str_objects(values: pd.Series) -> np.ndarray:
    """``values.astype(str)`` as an object array of str; plain strings pass through without a copy.

    >>> str_objects(pd.Series(["a", 1], dtype=object)).tolist()
    ['a', '1']
    """
    array = values.to_numpy(dtype=object)
    if len(array) and pd.api.types.infer_dtype(array, skipna=False) == "string":
        return array
    return np.asarray(values.astype(str).to_numpy(dtype=object), dtype=object)


def object_series(values: np.ndarray | list[Any], like: pd.Series) -> pd.Series:
    """A strategy's output values as an object Series on the input batch's index.

    >>> object_series([1, "b"], pd.Series([0, 0], index=[7, 8])).to_dict()
    {7: 1, 8: 'b'}
    """
    array = np.empty(len(like), dtype=object)
    array[:] = list(values) if not isinstance(values, np.ndarray) else values
    return pd.Series(array, index=like.index, dtype=object)
