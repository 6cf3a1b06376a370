"""The kept-column check on real refreshes: identifiers that discovery missed and the rules keep fail the refresh.

Every refresh here runs with a scan that misses the planted columns (as it misses real ones:
names with digits, ids without a detector), so the rules keep them without the coverage gate
noticing. The check must fail the refresh on every source and target dialect, leave the
target as it was, and write no real identifier into the report; the same columns kept with
a reason pass and are listed as accepted; masked and non-personal kept columns are never findings.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import ServerDatabases
from load_support import mysql_fingerprint, pg_fingerprint, sqlite_fingerprint, write_project
from report_schema import validate_report
from sqlalchemy.engine import make_url

import datastage
import datastage.pipeline
from datastage.discover.scan import ScanResult
from datastage.mask.policy import ColumnRule
from datastage.mask.resolve import ColumnDecision
from datastage.verify.checks import kept_early
from datastage.verify.checks.kept import LIMITS, accepted_reason, flags, limit_of

FIRST_NAMES = ["Emma", "Olivia", "James", "Liam", "Sophia", "Noah", "Mia", "Lucas", "Amelia", "Ethan", "Harper",
               "Mason", "Ella", "Logan", "Grace", "Owen", "Chloe", "Henry", "Zoe", "Jack"]
CITIES = ["Amsterdam", "Barcelona", "Chicago", "Dublin", "Edinburgh", "Frankfurt", "Glasgow", "Hamburg", "Istanbul",
          "Johannesburg", "Krakow", "Lisbon", "Madrid", "Nairobi", "Oslo", "Prague", "Quebec", "Rotterdam", "Seattle",
          "Toronto", "Utrecht", "Vienna", "Warsaw", "Zurich", "Austin", "Charlotte", "Jackson", "Madison", "Lincoln",
          "Florence"]
STATUSES = ["active", "closed", "pending", "suspended", "on_hold"]
MEMBERS = 60
LOGINS = 40
MISSED = {("member", "first"), ("member", "notes_ref"), ("member", "ssn_alt"), ("login_log", "member_ref"),
          ("login_log", "at_ip"), ("ticket", "notes"), ("ticket", "customer_email"), ("product", "description")}


def _email(i: int) -> str:
    return f"member.{i}@mail{i % 5}.example"


def _note_email(i: int) -> str:
    return f"r.{i}.contact@inbox{i % 3}.example"


def _ssn(i: int) -> str:
    return f"{101 + i:03d}-{11 + i % 80:02d}-{1001 + 7 * i:04d}"


def _login_email(i: int) -> str:
    return f"login{i}@visitors.example"


def _ip(i: int) -> str:
    return f"10.{i % 4}.{i % 7}.{1 + i}"


def _metadata() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table("city", metadata, sa.Column("city_id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("name", sa.String(80), nullable=False))
    sa.Table("member", metadata, sa.Column("member_id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("email", sa.String(120), nullable=False, unique=True),
             sa.Column("first", sa.String(60)), sa.Column("notes_ref", sa.String(120)),
             sa.Column("ssn_alt", sa.String(20)), sa.Column("contact", sa.String(120)),
             sa.Column("status", sa.String(20), nullable=False),
             sa.Column("city_id", sa.Integer, sa.ForeignKey("city.city_id")))
    sa.Table("login_log", metadata, sa.Column("member_ref", sa.String(120)), sa.Column("at_ip", sa.String(45)),
             sa.Column("outcome", sa.String(20)))  # no primary key: compared by value
    return metadata


def _rows() -> dict[str, list[dict[str, Any]]]:
    return {
        "city": [{"city_id": i + 1, "name": name} for i, name in enumerate(CITIES)],
        "member": [{"member_id": i, "email": _email(i), "first": FIRST_NAMES[i % len(FIRST_NAMES)],
                    "notes_ref": _note_email(i) if i % 3 else "n/a", "ssn_alt": _ssn(i),
                    "contact": f"contact{i}@shop{i % 4}.example", "status": STATUSES[i % len(STATUSES)],
                    "city_id": 1 + i % len(CITIES)} for i in range(1, MEMBERS + 1)],
        "login_log": [{"member_ref": _login_email(i), "at_ip": _ip(i), "outcome": "ok" if i % 4 else "denied"}
                      for i in range(LOGINS)],
    }


def identifiers() -> list[str]:
    """Every planted identifier value (none may appear in a report)."""
    values = [_email(i) for i in range(1, MEMBERS + 1)] + [_note_email(i) for i in range(1, MEMBERS + 1)]
    values += [_ssn(i) for i in range(1, MEMBERS + 1)] + [_login_email(i) for i in range(LOGINS)]
    return values + [f"contact{i}@shop{i % 4}.example" for i in range(1, MEMBERS + 1)]


def build_source(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        metadata = _metadata()
        metadata.create_all(engine)
        with engine.begin() as conn:
            for table in ("city", "member", "login_log"):
                conn.execute(metadata.tables[table].insert(), _rows()[table])
    finally:
        engine.dispose()


def _keep(reason: str | None) -> Any:
    return {"strategy": "keep", "reason": reason} if reason else "keep"


def rules(reason: str | None = None, checks: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rules: the missed columns kept (with ``reason``, or without one), e-mail masked, contact by regex."""
    out: dict[str, Any] = {
        "version": 1, "default": "fail",
        "tables": {
            "city": {"name": "keep"},
            "member": {"email": {"strategy": "email", "unique": True}, "first": _keep(reason),
                       "notes_ref": _keep(reason), "ssn_alt": _keep(reason),
                       "contact": {"strategy": "regex", "pattern": "@[A-Za-z0-9.-]+",
                                   "replacement": "@example.invalid"},
                       "status": "keep"},
            "login_log": {"member_ref": _keep(reason), "at_ip": _keep(reason), "outcome": "keep"},
        },
    }
    if checks:
        out["checks"] = checks
    return out


