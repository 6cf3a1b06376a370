"""Payment card numbers: the Luhn check and the reserved test ranges.

Masked card numbers are drawn only from issuer prefixes that payment processors publish
for testing (sandbox BINs); the post-load card sweep treats any other Luhn-valid 13-19
digit number as a possible real card.

Example:
    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    >>> is_test_card("4111111111111111")
    True
    >>> luhn_valid_many(["4111111111111111", "4111111111111112", "79927398713", "7"]).tolist()
    [True, False, True, False]
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# Published sandbox/test BIN prefixes (Visa, Mastercard, Amex, Discover, JCB, Diners).
TEST_PREFIXES: tuple[str, ...] = (
    "411111", "400000", "424242", "401288",
    "555555", "510510", "222300",
    "378282", "371449",
    "601111", "353011", "305693",
)
BRAND_TEST_PREFIX = {"4": "411111", "5": "555555", "2": "222300", "3": "378282", "6": "601111"}


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """Whether a digit string passes the Luhn check."""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 2:
        return False
    return luhn_check_digit(digits[:-1]) == digits[-1]


def is_test_card(digits: str) -> bool:
    """Whether a card number lies in a reserved test range."""
    return digits.startswith(TEST_PREFIXES)


_DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int64)  # a digit doubled, its digits summed


def luhn_valid_many(numbers: Sequence[str] | np.ndarray) -> np.ndarray:
    """:func:`luhn_valid` of many strings of ASCII digits at once: numbers of one length become the rows
    of a digit matrix, and the check runs over its columns (other strings fall back to :func:`luhn_valid`)."""
    items = list(numbers)
    out = np.zeros(len(items), dtype=bool)
    if not items:
        return out
    plain = np.fromiter((v.isascii() and v.isdigit() for v in items), dtype=bool, count=len(items))
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    array = np.asarray(items, dtype=object)
    for length in np.unique(lengths[plain]).tolist():
        rows = np.flatnonzero(plain & (lengths == length))
        if length < 2:
            continue
        digits = (np.frombuffer("".join(array[rows].tolist()).encode("ascii"), dtype=np.uint8)
                  .reshape(len(rows), length).astype(np.int64) - 48)
        doubled = np.zeros(length, dtype=bool)
        doubled[-2::-2] = True  # every second digit from the right, the check digit's neighbour first
        total = digits[:, ~doubled].sum(axis=1) + _DOUBLED[digits[:, doubled]].sum(axis=1)
        out[rows] = total % 10 == 0
    for i in np.flatnonzero(~plain).tolist():
        out[i] = luhn_valid(items[i])
    return out
