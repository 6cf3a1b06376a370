"""The leak check: rows of masked columns that still hold their original value, and source identifiers in the target.

Two results, both read from the one search of the loaded copy
(:attr:`~datastage.verify.context.CheckContext.leak_search`):

* ``leak_masked_columns``: rows of a masked column that still hold their own original
  value (fixed points of the rule and values of its fake pool are excused, not counted);
* ``leak_identifiers``: identifier tokens of the source (e-mail addresses, phone, card and
  national-id numbers, IBANs, distinctive full names) anywhere in the target.

Each passes while its matches stay within the rules' ``max_matches`` (default 0).

Example:
    >>> from datastage.mask.checkspec import CheckSettings
    >>> threshold_status(CheckSettings(), "leak_identifiers", 0), threshold_status(CheckSettings(), "card_sweep", 1)
    ('PASS', 'FAIL')
"""

from __future__ import annotations

from datastage.mask.checkspec import CheckSettings
from datastage.results import CheckResult, Status
from datastage.verify.context import CheckContext
from datastage.verify.leaks.index import LeakIndex
from datastage.verify.leaks.scanner import Tally


def check(ctx: CheckContext) -> list[CheckResult]:
    """``leak_masked_columns`` and ``leak_identifiers`` (none without a leak index)."""
    found = ctx.leak_search
    if found is None or ctx.leaks is None:
        return []
    return [masked_result(found.masked, ctx.leaks, ctx.settings),
            identifier_result(found.identifiers, ctx.leaks, ctx.settings, found.ambiguous)]


def threshold_status(settings: CheckSettings, name: str, count: int) -> Status:
    """``PASS`` up to the check's ``max_matches``, else ``FAIL`` (``WARN`` at severity ``warn``)."""
    if count <= int(settings.threshold(name, "max_matches", 0)):
        return "PASS"
    return "WARN" if settings.severity(name) == "warn" else "FAIL"


def masked_result(tally: Tally, index: LeakIndex, settings: CheckSettings) -> CheckResult:
    total = sum(tally.matches.values())
    figures = {
        "masked_columns": tally.columns, "values_checked": tally.values,
        "source_rows_observed": index.rows_observed,
        "source_values_hashed": sum(len(s) for s in index.values.values()),
        "matches": dict(sorted(tally.matches.items())),
        "excused": {k: dict(v) for k, v in sorted(tally.excused.items())},
        "exempt": sorted(settings.exempt("leak_masked_columns")),
    }
    status = threshold_status(settings, "leak_masked_columns", total)
    if total:
        where = ", ".join(f"{k} ({v})" for k, v in sorted(tally.matches.items()))
        summary = f"{total} row(s) of masked columns still hold their original value: {where}"
    else:
        summary = (f"no row of {tally.columns} masked column(s) still holds its original value "
                   f"({tally.values:,} values checked)")
    return CheckResult("leak_masked_columns", status, summary, figures)


def identifier_result(tally: Tally, index: LeakIndex, settings: CheckSettings, ambiguous: int) -> CheckResult:
    total = sum(tally.matches.values())
    figures = {
        "text_columns": tally.columns, "values_checked": tally.values,
        "source_tokens_hashed": dict(sorted(index.harvested.items())),
        "matches": {k: dict(v) for k, v in sorted(tally.by_kind.items())},
        "ambiguous_fake_pool_matches": ambiguous,
        "exempt": sorted(settings.exempt("leak_identifiers")),
    }
    status = threshold_status(settings, "leak_identifiers", total)
    if total:
        where = ", ".join(f"{k} ({', '.join(f'{n} {kind}' for kind, n in sorted(tally.by_kind[k].items()))})"
                          for k in sorted(tally.by_kind))
        summary = f"{total} source identifier(s) found in the target: {where}"
    else:
        harvested = sum(index.harvested.values())
        summary = (f"none of {harvested:,} source identifiers appears in {tally.columns} text column(s) "
                   f"({tally.values:,} values checked)")
    return CheckResult("leak_identifiers", status, summary, figures)
