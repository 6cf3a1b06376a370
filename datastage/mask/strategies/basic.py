"""Built-in masking strategies, each vectorised over a whole column batch.

Every strategy receives the non-NULL values of one column (a pandas Series of Python
values) and a :class:`~datastage.mask.contract.StrategyContext`; it returns a Series of
the same length. Keyed strategies derive everything from ``ctx.hash`` so the output
depends only on (key, domain, input value).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from datastage.cards import BRAND_TEST_PREFIX, luhn_check_digit
from datastage.mask.contract import Param, StrategyContext, StrategySpec, object_series, register_prefix, strategy
from datastage.mask.fakepool import (
    MAX_POOL_SIZE,
    check_arguments,
    fake_pool,
    pick,
    provider_exists,
    provider_names,
)
from datastage.source.values import canonical_text

BASE36 = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def encode_hashes(words: list[np.ndarray], alphabet: np.ndarray, length: int) -> np.ndarray:
    """Render uint64 hash words as ``length`` characters of ``alphabet`` (object array of str)."""
    n = len(words[0]) if words else 0
    radix = np.uint64(len(alphabet))
    chars_per_word = max(1, int(64 // math.log2(len(alphabet))))
    if len(words) * chars_per_word < length:
        raise ValueError(f"{len(words)} hash words cannot fill {length} characters")
    codes = np.empty((length, n), dtype=np.uint8)
    bits = int(math.log2(len(alphabet)))
    power_of_two = 1 << bits == len(alphabet)
    mask = np.uint64(len(alphabet) - 1)
    position = 0
    for word in words:
        remaining = word.copy()
        for i in range(chars_per_word):
            if position >= length:
                break
            if power_of_two:  # hex, base32: shifts instead of divisions
                digit = (word >> np.uint64(bits * i)) & mask
            else:
                digit = remaining % radix
                remaining //= radix
            codes[position] = alphabet[digit.astype(np.intp)]
            position += 1
    if n == 0:
        return np.empty(0, dtype=object)
    return np.ascontiguousarray(codes.T).view(f"S{length}").ravel().astype(f"U{length}").astype(object)


def hash_words(ctx: StrategyContext, values: pd.Series, count: int, salt: str = "") -> list[np.ndarray]:
    """``count`` independent keyed uint64 words per value."""
    return [ctx.hash(values, salt=f"{salt}{i}" if i else salt) for i in range(count)]


# -- Faker -------------------------------------------------------------------------------

def _fake_factory(name: str) -> StrategySpec | None:
    provider = name.split(".", 1)[1]
    if not provider_exists("en_US", provider):
        return None

    def fake(values: pd.Series, ctx: StrategyContext) -> pd.Series:
        locale = ctx.params.get("locale") or ctx.locale
        pool = fake_pool(locale, provider, ctx.params.get("pool_size") or 4096, **(ctx.params.get("args") or {}))
        return object_series(pick(pool, ctx.hash(values)), values)

    def validate(params: Mapping[str, Any], table: Any, column: Any) -> str | None:
        size = params.get("pool_size")
        if isinstance(size, int) and not 1 <= size <= MAX_POOL_SIZE:
            return f"pool_size must be between 1 and {MAX_POOL_SIZE}, got {size}"
        return check_arguments(str(params.get("locale") or "en_US"), provider, params.get("args"))

    fake.__doc__ = (f"Faker's ``{provider}``, chosen per input value by keyed hash (deterministic).\n\n"
                    f"Example: ``column: fake.{provider}`` or ``{{strategy: fake.{provider}, locale: de_DE}}``.")
    return StrategySpec(
        name=name,
        func=fake,
        params={
            "locale": Param("locale", str, doc="Faker locale for this column (default: the rules file's)"),
            "pool_size": Param("pool_size", int, 4096, doc=f"distinct fake values to draw from (1 to {MAX_POOL_SIZE})"),
            "args": Param("args", dict, doc="keyword arguments for the Faker provider: numbers or true/false"),
        },
        deterministic=True,
        unique=None,
        changes=True,
        doc=fake.__doc__,
        validate=validate,
    )


register_prefix("fake", _fake_factory, names=lambda: sorted(provider_names("en_US")))


def person_names(ctx: StrategyContext, seeds: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first names, last names) of the fake identity each seed value stands for.

    The identity depends only on the key and the seed value (domain ``person``), so the
    e-mail strategy and the ``person.*`` strategies agree on the same person.
    """
    locale = ctx.params.get("locale") or ctx.locale
    identity = identity_hash(ctx, seeds)
    firsts = pick(fake_pool(locale, "first_name"), identity)
    lasts = pick(fake_pool(locale, "last_name"), identity >> np.uint64(20))
    return firsts, lasts


