"""Command-line interface: parse options, call :mod:`datastage.api`, render the result.

Errors are mapped to exit codes in one place (:func:`run_command`): 0 success, 1 runtime
failure (target untouched), 2 usage/config/rules error, 3 verification failed, 4 locked.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from datastage import __version__, api
from datastage.errors import EXIT_RUNTIME, DatastageError
from datastage.logs import configure_logging
from datastage.pipeline import PlanResult, RefreshResult

F = TypeVar("F", bound=Callable[..., Any])
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

config_option = click.option(
    "--config", "config", type=click.Path(dir_okay=False), default=None,
    help="Project file (default: $DATASTAGE_CONFIG or ./datastage.yaml).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
log_file_option = click.option("--log-file", type=click.Path(dir_okay=False), default=None,
                               help="Append structured log lines (JSON) to this file.")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def run_command(func: F) -> F:
    """Run a command body; turn every error into one line on stderr and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = kwargs.get("as_json", False)
        try:
            configure_logging(Path(kwargs["log_file"]) if kwargs.get("log_file") else None)
            return func(*args, **kwargs)
        except DatastageError as exc:
            logging.getLogger("datastage").error("command failed", extra={"command": func.__name__,
                                                                          "error": exc.to_dict()})
            if as_json:
                emit_json(exc.to_dict())
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Exit:
            raise
        except (click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted; the target was left as it was", err=True)
            sys.exit(130)
        except Exception as exc:
            if os.environ.get("DATASTAGE_DEBUG"):
                raise
            message = f"internal error: {type(exc).__name__}: {exc}"
            if as_json:
                emit_json({"error": "InternalError", "message": message, "exit_code": EXIT_RUNTIME})
            click.echo(f"error: {message} (set DATASTAGE_DEBUG=1 for a traceback)", err=True)
            sys.exit(EXIT_RUNTIME)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="datastage")
def main() -> None:
    """Realistic but safe data for test and staging environments.

    datastage subsets a production database with referential integrity, masks every
    sensitive column by a YAML policy, loads the result atomically into an environment,
    and writes a compliance report for every refresh.

    Exit codes: 0 success, 1 runtime failure (target untouched), 2 usage, config or
    rules error, 3 verification failed (target untouched, report written), 4 another
    refresh holds the lock.
    """


class RichProgress:
    """Progress bars on a terminal; the pipeline calls it, it draws."""

    def __init__(self) -> None:
        self.bar = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=err, transient=True)
        self.task: Any = None

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def stage(self, name: str) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        self.task = self.bar.add_task(name, total=None)

    def table(self, name: str, rows: int) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(name, total=max(rows, 1))

    def advance(self, rows: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, rows)


def _use_progress(quiet: bool, as_json: bool) -> bool:
    return not quiet and not as_json and sys.stderr.isatty()


@main.command()
@click.argument("environment")
@click.option("--rules", type=click.Path(dir_okay=False), default=None,
              help="Rules file to use instead of the environment's.")
@config_option
@json_option
@quiet_option
@run_command
def refresh(environment: str, rules: str | None, config: str | None, as_json: bool, quiet: bool) -> None:
    """Refresh ENVIRONMENT: subset, mask, load a shadow copy, verify, swap it in, report.

    Example: datastage refresh staging --rules rules/pii.yaml
    """
    if _use_progress(quiet, as_json):
        with RichProgress() as progress:
            result = api.refresh(environment, rules=rules, config=config, trigger="cli", progress=progress)
    else:
        result = api.refresh(environment, rules=rules, config=config, trigger="cli")
    if as_json:
        emit_json(result.to_dict())
    elif not quiet:
        render_refresh(result)
    sys.exit(result.exit_code)


def render_refresh(result: RefreshResult) -> None:
    colour = {"pass": "green", "warn": "yellow", "fail": "red"}.get(result.verdict, "red")
    out.print(f"[bold]datastage refresh {result.environment}[/] run {result.run_id}")
    out.print(f"  tables: {result.tables}   rows: {result.rows:,}   masked columns: {result.masked_columns}"
              f"   time: {result.seconds:.1f}s")
    for check in result.checks:
        mark = {"PASS": "[green]PASS[/]", "WARN": "[yellow]WARN[/]", "FAIL": "[red]FAIL[/]"}[check.status]
        out.print(f"  {mark} {check.name}: {check.summary}")
    out.print(f"  verdict: [bold {colour}]{result.verdict.upper()}[/]"
              + ("" if result.verdict != "fail" else " (shadow discarded, target untouched)"))
    if result.report:
        out.print(f"  report: {result.report.json}")
        out.print(f"          {result.report.html}")


