"""Identifier spans inside free text, found over a whole batch of values at once.

What is found: e-mail addresses, phone numbers, payment cards, IBANs, national ids (US SSNs, 9xx
ones too; UK NI numbers; the ids of other countries in the form people write them, checked with
python-stdnum), passport, licence, member and record numbers after a keyword (``passport no.
X1234567``, ``DL# S123-4567-8901``), IP addresses, the personal part of a URL (``/in/ann-lee``) and
people's names. A batch is joined into one text (``SEP`` between values, which no pattern matches),
each pattern runs once over the values that could hold a match, and every candidate is validated:
Luhn and issuer ranges for cards, mod 97 for IBANs, python-stdnum for national ids, phonenumbers for
phones. Where two candidates overlap the stronger kind wins (the e-mail address over the name in it).

Names come in three tiers. First the same row's names (``names``: the row's first, last or full
name values), in any case, with accents folded and digits attached (``Margorie48``); then the names
any row of the batch holds; then the name dictionaries: a capitalised given or family name that is
not an everyday word or a place, a ``First Last`` pair, and the capitalised word after a title
(``Dr.``, ``Mrs``, ``Herr`` ...). Text is split into words by letters and digits only, so accents,
CJK text, emoji and punctuation around a span never become part of it. A span is a pair of offsets
into its value: everything outside the spans stays as it was.

Example:
    >>> found = find_spans(["Mail ann@example.org, call +44 20 7946 0018. Dr. Peteuil saw Margorie48."],
    ...                    names=[pd.Series(["Margorie48"])])
    >>> [(kind, tier, text) for kind, tier, text in zip(found.kind, found.tier, found.texts(found.source))]
    [('email', '', 'ann@example.org'), ('phone', '', '+44 20 7946 0018'), ('name', 'dictionary', 'Peteuil'), \
('name', 'row', 'Margorie48')]
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import re2

from datastage.identify import reference as pii
from datastage.identify.batch import segment_sums
from datastage.identify.namewords import (
    ACRONYMS,
    EPONYM_NOUNS,
    FUNCTION_WORDS,
    PARTICLES,
    PLACE_PREFIXES,
    POSSESSIVE_BRANDS,
    ROLE_TITLES,
    TITLES,
    everyday_words,
    name_key,
    name_words,
    place_words,
)

SEP = "\x00"  # between the values of a batch; no pattern matches it
NUL_STANDIN = "\x01"  # a NUL inside a value, in the joined text only (one character for one: offsets hold)

NAME = "name"
KEYWORD_KINDS = ("passport", "drivers_licence", "licence_number", "health_plan_id", "medical_record_number",
                 "vehicle_id", "device_id")
SPAN_KINDS: tuple[str, ...] = ("email", "url", "iban", "card_number", "national_id", *KEYWORD_KINDS,
                               "ip_address", "phone", NAME)
"""Every kind a span can have, strongest first: an overlap goes to the earlier kind."""

# Latin letters (with the accented ones) and digits: what e-mail addresses and URLs are made of here,
# so a CJK or emoji character written right next to one never becomes part of it.
_LATIN = "A-Za-z0-9\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
EMAIL_TEXT = re.compile(rf"(?<![{_LATIN}_%+'.-])[{_LATIN}_%+'-]+(?:\.[{_LATIN}_%+'-]+)*"
                        rf"@[{_LATIN}](?:[{_LATIN}-]*[{_LATIN}])?(?:\.[{_LATIN}](?:[{_LATIN}-]*[{_LATIN}])?)*"
                        rf"\.[A-Za-z]{{2,}}(?![{_LATIN}-])")
# The same, in two halves around an "@" found by position: the local part ending there, the domain after it.
EMAIL_LOCAL = re.compile(rf"(?<![{_LATIN}_%+'.-])[{_LATIN}_%+'-]+(?:\.[{_LATIN}_%+'-]+)*$")
EMAIL_DOMAIN = re.compile(rf"@[{_LATIN}](?:[{_LATIN}-]*[{_LATIN}])?(?:\.[{_LATIN}](?:[{_LATIN}-]*[{_LATIN}])?)*"
                          rf"\.[A-Za-z]{{2,}}(?![{_LATIN}-])")
URL_TEXT = re.compile(rf"(?:https?://|www\.)[{_LATIN}\-._~:/?#\[\]@!$&()*+,;=%']+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]'"
PERSONAL_URL_PART = re.compile(r"/(?:in|users?|u|profiles?|people|members?|~|@)/([^/?#\s]{2,})|/[~@]([^/?#\s]{2,})"
                               r"|[?&](?:user(?:name)?|uid|login|name|member)=([^&#\s]{2,})", re.IGNORECASE)
# (Patterns start with a character class and look behind after it: Python's engine then skips ahead.)
IBAN_TEXT = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])")
CARD_TEXT = re.compile(r"\d(?<![\d.,-]\d)(?:\d{12,18}|\d{3}(?:[ -]\d{4}){2}[ -]\d{1,7}"
                       r"|\d{3}(?:[ -]\d{4}){3}[ -]?\d{1,3}|\d{3}[ -]\d{6}[ -]\d{4,5})(?!\d)")
# National ids in the form people write them; each form has its validator (national_id_valid).
_NATIONAL_FORMS: tuple[tuple[str, str], ...] = (
    ("ssn", r"\d{3}-\d{2}-\d{4}"),
    ("nino", r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]"),
    ("es", r"\d{8}-?[A-Z]|[XYZ]-?\d{7}-?[A-Z]"),
    ("it", r"[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]"),
    ("fr", r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}"),
    ("nordic", r"(?:\d{2})?\d{6}[-+]\d{4}"),
    ("fi", r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]"),
    ("no", r"\d{6} ?\d{5}"),
    ("br", r"\d{3}\.\d{3}\.\d{3}-\d{2}"),
    ("ca", r"\d{3}[ -]\d{3}[ -]\d{3}"),
    ("be", r"\d{2}\.\d{2}\.\d{2}-\d{3}\.\d{2}"),
    ("ch", r"756\.\d{4}\.\d{4}\.\d{2}"),
    ("ie", r"\d{7}[A-W][A-IW]?"),
)
NATIONAL_ID_TEXT = re.compile(r"(?<![0-9A-Za-z.-])(?:"
                              + "|".join(f"(?P<{name}>{form})" for name, form in _NATIONAL_FORMS)
                              + r")(?![0-9A-Za-z-])")
# RE2 (linear time, no look-around) finds where a national id or an id keyword may start; the
# patterns above then confirm each place. Python's own engine would try every branch everywhere.
NATIONAL_ID_PREFILTER = re2.compile(r"(?:^|[^0-9A-Za-z.\-])((?:" + "|".join(form for _, form in _NATIONAL_FORMS)
                                    + r")(?:[^0-9A-Za-z\-]|$))")
_STDNUM = {"es": ("es.dni", "es.nie"), "it": ("it.codicefiscale",), "fr": ("fr.nir",),
           "nordic": ("se.personnummer", "dk.cpr"), "fi": ("fi.hetu",), "no": ("no.fodselsnummer",),
           "br": ("br.cpf",), "ca": ("ca.sin",), "be": ("be.nn",), "ch": ("ch.ssn",), "ie": ("ie.pps",)}
# Ids without a form of their own, recognised by the word before them.
_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("passport", r"passports?|passeport|pasaporte|reisepass|passaporto|paspoort|paszport"),
    ("drivers_licence", r"driv(?:er'?s?|ing)[ -]licen[cs]e|DLN?|führerschein|permis de conduire"
                        r"|carnet de conducir|patente di guida|rijbewijs|prawo jazdy"),
    ("vehicle_id", r"licen[cs]e plate|number plate|plate|registration|VIN|kennzeichen|immatriculation"),
    ("licence_number", r"licen[cs]e|permit|certificate"),
    ("national_id", r"SSN|ITIN|social security|national (?:id|identity|insurance)|NI|NINO|identity card|ID card"
                    r"|personal id|tax id|TIN|PESEL|BSN|CPR|NIR|personnummer|henkilötunnus|fødselsnummer|DNI|NIE"
                    r"|NIF|codice fiscale|steuer-?id|personalausweis|SIN|CPF|AHV|PPS|NHS"),
    ("health_plan_id", r"member(?:ship)?|subscriber|policy|insurance|beneficiary|medicare|medicaid"
                       r"|health plan|group"),
    ("medical_record_number", r"MRN|medical record|patient|chart"),
    ("device_id", r"serial|S/N|IMEI|UDI|device(?: id)?|MAC"),
)
_KEYWORD_GROUPS = "|".join(f"(?P<k{i}>{words})" for i, (_, words) in enumerate(_KEYWORDS))
KEYWORD_ID_TEXT = re.compile(
    rf"(?<![\w-])(?i:{_KEYWORD_GROUPS})(?![\w-])"
    r"(?i:\s*(?:(?:no|nr|num(?:ber)?|n[°º]|id|code)(?![^\W_])|#)\.?){0,2}(?i:\s+is(?![^\W_]))?\s*[:#=]?\s*"
    r"(?P<id>(?=[A-Za-z0-9-]*\d)[A-Za-z0-9](?:[A-Za-z0-9/-]*[A-Za-z0-9])?"
    r"(?:[ ](?=[A-Za-z0-9]*\d)[A-Za-z0-9]{2,6}(?![\w-]))*)(?![\w-])")
KEYWORD_PREFILTER = re2.compile(r"\b(?i:" + "|".join(words for _, words in _KEYWORDS) + r")\b")
IPV4_TEXT = re.compile(r"\d(?<![\w.]\d)\d{0,2}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
IPV6_TEXT = re.compile(r"[0-9A-Fa-f:](?<![\w:.][0-9A-Fa-f:])[0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
PHONE_TEXT = re.compile(r"[+(\d](?<![\w+.,/-][+(\d])(?:(?<=\+)|(?<=\()\d{1,5}\)|(?<=\d))[\d().\- \u00a0/]{4,22}\d"
                        r"(?:[ ]?(?:x|ext\.?|#)[ ]?\d{1,6})?(?![\w/-])", re.IGNORECASE)
_NOT_PHONE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,3}(?:[.,]\d{3})+"
                        r"|(?:19|20)\d\d ?[-–/] ?\d{1,6}|\d{5}-\d{4}|\d+\.\d+|\d{3}-\d{2}-\d{4}")
_PHONE_WORDS = re.compile(r"(?:tel|phone|call|mobile|cell|fax|ph|ring|text|whatsapp|telefon|téléphone|móvil|"
                          r"handy|☎|📞)\W{0,4}$", re.IGNORECASE)
PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL")

# -- the joined batch ---------------------------------------------------------------------

@dataclass
class Spans:
    """Identifier spans of a batch: per span, the value it is in and its offsets there.

    ``tier`` says how a name was found (``row``, ``table`` or ``dictionary``; ``""`` for other
    kinds); a ``row``/``table`` name also names the name column (``column``, an index into the
    ``names`` given), the row holding it (``row``) and which of that value's :func:`name_words`
    it spans (``token`` to ``token_end``). ``core_start``/``core_end`` bound the name itself inside a span that also
    holds digits or a possessive (``Margorie48``, ``Ann's``). ``role`` is ``first`` or ``last``
    for dictionary names.
    """

    value: np.ndarray
    start: np.ndarray
    end: np.ndarray
    kind: np.ndarray
    tier: np.ndarray
    column: np.ndarray
    row: np.ndarray
    token: np.ndarray
    token_end: np.ndarray
    core_start: np.ndarray
    core_end: np.ndarray
    role: np.ndarray
    source: list[str] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.value)

    def texts(self, values: Sequence[str]) -> list[str]:
        """The text of every span."""
        return [values[v][a:b] for v, a, b in zip(self.value.tolist(), self.start.tolist(), self.end.tolist(),
                                                  strict=True)]

    def counts(self) -> dict[str, int]:
        """Spans per kind."""
        if not len(self):
            return {}
        kinds, counts = np.unique(self.kind.astype(str), return_counts=True)
        return {str(k): int(c) for k, c in zip(kinds.tolist(), counts.tolist(), strict=True)}


class _Joined:
    """A batch joined into one text, with the code of every character and per-value counts."""

    def __init__(self, values: Sequence[str]) -> None:
        items = list(values)
        text = SEP.join(items)
        if text.count(SEP) != max(len(items) - 1, 0):
            text = SEP.join(v.replace(SEP, NUL_STANDIN) for v in items)
        self.text = text
        self.size = len(items)
        lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
        self.starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1])).astype(np.int64)
        self.ends = self.starts + lengths
        closed = text + SEP
        if closed.isascii():
            self.codes: np.ndarray = np.frombuffer(closed.encode("ascii"), dtype=np.uint8).astype(np.uint32)
        else:
            self.codes = np.frombuffer(closed.encode("utf-32-le"), dtype=np.uint32)
        codes = self.codes
        wide = codes > 127
        self.digit = (codes >= 48) & (codes <= 57)
        lower = codes | 32
        self.letter = ((lower >= 97) & (lower <= 122)) | wide
        self._reduce_at = np.minimum(self.starts, len(codes) - 1)

    def per_value(self, flags: np.ndarray) -> np.ndarray:
        if self.size == 0:
            return np.zeros(0, dtype=np.int64)
        return segment_sums(flags, self._reduce_at)

    def count(self, char: str) -> np.ndarray:
        return self.per_value(self.codes == ord(char))

    def part(self, wanted: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
        """(joined text of the ``wanted`` values, their positions, where each starts in that text)."""
        chosen = np.flatnonzero(wanted)
        if len(chosen) == self.size:
            return self.text, chosen, self.starts
        text = SEP.join(self.text[a:b] for a, b in zip(self.starts[chosen].tolist(), self.ends[chosen].tolist(),
                                                        strict=True))
        lengths = self.ends[chosen] - self.starts[chosen]
        return text, chosen, np.concatenate(([0], np.cumsum(lengths + 1)[:-1])).astype(np.int64)

    def finditer(self, pattern: re.Pattern[str], wanted: np.ndarray) -> tuple[list[re.Match[str]], np.ndarray]:
        """Matches of ``pattern`` over the ``wanted`` values, and the offset that maps each into ``text``."""
        if not wanted.any():
            return [], np.zeros(0, dtype=np.int64)
        text, chosen, sub_starts = self.part(wanted)
        matches = [m for m in pattern.finditer(text) if m.end() > m.start()]
        if not matches:
            return [], np.zeros(0, dtype=np.int64)
        positions = np.fromiter((m.start() for m in matches), dtype=np.int64, count=len(matches))
        which = np.searchsorted(sub_starts, positions, side="right") - 1
        return matches, self.starts[chosen[which]] - sub_starts[which]

    def prefiltered(self, prefilter: Any, pattern: re.Pattern[str], wanted: np.ndarray, digits_within: int = 0
                    ) -> tuple[list[re.Match[str]], np.ndarray]:
        """Like :meth:`finditer`, but ``pattern`` is only tried where ``prefilter`` (RE2) finds its group 1
        (or its match) starting and, with ``digits_within``, where a digit follows within that many
        characters."""
        if not wanted.any():
            return [], np.zeros(0, dtype=np.int64)
        text, chosen, sub_starts = self.part(wanted)
        group = 1 if prefilter.groups else 0
        starts = np.fromiter((m.start(group) for m in prefilter.finditer(text)), dtype=np.int64)
        if digits_within and len(starts):
            codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) if not text.isascii() else \
                np.frombuffer(text.encode("ascii"), dtype=np.uint8)
            seen = np.concatenate(([0], np.cumsum((codes >= 48) & (codes <= 57))))
            starts = starts[seen[np.minimum(starts + digits_within, len(codes))] > seen[starts]]
        matches = []
        for start in starts.tolist():
            match = pattern.match(text, start)
            if match is not None and match.end() > match.start():
                matches.append(match)
        if not matches:
            return [], np.zeros(0, dtype=np.int64)
        positions = np.fromiter((m.start() for m in matches), dtype=np.int64, count=len(matches))
        which = np.searchsorted(sub_starts, positions, side="right") - 1
        return matches, self.starts[chosen[which]] - sub_starts[which]

    def value_of(self, positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, positions, side="right") - 1


class _Found:
    """Accepted spans (global offsets into the joined text), kept sorted and disjoint."""

    def __init__(self) -> None:
        self.starts = np.zeros(0, dtype=np.int64)
        self.ends = np.zeros(0, dtype=np.int64)
        self.parts: list[dict[str, np.ndarray]] = []

    def free(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Which candidate spans overlap no accepted span."""
        if not len(self.starts) or not len(starts):
            return np.ones(len(starts), dtype=bool)
        before = np.searchsorted(self.starts, ends, side="left") - 1
        clear = before < 0
        clear |= self.ends[np.maximum(before, 0)] <= starts
        return clear

    def add(self, kind: str | np.ndarray, starts: np.ndarray, ends: np.ndarray, **extra: np.ndarray) -> None:
        """Accept the candidates that overlap no accepted span (and, among themselves, the leftmost-longest)."""
        starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
        if not len(starts):
            return
        order = np.lexsort((-(ends - starts), starts))
        starts, ends = starts[order], ends[order]
        extra = {k: np.asarray(v)[order] for k, v in extra.items()}
        kinds = np.asarray(kind, dtype=object)[order] if isinstance(kind, np.ndarray) else \
            np.full(len(starts), kind, dtype=object)
        previous_end = np.concatenate(([-1], np.maximum.accumulate(ends)[:-1]))
        keep = (starts >= previous_end) & self.free(starts, ends)
        if not keep.any():
            return
        part = {"start": starts[keep], "end": ends[keep], "kind": kinds[keep]}
        part.update({k: v[keep] for k, v in extra.items()})
        self.parts.append(part)
        merged_starts = np.concatenate((self.starts, part["start"]))
        merged_ends = np.concatenate((self.ends, part["end"]))
        order = np.argsort(merged_starts, kind="stable")
        self.starts, self.ends = merged_starts[order], merged_ends[order]


# -- finders for kinds with a form ----------------------------------------------------------

def _spans(matches: list[re.Match[str]], offsets: np.ndarray, group: int | str = 0) -> tuple[np.ndarray, np.ndarray]:
    starts = np.fromiter((m.start(group) for m in matches), dtype=np.int64, count=len(matches)) + offsets
    ends = np.fromiter((m.end(group) for m in matches), dtype=np.int64, count=len(matches)) + offsets
    return starts, ends


def _select(matches: list[re.Match[str]], offsets: np.ndarray, keep: list[bool]) -> tuple[list[re.Match[str]],
                                                                                         np.ndarray]:
    mask = np.asarray(keep, dtype=bool)
    return [m for m, k in zip(matches, keep, strict=True) if k], offsets[mask] if len(offsets) else offsets


def _find_emails(batch: _Joined, found: _Found) -> None:
    """Addresses around every "@": the local part that ends there and the domain that follows."""
    text = batch.text
    starts, ends = [], []
    for at in np.flatnonzero(batch.codes == 64).tolist():
        domain = EMAIL_DOMAIN.match(text, at)
        local = EMAIL_LOCAL.search(text, max(0, at - 64), at) if domain else None
        if local is not None and domain is not None:
            starts.append(local.start())
            ends.append(domain.end())
    found.add("email", np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))


