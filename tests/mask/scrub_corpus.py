"""A generated, labelled corpus of free-text notes for measuring ``scrub``: every identifier's span is known.

Each note belongs to a row (a person with a first and last name, an e-mail address and a phone
number) and is ~30 words of support, clinical and HR prose: sentences that start with capitals,
places, months, job titles, amounts, dates, order numbers, versions, acronyms, German and French
sentences, accents, CJK text and emoji, with identifiers mixed in: the row's own names (as stored,
with Synthea-style digits such as ``Margorie48``, in upper or lower case, possessive), another row's
name, names only a dictionary or a title can give away (``Dr. Peteuil``, ``Jürgen Weber``), e-mail
addresses, phone numbers of several countries and formats, payment cards, IBANs, US SSNs (also
``9xx``), UK NI numbers, Swedish, Finnish and Spanish ids, passport, licence and member numbers after
their keyword, IP addresses and personal URL parts.

:func:`measure` compares found spans with the labels: span recall (a label is found when found spans
cover every character of it), the share of the other words left untouched, and per-kind recall.
The masking benchmark (``benchmarks/bench_scrub.py``) and the tests use the same generator and
:func:`replaced_regions` (what ``scrub`` replaces of each found span).

Example:
    >>> corpus = generate(20, seed=3)
    >>> len(corpus.notes), all(note[a:b] for note, spans in zip(corpus.notes, corpus.spans) for a, b, _ in spans)
    (20, True)
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

from datastage.cards import luhn_check_digit

Span = tuple[int, int, str]  # (start, end, kind) inside a note

FILLER = [
    "Please review the attached invoice before Friday.",
    "The package was delivered to the wrong address last week.",
    "Customer asked about the refund policy for damaged items.",
    "Follow-up scheduled for next Tuesday at 10:30.",
    "Order #48213 shipped on 2024-01-15 with 3 items, total $1,234.56.",
    "Ticket escalated to the billing team; ETA 48 hours.",
    "Blood pressure 128/82, heart rate 71, no fever.",
    "Prescribed amoxicillin 500 mg twice daily for 7 days.",
    "Patient reports mild pain in the lower back since March.",
    "Allergies: penicillin. Smoker, quit in 2019.",
    "Reviewed the quarterly performance goals and the training plan.",
    "Approved two days of annual leave in August.",
    "The app crashed after updating to version 2.4.1 on Android.",
    "Thanks for the quick reply, much appreciated!",
    "We will send a replacement unit by courier.",
    "Meeting moved to the Berlin office, room 4B.",
    "Customer prefers contact by e-mail after 6 pm.",
    "FYI the PDF export is still broken; see JIRA-2291.",
    "Discount of 15% applied, coupon SPRING24 expired.",
    "Next appointment in three weeks, fasting required.",
    "Shipment delayed by the storm in Florida.",
    "Payment received in full, account is in good standing.",
    "The warranty covers parts but not labour.",
    "Asked to close the account and delete the newsletter subscription.",
    "Visited the clinic in Munich during the conference in June.",
    "Relocating from Canada to Spain next spring.",
    "Upgraded to the premium plan, billed yearly at 99 EUR.",
    "Note: Wi-Fi password reset, router model AX3000.",
    "Der Kunde möchte die Rechnung per Post erhalten.",
    "Le client demande un remboursement pour la commande.",
    "Café order was wrong again, naïve mistake by the new supplier.",
    "Straße gesperrt, Lieferung verschoben. Größe M statt L.",
    "東京の倉庫から発送済み 👍 thanks!",
    "Server maintenance on Sunday between 01:00 and 03:00 UTC.",
    "Diagnosed with Parkinson's disease in 2015; family history of Alzheimer's.",
    "Suspected Crohn's disease, referred for colonoscopy.",
    "History of Bell's palsy and Lyme disease.",
    "Epstein-Barr virus test negative, Achilles tendon strain.",
    "Hodgkin lymphoma in remission, Down syndrome support group.",
    "Drives a Ford Focus, parked near the Hilton.",
    "Ordered a Dell XPS and a Samsung Galaxy S23.",
    "Office closed for Christmas and Easter Monday.",
    "Bought gift cards at McDonald's and Wendy's.",
    "Meeting at the Marriott in San Antonio next week.",
    "Uses Microsoft Teams and Google Chrome only.",
    "Mark the ticket as resolved once the refund clears.",
    "Bill was sent twice, please merge the invoices.",
    "Grant access to the shared drive for the new hire.",
    "Will call back after the holidays.",
    "Sent via FedEx to Fort Worth.",
    "Moved from Victoria to Alexandria last year.",
    "Apple Pay failed, switched to PayPal.",
    "Reviewed the Gantt chart with the Scrum team.",
    "Flight via Frankfurt, then a train from St. Pancras.",
    "Works as a {job} in {place}.",
    "Travelled to {place} in {month}.",
    "Moved to {place} last {month}, very happy there 😊.",
]


@dataclass
class Corpus:
    """Notes, their labelled spans, and the rows (names, e-mail, phone) the notes belong to."""

    notes: list[str]
    spans: list[list[Span]]
    first_names: list[str]
    last_names: list[str]
    emails: list[str]
    phones: list[str]
    words: list[int] = field(default_factory=list)  # words per note


class _Note:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.size = 0

    def text(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def span(self, text: str, kind: str) -> None:
        self.spans.append((self.size, self.size + len(text), kind))
        self.text(text)

    def value(self) -> str:
        return "".join(self.parts)


def _pseudo_name(rng: random.Random) -> str:
    """A name no dictionary holds (``Peteuil``, ``Xandrel``): only the row or a title can give it away."""
    onsets = ["b", "br", "ch", "d", "dr", "f", "g", "gr", "k", "kl", "l", "m", "n", "p", "pr", "qu", "r", "s",
              "st", "t", "tr", "v", "x", "z"]
    vowels = ["a", "e", "i", "o", "u", "eu", "ai", "ou", "y"]
    codas = ["", "l", "n", "r", "s", "th", "x", "il", "rn", "nd"]
    word = "".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(rng.choice((2, 3))))
    return word[:1].upper() + word[1:]


def _card(rng: random.Random) -> str:
    prefix = rng.choice(["4539", "4716", "4929", "5425", "5191", "5500", "2221"])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(11))
    number = body + luhn_check_digit(body)
    style = rng.random()
    if style < 0.5:
        return " ".join(number[i:i + 4] for i in range(0, 16, 4))
    if style < 0.7:
        return "-".join(number[i:i + 4] for i in range(0, 16, 4))
    return number


def _iban(rng: random.Random) -> str:
    country, length = rng.choice([("DE", 18), ("GB", 18), ("FR", 23), ("NL", 14), ("ES", 20)])
    if country == "GB":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + \
            "".join(rng.choice(string.digits) for _ in range(14))
    elif country == "NL":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + \
            "".join(rng.choice(string.digits) for _ in range(10))
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(length))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    iban = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.6 else iban


def _phone(rng: random.Random) -> str:
    def digits(n: int, first: str = "23456789") -> str:
        return rng.choice(first) + "".join(rng.choice(string.digits) for _ in range(n - 1))

    area, exchange, line = digits(3), digits(3), digits(4, string.digits)
    formats = [
        f"({area}) {exchange}-{line}", f"{area}-{exchange}-{line}", f"+1 {area} {exchange} {line}",
        f"{area}.{exchange}.{line}", f"+1-{area}-{exchange}-{line}", f"{exchange}-{line}",
        f"+44 20 {digits(4)} {digits(4, string.digits)}", f"020 {digits(4)} {digits(4, string.digits)}",
        f"07{digits(3, '123456789')} {digits(6, string.digits)}", f"+49 30 {digits(8)}",
        f"030 {digits(4)} {digits(4, string.digits)}", f"+33 1 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        f"06 {digits(2)} {digits(2)} {digits(2)} {digits(2)}", f"+34 91 {digits(3)} {digits(2)} {digits(2)}",
    ]
    return rng.choice(formats)


def _ssn(rng: random.Random) -> str:
    area = rng.choice([f"{rng.randint(1, 665):03d}", f"{rng.randint(667, 899):03d}", f"9{rng.randint(0, 99):02d}"])
    return f"{area}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _nino(rng: random.Random) -> str:
    first, second = rng.choice("ABCEGHJKLMNPRSTWXYZ"), rng.choice("ABCEGHJKLMNPRSTWXYZ")
    while first + second in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
        second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    digits = [f"{rng.randint(0, 99):02d}" for _ in range(3)]
    return f"{first}{second} {' '.join(digits)} {rng.choice('ABCD')}" if rng.random() < 0.5 else \
        f"{first}{second}{''.join(digits)}{rng.choice('ABCD')}"


def _swedish_id(rng: random.Random) -> str:
    body = f"{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    total = 0
    for i, c in enumerate(body):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return f"{body[:6]}-{body[6:]}{(10 - total % 10) % 10}"


def _finnish_id(rng: random.Random) -> str:
    date = f"{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}{rng.randint(40, 99):02d}"
    serial = f"{rng.randint(2, 899):03d}"
    return f"{date}-{serial}{'0123456789ABCDEFHJKLMNPRSTUVWXY'[int(date + serial) % 31]}"


def _spanish_id(rng: random.Random) -> str:
    number = rng.randint(10_000_000, 99_999_999)
    return f"{number}{'TRWAGMYFPDXBNJZSQVHLCKE'[number % 23]}"


def _email(rng: random.Random, first: str, last: str) -> str:
    clean = re.sub(r"[^a-z]", "", (first + "." + last).lower().encode("ascii", "ignore").decode()) or "user"
    local = rng.choice([f"{clean}", f"{clean[:1]}{clean.split('.')[-1] if '.' in clean else clean}{rng.randint(1, 99)}",
                        f"{clean.replace('.', '_')}"])
    return f"{local}@{rng.choice(['example.org', 'mail.example', 'post.example.de', 'firma.example.com'])}"


def _plain(draw: Any) -> str:
    """A name as people write it: Faker's sorting forms ("Dussen, van") and initials ("Hans D.") drawn again."""
    while True:
        name = str(draw())
        particles = ("van", "de", "der", "den", "von", "ter", "ten")
        if not re.search(r"[,.]|'t\b|\s(?:van|de|der|den|von|I|II|III|IV)$", name) and \
                all(word[:1].isupper() or word in particles for word in name.split()):
            return name


