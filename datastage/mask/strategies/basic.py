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
import polars as pl

from datastage.cards import BRAND_TEST_PREFIX, luhn_check_digit
from datastage.mask.arrays import ascii_objects, ascii_series, polars_text, series_objects
from datastage.mask.contract import (
    Param,
    StrategyContext,
    StrategySpec,
    object_series,
    register_prefix,
    str_objects,
    strategy,
)
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
    codes = encode_codes(words, alphabet, length)
    if codes.shape[1] == 0:
        return np.empty(0, dtype=object)
    return ascii_objects(codes.T)


def encode_codes(words: list[np.ndarray], alphabet: np.ndarray, length: int) -> np.ndarray:
    """The characters of :func:`encode_hashes` as a (length, values) uint8 matrix."""
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
    return codes


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


def identity_hash(ctx: StrategyContext, seeds: pd.Series | np.ndarray, domain: str = "person") -> np.ndarray:
    """Keyed uint64 identity of each seed (trimmed, lower-cased canonical text) in ``domain``."""
    series = seeds if isinstance(seeds, pd.Series) else pd.Series(seeds, dtype=object)
    return ctx.key.hash_text(domain, _canonical_lower(series))


_ASCII_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.strip() strips below 128


def _canonical_lower(values: pd.Series) -> np.ndarray:
    """Trimmed, lower-cased canonical text: ASCII values in polars, the others as Python does it."""
    text = canonical_text(values)
    series = polars_text(text) if len(text) else None
    if series is None or series.null_count():
        return _python_lower(text)
    ascii_rows = (series.str.len_bytes() == series.str.len_chars()).to_numpy()
    lowered = series.str.strip_chars(_ASCII_SPACE).str.to_lowercase()
    changed = (lowered != series).to_numpy() & ascii_rows
    out = text.copy() if changed.any() or not ascii_rows.all() else text
    if changed.any():
        out[changed] = series_objects(lowered.filter(pl.Series(changed)))
    if not ascii_rows.all():
        out[~ascii_rows] = _python_lower(text[~ascii_rows])
    return out


def _python_lower(text: np.ndarray) -> np.ndarray:
    return pd.Series(text, dtype=object).str.strip().str.lower().to_numpy(dtype=object)


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
    first = (identity % np.uint64(len(firsts))).astype(np.int64)
    last = ((identity >> np.uint64(20)) % np.uint64(len(lasts))).astype(np.int64)
    token = encode_codes([ctx.hash(seeds if token_source is None else token_source)], BASE36, 8).T
    mail_domain = ctx.params.get("mail_domain") or "example.com"
    domains: np.ndarray | None = None
    if ctx.params.get("keep_domain"):
        text = pd.Series(seeds.to_numpy(dtype=object), dtype=object).astype(str)
        domains = text.str.rpartition("@")[2].to_numpy(dtype=object)
        no_at = ~text.str.contains("@", regex=False).to_numpy()
        domains[no_at] = mail_domain
    domain_series = polars_text(domains) if domains is not None else None
    if len(seeds) == 0 or (domains is not None and domain_series is None):  # a domain without UTF-8
        tokens = ascii_objects(token) if len(seeds) else np.empty(0, dtype=object)
        return firsts[first] + "." + lasts[last] + "." + tokens + "@" + (
            domains if domains is not None else np.full(len(seeds), mail_domain, dtype=object))
    pools = local_part_series(locale, "first_name"), local_part_series(locale, "last_name")
    parts = [pools[0].gather(first), pl.lit("."), pools[1].gather(last), pl.lit("."), ascii_series(token),
             pl.lit("@"), domain_series if domain_series is not None else pl.lit(mail_domain)]
    return series_objects(pl.select(pl.concat_str(parts)).to_series())


@lru_cache(maxsize=64)
def local_part_series(locale: str, provider: str) -> pl.Series:
    """:func:`local_part_pool` as a polars Series."""
    return pl.Series(values=local_part_pool(locale, provider), dtype=pl.String)


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
    encoded = encode_hashes(words, alphabet, length)
    return object_series(prefix + encoded if prefix else encoded, values)


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
        step = decimal.Decimal(str(bucket))  # floored like the other numbers (Decimal's // truncates)
        return (value / step).to_integral_value(rounding=decimal.ROUND_FLOOR) * step
    return math.floor(value / bucket) * bucket