def _find_urls(batch: _Joined, found: _Found) -> None:
    matches, offsets = batch.finditer(URL_TEXT, batch.count("/") >= 2)
    starts, ends = [], []
    for match, offset in zip(matches, offsets.tolist(), strict=True):
        url = match.group(0).rstrip(_URL_TRAILING)
        for part in PERSONAL_URL_PART.finditer(url):
            group = next(g for g in (1, 2, 3) if part.group(g) is not None)
            starts.append(match.start() + part.start(group) + offset)
            ends.append(match.start() + part.end(group) + offset)
    found.add("url", np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))


def _find_ibans(batch: _Joined, found: _Found) -> None:
    codes = batch.codes
    start = np.zeros(len(codes), dtype=bool)
    upper = (codes >= 65) & (codes <= 90)
    start[:-3] = upper[:-3] & upper[1:-2] & batch.digit[2:-1] & batch.digit[3:]
    alnum = upper | ((codes >= 97) & (codes <= 122)) | batch.digit
    start[1:] &= ~alnum[:-1]  # IBAN_TEXT starts after no ASCII letter or digit
    matches, offsets = batch.finditer(IBAN_TEXT, batch.per_value(start) > 0)
    starts, ends = [], []
    for match, offset in zip(matches, offsets.tolist(), strict=True):
        text = match.group(0)
        while len(text.replace(" ", "")) >= 15 and not pii.iban_valid(text):
            text = text.rsplit(" ", 1)[0] if " " in text[4:] else text[:-1]
        if pii.iban_valid(text):
            starts.append(match.start() + offset)
            ends.append(match.start() + offset + len(text))
    found.add("iban", np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))