def _strip_digits(name: str) -> str:
    return re.sub(r"\d+", "", name)


def generate(count: int, seed: int = 0) -> Corpus:
    """``count`` labelled notes of ~30 words, one per row, reproducible for the same ``seed``."""
    rng = random.Random(seed)
    fakers = [Faker(locale) for locale in ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pl_PL", "nl_NL")]
    for i, fake in enumerate(fakers):
        fake.seed_instance(seed * 31 + i)
    places = ["Canada", "Spain", "Portugal", "Norway", "Ireland", "Texas", "Ohio", "Bavaria", "Lyon", "Hamburg",
              "Vienna", "Toronto", "Brazil", "Japan", "Mexico", "Chile", "Poland", "Kenya"]
    months = ["January", "February", "March", "April", "June", "July", "September", "October", "November"]
    jobs = [fakers[0].job().split(",")[0] for _ in range(60)]
    firsts, lasts, emails, phones = [], [], [], []
    for _ in range(count):
        fake = rng.choice(fakers)
        first = _plain(fake.first_name) if rng.random() < 0.85 else _pseudo_name(rng)
        last = _plain(fake.last_name) if rng.random() < 0.8 else _pseudo_name(rng)
        if rng.random() < 0.3:  # Synthea writes digits after names
            first, last = f"{first}{rng.randint(1, 999)}", f"{last}{rng.randint(1, 999)}"
        firsts.append(first)
        lasts.append(last)
        emails.append(_email(rng, _strip_digits(first), _strip_digits(last)))
        phones.append(_phone(rng))
    notes, spans, words = [], [], []
    for row in range(count):
        note = _Note()
        target = rng.randint(24, 36)
        while len(note.value().split()) < target:
            if note.parts:
                note.text(" ")
            if rng.random() < 0.45:
                _filler(note, rng, places, months, jobs)
            else:
                _identifier_sentence(note, rng, row, firsts, lasts, emails, phones, fakers)
        notes.append(note.value())
        spans.append(note.spans)
        words.append(len(note.value().split()))
    return Corpus(notes, spans, firsts, lasts, emails, phones, words)


def _filler(note: _Note, rng: random.Random, places: list[str], months: list[str], jobs: list[str]) -> None:
    sentence = rng.choice(FILLER)
    note.text(sentence.format(job=rng.choice(jobs).lower(), place=rng.choice(places), month=rng.choice(months)))


def _row_name(rng: random.Random, name: str) -> str:
    """The row's name as a note writes it: as stored, without its digits, upper or lower case."""
    style = rng.random()
    if style < 0.55:
        return name
    if style < 0.8:
        return _strip_digits(name)
    if style < 0.9:
        return _strip_digits(name).upper()
    return _strip_digits(name).lower()


def _identifier_sentence(note: _Note, rng: random.Random, row: int, firsts: list[str], lasts: list[str],
                         emails: list[str], phones: list[str], fakers: list[Faker]) -> None:
    choice = rng.randrange(17)
    first, last = firsts[row], lasts[row]
    other = rng.randrange(len(firsts))
    if choice == 0:
        note.text("Spoke with ")
        note.span(_row_name(rng, first), "name")
        note.text(" ")
        note.span(_row_name(rng, last), "name")
        note.text(" about the open balance.")
    elif choice == 1:
        note.span(_strip_digits(first), "name")
        note.text(rng.choice([" called back", " asked for a callback", " confirmed the booking"]) + ".")
    elif choice == 2:
        note.text("Reach ")
        note.span(_strip_digits(first), "name")
        note.text(" at ")
        note.span(emails[row], "email")
        note.text(rng.choice([" or ", ", or call "]))
        note.span(phones[row], "phone")
        note.text(".")
    elif choice == 3:
        note.text("Mrs. " if rng.random() < 0.5 else "Mr. ")
        note.span(_strip_digits(last), "name")
        note.text("'s daughter will bring the documents.")
    elif choice == 4:
        fake = rng.choice(fakers)
        note.text(rng.choice(["Referred by Dr. ", "Seen by Dr. ", "Escalated to Prof. "]))
        note.span(_plain(fake.last_name) if rng.random() < 0.6 else _pseudo_name(rng), "name")
        note.text(".")
    elif choice == 5:
        fake = rng.choice(fakers)
        note.text(rng.choice(["Her neighbour ", "Emergency contact: ", "Witness "]))
        note.span(_plain(fake.first_name), "name")
        note.text(" ")
        note.span(_plain(fake.last_name), "name")
        note.text(rng.choice([" was informed.", ", no answer.", " signed."]))
    elif choice == 6:
        note.text("Also mentioned ")
        note.span(_strip_digits(firsts[other]), "name")
        note.text(" ")
        note.span(_strip_digits(lasts[other]), "name")
        note.text(" from the same household.")
    elif choice == 7:
        note.text("Card ")
        note.span(_card(rng), "card_number")
        note.text(" was declined twice.")
    elif choice == 8:
        note.text("Refund to IBAN ")
        note.span(_iban(rng), "iban")
        note.text(" requested.")
    elif choice == 9:
        note.text(rng.choice(["SSN ", "Social security number: ", "SSN on file "]))
        note.span(_ssn(rng), "national_id")
        note.text(".")
    elif choice == 10:
        kind, text = rng.choice([("national_id", "NI number "), ("national_id", "personnummer "),
                                 ("national_id", "HETU "), ("national_id", "DNI ")])
        value = {"NI number ": _nino, "personnummer ": _swedish_id, "HETU ": _finnish_id, "DNI ": _spanish_id}[text]
        note.text(text)
        note.span(value(rng), kind)
        note.text(" verified.")
    elif choice == 11:
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.choice((1, 2))))
        note.text(rng.choice(["Passport no. ", "passport number ", "Passport: "]))
        note.span(letters + str(rng.randint(1_000_000, 9_999_999)), "passport")
        note.text(" expires in 2027.")
    elif choice == 12:
        note.text(rng.choice(["DL# ", "Driver's licence ", "driving license no. "]))
        code = f"{rng.choice(string.ascii_uppercase)}{rng.randint(100, 999)}-{rng.randint(1000, 9999)}-" \
               f"{rng.randint(1000, 9999)}"
        note.span(code if rng.random() < 0.5 else code.replace("-", ""), "drivers_licence")
        note.text(" checked at the desk.")
    elif choice == 13:
        note.text(rng.choice(["Member ID: ", "Policy number ", "MRN "]))
        kind = "medical_record_number" if note.parts[-1].startswith("MRN") else "health_plan_id"
        note.span(f"{rng.choice(['', 'AB', 'XK'])}{rng.randint(100000, 99999999)}", kind)
        note.text(" updated.")
    elif choice == 14:
        note.text("Login from ")
        note.span(f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                  "ip_address")
        note.text(" blocked.")
    elif choice == 15:
        note.text("Profile: https://www.linkedin.com/in/")
        slug = re.sub(r"[^a-z]", "", _strip_digits(first).lower()) + "-" + \
            re.sub(r"[^a-z]", "", _strip_digits(last).lower())
        note.span(slug, "url")
        note.text(" (public).")
    else:
        note.text("顧客 ")
        note.span(_strip_digits(last), "name")
        note.text("様、メール ")
        note.span(emails[row], "email")
        note.text(" 🙏")


