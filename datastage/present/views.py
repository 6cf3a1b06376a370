"""Text and table renderings of step results, for the commands that print them.

Each ``render_*`` function prints one result to the output console (stdout, redacted
while a command runs); ``--json`` output comes from the results' own ``to_dict()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

from datastage.present.streams import out
from datastage.report.findings import finding_line, finding_lines

if TYPE_CHECKING:  # the results are built by the library; rendering them needs no import of it
    from datastage.discover.scan import ScanOutcome
    from datastage.pipeline import RefreshResult
    from datastage.plan import PlanResult


def render_refresh(result: RefreshResult) -> None:
    colour = {"pass": "green", "warn": "yellow", "fail": "red"}.get(result.verdict, "red")
    out.print(f"[bold]datastage refresh {result.environment}[/] run {result.run_id}")
    out.print(f"  tables: {result.tables}   rows: {result.rows:,}   masked columns: {result.masked_columns}"
              f"   time: {result.seconds:.1f}s")
    for check in result.checks:
        mark = {"PASS": "[green]PASS[/]", "WARN": "[yellow]WARN[/]", "FAIL": "[red]FAIL[/]"}[check.status]
        out.print(f"  {mark} {check.name}: {check.summary}")
        if check.status != "PASS":
            for finding in check.findings or []:
                out.print(f"       {finding_line(finding, with_check=False)}", markup=False, highlight=False)
    out.print(f"  verdict: [bold {colour}]{result.verdict.upper()}[/]"
              + ("" if result.verdict != "fail" else " (shadow discarded, target untouched)"))
    if result.report:
        out.print(f"  report: {result.report.json}")
        out.print(f"          {result.report.html}")
        out.print(f"  signed by {result.report.signed_by} (FILE.sig beside each file)" if result.report.signed_by
                  else "  unsigned: no signing key configured (signing.key_file in datastage.yaml)", markup=False)


def render_plan(result: PlanResult) -> None:
    table = Table(title=f"Subset plan for {result.environment}", show_lines=False)
    for name in ("table", "source rows", "selected", "brought in by"):
        table.add_column(name)
    for row in result.table_rows():
        reasons = "; ".join(f"{k} ({v:,})" if v else k for k, v in row["reasons"].items()) or "not reached"
        if row["nulled_foreign_keys"]:
            reasons += "; set to NULL: " + ", ".join(row["nulled_foreign_keys"])
        table.add_row(row["table"], f"{row['source_rows']:,}", f"{row['selected_rows']:,}", reasons)
    out.print(table)
    summary = result.subset_summary()
    out.print(f"{summary['selected_rows']:,} of {summary['source_rows']:,} rows"
              f" (seed {summary['seed']}{', full copy' if summary['full_copy'] else ''}),"
              f" planned with {summary['queries']:,} queries in {summary['seconds']:.2f}s")
    for cycle in result.subset.cycles:
        out.print(f"cycle (followed row by row, no manual break needed): {' <-> '.join(cycle)}")
    if summary["omitted_tables"]:
        out.print(f"left out of the target: {', '.join(summary['omitted_tables'])}")
    columns = Table(title="Column treatment")
    for name in ("table", "column", "classification", "status", "treatment"):
        columns.add_column(name)
    for decision in result.policy.decisions.values():
        columns.add_row(decision.table, decision.column, result.classification(decision.table, decision.column)
                        or "", decision.status, decision.treatment)
    out.print(columns)


def render_scan(outcome: ScanOutcome, show_all: bool) -> None:
    colours = {"direct_identifier": "red", "quasi_identifier": "yellow", "sensitive": "magenta",
               "non_personal": "green", "unknown": "blue"}
    out.print(f"[bold]Personal data in {outcome.source}[/] (up to {outcome.result.sample_rows} sampled rows per table)")
    hidden = 0
    for (key, column), finding in outcome.result.findings.items():
        if not show_all and finding.classification == "non_personal":
            hidden += 1
            continue
        evidence = ", ".join(
            f"{e['pattern']} {e['share']:.0%} of {e['sampled']}" if e["source"] == "values" else "column name"
            for e in finding.evidence) or finding.note
        line = (f"  {key + '.' + column:<32} [{colours[finding.classification]}]{finding.classification:<17}[/] "
                f"{finding.confidence:.2f}  {evidence}")
        if outcome.environment:
            line += f"  -> {outcome.treatment.get((key, column), '')}"
        out.print(line, highlight=False)
    counts = outcome.result.counts()
    out.print("  " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"   ({outcome.result.seconds:.1f}s)"
              + (f"; {hidden} non-personal columns not shown (--all)" if hidden else ""))
    gaps = outcome.gaps()
    if gaps:
        out.print(f"  [red]{len(gaps)} personal column(s) kept without a reason or without a rule:[/] "
                  + ", ".join(f"{f.table}.{f.column}" for f in gaps))


def render_report(report: dict[str, Any]) -> None:
    """A report as plain text (``datastage report show``)."""
    from datastage.report.compose import render_text  # the report's text form, beside its JSON and HTML

    out.print(render_text(report), markup=False)


def render_findings(findings: list[dict[str, Any]]) -> None:
    """The leak findings of a report, one line each, never cut to the terminal's width."""
    for line in finding_lines(findings):
        out.print(line, markup=False, highlight=False, overflow="ignore", crop=False)
