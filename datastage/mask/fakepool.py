"""Pools of Faker values, drawn once per (locale, provider) and indexed by keyed hashes.

Calling Faker once per row manages tens of thousands of values a second; drawing a pool
once and picking from it with a keyed hash manages millions, and is deterministic
(the pool is seeded, the pick depends only on key, domain and input value).

A rules file names a provider (``fake.city``) and a locale; both are looked up in
allowlists computed from the installed Faker: locales from Faker's own list, providers
from the public methods of the provider classes Faker installs for that locale. Nothing
else of Faker (``seed_instance``, ``format``, ``parse``, private attributes) can be
reached, no attribute is looked up by a name from the rules file, and provider arguments
are numbers or booleans only (text could name other Faker methods or be a format template).

Example:
    >>> pool = fake_pool("en_US", "first_name")
    >>> len(pool) > 100 and all(isinstance(v, str) for v in pool)
    True
    >>> provider_exists("en_US", "seed_instance"), provider_exists("en_US", "__class__")
    (False, False)
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import os
import random
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from faker import Faker

from datastage.errors import RulesError
from datastage.identify.reference import faker_locales
from datastage.yamlfile import did_you_mean

POOL_SIZE = 4096
MAX_POOL_SIZE = 65536
MAX_ARGUMENT = 10**9  # largest absolute number a provider argument may be
MAX_POOL_CHARS = 64 << 20  # characters (of repr) one pool may hold
MAX_VALUE_CHARS = 64 << 10  # characters (of repr) one pooled value may have


def checked_locale(locale: str) -> str:
    """``locale`` when it is one of the installed Faker locales, else a RulesError with a hint."""
    if locale not in faker_locales():
        raise RulesError(f"unknown Faker locale '{locale}'{did_you_mean(locale, sorted(faker_locales()))}")
    return locale


@lru_cache(maxsize=64)
def faker_for(locale: str) -> Faker:
    """A Faker instance for ``locale``; a locale Faker does not ship is a rules error."""
    return Faker(checked_locale(locale))


def provider_methods(fake: Faker) -> dict[str, Callable[..., Any]]:
    """Public methods of the provider classes installed in ``fake``, bound to its providers.

    Names come from the classes themselves (never from a rules file); where several
    providers define a name, the one Faker itself dispatches to (the last added) wins.
    """
    generator = fake.factories[0]
    methods: dict[str, Callable[..., Any]] = {}
    for provider in reversed(generator.get_providers()):  # Faker lists the last added first
        for name, function in inspect.getmembers(type(provider), inspect.isfunction):
            if not name.startswith("_"):
                methods[name] = function.__get__(provider)
    return methods


@lru_cache(maxsize=64)
def _locale_methods(locale: str) -> dict[str, Callable[..., Any]]:
    """:func:`provider_methods` of the shared Faker for ``locale``, listed once per locale."""
    return provider_methods(faker_for(locale))


@lru_cache(maxsize=64)
def provider_names(locale: str) -> frozenset[str]:
    """The allowlist of ``fake.<provider>`` names for ``locale``."""
    return frozenset(_locale_methods(locale))


def provider_exists(locale: str, provider: str) -> bool:
    """Whether ``provider`` is a public method of Faker's provider classes for ``locale``."""
    return provider in provider_names(locale)


def provider_hint(locale: str, provider: str) -> str:
    """``" (did you mean 'x'?)"`` for a provider name that does not exist."""
    return did_you_mean(provider, sorted(provider_names(locale)))


def check_arguments(locale: str, provider: str, args: Mapping[str, Any] | None) -> str | None:
    """Why ``args`` cannot be passed to the provider, or None.

    Arguments are numbers (at most 10^9 either way) or booleans, and must fit the
    provider's signature; a provider with required arguments cannot be used.
    """
    if not provider_exists(locale, provider):
        return f"Faker has no provider '{provider}'{provider_hint(locale, provider)}"
    args = dict(args or {})
    for name, value in args.items():
        if isinstance(value, bool):
            continue
        if not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > MAX_ARGUMENT:
            return (f"args.{name}: provider arguments are numbers (at most {MAX_ARGUMENT:,} either way) or "
                    f"true/false, got {type(value).__name__} {value!r}")
    method = _locale_methods(locale)[provider]
    try:
        inspect.signature(method).bind(**args)
    except TypeError as exc:
        return f"fake.{provider}: {exc}"
    return None


