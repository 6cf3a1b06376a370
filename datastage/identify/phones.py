"""Phone numbers: the shape people write them in, validated by ``phonenumbers`` on a sample.

The shape test runs over the whole batch: digits with the separators people use, 7 to 15
digits, and not a date, a decimal, an IP address or an SSN (``999-33-2827`` is an SSN, never
a phone). Without a column name saying "phone" a value must also be *structured* (a ``+``,
a ``00`` prefix, brackets or separators between digit groups).

Then ``phonenumbers`` validates the candidates: numbers with a country code as written,
others against the numbering plans of the supported countries. Validation parses each
value, so it runs on at most :data:`VALIDATE` distinct candidates of a batch; when a batch
has more, the rest are judged by the share of the validated ones that passed (a column of
phone numbers stays a column of phone numbers; a column of part numbers does not become one).
Where the column name says "phone", the shape is enough (the names people give phone
columns are reliable; the numbers in them often are not, e.g. 555 numbers in test data).

Example:
    >>> values = pd.Series(["+44 20 7946 0958", "(415) 555-2671", "999-33-2827", "2024-01-31", "12.50"])
    >>> mask(values, hinted=False).tolist()
    [True, True, False, False, False]
    >>> is_phone("+49 30 901820"), is_phone("020 7946 0958"), is_phone("123-456")
    (True, True, False)
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import phonenumbers

from datastage.identify import reference as pii
from datastage.identify.batch import Batch, as_batch

VALIDATE = 200  # distinct candidates validated per batch
# Numbering plans tried for a number written without its country code, most common first.
REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "PT", "SE", "DK", "NO", "FI", "PL", "CZ", "IE", "BE",
           "AT", "CH", "CA", "AU")
SSN_SHAPE = r"\d{3}-\d{2}-\d{4}"


def is_phone(text: str) -> bool:
    """Whether ``text`` is a valid number in its country's (or a supported country's) numbering plan."""
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15:
        return False
    stripped = text.strip()
    try:
        if stripped.startswith(("+", "00")):
            number = stripped if stripped.startswith("+") else "+" + stripped[2:]
            return bool(phonenumbers.is_valid_number(phonenumbers.parse(number, None)))
        for region in REGIONS:
            if phonenumbers.is_valid_number(phonenumbers.parse(stripped, region)):
                return True
    except phonenumbers.NumberParseException:
        return False
    return False


def shape_mask(values: pd.Series | Batch, hinted: bool) -> np.ndarray:
    """Values shaped like a phone number (``hinted``: the column name says phone, so fewer digits do)."""
    batch = as_batch(values)
    count = batch.digits
    shaped = (count >= (7 if hinted else 8)) & (count <= 15)
    if not shaped.any():
        return shaped
    shaped &= batch.fullmatch(pii.PHONE_SHAPE, re.IGNORECASE)
    if not shaped.any():
        return shaped
    shaped &= ~batch.contains(rf"^(?:{pii.DATE_SHAPE.pattern})") & ~batch.fullmatch(r"-?\d+[.,]\d{1,3}") \
        & ~batch.fullmatch(pii.IPV4) & ~batch.fullmatch(SSN_SHAPE)
    if not hinted:
        shaped &= batch.contains(r"^\+|^00|\(|\d[\s.\-/]\d")
    return shaped


def mask(values: pd.Series | Batch, hinted: bool = False) -> np.ndarray:
    """Phone numbers among ``values``: shaped, and (unless ``hinted``) validated as described above."""
    batch = as_batch(values)
    shaped = shape_mask(batch, hinted)
    if hinted or not shaped.any():
        return shaped
    where = np.flatnonzero(shaped)
    checked = where[:VALIDATE]
    valid = np.fromiter((is_phone(str(v)) for v in batch.values[checked]), dtype=bool, count=len(checked))
    out = np.zeros(len(batch), dtype=bool)
    out[checked[valid]] = True
    if len(where) > VALIDATE and valid.mean() >= 0.5:
        out[where[VALIDATE:]] = True  # the validated ones were phone numbers: so are the others of their shape
    return out
