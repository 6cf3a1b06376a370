"""Free-text corpus for ``scrub``: notes with every identifier span labelled, and the measurement.

Each note belongs to a row that also holds the person's ``first_name``, ``last_name``,
``email`` and ``phone``; the note names that person (sometimes with Synthea-style digits, an
invented surname or diacritics), other people from dictionaries, and e-mails, phones, cards,
IBANs, SSNs, driver's licences, passports and plates; some notes are JSON strings. Every
identifier's position is recorded as a :class:`Span`.

:func:`measure_scrub` masks the ``note`` column with the strategy named ``scrub`` through the
masking engine (beside ``email``/``phone``/``person.*`` rules for the structured columns) and
reports *span recall* (share of labelled spans whose text no longer appears in the scrubbed
note), *words kept* (share of the other words still present unchanged) and *consistency*
(share of notes quoting the row's e-mail whose scrubbed text holds the masked e-mail column).
Without a registered ``scrub`` strategy it reports "not available".

Example:
    >>> note = notes(seed=1, count=20)[0]
    >>> all(note.text[s.start:s.end] == s.text for s in note.spans)
    True
    >>> words_of("Call Ann at 555-0101, room 12.", [Span(5, 8, "first_name", "Ann")])
    ['Call', 'at', '555', '0101', 'room', '12']
"""

from __future__ import annotations

import json
import random
import re
import tempfile
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
import yaml
from corpus_kit import digits, faker, invented_surname, letters, luhn_complete, plate, us_phone, with_digits

from datastage.errors import DatastageError
from datastage.mask.engine import MaskingEngine
from datastage.mask.keys import MaskingKey
from datastage.mask.policy import policy_from_text
from datastage.mask.registry import get_strategy
from datastage.mask.resolve import resolve_policy
from datastage.source.schema import reflect

KIND_OF = {"first": "first_name", "last": "last_name", "full": "full_name", "other": "full_name",
           "email": "email", "phone": "phone", "card": "card_number", "iban": "iban", "ssn": "national_id",
           "licence": "drivers_licence", "passport": "passport", "plate": "vehicle_id"}
TEMPLATES = [
    "Patient {first} {last} called from {phone} about the refill of Metformin 500 mg. Follow up in June.",
    "{full} asked us to send the invoice to {email}; card on file {card}, please do not charge before Monday.",
    "Refund to IBAN {iban} approved for {first}. Ticket closed by the support team after 2 days.",
    "Driver licence {licence} and passport {passport} checked at the front desk for {last}, {first}.",
    "Witness saw a car with plate {plate} leave at midnight; {first} {last} gave SSN {ssn} for the record.",
    "Met {first} together with her brother {other}; both agreed to the new schedule. Call back at {phone}.",
    "Mr {last} reports dizziness since May. Wife {other} can be reached at {email} or {phone}.",
    "Customer says the parcel never arrived. Contact {first} {last} via {email} before Friday, order 4471.",
    "Sehr geehrte Frau {last}, wir haben Ihre Nachricht an {email} erhalten und rufen unter {phone} zurück.",
    "{first} a signalé une panne; rappeler {full} au {phone}. Aucune autre action requise.",
]
JSON_TEMPLATES = [
    '{{"author": "{full}", "contact": "{email}", "text": "Please call {phone} after 5 pm, room 12."}}',
    '{{"event": "signup", "user": {{"name": "{first} {last}", "ssn": "{ssn}"}}, "plan": "gold"}}',
    '{{"comment": "Paid with {card}; {other} witnessed the delivery", "rating": 4}}',
]
LOCALES = ["en_US", "de_DE", "fr_FR", "es_ES", "pt_BR", "no_NO", "pl_PL"]
KEY = MaskingKey(b"corpus measurement key, not a secret: 0123456789", source="corpus")


@dataclass(frozen=True)
class Span:
    """One identifier inside a note: where, what kind, and its text."""

    start: int
    end: int
    kind: str
    text: str


@dataclass
class Note:
    """A note, the row it belongs to and its labelled identifier spans."""

    id: int
    row: dict[str, str]
    text: str
    spans: list[Span]


