"""Command-line interface: parse options, call :mod:`datastage.api`, render the result.

Errors are mapped to exit codes in one place (:func:`run_command`): 0 success, 1 runtime
failure (target untouched), 2 usage/config/rules error, 3 verification failed, 4 locked,
5 the new copy is live but its records are incomplete, 130 SIGINT, 143 SIGTERM.
The same place puts every byte a command prints through :mod:`datastage.present.streams`:
stdout and stderr are redacting streams while a command runs, so no error line, ``--json``
object, table or progress line shows a known secret. Rendering lives in
:mod:`datastage.present`; everything else is a call to :mod:`datastage.api`.
"""

from __future__ import annotations

import functools
import inspect
import io
import os
import sys
import traceback
from collections.abc import Callable
from contextlib import nullcontext, redirect_stdout
from typing import TYPE_CHECKING, Any, TypeVar

import click

from datastage._version import __version__
from datastage.errors import (
    EXIT_INTERRUPTED,
    EXIT_RUNTIME,
    EXIT_VERIFY,
    DatastageError,
    Interrupted,
    Terminated,
    UsageError,
)
from datastage.present.progress import RichProgress, use_progress
from datastage.present.streams import emit_json, out, redacted_output
from datastage.present.text import doc_text, print_table, say
from datastage.present.views import (
    render_findings,
    render_plan,
    render_preview,
    render_refresh,
    render_report,
    render_scan,
)

if TYPE_CHECKING:
    from datastage import api
else:
    class _Library:
        """:mod:`datastage.api`, imported when a command first calls it: ``--help`` and ``--version`` need
        none of the library, so they start without its imports (pandas, SQLAlchemy, Faker ...)."""

        def __getattr__(self, name: str) -> Any:
            from datastage import api as library

            return getattr(library, name)

    api = _Library()

F = TypeVar("F", bound=Callable[..., Any])