def identity_hash(ctx: StrategyContext, seeds: pd.Series | np.ndarray) -> np.ndarray:
    """Keyed uint64 identity of each seed (trimmed, lower-cased canonical text) in domain ``person``."""
    series = seeds if isinstance(seeds, pd.Series) else pd.Series(seeds, dtype=object)
    return ctx.key.hash_text("person", _canonical_lower(series))


def _canonical_lower(values: pd.Series) -> np.ndarray:
    text = pd.Series(canonical_text(values), dtype=object)
    return text.str.strip().str.lower().to_numpy(dtype=object)


_NON_LOCAL = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=64)
def local_part_pool(locale: str, provider: str) -> np.ndarray:
    """The provider's pool as e-mail-safe ASCII (``José`` -> ``jose``), in pool order."""
    out = np.empty(len(fake_pool(locale, provider)), dtype=object)
    for i, name in enumerate(fake_pool(locale, provider)):
        ascii_name = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
        out[i] = _NON_LOCAL.sub("", ascii_name.lower()) or "user"
    return out


def fake_emails(ctx: StrategyContext, seeds: pd.Series, token_source: pd.Series | None = None) -> np.ndarray:
    """``first.last.token@domain`` for each seed's identity (the ``email`` strategy's output)."""
    locale = ctx.params.get("locale") or ctx.locale
    identity = identity_hash(ctx, seeds)
    firsts = local_part_pool(locale, "first_name")
    lasts = local_part_pool(locale, "last_name")
    first = firsts[(identity % np.uint64(len(firsts))).astype(np.int64)]
    last = lasts[((identity >> np.uint64(20)) % np.uint64(len(lasts))).astype(np.int64)]
    token = encode_hashes([ctx.hash(seeds if token_source is None else token_source)], BASE36, 8)
    if ctx.params.get("keep_domain"):
        text = pd.Series(seeds.to_numpy(dtype=object), dtype=object).astype(str)
        domains = text.str.rpartition("@")[2].to_numpy(dtype=object)
        no_at = ~text.str.contains("@", regex=False).to_numpy()
        domains[no_at] = ctx.params.get("mail_domain") or "example.com"
    else:
        domains = np.full(len(seeds), ctx.params.get("mail_domain") or "example.com", dtype=object)
    return first + "." + last + "." + token + "@" + domains


