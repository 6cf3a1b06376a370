"""Policy checking: one broken rules file per error class with its exact message, `rules check`
through the CLI, the fail-closed gate with schema drift, and the demo and example policies."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import datastage
from datastage.cli import main
from datastage.demo import RULES
from datastage.errors import RulesError
from datastage.mask.policy import load_policy
from datastage.mask.resolve import resolve_policy
from datastage.rulescheck import check_policy_file
from datastage.source.schema import SchemaModel, reflect

ROOT = Path(__file__).resolve().parents[2]
HEAD = "version: 1\ndefault: keep\ntables:\n"


@pytest.fixture(scope="module")
def demo_model(demo_template: Path) -> SchemaModel:
    engine = sa.create_engine(f"sqlite:///{demo_template / 'prod.db'}")
    try:
        with engine.connect() as conn:
            return reflect(conn)
    finally:
        engine.dispose()


# (name, rules text, expected message with {f} for the file) — one per error class.
BROKEN = [
    ("yaml-syntax", "version: 1\ntables:\n  customer: {email: [\n",
     "{f}:4: invalid YAML: expected the node content, but found '<stream end>'"),
    ("no-version", "tables: {}\n", "{f}:1: missing 'version: 1'"),
    ("bad-version", "version: 2\n", "{f}:1: version: unsupported rules version 2 (expected 1)"),
    ("top-key", "version: 1\ntabels: {}\n", "{f}:2: tabels: unknown key 'tabels' (did you mean 'tables'?)"),
    ("default", "version: 1\ndefault: keeep\n",
     "{f}:2: default: must be one of fail, keep, null (did you mean 'keep'?)"),
    ("table-action", HEAD + "  audit_log: truncat\n",
     "{f}:4: tables.audit_log: a table takes 'truncate', 'keep' or a mapping of column rules, got 'truncat' "
     "(did you mean 'truncate'?)"),
    ("unknown-table", HEAD + "  custmer:\n    email: email\n",
     "{f}:4: tables.custmer: unknown table 'custmer' (did you mean 'customer'?)"),
    ("unknown-column", HEAD + "  customer:\n    emial: email\n",
     "{f}:5: tables.customer.emial: table customer has no column 'emial' (did you mean 'email'?)"),
    ("unknown-strategy", HEAD + "  customer:\n    email: emial\n",
     "{f}:5: tables.customer.email: unknown strategy 'emial' (did you mean 'email'?); run 'datastage "
     "strategies' to list them"),
    ("unknown-parameter", HEAD + "  customer:\n    email: {strategy: email, keep_domian: true}\n",
     "{f}:5: tables.customer.email.keep_domian: unknown parameter 'keep_domian' for strategy email "
     "(did you mean 'keep_domain'?) (parameters: keep_domain, mail_domain, locale)"),
    ("parameter-type", HEAD + "  customer:\n    phone: {strategy: partial, keep_last: two}\n",
     "{f}:5: tables.customer.phone.keep_last: expected an integer, got str 'two'"),
    ("parameter-choice", HEAD + "  customer:\n    phone: {strategy: hash, encoding: base64}\n",
     "{f}:5: tables.customer.phone.encoding: must be one of hex, base32"),
    ("missing-parameter", HEAD + "  customer:\n    phone: {strategy: value}\n",
     "{f}:5: tables.customer.phone: strategy value needs parameter 'value'"),
    ("keep-extra", HEAD + "  customer:\n    phone: {strategy: keep, keep_last: 2}\n",
     "{f}:5: tables.customer.phone: 'keep' takes only a reason and classify, not keep_last"),
    ("empty-rule", HEAD + "  customer:\n    phone:\n",
     "{f}:5: tables.customer.phone: empty rule; write 'keep' or a strategy"),
    ("type-mismatch", HEAD + "  customer:\n    email: {strategy: noise, relative: 0.1}\n",
     "{f}:5: tables.customer.email: strategy noise does not apply to customer.email of type TEXT (text); "
     "it takes decimal, float, integer"),
    ("unique-conflict", HEAD + "  customer:\n    email: fake.email\n",
     "{f}:5: tables.customer.email: customer.email is part of a unique key, but strategy fake.email cannot keep "
     "distinct values distinct; use a unique-capable strategy (tokenize, hash, email, card_number ...)"),
    ("marked-unique", HEAD + "  customer:\n    phone: {strategy: partial, keep_last: 2, unique: true}\n",
     "{f}:5: tables.customer.phone: customer.phone is marked unique, but strategy partial cannot keep distinct "
     "values distinct; use a unique-capable strategy (tokenize, hash, email, card_number ...)"),
    ("null-not-null", HEAD + "  address:\n    line1: 'null'\n",
     "{f}:5: tables.address.line1: address.line1 is NOT NULL; strategy null cannot apply"),
    ("bad-when", HEAD + "  customer:\n    phone: {strategy: phone, when: \"active ==\"}\n",
     "{f}:5: tables.customer.phone.when: invalid condition: expected a column or a value at the end"),
    ("when-not-text", HEAD + "  customer:\n    phone: {strategy: phone, when: 5}\n",
     "{f}:5: tables.customer.phone.when: invalid condition: expected a condition in quotes, e.g. \"tier = 'vip'\", "
     "got int 5"),
    ("when-column", HEAD + "  customer:\n    phone: {strategy: phone, when: \"actve = 1\"}\n",
     "{f}:5: tables.customer.phone.when: invalid condition: table customer has no column 'actve' "
     "(did you mean 'active'?)"),
    ("when-types", HEAD + "  customer:\n    phone:\n      strategy: phone\n      when: \"email > 5\"\n",
     "{f}:7: tables.customer.phone.when: invalid condition: '>' at character 7 compares text (email) with "
     "a number (5)"),
    ("when-regex", HEAD + "  customer:\n    phone: {strategy: phone, when: \"email matches '(a)\\\\1'\"}\n",
     "{f}:5: tables.customer.phone.when: invalid condition: invalid regular expression at character 15: invalid "
     "escape sequence: \\1 (RE2 syntax: no backreferences or look-arounds)"),
    ("when-code", HEAD + "  customer:\n    phone: {strategy: phone, when: \"email.__class__ == 0\"}\n",
     "{f}:5: tables.customer.phone.when: invalid condition: unexpected '.' at character 6: there is no attribute "
     "access; name a column (quote odd names in backticks)"),
    ("integer-type", HEAD + "  product:\n    sku: tokenize\n  customer:\n    customer_id: tokenize\n"
                           "  orders:\n    customer_id: {strategy: hash}\n",
     "{f}:9: tables.orders.customer_id: strategy hash does not apply to orders.customer_id of type INTEGER "
     "(integer); it takes text"),
    ("fk-own-rule", HEAD + "  customer:\n    customer_id: tokenize\n  orders:\n    customer_id: keep\n",
     "{f}:7: tables.orders.customer_id: orders.customer_id references customer.customer_id, which is masked "
     "with tokenize; its own rule keep would break the reference. Remove it: the parent's rule is applied "
     "automatically"),
    ("nested-unknown", HEAD + "  support_ticket:\n    body: {strategy: regex, pattern: x, with: emial}\n",
     "{f}:5: tables.support_ticket.body: patterns[0]: unknown strategy 'emial' (did you mean 'email'?); run "
     "'datastage strategies' to list them"),
    ("nested-row-dependent", HEAD + "  support_ticket:\n    body: {strategy: regex, pattern: x, "
                                    "with: person.first_name}\n",
     "{f}:5: tables.support_ticket.body: patterns[0]: strategy person.first_name reads other columns of the "
     "row, so it cannot mask parts of a value"),
    ("regex-pattern", HEAD + "  support_ticket:\n    body: {strategy: regex, pattern: '(', replacement: x}\n",
     "{f}:5: tables.support_ticket.body: invalid pattern: missing ), unterminated subpattern at position 0"),
    ("regex-both", HEAD + "  support_ticket:\n    body: {strategy: regex, pattern: x}\n",
     "{f}:5: tables.support_ticket.body: give exactly one of 'replacement' (text) or 'with' (a strategy)"),
    ("json-path", HEAD + "  support_ticket:\n    body: {strategy: json, paths: {'contact.email': email}}\n",
     "{f}:5: tables.support_ticket.body: paths: a JSON path starts with '$', got 'contact.email'"),
    ("person-by", HEAD + "  customer:\n    first_name: {strategy: person.first_name, by: emial}\n",
     "{f}:5: tables.customer.first_name: by: table customer has no column 'emial' (did you mean 'email'?)"),
    ("template-field", HEAD + "  customer:\n    phone: {strategy: template, template: '{frist_name}'}\n",
     "{f}:5: tables.customer.phone: template field {{frist_name}}: table customer has no column 'frist_name' "
     "(did you mean 'first_name'?)"),
    ("noise-amount", HEAD + "  employee:\n    salary: noise\n",
     "{f}:5: tables.employee.salary: noise needs exactly one of 'relative' (e.g. 0.1) or 'absolute' (e.g. 5)"),
    ("shuffle-key", HEAD + "  product:\n    sku: shuffle\n",
     "{f}:5: tables.product.sku: product.sku is part of a unique key, but strategy shuffle cannot keep distinct "
     "values distinct; use a unique-capable strategy (tokenize, hash, email, card_number ...)"),
    ("unknown-fake", HEAD + "  customer:\n    phone: fake.phone_numbr\n",
     "{f}:5: tables.customer.phone: unknown strategy 'fake.phone_numbr' (did you mean 'fake.phone_number'?); run "
     "'datastage strategies' to list them"),
    ("fake-internal", HEAD + "  customer:\n    phone: fake.seed_instance\n",
     "{f}:5: tables.customer.phone: unknown strategy 'fake.seed_instance' (did you mean 'fake.sentence'?); run "
     "'datastage strategies' to list them"),
    ("fake-text-args", HEAD + "  customer:\n    phone: {strategy: fake.pystr_format, args: {string_format: '{{x}}'}}\n",
     "{f}:5: tables.customer.phone: args.string_format: provider arguments are numbers (at most 1,000,000,000 "
     "either way) or true/false, got str '{{{{x}}}}'"),
    ("module-strategy", HEAD + "  customer:\n    phone: \"os:system\"\n",
     "{f}:5: tables.customer.phone: 'os:system': strategies are named, not imported; register a plugin via the "
     "datastage.strategies entry point"),
    ("key-when", HEAD + "  product:\n    sku: {strategy: tokenize, when: \"price > 10\"}\n",
     "{f}:5: tables.product.sku: product.sku is a key or unique column; masking only the rows matching when: "
     "could collide with the real values left in the others, and references to it would break; drop 'when'"),
    ("locale", HEAD + "  customer:\n    phone: {strategy: fake.phone_number, locale: xx_XX}\n",
     "{f}:5: tables.customer.phone: unknown Faker locale 'xx_XX'"),
    ("locale-hint", HEAD + "  customer:\n    phone: {strategy: fake.phone_number, locale: de_DD}\n",
     "{f}:5: tables.customer.phone: unknown Faker locale 'de_DD' (did you mean 'de_DE'?)"),
    ("coverage", "version: 1\ndefault: fail\ntables:\n  customer:\n    email: email\n",
     "{f}:2: default: 46 column(s) in scope have no rule (default: fail): address.line1, address.city, "),
]


@pytest.mark.parametrize(("name", "text", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_rules_file_gives_its_exact_message(demo_model: SchemaModel, tmp_path: Path, name: str, text: str,
                                                   expected: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(RulesError) as caught:
        resolve_policy(load_policy(path), demo_model)
    message = str(caught.value)
    if name == "coverage":
        assert message.startswith(expected.format(f=path)), message
        assert message.endswith("; add a strategy or 'keep' for each")
    else:
        assert message == expected.format(f=path)
    assert caught.value.exit_code == 2


def test_check_collects_every_error_at_once(demo_model: SchemaModel, tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(HEAD + "  custmer:\n    email: email\n  customer:\n    emial: email\n    phone: phnoe\n"
                           "    email: {strategy: email, keep_domian: true}\n")
    result = check_policy_file(path, demo_model)
    assert [str(e) for e in result.errors] == [
        f"{path}:8: tables.customer.phone: unknown strategy 'phnoe' (did you mean 'phone'?); run 'datastage "
        "strategies' to list them",
        f"{path}:9: tables.customer.email.keep_domian: unknown parameter 'keep_domian' for strategy email (did you "
        "mean 'keep_domain'?) (parameters: keep_domain, mail_domain, locale)",
        f"{path}:4: tables.custmer: unknown table 'custmer' (did you mean 'customer'?)",
        f"{path}:7: tables.customer.emial: table customer has no column 'emial' (did you mean 'email'?)",
    ]
    assert result.exit_code == 2


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_rules_check_cli_passes_the_demo_policy(demo_project: Path) -> None:
    code, output = _run("rules", "check", "--config", str(demo_project), "--env", "staging")
    assert code == 0, output
    assert output.strip().endswith("ok (18 masked columns, 0 warning(s))")
    code, output = _run("rules", "check", "--config", str(demo_project), "--env", "staging", "--json")
    data = json.loads(output)
    assert data["ok"] is True and data["errors"] == [] and data["exit_code"] == 0
    email = next(c for c in data["columns"] if (c["table"], c["column"]) == ("customer", "email"))
    assert email["status"] == "protected" and email["treatment"] == "email(keep_domain=False, " \
                                                                    "mail_domain='example.com')"


def test_rules_check_defaults_to_the_only_environment(demo_project: Path) -> None:
    # The demo's rules cover app_settings only through staging's keep: [app_settings].
    code, output = _run("rules", "check", "--rules", str(demo_project.parent / "rules" / "pii.yaml"),
                        "--config", str(demo_project))
    assert code == 0, output
    assert output.strip().endswith("ok (18 masked columns, 0 warning(s))")
    code, output = _run("rules", "check", "--config", str(demo_project), "--json")  # its rules file too
    assert code == 0 and json.loads(output)["environment"] == "staging"
    # With two environments none is assumed: the check has no scope, so app_settings needs a rule.
    config = demo_project.read_text(encoding="utf-8")
    demo_project.write_text(config + "  qa:\n    url: sqlite:///qa.db\n    rules: rules/pii.yaml\n",
                            encoding="utf-8")
    code, output = _run("rules", "check", "--rules", str(demo_project.parent / "rules" / "pii.yaml"),
                        "--config", str(demo_project))
    assert code == 2 and "app_settings.key, app_settings.value" in output
    code, output = _run("rules", "check", "--config", str(demo_project))
    assert code == 2 and "name the rules file with --rules" in output


def test_rules_check_cli_lists_errors_with_file_line_and_key(demo_project: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + "  customer:\n    email: emial\n    phone: {strategy: partial, keep_lst: 2}\n")
    code, output = _run("rules", "check", "--rules", str(path), "--config", str(demo_project))
    assert code == 2
    lines = output.strip().splitlines()
    assert lines[0] == (f"error: {path}:5: tables.customer.email: unknown strategy 'emial' (did you mean 'email'?); "
                        "run 'datastage strategies' to list them")
    assert lines[1].startswith(f"error: {path}:6: tables.customer.phone.keep_lst: unknown parameter 'keep_lst'")
    # default: keep also keeps columns the scan finds personal: the same coverage gate as a refresh.
    assert any(line.startswith(f"error: {path}:2: default: ") and "kept without a reason" in line for line in lines)
    assert lines[-1] == f"{path}: 3 error(s)"


def test_default_keep_is_a_warning_and_strict_makes_it_an_error(demo_project: Path, tmp_path: Path) -> None:
    path = tmp_path / "lenient.yaml"
    lenient = RULES.replace("default: fail", "default: keep").replace("    active: keep\n", "")
    assert lenient.count("active") == RULES.count("active") - 1
    path.write_text(lenient)
    code, output = _run("rules", "check", "--rules", str(path), "--config", str(demo_project), "--env", "staging")
    assert code == 0, output
    assert f"warning: {path}: default: keep applies to 1 column(s) without a rule: customer.active" in output
    code, output = _run("rules", "check", "--rules", str(path), "--config", str(demo_project), "--env", "staging",
                        "--strict")
    assert code == 2
    assert f"error: {path}: default: keep applies to 1 column(s) without a rule: customer.active (--strict)" in output


def test_new_column_without_a_rule_stops_the_refresh_and_is_named_new(demo_project: Path) -> None:
    first = datastage.refresh("staging", config=demo_project)
    assert first.verdict == "pass"
    staging = demo_project.parent / "staging.db"
    before = staging.read_bytes()
    conn = sqlite3.connect(demo_project.parent / "prod.db")
    conn.execute("ALTER TABLE customer ADD COLUMN nickname TEXT")
    conn.commit()
    conn.close()
    code, output = _run("refresh", "staging", "--config", str(demo_project))
    assert code == 2
    rules = demo_project.parent / "rules" / "pii.yaml"
    assert output.strip() == (f"error: {rules}:4: default: 1 column(s) in scope have no rule (default: fail): "
                              "customer.nickname (new since the last refresh); add a strategy or 'keep' for each")
    assert staging.read_bytes() == before
    code, output = _run("rules", "check", "--config", str(demo_project), "--env", "staging")
    assert code == 2
    assert f"warning: {rules}: 1 column(s) new since the last refresh: customer.nickname" in output


def test_example_policies_are_valid_yaml_with_known_strategies() -> None:
    for path in sorted((ROOT / "rules").glob("*.yaml")):
        policy = load_policy(path)
        assert policy.tables, path
    assert (ROOT / "rules" / "demo.yaml").read_text() == RULES


def test_strategies_command_lists_the_registry_with_parameters() -> None:
    code, output = _run("strategies", "--json")
    assert code == 0
    listed = {s["name"]: s for s in json.loads(output)}
    assert listed["tokenize"]["unique"] == "bijective" and listed["email"]["unique"] == "checked"
    assert listed["date_shift"]["params"]["max_days"] == {"default": 30, "required": False, "type": "an integer",
                                                         "doc": "largest shift in days, either way (never 0)",
                                                         "choices": None}
    assert listed["person.first_name"]["row_independent"] is False
    assert listed["hash"]["params"]["encoding"]["choices"] == ["hex", "base32"]
    code, text = _run("strategies")
    assert code == 0
    assert "tokenize  unique (bijective) · deterministic" in text
    assert "    - keep_last: characters kept at the end (default 0)" in text
    assert "fake.<provider>" in text


def test_hash_longer_than_the_column_is_rejected(tmp_path: Path) -> None:
    from maskkit import build_model

    model = build_model(tmp_path)
    path = tmp_path / "long.yaml"
    path.write_text(HEAD + "  customer:\n    code: {strategy: hash, length: 32}\n")
    with pytest.raises(RulesError) as caught:
        resolve_policy(load_policy(path), model)
    assert str(caught.value) == (f"{path}:5: tables.customer.code: customer.code holds at most 12 characters, "
                                 "but strategy hash writes 32; lower 'length'")
