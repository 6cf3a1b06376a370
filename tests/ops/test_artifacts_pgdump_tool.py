"""``pg_dump -Fd`` of chosen schemas and its all-or-nothing ``pg_restore``, against the real PostgreSQL:
odd schema names taken literally, every value back as it was, refusals and damaged dumps leave the
database as it was, and a password reaches the programs only through their environment."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from conftest import ServerDatabases
from load_support import execute, rows, scalar
from sqlalchemy.engine import make_url

from datastage.errors import ConfigError, DatastageError, SafetyError, TargetError, UsageError
from datastage.ops.artifacts import pgdump
from datastage.secrets import Secrets
from datastage.source.identifiers import POSTGRESQL, qualified_name

pytestmark = pytest.mark.postgres

ODD = 'Odd.Sch"ema*?'  # a dot, a quote, upper case and pattern characters: must match only itself
DECOY = 'OddXSch"ema12'  # what the pattern would also match if its characters were not taken literally
HOSTILE = 'a b\n-- TOC entry 1 (class 2615 OID 1)\nCREATE SCHEMA "e";'  # spaces, and lines a script parser might take
SCHEMAS = ("public", ODD, HOSTILE)
KUNDE = qualified_name(POSTGRESQL, ODD, "Kunde ü")
PASSWORD = "pw 'q\" \\ %41 @:/ ü-s3cr"


def _setup_sql() -> list[str]:
    odd, decoy = qualified_name(POSTGRESQL, ODD), qualified_name(POSTGRESQL, DECOY)
    return [
        f"CREATE SCHEMA {odd}", f"CREATE SCHEMA {decoy}", "CREATE SCHEMA other",
        f"CREATE TABLE {KUNDE} (id serial PRIMARY KEY, name text NOT NULL, photo bytea, balance numeric(30, 10))",
        f"INSERT INTO {KUNDE} (name, photo, balance) VALUES ('Zoë 🚀 日本', '\\x00ff00'::bytea, "
        "12345678901234567890.0123456789), ('O''Brien \"x\"', NULL, -0.0000000001), "
        "(E'tab\\there\\nline', ''::bytea, NULL)",
        f"CREATE SEQUENCE {odd}.invoice_no START 1000",
        f"SELECT setval('{odd.replace(chr(39), chr(39) * 2)}.invoice_no', 1041)",
        f"CREATE TABLE public.orders (id int PRIMARY KEY, kunde_id int NOT NULL REFERENCES {KUNDE} (id), "
        "amount numeric(12, 2))",
        "INSERT INTO public.orders VALUES (1, 1, 10.50), (2, 1, 0.01), (3, 3, 99999999.99)",
        "CREATE TABLE public.datastage_refresh_log (run_id text PRIMARY KEY, verdict text)",
        "INSERT INTO public.datastage_refresh_log VALUES ('20261202-101500-ab12cd', 'pass')",
        f"CREATE TABLE {decoy}.decoy (id int)", "CREATE TABLE other.kept_home (id int)",
        f"CREATE SCHEMA {qualified_name(POSTGRESQL, HOSTILE)}",
        f"CREATE TABLE {qualified_name(POSTGRESQL, HOSTILE, 'e')} (id int)",
        f"INSERT INTO {qualified_name(POSTGRESQL, HOSTILE, 'e')} VALUES (5)",
        f"COMMENT ON SCHEMA {qualified_name(POSTGRESQL, HOSTILE)} IS 'from the source'",
    ]


@pytest.fixture(scope="module")
def dumped(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A small database with odd names and values, and its dump of ``public`` and the odd schema."""
    dbs = ServerDatabases(pg_server)
    try:
        source = dbs.create("ds_pgd_src")
        execute(source, *_setup_sql())
        folder = tmp_path_factory.mktemp("pgdump") / "copy" / "pg"
        pgdump.dump(source, SCHEMAS, folder)
        yield source, folder
    finally:
        dbs.drop_all()


def _tables(url: str) -> dict[str, Any]:
    """Every table outside the system schemas, with its rows (in a stable order) and their count."""
    found = rows(url, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                      "WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'")
    return {(schema, table): rows(url, f"SELECT t::text FROM {qualified_name(POSTGRESQL, schema, table)} t "
                                       "ORDER BY t::text")
            for schema, table in sorted(found)}


