"""Reference data and value patterns for recognising personal data.

Used by the scanner (does a sampled column hold personal data?) and by the leak check
(which identifier-like tokens does a text hold?), so both recognise the same things.
Name dictionaries come from Faker's locale data; nothing here ever stores a value seen
in a database.

Example:
    >>> is_first_name("Penelope"), is_last_name("Smith"), is_first_name("Dinosaur")
    (True, True, False)
    >>> iban_valid("GB82 WEST 1234 5698 7654 32"), plausible_card("4532015112830366")
    (True, True)
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from functools import lru_cache

import numpy as np

from datastage.cards import luhn_valid, luhn_valid_many

NAME_LOCALES = ("en", "en_US", "en_GB", "en_IE", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "pt_PT",
                "sv_SE", "da_DK", "no_NO", "fi_FI", "pl_PL", "cs_CZ")

EMAIL = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
EMAIL_RE = re.compile(EMAIL)
# Phone numbers: digits with the separators people write them with; the digit count is checked separately.
PHONE_SHAPE = r"(?:\+|00)?[\d(][\d\s().\-/]{5,22}\d(?:\s*(?:x|ext\.?)\s*\d{1,6})?"
PHONE_IN_TEXT = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)[\s.-]?|\d{2,5}[\s.-])\d{2,5}[\s.-]\d{2,5}"
                           r"(?:[\s.-]\d{2,5})?(?![\w])")
DATE_SHAPE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
CARD_SHAPE = r"\d(?:[ -]?\d){12,18}"
# Card numbers as people and systems write them: contiguous, or in groups (4-4-4-4[-3], 4-6-5, 4-6-4).
# (It starts with a digit, so the regex engine can skip ahead to digits; the look-behind then
# checks the character before that first digit.)
CARD_IN_TEXT = re.compile(r"\d(?<![\d.,-]\d)(?:\d{12,18}|\d{3}(?:[ -]\d{4}){2}[ -]\d{1,7}"
                          r"|\d{3}(?:[ -]\d{4}){3}[ -]?\d{1,3}|\d{3}[ -]\d{6}[ -]\d{4,5})(?![\d])")
IBAN = r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}"
IBAN_IN_TEXT = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
SSN = r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}"
SSN_RE = re.compile(rf"(?<![\d-]){SSN}(?![\d-])")
UK_NI = r"(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]"
UK_NI_RE = re.compile(rf"\b{UK_NI}\b")
IPV4 = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:/\d{1,2})?"
IPV6 = r"(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:/\d{1,3})?"
SECRET_FORMATS = r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|\$argon2(?:id|i|d)\$\S+|\$[156]\$\S+\$\S+|pbkdf2_\S+|scrypt:\S+"  # noqa: S105
HEX_DIGEST = r"[a-fA-F0-9]{32}|[a-fA-F0-9]{40}|[a-fA-F0-9]{64}|[a-fA-F0-9]{128}"
UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"
OTHER_POSTCODES = r"\d{5}(?:-\d{4})?|\d{4} ?[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d|\d{3}-\d{4}|\d{2}-\d{3}|\d{4,6}"
GENDER_VALUES = frozenset({"m", "f", "w", "d", "x", "male", "female", "man", "woman", "diverse", "non-binary",
                           "nonbinary", "other", "männlich", "weiblich", "homme", "femme", "u", "unknown"})
WORD_RE = re.compile(r"[^\W\d_]+")

STREET_WORDS = (
    "street", "st", "avenue", "ave", "road", "rd", "lane", "ln", "drive", "dr", "boulevard", "blvd", "way", "court",
    "ct", "place", "pl", "terrace", "square", "sq", "parkway", "pkwy", "highway", "hwy", "circle", "cir", "crescent",
    "close", "trail", "alley", "row", "plaza", "route", "suite", "apt", "apartment", "unit", "floor",
    "straße", "strasse", "str", "weg", "gasse", "platz", "allee", "ring", "damm", "rue", "chemin", "impasse",
    "calle", "avenida", "paseo", "via", "viale", "piazza", "corso", "laan", "straat", "gracht", "plein", "gatan",
    "vägen", "ulica", "rua",
)

# Published issuer ranges (IIN) and the lengths each brand issues; anything else is not a card number.
_CARD_BRANDS: tuple[tuple[tuple[str, ...], tuple[int, ...]], ...] = (
    (("4",), (13, 16, 19)),
    (tuple(str(p) for p in range(51, 56)) + tuple(str(p) for p in range(2221, 2721)), (16,)),
    (("34", "37"), (15,)),
    (("6011", "65", *tuple(str(p) for p in range(644, 650))), (16, 17, 18, 19)),
    (tuple(str(p) for p in range(3528, 3590)), (16, 17, 18, 19)),
    (("300", "301", "302", "303", "304", "305", "36", "38", "39"), (14, 15, 16, 17, 18, 19)),
    (("62",), (16, 17, 18, 19)),
    (("50", "56", "57", "58", "67", "63"), (12, 13, 14, 15, 16, 17, 18, 19)),
)


def words_of(text: str) -> frozenset[str]:
    """The blank-separated words of ``text`` (for word lists written as one string)."""
    return frozenset(text.split())


def plausible_card(digits: str) -> bool:
    """Luhn-valid and inside a published issuer range with a length that issuer uses."""
    if not digits.isdigit() or not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return False
    return any(digits.startswith(prefixes) and len(digits) in lengths for prefixes, lengths in _CARD_BRANDS)


def plausible_cards(numbers: list[str]) -> np.ndarray:
    """:func:`plausible_card` of many digit strings: the Luhn check over all of them at once
    (:func:`~datastage.cards.luhn_valid_many`), the issuer ranges only for those that pass.

    >>> plausible_cards(["4539148803436467", "4539148803436468", "1234"]).tolist()
    [True, False, False]
    """
    lengths = np.fromiter(map(len, numbers), dtype=np.int64, count=len(numbers))
    out = (lengths >= 13) & (lengths <= 19)
    if out.any():
        where = np.flatnonzero(out)
        out[where] = luhn_valid_many([numbers[i] for i in where.tolist()])
    for i in np.flatnonzero(out).tolist():
        out[i] = plausible_card(numbers[i])
    return out


def iban_valid(text: str) -> bool:
    """ISO 13616 check (mod 97) of an IBAN, spaces allowed."""
    compact = text.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def fold(text: str) -> str:
    """Lower-case without accents, for dictionary look-ups."""
    if text.isascii():
        return text.strip().lower()
    normalized = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in normalized if not unicodedata.combining(c))


FAKER_KINDS = ("person", "lorem", "address")


@lru_cache(maxsize=1)
def faker_locales() -> frozenset[str]:
    """The locales the installed Faker ships: the only locale names a rules file may use."""
    from faker.config import AVAILABLE_LOCALES

    return frozenset(AVAILABLE_LOCALES)


def faker_provider_class(kind: str, locale: str) -> type | None:
    """Faker's ``kind`` provider class for ``locale`` (both checked against allowlists), or None."""
    if kind not in FAKER_KINDS or locale not in faker_locales():
        return None
    try:
        module = importlib.import_module(f"faker.providers.{kind}.{locale}")
    except ImportError:
        return None
    provider = getattr(module, "Provider", None)
    return provider if isinstance(provider, type) else None