config_option = click.option(
    "--config", "config", type=click.Path(dir_okay=False), default=None,
    help="Project file (default: $DATASTAGE_CONFIG or ./datastage.yaml).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
log_file_option = click.option("--log-file", type=click.Path(dir_okay=False), default=None,
                               help="Append structured log lines (JSON) to this file.")


def cron_options(func: F) -> F:
    """``--quiet`` and ``--log-file`` on every command, so each one runs well from cron."""
    return quiet_option(log_file_option(func))


def run_command(func: F) -> F:
    """Run a command body; turn every error into one line on stderr and its exit code."""

    wanted = set(inspect.signature(func).parameters)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with redacted_output():
            return _run(func, wanted, args, kwargs)

    return wrapper  # type: ignore[return-value]


def _run(func: Callable[..., Any], wanted: set[str], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The body of :func:`run_command`: the one place errors are rendered."""
    as_json = kwargs.get("as_json", False)
    quiet = kwargs.get("quiet", False) and not as_json
    try:
        api.configure_log_file(kwargs.get("log_file") or None)
        body = {k: v for k, v in kwargs.items() if k in wanted}
        # --quiet: a command that does not handle it itself prints nothing but errors.
        with redirect_stdout(io.StringIO()) if quiet and "quiet" not in wanted else nullcontext():
            return func(*args, **body)
    except DatastageError as exc:
        api.log_error("command failed", command=func.__name__, error=exc.to_dict())
        if as_json:
            emit_json(exc.to_dict())
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit:
        raise
    except (click.ClickException, click.Abort):
        raise
    except (Interrupted, Terminated) as exc:  # the run recorded how it ended; say it in one line
        api.log_error("command stopped", command=func.__name__, signal=exc.signal_name)
        if as_json:
            emit_json({"error": type(exc).__name__, "message": str(exc), "exit_code": exc.exit_code})
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted; the target was left as it was", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        message = f"internal error: {type(exc).__name__}: {exc}"
        if as_json:
            emit_json({"error": "InternalError", "message": message, "exit_code": EXIT_RUNTIME})
        if os.environ.get("DATASTAGE_DEBUG"):
            click.echo(traceback.format_exc(), err=True)  # redacted like everything else
            sys.exit(EXIT_RUNTIME)
        click.echo(f"error: {message} (set DATASTAGE_DEBUG=1 for a traceback)", err=True)
        sys.exit(EXIT_RUNTIME)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="datastage")
def main() -> None:
    """Realistic but safe data for test and staging environments.

    datastage subsets a production database with referential integrity, masks every
    sensitive column by a YAML policy, loads the result atomically into an environment,
    and writes a compliance report for every refresh.

    Exit codes: 0 success, 1 runtime failure (target untouched), 2 usage, config or
    rules error, 3 verification failed (target untouched, report written), 4 another
    refresh holds the lock, 5 the new copy is live but its report or history could not be
    completed (the next command completes them), 130 stopped by SIGINT, 143 by SIGTERM.
    """


@main.command()
@click.argument("environment")
@click.option("--rules", type=click.Path(dir_okay=False), default=None,
              help="Rules file to use instead of the environment's.")
@config_option
@json_option
@cron_options
@run_command
def refresh(environment: str, rules: str | None, config: str | None, as_json: bool, quiet: bool) -> None:
    """Refresh ENVIRONMENT: subset, mask, load a shadow copy, verify, swap it in, report.

    Example: datastage refresh staging --rules rules/pii.yaml
    """
    if use_progress(quiet, as_json):
        with RichProgress() as progress:
            result = api.refresh(environment, rules=rules, config=config, trigger="cli", progress=progress)
    else:
        result = api.refresh(environment, rules=rules, config=config, trigger="cli")
    if as_json:
        emit_json(result.to_dict())
    elif not quiet:
        render_refresh(result)
    sys.exit(result.exit_code)


@main.command()
@click.argument("environment")
@click.option("--rules", type=click.Path(dir_okay=False), default=None, help="Rules file to use instead.")
@config_option
@json_option
@cron_options
@run_command
def plan(environment: str, rules: str | None, config: str | None, as_json: bool) -> None:
    """Show what a refresh of ENVIRONMENT would copy and how every column is treated.

    Writes no database; records a plan report (JSON and HTML) and a history line.

    Per table: source rows, selected rows and the root or foreign-key edge that brought
    them in (or why the table stays empty); the cycles walked through; the masking
    decision for every column.

    Example: datastage plan staging --json
    """
    result = api.plan(environment, rules=rules, config=config, trigger="cli")
    if as_json:
        emit_json(result.to_dict())
        return
    render_plan(result)
    if result.report:
        out.print(f"plan report: {result.report.json}")
        out.print(f"             {result.report.html}")


@main.command()
@click.argument("table")
@click.option("--env", "environment", default=None, help="Environment whose rules and subset to use "
              "(default: the only one).")
@click.option("--rows", "rows", type=int, default=10, show_default=True, help="Rows to show (1 to 1000).")
@click.option("--rules", type=click.Path(dir_okay=False), default=None, help="Rules file to use instead.")
@config_option
@json_option
@cron_options
@run_command
def preview(table: str, environment: str | None, rows: int, rules: str | None, config: str | None,
            as_json: bool) -> None:
    """Show source rows of TABLE beside what the rules make of them, before any refresh.

    The rows are the first ones a refresh would copy, masked exactly as a refresh masks them
    (same key, same pseudonyms). Printed only: reads the source read-only and writes nothing,
    not even a report or history line. TABLE may be schema-qualified (sales.customer).

    Example: datastage preview customer --env staging --rows 5
    """
    result = api.preview(table, environment=environment, rows=rows, rules=rules, config=config)
    if as_json:
        emit_json(result.to_dict())
        return
    render_preview(result)


@main.command()
@click.argument("environment")
@config_option
@json_option
@cron_options
@run_command
def rollback(environment: str, config: str | None, as_json: bool) -> None:
    """Swap the previous copy of ENVIRONMENT back in (run it again to undo)."""
    result = api.rollback(environment, config=config, trigger="cli")
    if as_json:
        emit_json({"environment": result.environment, "restored": result.restored,
                   "now_previous": result.now_previous, "live_run_id": result.live_run_id})
    else:
        live = f" (run {result.live_run_id} is live)" if result.live_run_id else ""
        out.print(f"rolled back {result.environment}: the previous copy is current again{live}", markup=False)


@main.command()
@click.argument("directory", default="demo", type=click.Path(file_okay=False))
@click.option("--scale", type=click.IntRange(min=1), default=1, show_default=True,
              help="Multiply the sample data volume.")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the generated data.")
@json_option
@cron_options
@run_command
def demo(directory: str, scale: int, seed: int, as_json: bool) -> None:
    """Write a demo project to DIRECTORY: a sample production database, datastage.yaml,
    rules/pii.yaml, a masking key file and a report-signing key (mode 600, public half
    signing.key.pub).

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
@cron_options
@run_command
def strategies(as_json: bool) -> None:
    """List the masking strategies with their parameters and guarantees."""
    specs = api.strategies()
    if as_json:
        emit_json([{"name": s.name, "summary": s.summary, "doc": s.doc, "types": sorted(s.types),
                    "deterministic": s.deterministic, "unique": s.unique, "changes": s.changes,
                    "row_independent": s.row_independent, "origin": s.origin,
                    "params": {p.name: {"default": p.default, "required": p.required, "doc": p.doc,
                                        "choices": list(p.choices) or None, "type": p.kind_name}
                               for p in s.params.values()}} for s in specs])
        return
    for spec in specs:
        flags = [f"unique ({spec.unique})" if spec.unique else "", "deterministic" if spec.deterministic else "",
                 "reads the row" if not spec.row_independent else "",
                 "" if spec.origin == "built-in" else spec.origin]
        say("[bold]{}[/]  {}", spec.name, " · ".join(f for f in flags if f))
        if len(spec.types) < 8:
            say("    takes: {}", ", ".join(sorted(spec.types)))
        doc = "\n".join(f"    {line}" if line.strip() else "" for line in spec.doc.strip().splitlines())
        out.print(doc_text(doc), crop=False, overflow="ignore")
        for param in spec.params.values():
            default = f" (default {param.default!r})" if param.default is not None else ""
            out.print(doc_text(f"    - {param.name}: {param.doc}{default}"), crop=False, overflow="ignore")
    say("[bold]fake.<provider>[/]  any Faker provider, e.g. fake.city, fake.company, fake.ipv4")


@main.group()
def rules() -> None:
    """Check masking policies (rules files)."""


@rules.command("check")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), default=None,
              help="Rules file to check (default: the environment's).")