def _iban(rng: random.Random) -> str:
    """A German IBAN with a valid mod-97 check, grouped in fours."""
    bban = digits(rng, 18)
    numeric = int(bban + "131400")  # D=13, E=14, check digits 00
    check = 98 - numeric % 97
    raw = f"DE{check:02d}{bban}"
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def _card(rng: random.Random) -> str:
    """A Luhn-valid Visa, Mastercard or Amex number, sometimes grouped."""
    prefix, length = rng.choice([("4", 16), ("51", 16), ("37", 15)])
    number = luhn_complete(prefix + digits(rng, length - len(prefix) - 1))
    if rng.random() < 0.3:
        return " ".join(number[i:i + 4] for i in range(0, len(number), 4))
    return number


def _render(template: str, values: dict[str, str]) -> tuple[str, list[Span]]:
    parts: list[str] = []
    spans: list[Span] = []
    at = 0
    pos = 0
    for match in re.finditer(r"\{(\w+)\}|\{\{|\}\}", template):
        literal = template[pos:match.start()]
        parts.append(literal)
        at += len(literal)
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
            at += 1
        else:
            key = match.group(1)
            text = values[key]
            spans.extend(_split_span(at, text, KIND_OF[key]))
            parts.append(text)
            at += len(text)
        pos = match.end()
    parts.append(template[pos:])
    return "".join(parts), spans


def _split_span(at: int, text: str, kind: str) -> list[Span]:
    """Names are labelled word by word (``Arthur Gabriel474``: two spans), so each word must go."""
    if kind not in ("first_name", "last_name", "full_name"):
        return [Span(at, at + len(text), kind, text)]
    out = []
    for m in re.finditer(r"\S+", text):
        out.append(Span(at + m.start(), at + m.end(), kind, m.group(0)))
    return out


def notes(seed: int = 19, count: int = 300) -> list[Note]:
    """``count`` labelled notes (a tenth of them JSON strings), reproducibly from ``seed``."""
    rng = random.Random(seed)
    fakes = {loc: faker(seed + i, loc) for i, loc in enumerate(LOCALES)}
    out = []
    for i in range(count):
        fake = fakes[rng.choice(LOCALES)]
        first, last = fake.first_name(), fake.last_name()
        style = rng.random()
        if style < 0.2:  # Synthea style: digits glued on
            first, last = with_digits(first, rng), with_digits(last, rng)
        elif style < 0.3:  # a surname in no dictionary
            last = invented_surname(rng)
        plain = unicodedata.normalize("NFKD", re.sub(r"[\d\s']+", "", f"{first}.{last}").lower())
        plain = plain.encode("ascii", "ignore").decode()
        row = {"first_name": first, "last_name": last,
               "email": f"{plain}{rng.randint(1, 99)}@{rng.choice(['example.com', 'example.org', 'mail.example'])}",
               "phone": us_phone(rng)}
        other = fakes[rng.choice(LOCALES)]
        values = {"first": first, "last": last, "full": f"{first} {last}", "email": row["email"], "phone": row["phone"],
                  "other": f"{other.first_name()} {other.last_name()}",
                  "card": _card(rng),
                  "iban": _iban(rng), "ssn": f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
                  "licence": f"{letters(rng, 1)}{digits(rng, 7)}", "passport": f"{letters(rng, 1)}{digits(rng, 8)}",
                  "plate": plate(rng)}
        template = rng.choice(JSON_TEMPLATES) if rng.random() < 0.1 else rng.choice(TEMPLATES)
        text, spans = _render(template, values)
        if template.startswith("{{"):
            json.loads(text)  # the JSON templates render to valid JSON
        out.append(Note(i + 1, row, text, spans))
    return out


def words_of(text: str, spans: list[Span]) -> list[str]:
    """The words of ``text`` outside ``spans``."""
    chars = list(text)
    for span in spans:
        chars[span.start:span.end] = " " * (span.end - span.start)
    return re.findall(r"\w+", "".join(chars))


def _present(span: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(span)}(?!\w)", text) is not None


