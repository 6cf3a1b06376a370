"""The leak check: rows of masked columns that still hold their original value, and source identifiers in the target.

Two results, both read from the one search of the loaded copy
(:attr:`~datastage.verify.context.CheckContext.leak_search`):

* ``leak_masked_columns``: rows of a masked column that still hold their own original
  value (fixed points of the rule and values of its fake pool are excused, not counted);
* ``leak_identifiers``: identifier tokens of the source (e-mail addresses, phone, card and
  national-id numbers, IBANs, distinctive full names) anywhere in the target.

Each passes while its matches stay within the rules' ``max_matches`` (default 0). Each
lists its findings (where, from which source column, what kind, how often, which target
rows), and its summary line says which columns the rules exempt and whether they turned a
failure into a warning.

Example:
    >>> from typing import Any

from datastage.mask.checkspec import CheckSettings
    >>> threshold_status(CheckSettings(), "leak_identifiers", 0), threshold_status(CheckSettings(), "card_sweep", 1)
    ('PASS', 'FAIL')
"""

from __future__ import annotations

from typing import Any

from datastage.mask.checkspec import CheckSettings
from datastage.results import CheckResult, Status
from datastage.verify.context import CheckContext
from datastage.verify.leaks.index import LeakIndex
from datastage.verify.leaks.scanner import Found


def check(ctx: CheckContext) -> list[CheckResult]:
    """``leak_masked_columns`` and ``leak_identifiers`` (none without a leak index)."""
    found = ctx.leak_search
    if found is None or ctx.leaks is None:
        return []
    return [masked_result(found, ctx.leaks, ctx.settings), identifier_result(found, ctx.leaks, ctx.settings)]


def threshold_status(settings: CheckSettings, name: str, count: int) -> Status:
    """``PASS`` up to the check's ``max_matches``, else ``FAIL`` (``WARN`` at severity ``warn``)."""
    if count <= int(settings.threshold(name, "max_matches", 0)):
        return "PASS"
    return "WARN" if settings.severity(name) == "warn" else "FAIL"


def leak_result(name: str, settings: CheckSettings, total: int, summary: str, figures: dict[str, Any],
                found: Found) -> CheckResult:
    """The result of one leak check: its status, its summary with what the rules changed, its findings."""
    status = threshold_status(settings, name, total)
    downgraded = status == "WARN"
    if downgraded:
        figures["severity"] = "warn"
    return CheckResult(name, status, summary + settings.summary_note(name, downgraded=downgraded), figures,
                       findings=found.of(name))


def masked_result(found: Found, index: LeakIndex, settings: CheckSettings) -> CheckResult:
    tally = found.masked
    total = sum(tally.matches.values())
    figures = {
        "masked_columns": tally.columns, "values_checked": tally.values,
        "source_rows_observed": index.rows_observed,
        "source_values_hashed": sum(len(s) for s in index.values.values()),
        "matches": dict(sorted(tally.matches.items())),
        "excused": {k: dict(v) for k, v in sorted(tally.excused.items())},
        "exempt": sorted(settings.exempt("leak_masked_columns")),
    }
    if total:
        where = ", ".join(f"{k} ({v})" for k, v in sorted(tally.matches.items()))
        summary = f"{total} row(s) of masked columns still hold their original value: {where}"
    else:
        summary = (f"no row of {tally.columns} masked column(s) still holds its original value "
                   f"({tally.values:,} values checked)")
    return leak_result("leak_masked_columns", settings, total, summary, figures, found)


def identifier_result(found: Found, index: LeakIndex, settings: CheckSettings) -> CheckResult:
    tally, ambiguous = found.identifiers, found.ambiguous
    total = sum(tally.matches.values())
    figures = {
        "text_columns": tally.columns, "values_checked": tally.values,
        "source_tokens_hashed": dict(sorted(index.harvested.items())),
        "matches": {k: dict(v) for k, v in sorted(tally.by_kind.items())},
        "ambiguous_fake_pool_matches": ambiguous,
        "exempt": sorted(settings.exempt("leak_identifiers")),
    }
    if total:
        where = ", ".join(f"{k} ({', '.join(f'{n} {kind}' for kind, n in sorted(tally.by_kind[k].items()))})"
                          for k in sorted(tally.by_kind))
        summary = f"{total} source identifier(s) found in the target: {where}"
    else:
        harvested = sum(index.harvested.values())
        summary = (f"none of {harvested:,} source identifiers appears in {tally.columns} text column(s) "
                   f"({tally.values:,} values checked)")
    return leak_result("leak_identifiers", settings, total, summary, figures, found)
