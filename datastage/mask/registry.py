"""Looks strategies up by name: built-ins, ``prefix.x`` names (e.g. ``fake.city``) and plugins.

The built-in strategies register themselves through :mod:`datastage.mask.contract` when
the :mod:`datastage.mask.strategies` package is imported; plugins are found through the
``datastage.strategies`` entry point group. A name is only ever looked up, never imported.

Example:
    >>> get_strategy("hash").deterministic
    True
    >>> get_strategy("no such strategy") is None
    True
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import Any

from datastage.errors import RulesError
from datastage.mask.contract import (
    ALL_TYPES,
    PREFIX_FACTORIES,
    PREFIX_NAMES,
    REGISTRY,
    Param,
    StrategySpec,
)

ENTRY_POINT_GROUP = "datastage.strategies"
_BUILT: dict[str, StrategySpec | None] = {}  # prefix strategies built so far (not listed as their own)
_entry_points_loaded = False


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
    from datastage.mask import strategies  # noqa: F401 - registers the built-ins (loaded on first lookup)

    if name in REGISTRY:
        return REGISTRY[name]
    if ":" in name:
        raise RulesError(f"'{name}': {NOT_IMPORTED}")
    prefix = name.split(".", 1)[0]
    if prefix in PREFIX_FACTORIES and "." in name:
        if name not in _BUILT:
            _BUILT[name] = PREFIX_FACTORIES[prefix](name)
        return _BUILT[name]
    _load_entry_points()
    return REGISTRY.get(name)


def suggestion_names(name: str) -> list[str]:
    """Names a misspelt ``name`` may have meant: the registry, and ``prefix.x`` names for its prefix."""
    names = known_names()
    prefix = name.split(".", 1)[0]
    if "." in name and prefix in PREFIX_NAMES:
        names += [f"{prefix}.{part}" for part in PREFIX_NAMES[prefix]()]
    return names


def known_names() -> list[str]:
    """Names for did-you-mean hints."""
    from datastage.mask import strategies  # noqa: F401

    _load_entry_points()
    return sorted(REGISTRY)


def all_strategies() -> list[StrategySpec]:
    """Every registered strategy, sorted by name."""
    return [REGISTRY[name] for name in known_names()]