class PoolRandom(random.Random):
    """``random.Random`` whose weighted ``choices`` reuses the cumulative weights of a population.

    Faker draws a weighted element (a first name out of thousands, say) by passing the same
    population tuple with its weights on every call; ``random.Random.choices`` then sums all
    the weights again each time. This class sums them once per population object and hands
    the sums to ``random.Random.choices`` itself, so the random stream and every value drawn
    are exactly those of a plain ``random.Random`` with the same seed.

    Example:
        >>> a, b = random.Random(7), PoolRandom(7)
        >>> names, weights = ("ann", "bob", "cy"), (0.5, 0.3, 0.2)
        >>> [a.choices(names, weights)[0] for _ in range(5)] == [b.choices(names, weights)[0] for _ in range(5)]
        True
    """

    def __init__(self, seed: int | None = None) -> None:
        self._sums: dict[int, tuple[Sequence[Any], list[Any]]] = {}
        super().__init__(seed)

    def choices(self, population: Any, weights: Sequence[Any] | None = None, *,
                cum_weights: Sequence[Any] | None = None, k: int = 1) -> list[Any]:
        if weights is not None and cum_weights is None and isinstance(population, tuple):
            held = self._sums.get(id(population))
            if held is None or held[0] is not population or len(held[1]) != len(weights):
                # Faker keys its weights by the population tuple it caches on the mapping
                # (``_key_cache``), so one population object always comes with the same weights.
                held = (population, list(itertools.accumulate(weights)))
                self._sums[id(population)] = held
            return super().choices(population, cum_weights=held[1], k=k)
        return super().choices(population, weights, cum_weights=cum_weights, k=k)


CACHE_FORMAT = 1  # bump when the way a pool is drawn changes: cached pools of other formats are not read


def cache_dir() -> Path | None:
    """Where drawn pools of text are kept between runs: ``$DATASTAGE_CACHE_DIR`` (empty: nowhere),
    else ``$XDG_CACHE_HOME/datastage`` or ``~/.cache/datastage``.

    A pool holds Faker's values only (drawn from a public seed): no source data, no key.
    """
    configured = os.environ.get("DATASTAGE_CACHE_DIR")
    if configured is not None:
        return Path(configured) / "fakepools" if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "datastage" / "fakepools"


def _cache_file(locale: str, provider: str, size: int, args: tuple[tuple[str, Any], ...]) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    import faker

    name = json.dumps([CACHE_FORMAT, faker.VERSION, list(sys.version_info[:2]), locale, provider, size, repr(args)])
    return folder / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.json"


def _cached(path: Path | None, size: int) -> tuple[str, ...] | None:
    if path is None:
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(values, list) or len(values) > size or not all(type(v) is str for v in values):
        return None
    return tuple(values)


def _keep(path: Path | None, values: tuple[Any, ...]) -> None:
    """Write a pool of text to the cache (atomically; a failure only means drawing it again next time)."""
    if path is None or not all(type(v) is str for v in values):
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False,
                                         suffix=".tmp") as handle:
            json.dump(list(values), handle, ensure_ascii=False)
        os.replace(handle.name, path)
    except OSError:
        return


@lru_cache(maxsize=512)
def _pool(locale: str, provider: str, size: int, args: tuple[tuple[str, Any], ...]) -> tuple[Any, ...]:
    """The pool, from the cache when an identical draw (same Faker, Python, arguments) was kept there."""
    path = _cache_file(locale, provider, size, args)
    cached = _cached(path, size)
    if cached is not None:
        return cached
    values = draw_pool(locale, provider, size, args)
    _keep(path, values)
    return values


def draw_pool(locale: str, provider: str, size: int, args: tuple[tuple[str, Any], ...]) -> tuple[Any, ...]:
    """Draw the pool from Faker, seeded from locale, provider and arguments (no cache)."""
    fake = Faker(checked_locale(locale))
    seed = int.from_bytes(hashlib.sha256(f"{locale}/{provider}/{args}".encode()).digest()[:8], "little")
    for factory in fake.factories:  # seeded as seed_instance(seed) seeds, with the faster weighted choice
        factory.random = PoolRandom()
    fake.seed_instance(seed)
    method = provider_methods(fake)[provider]
    kwargs = dict(args)
    values: list[Any] = []
    seen: set[Any] = set()
    attempts = 0
    chars = 0
    while len(values) < size and attempts < size * 3:
        attempts += 1
        value = method(**kwargs)
        marker = repr(value)
        if len(marker) > MAX_VALUE_CHARS or chars + len(marker) > MAX_POOL_CHARS:
            raise RulesError(f"fake.{provider}: values too large for a pool of fake values "
                             f"({len(marker):,} characters); choose another provider or smaller arguments")
        if marker in seen:
            continue
        chars += len(marker)
        seen.add(marker)
        values.append(value)
    return tuple(values)


def fake_pool(locale: str, provider: str, size: int = POOL_SIZE, **kwargs: Any) -> tuple[Any, ...]:
    """Distinct values of ``provider`` (at most ``size``), reproducible for the same arguments."""
    checked_locale(locale)
    if not 1 <= size <= MAX_POOL_SIZE:
        raise RulesError(f"fake.{provider}: pool_size must be between 1 and {MAX_POOL_SIZE}, got {size}")
    problem = check_arguments(locale, provider, kwargs)
    if problem:
        raise RulesError(problem)
    try:
        return _pool(locale, provider, size, tuple(sorted(kwargs.items())))
    except (TypeError, ValueError, AttributeError, ImportError) as exc:
        raise RulesError(f"fake.{provider}: {type(exc).__name__}: {exc}") from None


def pick(pool: tuple[Any, ...], hashes: np.ndarray) -> np.ndarray:
    """``pool[h % len(pool)]`` for each hash, as an object array."""
    array = np.empty(len(pool), dtype=object)
    array[:] = list(pool)
    return array[(hashes % np.uint64(len(pool))).astype(np.int64)]