_NON_DIGITS = re.compile(r"\D")


def _find_cards(batch: _Joined, found: _Found) -> None:
    matches, offsets = batch.finditer(CARD_TEXT, batch.per_value(batch.digit) >= 13)
    keep = [pii.plausible_card(_NON_DIGITS.sub("", m.group(0))) for m in matches]
    found.add("card_number", *_spans(*_select(matches, offsets, keep)))


@lru_cache(maxsize=64)
def _stdnum(name: str) -> object:
    import importlib

    return importlib.import_module(f"stdnum.{name}")


def national_id_valid(group: str, text: str) -> bool:
    """Whether ``text``, matched as the national id form ``group``, passes that form's check.

    >>> national_id_valid("ssn", "999-33-2827"), national_id_valid("ssn", "000-12-3456")
    (True, False)
    >>> national_id_valid("nordic", "811218-9876"), national_id_valid("fi", "131052-308T")
    (True, True)
    """
    if group == "ssn":
        area, middle, serial = text.split("-")
        return area not in ("000", "666") and middle != "00" and serial != "0000"
    if group == "nino":
        return text[:2] not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")
    return any(_stdnum_valid(module, text) for module in _STDNUM.get(group, ()))


def _stdnum_valid(module: str, text: str) -> bool:
    try:
        return bool(_stdnum(module).is_valid(text))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a validator that cannot read the text rejects it
        return False


def _find_national_ids(batch: _Joined, found: _Found) -> None:
    matches, offsets = batch.prefiltered(NATIONAL_ID_PREFILTER, NATIONAL_ID_TEXT, batch.per_value(batch.digit) >= 6)
    keep = [national_id_valid(str(m.lastgroup), m.group(0)) for m in matches]
    found.add("national_id", *_spans(*_select(matches, offsets, keep)))


