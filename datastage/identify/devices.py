"""Vehicle and device identifiers: VINs, licence plates, IMEIs, MAC addresses, UDIs and serial numbers.

Formats with a check or a distinctive layout count without a column name: a VIN whose
check digit (ISO 3779, position 9) is right, a 15-digit IMEI that passes Luhn (and is not a
payment card), a MAC address in colon, hyphen or dot notation, a GS1 UDI that starts
``(01)`` and 14 digits, a HIBCC UDI (``+`` and a labeler code), and the plate layouts of
the UK, France and Germany. Plates of other countries and serial numbers have no layout
anyone can tell from a product code, so they count only where the column name says so.

Example:
    >>> values = pd.Series(["1M8GDM9AXKP042788", "490154203237518", "00:1A:2B:3C:4D:5E",
    ...                     "(01)51022222233936(11)141231(17)150707(10)A213B1(21)1234", "AB-123-CD", "hello"])
    >>> {k: m.tolist() for k, m in masks(values).items() if m.any()}
    {'vehicle_id': [True, False, False, False, True, False], 'device_id': [False, True, True, True, False, False]}
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
from stdnum import imei as stdnum_imei

from datastage.identify import reference as pii
from datastage.identify.batch import Batch, as_batch

VIN = r"[A-HJ-NPR-Z0-9]{17}"
_VIN_VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9))),
               **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9, **dict(zip("STUVWXYZ", range(2, 10)))}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
PLATES = (
    r"[A-Z]{2}\d{2} ?[A-Z]{3}",  # UK (2001 onwards)
    r"[A-Z]{2}-\d{3}-[A-Z]{2}",  # France (SIV)
    r"[A-ZÄÖÜ]{1,3}[- ][A-Z]{1,2} ?\d{1,4}[EH]?",  # Germany
)
PLATE_WITH_HINT = r"(?=.*\d)(?=.*[A-Z])[A-Z0-9]{1,4}(?:[ -·]?[A-Z0-9]{1,4}){0,3}|\d{3,8}"
MAC = r"[0-9A-F]{2}([:-])(?:[0-9A-F]{2}\1){4}[0-9A-F]{2}|[0-9A-F]{4}\.[0-9A-F]{4}\.[0-9A-F]{4}"
UDI_GS1 = r"\(01\)\d{14}.*"
UDI_GS1_PLAIN = r"01\d{14}(?:(?:10|11|17|21)[0-9A-Z]+)*"
UDI_HIBCC = r"\+[A-Z][A-Z0-9]{3}[A-Z0-9]{1,18}(?:/[A-Z0-9$+%./ -]*)?"
IMEI = r"\d{15}|\d{2}-\d{6}-\d{6}-\d|\d{2} \d{6} \d{6} \d"
SERIAL = r"(?=(?:[^0-9]*[0-9]){2})[A-Z0-9][A-Z0-9./_-]{3,40}[A-Z0-9]"
KINDS = ("vehicle_id", "device_id")


def vin_valid(vin: str) -> bool:
    """The ISO 3779 check digit (position 9) of a 17-character VIN.

    >>> vin_valid("1M8GDM9AXKP042788"), vin_valid("1M8GDM9A1KP042788")
    (True, False)
    """
    if len(vin) != 17 or any(c not in _VIN_VALUES for c in vin):
        return False
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS))
    check = total % 11
    return vin[8] == ("X" if check == 10 else str(check))


def _validated(values: np.ndarray, shaped: np.ndarray, check: Callable[[str], bool]) -> np.ndarray:
    """``shaped`` narrowed to the values ``check`` accepts (called on the shaped values only)."""
    if shaped.any():
        where = np.flatnonzero(shaped)
        shaped[where] = np.fromiter((check(v.strip().upper()) for v in values[where]), dtype=bool, count=len(where))
    return shaped


def _imei(value: str) -> bool:
    digits = "".join(c for c in value if c.isdigit())
    return bool(stdnum_imei.is_valid(digits)) and not pii.plausible_card(digits)


def _any(patterns: tuple[str, ...]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


def masks(values: pd.Series | Batch, hints: frozenset[str] | set[str] = frozenset()) -> dict[str, np.ndarray]:
    """Per kind (``vehicle_id``, ``device_id``): which values are one (plates and serials only with ``hints``)."""
    batch = as_batch(values)
    if not len(batch):
        return {}
    vehicle = "vehicle_id" in hints
    device = "device_id" in hints
    flags = re.IGNORECASE
    some_digits = batch.digits >= 1
    lengths = batch.lengths
    vin = batch.fullmatch_where(some_digits & (lengths >= 17) & (lengths <= 24), rf"\s*{VIN}\s*", flags)
    if not vehicle:
        vin = _validated(batch.values, vin, vin_valid)
    plates = batch.fullmatch_where(lengths <= 14, rf"\s*(?:{_any(PLATES)})\s*", flags)
    if vehicle:
        plates |= batch.fullmatch(rf"\s*(?:{PLATE_WITH_HINT})\s*", flags)
    imei = _validated(batch.values, batch.fullmatch_where(batch.digits == 15, rf"\s*(?:{IMEI})\s*"), _imei)
    mac = batch.fullmatch_where((lengths >= 14) & (lengths <= 19), rf"\s*(?:{MAC})\s*", flags)
    udi = batch.fullmatch_where((batch.count_of("(") > 0) | (batch.count_of("+") > 0),
                                rf"\s*(?:{UDI_GS1}|{UDI_HIBCC})\s*", flags)
    if device:
        udi |= batch.fullmatch(rf"\s*(?:{UDI_GS1_PLAIN}|{SERIAL}|[0-9A-F]{{12}}|[0-9A-F]{{14}})\s*", flags)
    return {"vehicle_id": (vin | plates) & some_digits, "device_id": (imei | mac | udi) & some_digits}