def _names(prefix: str) -> frozenset[str]:
    words: set[str] = set()
    for locale in NAME_LOCALES:
        provider = faker_provider_class("person", locale)
        if provider is None:
            continue
        for attr in dir(provider):
            if attr.startswith(prefix):  # first_names, first_names_female, last_names_male ...
                values = getattr(provider, attr)
                if isinstance(values, dict | tuple | list):
                    words.update(fold(str(v)) for v in values)
    return frozenset(w for w in words if w)


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """Given names of the locales in :data:`NAME_LOCALES` (folded)."""
    return _names("first_names")


@lru_cache(maxsize=1)
def last_names() -> frozenset[str]:
    """Family names of the locales in :data:`NAME_LOCALES` (folded)."""
    return _names("last_names")


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Everyday words (Faker's lorem lists), which never make a name distinctive."""
    words: set[str] = set()
    for locale in ("en_US", "la", "de_DE", "fr_FR"):
        provider = faker_provider_class("lorem", locale)
        if provider is None:
            continue
        words.update(fold(w) for w in getattr(provider, "word_list", ()))
    return frozenset(words)


def is_first_name(text: str) -> bool:
    return fold(text) in first_names()


def is_last_name(text: str) -> bool:
    return fold(text) in last_names()


def distinctive_name(word: str) -> bool:
    """A name token no fake-name dictionary or common-word list contains (so a fake never produces it)."""
    folded = fold(word)
    return (len(folded) >= 3 and folded not in first_names() and folded not in last_names()
            and folded not in common_words())


STREET_RE = re.compile(r"(?:^\d+[a-z]?(?:[-/]\d+)?,?\s+\S.*|.*\S\s+\d+[a-z]?(?:[-/]\d+)?)$", re.IGNORECASE)


@lru_cache(maxsize=1)
def street_words() -> frozenset[str]:
    """Street-type words: the list above and Faker's street suffixes."""
    words = set(STREET_WORDS)
    for locale in ("en_US", "en_GB", "en_AU", "en_CA"):
        provider = faker_provider_class("address", locale)
        if provider is None:
            continue
        words.update(fold(w) for w in getattr(provider, "street_suffixes", ()))
    return frozenset(words)