_DATE_LIKE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")
_YEAR = re.compile(r"(?:19|20)\d\d(?:[-/](?:19|20)?\d\d)?")


def _find_keyword_ids(batch: _Joined, found: _Found, kinds: set[str]) -> None:
    matches, offsets = batch.prefiltered(KEYWORD_PREFILTER, KEYWORD_ID_TEXT, batch.per_value(batch.digit) >= 2,
                                         digits_within=48)
    starts, ends, labels = [], [], []
    for match, offset in zip(matches, offsets.tolist(), strict=True):
        keyword = next(name for name, value in match.groupdict().items() if value is not None and name != "id")
        kind = _KEYWORDS[int(keyword[1:])][0]
        token = match.group("id")
        digits = sum(c.isdigit() for c in token)
        form = NATIONAL_ID_TEXT.fullmatch(token)
        if form is not None and not national_id_valid(str(form.lastgroup), token):
            continue  # written like a national id, but not a valid one
        letters = any(c.isalpha() for c in token)
        if kind not in kinds or digits < 2 or not (5 if not letters else 4) <= len(token) <= 30 \
                or _DATE_LIKE.fullmatch(token) or _YEAR.fullmatch(token):
            continue
        starts.append(match.start("id") + offset)
        ends.append(match.end("id") + offset)
        labels.append(kind)
    found.add(np.asarray(labels, dtype=object), np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))


def _find_ips(batch: _Joined, found: _Found) -> None:
    matches, offsets = batch.finditer(IPV4_TEXT, batch.count(".") >= 3)
    keep = [all(int(part) <= 255 and (part == "0" or not part.startswith("0")) for part in m.group(0).split("."))
            for m in matches]
    found.add("ip_address", *_spans(*_select(matches, offsets, keep)))
    matches, offsets = batch.finditer(IPV6_TEXT, batch.count(":") >= 2)
    keep = [len(m.group(0)) >= 6 and _is_ipv6(m.group(0)) for m in matches]
    found.add("ip_address", *_spans(*_select(matches, offsets, keep)))


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1024)
def _region_lengths(region: str) -> tuple[str, frozenset[int], frozenset[int]]:
    """(national prefix, lengths of a full national number, lengths of a local one) of ``region``, from
    phonenumbers' metadata."""
    from phonenumbers import PhoneMetadata

    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        return "", frozenset(), frozenset()
    desc = metadata.general_desc
    return (metadata.national_prefix or "", frozenset(desc.possible_length or ()),
            frozenset(desc.possible_length_local_only or ()))


@lru_cache(maxsize=1024)
def _country_lengths(code: int) -> frozenset[int]:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    return frozenset().union(*(_region_lengths(r)[1] for r in COUNTRY_CODE_TO_REGION_CODE.get(code, ())))


def phone_possible(text: str, region: str = "US") -> bool:
    """Whether ``text`` has the length of a phone number by phonenumbers' metadata: after its country
    code when it starts with ``+`` or ``00``, else as a national number of ``region`` or of one of
    :data:`PHONE_REGIONS` (a national prefix such as the leading 0 of ``020`` may be there or not).

    >>> phone_possible("+44 20 7946 0018"), phone_possible("(415) 555-0142"), phone_possible("+44 20 7946 00")
    (True, True, False)
    """
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    stripped = text.lstrip()
    digits = _NON_DIGITS.sub("", stripped)
    if stripped.startswith(("+", "00")):
        digits = digits[2:] if stripped.startswith("00") else digits
        for size in (1, 2, 3):
            code = int(digits[:size] or 0)
            if code in COUNTRY_CODE_TO_REGION_CODE:
                national = digits[size:]
                if "(0)" in stripped and national.startswith("0"):
                    national = national[1:]
                return len(national) in _country_lengths(code)
        return False
    for candidate in dict.fromkeys((region, *PHONE_REGIONS)):
        prefix, full, local = _region_lengths(candidate)
        lengths = full | local
        if len(digits) in lengths or (prefix and digits.startswith(prefix) and len(digits) - len(prefix) in lengths):
            return True
    return False


