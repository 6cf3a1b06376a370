"""``scrub`` against the labelled notes: ≥ 99 % of identifier spans gone, ≥ 99 % of other words kept."""

from __future__ import annotations

import pytest
from corpus_scrub import measure_scrub, notes

SPAN_RECALL = 0.99
WORDS_KEPT = 0.99


def test_scrub_removes_identifier_spans_and_keeps_other_words() -> None:
    result = measure_scrub(notes())
    if not result.available:
        pytest.skip(result.report())
    assert result.span_recall >= SPAN_RECALL and result.words_kept_share >= WORDS_KEPT, result.report()


def test_scrub_uses_the_same_pseudonym_as_the_email_column() -> None:
    result = measure_scrub(notes())
    if not result.available:
        pytest.skip(result.report())
    assert result.quoted_emails > 50
    assert result.consistency == 1.0, result.report()