@pytest.fixture
def blind_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Discovery misses the planted columns (so the coverage gate lets the rules keep them)."""
    real = datastage.pipeline.scan_source

    def scan(*args: Any, **kwargs: Any) -> ScanResult:
        result = real(*args, **kwargs)
        result.findings = {slot: f for slot, f in result.findings.items() if slot not in MISSED}
        return result

    monkeypatch.setattr(datastage.pipeline, "scan_source", scan)


Fingerprint = Callable[[], Any]


def _server(request: pytest.FixtureRequest, dialect: str, prefix: str) -> tuple[str, Fingerprint]:
    if dialect == "sqlite":
        path = request.getfixturevalue("tmp_path") / f"{prefix}.db"
        return f"sqlite:///{path}", lambda: sqlite_fingerprint(path) if path.exists() else None
    if dialect == "postgresql":
        dbs: ServerDatabases = request.getfixturevalue("pg_databases")
        url = dbs.create(f"ds_{prefix}")
        return url, lambda: pg_fingerprint(url)
    dbs = request.getfixturevalue("mysql_databases")
    url = dbs.create(f"ds_{prefix}")
    dbs.created.append(str(make_url(url).database) + "__ds_prev")
    return url, lambda: mysql_fingerprint(url)


PG = pytest.mark.postgres
MY = pytest.mark.mysql
PAIRS = [
    pytest.param("sqlite", "sqlite", id="sqlite"),
    pytest.param("postgresql", "postgresql", id="postgresql", marks=PG),
    pytest.param("mysql", "mysql", id="mariadb", marks=MY),
    pytest.param("sqlite", "postgresql", id="sqlite-to-postgresql", marks=PG),
    pytest.param("postgresql", "mysql", id="postgresql-to-mariadb", marks=[PG, MY]),
    pytest.param("mysql", "sqlite", id="mariadb-to-sqlite", marks=MY),
]


def _kept_check(report: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == "kept_identifiers")


def _report(result: Any) -> tuple[dict[str, Any], str]:
    json_path, html_path = Path(result.report.json), Path(result.report.html)
    report = json.loads(json_path.read_text())
    validate_report(report)
    return report, json_path.read_text() + html_path.read_text()


@pytest.mark.parametrize(("source_dialect", "target_dialect"), PAIRS)
@pytest.mark.usefixtures("blind_scan")
def test_missed_identifier_columns_fail_the_refresh_unless_kept_with_a_reason(
        request: pytest.FixtureRequest, tmp_path: Path, source_dialect: str, target_dialect: str) -> None:
    missed_identifiers_case(request, tmp_path, source_dialect, target_dialect)


@pytest.fixture
def flagged_while_loading(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every copy's kept columns flagged by a worker as the copy commits each table, however small the
    copy; returns the tables whose flagging the check took from the worker."""
    taken: list[str] = []
    real = kept_early.KeptFlags.__call__

    def call(self: kept_early.KeptFlags, table_key: str) -> Any:
        flagged = real(self, table_key)
        if flagged is not None:
            taken.append(table_key)
        return flagged

    monkeypatch.setattr(kept_early, "MIN_ROWS", 0)
    monkeypatch.setenv("DATASTAGE_CHECK_WORKERS", "2")
    monkeypatch.setattr(kept_early.KeptFlags, "__call__", call)
    return taken


@pytest.mark.parametrize(("source_dialect", "target_dialect"), [
    pytest.param("postgresql", "postgresql", id="postgresql", marks=PG),
    pytest.param("postgresql", "mysql", id="postgresql-to-mariadb", marks=[PG, MY]),
    pytest.param("mysql", "mysql", id="mariadb", marks=MY),
])
@pytest.mark.usefixtures("blind_scan")
def test_kept_columns_flagged_while_the_copy_runs_give_the_same_results(
        request: pytest.FixtureRequest, tmp_path: Path, flagged_while_loading: list[str], source_dialect: str,
        target_dialect: str) -> None:
    """The same refreshes and assertions as above, with a worker flagging each table during the copy."""
    missed_identifiers_case(request, tmp_path, source_dialect, target_dialect)
    assert sorted(set(flagged_while_loading)) == ["city", "login_log", "member"]