_PHONE_BLOCKERS = np.zeros(128, dtype=bool)  # ASCII characters after which PHONE_TEXT cannot start
_PHONE_BLOCKERS[[ord(c) for c in "_+.,/-0123456789"]] = True
_PHONE_BLOCKERS[[ord(c) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"]] = True


def _phone_starts(batch: _Joined) -> np.ndarray:
    """Per value: whether it has a place :data:`PHONE_TEXT` can start at, a ``+``, ``(`` or digit (of any
    script) after no ASCII letter, digit or ``_+.,/-`` (so ``TRK000000000123`` has none)."""
    codes = batch.codes
    starter = batch.digit | (codes > 127) | (codes == 43) | (codes == 40)
    blocking = _PHONE_BLOCKERS.take(np.minimum(codes, 127)) & (codes < 128)
    after_blocker = np.concatenate(([False], blocking[:-1]))
    return batch.per_value(starter & ~after_blocker) > 0


def _find_phones(batch: _Joined, found: _Found, region: str) -> None:
    wanted = batch.per_value(batch.digit) >= 7
    if wanted.any():
        wanted &= _phone_starts(batch)
    matches, offsets = batch.finditer(PHONE_TEXT, wanted)
    starts, ends = [], []
    text = batch.text
    for match, offset in zip(matches, offsets.tolist(), strict=True):
        start = match.start() + offset
        number = _phone_in(match.group(0), region, bool(_PHONE_WORDS.search(text[max(0, start - 16):start])))
        if number:
            starts.append(start)
            ends.append(start + len(number))
    found.add("phone", np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))


_PHONE_TAIL = re.compile(r"[\s.\-/]+[\d()]+$")


@lru_cache(maxsize=1 << 16)
def _phone_in(candidate: str, region: str, announced: bool) -> str:
    """``candidate`` when it is a phone number ('' if not): 7-15 digits, not a date, an amount or a
    postcode, grouped the way numbers are written (or a bare number after "tel", "call" ...), and of a
    possible length for phonenumbers."""
    digits = len(_NON_DIGITS.sub("", candidate))
    grouped = candidate.startswith(("+", "(")) or not candidate.isdigit()
    if 7 <= digits <= 15 and not _NOT_PHONE.fullmatch(candidate) and (grouped or announced) \
            and phone_possible(candidate, region):
        return candidate
    return ""


# -- names ----------------------------------------------------------------------------------

_CJK_RANGES = ((0x1100, 0x11FF), (0x2E80, 0xA4CF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF),
               (0x20000, 0x3FFFF))


def _word_chars(batch: _Joined) -> np.ndarray:
    """Characters that are part of a word: letters and digits of alphabetic scripts, and an
    apostrophe or hyphen between two letters. CJK, emoji and punctuation end a word."""
    codes = batch.codes
    ascii_alnum = batch.digit | (((codes | 32) >= 97) & ((codes | 32) <= 122))
    word = ascii_alnum & (codes < 128)
    wide = codes > 127
    if wide.any():
        unique = np.unique(codes[wide])
        alnum = np.array([chr(c).isalnum() and not any(a <= c <= b for a, b in _CJK_RANGES) for c in unique.tolist()],
                         dtype=bool)
        word[wide] = alnum[np.searchsorted(unique, codes[wide])]
    letter_like = word & ~batch.digit
    joiner = (codes == 39) | (codes == 45) | (codes == 0x2019)
    inner = np.zeros(len(codes), dtype=bool)
    inner[1:-1] = joiner[1:-1] & letter_like[:-2] & letter_like[2:]
    return word | inner


@dataclass
class _Words:
    """Every word of a batch: where it is, which distinct word it is, and facts about each distinct word."""

    start: np.ndarray
    end: np.ndarray
    code: np.ndarray
    uniques: np.ndarray
    key: np.ndarray  # per distinct word: name_key of its letters ('' if it cannot be a name)
    lead: np.ndarray  # digits before the letters
    trail: np.ndarray  # digits and possessive after the letters
    cap: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    digits: np.ndarray  # digits attached
    initial: np.ndarray  # per word: first of its sentence or line


_SHAPE = re.compile(r"(\d*)([^\W\d_]+(?:['’-][^\W\d_]+)*)((?:['’]s?)?\d*(?:['’]s)?)")


_BLANKS = np.array([32, 9, 0xA0], dtype=np.uint32)
_SENTENCE_ENDS = np.array([46, 33, 63, 10, 13, 0, 0x3002, 0xFF01, 0xFF1F], dtype=np.uint32)


def _words_of(batch: _Joined) -> _Words:
    codes = batch.codes
    word = _word_chars(batch)
    start = np.flatnonzero(word & ~np.concatenate(([False], word[:-1]))).astype(np.int64)
    end = np.flatnonzero(word & ~np.concatenate((word[1:], [False]))).astype(np.int64) + 1
    spaced = np.where(word, codes, 32).astype(np.uint32)
    if batch.text.isascii():
        tokens = spaced.astype(np.uint8).tobytes().decode("ascii").split()
    else:
        tokens = spaced.astype("<u4").tobytes().decode("utf-32-le").split()
    code, uniques = pd.factorize(np.array(tokens, dtype=object)) if tokens else (np.zeros(0, np.int64),
                                                                                  np.zeros(0, dtype=object))
    uniques = np.asarray(uniques, dtype=object)
    n = len(uniques)
    key = np.full(n, "", dtype=object)
    lead = np.zeros(n, dtype=np.int64)
    trail = np.zeros(n, dtype=np.int64)
    digits = np.zeros(n, dtype=bool)
    series = pd.Series(uniques, dtype=object)
    # Plain words (letters only, the most): their own core; pandas' string methods do them at C speed.
    plain = series.str.isalpha().to_numpy(dtype=bool) if n else np.zeros(0, dtype=bool)
    lowered = series[plain].str.lower()
    ascii_words = lowered.map(str.isascii).to_numpy(dtype=bool)
    folded = lowered.to_numpy(dtype=object).copy()
    if not ascii_words.all():
        folded[~ascii_words] = [name_key(w) for w in folded[~ascii_words].tolist()]
    key[plain] = folded
    cores = uniques.copy()
    numbers = series.str.isdigit().to_numpy(dtype=bool) if n else np.zeros(0, dtype=bool)
    cores[numbers] = ""
    for i in np.flatnonzero(~plain & ~numbers).tolist():
        shape = _SHAPE.fullmatch(uniques[i])
        if shape is None:
            cores[i] = ""
            continue
        head, core, tail = shape.groups()
        if len(core) > 3 and core[-2] in "'’" and core[-1] in "sS" and not tail:
            core, tail = core[:-2], core[-2:]
        lead[i], trail[i] = len(head), len(tail)
        key[i] = name_key(core)
        cores[i] = core
        digits[i] = bool(head) or any(c.isdigit() for c in tail)
    core_series = pd.Series(cores, dtype=object)
    cap = core_series.str[:1].str.isupper().fillna(False).to_numpy(dtype=bool) if n else np.zeros(0, dtype=bool)
    lower = core_series.str.islower().fillna(False).to_numpy(dtype=bool) if n else np.zeros(0, dtype=bool)
    upper = (core_series.str.isupper().fillna(False) & (core_series.str.len() > 1)).to_numpy(dtype=bool) if n \
        else np.zeros(0, dtype=bool)
    # A word starts a sentence when the last character before it (spaces aside) ends one, or there is none.
    previous = start - 1
    for _ in range(4):
        blank = (previous >= 0) & np.isin(codes[np.maximum(previous, 0)], _BLANKS)
        if not blank.any():
            break
        previous = np.where(blank, previous - 1, previous)
    initial = (previous < 0) | np.isin(codes[np.maximum(previous, 0)], _SENTENCE_ENDS)
    return _Words(start, end, np.asarray(code, dtype=np.int64), uniques, key, lead, trail, cap, lower, upper,
                  digits, initial)


@lru_cache(maxsize=1 << 16)
def _entry_words(value: str) -> tuple[tuple[int, str, bool, bool], ...]:
    """(word number, key, whole word?, particle?) for every word of a name value and every part of a
    hyphenated one."""
    entries = []
    for t, word in enumerate(name_words(value)):
        whole = name_key(word)
        if whole in PARTICLES:
            entries.append((t, whole, True, True))
            continue
        if len(whole) >= 2:
            entries.append((t, whole, True, False))
        if "-" in word or "'" in word or "’" in word:
            for part in re.split(r"[-'’]", word):
                key = name_key(part)
                if len(key) >= 3 and key != whole:
                    entries.append((t, key, False, False))
    return tuple(entries)


def _name_entries(names: Sequence[pd.Series | np.ndarray | Sequence[str | None]]) -> pd.DataFrame:
    """One row per (name column, row, word) of the name values, and one per part of a hyphenated
    word: its key, its word number (``token``), whether it is the whole word and whether a particle."""
    frames = []
    for column, values in enumerate(names):
        array = np.asarray(pd.Series(values, dtype=object).to_numpy(dtype=object))
        present = np.fromiter((isinstance(v, str) for v in array), dtype=bool, count=len(array))
        if not present.any():
            continue
        rows = np.flatnonzero(present)
        codes, uniques = pd.factorize(array[present])
        per_unique = [_entry_words(unique) for unique in uniques.tolist()]
        counts = np.array([len(p) for p in per_unique], dtype=np.int64)
        repeat = counts[codes]
        if not repeat.sum():
            continue
        flat = [e for p in per_unique for e in p]
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
        take = np.repeat(offsets[codes], repeat) + (np.arange(repeat.sum()) - np.repeat(np.cumsum(repeat) - repeat,
                                                                                          repeat))
        frames.append(pd.DataFrame({
            "row": np.repeat(rows, repeat), "column": column,
            "token": np.array([e[0] for e in flat], dtype=np.int64)[take],
            "key": np.array([e[1] for e in flat], dtype=object)[take],
            "whole": np.array([e[2] for e in flat], dtype=bool)[take],
            "particle": np.array([e[3] for e in flat], dtype=bool)[take]}))
    if not frames:
        return pd.DataFrame({"row": pd.Series([], dtype=np.int64), "column": pd.Series([], dtype=np.int64),
                             "token": pd.Series([], dtype=np.int64), "key": pd.Series([], dtype=object),
                             "whole": pd.Series([], dtype=bool), "particle": pd.Series([], dtype=bool)})
    return pd.concat(frames, ignore_index=True)


NONE, ROW, TABLE, DICTIONARY = 0, 1, 2, 3  # tiers, by number while words are many
TIER_NAMES = np.array(["", "row", "table", "dictionary"], dtype=object)
FIRST, LAST, PARTICLE = 1, 2, 3
ROLE_NAMES = np.array(["", "first", "last", "last"], dtype=object)


@dataclass
class _Names:
    """Per word of the batch: how it was found to be a name (``tier``), and from which name value."""

    tier: np.ndarray
    column: np.ndarray
    row: np.ndarray
    token: np.ndarray
    role: np.ndarray

    @classmethod
    def empty(cls, n: int) -> _Names:
        return cls(np.zeros(n, dtype=np.int8), np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64),
                   np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int8))

    def take(self, words: np.ndarray, tier: int | np.ndarray, column: np.ndarray, row: np.ndarray,
             token: np.ndarray) -> None:
        self.tier[words] = tier
        self.column[words] = column
        self.row[words] = row
        self.token[words] = token


