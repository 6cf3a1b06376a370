"""The taxonomy of personal data: every kind of identifier the product recognises.

Each kind names its classification, the HIPAA Safe Harbor identifier category it falls
under (45 CFR 164.514(b)(2)(i), letters A-R) and, for special-category data, the GDPR
article 9/10 category. ``text_strategy`` is the rule a text column of that kind gets in a
proposed rules file, and what ``scrub`` replaces a span of that kind with, so a value
masks the same way in a column and inside free text.

Example:
    >>> KINDS["drivers_licence"].hipaa, KINDS["drivers_licence"].text_strategy
    ('K', 'tokenize')
    >>> KINDS["phone"].text_strategy, KINDS["phone"].numeric_strategy
    ('phone', 'tokenize')
    >>> HIPAA_CATEGORIES["K"]
    'certificate/license numbers'
    >>> sorted(k.name for k in KINDS.values() if k.gdpr == "health")
    ['health_condition', 'medication']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Classification = Literal["direct_identifier", "quasi_identifier", "sensitive", "non_personal", "unknown"]
CLASSIFICATIONS: tuple[str, ...] = ("direct_identifier", "quasi_identifier", "sensitive", "non_personal", "unknown")
PERSONAL: frozenset[str] = frozenset({"direct_identifier", "quasi_identifier", "sensitive"})

HIPAA_CATEGORIES: dict[str, str] = {
    "A": "names",
    "B": "geographic subdivisions smaller than a state",
    "C": "dates (except year) related to an individual; ages over 89",
    "D": "telephone numbers",
    "E": "fax numbers",
    "F": "e-mail addresses",
    "G": "social security numbers",
    "H": "medical record numbers",
    "I": "health plan beneficiary numbers",
    "J": "account numbers",
    "K": "certificate/license numbers",
    "L": "vehicle identifiers and serial numbers, including license plates",
    "M": "device identifiers and serial numbers",
    "N": "web URLs",
    "O": "IP addresses",
    "P": "biometric identifiers",
    "Q": "full-face photographs and comparable images",
    "R": "any other unique identifying number, characteristic or code",
}

GDPR_CATEGORIES: dict[str, str] = {
    "racial_or_ethnic_origin": "racial or ethnic origin (art. 9)",
    "political_opinions": "political opinions (art. 9)",
    "religious_beliefs": "religious or philosophical beliefs (art. 9)",
    "trade_union_membership": "trade union membership (art. 9)",
    "genetic": "genetic data (art. 9)",
    "biometric": "biometric data (art. 9)",
    "health": "data concerning health (art. 9)",
    "sex_life": "sex life or sexual orientation (art. 9)",
    "criminal": "criminal convictions and offences (art. 10)",
}


@dataclass(frozen=True)
class IdentifierKind:
    """One kind of personal data and how it is classified and masked."""

    name: str
    label: str
    classification: Classification
    hipaa: str | None = None  # Safe Harbor letter, see HIPAA_CATEGORIES
    gdpr: str | None = None  # special category, see GDPR_CATEGORIES
    text_strategy: str | None = None  # rule for a text column of this kind (None: a person decides)

    @property
    def numeric_strategy(self) -> str | None:
        """The rule for a number column of this kind (None: a person decides), see ``NUMERIC_STRATEGIES``."""
        return NUMERIC_STRATEGIES.get(self.name)

    def categories(self) -> list[str]:
        """Human-readable taxonomy labels, e.g. for the report."""
        out = []
        if self.hipaa:
            out.append(f"HIPAA ({self.hipaa}) {HIPAA_CATEGORIES[self.hipaa]}")
        if self.gdpr:
            out.append(f"GDPR {GDPR_CATEGORIES[self.gdpr]}")
        return out


_D: Classification = "direct_identifier"
_Q: Classification = "quasi_identifier"
_S: Classification = "sensitive"
KINDS: dict[str, IdentifierKind] = {k.name: k for k in (
    IdentifierKind("first_name", "given name", _D, "A", None, "person.first_name"),
    IdentifierKind("last_name", "family name", _D, "A", None, "person.last_name"),
    IdentifierKind("full_name", "person's name", _D, "A", None, "person.full_name"),
    IdentifierKind("username", "user name", _D, "R", None, "person.username"),
    IdentifierKind("email", "e-mail address", _D, "F", None, "email"),
    IdentifierKind("phone", "phone number", _D, "D", None, "phone"),
    IdentifierKind("fax", "fax number", _D, "E", None, "phone"),
    IdentifierKind("street_address", "street address", _D, "B", None, "fake.street_address"),
    IdentifierKind("city", "city", _Q, "B", None, "fake.city"),
    IdentifierKind("postcode", "postcode", _Q, "B", None, "generalize"),
    IdentifierKind("geo_coordinates", "geographic coordinates", _Q, "B", None, "noise"),
    IdentifierKind("date_of_birth", "date of birth", _Q, "C", None, "generalize"),
    IdentifierKind("event_date", "date of an event in a person's life", _Q, "C", None, "date_shift"),
    IdentifierKind("age", "age", _Q, "C", None, "generalize"),
    IdentifierKind("national_id", "national identification or social security number", _D, "G", None,
                   "tokenize"),
    IdentifierKind("tax_id", "tax identification number", _D, "R", None, "tokenize"),
    IdentifierKind("passport", "passport number", _D, "K", None, "tokenize"),
    IdentifierKind("drivers_licence", "driver's licence number", _D, "K", None, "tokenize"),
    IdentifierKind("licence_number", "certificate or licence number", _D, "K", None, "tokenize"),
    IdentifierKind("medical_record_number", "medical record number", _D, "H", None, "tokenize"),
    IdentifierKind("health_plan_id", "health plan member or beneficiary number", _D, "I", None, "tokenize"),
    IdentifierKind("account_number", "account number", _D, "J", None, "tokenize"),
    IdentifierKind("card_number", "payment card number", _D, "J", None, "card_number"),
    IdentifierKind("iban", "bank account (IBAN)", _D, "J", None, "iban"),
    IdentifierKind("vehicle_id", "vehicle identifier or licence plate", _D, "L", None, "tokenize"),
    IdentifierKind("device_id", "device identifier or serial number", _D, "M", None, "tokenize"),
    IdentifierKind("url", "personal web address", _D, "N", None, "hash"),
    IdentifierKind("ip_address", "IP address", _D, "O", None, "tokenize"),
    IdentifierKind("biometric", "biometric identifier", _S, "P", "biometric", "null"),
    IdentifierKind("photo", "photo of a person", _D, "Q", "biometric", "null"),
    IdentifierKind("other_identifier", "other unique identifying number", _D, "R", None, "tokenize"),
    IdentifierKind("gender", "gender", _Q, None, None, None),
    IdentifierKind("ethnicity", "racial or ethnic origin", _S, None, "racial_or_ethnic_origin", None),
    IdentifierKind("political_opinion", "political opinion", _S, None, "political_opinions", None),
    IdentifierKind("religion", "religious or philosophical belief", _S, None, "religious_beliefs", None),
    IdentifierKind("trade_union", "trade union membership", _S, None, "trade_union_membership", None),
    IdentifierKind("genetic", "genetic data", _S, None, "genetic", "null"),
    IdentifierKind("health_condition", "health data (condition, diagnosis)", _S, None, "health", None),
    IdentifierKind("medication", "health data (medication)", _S, None, "health", None),
    IdentifierKind("sexual_orientation", "sex life or sexual orientation", _S, None, "sex_life", None),
    IdentifierKind("criminal_record", "criminal convictions or offences", _S, None, "criminal", None),
    IdentifierKind("financial", "salary or other financial data", _S, None, None, None),
    IdentifierKind("secret", "password or secret", _S, None, None, "hash"),
    IdentifierKind("free_text", "free text containing personal data", _D, None, None, "scrub"),
    IdentifierKind("name_affix", "name prefix or suffix (title, honorific)", _Q, None, None, None),
)}

# Kinds a whole value or a span of free text can be recognised as without a column name.
VALUE_KINDS: tuple[str, ...] = (
    "email", "phone", "card_number", "iban", "national_id", "tax_id", "passport", "drivers_licence",
    "health_plan_id", "vehicle_id", "device_id", "ip_address", "url", "first_name", "last_name", "full_name",
    "street_address", "postcode", "secret",
)

# The rule a number column (integer, decimal, float) of a kind gets in a proposed rules file, where it
# differs from ``text_strategy`` (kinds not named here get no numeric rule: a person decides).
NUMERIC_STRATEGIES: dict[str, str] = {
    "phone": "tokenize", "fax": "tokenize", "postcode": "generalize", "geo_coordinates": "noise", "age": "generalize",
    "national_id": "tokenize", "tax_id": "tokenize", "passport": "tokenize", "drivers_licence": "tokenize",
    "licence_number": "tokenize", "medical_record_number": "tokenize", "health_plan_id": "tokenize",
    "account_number": "tokenize", "card_number": "tokenize", "vehicle_id": "tokenize", "device_id": "tokenize",
    "ip_address": "tokenize", "other_identifier": "tokenize", "financial": "noise", "secret": "tokenize",
    "biometric": "null", "genetic": "null",
}
