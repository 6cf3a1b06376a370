"""PostgreSQL directory-format dumps (``pg_dump -Fd``) of an environment's schemas, and their restore.

:func:`dump` writes the named schemas of a database into a new folder: ``pg_dump --format=directory``
with ``--no-owner --no-privileges`` (the files travel to other machines and roles) and without
tablespaces, security labels, publications and subscriptions. Each schema is passed as a quoted
``--schema`` pattern, so ``*``, ``?``, ``.``, quotes and upper case in its name match only itself;
``--strict-names`` makes a schema that is gone an error. The dump lands in a hidden folder next to
the destination and is renamed into place when ``pg_dump`` succeeded; a failure removes it. Only
the named schemas travel: a target's shadow and previous copies (``S__ds_shadow_*``,
``S__ds_prev``) are other schemas, and its refresh lock is an advisory lock, not an object. The
refresh log (``datastage_refresh_log`` in the default schema) does travel: it says which runs
built the copy (their rules digest, key id and redacted source), and an import keeps that history.

:func:`restore` loads such a folder into an existing database, all or nothing: ``pg_restore
--single-transaction --exit-on-error`` (so never ``--jobs``), refusing a database whose schemas
of the same names already hold tables. A schema that exists there and is empty (``public`` of a
new database) is filled rather than created again, and keeps its own comment; afterwards every
schema of the dump must exist.

Credentials: the client programs get host, port, user and database as ``--host``/``--port``/
``--username`` and a libpq connection string in ``--dbname`` (with the URL's query options, such
as ``sslmode`` or ``host=/run/postgresql``), never a password; the URL's password goes in
``PGPASSWORD`` in the child's environment only. Everything else the child inherits as datastage's
own psycopg connection does (``PGPASSFILE``/``~/.pgpass``, ``PGSERVICE``, ``PGSSLROOTCERT``...),
so the programs reach exactly the database datastage checked (the masking key's variable is
dropped, as for hooks). The programs' error output is redacted before it is cut to its tail.

Missing or too old client programs are a :class:`~datastage.errors.ConfigError` naming what to
install (as a missing database driver is).

Example (the arguments of a dump: no password anywhere, schemas quoted as literal patterns):
    >>> command = dump_command("pg_dump", client_login("postgresql://app:s3cret@db:5433/qa?sslmode=require"),
    ...                        ("public", 'Odd.Sch"ema*'), Path("/tmp/qa"), jobs=2)
    >>> [arg for arg in command if "s3cret" in arg]
    []
    >>> for arg in command:
    ...     if arg.startswith(("--schema", "--host", "--dbname")):
    ...         print(arg)
    --schema="public"
    --schema="Odd.Sch""ema*"
    --host=db
    --dbname=connect_timeout='10' application_name='datastage' dbname='qa' sslmode='require'
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import ConfigError, SafetyError, TargetError, UsageError
from datastage.ops.envops import password_variables
from datastage.ops.hooks import scrubbed_environment
from datastage.secrets import PASSWORD_KEYS, combined
from datastage.source.db import connect_args_for, db_error_message, dialect_of, make_engine, parse_url, redact_url

INSTALL_HINT = "install the PostgreSQL client programs (the postgresql-client package)"
MAX_JOBS = 4
ERROR_TAIL = 600  # characters of a client program's error output kept in the message
RELATION_KINDS = ("r", "p", "v", "m", "f", "S")  # tables, partitioned tables, views, foreign tables, sequences
DUMP_OPTIONS = ("--no-owner", "--no-privileges", "--no-tablespaces", "--no-security-labels",
                "--no-publications", "--no-subscriptions")
_QUERY_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOC_SCHEMA = re.compile(r"^(\d+); 2615 \d+ SCHEMA - (.*)$")  # 2615: pg_namespace
_SCRIPT_SCHEMA = re.compile(r'^-- TOC entry (\d+) \(class 2615 OID \d+\)$|^CREATE SCHEMA ("(?:[^"]|"")+"|[^\s";]+);$',
                            re.MULTILINE)


@dataclass(frozen=True)
class ClientLogin:
    """How a client program reaches a URL's database: arguments that hold no password, and the
    variables that hand it the password (``PGPASSWORD``), for the child's environment only."""

    args: tuple[str, ...]
    variables: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class SchemaEntry:
    """A schema of a dump: its TOC line, its TOC id, its name and the owner the TOC names."""

    line: str
    entry: int
    name: str
    owner: str


