"""Payment card numbers: the Luhn check and the reserved test ranges.

Masked card numbers are drawn only from issuer prefixes that payment processors publish
for testing (sandbox BINs); the post-load card sweep treats any other Luhn-valid 13-19
digit number as a possible real card.

Example:
    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    >>> is_test_card("4111111111111111")
    True
"""

from __future__ import annotations

import re

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