@click.option("--env", "environment", default=None,
              help="Environment whose scope (excluded/kept tables) and last refresh (schema drift) apply "
                   "(default: the only one, when datastage.yaml has exactly one).")
@click.option("--strict", is_flag=True, help="Treat warnings (default: keep/null, schema drift) as errors.")
@config_option
@json_option
@cron_options
@run_command
def rules_check(rules_file: str | None, environment: str | None, strict: bool, config: str | None,
                as_json: bool) -> None:
    """Check a rules file against the source schema before anything runs; exit 2 on errors.

    Reports every unknown table, column, strategy or parameter (with a suggestion), type
    and uniqueness conflict, column without a rule, and column new since the last refresh,
    each as FILE:LINE: KEY: MESSAGE.

    Example: datastage rules check --rules rules/pii.yaml --env staging --strict
    """
    result = api.check_rules(rules_file, environment=environment, config=config, strict=strict)
    if as_json:
        emit_json(result.to_dict())
    else:
        for line in result.failed:
            click.echo(f"error: {line}")
        for warning in [] if strict else result.warnings:
            click.echo(f"warning: {result.rules}: {warning}")
        if result.ok:
            masked = sum(1 for d in result.policy.decisions.values() if d.status == "protected") \
                if result.policy else 0
            click.echo(f"{result.rules}: ok ({masked} masked columns, {len(result.warnings)} warning(s))")
        else:
            click.echo(f"{result.rules}: {len(result.failed)} error(s)", err=True)
    sys.exit(result.exit_code)


@main.command()
@click.argument("environment", required=False)
@click.option("--kind", default="refresh", show_default=True, metavar="KIND",
              help="Which runs: refresh (refreshes and rollbacks), plan, provision (provisions and "
                   "teardowns), artifact (exports and imports) or all.")
