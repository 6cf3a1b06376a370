"""Post-load evidence on the demo: planted leaks fail the refresh, a clean refresh passes every check.

Each planted leak must end with exit code 3, the target exactly as it was, and a report
that names the failing check; no report may contain a source value of a masked column.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from report_schema import validate_report

import datastage
from datastage.cli import main

LIVE_CARD = "4532015112830366"  # Luhn-valid, in a real Visa range, not a test number


def _refresh(config: Path, *extra: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(config), "--json", *extra])
    return result.exit_code, json.loads(result.output)


def _rules(config: Path) -> Path:
    return config.parent / "rules" / "pii.yaml"


def _edit_rules(config: Path, old: str, new: str) -> None:
    path = _rules(config)
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _check(data: dict, name: str) -> dict:
    return next(c for c in data["checks"] if c["name"] == name)


def _prod(config: Path) -> sqlite3.Connection:
    return sqlite3.connect(config.parent / "prod.db")


def _masked_source_values(config: Path, report: dict) -> set[str]:
    """Every source value (6+ characters) of every column the report lists as masked."""
    conn = _prod(config)
    values: set[str] = set()
    try:
        for col in report["columns"]:
            if col["status"] != "protected":
                continue
            for (value,) in conn.execute(f'SELECT DISTINCT "{col["column"]}" FROM "{col["table"]}"'):
                if value is not None and len(str(value)) >= 6:
                    values.add(str(value))
    finally:
        conn.close()
    return values


def _assert_no_source_values(config: Path, report_paths: list[Path], report: dict) -> None:
    values = _masked_source_values(config, report)
    assert len(values) > 1000
    for path in report_paths:
        text = path.read_text(encoding="utf-8")
        leaked = [v for v in values if v in text]
        assert not leaked, f"{path.name} contains source values: {leaked[:3]}"


def _staged_before(config: Path) -> tuple[Path, str | None]:
    staging = config.parent / "staging.db"
    return staging, _digest(staging)


def test_clean_demo_refresh_passes_every_check(demo_project: Path) -> None:
    code, data = _refresh(demo_project)
    assert code == 0, data
    report = json.loads(Path(data["report_json"]).read_text())
    names = [c["name"] for c in report["checks"]]
    assert names == ["subset_counts", "row_counts", "foreign_keys", "unique_keys", "leak_masked_columns",
                     "leak_identifiers", "card_sweep", "kept_identifiers"]
    assert {c["status"] for c in report["checks"]} == {"PASS"}
    leak = _check(report, "leak_identifiers")["figures"]
    assert leak["source_tokens_hashed"]["email"] > 1000 and leak["source_tokens_hashed"]["card"] > 500
    assert leak["values_checked"] > 10_000
    masked = _check(report, "leak_masked_columns")["figures"]
    assert masked["masked_columns"] >= 15 and masked["matches"] == {}
    cards = _check(report, "card_sweep")["figures"]
    assert cards["test_range_numbers"] > 500 and cards["matches"] == {}
    assert report["legal_status"]["status"] == "pseudonymised"
    body = next(c for c in report["columns"] if (c["table"], c["column"]) == ("support_ticket", "body"))
    assert body["classification"] == "direct_identifier" and body["status"] == "protected"
    assert body["strategy"] == "regex" and body["rows_changed"] > 0
    _assert_no_source_values(demo_project, [Path(data["report_json"]), Path(data["report_html"])], report)


def test_email_copied_into_kept_free_text_fails(demo_project: Path) -> None:
    datastage.refresh("staging", config=demo_project)
    staging, before = _staged_before(demo_project)
    conn = _prod(demo_project)
    conn.execute("UPDATE support_ticket SET subject = subject || ' (reply to ' || "
                 "(SELECT email FROM customer c WHERE c.customer_id = support_ticket.customer_id) || ')' "
                 "WHERE ticket_id % 10 = 0")
    conn.commit()
    conn.close()
    code, data = _refresh(demo_project)
    assert code == 3
    assert data["verdict"] == "fail"
    check = _check(data, "leak_identifiers")
    assert check["status"] == "FAIL"
    assert list(check["figures"]["matches"]) == ["support_ticket.subject"]
    assert check["figures"]["matches"]["support_ticket.subject"]["email"] > 5
    assert _digest(staging) == before
    assert not [p for p in staging.parent.iterdir() if ".shadow-" in p.name]
    report = json.loads(Path(data["report_json"]).read_text())
    assert report["verdict"] == "fail" and report["exit_code"] == 3
    assert datastage.history("staging", config=demo_project)[-1]["verdict"] == "fail"
    _assert_no_source_values(demo_project, [Path(data["report_json"]), Path(data["report_html"])], report)
    validate_report(report)
    # The findings name where each address came from and which target rows hold it.
    found = datastage.report_findings(data["run_id"], config=demo_project)
    assert found and {(f["check"], f["status"], f["column"], f["kind"]) for f in found} == {
        ("leak_identifiers", "FAIL", "support_ticket.subject", "email")}
    assert all("customer.email" in f["origin"] and f["key_columns"] == ["ticket_id"] for f in found)
    assert all(row[0] % 10 == 0 for f in found for row in f["rows"])
    shown = CliRunner().invoke(main, ["report", "show", data["run_id"], "--config", str(demo_project), "--findings"])
    assert shown.exit_code == 0
    lines = shown.output.splitlines()
    assert len(lines) == len(found) and lines[0].startswith("FAIL leak_identifiers support_ticket.subject: ")
    assert f"from {', '.join(found[0]['origin'])}; {found[0]['row_count']} row(s), ticket_id" in lines[0]
    assert lines[0].endswith(", ".join(str(row[0]) for row in found[0]["rows"]))  # never cut to a width
    as_json = CliRunner().invoke(main, ["report", "show", data["run_id"], "--config", str(demo_project),
                                        "--findings", "--json"])
    assert json.loads(as_json.output) == found
    page = Path(data["report_html"]).read_text()
    assert "id='findings'" in page and "support_ticket.subject" in page


def test_live_card_in_a_json_field_fails(demo_project: Path) -> None:
    conn = _prod(demo_project)
    conn.execute("CREATE TABLE customer_event (event_id INTEGER PRIMARY KEY, "
                 "customer_id INTEGER NOT NULL REFERENCES customer (customer_id), payload JSON NOT NULL)")
    events = [(i, i, json.dumps({"kind": "checkout", "basket": i % 7})) for i in range(1, 400)]
    events[41] = (42, 42, json.dumps({"kind": "checkout", "payment": {"card": LIVE_CARD, "cvc": "123"}}))
    conn.executemany("INSERT INTO customer_event VALUES (?, ?, ?)", events)
    conn.commit()
    conn.close()
    _edit_rules(demo_project, "  audit_log: truncate\n",
                "  audit_log: truncate\n  customer_event:\n    payload: {strategy: keep, reason: \"event metadata\"}\n")
    config = demo_project.read_text()
    root = '        - {table: customer, where: "active = 1", percent: 25}\n'
    assert root in config
    demo_project.write_text(config.replace(root, root + '        - {table: customer, where: "customer_id = 42"}\n'))
    staging, before = _staged_before(demo_project)
    code, data = _refresh(demo_project)
    assert code == 3, data
    check = _check(data, "card_sweep")
    assert check["status"] == "FAIL"
    assert check["figures"]["matches"] == {"customer_event.payload": 1}
    assert LIVE_CARD not in Path(data["report_json"]).read_text()
    assert LIVE_CARD not in Path(data["report_html"]).read_text()
    assert _digest(staging) == before is None


def test_masked_column_whose_rule_was_disabled_fails(demo_project: Path) -> None:
    _edit_rules(demo_project, "    ship_email: email ", "    ship_email: {strategy: email, when: \"order_id < 0\"} ")
    code, data = _refresh(demo_project)
    assert code == 3, data
    masked = _check(data, "leak_masked_columns")
    assert masked["status"] == "FAIL"
    assert masked["figures"]["matches"]["orders.ship_email"] > 1000
    identifiers = _check(data, "leak_identifiers")
    assert identifiers["status"] == "FAIL"
    assert identifiers["figures"]["matches"]["orders.ship_email"]["email"] > 1000
    report = json.loads(Path(data["report_json"]).read_text())
    _assert_no_source_values(demo_project, [Path(data["report_json"]), Path(data["report_html"])], report)


def test_partial_rule_that_keeps_everything_fails(demo_project: Path) -> None:
    _edit_rules(demo_project, "    phone: phone ", "    phone: {strategy: partial, keep_first: 40} ")
    code, data = _refresh(demo_project)
    assert code == 3, data
    identifiers = _check(data, "leak_identifiers")
    assert identifiers["status"] == "FAIL"
    assert identifiers["figures"]["matches"]["customer.phone"]["phone"] > 300
    # A rule that maps values onto themselves by design is excused, not counted, by the column check.
    assert _check(data, "leak_masked_columns")["figures"]["excused"]["customer.phone"]["fixed_points"] > 300


def test_severity_warn_lets_a_leak_through_with_verdict_warn(demo_project: Path) -> None:
    _edit_rules(demo_project, "    phone: phone ", "    phone: {strategy: partial, keep_first: 40} ")
    # The phone numbers kept whole also fail the kept-column check: warn there too.
    _edit_rules(demo_project, "default: fail ", "checks: {leak_identifiers: warn, kept_identifiers: warn}\n"
                                                "default: fail ")
    code, data = _refresh(demo_project)
    assert code == 0
    assert data["verdict"] == "warn"
    assert _check(data, "leak_identifiers")["status"] == "WARN"
    summary = _check(data, "leak_identifiers")["summary"]
    assert summary.endswith(" [would fail, severity warn in the rules]")
    assert summary.replace("'", "&#x27;") in Path(data["report_html"]).read_text()


def test_exempt_column_is_not_searched(demo_project: Path) -> None:
    _edit_rules(demo_project, "    phone: phone ", "    phone: {strategy: partial, keep_first: 40} ")
    _edit_rules(demo_project, "default: fail ", "checks:\n  leak_identifiers: {exempt: [customer.phone]}\n"
                                                "  kept_identifiers: warn\ndefault: fail ")
    code, data = _refresh(demo_project)
    assert code == 0, data
    assert _check(data, "leak_identifiers")["figures"]["exempt"] == ["customer.phone"]
    assert _check(data, "leak_identifiers")["summary"].endswith(" [exempt by the rules: customer.phone]")
    assert "[exempt by the rules: customer.phone]" in Path(data["report_html"]).read_text()


QUASI_RULES = """
quasi_identifiers:
  - {table: customer, columns: [birth_date, country_code], k_min: 5}