@strategy(
    "email",
    params=[
        Param("keep_domain", bool, False, doc="keep the part after @"),
        Param("mail_domain", str, "example.com", doc="domain of the fake addresses"),
        Param("locale", str, doc="Faker locale of the names"),
    ],
    types={"text"},
    unique="checked",
)
def email(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """A fake address ``first.last.token@example.com`` for the person the real address stands for.

    Unique (a keyed 8-character token, collision-checked). The same real address gives
    the same fake one in every table, and its names are the ones ``person.*`` rules with
    ``by: email`` give the same row. Example: ``email: {strategy: email, keep_domain: true}``.
    """
    return object_series(fake_emails(ctx, values), values)


@strategy(
    "partial",
    params=[
        Param("keep_first", int, 0, doc="characters kept at the start"),
        Param("keep_last", int, 0, doc="characters kept at the end"),
        Param("mask_char", str, "*", doc="replacement character"),
    ],
    types={"text"},
    keyed=False,
    changes=False,
)
def partial(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Keep the first/last characters, replace the rest with ``mask_char``.

    Example: ``phone: {strategy: partial, keep_last: 2}`` turns ``555-0142`` into ``******42``.
    """
    first = int(ctx.params.get("keep_first") or 0)
    last = int(ctx.params.get("keep_last") or 0)
    char = str(ctx.params.get("mask_char") or "*")
    out = []
    for value in values.astype(str):
        size = len(value)
        head = min(first, size)
        tail = min(last, size - head)
        out.append(value[:head] + char * (size - head - tail) + (value[size - tail:] if tail else ""))
    return object_series(out, values)


@strategy(
    "hash",
    params=[
        Param("length", int, 16, doc="characters of output"),
        Param("encoding", str, "hex", choices=("hex", "base32"), doc="hex or base32"),
        Param("prefix", str, "", doc="text put before the hash"),
    ],
    types={"text"},
    unique="checked",
)
def hash_(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Keyed hash of the value (SipHash-2-4 under a per-domain subkey), hex or base32.

    Example: ``api_token: {strategy: hash, length: 32}``.
    """
    length = int(ctx.params.get("length") or 16)
    alphabet = BASE32 if ctx.params.get("encoding") == "base32" else HEX
    per_word = int(64 // math.log2(len(alphabet)))
    words = hash_words(ctx, values, -(-length // per_word))
    prefix = ctx.params.get("prefix") or ""
    return object_series(prefix + encode_hashes(words, alphabet, length), values)


@strategy("null", keyed=False, changes=False)
def null(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Replace every value with NULL. Example: ``notes: "null"``."""
    return object_series(np.full(len(values), None, dtype=object), values)


@strategy("value", params=[Param("value", object, required=True, doc="the constant")], keyed=False,
          changes=False)
def value(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Replace every value with one constant. Example: ``password: {strategy: value, value: "x"}``."""
    return object_series(np.full(len(values), ctx.params.get("value"), dtype=object), values)


@strategy(
    "generalize",
    params=[
        Param("to", str, choices=("year", "month", "decade"), doc="dates: truncate to year, month or decade"),
        Param("bucket", (int, float), doc="numbers: round down to a multiple of this"),
        Param("keep", int, doc="text: keep only this many leading characters (postcode to prefix)"),
    ],
    types={"date", "datetime", "integer", "decimal", "float", "text"},
    keyed=False,
    changes=False,
)
def generalize(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Coarsen a value: a date to its year/month, a number to a bucket, a postcode to its prefix.

    Example: ``birth_date: {strategy: generalize, to: year}`` turns 1984-06-12 into 1984-01-01.
    """
    params = ctx.params
    if params.get("to"):
        return values.map(lambda v: _truncate_date(v, params["to"]))
    if params.get("bucket") is not None:
        bucket = params["bucket"]
        return values.map(lambda v: _bucket(v, bucket))
    if params.get("keep") is not None:
        keep = int(params["keep"])
        return values.map(lambda v: str(v)[:keep])
    return values


def _truncate_date(value: Any, to: str) -> Any:
    if isinstance(value, str):
        try:
            parsed = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
        return _truncate_date(parsed, to).isoformat()
    if not isinstance(value, dt.date):
        return value
    year = value.year - value.year % 10 if to == "decade" else value.year
    month = value.month if to == "month" else 1
    if isinstance(value, dt.datetime):
        return value.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
    return value.replace(year=year, month=month, day=1)


def _bucket(value: Any, bucket: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        return value
    if isinstance(value, int) and float(bucket).is_integer():
        size = int(bucket)
        return value - value % size
    if isinstance(value, decimal.Decimal):
        step = decimal.Decimal(str(bucket))
        return (value // step) * step
    return math.floor(value / bucket) * bucket


@strategy("card_number", types={"text"}, unique="checked")
def card_number(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """A Luhn-valid number from a reserved test range, same length and separators as the input.

    The brand digit picks the test prefix (4 -> 411111, 5 -> 555555, 3 -> 378282 ...).
    Example: ``card_number: card_number``.
    """
    words = hash_words(ctx, values, 2)
    digits = encode_hashes(words, HEX[:10], 18)
    out = []
    for original, random_digits in zip(values.astype(str), digits, strict=True):
        bare = re.sub(r"\D", "", original)
        size = max(13, min(19, len(bare))) if bare else 16
        prefix = BRAND_TEST_PREFIX.get(bare[:1], "411111")
        body = (prefix + random_digits)[: size - 1]
        number = body + luhn_check_digit(body)
        out.append(_reformat(original, number))
    return object_series(out, values)


def _reformat(original: str, digits: str) -> str:
    """Put ``digits`` into the separator layout of ``original`` (spaces, dashes)."""
    if re.fullmatch(r"\d+", original) or len(re.sub(r"\D", "", original)) != len(digits):
        return digits
    chars = iter(digits)
    return "".join(next(chars) if c.isdigit() else c for c in original)