@config_option
@json_option
@cron_options
@run_command
def history(environment: str | None, kind: str, config: str | None, as_json: bool) -> None:
    """List past runs of ENVIRONMENT (default: all), oldest first: kind, verdict, rows,
    duration and report. Refreshes and rollbacks unless --kind says otherwise.

    Example: datastage history staging --kind plan
    """
    entries = api.history(environment, config=config, kind=kind)
    if as_json:
        emit_json(entries)
        return
    if not entries:
        shown = {"refresh": "refreshes", "plan": "plans", "provision": "provisions",
                 "artifact": "exports or imports"}.get(kind, "runs")
        say("no {} recorded yet{}", shown, "" if kind == "all" else " (--kind all lists every run)")
        return
    out.print(f"{'run id':<23} {'environment':<12} {'kind':<8} {'verdict':<8} {'rows':>10} {'duration':>9}  "
              f"{'trigger':<8} {'started':<21} report", markup=False)
    for entry in entries:
        verdict = str(entry.get("verdict"))
        colour = {"pass": "green", "warn": "yellow", "fail": "red", "error": "red"}.get(verdict, "blue")
        seconds = entry.get("seconds")
        duration = f"{seconds:.1f}s" if isinstance(seconds, int | float) else ""
        where = entry.get("report_json") or ""
        say(f"{{!s:<23}} {{!s:<12}} {{:<8}} [{colour}]{{:<8}}[/] {{:>10,}} {{:>9}}  {{!s:<8}} {{!s:<21}} {{}}",
            entry.get("run_id"), entry.get("environment"), entry.get("kind") or "refresh", verdict,
            entry.get("rows") or 0, duration, entry.get("trigger"), entry.get("started_at") or "", where)
        if entry.get("kind") == "rollback" and entry.get("live_run_id"):
            out.print(f"{'':<23} now live: run {entry['live_run_id']}", markup=False)
        if entry.get("error"):
            label = "note" if verdict in ("pass", "warn") else "error"  # e.g. a record completed later
            out.print(f"{'':<23} {label}: {entry['error']}", markup=False)


@main.command()
@click.option("--env", "environment", default=None, help="Use this environment's virtual keys and compare with "
              "its rules file.")
@click.option("--write", "write", type=click.Path(dir_okay=False), default=None,
              help="Write a proposed rules file covering every column (with a comment per column).")
@click.option("--force", is_flag=True, help="Overwrite the --write file if it exists.")
@click.option("--sample", "sample_rows", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Rows sampled per table (seeded, read in the read-only snapshot).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--all", "show_all", is_flag=True, help="List non-personal columns too.")
@config_option
@json_option
@cron_options
@run_command
def scan(environment: str | None, write: str | None, force: bool, sample_rows: int, seed: int, show_all: bool,
         config: str | None, as_json: bool) -> None:
    """Find personal data in the source: classify every column from its name and a sample of its values.

    Classes: direct_identifier, quasi_identifier, sensitive, non_personal, unknown. The
    evidence names the pattern and the share of sampled values it matched, never a value.

    Example: datastage scan --env staging --write rules/proposed.yaml
    """
    if write and os.path.exists(write) and not force:
        raise UsageError(f"{write} exists; pass --force to overwrite it")
    outcome = api.scan(environment, config=config, sample_rows=sample_rows, seed=seed)
    if write:
        api.write_proposed_rules(outcome, write, force=force)
    if as_json:
        emit_json(outcome.to_dict() | {"written": write})
        return
    render_scan(outcome, show_all)
    if write:
        out.print(f"proposed rules written to {write}: review every rule, then `datastage plan ENV --rules {write}`")


@main.group()
def report() -> None:
    """Show and verify compliance reports."""


@report.command("show")
@click.argument("run_id")
@config_option
@json_option
@click.option("--findings", "findings", is_flag=True,
              help="Only the leak findings: one line each (found in, origin, kind, count, target row keys).")
@cron_options
@run_command
def report_show(run_id: str, config: str | None, as_json: bool, findings: bool) -> None:
    """Print the report of RUN_ID (a unique prefix is enough).

    Example: datastage report show 20261127-0901 --findings
    """
    entry = api.report_entry(run_id, config=config)
    if findings:
        found = api.report_findings(entry["run_id"], config=config)
        if as_json:
            emit_json(found)
        else:
            render_findings(found)
        return
    data = api.report(entry["run_id"], config=config)
    if as_json:
        emit_json(data)
        return
    render_report(data)
    out.print(f"json: {entry.get('report_json')}", markup=False)
    out.print(f"html: {entry.get('report_html')}", markup=False)


@report.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--public-key", type=click.Path(dir_okay=False), default=None,
              help="The signer's OpenSSH public key (.pub); default: the project's .datastage/signing.pub.")
