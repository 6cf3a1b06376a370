"""datastage.yaml parsing: shapes from the design, interpolation, and one-line errors with exit 2."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from datastage.cli import main
from datastage.errors import ConfigError
from datastage.secrets import redact
from datastage.settings import DEFAULT_BATCH_SIZE, Tuning, load_project, tuning_from_env

DESIGN_SKETCH = """
source: {url: "${PROD_DATABASE_URL}"}
environments:
  staging:
    url: "${STAGING_DATABASE_URL}"
    rules: rules/pii.yaml
    subset:
      roots: [{table: customer, where: "active", percent: 10}]
      passthrough: [country, city, language]
      exclude: [audit_log]
    keep: [app_settings]          # rows of the current target preserved across refreshes
    hooks: {post_refresh: [{run: "pytest tests/smoke -q"}]}
    schedule: "0 3 * * *"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "datastage.yaml"
    path.write_text(text)
    return path


def test_design_sketch_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROD_DATABASE_URL", "postgresql://app:secret@db/prod")
    monkeypatch.setenv("STAGING_DATABASE_URL", "sqlite:///staging.db")
    project = load_project(_write(tmp_path, DESIGN_SKETCH))
    env = project.environment("staging")
    assert project.source_url == "postgresql://app:secret@db/prod"
    assert env.url == f"sqlite:///{tmp_path / 'staging.db'}"
    assert env.rules == tmp_path / "rules" / "pii.yaml"
    assert env.subset.roots[0].table == "customer" and env.subset.roots[0].percent == 10
    assert env.subset.roots[0].where == "active"
    assert env.subset.passthrough == ("country", "city", "language")
    assert env.subset.exclude == {"audit_log": "empty"}
    assert env.keep == ("app_settings",)
    assert env.hooks["post_refresh"][0].run == "pytest tests/smoke -q"
    assert env.schedule == {"cron": "0 3 * * *"}


def test_missing_variable_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROD_DATABASE_URL", raising=False)
    monkeypatch.setenv("STAGING_DATABASE_URL", "sqlite:///staging.db")
    with pytest.raises(ConfigError) as info:
        load_project(_write(tmp_path, DESIGN_SKETCH))
    assert "${PROD_DATABASE_URL} is not set" in str(info.value)
    assert "datastage.yaml:2: source.url" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("source: {url: 'sqlite:///p.db'}\nenvironments:\n  staging: {url: 'sqlite:///s.db'\n",
         "invalid YAML"),
        ("source: {url: 'sqlite:///p.db'}\nenvironments:\n  staging:\n    url: sqlite:///s.db\n    subest: {}\n",
         "datastage.yaml:5: environments.staging.subest: unknown key 'subest' (did you mean 'subset'?)"),
        ("source: {url: 'sqlite:///p.db'}\nenvironments:\n  staging:\n    url: sqlite:///s.db\n"
         "    subset: {roots: [{table: c, percent: 150}]}\n",
         "environments.staging.subset.roots[0].percent: must be between 0 and 100, got 150"),
        ("source: {url: 'nonsense'}\nenvironments: {staging: {url: 'sqlite:///s.db'}}\n",
         "source.url: expected a database URL"),
        ("environments: {staging: {url: 'sqlite:///s.db'}}\n", "missing key 'source'"),
    ],
)
def test_broken_config_is_one_line_exit_2(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in lines[0]
    assert "Traceback" not in result.output


def test_unknown_environment_exit_2(demo_project: Path) -> None:
    result = CliRunner().invoke(main, ["refresh", "stagin", "--config", str(demo_project)])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {demo_project}: environments: unknown environment 'stagin' "
                                     "(did you mean 'staging'?); known: staging")


def test_missing_config_file_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'nope.yaml'}: file not found"