def _spacing(batch: _Joined, words: _Words) -> tuple[np.ndarray, np.ndarray]:
    """Per word: followed by the next word of the same value after one space; after ``. `` (``Dr. X``)."""
    n = len(words.start)
    codes = batch.codes
    following = np.minimum(np.arange(1, n + 1), n - 1)
    gap = words.start[following] - words.end
    after = np.minimum(words.end, len(codes) - 1)
    last = np.arange(n) == n - 1
    spaced = (gap == 1) & (codes[after] == 32) & ~last
    dotted = (gap == 2) & (codes[after] == 46) & (codes[np.minimum(after + 1, len(codes) - 1)] == 32) & ~last
    return spaced, dotted


def _find_names(batch: _Joined, found: _Found, names: Sequence[pd.Series | np.ndarray | Sequence[str | None]],
                rows: np.ndarray) -> None:
    words = _words_of(batch)
    n = len(words.start)
    if not n:
        return
    free = found.free(words.start, words.end)
    value = batch.value_of(words.start)
    cap = words.cap[words.code]
    lower = words.lower[words.code]
    attached = words.digits[words.code]
    acronym = (words.upper & _member(words.key, ACRONYMS))[words.code]
    function = _member(words.key, FUNCTION_WORDS | TITLES)[words.code] | acronym
    everyday = _member(words.key, everyday_words())[words.code]
    particle = _member(words.key, PARTICLES)[words.code]
    shaped = (np.fromiter(map(len, words.key.tolist()), dtype=np.int64, count=len(words.key)) >= 2)[words.code]
    spaced, dotted = _spacing(batch, words)
    elsewhere = _not_a_person_here(words, spaced, dotted)
    found_names = _Names.empty(n)
    entries = _name_entries(names)
    if len(entries):
        _stored_names(words, entries, rows[value], free & shaped & ~acronym, cap, lower, attached, function,
                      everyday | elsewhere, particle, spaced, found_names)
    _dictionary_names(words, cap, function, everyday, particle, free & shaped & (found_names.tier == NONE),
                      spaced, dotted, elsewhere, found_names)
    _add_names(found, words, found_names, spaced)


_UNSPACED = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _CJK_RANGES) + "]")


def _unspaced_row_names(batch: _Joined, found: _Found,
                        names: Sequence[pd.Series | np.ndarray | Sequence[str | None]], rows: np.ndarray) -> None:
    """The row's own names in scripts written without spaces (田中, 김민준), found as they are written.

    Text in those scripts has no word boundaries to look up, so each name word of two characters
    or more is searched for in the values of its own row only (a loop over those rows alone)."""
    wanted: dict[int, list[tuple[str, int, int]]] = {}
    for column, values in enumerate(names):
        array = pd.Series(values, dtype=object).to_numpy(dtype=object)
        for row in np.flatnonzero([isinstance(v, str) and _UNSPACED.search(v) is not None for v in array]).tolist():
            for token, word in enumerate(name_words(array[row])):
                if len(word) >= 2 and _UNSPACED.search(word):
                    wanted.setdefault(row, []).append((word, column, token))
    if not wanted:
        return
    starts, ends, columns, owners, tokens = [], [], [], [], []
    for value in np.flatnonzero(np.isin(rows, list(wanted))).tolist():
        base, text = int(batch.starts[value]), batch.text[batch.starts[value]:batch.ends[value]]
        for word, column, token in wanted[int(rows[value])]:
            at = text.find(word)
            while at >= 0:
                starts.append(base + at)
                ends.append(base + at + len(word))
                columns.append(column)
                owners.append(int(rows[value]))
                tokens.append(token)
                at = text.find(word, at + len(word))
    if starts:
        size = len(starts)
        found.add(NAME, np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64),
                  tier=np.full(size, "row", dtype=object), column=np.asarray(columns, dtype=np.int64),
                  row=np.asarray(owners, dtype=np.int64), token=np.asarray(tokens, dtype=np.int64),
                  token_end=np.asarray(tokens, dtype=np.int64), core_start=np.asarray(starts, dtype=np.int64),
                  core_end=np.asarray(ends, dtype=np.int64), role=np.full(size, "", dtype=object))


def _not_a_person_here(words: _Words, spaced: np.ndarray, dotted: np.ndarray) -> np.ndarray:
    """Words that name no person where they stand: after a place prefix (San Antonio), before an
    eponym noun (Wilson's disease, Down syndrome), a shop's possessive (Wendy's)."""
    n = len(words.start)
    prefix = _member(words.key, PLACE_PREFIXES)[words.code]
    eponym_noun = _member(words.key, EPONYM_NOUNS)[words.code]
    possessive = words.trail[words.code] > 0
    out = np.zeros(n, dtype=bool)
    out[1:] |= prefix[:-1] & (spaced[:-1] | dotted[:-1]) & words.cap[words.code[:-1]]
    out[:-1] |= eponym_noun[1:] & spaced[:-1]
    out |= possessive & _member(words.key, POSSESSIVE_BRANDS)[words.code]
    return out