def conninfo(params: Mapping[str, str]) -> str:
    """A libpq connection string of ``params``, every value quoted.

    >>> print(conninfo({"dbname": "it's", "host": "/run/postgresql"}))
    dbname='it\\'s' host='/run/postgresql'
    """
    return " ".join(f"{key}='{value.replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}'"
                    for key, value in params.items())


def client_login(url: str) -> ClientLogin:
    """The connection arguments of ``pg_dump``/``pg_restore`` for ``url`` (a PostgreSQL URL)."""
    parsed = _postgres_url(url)
    args = [f"--host={parsed.host}"] if parsed.host else []
    if parsed.port:
        args.append(f"--port={parsed.port}")
    if parsed.username:
        args.append(f"--username={parsed.username}")
    params = {key: str(value) for key, value in connect_args_for(parsed).items()}
    if parsed.database:
        params["dbname"] = parsed.database
    for key, value in parsed.query.items():
        if key.lower() in PASSWORD_KEYS:
            continue  # the password goes in PGPASSWORD; sslpassword has no variable and is not passed
        if not _QUERY_KEY.fullmatch(key):
            raise ConfigError(f"URL option {key!r} of {redact_url(parsed)} is not a libpq connection parameter")
        params[key] = ",".join(value) if isinstance(value, tuple) else str(value)
    args.append(f"--dbname={conninfo(params)}")
    return ClientLogin(tuple(args), password_variables(url))


def child_environment(login: ClientLogin) -> dict[str, str]:
    """The environment of a client program: datastage's own (without the masking key), plus the password."""
    return scrubbed_environment(dict(login.variables), ())


def schema_pattern(name: str) -> str:
    """``name`` as a ``pg_dump --schema`` pattern that matches only that schema: inside double quotes
    pattern characters are literal, and a quote is doubled.

    >>> print(schema_pattern('Odd.Sch"ema*?'))
    "Odd.Sch""ema*?"
    """
    return '"' + name.replace('"', '""') + '"'


def dump_jobs(cpus: int | None = None) -> int:
    """Parallel ``pg_dump`` workers: one per CPU this process may use, at most :data:`MAX_JOBS`. Each is
    a server session running a COPY and compressing what it reads; more than the cores would only make
    them and a server on the same machine wait for each other.

    >>> dump_jobs(1), dump_jobs(2), dump_jobs(16)
    (1, 2, 4)
    """
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_JOBS, cpus))


def dump_command(binary: str, login: ClientLogin, schemas: Sequence[str], folder: Path, jobs: int) -> list[str]:
    """The ``pg_dump`` command line that writes ``schemas`` into the new directory ``folder``."""
    command = [binary, "--format=directory", f"--file={folder.absolute()}", *DUMP_OPTIONS, "--strict-names"]
    if jobs > 1:
        command.append(f"--jobs={jobs}")
    command += [f"--schema={schema_pattern(schema)}" for schema in schemas]
    return [*command, *login.args]


def restore_command(binary: str, login: ClientLogin, folder: Path, list_file: Path) -> list[str]:
    """The ``pg_restore`` command line that restores the entries of ``list_file``, in one transaction."""
    return [binary, "--single-transaction", "--exit-on-error", *DUMP_OPTIONS, f"--use-list={list_file.absolute()}",
            *login.args, str(folder.absolute())]