@pytest.mark.postgres
@pytest.mark.usefixtures("blind_scan")
def test_tables_the_worker_fails_to_flag_are_flagged_after_the_load(
        request: pytest.FixtureRequest, tmp_path: Path, flagged_while_loading: list[str],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The worker is handed names no table has: each table is flagged by the check itself, with the
    same results, and a warning names the table."""
    real = kept_early.KeptFlags.offer

    def offer(self: kept_early.KeptFlags, table: Any, name: str) -> None:
        real(self, table, f'"no_such_{table.name}"')

    monkeypatch.setattr(kept_early.KeptFlags, "offer", offer)
    with caplog.at_level("WARNING", logger="datastage.verify"):
        missed_identifiers_case(request, tmp_path, "postgresql", "postgresql")
    assert flagged_while_loading == []
    warned = {r.__dict__.get("table") for r in caplog.records if "flags this table after the load" in r.getMessage()}
    assert {"city", "login_log", "member"} <= warned


@pytest.mark.postgres
def test_operations_that_do_not_say_their_post_load_leaves_the_rows_get_the_copy_flagged_after_it(
        request: pytest.FixtureRequest, tmp_path: Path, blind_scan: None, flagged_while_loading: list[str]) -> None:
    """A library caller's own operations may change the copy in ``post_load``: unless they say they do
    not (``post_load_changes_rows``), nothing is flagged while the copy runs."""
    from datastage.ops.envops import RefreshOps
    from datastage.pipeline import run_refresh
    from datastage.settings import load_project

    class Operations:
        def __init__(self, *args: Any) -> None:
            self.inner = RefreshOps(*args)

        def __getattr__(self, name: str) -> Any:
            if name == "post_load_changes_rows":
                raise AttributeError(name)
            return getattr(self.inner, name)

    source, _ = _server(request, "postgresql", "source")
    build_source(source)
    target, _ = _server(request, "postgresql", "target")
    config = write_project(tmp_path / "project", source, {"staging": {"url": target}}, rules=rules())
    result = run_refresh(load_project(config), "staging", operations=Operations)  # type: ignore[arg-type]
    assert result.verdict == "fail" and flagged_while_loading == []


def missed_identifiers_case(request: pytest.FixtureRequest, tmp_path: Path, source_dialect: str,
                            target_dialect: str) -> None:
    source, _ = _server(request, source_dialect, "source")
    build_source(source)
    target, fingerprint = _server(request, target_dialect, "target")

    # Kept with a reason: the refresh passes and the report lists the columns as accepted.
    config = write_project(tmp_path / "project", source, {"staging": {"url": target}},
                           rules=rules(reason="reviewed: test fixtures, not people"))
    passed = datastage.refresh("staging", config=config)
    assert passed.verdict == "pass", [c.summary for c in passed.checks if c.status != "PASS"]
    report, text = _report(passed)
    check = _kept_check(report)
    assert check["status"] == "PASS" and check["findings"] == []
    figures = check["figures"]
    accepted = {"login_log.at_ip", "login_log.member_ref", "member.first", "member.notes_ref", "member.ssn_alt"}
    assert set(figures["accepted"]) == accepted
    assert set(figures["accepted"].values()) == {"kept with reason: reviewed: test fixtures, not people"}
    assert "accepted by the rules: login_log.at_ip, login_log.member_ref, member.first" in check["summary"]
    assert figures["failing"] == []
    assert figures["compared_by_key"] == ["city", "member"] and figures["compared_by_value"] == ["login_log"]
    assert not any(value in text for value in identifiers())
    # Kept on purpose, but identifiers all the same: the copy is no anonymisation.
    kept = next(u for u in report["legal_status"]["unmet"] if u.startswith("direct identifiers kept: "))
    assert all(label in kept for label in accepted)
    before = fingerprint()

    # The same columns kept without a reason: the refresh fails, the target stays as it was.
    (tmp_path / "project" / "rules" / "pii.yaml").write_text(json.dumps(rules()))
    failed = datastage.refresh("staging", config=config)
    assert failed.verdict == "fail" and failed.exit_code == 3
    assert fingerprint() == before
    report, text = _report(failed)
    check = _kept_check(report)
    assert check["status"] == "FAIL"
    assert [c["name"] for c in report["checks"] if c["status"] == "FAIL"] == ["kept_identifiers"]
    figures = check["figures"]
    assert figures["failing"] == sorted(accepted) and figures["accepted"] == {}
    columns = figures["columns"]
    assert columns["member.first"]["kinds"]["name"] == {
        "flagged": MEMBERS, "equal_to_source": MEMBERS, "distinct_equal": 10, "share": 1.0}
    notes = columns["member.notes_ref"]
    assert notes["rows"] == MEMBERS and notes["kinds"]["email"]["equal_to_source"] == 40
    assert notes["decision"] == "non_personal" and notes["outcome"] == "identifiers" and notes["reason"] is None
    assert columns["member.ssn_alt"]["kinds"]["national_id"]["equal_to_source"] == MEMBERS
    assert columns["login_log.member_ref"]["kinds"]["email"]["equal_to_source"] == LOGINS
    assert columns["login_log.at_ip"]["kinds"]["ip_address"]["equal_to_source"] == LOGINS
    # Masked by a rule that changes values: not read. By a regex that leaves e-mails looking like
    # e-mails: read, flagged, but no longer the source's values.
    assert "member.email" not in columns
    assert columns["member.contact"]["kinds"]["email"]["equal_to_source"] == 0
    assert columns["member.contact"]["outcome"] == "differs from the source"
    # Kept non-personal columns: status codes flag nothing; a city lookup holds a few name-like words.
    assert "member.status" not in columns and "login_log.outcome" not in columns
    assert columns.get("city.name", {"outcome": "below the limits"})["outcome"] == "below the limits"
    findings = {(f["column"], f["kind"]): f for f in check["findings"]}
    assert set(findings) == {("member.first", "name"), ("member.notes_ref", "email"),
                             ("member.ssn_alt", "national_id"), ("login_log.member_ref", "email"),
                             ("login_log.at_ip", "ip_address")}
    ssn = findings[("member.ssn_alt", "national_id")]
    assert ssn["key_columns"] == ["member_id"] and ssn["rows"] == [[i] for i in range(1, 21)]
    assert ssn["count"] == ssn["row_count"] == MEMBERS and ssn["origin"] == ["member.ssn_alt"]
    assert findings[("member.notes_ref", "email")]["rows"][:3] == [[1], [2], [4]]
    assert findings[("login_log.member_ref", "email")]["key_columns"] is None
    assert "5 kept column(s) hold identifiers equal to their source values: " in check["summary"]
    assert "member.ssn_alt (national_id: 60 of 60 rows)" in check["summary"]
    assert not any(value in text for value in identifiers())


def test_severity_warn_lets_the_refresh_through_and_says_so(tmp_path: Path, blind_scan: None) -> None:
    source = tmp_path / "prod.db"
    build_source(f"sqlite:///{source}")
    config = write_project(tmp_path / "project", f"sqlite:///{source}",
                           {"staging": {"url": f"sqlite:///{tmp_path / 'staging.db'}"}},
                           rules=rules(checks={"kept_identifiers": "warn"}))
    result = datastage.refresh("staging", config=config)
    assert result.verdict == "warn"
    check = next(c for c in result.checks if c.name == "kept_identifiers")
    assert check.status == "WARN" and check.figures["severity"] == "warn"
    assert check.summary.endswith(" [would fail, severity warn in the rules]")
    assert len(check.figures["failing"]) == 5
    report, _ = _report(result)
    assert report["check_settings"]["severities"]["kept_identifiers"] == "warn"


def test_a_column_discovery_found_is_still_gated_before_the_copy(tmp_path: Path) -> None:
    """Without the blind scan, the coverage gate refuses the same rules before anything is copied:
    the check is the net under the scan, not a replacement for it."""
    source = tmp_path / "prod.db"
    build_source(f"sqlite:///{source}")
    config = write_project(tmp_path / "project", f"sqlite:///{source}",
                           {"staging": {"url": f"sqlite:///{tmp_path / 'staging.db'}"}}, rules=rules())
    with pytest.raises(datastage.RulesError, match="personal data but kept without a reason"):
        datastage.refresh("staging", config=config)
    assert not (tmp_path / "staging.db").exists()


def test_rows_a_post_load_hook_rewrites_are_not_the_source_values(tmp_path: Path, blind_scan: None) -> None:
    """The check reads the copy as it goes live and compares it with the source row by row."""
    source = tmp_path / "prod.db"
    build_source(f"sqlite:///{source}")
    hooks = {"post_load": [
        {"sql": "UPDATE member SET notes_ref = 'x' || member_id || '@example.com', ssn_alt = NULL, first = 'Fixture'"},
        {"sql": "DELETE FROM login_log"}]}
    config = write_project(tmp_path / "project", f"sqlite:///{source}",
                           {"staging": {"url": f"sqlite:///{tmp_path / 'staging.db'}", "hooks": hooks}},
                           rules=rules())
    result = datastage.refresh("staging", config=config)
    check = next(c for c in result.checks if c.name == "kept_identifiers")
    assert result.verdict == "pass", check.summary
    assert check.figures["columns"]["member.notes_ref"]["outcome"] == "differs from the source"
    assert check.figures["failing"] == []


@pytest.mark.postgres
def test_with_a_post_load_hook_the_copy_is_flagged_after_the_hook(
        request: pytest.FixtureRequest, tmp_path: Path, blind_scan: None, flagged_while_loading: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A hook may rewrite the copy after the load, so nothing is flagged while the copy runs."""
    started: list[object] = []
    real = kept_early.KeptFlags.__init__

    def init(self: kept_early.KeptFlags, *args: Any, **kwargs: Any) -> None:
        started.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(kept_early.KeptFlags, "__init__", init)
    source, _ = _server(request, "postgresql", "source")
    build_source(source)
    target, _ = _server(request, "postgresql", "target")
    hooks = {"post_load": [{"sql": "UPDATE member SET notes_ref = 'x' || member_id || '@example.com', "
                                   "ssn_alt = NULL, first = 'Fixture'"}, {"sql": "DELETE FROM login_log"}]}
    config = write_project(tmp_path / "project", source, {"staging": {"url": target, "hooks": hooks}}, rules=rules())
    result = datastage.refresh("staging", config=config)
    check = next(c for c in result.checks if c.name == "kept_identifiers")
    assert result.verdict == "pass", check.summary
    assert check.figures["columns"]["member.notes_ref"]["outcome"] == "differs from the source"
    assert started == [] and flagged_while_loading == []
    # Without the hook, the same copy is flagged while it loads (and fails: the identifiers are kept).
    config = write_project(tmp_path / "project2", source, {"staging": {"url": target}}, rules=rules())
    assert datastage.refresh("staging", config=config).verdict == "fail"
    assert len(started) == 1 and "member" in flagged_while_loading


# -- units ---------------------------------------------------------------------------------

def test_limits_per_kind() -> None:
    assert limit_of("email") is LIMITS["validated"] and limit_of("national_id") is LIMITS["validated"]
    assert limit_of("name") is LIMITS["names"] and LIMITS["names"].min_share == 0.5
    assert limit_of("phone") is LIMITS["other"] and limit_of("passport") is LIMITS["other"]
    assert limit_of("a_kind_added_later") is LIMITS["other"]
    assert limit_of("postcode") is None and limit_of("secret") is None and limit_of("city") is None


def test_the_checks_block_takes_a_severity_only() -> None:
    from datastage.mask.checkspec import parse_check_settings
    from datastage.mask.policy import policy_from_text

    settings = parse_check_settings(policy_from_text("version: 1\nchecks: {kept_identifiers: {severity: warn}}"))
    assert settings.severity("kept_identifiers") == "warn"
    assert parse_check_settings(policy_from_text("version: 1")).severity("kept_identifiers") == "fail"
    with pytest.raises(datastage.RulesError, match="max_matches"):
        parse_check_settings(policy_from_text("version: 1\nchecks: {kept_identifiers: {max_matches: 3}}"))


def test_flags_merge_the_name_kinds_and_drop_what_is_no_direct_identifier() -> None:
    values = pd.Series(["Emma", "Olivia Smith", " ann@example.com ", "SW1A 1AA", "active"], dtype=object)
    found = {kind: mask.tolist() for kind, mask in flags(values).items()}
    assert found == {"name": [True, True, False, False, False], "email": [False, False, True, False, False]}


def test_accepted_reasons() -> None:
    keep = ColumnRule("t", "c", None, reason="public")
    assert accepted_reason(ColumnDecision("t", "c", "kept-with-reason", keep, "public")) == "kept with reason: public"
    assert accepted_reason(ColumnDecision("t", "c", "non_personal", ColumnRule("t", "c", None))) is None
    assert accepted_reason(ColumnDecision("t", "c", "kept-by-default", None, "default: keep")) is None
    assert accepted_reason(ColumnDecision("t", "c", "kept-with-reason", None, "table kept as is")) is None
    assert accepted_reason(ColumnDecision("t", "c", "excluded", None, "kept from target")) == \
        "rows kept from target"
    classified = ColumnDecision("t", "c", "non_personal", ColumnRule("t", "c", None), "product codes")
    classified.classification = "non_personal"  # type: ignore[attr-defined]  # set by a classify: override
    assert accepted_reason(classified) == "classified non_personal: product codes"
    personal = copy.copy(classified)
    personal.classification = "direct_identifier"  # type: ignore[attr-defined]
    assert accepted_reason(personal) is None


def test_no_source_connection_no_check(tmp_path: Path) -> None:
    """A copy of an environment (on-demand provisioning) has no source to compare with."""
    from verify_support import Shadow, plan_for, sqlite_file

    from datastage.verify.checks import kept

    source = sqlite_file(tmp_path / "prod.db")
    shadow = Shadow(sqlite_file(tmp_path / "shadow.db"), plan_for(source))
    with shadow.context() as ctx:
        assert kept.check(ctx) == []


def _direct(tmp_path: Path, ddl: str, rows: dict[str, list[tuple[object, ...]]], rule_text: str,
            shadow_rows: dict[str, list[tuple[object, ...]]] | None = None, batch_size: int = 4) -> Any:
    """The check on a SQLite source and a shadow holding ``shadow_rows`` (default: the source rows), read
    in batches of ``batch_size``."""
    from verify_support import plan_for, quoted, sqlite_file

    from datastage.verify.checks import kept
    from datastage.verify.context import CheckContext

    source = sqlite_file(tmp_path / "prod.db", ddl, rows)
    shadow = sqlite_file(tmp_path / "shadow.db", ddl, shadow_rows if shadow_rows is not None else rows)
    planned = plan_for(source, rule_text)
    engines = [sa.create_engine(f"sqlite:///{path}") for path in (shadow, source)]
    try:
        with engines[0].connect() as conn, engines[1].connect() as src:
            ctx = CheckContext(conn, planned, quoted, batch_size=batch_size, source=src)
            (result,) = kept.check(ctx)
    finally:
        for engine in engines:
            engine.dispose()
    return result


def test_a_table_without_key_counts_kinds_that_appear_in_later_batches(tmp_path: Path) -> None:
    rows = [(f"visit {i}", None) for i in range(9)] + [(_login_email(i), _ip(i)) for i in range(9, 21)]
    result = _direct(tmp_path, "CREATE TABLE visit (who TEXT, ip TEXT);", {"visit": rows},
                     "version: 1\ndefault: keep\n")
    columns = result.figures["columns"]
    assert columns["visit.who"]["kinds"]["email"]["equal_to_source"] == 12
    assert columns["visit.ip"]["kinds"]["ip_address"] == {"flagged": 12, "equal_to_source": 12,
                                                          "distinct_equal": 10, "share": 1.0}
    assert result.status == "FAIL" and result.figures["compared_by_value"] == ["visit"]


def test_only_rows_equal_to_their_own_source_row_count(tmp_path: Path) -> None:
    """By key, a value moved to another row (as shuffle does) is not that row's source value."""
    ddl = "CREATE TABLE pair (a INTEGER, b TEXT, who TEXT, PRIMARY KEY (a, b));"
    rows = [(i % 3, f"k{i}", _login_email(i)) for i in range(12)]
    moved = [(a, b, rows[(n + 1) % 12][2]) for n, (a, b, _) in enumerate(rows)]
    moved[5] = rows[5]
    moved[7] = rows[7]
    result = _direct(tmp_path, ddl, {"pair": rows}, "version: 1\ndefault: keep\n", shadow_rows={"pair": moved})
    kinds = result.figures["columns"]["pair.who"]["kinds"]["email"]
    assert kinds["flagged"] == 12 and kinds["equal_to_source"] == 2
    assert result.status == "PASS" and result.figures["compared_by_key"] == ["pair"]
    assert result.figures["columns"]["pair.who"]["outcome"] == "below the limits"


def test_a_loaded_value_whose_source_row_holds_null_is_not_the_source_value(tmp_path: Path) -> None:
    """The comparison is by digests of the values: a NULL in the source equals no loaded value, whatever
    the loaded text (here also the text ``None``)."""
    ddl = "CREATE TABLE pair (a INTEGER, b TEXT, who TEXT, PRIMARY KEY (a, b));"
    rows = [(i % 3, f"k{i}", _login_email(i) if i % 4 else None) for i in range(12)]
    loaded = [(a, b, who if who is not None else _login_email(100 + n)) for n, (a, b, who) in enumerate(rows)]
    loaded[4] = (loaded[4][0], loaded[4][1], "None")
    result = _direct(tmp_path, ddl, {"pair": rows}, "version: 1\ndefault: keep\n", shadow_rows={"pair": loaded})
    kinds = result.figures["columns"]["pair.who"]["kinds"]["email"]
    assert kinds["flagged"] == 11 and kinds["equal_to_source"] == 9  # rows 0 and 8: NULL in the source


def test_a_masked_key_is_compared_by_value(tmp_path: Path) -> None:
    ddl = "CREATE TABLE person (code TEXT PRIMARY KEY, who TEXT);"
    rows = [(f"P{i:03d}", _login_email(i)) for i in range(10)]
    shadow = [(f"T{i:03d}", who) for i, (_, who) in enumerate(rows)]
    result = _direct(tmp_path, ddl, {"person": rows}, "version: 1\ndefault: keep\ntables: {person: {code: tokenize}}\n",
                     shadow_rows={"person": shadow})
    assert result.figures["compared_by_value"] == ["person"] and result.status == "FAIL"
    (finding,) = result.findings
    assert finding["kind"] == "email" and finding["count"] == 10 and finding["key_columns"] is None


def test_shuffled_values_count_only_where_a_key_shows_their_rows(tmp_path: Path) -> None:
    """Shuffle keeps the source's values in other rows: compared by key, few are their row's own; a
    table without a key cannot tell, so its shuffled columns are not compared."""
    rows = [(i, _login_email(i), _login_email(i)) for i in range(30)]
    ddl = "CREATE TABLE keyed (id INTEGER PRIMARY KEY, who TEXT, also TEXT); CREATE TABLE loose (who TEXT);"
    moved = [(i, rows[(i + 1) % 30][1], rows[i][2]) for i in range(30)]
    result = _direct(tmp_path, ddl, {"keyed": rows, "loose": [(r[1],) for r in rows]},
                     "version: 1\ndefault: keep\ntables: {keyed: {who: shuffle}, loose: {who: shuffle}}\n",
                     shadow_rows={"keyed": moved, "loose": [(r[1],) for r in moved]}, batch_size=100)
    columns = result.figures["columns"]
    assert columns["keyed.who"]["kinds"]["email"]["equal_to_source"] == 0
    assert columns["keyed.also"]["outcome"] == "identifiers"
    assert "loose.who" not in columns and result.figures["compared_by_value"] == []
    assert result.figures["failing"] == ["keyed.also"]


# -- identifiers inside kept free text -------------------------------------------------------

TICKETS = 30
PRODUCTS = 25
MATERIALS = ["cotton", "oak", "steel", "linen", "walnut", "bamboo"]


def _note(i: int) -> str:
    """A support note; two rows in three name an e-mail address or a phone no masked column holds."""
    if i % 3 == 0:
        return f"Ticket {i} closed on 2024-03-{1 + i % 28:02d} after the refund of 12.{i:02d} EUR was approved."
    if i % 3 == 1:
        return f"Customer asked us to reply to j.{i}.doe@webmail{i % 4}.example instead of the account address."
    return f"Callback requested: please ring +44 20 7946 0{100 + i:03d} between 9 and 5, order #{4400 + i}."


def _description(i: int) -> str:
    material = MATERIALS[i % len(MATERIALS)]
    return (f"Handmade {material} shelf, {60 + i} x 30 x 2{i % 10} cm, holds up to {10 + i} kg. "
            f"Model 20{10 + i % 15}-{i:02d}, ships in 3-5 days, 2 year warranty, EUR {49 + i}.99.")


def build_ticket_source(url: str) -> None:
    metadata = sa.MetaData()
    sa.Table("ticket", metadata, sa.Column("ticket_id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("customer_email", sa.String(120), nullable=False), sa.Column("notes", sa.Text),
             sa.Column("status", sa.String(20), nullable=False))
    sa.Table("product", metadata, sa.Column("product_id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("description", sa.Text, nullable=False))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(metadata.tables["ticket"].insert(), [
                {"ticket_id": i, "customer_email": _email(i), "notes": _note(i), "status": STATUSES[i % 5]}
                for i in range(1, TICKETS + 1)])
            conn.execute(metadata.tables["product"].insert(), [
                {"product_id": i, "description": _description(i)} for i in range(1, PRODUCTS + 1)])
    finally:
        engine.dispose()


def ticket_rules(reason: str | None = None) -> dict[str, Any]:
    return {"version": 1, "default": "fail", "tables": {
        "ticket": {"customer_email": {"strategy": "email", "unique": True}, "notes": _keep(reason), "status": "keep"},
        "product": {"description": "keep"}}}


def planted_in_notes() -> list[str]:
    out = [f"j.{i}.doe@webmail{i % 4}.example" for i in range(1, TICKETS + 1) if i % 3 == 1]
    return out + [f"+44 20 7946 0{100 + i:03d}" for i in range(1, TICKETS + 1) if i % 3 == 2]


TEXT_DIALECTS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql", marks=PG),
                 pytest.param("mysql", id="mariadb", marks=MY)]


@pytest.mark.parametrize("dialect", TEXT_DIALECTS)
@pytest.mark.usefixtures("blind_scan")
def test_kept_notes_holding_identifiers_fail_the_refresh_unless_kept_with_a_reason(
        request: pytest.FixtureRequest, tmp_path: Path, dialect: str) -> None:
    source, _ = _server(request, dialect, "source")
    build_ticket_source(source)
    target, fingerprint = _server(request, dialect, "target")

    config = write_project(tmp_path / "project", source, {"staging": {"url": target}},
                           rules=ticket_rules(reason="reviewed: callback notes stay for support"))
    passed = datastage.refresh("staging", config=config)
    assert passed.verdict == "pass", [c.summary for c in passed.checks if c.status != "PASS"]
    report, text = _report(passed)
    check = _kept_check(report)
    assert check["status"] == "PASS" and check["findings"] == []
    reason = "kept with reason: reviewed: callback notes stay for support"
    assert check["figures"]["accepted"] == {"ticket.notes": reason}
    assert check["figures"]["columns"]["ticket.notes"]["outcome"] == "accepted"
    assert "accepted by the rules: ticket.notes" in check["summary"]
    # Product descriptions: sizes, model numbers, prices and delivery times are no identifiers.
    assert "product.description" not in check["figures"]["columns"]
    assert not any(value in text for value in planted_in_notes())
    before = fingerprint()

    (tmp_path / "project" / "rules" / "pii.yaml").write_text(json.dumps(ticket_rules()))
    failed = datastage.refresh("staging", config=config)
    assert failed.verdict == "fail" and failed.exit_code == 3
    assert fingerprint() == before
    report, text = _report(failed)
    check = _kept_check(report)
    assert [c["name"] for c in report["checks"] if c["status"] == "FAIL"] == ["kept_identifiers"]
    figures = check["figures"]
    assert figures["failing"] == ["ticket.notes"] and figures["accepted"] == {}
    assert figures["limits"]["in_text"] == {"min_share": 0.0, "min_distinct": 3}
    assert figures["in_text_kinds"] == ["email_in_text", "card_number_in_text", "iban_in_text",
                                        "national_id_in_text", "phone_in_text"]
    notes = figures["columns"]["ticket.notes"]
    assert notes["rows"] == TICKETS and notes["outcome"] == "identifiers"
    assert notes["kinds"] == {
        "email_in_text": {"flagged": 10, "equal_to_source": 10, "distinct_equal": 10, "share": 0.3333},
        "phone_in_text": {"flagged": 10, "equal_to_source": 10, "distinct_equal": 10, "share": 0.3333}}
    assert "product.description" not in figures["columns"] and "ticket.customer_email" not in figures["columns"]
    findings = {f["kind"]: f for f in check["findings"]}
    assert set(findings) == {"email_in_text", "phone_in_text"}
    assert findings["email_in_text"]["rows"] == [[i] for i in range(1, TICKETS + 1) if i % 3 == 1]
    assert findings["phone_in_text"]["key_columns"] == ["ticket_id"]
    assert findings["phone_in_text"]["origin"] == ["ticket.notes"] and findings["phone_in_text"]["count"] == 10
    assert "ticket.notes (email_in_text: 10 of 30 rows)" in check["summary"]
    assert not any(value in text for value in planted_in_notes())


def test_notes_with_fewer_than_three_identifiers_are_below_the_limit(tmp_path: Path) -> None:
    ddl = "CREATE TABLE ticket (id INTEGER PRIMARY KEY, notes TEXT);"
    rows = [(i, _note(3 * i)) for i in range(1, 20)] + [(20, _note(1)), (21, _note(1)), (22, _note(2))]
    result = _direct(tmp_path, ddl, {"ticket": rows}, "version: 1\ndefault: keep\n", batch_size=8)
    assert result.status == "PASS"
    entry = result.figures["columns"]["ticket.notes"]
    assert entry["outcome"] == "below the limits"
    assert entry["kinds"]["email_in_text"]["equal_to_source"] == 2
    assert entry["kinds"]["email_in_text"]["distinct_equal"] == 1


def test_rewritten_notes_are_not_the_source_text(tmp_path: Path) -> None:
    """Only notes kept as they were count: a note whose text changed (e.g. by a hook) differs from the source."""
    ddl = "CREATE TABLE ticket (id INTEGER PRIMARY KEY, notes TEXT);"
    rows = [(i, _note(i)) for i in range(1, 13)]
    shadow = [(i, text + " (reviewed)") for i, text in rows]
    result = _direct(tmp_path, ddl, {"ticket": rows}, "version: 1\ndefault: keep\n", shadow_rows={"ticket": shadow})
    assert result.status == "PASS"
    assert result.figures["columns"]["ticket.notes"]["outcome"] == "differs from the source"


def test_span_kinds_are_found_inside_values_only() -> None:
    values = pd.Series(["ann@example.com", "write to ann@example.com", "SSN 999-33-2827 on file",
                        "card 4539 1488 0343 6467", "IBAN GB82 WEST 1234 5698 7654 32 please",
                        "Oak shelf 60 x 30 cm, model 2021-04"], dtype=object)
    found = {kind: mask.tolist() for kind, mask in flags(values).items()}
    assert found == {"email": [True, False, False, False, False, False],
                     "email_in_text": [False, True, False, False, False, False],
                     "national_id_in_text": [False, False, True, False, False, False],
                     "card_number_in_text": [False, False, False, True, False, False],
                     "iban_in_text": [False, False, False, False, True, False]}
    assert limit_of("phone_in_text") is LIMITS["in_text"] and LIMITS["in_text"].min_distinct == 3


def test_column_flags_across_batches_are_those_of_each_batch() -> None:
    """Remembered values and whole-batch phone handling give exactly what flags() gives batch by batch."""
    import random

    import numpy as np

    from datastage.verify.checks.kept import ColumnFlags

    rng = random.Random(3)
    pool = ["Emma", "Olivia Smith", " ann@example.com ", "active", "999-33-2827", "(415) 555-0142",
            "Call (415) 555-0142 after 5pm", "4539 1488 0343 6467", "TRK000000000123", "n/a", "12 Main Street",
            "mail r.1.contact@inbox1.example today", "phone 415 555 0142", "ann@example.com", "5555555555"]
    values = [rng.choice(pool) if rng.random() < 0.5 else f"+1-415-{rng.randrange(1000):03d}-{rng.randrange(10000):04d}"
              if rng.random() < 0.5 else f"user{rng.randrange(30)}@mail.example.org" for _ in range(1200)]
    series = pd.Series(values, dtype=object)
    for hints, size in ((frozenset(), 7), (frozenset({"phone"}), 250), (frozenset(), 1000)):
        column = ColumnFlags(hints)
        for start in range(0, len(series), size):
            part = series.iloc[start:start + size]
            expected, got = flags(part, hints), column(part)
            assert set(expected) == set(got)
            assert all(np.array_equal(expected[kind], got[kind]) for kind in expected)


def test_postgres_arrow_read_gives_the_driver_values(pg_databases: ServerDatabases) -> None:
    """COPY CSV parsed by pyarrow reads back what the driver's rows hold, as tables and as frames."""
    import psycopg

    from datastage.source.pgcopy import read_frames, read_tables

    url = make_url(pg_databases.create()).set(drivername="postgresql").render_as_string(hide_password=False)
    tricky = ["plain", "", None, " padded ", "tab\there", "line\nbreak", "cr\rhere", 'quote "x"', "comma, too",
              "back\\slash", "\\N", "\\.", "ünïcödé ✓", "\x1c", "  "]
    with psycopg.connect(url, autocommit=True) as raw:
        raw.execute("CREATE TABLE t (id bigint PRIMARY KEY, v text, w varchar(20))")
        with raw.cursor() as cursor:
            cursor.executemany("INSERT INTO t VALUES (%s, %s, %s)", [(i, v, v) for i, v in enumerate(tricky)])
        select = "SELECT id, v, w FROM t ORDER BY id"
        expected = [dict(zip(["id", "v", "w"], row, strict=True)) for row in raw.execute(select).fetchall()]
        got = [row for table in read_tables(raw, select, ["id", "v", "w"], {"id"}, 4) for row in table.to_pylist()]
        frames = pd.concat(list(read_frames(raw, select, ["id", "v", "w"], {"id"}, 4)), ignore_index=True)
    assert got == expected
    assert frames.to_dict("records") == expected
    assert all(type(row["id"]) is int for row in frames.to_dict("records"))
    assert [row["v"] for row in got] == tricky