@main.command()
@click.argument("environment")
@click.option("--rules", type=click.Path(dir_okay=False), default=None, help="Rules file to use instead.")
@config_option
@json_option
@run_command
def plan(environment: str, rules: str | None, config: str | None, as_json: bool) -> None:
    """Show what a refresh of ENVIRONMENT would copy and how every column is treated; writes nothing.

    Example: datastage plan staging --json
    """
    result = api.plan(environment, rules=rules, config=config)
    if as_json:
        emit_json(plan_dict(result))
        return
    render_plan(result)


def plan_dict(result: PlanResult) -> dict[str, Any]:
    return {
        "environment": result.environment,
        "tables": result.table_rows(),
        "columns": [{"table": d.table, "column": d.column, "status": d.status, "treatment": d.treatment,
                     "reason": d.reason, "inherited_from": d.rule.inherited_from if d.rule else None}
                    for d in result.policy.decisions.values()],
        "cycles": result.subset.cycles,
        "schema_drift": result.drift,
    }


def render_plan(result: PlanResult) -> None:
    table = Table(title=f"Subset plan for {result.environment}", show_lines=False)
    for name in ("table", "source rows", "selected", "brought in by"):
        table.add_column(name)
    for row in result.table_rows():
        reasons = "; ".join(f"{k} ({v:,})" for k, v in row["reasons"].items()) or row["mode"]
        table.add_row(row["table"], f"{row['source_rows']:,}", f"{row['selected_rows']:,}", reasons)
    out.print(table)
    columns = Table(title="Column treatment")
    for name in ("table", "column", "status", "treatment"):
        columns.add_column(name)
    for decision in result.policy.decisions.values():
        columns.add_row(decision.table, decision.column, decision.status, decision.treatment)
    out.print(columns)


@main.command()
@click.argument("environment")
@config_option
@json_option
@run_command
def rollback(environment: str, config: str | None, as_json: bool) -> None:
    """Swap the previous copy of ENVIRONMENT back in (run it again to undo)."""
    result = api.rollback(environment, config=config)
    if as_json:
        emit_json({"environment": result.environment, "restored": result.restored,
                   "now_previous": result.now_previous})
    else:
        out.print(f"rolled back {result.environment}: the previous copy is current again")


@main.command()
@click.argument("directory", default="demo", type=click.Path(file_okay=False))
@click.option("--scale", type=click.IntRange(min=1), default=1, show_default=True,
              help="Multiply the sample data volume.")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the generated data.")
@json_option
@run_command
def demo(directory: str, scale: int, seed: int, as_json: bool) -> None:
    """Write a demo project to DIRECTORY: a sample production database, datastage.yaml,
    rules/pii.yaml and a masking key file (mode 600).

    Then run: cd DIRECTORY && datastage refresh staging --rules rules/pii.yaml
    """
    result = api.demo(directory, scale=scale, seed=seed)
    if as_json:
        emit_json({"directory": str(result.directory), "database": str(result.database),
                   "config": str(result.config), "rules": str(result.rules), "rows": result.rows})
        return
    total = sum(result.rows.values())
    out.print(f"demo project written to {result.directory}/ ({len(result.rows)} tables, {total:,} rows in prod.db)")
    out.print(f"next: cd {result.directory} && datastage refresh staging --rules rules/pii.yaml")


@main.command()
@json_option
@run_command
def strategies(as_json: bool) -> None:
    """List the masking strategies with their parameters and guarantees."""
    specs = api.strategies()
    if as_json:
        emit_json([{"name": s.name, "summary": s.summary, "doc": s.doc, "types": sorted(s.types),
                    "deterministic": s.deterministic, "unique": s.unique, "changes": s.changes,
                    "params": {p.name: {"default": p.default, "required": p.required, "doc": p.doc}
                               for p in s.params.values()}} for s in specs])
        return
    for spec in specs:
        flags = [f"unique ({spec.unique})" if spec.unique else "", "deterministic" if spec.deterministic else ""]
        out.print(f"[bold]{spec.name}[/]  {' · '.join(f for f in flags if f)}")
        out.print(f"    {spec.doc.strip()}".replace("\n", "\n    "))
        for param in spec.params.values():
            default = f" (default {param.default!r})" if param.default is not None else ""
            out.print(f"    - {param.name}: {param.doc}{default}")
    out.print("[bold]fake.<provider>[/]  any Faker provider, e.g. fake.city, fake.company, fake.ipv4")