def major_version(text: str) -> tuple[int, ...] | None:
    """The major version a client program's ``--version`` prints (``(9, 6)`` before PostgreSQL 10).

    >>> major_version("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"), major_version("pg_restore 9.6.24")
    ((15,), (9, 6))
    >>> major_version("pg_dump (PostgreSQL) 17devel"), major_version("no version")
    ((17,), None)
    """
    match = re.search(r"\(PostgreSQL\)\s*(\d+)(?:\.(\d+))?", text) or re.search(r"(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    first = int(match.group(1))
    return (first,) if first >= 10 else (first, int(match.group(2) or 0))


def server_major(version_num: int) -> tuple[int, ...]:
    """The major version of ``SHOW server_version_num``.

    >>> server_major(150020), server_major(90624)
    ((15,), (9, 6))
    """
    return (version_num // 10000,) if version_num >= 100000 else (version_num // 10000, version_num // 100 % 100)


def _shown(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def find_tool(name: str, server: tuple[int, ...], login: ClientLogin) -> str:
    """The path of client program ``name`` on PATH, checked to be at least the server's major version.

    ``--version`` is asked with the connection arguments, so a version-choosing wrapper (Debian's
    ``pg_wrapper``) picks for the check the program it runs for the dump.
    """
    path = shutil.which(name)
    if path is None:
        raise ConfigError(f"{name} not found on PATH: {INSTALL_HINT}, version {_shown(server)} or newer")
    try:
        found = subprocess.run([path, "--version", *login.args], capture_output=True, text=True, timeout=60,
                               check=False, stdin=subprocess.DEVNULL)
        version = major_version(found.stdout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"{path} cannot be run ({type(exc).__name__}): {INSTALL_HINT}") from None
    if found.returncode != 0 or version is None:
        raise ConfigError(f"{path} --version printed no version: {INSTALL_HINT}")
    if version < server:
        raise ConfigError(f"{name} {_shown(version)} ({path}) is older than the PostgreSQL {_shown(server)} server "
                          f"it would talk to: {INSTALL_HINT}, version {_shown(server)} or newer, first on PATH")
    return path


def tool_failure(what: str, code: int, stderr: bytes, url: str) -> str:
    """One line for a client program that failed: the tail of its error output, redacted whole before it
    is cut (so a cut never leaves part of a secret), without the programs' own ``pg_dump:`` prefixes.

    >>> tool_failure("pg_dump of db", 1, b"pg_dump: error: connection failed: password=tops3cret\\n",
    ...              "postgresql://app:tops3cret@db/qa")
    'pg_dump of db failed (exit code 1): error: connection failed: password=***'
    """
    hidden = combined()
    hidden.add_url(url)
    text = hidden.redact(stderr.decode("utf-8", errors="replace"))
    text = " ".join(re.sub(r"(?m)^pg_(?:dump|restore): ", "", text).split())
    if len(text) > ERROR_TAIL:
        text = "..." + text[-ERROR_TAIL:]
    return f"{what} failed (exit code {code})" + (f": {text}" if text else "")


def _postgres_url(url: str) -> URL:
    parsed = parse_url(url)
    if dialect_of(parsed) != "postgresql":
        raise UsageError(f"pg_dump and pg_restore work on PostgreSQL databases, not {redact_url(parsed)}")
    return parsed


@contextlib.contextmanager
def _session(url: str) -> Iterator[Connection]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise TargetError(f"cannot read {redact_url(url)}: {db_error_message(exc)}") from None
    finally:
        engine.dispose()


def _server_version(conn: Connection) -> tuple[int, ...]:
    return server_major(int(conn.exec_driver_sql("SHOW server_version_num").scalar_one()))


def _run(command: Sequence[str], env: Mapping[str, str]) -> tuple[int, bytes, bytes]:
    """(exit code, output, error output) of a client program in its own process group; when datastage
    is interrupted the group (``pg_dump``'s parallel workers too) is killed before the error goes on."""
    process = subprocess.Popen(command, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = process.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return process.returncode, out, err


def dump(url: str, schemas: tuple[str, ...], folder: Path) -> None:
    """pg_dump -Fd of those schemas of the PostgreSQL database at url into folder (which must not exist yet)."""
    folder = Path(folder)
    names = tuple(dict.fromkeys(schemas))
    if not names:
        raise UsageError("a pg_dump export needs at least one schema")
    if folder.exists() or folder.is_symlink():
        raise UsageError(f"{folder} already exists: an export writes a new folder")
    login = client_login(url)
    with _session(url) as conn:
        server = _server_version(conn)
        found = set(conn.execute(sa.text("SELECT nspname FROM pg_namespace WHERE nspname = ANY(:names)"),
                                 {"names": list(names)}).scalars())
    missing = [name for name in names if name not in found]
    if missing:
        raise ConfigError(f"schema {missing[0]!r} not found in {redact_url(url)}")
    binary = find_tool("pg_dump", server, login)
    created = [parent for parent in folder.absolute().parents if not parent.exists()]
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f".{folder.name}.partial-{secrets.token_hex(4)}")
    try:
        code, _, err = _run(dump_command(binary, login, names, partial, dump_jobs()), child_environment(login))
        if code != 0:
            raise TargetError(tool_failure(f"pg_dump of {redact_url(url)}", code, err, url))
        if folder.exists():
            raise UsageError(f"{folder} appeared while the dump ran: an export writes a new folder")
        os.rename(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        for parent in created:  # deepest first: the folders made for this dump go with it
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
    _sync_directory(folder.parent)


def _sync_directory(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def schema_names(script: str) -> dict[int, str]:
    """The schema each SCHEMA entry of a ``pg_restore --verbose`` script creates, by TOC entry. The
    script quotes names as SQL does, so this is exact where the TOC listing's text is not (it does not
    quote, and a name may hold spaces).

    >>> schema_names('--\\n-- TOC entry 6 (class 2615 OID 1)\\n-- Name: x\\n--\\nCREATE SCHEMA "Odd.Sch""ema";\\n'
    ...              '-- TOC entry 4 (class 2615 OID 2)\\nCREATE SCHEMA public;\\n')
    {6: 'Odd.Sch"ema', 4: 'public'}
    """
    names: dict[int, str] = {}
    entry: int | None = None
    for match in _SCRIPT_SCHEMA.finditer(script):
        if match.group(1) is not None:
            entry = int(match.group(1))
        elif entry is not None:
            name = match.group(2)
            names[entry] = name[1:-1].replace('""', '"') if name.startswith('"') else name
            entry = None
    return names


def _listing(binary: str, folder: Path, env: Mapping[str, str]) -> list[str]:
    code, out, err = _run([binary, "--list", str(folder.absolute())], env)
    if code != 0:
        raise UsageError(tool_failure(f"reading the pg_dump folder {folder}", code, err, ""))
    return out.decode("utf-8", errors="surrogateescape").splitlines()


def _schema_entries(binary: str, folder: Path, listing: list[str], env: Mapping[str, str]) -> list[SchemaEntry]:
    found = [(line, match) for line in listing if (match := _TOC_SCHEMA.match(line))]
    if not found:
        return []
    with tempfile.TemporaryDirectory(prefix="datastage-restore-") as tmp:
        list_file = Path(tmp) / "schemas.list"
        list_file.write_bytes("".join(line + "\n" for line, _ in found).encode("utf-8", errors="surrogateescape"))
        code, out, err = _run([binary, "--verbose", f"--use-list={list_file}", "--file=-",
                               str(folder.absolute())], env)
    if code != 0:
        raise UsageError(tool_failure(f"reading the pg_dump folder {folder}", code, err, ""))
    names = schema_names(out.decode("utf-8", errors="surrogateescape"))
    entries = []
    for line, match in found:
        entry, tail = int(match.group(1)), match.group(2)
        name = names.get(entry, tail.rsplit(" ", 1)[0])  # an entry that creates nothing: the listing's text
        shown = _listed(name) + " "
        entries.append(SchemaEntry(line, entry, name, tail[len(shown):] if tail.startswith(shown)
                                   else tail.rsplit(" ", 1)[-1]))
    return entries


def _listed(text: str) -> str:
    """``text`` as a TOC listing shows it: on one line."""
    return text.replace("\n", " ").replace("\r", " ")


def _relations(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    """The relations (tables, views, sequences...) in each of ``names`` that exists in the database."""
    result = conn.execute(sa.text(
        "SELECT n.nspname, count(c.oid) FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid "
        "AND c.relkind = ANY(:kinds) WHERE n.nspname = ANY(:names) GROUP BY n.nspname"),
        {"kinds": list(RELATION_KINDS), "names": list(names)})
    return {str(name): int(count) for name, count in result}


def _without_existing(listing: list[str], existing: list[SchemaEntry]) -> list[str]:
    """The TOC listing without the creation (and comment, label, grants) of schemas that already exist:
    the database keeps its own. Those entries name the schema as SQL does (quoted where it must be)."""
    skipped = {entry.entry for entry in existing}
    named = [re.escape(_listed(form)) + " " + re.escape(entry.owner) for entry in existing
             for form in (entry.name, schema_pattern(entry.name))]
    about = re.compile(r"^\d+; 0 0 (?:COMMENT|SECURITY LABEL|ACL) - SCHEMA (?:" + "|".join(named) + ")$")
    kept = []
    for line in listing:
        match = re.match(r"(\d+);", line)
        if (match and int(match.group(1)) in skipped) or (existing and about.match(line)):
            continue
        kept.append(line)
    return kept


def restore(folder: Path, into_url: str) -> None:
    """pg_restore of folder into the PostgreSQL database at into_url, all or nothing."""
    folder = Path(folder)
    if not (folder / "toc.dat").is_file():
        raise UsageError(f"{folder} is not a pg_dump directory (it has no toc.dat)")
    login = client_login(into_url)
    with _session(into_url) as conn:
        server = _server_version(conn)
    binary = find_tool("pg_restore", server, login)
    env = child_environment(login)
    listing = _listing(binary, folder, env)
    entries = _schema_entries(binary, folder, listing, env)
    if not entries:
        raise UsageError(f"the pg_dump folder {folder} holds no schema")
    names = [entry.name for entry in entries]
    with _session(into_url) as conn:
        present = _relations(conn, names)
    busy = [(name, present[name]) for name in names if present.get(name)]
    if busy:
        shown = ", ".join(f"{count} in schema {name!r}" for name, count in busy[:3])
        raise SafetyError(f"{redact_url(into_url)} already holds tables, views or sequences ({shown}"
                          f"{', ...' if len(busy) > 3 else ''}): import into an empty database")
    kept = _without_existing(listing, [entry for entry in entries if entry.name in present])
    with tempfile.TemporaryDirectory(prefix="datastage-restore-") as tmp:
        list_file = Path(tmp) / "restore.list"
        list_file.write_bytes("".join(line + "\n" for line in kept).encode("utf-8", errors="surrogateescape"))
        code, _, err = _run(restore_command(binary, login, folder, list_file), env)
    if code != 0:
        raise TargetError(tool_failure(f"pg_restore of {folder} into {redact_url(into_url)}", code, err, into_url)
                          + "; the database was left unchanged")
    with _session(into_url) as conn:
        restored = _relations(conn, names)
    missing = [name for name in names if name not in restored]
    if missing:
        raise TargetError(f"pg_restore of {folder} into {redact_url(into_url)} finished without schema "
                          f"{missing[0]!r}")