def _stored_names(words: _Words, entries: pd.DataFrame, word_rows: np.ndarray, open_: np.ndarray, cap: np.ndarray,
                  lower: np.ndarray, attached: np.ndarray, function: np.ndarray, everyday: np.ndarray,
                  particle: np.ndarray, spaced: np.ndarray, out: _Names) -> None:
    """The row's own names (any case), then names other rows hold (capitalised), then their particles."""
    matchable = entries[~entries["particle"]]
    known = pd.Index(pd.unique(matchable["key"].to_numpy(dtype=object)))
    word_code = known.get_indexer(pd.Index(words.key))[words.code]
    candidate = (word_code >= 0) & open_
    # The row's own: any case, but an everyday word only capitalised, a function word not first in a sentence.
    own_ok = ~(everyday | function) | ~(lower | (function & words.initial))
    wanted = np.flatnonzero(candidate & own_ok)
    matchable = matchable.assign(code=known.get_indexer(pd.Index(matchable["key"])))
    first = matchable.sort_values("whole", ascending=False, kind="stable").drop_duplicates(["row", "code"])
    probe = pd.DataFrame({"word": wanted, "row": word_rows[wanted], "code": word_code[wanted]})
    hit = probe.merge(first[["row", "code", "column", "token"]], on=["row", "code"], how="inner")
    out.take(hit["word"].to_numpy(dtype=np.int64), ROW, hit["column"].to_numpy(dtype=np.int64),
             hit["row"].to_numpy(dtype=np.int64), hit["token"].to_numpy(dtype=np.int64))
    # An everyday word in lower case is the row's name too when it stands next to one (jordan moody, Grace day).
    shy = candidate & (out.tier == NONE) & ~own_ok & ~function
    beside = np.zeros(len(shy), dtype=bool)
    beside[1:] |= shy[1:] & (out.tier[:-1] == ROW) & spaced[:-1]
    beside[:-1] |= shy[:-1] & (out.tier[1:] == ROW) & spaced[:-1]
    if beside.any():
        wanted = np.flatnonzero(beside)
        probe = pd.DataFrame({"word": wanted, "row": word_rows[wanted], "code": word_code[wanted]})
        hit = probe.merge(first[["row", "code", "column", "token"]], on=["row", "code"], how="inner")
        out.take(hit["word"].to_numpy(dtype=np.int64), ROW, hit["column"].to_numpy(dtype=np.int64),
                 hit["row"].to_numpy(dtype=np.int64), hit["token"].to_numpy(dtype=np.int64))
    # Another row's: capitalised (or with digits attached), never a function or an everyday word.
    other = candidate & (out.tier == NONE) & (cap | attached) & ~function & ~(everyday & ~attached)
    if other.any():
        # Two neighbouring words go to a row holding both, where there is one (Ann Lee -> Ann Lee's row).
        pairs = np.flatnonzero(other[:-1] & other[1:] & spaced[:-1])
        if len(pairs):
            left = pd.DataFrame({"pair": pairs, "code": word_code[pairs]}).merge(
                matchable[["code", "row", "column", "token"]], on="code")
            right = pd.DataFrame({"pair": pairs, "code": word_code[pairs + 1]}).merge(
                matchable[["code", "row", "column", "token"]], on="code")
            both = left.merge(right, on=["pair", "row"], suffixes=("", "_next")).sort_values(
                ["pair", "row"], kind="stable").drop_duplicates("pair")
            at = both["pair"].to_numpy(dtype=np.int64)
            out.take(at, TABLE, both["column"].to_numpy(dtype=np.int64), both["row"].to_numpy(dtype=np.int64),
                     both["token"].to_numpy(dtype=np.int64))
            out.take(at + 1, TABLE, both["column_next"].to_numpy(dtype=np.int64),
                     both["row"].to_numpy(dtype=np.int64), both["token_next"].to_numpy(dtype=np.int64))
        rest = np.flatnonzero(other & (out.tier == NONE))
        holder = matchable.sort_values("whole", ascending=False, kind="stable").drop_duplicates("code")
        chosen = holder.set_index("code").loc[word_code[rest]]
        out.take(rest, TABLE, chosen["column"].to_numpy(dtype=np.int64), chosen["row"].to_numpy(dtype=np.int64),
                 chosen["token"].to_numpy(dtype=np.int64))
    # A particle written before a stored name that has that particle there (van der Linden).
    stored = entries[entries["whole"]][["row", "column", "token", "key"]]
    for _ in range(3):
        before = np.flatnonzero(particle[:-1] & open_[:-1] & (out.tier[:-1] == NONE) & spaced[:-1]
                                & ((out.tier[1:] == ROW) | (out.tier[1:] == TABLE)) & (out.token[1:] >= 1))
        if not len(before):
            break
        probe = pd.DataFrame({"word": before, "row": out.row[before + 1], "column": out.column[before + 1],
                              "token": out.token[before + 1] - 1, "key": words.key[words.code[before]]})
        hit = probe.merge(stored, on=["row", "column", "token", "key"])
        if hit.empty:
            break
        at = hit["word"].to_numpy(dtype=np.int64)
        out.take(at, out.tier[at + 1], hit["column"].to_numpy(dtype=np.int64), hit["row"].to_numpy(dtype=np.int64),
                 hit["token"].to_numpy(dtype=np.int64))


def _dictionary_names(words: _Words, cap: np.ndarray, function: np.ndarray, everyday: np.ndarray,
                      particle: np.ndarray, open_: np.ndarray, spaced: np.ndarray, dotted: np.ndarray,
                      elsewhere: np.ndarray, out: _Names) -> None:
    """Names by the dictionaries: strong single names, ``First Last`` pairs, the word after a title,
    and the particles of a family name (``Mr. van Buuren``). Names already found (the row's, the
    table's) count as names for the pairs they are in."""
    firsts, lasts = pii.first_names(), pii.last_names()
    unique_keys = words.key.tolist()
    in_first = np.fromiter((k in firsts or _all_parts(k, firsts) for k in unique_keys), dtype=bool,
                           count=len(unique_keys))[words.code]
    in_last = np.fromiter((k in lasts or _all_parts(k, lasts) for k in unique_keys), dtype=bool,
                          count=len(unique_keys))[words.code]
    title = _member(words.key, TITLES)[words.code]
    places = place_words()[1]
    n = len(words.start)
    usable = open_ & cap & ~function & ~particle
    known = (in_first | in_last) & ~particle
    # An upper-case word of up to four letters alone is more likely an acronym (IBAN, DOB) than a name.
    lengths = np.fromiter(map(len, unique_keys), dtype=np.int64, count=len(unique_keys))
    acronym = (words.upper & (lengths < 5))[words.code]
    keys = words.key[words.code]
    usable &= ~elsewhere
    strong = usable & known & ~everyday & ~acronym
    unknown = usable & ~known & ~everyday
    # The word after a title, across particles (Dr. van der Berg).
    role_title = _member(words.key, ROLE_TITLES)[words.code]
    reach = np.zeros(n, dtype=bool)
    reach[1:] = title[:-1] & (spaced[:-1] | dotted[:-1]) & (~role_title[:-1] | known[1:])
    for _ in range(3):
        onward = np.zeros(n, dtype=bool)
        onward[1:] = reach[:-1] & particle[:-1] & spaced[:-1]
        if not (onward & ~reach).any():
            break
        reach |= onward
    after_title = reach & usable
    prior = (out.tier != NONE) | after_title  # already a name: the row's, the table's, or after a title
    left = strong | prior
    pair = np.zeros(n, dtype=bool)
    pair[:-1] = spaced[:-1] & (usable[:-1] | prior[:-1]) & (usable[1:] | prior[1:]) & (
        (left[:-1] & (strong[1:] | unknown[1:] | known[1:] | prior[1:]))
        | (in_first[:-1] & (strong[1:] | prior[1:]))
        | (in_first[:-1] & ~words.initial[:-1] & ~acronym[:-1] & in_last[1:] & ~acronym[1:])
        | (unknown[:-1] & ~words.initial[:-1] & strong[1:] & in_last[1:]))
    if pair.any():
        at = np.flatnonzero(pair)
        pair[at[[f"{keys[i]} {keys[i + 1]}" in places for i in at.tolist()]]] = False
    # First X. Last: a middle initial between a given name and a family name.
    initial_letter = np.fromiter((len(u) == 1 and u.isupper() for u in words.uniques.tolist()), dtype=bool,
                                 count=len(words.uniques))[words.code]
    middle = np.zeros(n, dtype=bool)
    middle[:-2] = (spaced[:-2] & initial_letter[1:-1] & dotted[1:-1] & (in_first[:-2] | prior[:-2])
                   & (usable[:-2] | prior[:-2]) & (usable[2:] | prior[2:])
                   & (strong[2:] | unknown[2:] | known[2:] | prior[2:]))
    name = strong | after_title
    name[:-1] |= pair[:-1]
    name[1:] |= pair[:-1]
    name[:-2] |= middle[:-2]
    name[2:] |= middle[:-2]
    # A family name after a given name and particles: Berat van Loon, Godfrey van Alemannië.
    given = name | prior | (in_first & usable)
    reach = np.zeros(n, dtype=bool)
    reach[1:] = given[:-1] & spaced[:-1] & particle[1:]
    for _ in range(2):
        onward = np.zeros(n, dtype=bool)
        onward[1:] = reach[:-1] & spaced[:-1] & particle[1:]
        reach |= onward
    bridged = np.zeros(n, dtype=bool)
    bridged[1:] = reach[:-1] & spaced[:-1] & usable[1:]
    # ... and the given name itself (Jan van Loon), found back along the particles.
    leading = np.zeros(n, dtype=bool)  # particles before a bridged family name
    for _ in range(3):
        leading[:-1] |= particle[:-1] & (bridged[1:] | leading[1:])
    opener = np.zeros(n, dtype=bool)
    opener[:-1] = leading[1:] & given[:-1] & ~particle[:-1]
    name |= bridged | opener
    name &= open_
    followed = np.zeros(n, dtype=bool)
    followed[:-1] = (name[1:] | prior[1:]) & (pair[:-1] | middle[:-1])
    followed[:-2] |= middle[:-2]
    first = (followed | (in_first & ~in_last & ~after_title)) & ~bridged
    chosen = np.flatnonzero(name)
    out.tier[chosen] = DICTIONARY
    out.role[chosen] = np.where(first[chosen], FIRST, LAST)
    # Particles before a family name that follows a title or a given name: Mr. van Buuren, Jan de Vries.
    family = (out.tier != NONE) & (out.role != FIRST)
    chain = np.zeros(n, dtype=bool)
    for _ in range(3):
        step = np.zeros(n, dtype=bool)
        step[:-1] = particle[:-1] & open_[:-1] & (out.tier[:-1] == NONE) & spaced[:-1] & (family[1:] | chain[1:]) \
            & ~chain[:-1]
        if not step.any():
            break
        chain |= step
    if chain.any():
        at = np.flatnonzero(chain)
        before = np.maximum(at - 1, 0)
        context = (at > 0) & ((title[before] & (spaced[before] | dotted[before]))
                              | ((out.tier[before] != NONE) & spaced[before]))
        keep = np.zeros(n, dtype=bool)
        for position, ok in zip(at.tolist(), context.tolist(), strict=True):
            keep[position] = keep[position - 1] if position > 0 and chain[position - 1] else ok
        out.tier[keep] = DICTIONARY
        out.role[keep] = PARTICLE


