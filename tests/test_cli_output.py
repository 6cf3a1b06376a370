"""What the commands print, piped (click's runner: not a terminal) or on a terminal: every value
whole and literal (data, config and rules are never read as markup), tables as full rows when
piped, readable strategy docs, did-you-mean hints, clear messages for empty lists, and
``history`` listing refreshes apart from plans and provisions."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

import datastage
from datastage.cli import main
from datastage.present.progress import RichProgress
from datastage.present.text import CODE_STYLE, doc_text, print_table, styled

FORGED = "[bold red]PASS[/] [a-z]+ :warning: \\[x] C:\\dir\\"


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _add_schedule(config: Path, schedule: str) -> None:
    text = config.read_text().replace("    keep: [app_settings]", f"    keep: [app_settings]\n    schedule: {schedule}")
    config.write_text(text)


def _terminal(width: int = 40) -> tuple[Console, io.StringIO]:
    sink = io.StringIO()
    return Console(file=sink, force_terminal=True, width=width, color_system=None, markup=False, emoji=False,
                   highlight=False), sink


def test_plan_piped_prints_whole_rows_and_the_rules_literally(demo_project: Path) -> None:
    code, output = _cli("plan", "staging", "--config", str(demo_project))
    assert code == 0, output
    assert "…" not in output
    # The demo's regex rule, exactly as the rules file writes it (rich would have eaten "[a-z]").
    assert "(?<=this is )[A-Z][a-z]+" in output
    planned = datastage.plan("staging", config=demo_project)
    rows = {row["table"]: row for row in planned.table_rows()}
    employee = next(line for line in output.splitlines() if line.startswith("employee "))
    for reason in rows["employee"]["reasons"]:  # both edges on one greppable line
        assert reason in employee
    for decision in planned.policy.decisions.values():
        line = next((line for line in output.splitlines()
                     if line.split()[:2] == [decision.table, decision.column]), None)
        assert line is not None and line.rstrip().endswith(decision.treatment), (decision, line)
    assert "direct_identifier" in output


def test_envs_and_schedule_list_piped_show_full_timestamps(demo_project: Path) -> None:
    _add_schedule(demo_project, '"0 3 * * *"')
    datastage.refresh("staging", config=demo_project)
    code, output = _cli("envs", "--config", str(demo_project))
    assert code == 0, output
    row = next(r for r in datastage.envs(config=demo_project) if r["name"] == "staging")
    staging = next(line for line in output.splitlines() if line.startswith("staging "))
    assert str(row["last_refresh"]) in staging and row["last_verdict"] in staging and "…" not in output
    assert output.splitlines()[0].split() == ["environment", "kind", "last", "refresh", "verdict", "size", "expires"]
    code, output = _cli("schedule", "list", "--count", "3", "--config", str(demo_project))
    assert code == 0, output
    [scheduled] = json.loads(_cli("schedule", "list", "--count", "3", "--config", str(demo_project), "--json")[1])
    line = next(line for line in output.splitlines() if line.startswith("staging "))
    assert "0 3 * * *" in line and ", ".join(scheduled["next_runs"]) in line and "…" not in output
    assert len(scheduled["next_runs"]) == 3 and all(len(t) >= len("2026-12-01T03:00:00+00:00")
                                                    for t in scheduled["next_runs"])


def test_schedule_list_without_schedules_says_so(demo_project: Path) -> None:
    code, output = _cli("schedule", "list", "--config", str(demo_project))
    assert code == 0 and output.startswith("no scheduled environments: ") and "schedule:" in output, output
    code, output = _cli("schedule", "list", "--config", str(demo_project), "--json")
    assert code == 0 and json.loads(output) == []


def test_a_table_on_a_terminal_folds_long_values_and_shows_markup_literally() -> None:
    console, sink = _terminal(width=40)
    long = "2026-12-01T03:00:00+00:00/" + "x" * 60
    print_table(("value",), [(long,), (None,)], console=console)
    shown = sink.getvalue()
    assert "…" not in shown
    assert long in re.sub(r"[\s│┃┏┓┗┛┡┩└┘├┤┼─━╇╋┳┻┬┴╭╮╰╯]", "", shown)  # folded over lines, every character kept
    console, sink = _terminal(width=120)
    print_table(("name", "[b]value[/b]"), [(FORGED, "b")], title="[red]t[/]", console=console)
    shown = sink.getvalue()
    assert FORGED in shown and "[red]t[/]" in shown and "[b]value[/b]" in shown


def test_a_piped_table_is_aligned_full_rows() -> None:
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=False, width=20, markup=False, emoji=False, highlight=False)
    long = "y" * 100
    print_table(("a", "bb"), [("1", long), (FORGED, "two\nlines")], title="T", console=console)
    lines = sink.getvalue().splitlines()
    assert lines == ["T", "a" + " " * (len(FORGED) + 1) + "bb".ljust(0), f"1{' ' * (len(FORGED) + 1)}{long}",
                     f"{FORGED}  two, lines"]


def test_styled_templates_escape_their_values() -> None:
    text = styled("[bold]{}[/] {:>6,} {!s:<4}|", FORGED, 12345, None)
    assert text.plain == f"{FORGED} 12,345 None|"
    assert [(span.start, span.end, str(span.style)) for span in text.spans] == [(0, len(FORGED), "bold")]


def test_progress_descriptions_are_literal() -> None:
    console, sink = _terminal(width=100)
    with RichProgress(console) as progress:
        progress.table("[red]customer[/] [a-z]", 3)
        progress.advance(1)
        progress.bar.refresh()
    assert "[red]customer[/] [a-z]" in sink.getvalue()


def test_errors_show_names_literally(demo_project: Path) -> None:
    code, output = _cli("plan", "st[red]ag[/]ing", "--config", str(demo_project))
    assert code == 2 and "unknown environment 'st[red]ag[/]ing'" in output, output


def test_strategies_render_code_without_backticks() -> None:
    code, output = _cli("strategies")
    assert code == 0 and "``" not in output
    assert "Example: card_number: card_number." in output
    assert "fake.<provider>  any Faker provider" in output
    assert not any(line != line.rstrip() for line in output.splitlines())
    text = doc_text("Keep ``first.last``, and\n``by:\ncustomer_id`` too.")
    assert text.plain == "Keep first.last, and\nby:\ncustomer_id too."
    assert [(text.plain[s.start:s.end], s.style) for s in text.spans] == [("first.last", CODE_STYLE),
                                                                           ("by:\ncustomer_id", CODE_STYLE)]


def test_misspelt_names_get_a_suggestion(demo_project: Path) -> None:
    rules = demo_project.parent / "rules" / "pii.yaml"
    original = rules.read_text()
    cases = {
        "city: fake.compny": "unknown strategy 'fake.compny' (did you mean 'fake.company'?)",
        "city: {strategy: fake.compny, locale: de_DE}": "unknown strategy 'fake.compny' (did you mean 'fake.company'?)",
        "city: emial": "unknown strategy 'emial' (did you mean 'email'?)",
        "city: {stratgy: keep}": "needs 'strategy' (is 'stratgy' a misspelling of 'strategy'?)",
        "city: {strategy: template, template: '{fake.compny}'}":
            "Faker has no provider 'compny' (did you mean 'company'?)",
        "city: {strategy: generalize, keeep: 3}": "(did you mean 'keep'?)",
    }
    for rule, expected in cases.items():
        rules.write_text(original.replace("city: fake.city", rule))
        code, output = _cli("rules", "check", "--rules", str(rules), "--config", str(demo_project))
        assert code == 2 and expected in output and "tables.address.city" in output, (rule, output)
    rules.write_text(original)
    code, output = _cli("history", "--kind", "plann", "--config", str(demo_project))
    assert code == 2 and "unknown history kind 'plann' (did you mean 'plan'?)" in output, output


def test_history_lists_refreshes_apart_from_plans(demo_project: Path) -> None:
    config = str(demo_project)
    code, output = _cli("history", "--config", config)
    assert code == 0 and output.strip() == "no refreshes recorded yet (--kind all lists every run)"
    planned = datastage.plan("staging", config=demo_project)
    refreshed = datastage.refresh("staging", config=demo_project)
    code, output = _cli("history", "--config", config)
    assert code == 0 and refreshed.run_id in output and planned.run_id not in output, output
    assert output.splitlines()[0].split()[:5] == ["run", "id", "environment", "kind", "verdict"]
    code, output = _cli("history", "staging", "--kind", "plan", "--config", config)
    assert code == 0 and planned.run_id in output and refreshed.run_id not in output, output
    assert next(line for line in output.splitlines() if line.startswith(planned.run_id)).split()[1:3] == \
        ["staging", "plan"]
    code, output = _cli("history", "--kind", "all", "--config", config, "--json")
    assert code == 0 and [e["run_id"] for e in json.loads(output)] == [planned.run_id, refreshed.run_id]
    code, output = _cli("history", "--config", config, "--json")
    assert code == 0 and [e["run_id"] for e in json.loads(output)] == [refreshed.run_id]
    code, output = _cli("history", "--kind", "provision", "--config", config)
    assert code == 0 and output.strip() == "no provisions recorded yet (--kind all lists every run)"
    assert [e["kind"] for e in datastage.history(config=demo_project)] == ["plan", "refresh"]  # the library: all
    assert [e["run_id"] for e in datastage.history("staging", config=demo_project, kind="plan")] == [planned.run_id]
    assert [e["run_id"] for e in datastage.history(config=demo_project, kind="refresh")] == [refreshed.run_id]
