"""Identifier spans in free text: each kind, validation, overlaps, name tiers, non-ASCII text, batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datastage.identify.spans import SPAN_KINDS, find_spans, name_words, national_id_valid, phone_possible


def found(text: str, **kwargs: object) -> list[tuple[str, str]]:
    spans = find_spans([text], **kwargs)  # type: ignore[arg-type]
    return list(zip(spans.kind.tolist(), spans.texts(spans.source), strict=True))


@pytest.mark.parametrize(("text", "kind", "span"), [
    ("write to Ann.Lee+crm@mail.example.co.uk today", "email", "Ann.Lee+crm@mail.example.co.uk"),
    ("adresse: zoë@exemple.fr.", "email", "zoë@exemple.fr"),
    ("call (415) 555-0142 after 5", "phone", "(415) 555-0142"),
    ("ring +44 20 7946 0018 or", "phone", "+44 20 7946 0018"),
    ("Tel. 030 1234 5678, danke", "phone", "030 1234 5678"),
    ("mobile 07911 123456", "phone", "07911 123456"),
    ("local 555-0142 only", "phone", "555-0142"),
    ("tel 4155550142", "phone", "4155550142"),
    ("card 4539 1488 0343 6467 declined", "card_number", "4539 1488 0343 6467"),
    ("card 5425-2334-3010-9903.", "card_number", "5425-2334-3010-9903"),
    ("IBAN GB82 WEST 1234 5698 7654 32 ok", "iban", "GB82 WEST 1234 5698 7654 32"),
    ("IBAN DE89370400440532013000.", "iban", "DE89370400440532013000"),
    ("SSN 999-33-2827 on file", "national_id", "999-33-2827"),
    ("SSN 536-90-4399 on file", "national_id", "536-90-4399"),
    ("NI number AB 12 34 56 C", "national_id", "AB 12 34 56 C"),
    ("personnummer 811218-9876 ok", "national_id", "811218-9876"),
    ("HETU 131052-308T", "national_id", "131052-308T"),
    ("codice fiscale RSSMRA85T10A562S", "national_id", "RSSMRA85T10A562S"),
    ("DNI 12345678Z", "national_id", "12345678Z"),
    ("passport no. X1234567 expires", "passport", "X1234567"),
    ("Passport number: 123456789", "passport", "123456789"),
    ("DL# S123-4567-8901 checked", "drivers_licence", "S123-4567-8901"),
    ("driver's licence D1234567", "drivers_licence", "D1234567"),
    ("Member ID: ABC123456, thanks", "health_plan_id", "ABC123456"),
    ("MRN 00123456 updated", "medical_record_number", "00123456"),
    ("licence number is LN-448812", "licence_number", "LN-448812"),
    ("login from 192.168.10.20 blocked", "ip_address", "192.168.10.20"),
    ("login from 2001:db8::8a2e:370:7334 blocked", "ip_address", "2001:db8::8a2e:370:7334"),
    ("see https://www.linkedin.com/in/ann-lee-123 now", "url", "ann-lee-123"),
])
def test_each_kind_is_found_in_text(text: str, kind: str, span: str) -> None:
    assert (kind, span) in found(text)


@pytest.mark.parametrize("text", [
    "Order #48213 shipped on 2024-01-15 with 3 items, total $1,234.56.",
    "Blood pressure 128/82, heart rate 71, follow-up at 10:30 on 12.03.2024.",
    "Version 2.4.1 released in 2019-2021; ZIP 94105-1234; invoice 2024-118.",
    "card 4539 1488 0343 6468 fails Luhn, IBAN GB83WEST12345698765432 fails mod 97",
    "SSN 000-12-3456 and 666-12-3456 are never issued",
    "room 4B, 500 mg twice daily for 7 days, 15% off, AX3000",
    "Patient reports mild pain since March; member since 2019; policy 2024.",
])
def test_numbers_that_are_no_identifier_are_left(text: str) -> None:
    assert [k for k, _ in found(text) if k != "name"] == []


def test_candidates_are_validated() -> None:
    assert national_id_valid("ssn", "999-33-2827") and not national_id_valid("ssn", "123-00-4567")
    assert national_id_valid("es", "12345678Z") and not national_id_valid("es", "12345678A")
    assert national_id_valid("nino", "AB123456C") and not national_id_valid("nino", "GB123456C")
    assert phone_possible("+1 415 555 0142") and not phone_possible("+1 415 555 01")


def test_the_stronger_kind_wins_an_overlap() -> None:
    # The name inside the address, the digits inside the IBAN and the card are not spans of their own.
    spans = found("ann.lee@example.org; IBAN DE89 3704 0044 0532 0130 00", names=[pd.Series(["Ann Lee"])])
    assert spans == [("email", "ann.lee@example.org"), ("iban", "DE89 3704 0044 0532 0130 00")]


def test_the_rows_own_names_in_any_case_with_digits_and_accents() -> None:
    notes = ["MARGORIE called; margorie48 said Cormier's file is ok", "Zoe Orsted and ZOË ØRSTED", "Sam Poe"]
    # The third row has no names: its note's names come from the dictionaries.
    firsts = pd.Series(["Margorie48", "Zoë", None])
    lasts = pd.Series(["Cormier289", "Ørsted", None])
    spans = find_spans(notes, names=[firsts, lasts])
    rows = [(int(v), t, tier, int(c), int(r)) for v, t, tier, c, r in zip(spans.value, spans.texts(notes), spans.tier,
                                                                        spans.column, spans.row, strict=True)]
    assert rows == [(0, "MARGORIE", "row", 0, 0), (0, "margorie48", "row", 0, 0), (0, "Cormier's", "row", 1, 0),
                    (1, "Zoe", "row", 0, 1), (1, "Orsted", "row", 1, 1), (1, "ZOË", "row", 0, 1),
                    (1, "ØRSTED", "row", 1, 1), (2, "Sam", "dictionary", -1, -1), (2, "Poe", "dictionary", -1, -1)]
    # The possessive is outside the name itself.
    cormier = int(np.flatnonzero(np.array(spans.texts(notes), dtype=object) == "Cormier's")[0])
    assert notes[0][spans.core_start[cormier]:spans.core_end[cormier]] == "Cormier"


def test_other_rows_names_then_dictionaries() -> None:
    notes = ["Also saw Xandrel Quorvin and Dr. Peteuil with Mary Smith", "xandrel is lower case"]
    # Rows 0 and 1 hold the notes; row 2 (a note of its own elsewhere) is Xandrel Quorvin.
    spans = find_spans(notes, names=[pd.Series(["Bob", "Ann", "Xandrel Quorvin"])], rows=[0, 1])
    got = list(zip(spans.texts(notes), spans.tier, spans.row.tolist(), strict=True))
    # Another row's full name is one span; lower case is no capitalised name of another row.
    assert got == [("Xandrel Quorvin", "table", 2), ("Peteuil", "dictionary", -1), ("Mary", "dictionary", -1),
                   ("Smith", "dictionary", -1)]
    assert spans.role.tolist()[-2:] == ["first", "last"]


def test_multi_word_names_and_particles_are_one_span() -> None:
    notes = ["Spoke with José Antonio and Mr. van der Linden", "Referred by Dr. de Bruijn, Jan van Loon too"]
    spans = find_spans(notes, names=[pd.Series(["José Antonio", None]), pd.Series(["van der Linden", None])])
    assert spans.texts(notes) == ["José Antonio", "van der Linden", "de Bruijn", "Jan", "van Loon"]
    assert spans.tier.tolist() == ["row", "row", "dictionary", "dictionary", "dictionary"]
    assert (spans.token.tolist()[:2], spans.token_end.tolist()[:2]) == ([0, 0], [1, 2])


@pytest.mark.parametrize("text", [
    "Please review the invoice. Will call back in May about Mark's ticket.",
    "Grant access to the shared drive; Bill was sent twice.",
    "Diagnosed with Parkinson's disease; Down syndrome support group; Bell's palsy.",
    "Meeting at the Marriott in San Antonio, then Fort Worth and Paris in June.",
    "Bought gift cards at McDonald's and Wendy's. Office closed for Christmas.",
    "Der Kunde möchte die Rechnung per Post erhalten. IBAN missing, SSN unknown, DOB n/a.",
])
def test_everyday_capitalised_words_are_no_names(text: str) -> None:
    assert found(text) == []


def test_non_ascii_text_around_spans_stays_outside_them() -> None:
    text = "顧客 田中様、メール tanaka@example.jp 😀 電話 +81 3-1234-5678 ありがとう; Straße Größe ß, Jürgen Weber café"
    assert found(text) == [("email", "tanaka@example.jp"), ("phone", "+81 3-1234-5678"), ("name", "Jürgen"),
                           ("name", "Weber")]


def test_the_rows_names_in_scripts_without_spaces() -> None:
    notes = ["顧客の田中様から電話、太郎さんは不在。", "田中 is another row's name here"]
    spans = find_spans(notes, names=[pd.Series(["田中 太郎", "Ann"])])
    assert list(zip(spans.value.tolist(), spans.texts(notes), spans.token.tolist(), strict=True)) == [
        (0, "田中", 0), (0, "太郎", 1)]


def test_a_batch_maps_every_span_to_its_value_and_keeps_nuls() -> None:
    values = ["", "no identifiers here", "a\x00b ann@x.org", "call 555-0142", "x" * 3]
    spans = find_spans(values)
    assert list(zip(spans.value.tolist(), spans.texts(values), strict=True)) == [(2, "ann@x.org"), (3, "555-0142")]
    assert spans.counts() == {"email": 1, "phone": 1}
    assert len(find_spans([])) == 0


def test_kinds_limit_the_search_and_unknown_kinds_are_refused() -> None:
    assert found("ann@x.org or 555-0142", kinds=["phone"]) == [("phone", "555-0142")]
    assert "name" in SPAN_KINDS
    with pytest.raises(ValueError, match="unknown span kind"):
        find_spans(["x"], kinds=["emails"])


def test_name_words_leave_titles_and_suffixes_out() -> None:
    assert name_words("Dr. Mary-Ann van Dijk Jr.") == ["Mary-Ann", "van", "Dijk"]


PIECES = ["ann@x.org", "+44 20 7946 0018", "4539 1488 0343 6467", "SSN 999-33-2827", "Dr. Smith", "Mary Lee",
          "van der Berg", "passport no. X1234567", "192.168.0.1", "https://x.com/in/ann", "Margorie48", "Zoë's",
          "日本語", "😀", "-", "'s", ".", "\n", "\x00"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=10).map(" ".join),
                max_size=12))
def test_spans_are_sorted_disjoint_and_inside_their_values(values: list[str]) -> None:
    names = [pd.Series(["Mary Lee", "Margorie48", None, "van der Berg", "日本"] * 3, dtype=object)[:len(values)]]
    spans = find_spans(values, names=names)
    for i in range(len(spans)):
        value, start, end = int(spans.value[i]), int(spans.start[i]), int(spans.end[i])
        assert 0 <= start < end <= len(values[value])
        assert start <= spans.core_start[i] <= spans.core_end[i] <= end
        if i and spans.value[i - 1] == value:
            assert spans.end[i - 1] <= start