def _add_names(found: _Found, words: _Words, names: _Names, spaced: np.ndarray) -> None:
    """One span per name: neighbouring words of one stored name value (José Antonio, van der Linden),
    particles with the family name after them (which then stands for the span), every other word alone."""
    chosen = np.flatnonzero(names.tier != NONE)
    if not len(chosen):
        return
    following = np.minimum(chosen + 1, len(words.start) - 1)
    stored = (names.tier[chosen] == ROW) | (names.tier[chosen] == TABLE)
    joins = spaced[chosen] & (following != chosen) & (names.tier[following] != NONE) & (
        (stored & (names.tier[following] == names.tier[chosen]) & (names.column[following] == names.column[chosen])
         & (names.row[following] == names.row[chosen]) & (names.token[following] == names.token[chosen] + 1))
        | (names.role[chosen] == PARTICLE))
    continues = np.zeros(len(chosen), dtype=bool)
    continues[1:] = joins[:-1] & (chosen[1:] == chosen[:-1] + 1)
    heads = np.flatnonzero(~continues)
    tails = np.concatenate((heads[1:] - 1, [len(chosen) - 1]))
    first, last = chosen[heads], chosen[tails]
    # A span that starts with particles is the name after them: its tier, value and word.
    lead = np.where(names.role[first] == PARTICLE, last, first)
    found.add(NAME, words.start[first], words.end[last], tier=TIER_NAMES[names.tier[lead]],
              column=names.column[lead], row=names.row[lead], token=names.token[lead], token_end=names.token[last],
              core_start=words.start[first] + words.lead[words.code[first]],
              core_end=words.end[last] - words.trail[words.code[last]], role=ROLE_NAMES[names.role[last]])


def _member(keys: np.ndarray, words: frozenset[str]) -> np.ndarray:
    return np.fromiter((k in words for k in keys.tolist()), dtype=bool, count=len(keys))


def _all_parts(key: str, names: frozenset[str]) -> bool:
    """A hyphenated name whose every part is a name (``anne-marie``)."""
    if "-" not in key:
        return False
    parts = key.split("-")
    return all(part in names for part in parts)


# -- the whole search -----------------------------------------------------------------------

def find_spans(values: Sequence[str] | pd.Series, *, kinds: Iterable[str] | None = None,
               names: Sequence[pd.Series | np.ndarray | Sequence[str | None]] = (),
               rows: np.ndarray | Sequence[int] | None = None, region: str = "US") -> Spans:
    """Every identifier span in ``values`` (strings), strongest kind first where candidates overlap.

    ``kinds`` limits the search (:data:`SPAN_KINDS`); ``names`` are name columns of the rows (each
    aligned with the rows, NULL allowed) and ``rows`` gives each value's row (default: value *i*
    is row *i*); ``region`` is the country that phone numbers without ``+`` are read for.

    >>> found = find_spans(["SSN 999-33-2827, card 4539 1488 0343 6467, IBAN GB82 WEST 1234 5698 7654 32"])
    >>> list(zip(found.kind, found.texts(found.source)))
    [('national_id', '999-33-2827'), ('card_number', '4539 1488 0343 6467'), ('iban', 'GB82 WEST 1234 5698 7654 32')]
    """
    items = values.tolist() if isinstance(values, pd.Series) else list(values)
    wanted = set(SPAN_KINDS) if kinds is None else set(kinds)
    unknown = wanted - set(SPAN_KINDS)
    if unknown:
        raise ValueError(f"unknown span kind(s): {', '.join(sorted(unknown))} (kinds: {', '.join(SPAN_KINDS)})")
    row_of = np.arange(len(items), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    batch = _Joined(items)
    found = _Found()
    if items:
        if "email" in wanted:
            _find_emails(batch, found)
        if "url" in wanted:
            _find_urls(batch, found)
        if "iban" in wanted:
            _find_ibans(batch, found)
        if "card_number" in wanted:
            _find_cards(batch, found)
        if "national_id" in wanted:
            _find_national_ids(batch, found)
        if wanted & {*KEYWORD_KINDS, "national_id"}:
            _find_keyword_ids(batch, found, wanted)
        if "ip_address" in wanted:
            _find_ips(batch, found)
        if "phone" in wanted:
            _find_phones(batch, found, region)
        if NAME in wanted:
            _find_names(batch, found, names, row_of)
            _unspaced_row_names(batch, found, names, row_of)
    return _assemble(batch, found, items)


def _assemble(batch: _Joined, found: _Found, items: list[str]) -> Spans:
    columns = ("start", "end", "kind", "tier", "column", "row", "token", "token_end", "core_start", "core_end",
               "role")
    defaults: dict[str, object] = {"tier": "", "column": -1, "row": -1, "token": -1, "token_end": -1, "role": ""}
    merged: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    for part in found.parts:
        size = len(part["start"])
        for name in columns:
            if name in part:
                merged[name].append(part[name])
            elif name == "core_start":
                merged[name].append(part["start"])
            elif name == "core_end":
                merged[name].append(part["end"])
            else:
                default = defaults[name]
                merged[name].append(np.full(size, default, dtype=object if isinstance(default, str) else np.int64))
    if not found.parts:
        empty_int, empty_obj = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
        return Spans(empty_int, empty_int, empty_int, empty_obj, empty_obj, empty_int, empty_int, empty_int,
                     empty_int, empty_int, empty_int, empty_obj, items)
    arrays = {name: np.concatenate(merged[name]) for name in columns}
    order = np.argsort(arrays["start"], kind="stable")
    arrays = {name: array[order] for name, array in arrays.items()}
    value = batch.value_of(arrays["start"])
    base = batch.starts[value]
    return Spans(value=value, start=arrays["start"] - base, end=arrays["end"] - base,
                 kind=arrays["kind"].astype(object), tier=arrays["tier"].astype(object),
                 column=arrays["column"].astype(np.int64), row=arrays["row"].astype(np.int64),
                 token=arrays["token"].astype(np.int64), token_end=arrays["token_end"].astype(np.int64),
                 core_start=arrays["core_start"] - base,
                 core_end=arrays["core_end"] - base, role=arrays["role"].astype(object), source=items)

