"""Text and table renderings of step results, for the commands that print them.

Each ``render_*`` function prints one result to the output console (stdout, redacted
while a command runs) through :mod:`datastage.present.text`, so values print literally and
tables whole; ``--json`` output comes from the results' own ``to_dict()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from datastage.present.streams import out
from datastage.present.text import print_table, say
from datastage.report.findings import finding_line, finding_lines

if TYPE_CHECKING:  # the results are built by the library; rendering them needs no import of it
    from datastage.discover.scan import ScanOutcome
    from datastage.pipeline import PreviewResult, RefreshResult
    from datastage.plan import PlanResult


def render_refresh(result: RefreshResult) -> None:
    colour = {"pass": "green", "warn": "yellow", "fail": "red"}.get(result.verdict, "red")
    say("[bold]datastage refresh {}[/] run {}", result.environment, result.run_id)
    say("  tables: {}   rows: {:,}   masked columns: {}   time: {:.1f}s", result.tables, result.rows,
        result.masked_columns, result.seconds)
    for check in result.checks:
        mark = {"PASS": "[green]PASS[/]", "WARN": "[yellow]WARN[/]", "FAIL": "[red]FAIL[/]"}[check.status]
        say(f"  {mark} {{}}: {{}}", check.name, check.summary)
        if check.status != "PASS":
            for finding in check.findings or []:
                say("       {}", finding_line(finding, with_check=False))
    say(f"  verdict: [bold {colour}]{{}}[/]{{}}", result.verdict.upper(),
        "" if result.verdict != "fail" else " (shadow discarded, target untouched)")
    if result.report:
        say("  report: {}", result.report.json)
        say("          {}", result.report.html)
        if result.report.signed_by:
            say("  signed by {} (FILE.sig beside each file)", result.report.signed_by)
        else:
            say("  unsigned: no signing key configured (signing.key_file in datastage.yaml)")


def render_plan(result: PlanResult) -> None:
    rows = []
    for row in result.table_rows():
        reasons = ("; ".join(f"{k} ({v:,})" if v else k for k, v in row["reasons"].items())
                   or row["note"] or "not reached")
        if row["nulled_foreign_keys"]:
            reasons += "; set to NULL: " + ", ".join(row["nulled_foreign_keys"])
        rows.append((row["table"], f"{row['source_rows']:,}", f"{row['selected_rows']:,}", reasons))
    print_table(("table", "source rows", "selected", "brought in by"), rows,
                title=f"Subset plan for {result.environment}")
    summary = result.subset_summary()
    say("{:,} of {:,} rows (seed {}{}), planned with {:,} queries in {:.2f}s", summary["selected_rows"],
        summary["source_rows"], summary["seed"], ", full copy" if summary["full_copy"] else "", summary["queries"],
        summary["seconds"])
    for cycle in result.subset.cycles:
        say("cycle (followed row by row, no manual break needed): {}", " <-> ".join(cycle))
    if summary["omitted_tables"]:
        say("left out of the target: {}", ", ".join(summary["omitted_tables"]))
    print_table(("table", "column", "classification", "status", "treatment"),
                [(d.table, d.column, result.classification(d.table, d.column) or "", d.status, d.treatment)
                 for d in result.policy.decisions.values()], title="Column treatment")


def render_scan(outcome: ScanOutcome, show_all: bool) -> None:
    colours = {"direct_identifier": "red", "quasi_identifier": "yellow", "sensitive": "magenta",
               "non_personal": "green", "unknown": "blue"}
    say("[bold]Personal data in {}[/] (up to {} sampled rows per table)", outcome.source, outcome.result.sample_rows)
    hidden = 0
    for (key, column), finding in outcome.result.findings.items():
        if not show_all and finding.classification == "non_personal":
            hidden += 1
            continue
        evidence = ", ".join(
            f"{e['pattern']} {e['share']:.0%} of {e['sampled']}" if e["source"] == "values" else "column name"
            for e in finding.evidence) or finding.note
        treatment = f"  -> {outcome.treatment.get((key, column), '')}" if outcome.environment else ""
        say(f"  {{:<32}} [{colours[finding.classification]}]{{:<17}}[/] {{:.2f}}  {{}}{{}}", key + "." + column,
            finding.classification, finding.confidence, evidence, treatment)
    counts = outcome.result.counts()
    say("  {}   ({:.1f}s){}", ", ".join(f"{v} {k}" for k, v in counts.items()), outcome.result.seconds,
        f"; {hidden} non-personal columns not shown (--all)" if hidden else "")
    gaps = outcome.gaps()
    if gaps:
        say("  [red]{} personal column(s) kept without a reason or without a rule:[/] {}", len(gaps),
            ", ".join(f"{f.table}.{f.column}" for f in gaps))


def render_report(report: dict[str, Any]) -> None:
    """A report as plain text (``datastage report show``)."""
    from datastage.report.compose import render_text  # the report's text form, beside its JSON and HTML

    out.print(render_text(report), crop=False, overflow="ignore")


def render_findings(findings: list[dict[str, Any]]) -> None:
    """The leak findings of a report, one line each, never cut to the terminal's width."""
    for line in finding_lines(findings):
        say("{}", line)


def _preview_text(value: str | None) -> str:
    """A preview value on one line: NULL for NULL, control characters escaped (the JSON has them raw)."""
    if value is None:
        return "NULL"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def render_preview(result: PreviewResult) -> None:
    """Per row, each column's source value beside its masked value: a table on a terminal, plain
    aligned ``column | source | masked`` lines (never cut) otherwise. Values are text, never markup."""
    plain = {"markup": False, "highlight": False, "overflow": "ignore", "crop": False}
    out.print(f"preview of {result.table} for {result.environment}: {len(result.rows)} of"
              f" {result.selected_rows:,} rows a refresh copies (nothing written)", **plain)  # type: ignore[arg-type]
    if result.note:
        out.print(f"note: {result.note}", **plain)  # type: ignore[arg-type]
    if not result.rows:
        out.print("no rows to show", **plain)  # type: ignore[arg-type]
    for number, row in enumerate(result.rows, 1):
        key = ", ".join(f"{k}={_preview_text(v)}" for k, v in row["key"].items())
        title = f"row {number}" + (f" ({key})" if key else "")
        cells = [(c["column"], _preview_text(c["source"]), _preview_text(c["masked"])) for c in row["columns"]]
        if out.is_terminal:
            table = Table(title=Text(title), title_justify="left")
            for name in ("column", "source", "masked"):
                table.add_column(name, overflow="fold")
            for cell in cells:
                table.add_row(*(Text(v) for v in cell))
            out.print(table)
            continue
        out.print(title, **plain)  # type: ignore[arg-type]
        wide = [max(len(cell[i]) for cell in [("column", "source", "masked"), *cells]) for i in (0, 1)]
        for cell in [("column", "source", "masked"), *cells]:
            out.print(f"  {cell[0]:<{wide[0]}} | {cell[1]:<{wide[1]}} | {cell[2]}".rstrip(), **plain)  # type: ignore[arg-type]