def test_config_from_environment_variable(demo_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASTAGE_CONFIG", str(demo_project))
    result = CliRunner().invoke(main, ["plan", "staging", "--json"])
    assert result.exit_code == 0, result.output
    assert '"environment": "staging"' in result.output


def test_protected_environment_is_refused(demo_project: Path) -> None:
    text = demo_project.read_text().replace("  staging:\n", "  staging:\n    protected: true\n")
    demo_project.write_text(text)
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2
    assert "marked protected" in result.output
    assert not (demo_project.parent / "staging.db").exists()


def test_target_that_is_the_source_is_refused(demo_project: Path) -> None:
    text = demo_project.read_text().replace("url: sqlite:///staging.db", "url: sqlite:///./prod.db")
    demo_project.write_text(text)
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2
    assert "is the source database" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${SET}", "value"),
        ("${EMPTY}", ""),                       # set but empty: empty, not an error
        ("${EMPTY:-fallback}", "fallback"),     # ':-' defaults when unset or empty (POSIX, Compose)
        ("${UNSET:-fallback}", "fallback"),
        ("${SET:-fallback}", "value"),
        ("${EMPTY-fallback}", ""),              # '-' defaults only when unset
        ("${UNSET-fallback}", "fallback"),
        ("${UNSET:-}", ""),
        ("pa$$word", "pa$word"),                # '$$' is one literal '$'
        ("$${SET}", "${SET}"),
        ("$$$$", "$$"),
        ("cost $5, a$b, $ alone, end $", "cost $5, a$b, $ alone, end $"),  # a lone '$' stays
        ("${UNSET:-${SET}}", "value"),          # a default may hold references and '$$'
        ("${UNSET:-pa$$word}", "pa$word"),
        ("${SET:-${UNSET}}", "value"),          # an unused default is not expanded
        ("${DOLLARS}", "a$$b${SET}"),           # values from the environment are never expanded again
        ("postgresql://app:${EMPTY:-pw}@${HOST-db}:5432/x", "postgresql://app:pw@db:5432/x"),
    ],
)
def test_interpolation(text: str, expected: str) -> None:
    from datastage.yamlfile import Node, interpolate

    environ = {"SET": "value", "EMPTY": "", "DOLLARS": "a$$b${SET}"}
    assert interpolate(Node(text, "datastage.yaml", "source.url", 2), environ) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${UNSET}", "environment variable ${UNSET} is not set"),
        ("x${UNSET:-${ALSO_UNSET}}", "environment variable ${ALSO_UNSET} is not set"),
        ("${1X}", "invalid variable reference at character 1"),
        ("${}", "invalid variable reference at character 1"),
        ("ab${SET:?message}", "invalid variable reference ${SET...} at character 3"),
        ("${SET", "invalid variable reference ${SET...} at character 1"),
        ("${UNSET:-no end", "a variable reference is missing its closing '}'"),
        ("${A:-" * 40 + "}" * 40, "variable references nested deeper than 32 levels"),
    ],
)
def test_interpolation_errors_name_file_line_and_key(text: str, expected: str) -> None:
    from datastage.yamlfile import Node, interpolate

    with pytest.raises(ConfigError) as info:
        interpolate(Node(text, "datastage.yaml", "source.url", 2), {"SET": "value"})
    assert str(info.value).startswith("datastage.yaml:2: source.url: "), str(info.value)
    assert expected in str(info.value)
    assert "value" not in str(info.value)  # the message never repeats the text (a URL may hold a password)


def test_interpolation_in_a_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROD_PASSWORD", "")
    monkeypatch.delenv("STAGING_DIR", raising=False)
    monkeypatch.setenv("RULES_DIR", "")
    path = _write(tmp_path, "source: {url: 'postgresql://app:${PROD_PASSWORD:-pa$$word}@db/prod'}\n"
                            "environments:\n"
                            "  staging:\n"
                            "    url: 'sqlite:///${STAGING_DIR-data}/staging.db'\n"
                            "    rules: '${RULES_DIR-rules}/pii.yaml'\n")
    project = load_project(path)
    assert project.source_url == "postgresql://app:pa$word@db/prod"
    assert project.environment("staging").url == f"sqlite:///{tmp_path / 'data' / 'staging.db'}"
    assert project.environment("staging").rules == Path("/pii.yaml")  # set but empty: '-' keeps it empty
    monkeypatch.delenv("PROD_PASSWORD")
    monkeypatch.setenv("STAGING_DIR", "")
    (tmp_path / "datastage.yaml").write_text(path.read_text().replace("${PROD_PASSWORD:-pa$$word}",
                                                                     "${PROD_PASSWORD}"))
    result = CliRunner().invoke(main, ["plan", "staging", "--config", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {path}:1: source.url: environment variable ${{PROD_PASSWORD}} "
                                     "is not set")


def test_batch_size_and_shadow_are_typed_settings(tmp_path: Path) -> None:
    path = _write(tmp_path, "source: {url: 'sqlite:///p.db'}\nenvironments:\n"
                            "  staging: {url: 'postgresql://app@db/staging', batch_size: 500, shadow: database}\n"
                            "  test: {url: 'sqlite:///t.db'}\n")
    project = load_project(path)
    assert (project.environment("staging").batch_size, project.environment("staging").shadow_mode) == (500, "database")
    assert (project.environment("test").batch_size, project.environment("test").shadow_mode) == (DEFAULT_BATCH_SIZE,
                                                                                                  "schema")


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("batch_size: 0", "datastage.yaml:4: environments.staging.batch_size: must be at least 1, got 0"),
        ("batch_size: lots", "datastage.yaml:4: environments.staging.batch_size: expected an integer, got 'lots'"),
        ("shadow: file", "datastage.yaml:4: environments.staging.shadow: must be 'schema' or 'database'"),
        ("schedule: '61 3 * * *'", "datastage.yaml:4: environments.staging.schedule: not a valid cron expression: "
                                   "'61 3 * * *' (five fields, e.g. \"0 3 * * *\")"),
        ("schedule: {cron: '0 25 * * *', timezone: UTC}", "datastage.yaml:4: environments.staging.schedule.cron: "
                                                         "not a valid cron expression: '0 25 * * *'"),
        ("schedule: {cron: null}", "datastage.yaml:4: environments.staging.schedule.cron: "
                                   "not a valid cron expression: None"),
    ],
)
def test_bad_environment_setting_fails_at_load(tmp_path: Path, setting: str, expected: str) -> None:
    path = _write(tmp_path, "source: {url: 'sqlite:///p.db'}\nenvironments:\n  staging:\n"
                            f"    {setting}\n    url: 'sqlite:///s.db'\n")
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert expected in str(info.value)
    result = CliRunner().invoke(main, ["history", "--config", str(path)])
    assert result.exit_code == 2 and result.output.strip() == f"error: {info.value}"