@main.command()
@click.argument("environment", required=False)
@config_option
@json_option
@run_command
def history(environment: str | None, config: str | None, as_json: bool) -> None:
    """List past refreshes (verdict, rows, duration, report), newest last."""
    entries = api.history(environment, config=config)
    if as_json:
        emit_json(entries)
        return
    table = Table()
    for name in ("run id", "environment", "trigger", "verdict", "rows", "seconds", "report"):
        table.add_column(name)
    for entry in entries:
        table.add_row(str(entry.get("run_id")), str(entry.get("environment")), str(entry.get("trigger")),
                      str(entry.get("verdict")), f"{entry.get('rows') or 0:,}", str(entry.get("seconds")),
                      str(entry.get("report_html") or ""))
    out.print(table)


@main.group()
def report() -> None:
    """Show and verify compliance reports."""


@report.command("show")
@click.argument("run_id")
@config_option
@json_option
@run_command
def report_show(run_id: str, config: str | None, as_json: bool) -> None:
    """Print the report of RUN_ID (a unique prefix is enough)."""
    entry = api.report_entry(run_id, config=config)
    with open(entry["report_json"], encoding="utf-8") as handle:
        data = json.load(handle)
    if as_json:
        emit_json(data)
        return
    out.print(f"[bold]{data['kind']} {data['environment']}[/] run {data['run_id']}: verdict {data['verdict']}")
    for check in data.get("checks", []):
        out.print(f"  {check['status']} {check['name']}: {check['summary']}")
    out.print(f"  html: {entry.get('report_html')}")


@main.group()
def schedule() -> None:
    """Scheduled refreshes: list next runs, or run the scheduler."""


@schedule.command("list")
@click.option("--count", type=click.IntRange(min=1, max=50), default=3, show_default=True,
              help="How many upcoming runs to show per environment.")
@config_option
@json_option
@run_command
def schedule_list(count: int, config: str | None, as_json: bool) -> None:
    """Show each scheduled environment's cron, time zone, last run and next runs."""
    rows = api.schedule_list(config=config, count=count)
    if as_json:
        emit_json(rows)
        return
    table = Table()
    for name in ("environment", "cron", "time zone", "last run", "last outcome", "next runs"):
        table.add_column(name)
    for row in rows:
        table.add_row(row["environment"], row["cron"], row["timezone"], str(row["last_slot"] or "-"),
                      str(row["last_outcome"] or "-"), "\n".join(row["next_runs"]))
    out.print(table)


@schedule.command("run")
@click.option("--once", is_flag=True, help="Run what is due now, then exit (for cron and CI).")
@click.option("--poll", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds between checks for due refreshes.")
@config_option
@json_option
@quiet_option
@log_file_option
@run_command
def schedule_run(once: bool, poll: float, config: str | None, as_json: bool, quiet: bool,
                 log_file: str | None) -> None:
    """Run scheduled refreshes in the foreground (for systemd, a container or Kubernetes).

    One refresh at a time; a locked target is retried on the next poll; a failing refresh is
    recorded and the scheduler carries on. SIGTERM or Ctrl-C: the refresh in progress finishes,
    then the scheduler exits 0; a second signal abandons it safely (its shadow is discarded).
    With --once the exit code is the worst of the runs (0 when nothing was due).
    """
    records = api.schedule_run(config=config, once=once, poll_seconds=poll,
                               echo=None if (quiet or as_json) else _echo_record)
    if as_json:
        emit_json([r.__dict__ for r in records])
    if once:
        sys.exit(max([r.exit_code for r in records if r.outcome != "skipped-locked"] or [0]))


def _echo_record(record: Any) -> None:
    out.print(f"{record.slot} {record.environment}: {record.outcome} (exit {record.exit_code})"
              + (f" run {record.run_id}" if record.run_id else "") + (f" — {record.message}" if record.message
                                                                       else ""))
