"""The card sweep: card numbers outside the reserved test ranges anywhere in the target, whatever their origin.

Read from the one search of the loaded copy
(:attr:`~datastage.verify.context.CheckContext.leak_search`): every Luhn-valid number in a
real issuer range counts, wherever it came from; numbers inside the test ranges are only
reported (``test_range_numbers``).
"""

from __future__ import annotations

from datastage.mask.checkspec import CheckSettings
from datastage.results import CheckResult
from datastage.verify.checks.leaks import threshold_status
from datastage.verify.context import CheckContext
from datastage.verify.leaks.scanner import Tally


def check(ctx: CheckContext) -> list[CheckResult]:
    """``card_sweep`` (none without a leak index)."""
    found = ctx.leak_search
    if found is None:
        return []
    return [card_result(found.cards, ctx.settings, found.test_cards)]


def card_result(tally: Tally, settings: CheckSettings, test_cards: int) -> CheckResult:
    total = sum(tally.matches.values())
    figures = {"text_columns": tally.columns, "values_checked": tally.values,
               "matches": dict(sorted(tally.matches.items())), "test_range_numbers": test_cards,
               "exempt": sorted(settings.exempt("card_sweep"))}
    status = threshold_status(settings, "card_sweep", total)
    if total:
        where = ", ".join(f"{k} ({v})" for k, v in sorted(tally.matches.items()))
        summary = f"{total} card number(s) outside the test ranges: {where}"
    else:
        summary = (f"no card number outside the test ranges in {tally.columns} text column(s) "
                   f"({tally.values:,} values checked)")
    return CheckResult("card_sweep", status, summary, figures)
