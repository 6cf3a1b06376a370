"""Format-preserving strategies: ``tokenize``, ``phone`` and ``iban``.

All three are keyed bijections (see :mod:`datastage.mask.fpe`), so they can mask
primary keys, unique columns and the foreign keys that reference them: distinct inputs
always give distinct outputs, and the same input gives the same output everywhere.

Example:
    >>> # rules: {product: {sku: tokenize}, customer: {phone: phone, iban: iban}}
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from datastage.mask.arrays import code_objects
from datastage.mask.contract import StrategyContext, str_objects, strategy
from datastage.mask.fpe import in_batches, tokenize_codes, tokenize_int, tokenize_text
from datastage.source.schema import ColumnInfo


def _series(values: np.ndarray, like: pd.Series) -> pd.Series:
    return pd.Series(values, index=like.index, dtype=object)


def integer_bounds(column: ColumnInfo) -> tuple[int, int]:
    """The (min, max) an integer column of this type holds on every supported database."""
    name = type(column.type).__name__.upper()
    try:
        compiled = str(column.type).upper()
    except Exception:  # noqa: BLE001 - some dialect types cannot compile generically
        compiled = name
    text = f"{name} {compiled}"
    if "TINYINT" in text:
        return -(2**7), 2**7 - 1
    if "SMALLINT" in text or "INT2" in text:
        return -(2**15), 2**15 - 1
    if "MEDIUMINT" in text:
        return -(2**23), 2**23 - 1
    if "BIGINT" in text or "INT8" in text:
        return -(2**63), 2**63 - 1
    return -(2**31), 2**31 - 1


@strategy("tokenize", types={"text", "integer"}, unique="bijective")
def tokenize(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """Format-preserving keyed bijection: digits stay digits, letters stay letters, length kept.

    Other characters (``-``, ``@``, spaces, accented letters) stay in place. Integers map
    to integers with the same sign and number of digits, within the column type's range.
    The cipher is FF1 of NIST SP 800-38G on AES-256 (a keyed table for domains under 10**6).
    Distinct inputs always give distinct outputs and no value maps to itself (except values
    with no letter or digit), so it masks primary keys and unique columns; a masked key's
    mapping is applied to every referencing column. Example: ``sku: tokenize`` turns
    ``SKU-004211`` into e.g. ``QZA-719304``.
    """
    objects = values.to_numpy(dtype=object)
    kind = pd.api.types.infer_dtype(objects, skipna=False)
    if kind in ("integer", "string"):
        is_int = np.full(len(objects), kind == "integer")
    else:
        is_int = np.fromiter((isinstance(v, int | np.integer) and not isinstance(v, bool) for v in objects),
                             dtype=bool, count=len(objects))
    out = np.empty(len(objects), dtype=object)
    if is_int.any():
        low, high = integer_bounds(ctx.column)
        out[is_int] = tokenize_int(ctx.key, ctx.domain, objects[is_int], max_value=high, min_value=low)
    if (~is_int).any():
        text = objects if kind == "string" else str_objects(pd.Series(objects[~is_int], dtype=object))
        out[~is_int] = tokenize_text(ctx.key, ctx.domain, text)
    return _series(out, values)


# -- phone -------------------------------------------------------------------------------

# ITU-T E.164 country calling codes are prefix-free: 1 and 7 take one digit, these take two,
# every other code takes three.
_TWO_DIGIT_CODES = frozenset({
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49",
    "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84",
    "86", "90", "91", "92", "93", "94", "95", "98",
})
_INTERNATIONAL = re.compile(r"^(\s*(?:\+|00)\s*)(\d+)")


def country_code_length(digits: str) -> int:
    """Digits of the E.164 country code at the start of ``digits``.

    >>> country_code_length("14155550100"), country_code_length("442071234567"), country_code_length("35312345")
    (1, 2, 3)
    """
    if digits[:1] in ("1", "7"):
        return 1
    return 2 if digits[:2] in _TWO_DIGIT_CODES else 3


def split_phone(value: str) -> tuple[str, str]:
    """(kept prefix: international marker and country code, rest to tokenize)."""
    match = _INTERNATIONAL.match(value)
    if not match:
        return "", value
    _marker, run = match.group(1), match.group(2)
    # "+44 20 ...": a short first digit run is the country code itself.
    code = country_code_length(run) if len(run) > 3 else len(run)
    cut = match.start(2) + code
    return value[:cut], value[cut:]


@strategy("phone", types={"text"}, unique="bijective")
def phone(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """A phone number with the same format and country code, other digits tokenized (keyed bijection).

    Separators, brackets, spaces, ``ext.`` and the leading ``+44``/``0044`` stay; every
    other digit is replaced by a keyed format-preserving bijection, so the column stays
    unique and the same number masks the same everywhere (also inside free text with
    ``regex``). Example: ``+1-415-555-0142`` becomes e.g. ``+1-982-071-5531``.
    """
    text = str_objects(values)
    return _series(in_batches(text, lambda part: _mask_phones(ctx, part)), values)


def _mask_phones(ctx: StrategyContext, text: np.ndarray) -> np.ndarray:
    """:func:`phone` over one batch: ASCII numbers as character matrices, the others one by one."""
    n = len(text)
    if n == 0:
        return np.empty(0, dtype=object)
    lengths = np.fromiter(map(len, text), dtype=np.int64, count=n)
    width = max(1, int(lengths.max()))
    codes = np.zeros((n, width + 3), dtype=np.uint32)  # three zero columns: every scan below stops
    codes[:, :width] = np.array(text, dtype=f"U{width}").view(np.uint32).reshape(n, width)
    # Non-ASCII text (Unicode digits and spaces, which the pattern's \d and \s also match) and
    # NUL characters (lost in fixed-width strings) take the per-value path.
    odd = (codes[:, :width].max(axis=1) > 127) | (np.count_nonzero(codes[:, :width], axis=1) != lengths)
    out = np.empty(n, dtype=object)
    if odd.any():
        parts = [split_phone(v) for v in text[odd]]
        prefixes = np.array([p for p, _ in parts], dtype=object)
        rests = np.array([r for _, r in parts], dtype=object)
        out[odd] = prefixes + tokenize_text(ctx.key, ctx.domain, rests, letters=False)
    rows = np.flatnonzero(~odd)
    if len(rows) == 0:
        return out
    codes, lengths = (codes, lengths) if len(rows) == n else (codes[rows], lengths[rows])
    cut = phone_cuts(codes.astype(np.uint8))
    # The rest of every number after its cut, shifted to column 0 (zeros after its end).
    columns = np.minimum(cut[:, None] + np.arange(width), width + 2)
    rest = np.take_along_axis(codes, columns, axis=1)
    masked = tokenize_codes(ctx.key, ctx.domain, rest, lengths - cut, letters=False)
    np.put_along_axis(codes, columns, masked, axis=1)
    out[rows] = code_objects(codes[:, :width], lengths)
    return out


_SPACE = np.zeros(256, dtype=bool)  # what \s matches below 128: str.isspace()
_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True
_TWO_DIGIT = np.zeros(100, dtype=bool)
_TWO_DIGIT[[int(code) for code in _TWO_DIGIT_CODES]] = True
_ONE_DIGIT = np.zeros(10, dtype=bool)
_ONE_DIGIT[[1, 7]] = True


def phone_cuts(codes: np.ndarray) -> np.ndarray:
    """Where :func:`split_phone` cuts each ASCII value, from code points (values, width) that end
    in at least three zero columns: the length of the kept prefix, 0 without a marker.

    >>> text = np.array(["+44 20 7946 0018", "0049 30 1234", "555-0142", "+1234"])
    >>> codes = np.zeros((4, 19), dtype=np.uint32)
    >>> codes[:, :16] = text.astype("U16").view(np.uint32).reshape(4, 16)
    >>> phone_cuts(codes).tolist() == [len(split_phone(v)[0]) for v in text]
    True
    """
    codes = codes.astype(np.uint8, copy=False)  # ASCII: one byte a character
    n, width = codes.shape
    rows = np.arange(n)
    position = np.arange(width)[None, :]
    space = _SPACE[codes]
    start = np.argmin(space, axis=1)  # the first character that is not a space
    first = codes[rows, start]
    plus = first == ord("+")
    zeros = (first == ord("0")) & (codes[rows, np.minimum(start + 1, width - 1)] == ord("0"))
    after = start + np.where(plus, 1, np.where(zeros, 2, 0))
    run = np.argmin(space | (position < after[:, None]), axis=1)  # the digit run starts after more spaces
    digit = (codes >= ord("0")) & (codes <= ord("9"))
    run_end = np.argmin(digit | (position < run[:, None]), axis=1)
    run_length = run_end - run
    d0 = codes[rows, run].astype(np.int64) - ord("0")
    d1 = codes[rows, np.minimum(run + 1, width - 1)].astype(np.int64) - ord("0")
    long_code = np.where(_ONE_DIGIT[np.clip(d0, 0, 9)], 1,
                         np.where(_TWO_DIGIT[np.clip(d0 * 10 + d1, 0, 99)], 2, 3))
    code = np.where(run_length > 3, long_code, run_length)
    return np.where((plus | zeros) & (run_length > 0), run + code, 0).astype(np.int64)


# -- IBAN --------------------------------------------------------------------------------

_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{8,30}$")


def iban_check_digits(country: str, bban: str) -> str:
    """The two ISO 13616 check digits of an IBAN (mod 97).

    >>> iban_check_digits("GB", "WEST12345698765432")
    '82'
    """
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"


@strategy("iban", types={"text"}, unique="bijective")
def iban(values: pd.Series, ctx: StrategyContext) -> pd.Series:
    """An IBAN with the same country, length and layout, body tokenized and valid check digits.

    The account part (BBAN) goes through ``tokenize`` (letters stay letters, digits stay
    digits), then the two check digits are recomputed (mod 97), so the result passes
    IBAN validation and distinct IBANs stay distinct. Values that are not IBANs are
    tokenized whole. Example: ``GB82 WEST 1234 5698 7654 32`` becomes e.g. ``GB47 QHZR 8012 ...``.
    """
    text = values.astype(str).to_numpy(dtype=object)
    compact = np.array([re.sub(r"[\s-]", "", v).upper() for v in text], dtype=object)
    valid = np.fromiter((bool(_IBAN.match(v)) for v in compact), dtype=bool, count=len(compact))
    out = np.empty(len(text), dtype=object)
    if (~valid).any():
        out[~valid] = tokenize_text(ctx.key, ctx.domain, text[~valid])
    if valid.any():
        ibans = compact[valid]
        bbans = np.array([v[4:] for v in ibans], dtype=object)
        countries = np.array([v[:2] for v in ibans], dtype=object)
        masked = np.empty(len(ibans), dtype=object)
        for country in np.unique(countries):
            rows = countries == country
            masked[rows] = tokenize_text(ctx.key, f"{ctx.domain}/{country}", bbans[rows])
        rendered = []
        for original, iban_in, new_bban in zip(text[valid], ibans, masked, strict=True):
            country = iban_in[:2]
            # Keep a wrong check of the input wrong by the same offset: the map stays injective.
            offset = (int(iban_in[2:4]) - int(iban_check_digits(country, iban_in[4:]))) % 100
            check = f"{(int(iban_check_digits(country, new_bban)) + offset) % 100:02d}"
            rendered.append(_layout(original, country + check + new_bban))
        out[valid] = rendered
    return _series(out, values)


def _layout(original: str, compact: str) -> str:
    """``compact`` with the spaces/dashes of ``original`` (and its letter case when lower)."""
    chars = iter(compact)
    out = "".join(c if c in " -\t" else next(chars) for c in original)
    return out.lower() if original.islower() else out
