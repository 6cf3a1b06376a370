"""The checks run on the loaded shadow before the swap, in report order; the verdict decides whether it goes live.

Every check states what it measured on the loaded data (``figures``) and a status:
``PASS``, ``WARN`` or ``FAIL``. Any ``FAIL`` makes the verdict ``fail``: the shadow is
discarded and the target stays as it was.

A check family is one module of :mod:`datastage.verify.checks` with a function
``check(ctx) -> list[CheckResult]``; :data:`CHECKS` lists them in the order their results
appear in the report. Adding a check is one module and one line here.

Example:
    >>> [family.name for family in CHECKS if family.before_hooks]
    ['counts']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from datastage.mask.checkspec import CheckSettings
from datastage.results import CheckResult
from datastage.verify.checks import cards, counts, integrity, kanon, kept, leaks
from datastage.verify.context import CheckContext


@dataclass(frozen=True)
class CheckFamily:
    """One family of checks; ``before_hooks``: it runs before the ``post_load`` hooks and grants, so it
    sees the copy exactly as written (these families come first)."""

    name: str
    check: Callable[[CheckContext], list[CheckResult]]
    before_hooks: bool = False
    reads_leak_search: bool = False  # it reports on the search of the loaded copy: it runs after the others


CHECKS: tuple[CheckFamily, ...] = (
    CheckFamily("counts", counts.check, before_hooks=True),
    CheckFamily("integrity", integrity.check),
    CheckFamily("leaks", leaks.check, reads_leak_search=True),
    CheckFamily("cards", cards.check, reads_leak_search=True),
    CheckFamily("kept", kept.check),
    CheckFamily("kanon", kanon.check),
)


def run_checks(ctx: CheckContext, *, before_hooks: bool) -> list[CheckResult]:
    """The results of the families that run before the hooks (or of those after), in :data:`CHECKS` order.

    The families that report on the search of the loaded copy run last, so a search begun by
    :meth:`~datastage.verify.context.CheckContext.start_leak_search` overlaps the others."""
    families = [family for family in CHECKS if family.before_hooks == before_hooks]
    results = {family.name: family.check(ctx) for family in sorted(families, key=lambda f: f.reads_leak_search)}
    return [result for family in families for result in results[family.name]]


def apply_severity(checks: list[CheckResult], settings: CheckSettings) -> list[CheckResult]:
    """Turn FAIL into WARN for checks whose severity the rules set to ``warn`` (said in the summary)."""
    for check in checks:
        if check.status == "FAIL" and settings.severity(check.name) == "warn":
            check.status = "WARN"
            check.figures["severity"] = "warn"
            check.summary += settings.summary_note(check.name, downgraded=True)
    return checks