@dataclass
class ScrubMeasurement:
    """``scrub`` on the labelled notes: span recall, words kept, consistency, misses."""

    available: bool
    reason: str = ""
    notes: int = 0
    spans: int = 0
    spans_removed: int = 0
    words: int = 0
    words_kept: int = 0
    quoted_emails: int = 0
    consistent_emails: int = 0
    seconds: float = 0.0
    rules: str = ""
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [spans, removed]
    misses: list[str] = field(default_factory=list)
    lost_words: Counter[str] = field(default_factory=Counter)

    @property
    def span_recall(self) -> float:
        return self.spans_removed / self.spans if self.spans else 0.0

    @property
    def words_kept_share(self) -> float:
        return self.words_kept / self.words if self.words else 0.0

    @property
    def consistency(self) -> float:
        return self.consistent_emails / self.quoted_emails if self.quoted_emails else 0.0

    def report(self) -> str:
        if not self.available:
            return f"scrub: not available ({self.reason})"
        lines = [f"scrub: {self.notes} notes, {self.spans} identifier spans, recall {self.span_recall:.1%}; "
                 f"{self.words} other words, kept {self.words_kept_share:.1%}; e-mails consistent with the column "
                 f"{self.consistency:.0%} of {self.quoted_emails}; {self.seconds:.2f} s ({self.rules})",
                 "  by kind: " + ", ".join(f"{k} {r}/{t}" for k, (t, r) in sorted(self.by_kind.items()))]
        if self.misses:
            lines.append(f"  spans left ({len(self.misses)}, first 20):")
            lines.extend(f"    {m}" for m in self.misses[:20])
        if self.lost_words:
            lines.append("  words changed (most common): " + ", ".join(
                f"{w} x{n}" for w, n in self.lost_words.most_common(15)))
        return "\n".join(lines)


RULES = """version: 1
default: keep
tables:
  notes:
    email: email
    phone: phone
    first_name: person.first_name
    last_name: person.last_name
    note: {scrub}
"""
MINIMAL_RULES = "version: 1\ndefault: keep\ntables:\n  notes:\n    note: {scrub}\n"


def _notes_db(items: list[Note], directory: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{directory / 'notes.db'}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, "
                             "email TEXT, phone TEXT, note TEXT)")
        conn.execute(sa.text("INSERT INTO notes VALUES (:id, :first_name, :last_name, :email, :phone, :note)"),
                     [{"id": n.id, **n.row, "note": n.text} for n in items])
    return engine


def measure_scrub(items: list[Note] | None = None, rule: str = "scrub") -> ScrubMeasurement:
    """Scrub the notes with ``rule`` (a strategy name or flow mapping) through the masking engine and measure."""
    name = str((yaml.safe_load(rule) if rule.startswith("{") else {"strategy": rule}).get("strategy"))
    if get_strategy(name) is None:
        return ScrubMeasurement(False, f"no strategy named '{name}' is registered")
    items = notes() if items is None else items
    with tempfile.TemporaryDirectory() as folder:
        engine = _notes_db(items, Path(folder))
        try:
            with engine.connect() as conn:
                model = reflect(conn)
                frame = pd.read_sql_query("SELECT * FROM notes ORDER BY id", conn, dtype=object)
        finally:
            engine.dispose()
    resolved = None
    used = ""
    problems = []
    for name, text in (("structured columns masked too", RULES), ("note only", MINIMAL_RULES)):
        try:
            resolved = resolve_policy(policy_from_text(text.format(scrub=rule)), model)
            used = name
            break
        except DatastageError as exc:
            problems.append(str(exc).splitlines()[0])
    if resolved is None:
        return ScrubMeasurement(False, f"the rules do not resolve: {'; '.join(problems)}")
    started = time.perf_counter()
    masked, _ = MaskingEngine(resolved, KEY).mask_batch("notes", frame)
    seconds = time.perf_counter() - started
    result = ScrubMeasurement(True, notes=len(items), seconds=seconds, rules=used)
    for note, (_, out) in zip(items, masked.iterrows()):
        scrubbed = str(out["note"])
        for span in note.spans:
            total = result.by_kind.setdefault(span.kind, [0, 0])
            total[0] += 1
            result.spans += 1
            if _present(span.text, scrubbed):
                result.misses.append(f"note {note.id}: {span.kind} {span.text!r}")
            else:
                total[1] += 1
                result.spans_removed += 1
        expected = Counter(words_of(note.text, note.spans))
        kept = expected & Counter(re.findall(r"\w+", scrubbed))
        result.words += sum(expected.values())
        result.words_kept += sum(kept.values())
        result.lost_words.update(expected - kept)
        if note.row["email"] in note.text and used.startswith("structured"):
            result.quoted_emails += 1
            result.consistent_emails += str(out["email"]) in scrubbed
    return result


def summary(measurement: ScrubMeasurement) -> dict[str, Any]:
    """The figures as a plain dict (for the benchmark's output)."""
    return {"available": measurement.available, "span_recall": round(measurement.span_recall, 4),
            "words_kept": round(measurement.words_kept_share, 4), "consistency": round(measurement.consistency, 4)}