@strategy("card_number", types={"text"}, unique="checked")
def card_number(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """A Luhn-valid number from a reserved test range, same length and separators as the input.

    The brand digit picks the test prefix (4 -> 411111, 5 -> 555555, 3 -> 378282 ...).
    Example: ``card_number: card_number``.
    """
    text = str_objects(values)
    # 18 random digits per value: all from the first of the two hash words the format reserves.
    digits = encode_codes(hash_words(ctx, values, 1), HEX[:10], 18).T - np.uint8(48)
    n = len(text)
    lengths = np.fromiter(map(len, text), dtype=np.int64, count=n)
    width = max(1, int(lengths.max())) if n else 1
    codes = np.array(text, dtype=f"U{width}").view(np.uint32).reshape(n, width)
    # Non-ASCII text (Unicode digits, which \d also matches) and NUL characters take the per-value path.
    odd = (codes.max(axis=1) > 127) | (np.count_nonzero(codes, axis=1) != lengths) if n else np.zeros(0, bool)
    out = np.empty(n, dtype=object)
    for i in np.flatnonzero(odd).tolist():
        out[i] = _card_one(text[i], "".join(map(chr, (digits[i] + 48).tolist())))
    rows = np.flatnonzero(~odd)
    if len(rows):
        out[rows] = _cards(codes[rows].astype(np.uint8), lengths[rows], digits[rows])
    return object_series(out, values)


_BRAND_DIGITS = np.tile(np.frombuffer(b"411111", dtype=np.uint8) - 48, (10, 1))
for _brand, _prefix in BRAND_TEST_PREFIX.items():
    _BRAND_DIGITS[int(_brand)] = np.frombuffer(_prefix.encode(), dtype=np.uint8) - 48


def _cards(chars: np.ndarray, lengths: np.ndarray, random_digits: np.ndarray) -> np.ndarray:
    """:func:`card_number` of ASCII values: ``chars`` (values, width) uint8, ``random_digits`` (values, 18).

    The digits (0 to 9) of each number are the brand's test prefix, then random digits, cut to
    the input's digit count (13 to 19, 16 without digits) less one, then the Luhn check digit.
    """
    n, width = chars.shape
    is_digit = (chars - np.uint8(48)) < 10  # uint8 arithmetic wraps: below "0" is large
    count = np.count_nonzero(is_digit, axis=1)
    size = np.where(count > 0, np.clip(count, 13, 19), 16)
    first = chars[np.arange(n), np.argmax(is_digit, axis=1)] - np.uint8(48)
    brand = np.where(count > 0, first, 4)  # the first digit picks the prefix; 4 stands for "none"
    number = np.concatenate([_BRAND_DIGITS[brand], random_digits[:, :13]], axis=1)  # (values, 19) digits
    body = size - 1
    position = np.arange(19)[None, :]
    check = np.empty(n, dtype=np.uint8)
    for length in np.unique(body).tolist():  # numbers of one length share their Luhn positions (few lengths)
        of_length = body == length
        rows = slice(None) if of_length.all() else of_length  # usually all of them: no gather then
        digits = number[rows, :length]
        doubled = (length - np.arange(length)) & 1 == 1  # every other digit from the right, the last doubled
        total = (_LUHN_DOUBLE[digits[:, doubled]].sum(axis=1, dtype=np.int32)
                 + digits[:, ~doubled].sum(axis=1, dtype=np.int32))
        check[rows] = (10 - total % 10) % 10
    number[np.arange(n), body] = check
    number += np.uint8(48)
    # Inputs with separators and as many digits as the number keep their layout.
    layout = (count == size) & (count != lengths)
    out = np.zeros((n, max(width, 19)), dtype=np.uint8)
    out[:, :19] = number
    if layout.any():
        rows = np.flatnonzero(layout)
        shaped = chars[rows]
        # Row by row, the input's digit positions take the number's digits in order.
        shaped[is_digit[rows]] = number[rows][position < size[rows, None]]
        out[rows, :width] = shaped
        out[rows, width:] = 0
    return ascii_objects(out, np.where(layout, lengths, size))


_LUHN_DOUBLE = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.uint8)


def _card_one(original: str, random_digits: str) -> str:
    """:func:`card_number` of one value (any text)."""
    bare = re.sub(r"\D", "", original)
    size = max(13, min(19, len(bare))) if bare else 16
    prefix = BRAND_TEST_PREFIX.get(bare[:1], "411111")
    body = (prefix + random_digits)[: size - 1]
    return _reformat(original, body + luhn_check_digit(body))


def _reformat(original: str, digits: str) -> str:
    """Put ``digits`` into the separator layout of ``original`` (spaces, dashes)."""
    if re.fullmatch(r"\d+", original) or len(re.sub(r"\D", "", original)) != len(digits):
        return digits
    chars = iter(digits)
    return "".join(next(chars) if c.isdigit() else c for c in original)