WEBHOOK_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_notify_takes_a_url_or_a_url_and_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", WEBHOOK_SECRET)
    path = _write(tmp_path, "source: {url: 'sqlite:///p.db'}\nenvironments:\n"
                            "  staging:\n    url: 'sqlite:///s.db'\n"
                            "    notify: {url: 'https://hooks.example.com/t0ken', secret: '${WEBHOOK_SECRET}'}\n"
                            "  test: {url: 'sqlite:///t.db', notify: 'https://hooks.example.com/plain'}\n")
    project = load_project(path)
    staging, test = project.environment("staging"), project.environment("test")
    assert (staging.notify, staging.notify_secret) == ("https://hooks.example.com/t0ken", WEBHOOK_SECRET)
    assert (test.notify, test.notify_secret) == ("https://hooks.example.com/plain", None)
    raw = bytes(range(32))
    for form in (WEBHOOK_SECRET, WEBHOOK_SECRET[len("whsec_"):], raw.hex()):  # hidden from every output
        assert redact(f"header {form} here") == "header *** here"


@pytest.mark.parametrize(
    ("notify", "expected"),
    [
        ("{url: 'https://h.example.com/x', secret: 'not-a-whsec-secret'}",
         "datastage.yaml:5: environments.staging.notify.secret: expected a webhook secret of the form whsec_ "
         "followed by base64 of 24 to 64 bytes"),
        ("{url: 'https://h.example.com/x', secret: 'whsec_c2hvcnQ='}",  # base64 of 5 bytes
         "datastage.yaml:5: environments.staging.notify.secret: expected a webhook secret"),
        ("{url: 'https://h.example.com/x', secret: 'whsec_%%%%'}",
         "datastage.yaml:5: environments.staging.notify.secret: expected a webhook secret"),
        ("{url: 'https://h.example.com/x', secret: '${NO_SUCH_WEBHOOK_SECRET}'}",
         "datastage.yaml:5: environments.staging.notify.secret: environment variable ${NO_SUCH_WEBHOOK_SECRET} "
         "is not set"),
        ("{url: 'h.example.com/x', secret: 'whsec_x'}",
         "datastage.yaml:5: environments.staging.notify.url: expected an http:// or https:// webhook URL"),
        ("{url: 'https://h.example.com/x', secrets: 'whsec_x'}",
         "datastage.yaml:5: environments.staging.notify.secrets: unknown key 'secrets' (did you mean 'secret'?)"),
    ],
)
def test_bad_webhook_settings_name_file_line_and_key(tmp_path: Path, notify: str, expected: str) -> None:
    path = _write(tmp_path, "source: {url: 'sqlite:///p.db'}\nenvironments:\n  staging:\n"
                            f"    url: 'sqlite:///s.db'\n    notify: {notify}\n")
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert expected in str(info.value)
    assert "not-a-whsec-secret" not in str(info.value) and "c2hvcnQ" not in str(info.value)