@click.option("--allowed-signers", type=click.Path(dir_okay=False), default=None,
              help="An allowed_signers file (as ssh-keygen -Y verify -f reads it): any of its keys may sign.")
@config_option
@json_option
@cron_options
@run_command
def report_verify(file: str, public_key: str | None, allowed_signers: str | None, config: str | None,
                  as_json: bool) -> None:
    """Check a report FILE (.json or .html) against its detached signature FILE.sig with the
    signer's public key; the masking key is never needed.

    Exit codes: 0 valid, 3 invalid (changed after it was signed, signed by another key,
    unsigned, or not a report datastage wrote), 2 unreadable file or no public key.

    Example: datastage report verify .datastage/reports/staging/20261127-090102-3fa9c1.json
    --public-key signing.pub

    Without datastage: ssh-keygen -Y verify -f allowed_signers -I datastage -n datastage-report
    -s FILE.sig < FILE
    """
    outcome = api.verify_report(file, public_key=public_key, allowed_signers=allowed_signers, config=config)
    if as_json:
        emit_json(outcome.to_dict())
    elif outcome.valid:
        out.print(f"valid: {file} ({outcome.message})", markup=False)
    else:
        click.echo(f"invalid: {file}: {outcome.message}", err=True)
    sys.exit(0 if outcome.valid else EXIT_VERIFY)


@main.group()
def key() -> None:
    """Create keys: the masking key and the report-signing key."""


