"""Bounded input: every file datastage reads is refused quickly, in one line with exit 2, when it
is too large, nested too deep, too long, or an alias bomb — before it costs minutes or gigabytes.

The time limits below are loose on purpose: they prove "seconds, not minutes" on a busy
machine; speed itself is measured by the benchmarks.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from datastage.cli import main
from datastage.errors import ConfigError, RulesError
from datastage.limits import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_HISTORY_LINE_BYTES,
    MAX_ITEMS,
    MAX_KEY_FILE_BYTES,
    MAX_NODES,
    MAX_REPORT_BYTES,
    MAX_SCALAR_CHARS,
    MAX_STATE_BYTES,
)
from datastage.mask.policy import load_policy
from datastage.yamlfile import load_yaml_text

QUICK = 60.0  # seconds: "not minutes" even on a loaded two-core machine (the 50 MB file has its own 5 s bound)


def _project(tmp_path: Path, source: str | None = None, extra: str = "") -> Path:
    """A tiny project on a real SQLite source (one table) or on the given source URL."""
    if source is None:
        db = tmp_path / "prod.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT)")
            conn.execute("INSERT INTO customer VALUES (1, 'ann@example.com')")
        source = f"sqlite:///{db}"
    config = tmp_path / "datastage.yaml"
    config.write_text(f"source: {{url: {json.dumps(source)}}}\nenvironments:\n"
                      f"  staging: {{url: 'sqlite:///staging.db'}}\n{extra}")
    return config


def _invoke(args: list[str]) -> tuple[Result, float]:
    started = time.monotonic()
    result = CliRunner().invoke(main, args)
    return result, time.monotonic() - started


def _one_error_line(result: Result) -> str:
    """The single ``error:`` line of a failed command (no traceback, nothing else on error)."""
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


# -- hostile YAML documents -----------------------------------------------------------------

RULES_HEADER = "version: 1\ndefault: keep\n"


def _alias_bomb(levels: int = 9, fan: int = 10) -> str:
    """The billion laughs: each level an anchored list of ``fan`` aliases of the level below."""
    lines = ["checks:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels + 1):
        lines.append(f"  l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


# name: (document body, message, line of the body the message names). The bodies are valid
# YAML under the size limit; only the composer's bounds refuse them.
HOSTILE: dict[str, tuple[Callable[[], str], str, int]] = {
    "deep-flow": (lambda: "checks: " + "[" * 50_000 + "]" * 50_000 + "\n", f"nested deeper than {MAX_DEPTH} levels",
                  1),
    "deep-block": (lambda: "checks:\n" + "".join(f"{'  ' * (i + 1)}k{i}:\n" for i in range(40)),
                   f"nested deeper than {MAX_DEPTH} levels", 33),
    "deep-through-alias": (lambda: "checks:\n  a: &a " + "[" * 20 + "]" * 20 + "\n  b: " + "[" * 15 + "*a"
                           + "]" * 15 + "\n", f"nested deeper than {MAX_DEPTH} levels (through alias *a)", 3),
    "huge-list": (lambda: "quasi_identifiers: [" + ", ".join(["x"] * (MAX_ITEMS + 1)) + "]\n",
                  f"more than {MAX_ITEMS:,} items in one list", 1),
    "huge-mapping": (lambda: "tables:\n" + "".join(f"  t{i}: keep\n" for i in range(MAX_ITEMS + 1)),
                     f"more than {MAX_ITEMS:,} items in one mapping", MAX_ITEMS + 2),
    "alias-bomb": (_alias_bomb, f"more than {MAX_NODES:,} values (aliases expanded) in one file", 7),
    "recursive-alias": (lambda: "checks: &a {again: *a}\n", "alias *a is used inside its own anchor", 1),
    "long-scalar": (lambda: "tables:\n  customer:\n    email: {strategy: value, value: "
                    + "x" * (MAX_SCALAR_CHARS + 1) + "}\n", f"a value longer than {MAX_SCALAR_CHARS:,} characters", 3),
    "long-key": (lambda: "tables:\n  ? " + "t" * (MAX_SCALAR_CHARS + 1) + "\n  : keep\n",
                 f"a value longer than {MAX_SCALAR_CHARS:,} characters", 2),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_rules_file_is_refused_quickly_in_one_line(tmp_path: Path, case: str) -> None:
    make, message, line = HOSTILE[case]
    rules = tmp_path / "hostile.yaml"
    rules.write_text(RULES_HEADER + make())
    assert rules.stat().st_size <= MAX_FILE_BYTES
    result, seconds = _invoke(["rules", "check", "--config", str(_project(tmp_path)), "--rules", str(rules)])
    assert result.exit_code == 2, result.output
    error = _one_error_line(result)
    assert error.startswith(f"error: {rules}:{line + 2}: "), error
    assert message in error, error
    assert seconds < QUICK, f"{case} took {seconds:.1f} s"


def test_a_50_mb_rules_file_is_refused_before_parsing_and_before_the_source(tmp_path: Path) -> None:
    rules = tmp_path / "big.yaml"
    chunk = "".join(f"  table_{i}:\n    email: {{strategy: email, unique: true}}\n" for i in range(1000))
    with rules.open("w") as handle:
        handle.write("version: 1\ntables:\n")
        while handle.tell() < 50 * 1024 * 1024:
            handle.write(chunk)
    # The source cannot be reached: a refusal that reached it would fail with exit 1 instead.
    config = _project(tmp_path, source="postgresql://nobody@127.0.0.1:1/unreachable")
    result, seconds = _invoke(["rules", "check", "--config", str(config), "--rules", str(rules)])
    assert result.exit_code == 2, result.output
    error = _one_error_line(result)
    assert error == f"error: {rules}: file is too large (50.0 MiB): datastage reads at most 4 MiB from it", error
    assert seconds < 5.0, f"took {seconds:.2f} s"
    # The same file as --json: one object, the same error.
    as_json = CliRunner().invoke(main, ["rules", "check", "--config", str(config), "--rules", str(rules), "--json"])
    data = json.loads(as_json.stdout)
    assert as_json.exit_code == 2 and data["errors"][0]["message"] == error.removeprefix("error: ")


def test_a_file_without_a_size_is_read_only_up_to_the_limit() -> None:
    started = time.monotonic()
    with pytest.raises(RulesError, match=r"^/dev/zero: file is too large: datastage reads at most 4 MiB from it$"):
        load_policy(Path("/dev/zero"))
    assert time.monotonic() - started < QUICK


@pytest.mark.parametrize("case", ["deep-flow", "deep-through-alias", "alias-bomb", "huge-list", "long-scalar"])
def test_hostile_config_file_is_refused_quickly_in_one_line(tmp_path: Path, case: str) -> None:
    make, message, line = HOSTILE[case]
    config = _project(tmp_path, extra=make())  # after the 3 lines of the project
    result, seconds = _invoke(["plan", "staging", "--config", str(config)])
    assert result.exit_code == 2, result.output
    error = _one_error_line(result)
    assert error.startswith(f"error: {config}:{line + 3}: ") and message in error, error
    assert seconds < QUICK


def test_a_config_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    config = _project(tmp_path)
    with config.open("a") as handle:
        handle.write("# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    result, seconds = _invoke(["plan", "staging", "--config", str(config)])
    assert result.exit_code == 2
    assert _one_error_line(result) == (f"error: {config}: file is too large (4.0 MiB): datastage reads at most "
                                       "4 MiB from it")
    assert seconds < QUICK


def test_documents_at_the_limits_are_accepted() -> None:
    deepest = "a: " + "[" * (MAX_DEPTH - 1) + "x" + "]" * (MAX_DEPTH - 1) + "\n"
    node = load_yaml_text(deepest, "ok.yaml")
    value = node["a"].value
    for _ in range(MAX_DEPTH - 2):
        value = value[0]
    assert value == ["x"]
    with pytest.raises(ConfigError, match=r"^x.yaml:1: nested deeper than 32 levels$"):
        load_yaml_text("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n", "x.yaml")
    # Aliases and merge keys within the budget work as before.
    text = "base: &b {url: 'sqlite:///x.db', batch_size: 5}\nstaging: {<<: *b, rules: r.yaml}\nall: [*b, *b]\n"
    node = load_yaml_text(text, "ok.yaml")
    assert node["staging"].value == {"url": "sqlite:///x.db", "batch_size": 5, "rules": "r.yaml"}
    assert node["all"].value == [node["base"].value, node["base"].value]
    small_bomb = load_yaml_text(_alias_bomb(levels=4), "ok.yaml")  # 10**5 values expanded: within budget
    assert len(small_bomb["checks"]["l4"].value) == 10
    assert len(load_yaml_text("a: " + "x" * MAX_SCALAR_CHARS + "\n", "ok.yaml")["a"].value) == MAX_SCALAR_CHARS


def test_yaml_syntax_errors_keep_their_messages() -> None:
    with pytest.raises(ConfigError,
                       match=r"^x.yaml:2: invalid YAML: expected the node content, but found '<stream end>'$"):
        load_yaml_text("a: [1,\n", "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml:1: invalid YAML: found undefined alias 'nope'$"):
        load_yaml_text("a: *nope\n", "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml:2: invalid YAML: duplicate key 'a'$"):
        load_yaml_text("a: 1\na: 2\n", "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml: invalid YAML: unacceptable character"):
        load_yaml_text("a: \ud800\n", "x.yaml")
    with pytest.raises(ConfigError, match=r"could not determine a constructor for the tag"):
        load_yaml_text("a: !!python/object/apply:os.system [ls]\n", "x.yaml")
    # Malformed typed values are YAML errors at their line, not Python exceptions.
    for text, line, kind in [("a: " + "9" * 5000, 1, "int"), ("b: 1\na: 2024-13-01\n", 2, "timestamp"),
                             ("a: !!float x\n", 1, "float"), ("a: [1, {b: !!int y}]\n", 1, "int")]:
        with pytest.raises(ConfigError, match=rf"^x.yaml:{line}: invalid YAML: cannot read this value as {kind} "
                                              r"\(quote it to keep it as text\)$"):
            load_yaml_text(text, "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml:1: invalid YAML: a list or mapping cannot be a key$"):
        load_yaml_text("a: {? [1, 2] : x}\n", "x.yaml")
    # Over 512 KiB a syntax error keeps libyaml's message (one fast parse): still one line with the line.
    padding = "# padding\n" * 60_000
    with pytest.raises(ConfigError, match=r"^x.yaml:60002: invalid YAML: \S"):
        load_yaml_text(padding + "a: [1,\n", "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml: invalid YAML: the text holds a character that is not valid"):
        load_yaml_text(padding + "a: \ud800\n", "x.yaml")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"^x.yaml:1: .*nest"):
        load_yaml_text("a: " + "[" * 600_000 + "]" * 600_000, "x.yaml")
    assert time.monotonic() - started < QUICK


# -- JSON state files and reports -------------------------------------------------------------

def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def _deep_json(levels: int = 100_000) -> str:
    return "[" * levels + "]" * levels


def test_report_verify_refuses_large_deep_and_odd_files_in_one_line(tmp_path: Path) -> None:
    big = _sparse(tmp_path / "big.json", MAX_REPORT_BYTES + 1)
    deep = tmp_path / "deep.json"
    deep.write_text(_deep_json())
    shallow_but_deep = tmp_path / "deep33.json"
    shallow_but_deep.write_text('{"schema_version": 1, "run_id": "x", "a": ' + _deep_json(MAX_DEPTH) + "}")
    digits = tmp_path / "digits.json"
    digits.write_text('{"schema_version": 1, "run_id": ' + "9" * 50_000 + "}")
    html = tmp_path / "deep.html"
    html.write_text(f'<html><script type="application/json" id="datastage-report">{_deep_json()}</script></html>')
    expected = {
        big: "file is too large (64.0 MiB): datastage reads at most 64 MiB from it",
        deep: f"not a datastage report: invalid JSON: nested deeper than {MAX_DEPTH} levels",
        shallow_but_deep: f"not a datastage report: invalid JSON: nested deeper than {MAX_DEPTH} levels",
        digits: "not a datastage report: invalid JSON: a number with too many digits",
        html: "not a datastage report",
    }
    for path, message in expected.items():
        result, seconds = _invoke(["report", "verify", str(path)])
        assert result.exit_code == 2, (path, result.output)
        error = _one_error_line(result)
        assert error.startswith(f"error: {path}: {message}"), error
        assert seconds < QUICK


def test_state_files_over_the_limit_or_malformed_are_one_line_errors(tmp_path: Path) -> None:
    config = _project(tmp_path, extra="")
    state = tmp_path / ".datastage"
    state.mkdir()
    schedule = state / "schedule.json"
    registry = state / "provisioned.json"
    cases = [
        (schedule, lambda p: _sparse(p, MAX_STATE_BYTES + 1), ["schedule", "list"], "file is too large"),
        (schedule, lambda p: p.write_text(_deep_json()), ["schedule", "list"],
         f"nested deeper than {MAX_DEPTH} levels"),
        (schedule, lambda p: p.write_text("[1, 2]"), ["schedule", "list"], "not a mapping of environments"),
        (schedule, lambda p: p.write_text("{"), ["schedule", "list"], "not valid JSON"),
        (registry, lambda p: _sparse(p, MAX_STATE_BYTES + 1), ["envs"], "file is too large"),
        (registry, lambda p: p.write_text(_deep_json()), ["envs"], f"nested deeper than {MAX_DEPTH} levels"),
        (registry, lambda p: p.write_text('{"pr_1": {"name": "pr_1", "bogus": 1}}'), ["envs"],
         "not a mapping of environments"),
        (registry, lambda p: p.write_text('{"pr_1": {"name": "pr_1"}}'), ["envs"], "incomplete entry"),
    ]
    for path, write, command, message in cases:
        write(path)
        result, seconds = _invoke([*command, "--config", str(config)])
        assert result.exit_code == 2, (path, message, result.output)
        error = _one_error_line(result)
        assert error.startswith(f"error: {path}: ") and message in error, error
        assert seconds < QUICK
        path.unlink()


def test_history_skips_over_long_and_deep_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    config = _project(tmp_path)
    state = tmp_path / ".datastage"
    state.mkdir()
    good = {"run_id": "20260101-000000-aaaaaa", "environment": "staging", "kind": "refresh", "verdict": "pass"}
    later = dict(good, run_id="20260102-000000-bbbbbb")
    with (state / "history.jsonl").open("w") as handle:
        handle.write(json.dumps(good) + "\n")
        handle.write('{"run_id": "' + "x" * (MAX_HISTORY_LINE_BYTES + 10) + '"}\n')
        handle.write(_deep_json(10_000) + "\n")
        handle.write('{"run_id": "cut short\n')
        handle.write("[1, 2, 3]\n")
        handle.write(json.dumps(later) + "\n")
    result, seconds = _invoke(["history", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert [e["run_id"] for e in json.loads(result.output)] == [good["run_id"], later["run_id"]]
    assert seconds < QUICK


def test_a_key_file_over_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATASTAGE_MASKING_KEY")
    key = _sparse(tmp_path / "masking.key", MAX_KEY_FILE_BYTES + 1)
    key.chmod(0o600)  # readable by its owner only, so the size is what is refused
    config = _project(tmp_path, extra="masking: {key_file: masking.key}\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_HEADER)
    # A refresh is what loads the masking key (report verify needs only a public key now).
    result, _ = _invoke(["refresh", "staging", "--rules", str(rules), "--config", str(config)])
    assert result.exit_code == 2
    assert _one_error_line(result) == (f"error: {key}: file is too large (64.0 KiB): datastage reads at most "
                                       "64 KiB from it")