def _user_schemas(url: str) -> list[str]:
    return [r[0] for r in rows(url, "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                                    "AND nspname <> 'information_schema' ORDER BY 1")]


def _one_line(error: DatastageError) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_a_dump_restores_exactly_its_schemas_with_every_value(dumped: tuple[str, Path],
                                                               pg_databases: ServerDatabases) -> None:
    source, folder = dumped
    assert (folder / "toc.dat").is_file()
    assert [p.name for p in folder.parent.iterdir()] == ["pg"]  # the partial folder was renamed, nothing left
    copy = pg_databases.create("ds_pgd_copy")
    hostile = qualified_name(POSTGRESQL, HOSTILE)
    execute(copy, f"CREATE SCHEMA {hostile}", f"COMMENT ON SCHEMA {hostile} IS 'the target''s own'")
    pgdump.restore(folder, copy)  # public and the hostile schema exist (empty) and are filled, the odd one is made
    expected = {key: value for key, value in _tables(source).items() if key[0] in SCHEMAS}
    assert set(expected) == {("public", "orders"), ("public", "datastage_refresh_log"), (ODD, "Kunde ü"),
                             (HOSTILE, "e")}
    assert _tables(copy) == expected
    assert _user_schemas(copy) == sorted(SCHEMAS)  # neither the decoy nor "other" came along
    assert scalar(copy, f"SELECT obj_description('{hostile}'::regnamespace, 'pg_namespace')") == "the target's own"
    select = f"SELECT name, photo, balance FROM {KUNDE} ORDER BY id"
    assert rows(copy, select) == rows(source, select)
    assert rows(copy, select)[0][1] == b"\x00\xff\x00"
    odd = qualified_name(POSTGRESQL, ODD)
    assert scalar(copy, f"SELECT nextval('{odd.replace(chr(39), chr(39) * 2)}.invoice_no')") == 1042
    execute(copy, f"INSERT INTO {KUNDE} (name) VALUES ('next')")
    assert scalar(copy, f"SELECT max(id) FROM {KUNDE}") == 4  # the serial's sequence came with its value
    with pytest.raises(sa.exc.IntegrityError):
        execute(copy, "INSERT INTO public.orders VALUES (9, 999, 1)")  # the foreign key holds


def test_a_database_with_tables_is_refused_and_left_alone(dumped: tuple[str, Path],
                                                         pg_databases: ServerDatabases) -> None:
    _, folder = dumped
    busy = pg_databases.create("ds_pgd_busy")
    execute(busy, "CREATE TABLE public.mine (id int)", "INSERT INTO public.mine VALUES (7)")
    with pytest.raises(SafetyError) as refused:
        pgdump.restore(folder, busy)
    assert "schema 'public'" in _one_line(refused.value) and "empty database" in str(refused.value)
    assert _tables(busy) == {("public", "mine"): [("(7)",)]}
    assert _user_schemas(busy) == ["public"]


@pytest.mark.parametrize("damage", ["data", "toc"])
def test_a_damaged_dump_fails_with_one_line_and_the_database_unchanged(
        damage: str, dumped: tuple[str, Path], pg_databases: ServerDatabases, tmp_path: Path) -> None:
    _, folder = dumped
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    victim = max(broken.glob("[0-9]*.dat*"), key=lambda p: p.stat().st_size) if damage == "data" else broken / "toc.dat"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    target = pg_databases.create("ds_pgd_dmg")
    with pytest.raises(TargetError if damage == "data" else UsageError) as failed:
        pgdump.restore(broken, target)
    message = _one_line(failed.value)
    assert ("left unchanged" in message) if damage == "data" else ("reading the pg_dump folder" in message)
    assert _user_schemas(target) == ["public"]
    assert _tables(target) == {}


def test_dump_refusals_leave_nothing_behind(dumped: tuple[str, Path], tmp_path: Path) -> None:
    source, _ = dumped
    existing = tmp_path / "there"
    existing.mkdir()
    with pytest.raises(UsageError, match="already exists"):
        pgdump.dump(source, SCHEMAS, existing)
    with pytest.raises(ConfigError, match=re.escape("schema 'odd.sch\"ema*?' not found")):
        pgdump.dump(source, ("odd.sch\"ema*?",), tmp_path / "new")  # a schema's case is part of its name
    with pytest.raises(UsageError, match="at least one schema"):
        pgdump.dump(source, (), tmp_path / "new")
    assert [p.name for p in tmp_path.iterdir()] == ["there"]


def _recording_tool(bin_dir: Path, name: str, log: Path) -> None:
    """``name`` on PATH as a script that records its arguments and the password it was handed, then runs
    the real program."""
    real = shutil.which(name)
    assert real is not None
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{log}"\n'
                      f'printf "%s" "$PGPASSWORD" > "{log}.{name}.password"\nexec "{real}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_a_password_reaches_the_programs_only_in_their_environment(
        dumped: tuple[str, Path], pg_server: str, pg_databases: ServerDatabases, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    source, _ = dumped
    role = f"ds_pgd_role_{secrets.token_hex(3)}"
    literal = PASSWORD.replace("'", "''")
    execute(pg_server, f"CREATE ROLE {role} LOGIN PASSWORD '{literal}'")
    owned = pg_databases.create("ds_pgd_owned")
    hidden = Secrets([PASSWORD])
    try:
        def as_role(url: str) -> str:
            parsed = make_url(url)
            return (f"postgresql://{role}:{quote(PASSWORD, safe='')}@{parsed.host}:{parsed.port or 5432}/"
                    f"{parsed.database}")

        bin_dir, log = tmp_path / "bin", tmp_path / "argv.log"
        bin_dir.mkdir()
        for tool in ("pg_dump", "pg_restore"):
            _recording_tool(bin_dir, tool, log)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ.get('PATH', '')}")
        monkeypatch.delenv("PGPASSWORD", raising=False)

        with pytest.raises(TargetError) as denied:  # the role may not read the tables yet
            pgdump.dump(as_role(source), SCHEMAS, tmp_path / "out" / "pg")
        assert "permission denied" in _one_line(denied.value) and not hidden.found_in(str(denied.value))
        assert not (tmp_path / "out").exists()  # nor the folder made for it

        execute(pg_server, f"GRANT pg_read_all_data TO {role}")
        execute(owned, f"ALTER DATABASE {make_url(owned).database} OWNER TO {role}")
        pgdump.dump(as_role(source), SCHEMAS, tmp_path / "out" / "pg")
        pgdump.restore(tmp_path / "out" / "pg", as_role(owned))  # by the database's owner, not a superuser
        assert _tables(owned)[(ODD, "Kunde ü")] == _tables(source)[(ODD, "Kunde ü")]

        argv = log.read_text()
        assert f"--username={role}" in argv and "--single-transaction" in argv
        assert not hidden.found_in(argv)
        for tool in ("pg_dump", "pg_restore"):
            assert Path(f"{log}.{tool}.password").read_text() == PASSWORD

        with pytest.raises(TargetError) as unreachable:
            pgdump.restore(tmp_path / "out" / "pg", as_role(owned) + "_missing")
        assert "does not exist" in _one_line(unreachable.value) and not hidden.found_in(str(unreachable.value))
    finally:
        execute(pg_server, f'DROP DATABASE IF EXISTS "{make_url(owned).database}" WITH (FORCE)',
                f"DROP ROLE IF EXISTS {role}")


def test_missing_or_old_client_programs_are_one_clear_line(dumped: tuple[str, Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    source, folder = dumped
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError) as missing:
        pgdump.dump(source, SCHEMAS, tmp_path / "out")
    assert "pg_dump not found on PATH: install the PostgreSQL client programs" in _one_line(missing.value)
    old = tmp_path / "pg_restore"
    old.write_text('#!/bin/sh\necho "pg_restore (PostgreSQL) 9.6.24"\n')
    old.chmod(0o755)
    with pytest.raises(ConfigError) as too_old:
        pgdump.restore(folder, source)
    assert "pg_restore 9.6" in _one_line(too_old.value) and "is older than the PostgreSQL" in str(too_old.value)
    assert not (tmp_path / "out").exists()


def test_the_connection_arguments_carry_no_password() -> None:
    url = (f"postgresql+psycopg://app:{quote(PASSWORD, safe='')}@db.example:6432/qa?sslmode=verify-full"
           f"&host=/run/postgresql&password={quote(PASSWORD, safe='')}&application_name=export")
    login = pgdump.client_login(url)
    assert login.args[:3] == ("--host=db.example", "--port=6432", "--username=app")
    assert login.args[3] == ("--dbname=connect_timeout='10' application_name='export' dbname='qa' "
                             "sslmode='verify-full' host='/run/postgresql'")
    assert dict(login.variables) == {"PGPASSWORD": PASSWORD}
    assert PASSWORD not in repr(login)
    commands = (pgdump.dump_command("pg_dump", login, SCHEMAS, Path("out"), 2),
                pgdump.restore_command("pg_restore", login, Path("out"), Path("list")))
    assert not any(Secrets([PASSWORD]).found_in(arg) for command in commands for arg in command)
    assert '--schema="Odd.Sch""ema*?"' in commands[0]
    with pytest.raises(ConfigError, match="not a libpq connection parameter"):
        pgdump.client_login("postgresql://app@db/qa?sslmode%3D%27x%27+user=x")


def test_a_failure_message_is_redacted_before_it_is_cut() -> None:
    url = f"postgresql://app:{quote(PASSWORD, safe='')}@db/qa"
    noise = b"pg_restore: warning: " + b"x" * 2000 + b"\n"
    stderr = noise + f"pg_restore: error: FATAL: {quote(PASSWORD)} and {PASSWORD}\n".encode()
    message = pgdump.tool_failure("pg_restore into qa", 1, stderr, url)
    assert message.startswith("pg_restore into qa failed (exit code 1): ...")
    assert message.endswith("error: FATAL: *** and ***")
    assert len(message) < 700 and not Secrets([PASSWORD]).found_in(message)