@key.command("new")
@click.option("--signing", is_flag=True, help="An Ed25519 report-signing key (OpenSSH private key and .pub) "
              "instead of a masking key.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="File to write (default: masking.key, or signing.key with --signing); never overwritten.")
@click.option("--format", "encoding", type=click.Choice(["hex", "base64"]), default="hex", show_default=True,
              help="How the masking key's 32 random bytes are written.")
@json_option
@cron_options
@run_command
def key_new(signing: bool, output: str | None, encoding: str, as_json: bool) -> None:
    """Write a new key file (mode 600) that does not exist yet.

    Example: datastage key new --signing --output signing.key  (then signing: {key_file: signing.key})
    """
    if signing and encoding != "hex":
        raise UsageError("--format applies to masking keys only")
    created = api.new_key(output, signing=signing, encoding=encoding)
    if as_json:
        emit_json(created.to_dict())
        return
    out.print(f"{created.kind} key written to {created.path} (mode 600): {created.fingerprint}", markup=False)
    if created.public_path is not None:
        out.print(f"public key: {created.public_path} (give it to whoever verifies reports)", markup=False)


@main.group()
def schedule() -> None:
    """Scheduled refreshes: list next runs, or run the scheduler."""


@schedule.command("list")
@click.option("--count", type=click.IntRange(min=1, max=50), default=3, show_default=True,
              help="How many upcoming runs to show per environment.")
@config_option
@json_option
@cron_options
@run_command
def schedule_list(count: int, config: str | None, as_json: bool) -> None:
    """Show each scheduled environment's cron, time zone, last run and next runs."""
    rows = api.schedule_list(config=config, count=count)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        say("no scheduled environments: give one a schedule in datastage.yaml, e.g. schedule: \"0 3 * * *\"")
        return
    print_table(("environment", "cron", "time zone", "last run", "last outcome", "next runs"),
                [(row["environment"], row["cron"], row["timezone"], row["last_slot"] or "-",
                  row["last_outcome"] or "-", "\n".join(row["next_runs"])) for row in rows])


@schedule.command("run")
@click.option("--once", is_flag=True, help="Run what is due now, then exit (for cron and CI).")
@click.option("--poll", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds between checks for due refreshes.")
@config_option
@json_option
@cron_options
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


def _variables(values: tuple[str, ...]) -> dict[str, str]:
    """``--var k=v`` options as a mapping (a malformed one stops with exit 2)."""
    found: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise UsageError(f"--var expects NAME=VALUE, such as id=1234; got {value[:40]!r}")
        found[key] = text
    return found


@main.command()
@click.argument("name", required=False)
@click.option("--from", "from_env", required=True, metavar="ENV|TEMPLATE",
              help="On-demand template, or environment, whose latest verified copy to copy.")
@click.option("--ttl", default=None, help="Time to live, such as 30m, 8h, 2d or 1w (at most the template's "
              "max_ttl; default its ttl); `datastage gc` drops it after.")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
              help="Fills a placeholder of the template's name pattern: --var id=1234 makes pr_{id} pr_1234.")
@click.option("--owner", default=None, help="Who the copy is for (default: the OS user).")
@config_option
@json_option
@cron_options
@run_command
def provision(name: str | None, from_env: str, ttl: str | None, variables: tuple[str, ...], owner: str | None,
              config: str | None, as_json: bool) -> None:
    """Create an on-demand environment (a new database) from ENV's latest verified copy: copy, the
    template's access grants, then its post_provision tests against the copy.

    NAME may be left out when the template names its copies (name: pr_{id}). A failing post_provision
    test exits 1 after dropping the copy (on_test_failure: teardown) or keeping it marked failed (keep).

    \b
    Examples:
      datastage provision pr_1234 --from staging --ttl 8h
      datastage provision --from staging --var id=1234 --owner alice
    """
    given = _variables(variables)
    if use_progress(False, as_json):
        with RichProgress() as progress:
            entry = api.provision(name, from_env=from_env, ttl=ttl, variables=given, owner=owner, config=config,
                                  progress=progress)
    else:
        entry = api.provision(name, from_env=from_env, ttl=ttl, variables=given, owner=owner, config=config)
    if as_json:
        emit_json(entry.__dict__)
        return
    expiry = f", expires {entry.expires_at}" if entry.expires_at else ""
    source = f" (its refresh {entry.source_run_id}: {entry.source_verdict})" if entry.source_run_id else ""
    tests = f", post_provision tests {entry.last_test}" if entry.last_test else ""
    made = f" by template {entry.template} for {entry.owner}" if entry.template else ""
    out.print(f"provisioned {entry.name} from {entry.source_environment}{source}{made}: {entry.rows:,} rows, "
              f"verdict {entry.verdict}{tests}{expiry}", markup=False)


@main.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Skip the template's pre_teardown hooks (and drop a copy whose "
              "provision was killed).")
@config_option
@json_option
@cron_options
@run_command
def teardown(name: str, force: bool, config: str | None, as_json: bool) -> None:
    """Drop on-demand environment NAME (its database) after its template's pre_teardown hooks, and record
    it in the history. A failing pre_teardown hook keeps the copy (exit 1).

    Example: datastage teardown pr_1234
    """
    entry = api.teardown(name, force=force, config=config)
    if as_json:
        emit_json(entry.__dict__)
    else:
        out.print(f"tore down {entry.name} (from {entry.source_environment})", markup=False)


@main.command()
@config_option
@json_option
@cron_options
@run_command
def gc(config: str | None, as_json: bool) -> None:
    """Drop every on-demand environment whose time to live has passed."""
    dropped = api.gc(config=config)
    if as_json:
        emit_json([e.__dict__ for e in dropped])
        return
    for entry in dropped:
        out.print(f"tore down {entry.name} (expired {entry.expires_at})", markup=False)
    if not dropped:
        out.print("nothing has expired", markup=False)


