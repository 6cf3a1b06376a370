"""Shared fixtures: demo projects, throwaway server databases, the sample datasets.

Server-backed tests read ``DATASTAGE_TEST_PG_URL`` / ``DATASTAGE_TEST_MYSQL_URL``. Outside
CI a missing or unreachable server skips them with the reason; with ``CI=true`` it fails
them, so CI can never pass without talking to the real servers.
"""

from __future__ import annotations

import compileall
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from datastage.demo import build_demo
from datastage.secrets import KEYS, KNOWN

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_KEY = "test-masking-key-0123456789abcdef"


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile the package once, in the main process, before any worker or ``python -m datastage``
    subprocess starts: with ``PYTHONDONTWRITEBYTECODE`` set (as on CI machines) each of those processes
    would otherwise compile every module it imports again."""
    if not hasattr(config, "workerinput"):
        compileall.compile_dir(ROOT / "datastage", quiet=2)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: server-backed tests must run)")
    pytest.skip(reason)


def datasets_dir() -> Path:
    """The shared sample datasets: ``$DATASTAGE_DATASETS``, else ``../shared/datasets`` next to the
    checkout (or next to one of its parent folders, for checkouts in a subfolder)."""
    if os.environ.get("DATASTAGE_DATASETS"):
        return Path(os.environ["DATASTAGE_DATASETS"])
    for folder in ROOT.parents:
        if (folder / "shared" / "datasets").is_dir():
            return folder / "shared" / "datasets"
    return ROOT.parent / "shared" / "datasets"


@pytest.fixture
def datasets() -> Path:
    path = datasets_dir()
    if not (path / "pagila").is_dir():
        _unavailable(f"sample datasets not found at {path} (set DATASTAGE_DATASETS)")
    return path


@pytest.fixture(autouse=True)
def _process_secrets() -> Iterator[None]:
    """Secrets a test registers (its projects' passwords, its keys) are forgotten after it, as they would
    be with the process that held them: one test's password must not hide another test's output."""
    saved = KNOWN.snapshot(), KEYS.snapshot()
    yield
    KNOWN.restore(saved[0])
    KEYS.restore(saved[1])


@pytest.fixture(autouse=True)
def _masking_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASTAGE_MASKING_KEY", TEST_KEY)
    monkeypatch.delenv("DATASTAGE_CONFIG", raising=False)
    monkeypatch.delenv("DATASTAGE_SIGNING_KEY_FILE", raising=False)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated demo project per session; tests copy it."""
    directory = tmp_path_factory.mktemp("demo-template")
    build_demo(directory)
    return directory


@pytest.fixture
def demo_project(demo_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the demo project; returns its datastage.yaml."""
    target = tmp_path / "demo"
    target.mkdir()
    for item in demo_template.iterdir():
        if item.is_file():
            shutil.copy(item, target / item.name)  # with its mode: the key file stays 0600
    (target / "rules").mkdir()
    for rule in (demo_template / "rules").iterdir():
        (target / "rules" / rule.name).write_bytes(rule.read_bytes())
    return target / "datastage.yaml"


def _server_url(var: str, label: str) -> str:
    url = os.environ.get(var)
    if not url:
        _unavailable(f"{var} is not set; no {label} server to test against")
    assert url is not None
    engine = sa.create_engine(_driver(url), poolclass=sa.pool.NullPool,
                              connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.SQLAlchemyError as exc:
        _unavailable(f"{label} at {make_url(_driver(url)).render_as_string(hide_password=True)} is unreachable: "
                     f"{str(exc.orig if hasattr(exc, 'orig') else exc).splitlines()[0]}")
    finally:
        engine.dispose()
    return _driver(url)


def _driver(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("mysql://") or url.startswith("mariadb://"):
        return "mysql+pymysql://" + url.split("://", 1)[1]
    return url


@pytest.fixture(scope="session")
def pg_server() -> str:
    return _server_url("DATASTAGE_TEST_PG_URL", "PostgreSQL")


@pytest.fixture(scope="session")
def mysql_server() -> str:
    return _server_url("DATASTAGE_TEST_MYSQL_URL", "MariaDB/MySQL")


class ServerDatabases:
    """Creates uniquely named databases on one server and drops them at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []
        self.engine = sa.create_engine(admin_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
        self.dialect = self.engine.dialect.name

    def create(self, prefix: str = "ds_test") -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            else:
                conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        self.created.append(name)
        return self.url(name)

    def url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop the databases created here and the copies a refresh made beside them (``NAME__ds_*``)."""
        with self.engine.connect() as conn:
            for name in self.created:
                pattern = name.replace("_", "\\_") + "\\_\\_ds\\_%"
                if self.dialect == "postgresql":
                    beside = [r[0] for r in conn.exec_driver_sql(
                        "SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,)).all()]
                    for database in [name, *beside]:
                        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                else:
                    beside = [r[0] for r in conn.exec_driver_sql(
                        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                        (pattern,)).all()]
                    for database in [name, *beside]:
                        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{database}`")
        self.engine.dispose()


@pytest.fixture
def pg_databases(pg_server: str) -> Iterator[ServerDatabases]:
    dbs = ServerDatabases(pg_server)
    try:
        yield dbs
    finally:
        dbs.drop_all()


@pytest.fixture
def mysql_databases(mysql_server: str) -> Iterator[ServerDatabases]:
    dbs = ServerDatabases(mysql_server)
    try:
        yield dbs
    finally:
        dbs.drop_all()


_PAGILA_TEMPLATES: dict[str, str] = {}  # server (admin URL) -> this process's loaded Pagila database


def load_pagila(datasets: Path, url: str) -> None:
    """Load Pagila into the (empty, existing) PostgreSQL database at ``url``: loaded with psql once per
    test process into a template database, then copied (``CREATE DATABASE ... TEMPLATE``, a fraction
    of a second instead of seconds of psql)."""
    parsed = make_url(url)
    server = os.environ.get("DATASTAGE_TEST_PG_URL")
    admin = ServerDatabases(_driver(server) if server else
                            parsed.set(database="postgres").render_as_string(hide_password=False))
    template = _PAGILA_TEMPLATES.get(admin.admin_url)
    if template is None:
        template = make_url(admin.create("ds_tpl_pagila")).database
        _psql_pagila(datasets, admin.url(str(template)))
        _PAGILA_TEMPLATES[admin.admin_url] = str(template)
    with admin.engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE "{parsed.database}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{parsed.database}" TEMPLATE "{template}"')
    admin.engine.dispose()


def _psql_pagila(datasets: Path, url: str) -> None:
    parsed = make_url(url)
    psql_url = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    for name in ("pagila-schema.sql", "pagila-data.sql"):
        text = (datasets / "pagila" / name).read_text(encoding="utf-8")
        text = re.sub(r"(?m)^ALTER [A-Z ]+ .* OWNER TO [^;]+;$", "", text)
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", psql_url, "-o", "/dev/null"],
                       input=text, text=True, check=True, capture_output=True)
    subprocess.run(["psql", "-X", "-q", "-d", psql_url, "-c", "ANALYZE"], check=True, capture_output=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop this process's Pagila templates."""
    for admin_url, template in _PAGILA_TEMPLATES.items():
        engine = sa.create_engine(admin_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        finally:
            engine.dispose()
    _PAGILA_TEMPLATES.clear()


def load_sakila(datasets: Path, url: str) -> None:
    """Load Sakila (MySQL flavour) into the (empty, existing) MariaDB database at ``url``."""
    parsed = make_url(url)
    name = parsed.database
    args = ["mysql", "-h", parsed.host or "127.0.0.1", "-P", str(parsed.port or 3306), "-u", parsed.username or "root"]
    if parsed.password:
        args.append(f"-p{parsed.password}")
    for file in ("sakila-mv-schema.sql", "sakila-mv-data.sql"):
        text = (datasets / "sakila-mysql" / file).read_text(encoding="utf-8", errors="replace")
        text = re.sub(r"(?im)^\s*(DROP SCHEMA IF EXISTS|CREATE SCHEMA)\s+sakila\s*;", "", text)
        text = re.sub(r"(?im)^\s*USE\s+sakila\s*;", f"USE `{name}`;", text)
        text = re.sub(r"\bsakila\.", "", text)  # views name the schema explicitly
        subprocess.run([*args, name or ""], input=text, text=True, check=True, capture_output=True)