"""


def test_k_anonymity_below_k_min_fails(demo_project: Path) -> None:
    _edit_rules(demo_project, "default: fail ", QUASI_RULES + "default: fail ")
    code, data = _refresh(demo_project)
    assert code == 3
    check = _check(data, "k_anonymity")
    assert check["status"] == "FAIL" and check["table"] == "customer"
    figures = check["figures"]
    assert figures["k"] < 5 and figures["rows"] > 300 and figures["unique_rows"] > 0
    assert figures["columns"] == ["birth_date", "country_code"]


def test_k_anonymity_passes_and_supports_an_anonymisation_claim(demo_project: Path) -> None:
    rules = QUASI_RULES.replace("[birth_date, country_code], k_min: 5", "[birth_date], k_min: 5") + \
        "  - {table: address, columns: [city, postcode], k_min: 5, max_unique_share: 0.0}\n" \
        "  - {table: employee, columns: [hired_on], k_min: 5}\n"  # a hire date is a date of a person's life
    _edit_rules(demo_project, "default: fail ", rules + "default: fail ")
    _edit_rules(demo_project, "hired_on: {strategy: generalize, to: month}",
                "hired_on: {strategy: generalize, to: decade}")
    _edit_rules(demo_project, "birth_date: {strategy: generalize, to: year}",
                "birth_date: {strategy: generalize, to: decade}")
    _edit_rules(demo_project, "city: fake.city", "city: {strategy: value, value: \"Springfield\"}")
    _edit_rules(demo_project, "postcode: {strategy: generalize, keep: 3}", "postcode: {strategy: generalize, keep: 1}")
    code, data = _refresh(demo_project)
    assert code == 0, [c for c in data["checks"] if c["status"] != "PASS"]
    checks = [c for c in data["checks"] if c["name"] == "k_anonymity"]
    assert len(checks) == 3 and all(c["status"] == "PASS" and c["figures"]["k"] >= 5 for c in checks)
    report = json.loads(Path(data["report_json"]).read_text())
    validate_report(report)
    assert report["legal_status"]["status"] == "anonymisation_supported", report["legal_status"]
    assert "k-anonymous" in report["legal_status"]["statement"]
    assert report["check_settings"]["quasi_identifiers"][1]["max_unique_share"] == 0.0


@pytest.mark.parametrize(("block", "message"), [
    ("checks: {leak_identifier: warn}", "checks.leak_identifier: unknown check 'leak_identifier' (did you mean "
                                        "'leak_identifiers'?)"),
    ("checks: {card_sweep: {severity: loud}}", "checks.card_sweep.severity: severity must be fail or warn"),
    ("checks: {k_anonymity: {k_min: 0}}", "checks.k_anonymity.k_min: must be at least 1"),
    ("quasi_identifiers: [{table: custmer, columns: [birth_date]}]", "unknown table 'custmer' (did you mean "
                                                                      "'customer'?)"),
    ("quasi_identifiers: [{table: customer, columns: [birthdate]}]", "table customer has no column 'birthdate'"),
])
def test_bad_check_settings_are_rules_errors(demo_project: Path, block: str, message: str) -> None:
    _edit_rules(demo_project, "default: fail ", block + "\ndefault: fail ")
    result = CliRunner().invoke(main, ["refresh", "staging", "--config", str(demo_project)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert str(_rules(demo_project)) in result.output


def test_identifier_kept_with_reason_may_stay_in_its_column_but_not_elsewhere(demo_project: Path) -> None:
    _edit_rules(demo_project, "    email: {strategy: email, unique: true}\n    salary",
                "    email: {strategy: keep, reason: \"published staff directory\"}\n    salary")
    code, data = _refresh(demo_project)
    assert code == 0, [c for c in data["checks"] if c["status"] != "PASS"]
    report = json.loads(Path(data["report_json"]).read_text())
    assert "direct identifiers kept: employee.email" in report["legal_status"]["unmet"][0]
    # ship_email repeats the (masked) customer e-mail in 9 orders of 10: keeping it leaks them.
    _edit_rules(demo_project, "    ship_email: email ", "    ship_email: {strategy: keep, reason: \"reviewed\"} ")
    code, data = _refresh(demo_project)
    assert code == 3
    check = _check(data, "leak_identifiers")
    assert set(check["figures"]["matches"]) == {"orders.ship_email"}
    assert check["figures"]["matches"]["orders.ship_email"]["email"] > 500
    assert all(f["column"] == "orders.ship_email" and "customer.email" in f["origin"]
               and f["key_columns"] == ["order_id"] and len(f["rows"]) == 20 for f in check["findings"])


def test_a_separator_character_inside_a_value_keeps_tokens_on_their_value() -> None:
    import pandas as pd

    from datastage.verify.leaks.tokens import identifier_tokens

    found = identifier_tokens(pd.Series(["x", "junk\x00bob@example.com", "y"], dtype=object))
    assert found.tokens == ["email:bob@example.com"] and found.origins == [1]


def test_a_batch_finds_each_values_own_tokens_on_that_value() -> None:
    """Each pattern runs only over the values that could match it: the batch must find exactly
    what each value finds alone, at the right position (also where upper-casing changes a length)."""
    import random

    import pandas as pd
    from faker import Faker

    from datastage.verify.leaks.tokens import identifier_tokens, name_bigrams

    fake = Faker(["en_US", "en_GB", "de_DE"])
    fake.seed_instance(7)
    rng = random.Random(7)
    makers = [fake.email, fake.phone_number, fake.credit_card_number, fake.iban, fake.ssn, fake.name, fake.address,
              fake.street_address, lambda: "Straße " + fake.iban(), lambda: "NI AB 12 34 56 C, Weißstraße",
              lambda: f"call {fake.phone_number()} or {fake.email()}, card {fake.credit_card_number()}",
              lambda: "x\x00y " + fake.ssn(), lambda: "Zbigniew Brzęczyszczykiewicz", lambda: str(rng.getrandbits(56))]
    values = [rng.choice(makers)() for _ in range(3000)]
    batch = identifier_tokens(pd.Series(values, dtype=object), whole_phone=True, names=True)
    alone: list[tuple[str, int]] = []
    cards: list[int] = []
    for position, value in enumerate(values):
        one = identifier_tokens(pd.Series([value], dtype=object), whole_phone=True, names=True)
        alone += [(token, position) for token in one.tokens]
        cards += [position] * one.test_cards
    assert sorted(zip(batch.tokens, batch.origins, strict=True)) == sorted(alone)
    assert sorted(batch.test_card_origins) == cards
    kinds = {token.split(":", 1)[0] for token, _ in alone}
    assert {"email", "phone", "card", "iban", "ssn", "ni", "name"} <= kinds
    assert sorted(name_bigrams(pd.Series(values, dtype=object))) == sorted(
        (token, position) for position, value in enumerate(values)
        for token, _ in name_bigrams(pd.Series([value], dtype=object)))


def test_letters_that_upper_case_into_two_still_reach_the_iban_and_ni_patterns() -> None:
    import pandas as pd

    from datastage.verify.leaks.tokens import identifier_tokens

    found = identifier_tokens(pd.Series(["ß123456A", "x", "ß02 1234 5698 7654 3210"], dtype=object))
    assert sorted(zip(found.tokens, found.origins, strict=True)) == [
        ("iban:SS021234569876543210", 2), ("ni:SS123456A", 0)]