@main.command()
@click.option("--owner", default=None, help="List only the on-demand environments of this owner.")
@config_option
@json_option
@cron_options
@run_command
def envs(owner: str | None, config: str | None, as_json: bool) -> None:
    """List environments (configured and on-demand) with last refresh, verdict, size and expiry, and the
    template, owner, state and last post_provision test of on-demand ones."""
    rows = api.envs(owner=owner, config=config)
    if as_json:
        emit_json(rows)
        return
    lines = []
    for row in rows:
        size = row["size_bytes"]
        shown = f"{size / 1_048_576:,.1f} MiB" if size is not None else "-"
        expires = (row["expires_at"] or "-") + (" (expired)" if row["expired"] else "")
        kind = row["kind"] + (f" from {row['from']}" if row["from"] else "")
        lines.append((row["name"], kind, row["last_refresh"] or "-", row["last_verdict"] or "-", shown, expires,
                      row["template"] or "-", row["owner"] or "-", row["state"], row["last_test"] or "-"))
    header = ("environment", "kind", "last refresh", "verdict", "size", "expires", "template", "owner", "state",
              "last test")
    shown_columns = len(header) if any(row["kind"] == "on-demand" for row in rows) else 6  # the rest: on-demand only
    print_table(header[:shown_columns], [line[:shown_columns] for line in lines])


@main.command("export")
@click.argument("environment")
@click.option("--to", "to", required=True, type=click.Path(file_okay=False),
              help="Folder to write (must not exist or be empty).")
@click.option("--format", "fmt", type=click.Choice(["sqlite", "parquet", "pgdump"]), default="sqlite",
              show_default=True, help="sqlite: one SQLite file (any dialect); parquet: a file per table; "
              "pgdump: pg_dump -Fd (PostgreSQL environments).")
@config_option
@json_option
@cron_options
@run_command
def export_command(environment: str, to: str, fmt: str, config: str | None, as_json: bool) -> None:
    """Write ENVIRONMENT's current verified copy as files with a signed manifest.

    Example: datastage export staging --to staging-copy --format sqlite

    Check it without datastage: ssh-keygen -Y verify -f allowed_signers -I datastage
    -n datastage-artifact -s SHA256SUMS.sig < SHA256SUMS && sha256sum -c SHA256SUMS
    """
    if use_progress(False, as_json):
        with RichProgress() as progress:
            result = api.export(environment, to=to, format=fmt, config=config, progress=progress)
    else:
        result = api.export(environment, to=to, format=fmt, config=config)
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(f"exported {result.environment} (its refresh {result.source_run_id}: {result.source_verdict}) "
              f"to {result.folder} as {result.format}: {result.rows:,} rows in {len(result.tables)} tables, "
              f"run {result.run_id}, signed by {result.fingerprint}", markup=False)


@main.command("import")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--into", "into", required=True, help="URL of the database to restore into.")
@click.option("--public-key", type=click.Path(dir_okay=False), default=None,
              help="The signer's OpenSSH public key (.pub); default: the project's .datastage/signing.pub.")
@click.option("--allowed-signers", type=click.Path(dir_okay=False), default=None,
              help="An allowed_signers file: any of its keys allowed for namespace datastage-artifact may sign.")
@config_option
@json_option
@cron_options
@run_command
def import_command(folder: str, into: str, public_key: str | None, allowed_signers: str | None,
                   config: str | None, as_json: bool) -> None:
    """Check the artifact FOLDER (signature, every file's SHA-256, nothing unlisted) and restore it
    into the database at --into; nothing is written when a check fails (exit code 3).

    Example: datastage import staging-copy --into sqlite:///laptop.db --public-key signing.pub
    """
    if use_progress(False, as_json):
        with RichProgress() as progress:
            result = api.import_artifact(folder, into=into, config=config, public_key=public_key,
                                         allowed_signers=allowed_signers, progress=progress)
    else:
        result = api.import_artifact(folder, into=into, config=config, public_key=public_key,
                                     allowed_signers=allowed_signers)
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(f"imported {result.folder} ({result.format} export {result.artifact_run_id} of "
              f"{result.environment}, signed by {result.fingerprint}) into {result.target}: {result.rows:,} rows, "
              f"run {result.run_id}", markup=False)