def test_tuning_from_the_process_environment() -> None:
    assert tuning_from_env({}) == Tuning(check_workers=None, connect_timeout=10)
    assert tuning_from_env({"DATASTAGE_CHECK_WORKERS": " 3 ", "DATASTAGE_CONNECT_TIMEOUT": "30"}) == Tuning(3, 30)
    assert tuning_from_env({"DATASTAGE_CHECK_WORKERS": "0", "DATASTAGE_CONNECT_TIMEOUT": ""}) == Tuning(1, 10)
    for name, value, expected in (
            ("DATASTAGE_CHECK_WORKERS", "four", "$DATASTAGE_CHECK_WORKERS must be a whole number of worker processes "
                                                "(got 'four')"),
            ("DATASTAGE_CONNECT_TIMEOUT", "0", "$DATASTAGE_CONNECT_TIMEOUT must be a whole number of seconds, "
                                               "at least 1 (got '0')"),
            ("DATASTAGE_CONNECT_TIMEOUT", "1.5", "$DATASTAGE_CONNECT_TIMEOUT must be a whole number of seconds, "
                                                 "at least 1 (got '1.5')")):
        with pytest.raises(ConfigError) as info:
            tuning_from_env({name: value})
        assert str(info.value) == expected


def test_bad_tuning_variable_is_one_line_exit_2(demo_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASTAGE_CHECK_WORKERS", "many")
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2
    assert result.output.strip() == ("error: $DATASTAGE_CHECK_WORKERS must be a whole number of worker processes "
                                     "(got 'many')")


TEMPLATES = """
source: {url: "sqlite:///prod.db"}
environments:
  staging:
    url: "sqlite:///staging.db"
    ondemand:
      name: "pr_{id}"
      ttl: 8h
      max_ttl: 3d
      max_copies: 3
      on_test_failure: keep
      hooks:
        post_provision: [{run: "pytest tests/smoke -q", timeout: 600}]
        pre_teardown: [{sql: "SELECT 1"}]
      notify: {url: "https://hooks.example.com/T0/pr-token-42"}
ondemand:
  demo: {from: staging, ttl: 2d}
"""


def test_ondemand_templates_parse(tmp_path: Path) -> None:
    project = load_project(_write(tmp_path, TEMPLATES))
    staging, demo = project.template("staging"), project.template("demo")
    assert staging is not None and demo is not None and project.template("nope") is None
    assert (staging.source_environment, staging.pattern, staging.fields) == ("staging", "pr_{id}", ("id",))
    assert (staging.ttl, staging.max_ttl, staging.max_copies, staging.on_test_failure) == (
        dt.timedelta(hours=8), dt.timedelta(days=3), 3, "keep")
    assert [h.run for h in staging.hooks["post_provision"]] == ["pytest tests/smoke -q"]
    assert staging.hooks["post_provision"][0].timeout == 600
    assert [h.sql for h in staging.hooks["pre_teardown"]] == ["SELECT 1"]
    assert (demo.source_environment, demo.pattern, demo.ttl, demo.on_test_failure) == (
        "staging", None, dt.timedelta(days=2), "teardown")
    assert redact("see https://hooks.example.com/T0/pr-token-42") == "see ***"  # a template's webhook is a secret


@pytest.mark.parametrize(("setting", "expected"), [
    ("    ondemand: {name: \"PR-{id}\"}", "7: environments.staging.ondemand.name: must be a name pattern"),
    ("    ondemand: {ttl: 5x}", "7: environments.staging.ondemand.ttl: must be a number and a unit"),
    ("    ondemand: {ttl: 4d, max_ttl: 1d}", "7: environments.staging.ondemand.ttl: is longer than max_ttl"),
    ("    ondemand: {max_copies: 0}", "environments.staging.ondemand.max_copies"),
    ("    ondemand: {on_test_failure: kep}", "must be teardown or keep (did you mean 'keep'?)"),
    ("    ondemand: {hooks: {post_refresh: [{run: x}]}}", "unknown hook point 'post_refresh'"),
    ("    ondemand: {colour: red}", "unknown key 'colour'"),
    ("ondemand: {demo: {ttl: 1d}}", "a template needs 'from:'"),
    ("ondemand: {demo: {from: stagin}}", "unknown environment 'stagin' (did you mean 'staging'?)"),
    ("ondemand: {staging: {from: staging}}", "has the name of an environment"),
])
def test_bad_ondemand_settings_name_file_line_and_key(tmp_path: Path, setting: str, expected: str) -> None:
    text = 'source: {url: "sqlite:///prod.db"}\nenvironments:\n  staging:\n    url: "sqlite:///staging.db"\n'
    text = text.replace('    url: "sqlite:///staging.db"\n', '    url: "sqlite:///staging.db"\n\n\n' + setting + "\n") \
        if setting.startswith("    ") else text + setting + "\n"
    result = CliRunner().invoke(main, ["envs", "--config", str(_write(tmp_path, text))])
    assert result.exit_code == 2, result.output
    assert expected in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
