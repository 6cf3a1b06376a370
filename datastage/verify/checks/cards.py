"""The card sweep: card numbers outside the reserved test ranges anywhere in the target, whatever their origin.

Read from the one search of the loaded copy
(:attr:`~datastage.verify.context.CheckContext.leak_search`): every Luhn-valid number in a
real issuer range counts, wherever it came from; numbers inside the test ranges are only
reported (``test_range_numbers``). A finding names the source column a number came from
when the source held it, and none otherwise.
"""

from __future__ import annotations

from datastage.mask.checkspec import CheckSettings
from datastage.results import CheckResult
from datastage.verify.checks.leaks import leak_result
from datastage.verify.context import CheckContext
from datastage.verify.leaks.scanner import Found


def check(ctx: CheckContext) -> list[CheckResult]:
    """``card_sweep`` (none without a leak index)."""
    found = ctx.leak_search
    if found is None:
        return []
    return [card_result(found, ctx.settings)]


def card_result(found: Found, settings: CheckSettings) -> CheckResult:
    tally, test_cards = found.cards, found.test_cards
    total = sum(tally.matches.values())
    figures = {"text_columns": tally.columns, "values_checked": tally.values,
               "matches": dict(sorted(tally.matches.items())), "test_range_numbers": test_cards,
               "exempt": sorted(settings.exempt("card_sweep"))}
    if total:
        where = ", ".join(f"{k} ({v})" for k, v in sorted(tally.matches.items()))
        summary = f"{total} card number(s) outside the test ranges: {where}"
    else:
        summary = (f"no card number outside the test ranges in {tally.columns} text column(s) "
                   f"({tally.values:,} values checked)")
    return leak_result("card_sweep", settings, total, summary, figures, found)