def replaced_regions(spans: Any, count: int) -> list[list[tuple[int, int]]]:
    """Per note, the (start, end) that ``scrub`` replaces for each of :func:`find_spans`' spans: the whole
    span, but of a name only the name with digits glued to a stored one (``Margorie48``), not a
    possessive ``'s`` and not the digits after a dictionary name, which stay."""
    found: list[list[tuple[int, int]]] = [[] for _ in range(count)]
    for value, start, end, kind, tier, core_start, core_end in zip(
            spans.value.tolist(), spans.start.tolist(), spans.end.tolist(), spans.kind.tolist(), spans.tier.tolist(),
            spans.core_start.tolist(), spans.core_end.tolist(), strict=True):
        if kind != "name":
            found[value].append((start, end))
        elif tier == "dictionary":
            found[value].append((core_start, core_end))
        else:
            tail = spans.source[value][core_end:end]
            found[value].append((start, core_end + len(tail.rstrip("'’sS"))))
    return found


WORD = re.compile(r"[^\W_]+", re.UNICODE)


def measure(corpus: Corpus, found: list[list[tuple[int, int]]]) -> dict[str, Any]:
    """Span recall, other words kept and per-kind recall of ``found`` (per note: (start, end) spans)."""
    labelled = hits = other = kept = false_spans = 0
    per_kind: Counter[str] = Counter()
    per_kind_hit: Counter[str] = Counter()
    missed: list[tuple[str, str]] = []
    lost: Counter[str] = Counter()
    for note, truth, spans in zip(corpus.notes, corpus.spans, found, strict=True):
        covered = bytearray(len(note))
        for a, b in spans:
            covered[a:b] = b"\x01" * (b - a)
        labelled_chars = bytearray(len(note))
        for a, b, kind in truth:
            labelled_chars[a:b] = b"\x01" * (b - a)
            labelled += 1
            per_kind[kind] += 1
            if all(covered[i] for i in range(a, b) if note[i].isalnum()):
                hits += 1
                per_kind_hit[kind] += 1
            elif len(missed) < 40:
                missed.append((kind, note[a:b]))
        for word in WORD.finditer(note):
            a, b = word.span()
            if any(labelled_chars[a:b]):
                continue
            other += 1
            if any(covered[a:b]):
                lost[word.group(0)] += 1
            else:
                kept += 1
        false_spans += sum(1 for a, b in spans if not any(labelled_chars[a:b]))
    return {
        "notes": len(corpus.notes),
        "labelled_spans": labelled,
        "span_recall": hits / labelled if labelled else 1.0,
        "other_words": other,
        "other_words_kept": kept / other if other else 1.0,
        "false_spans": false_spans,
        "recall_by_kind": {k: per_kind_hit[k] / per_kind[k] for k in sorted(per_kind)},
        "missed": missed,
        "lost_words": lost.most_common(30),
    }
