"""Pools of Faker values, drawn once per (locale, provider) and indexed by keyed hashes.

Calling Faker once per row manages tens of thousands of values a second; drawing a pool
once and picking from it with a keyed hash manages millions, and is deterministic
(the pool is seeded, the pick depends only on key, domain and input value).

Example:
    >>> pool = fake_pool("en_US", "first_name")
    >>> len(pool) > 100 and all(isinstance(v, str) for v in pool)
    True
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import numpy as np
from faker import Faker

from datastage.errors import RulesError

POOL_SIZE = 4096


@lru_cache(maxsize=64)
def faker_for(locale: str) -> Faker:
    """A Faker instance for ``locale``; an unknown locale is a rules error."""
    try:
        return Faker(locale)
    except (AttributeError, ValueError, ModuleNotFoundError):
        raise RulesError(f"unknown Faker locale '{locale}'") from None


def provider_exists(locale: str, provider: str) -> bool:
    """Whether Faker has a callable provider method called ``provider``."""
    fake = faker_for(locale)
    return not provider.startswith("_") and callable(getattr(fake, provider, None))


@lru_cache(maxsize=512)
def _pool(locale: str, provider: str, size: int, args: tuple[tuple[str, Any], ...]) -> tuple[Any, ...]:
    fake = Faker(locale)
    seed = int.from_bytes(hashlib.sha256(f"{locale}/{provider}/{args}".encode()).digest()[:8], "little")
    fake.seed_instance(seed)
    method = getattr(fake, provider)
    kwargs = dict(args)
    values: list[Any] = []
    seen: set[Any] = set()
    attempts = 0
    while len(values) < size and attempts < size * 3:
        attempts += 1
        value = method(**kwargs)
        marker = repr(value)
        if marker in seen:
            continue
        seen.add(marker)
        values.append(value)
    return tuple(values)


def fake_pool(locale: str, provider: str, size: int = POOL_SIZE, **kwargs: Any) -> tuple[Any, ...]:
    """Distinct values of ``provider`` (at most ``size``), reproducible for the same arguments."""
    if not provider_exists(locale, provider):
        raise RulesError(f"Faker has no provider '{provider}'")
    try:
        return _pool(locale, provider, size, tuple(sorted(kwargs.items())))
    except TypeError as exc:
        raise RulesError(f"fake.{provider}: {exc}") from None


def pick(pool: tuple[Any, ...], hashes: np.ndarray) -> np.ndarray:
    """``pool[h % len(pool)]`` for each hash, as an object array."""
    array = np.empty(len(pool), dtype=object)
    array[:] = list(pool)
    return array[(hashes % np.uint64(len(pool))).astype(np.int64)]
