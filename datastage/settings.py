"""datastage.yaml: the source, the environments, their subsets and hooks.

Example ``datastage.yaml``::

    source: {url: "${PROD_DATABASE_URL}"}
    masking: {key_file: masking.key}
    signing: {key_file: signing.key}     # Ed25519 key that signs reports
    environments:
      staging:
        url: "sqlite:///staging.db"
        rules: rules/pii.yaml
        subset:
          roots: [{table: customer, where: "active = 1", percent: 10}]
          passthrough: [country]
          exclude: [audit_log]
        keep: [app_settings]

Paths and SQLite URLs are relative to the folder of ``datastage.yaml``:

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "datastage.yaml").write_text('source: {url: "sqlite:///prod.db"}\\n'
    ...     'masking: {key_file: masking.key}\\n'
    ...     'environments: {staging: {url: "sqlite:///staging.db", rules: rules/pii.yaml}}\\n')
    >>> staging = load_project(folder / "datastage.yaml").environment("staging")
    >>> staging.rules.relative_to(folder), staging.url == f"sqlite:///{folder}/staging.db"
    (PosixPath('rules/pii.yaml'), True)

A webhook may sign its payloads (Standard Webhooks): ``notify: {url: ..., secret: "${WEBHOOK_SECRET}"}``,
the secret a ``whsec_``-prefixed base64 string of 24 to 64 bytes (:func:`webhook_secret_bytes`).

Tuning knobs that live in the process environment rather than in the file
(``$DATASTAGE_CHECK_WORKERS``, ``$DATASTAGE_CONNECT_TIMEOUT``) are read and checked by
:func:`tuning_from_env`; the modules that use them ask it, never ``os.environ``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from croniter import croniter

from datastage.errors import ConfigError
from datastage.secrets import KNOWN, Secrets
from datastage.yamlfile import Node, did_you_mean, interpolate, load_yaml

DEFAULT_CONFIG = "datastage.yaml"
CONFIG_ENV_VAR = "DATASTAGE_CONFIG"
KEY_ENV_VAR = "DATASTAGE_MASKING_KEY"
SIGNING_KEY_ENV_VAR = "DATASTAGE_SIGNING_KEY_FILE"
CHECK_WORKERS_ENV = "DATASTAGE_CHECK_WORKERS"
CONNECT_TIMEOUT_ENV = "DATASTAGE_CONNECT_TIMEOUT"
CHUNK_ROWS_ENV = "DATASTAGE_CHUNK_ROWS"
DEFAULT_CONNECT_TIMEOUT = 10

ChildrenPolicy = Literal["none", "roots", "all"]
CHILDREN_POLICIES: tuple[str, ...] = ("none", "roots", "all")
ShadowMode = Literal["schema", "database"]
SHADOW_MODES: tuple[str, ...] = ("schema", "database")
DEFAULT_BATCH_SIZE = 10_000  # rows read, masked and written at a time, unless an environment sets batch_size
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not one
WEBHOOK_SECRET_BYTES = (24, 64)  # the sizes Standard Webhooks allows


@dataclass(frozen=True)
class Origin:
    """Where a setting was written, so later checks can point at it."""

    file: str
    line: int | None
    path: str

    @classmethod
    def of(cls, node: Node) -> Origin:
        return cls(node.file, node.line, node.path)

    def error(self, message: str, error_class: type[ConfigError] = ConfigError) -> ConfigError:
        return error_class(message, file=self.file, line=self.line, key=self.path or None)


@dataclass(frozen=True)
class RootSpec:
    """A subset root: rows of ``table`` matching ``where``, sampled by ``percent`` or ``limit``."""

    table: str
    where: str | None = None
    percent: float | None = None
    limit: int | None = None
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True)
class EdgeSpec:
    """Per-foreign-key override of how children are followed.

    ``fk`` names the foreign key as ``child_table(col, ...)``, ``child_table.col`` or by
    its constraint name.
    """

    fk: str
    children: ChildrenPolicy | None = None
    limit_per_parent: int | None = None
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True)
class VirtualForeignKey:
    """A relationship the database does not declare: ``table(columns) -> references(ref_columns)``."""

    table: str
    columns: tuple[str, ...]
    references: str
    ref_columns: tuple[str, ...]
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True)
class SubsetSpec:
    """The ``subset:`` block of an environment. No roots means every table is copied whole."""

    roots: tuple[RootSpec, ...] = ()
    passthrough: tuple[str, ...] = ()
    exclude: dict[str, Literal["empty", "omit"]] = field(default_factory=dict)
    children: ChildrenPolicy = "roots"
    limit_per_parent: int | None = None
    edges: tuple[EdgeSpec, ...] = ()
    seed: int = 0
    max_rows: int | None = None
    budgets: dict[str, int] = field(default_factory=dict)
    virtual_foreign_keys: tuple[VirtualForeignKey, ...] = ()
    virtual_primary_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict, compare=False)

    @property
    def is_full_copy(self) -> bool:
        return not self.roots


@dataclass(frozen=True)
class HookSpec:
    """One hook: a SQL statement or a shell command, with a timeout."""

    sql: str | None = None
    run: str | None = None
    timeout: float = 300.0
    warn_only: bool = False
    origin: Origin | None = field(default=None, compare=False)


HOOK_POINTS = ("pre_refresh", "post_load", "post_refresh", "on_failure")
ONDEMAND_HOOK_POINTS = ("post_provision", "pre_teardown")
ON_TEST_FAILURE = ("teardown", "keep")
PRIVILEGES = ("read", "write")
ONDEMAND_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")  # an on-demand environment's name (a database name)
NAME_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_TTL = re.compile(r"^(\d+)([mhdw])$")
_TTL_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_ttl(text: str) -> dt.timedelta:
    """``30m``, ``8h``, ``2d``, ``1w`` as a duration (ValueError when it is not one).

    >>> parse_ttl("8h")
    datetime.timedelta(seconds=28800)
    """
    match = _TTL.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"must be a number and a unit (m, h, d, w), such as 8h; got '{text}'")
    return dt.timedelta(**{_TTL_UNITS[match.group(2)]: int(match.group(1))})


def pattern_fields(pattern: str) -> tuple[str, ...]:
    """The ``{placeholders}`` of an on-demand name pattern, in order.

    >>> pattern_fields("pr_{id}_{owner}")
    ('id', 'owner')
    """
    return tuple(NAME_PLACEHOLDER.findall(pattern))


@dataclass(frozen=True)
class AccessGrant:
    """``role`` gets ``read`` (SELECT) or ``write`` (SELECT, INSERT, UPDATE, DELETE) on the refreshed tables."""

    role: str
    privileges: str = "read"
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ExecutorSetting:
    """Where a refresh's chunks run: ``local`` worker processes, or the Dask scheduler at ``dask``.

    ``workers`` is the number of local worker processes (None: one per core, half the cores when a
    server of the run is local) or, on Dask, the number of chunks in flight at once (None: the
    cluster's worker threads).

    >>> ExecutorSetting(), ExecutorSetting(kind="dask", address="tcp://scheduler:8786", workers=4).label
    (ExecutorSetting(kind='local', address=None, workers=None), 'dask tcp://scheduler:8786')
    """

    kind: Literal["local", "dask"] = "local"
    address: str | None = None  # the Dask scheduler (tcp://host:8786)
    workers: int | None = None

    @property
    def label(self) -> str:
        return f"dask {self.address}" if self.kind == "dask" else "local"


@dataclass(frozen=True)
class OnDemandTemplate:
    """How on-demand copies of ``source_environment`` are made: ``ondemand:`` of an environment (the
    template is named after it) or one of the top-level ``ondemand:`` templates (with ``from: ENV``).

    ``pattern`` names the copies (``pr_{id}``: ``--var id=1234`` gives ``pr_1234``; None: the name is
    given). ``ttl`` is the default time to live, ``max_ttl`` the longest allowed, ``max_copies`` how
    many copies of the template may exist at once. ``access``, ``hooks`` (``post_provision``,
    ``pre_teardown``) and ``notify`` apply to every copy; ``on_test_failure`` says what a failing
    ``post_provision`` hook does to the copy: ``teardown`` (drop it) or ``keep`` (keep it, marked failed).

    >>> OnDemandTemplate("staging", "staging", pattern="pr_{id}").fields
    ('id',)
    """

    name: str
    source_environment: str
    pattern: str | None = None
    ttl: dt.timedelta | None = None
    max_ttl: dt.timedelta | None = None
    max_copies: int | None = None
    on_test_failure: Literal["teardown", "keep"] = "teardown"
    access: tuple[AccessGrant, ...] = ()
    hooks: dict[str, tuple[HookSpec, ...]] = field(default_factory=dict)
    notify: str | None = None
    notify_secret: str | None = None
    origin: Origin | None = field(default=None, compare=False)

    @property
    def fields(self) -> tuple[str, ...]:
        return pattern_fields(self.pattern) if self.pattern else ()


@dataclass(frozen=True)
class Environment:
    """One target environment (staging, test, uat ...)."""

    name: str
    url: str
    rules: Path | None
    subset: SubsetSpec
    keep: tuple[str, ...] = ()
    protected: bool = False
    hooks: dict[str, tuple[HookSpec, ...]] = field(default_factory=dict)
    rollback_on_failure: bool = False
    schedule: dict[str, Any] | None = None
    access: tuple[AccessGrant, ...] = ()
    notify: str | None = None
    notify_secret: str | None = None  # ``whsec_...``: the webhook's payloads are signed (Standard Webhooks)
    batch_size: int = DEFAULT_BATCH_SIZE
    shadow_mode: ShadowMode = "schema"  # "database": PostgreSQL copies go into a shadow database
    executor: ExecutorSetting = field(default_factory=ExecutorSetting)
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Project:
    """A loaded datastage.yaml: the first argument of every library call."""

    path: Path
    source_url: str
    environments: dict[str, Environment]
    key_file: Path | None = None
    state_dir: Path = Path(".datastage")
    source_schemas: tuple[str, ...] = ()
    signing_key_file: Path | None = None  # the Ed25519 key that signs reports (``signing.key_file``)
    schemas_origin: Origin | None = field(default=None, compare=False)  # where ``source.schemas`` is written
    templates: dict[str, OnDemandTemplate] = field(default_factory=dict)  # on-demand templates by name

    def __post_init__(self) -> None:
        KNOWN.update(self.secrets())  # from now on, no output of this process shows them

    @property
    def root(self) -> Path:
        return self.path.parent

    def secrets(self) -> Secrets:
        """Every password of the project's URLs: the source's, each environment's and each webhook's."""
        found = self.source_secrets()
        for env in self.environments.values():
            found.add_url(env.url)
            found.add_url(env.notify)
            found.add(env.notify)  # a webhook's path often is its token
            if env.notify_secret:
                found.add(env.notify_secret)
                found.add_key(webhook_secret_bytes(env.notify_secret))  # its bytes as hex and base64 too
        for template in self.templates.values():
            found.add_url(template.notify)
            found.add(template.notify)
            if template.notify_secret:
                found.add(template.notify_secret)
                found.add_key(webhook_secret_bytes(template.notify_secret))
        return found

    def source_secrets(self) -> Secrets:
        """The source's credentials: its URL's passwords (userinfo, query, libpq ``password=``)."""
        found = Secrets()
        found.add_url(self.source_url)
        return found

    @property
    def only_environment(self) -> str | None:
        """The name of the project's environment when it configures exactly one, else None."""
        return next(iter(self.environments)) if len(self.environments) == 1 else None

    def environment(self, name: str) -> Environment:
        """The named environment, or a usage error listing the known ones."""
        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(
                f"unknown environment '{name}'{did_you_mean(name, list(self.environments))}; "
                f"known: {known}",
                file=str(self.path),
                key="environments",
            )
        return self.environments[name]

    def template(self, name: str) -> OnDemandTemplate | None:
        """The on-demand template called ``name`` (an environment's own is named after it), or None."""
        return self.templates.get(name)


@dataclass(frozen=True)
class Tuning:
    """Tuning knobs set in the process environment rather than in datastage.yaml."""

    check_workers: int | None = None  # $DATASTAGE_CHECK_WORKERS: leak-check workers; None: the CPUs, at most 4
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT  # $DATASTAGE_CONNECT_TIMEOUT: seconds to reach a server
    chunk_rows: int | None = None  # $DATASTAGE_CHUNK_ROWS: rows per chunk of a parallel copy; None: about 16 MB


def tuning_from_env(environ: Mapping[str, str] | None = None) -> Tuning:
    """The tuning knobs of ``environ`` (default: the process environment); unset or empty means the default.

    >>> tuning_from_env({"DATASTAGE_CHECK_WORKERS": "2"})
    Tuning(check_workers=2, connect_timeout=10, chunk_rows=None)
    >>> tuning_from_env({"DATASTAGE_CONNECT_TIMEOUT": "soon"})
    Traceback (most recent call last):
    datastage.errors.ConfigError: $DATASTAGE_CONNECT_TIMEOUT must be a whole number of seconds, at least 1 (got 'soon')
    """
    env = os.environ if environ is None else environ
    workers = _whole_number(env, CHECK_WORKERS_ENV, "worker processes", 0)
    timeout = _whole_number(env, CONNECT_TIMEOUT_ENV, "seconds", 1)
    chunk_rows = _whole_number(env, CHUNK_ROWS_ENV, "rows", 1)
    return Tuning(check_workers=None if workers is None else max(1, workers),  # 0 means 1, as it always has
                  connect_timeout=DEFAULT_CONNECT_TIMEOUT if timeout is None else timeout, chunk_rows=chunk_rows)


def _whole_number(environ: Mapping[str, str], name: str, unit: str, minimum: int) -> int | None:
    """``$name`` as a whole number of at least ``minimum``, or ``None`` when it is unset or empty."""
    text = environ.get(name, "").strip()
    if not text:
        return None
    if not re.fullmatch(r"[0-9]{1,9}", text) or int(text) < minimum:
        least = f", at least {minimum}" if minimum else ""
        raise ConfigError(f"${name} must be a whole number of {unit}{least} (got {text[:40]!r})")
    return int(text)


def config_path(config: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: the argument, ``$DATASTAGE_CONFIG``, or ``./datastage.yaml``."""
    if config is not None:
        return Path(config)
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG)


def load_project(config: str | os.PathLike[str] | None = None) -> Project:
    """Read and validate datastage.yaml; errors name the file, line and key."""
    tuning_from_env()  # a bad tuning variable stops every command here, not half-way through a refresh
    path = config_path(config).absolute()
    root = load_yaml(path)
    root.check_keys({"source", "environments", "masking", "signing", "state_dir", "version", "ondemand"})
    if "version" in root and root["version"].value != 1:
        raise root["version"].error("unsupported config version (expected 1)")

    source_node = root["source"]
    schemas_origin = None
    if isinstance(source_node.value, str):
        source_url = _url(source_node, path.parent)
        schemas: tuple[str, ...] = ()
    else:
        source_node.check_keys({"url", "schemas"})
        source_url = _url(source_node["url"], path.parent)
        schemas = _source_schemas(source_node["schemas"], source_url) if "schemas" in source_node else ()
        schemas_origin = Origin.of(source_node["schemas"]) if "schemas" in source_node else None

    key_file = None
    masking = root.get("masking")
    if masking is not None:
        masking.check_keys({"key_file"})
        if "key_file" in masking:
            key_file = _resolve(path.parent, interpolate(masking["key_file"]))

    signing_key_file = None
    signing = root.get("signing")
    if signing is not None:
        signing.check_keys({"key_file"})
        if "key_file" in signing:
            signing_key_file = _resolve(path.parent, interpolate(signing["key_file"]))

    state_dir = path.parent / ".datastage"
    if "state_dir" in root:
        state_dir = _resolve(path.parent, interpolate(root["state_dir"]))

    envs_node = root["environments"]
    envs_node.expect_map()
    if not envs_node.value:
        raise envs_node.error("at least one environment is required")
    environments = {name: _environment(name, node, path.parent) for name, node in envs_node.items()}
    templates = _templates(root, envs_node, environments)
    return Project(path, source_url, environments, key_file, state_dir, schemas, signing_key_file, schemas_origin,
                   templates)


def _source_schemas(node: Node, source_url: str) -> tuple[str, ...]:
    """``source.schemas`` as the source's dialect understands it: PostgreSQL schemas, MariaDB/MySQL
    databases of the source server; a SQLite file has one schema, ``main``, so nothing else is taken."""
    names = tuple(n.text() for n in node.as_list())
    if source_url.split("://", 1)[0].split("+", 1)[0] == "sqlite":
        others = [n for n in names if n != "main"]
        if others:
            raise node.error(f"a SQLite source has one schema, main, so '{others[0]}' cannot be read; remove "
                             "schemas: (schemas are PostgreSQL schemas, or MariaDB/MySQL databases)")
    return names


ENV_KEYS = {
    "url", "rules", "subset", "keep", "protected", "hooks", "rollback_on_failure",
    "schedule", "access", "notify", "shadow", "batch_size", "executor", "workers", "ondemand",
}
TEMPLATE_KEYS = {"name", "ttl", "max_ttl", "max_copies", "on_test_failure", "access", "hooks", "notify"}


def _templates(root: Node, envs_node: Node, environments: dict[str, Environment]) -> dict[str, OnDemandTemplate]:
    """Every on-demand template: each environment's ``ondemand:`` and the top-level named ones."""
    templates: dict[str, OnDemandTemplate] = {}
    for name, node in envs_node.items():
        if node.get("ondemand") is not None:
            templates[name] = _template(name, name, node["ondemand"])
    named = root.get("ondemand")
    if named is not None:
        named.expect_map()
        for name, node in named.items():
            node.expect_map()
            if name in environments:
                raise node.error(f"template '{name}' has the name of an environment; an environment's own "
                                 "template is its ondemand: block")
            if not ONDEMAND_NAME.match(str(name)):
                raise node.error(f"'{name}' is not a valid template name: lower-case letters, digits and _")
            node.check_keys(TEMPLATE_KEYS | {"from"})
            if node.get("from") is None:
                raise node.error("a template needs 'from:' the environment whose copies it makes")
            source = node["from"].text()
            if source not in environments:
                raise node["from"].error(f"unknown environment '{source}'{did_you_mean(source, list(environments))}")
            templates[name] = _template(name, source, node, extra={"from"})
    return templates


def _template(name: str, source: str, node: Node, extra: set[str] | frozenset[str] = frozenset()) -> OnDemandTemplate:
    node.expect_map()
    node.check_keys(TEMPLATE_KEYS | extra)
    pattern = node["name"].text() if node.get("name") is not None else None
    if pattern is not None:
        example = NAME_PLACEHOLDER.sub("x", pattern)
        if "{" in example or "}" in example or not ONDEMAND_NAME.match(example):
            raise node["name"].error("must be a name pattern such as pr_{id}: lower-case letters, digits, _ and "
                                     "{placeholders}, starting with a letter, at most 48 characters")
    ttl = _ttl(node["ttl"]) if node.get("ttl") is not None else None
    max_ttl = _ttl(node["max_ttl"]) if node.get("max_ttl") is not None else None
    if ttl is not None and max_ttl is not None and ttl > max_ttl:
        raise node["ttl"].error("is longer than max_ttl")
    on_failure = node["on_test_failure"].text() if node.get("on_test_failure") is not None else "teardown"
    if on_failure not in ON_TEST_FAILURE:
        raise node["on_test_failure"].error(f"must be teardown or keep{did_you_mean(on_failure, ON_TEST_FAILURE)}")
    return OnDemandTemplate(
        name=name,
        source_environment=source,
        pattern=pattern,
        ttl=ttl,
        max_ttl=max_ttl,
        max_copies=node["max_copies"].integer(minimum=1) if node.get("max_copies") is not None else None,
        on_test_failure=on_failure,  # type: ignore[arg-type]
        access=tuple(_access(n) for n in node["access"].as_list()) if node.get("access") else (),
        hooks=_hooks(node["hooks"], ONDEMAND_HOOK_POINTS) if node.get("hooks") else {},
        notify=_webhook(node["notify"]) if node.get("notify") else None,
        notify_secret=_webhook_secret(node["notify"]) if node.get("notify") else None,
        origin=Origin.of(node),
    )


def _ttl(node: Node) -> dt.timedelta:
    try:
        return parse_ttl(str(node.value))
    except ValueError as exc:
        raise node.error(str(exc)) from None


def _environment(name: str, node: Node, base: Path) -> Environment:
    node.check_keys(ENV_KEYS)
    rules = _resolve(base, interpolate(node["rules"])) if node.get("rules") else None
    subset = parse_subset(node["subset"]) if node.get("subset") else SubsetSpec()
    keep = tuple(n.text() for n in node["keep"].as_list()) if node.get("keep") else ()
    hooks = _hooks(node["hooks"]) if node.get("hooks") else {}
    schedule = node["schedule"].value if node.get("schedule") else None
    if isinstance(schedule, str):
        schedule = {"cron": schedule}
    elif schedule is not None and not isinstance(schedule, dict):
        raise node["schedule"].error("expected a cron expression or {cron: ..., timezone: ...}")
    if schedule is not None:
        _check_cron(node["schedule"])
    return Environment(
        name=name,
        url=_url(node["url"], base),
        rules=rules,
        subset=subset,
        keep=keep,
        protected=_flag(node, "protected"),
        hooks=hooks,
        rollback_on_failure=_flag(node, "rollback_on_failure"),
        schedule=schedule,
        access=tuple(_access(n) for n in node["access"].as_list()) if node.get("access") else (),
        notify=_webhook(node["notify"]) if node.get("notify") else None,
        notify_secret=_webhook_secret(node["notify"]) if node.get("notify") else None,
        batch_size=node["batch_size"].integer(minimum=1) if node.get("batch_size") else DEFAULT_BATCH_SIZE,
        shadow_mode=_shadow_mode(node["shadow"]) if node.get("shadow") else "schema",
        executor=_executor(node),
        origin=Origin.of(node),
    )


def _executor(node: Node) -> ExecutorSetting:
    """``executor: local`` (the default) or ``executor: {dask: tcp://host:8786}``, and ``workers: N``."""
    workers = node["workers"].integer(minimum=1) if node.get("workers") else None
    if not node.get("executor"):
        return ExecutorSetting(workers=workers)
    setting = node["executor"]
    if isinstance(setting.value, str):
        if setting.text() != "local":
            raise setting.error("must be 'local' or {dask: <scheduler address>}")
        return ExecutorSetting(workers=workers)
    setting.check_keys({"dask"})
    if not setting.get("dask"):
        raise setting.error("must be 'local' or {dask: <scheduler address>}")
    address = interpolate(setting["dask"])
    if not re.fullmatch(r"(tcp|tls|inproc|ucx)://[^\s]+", address):
        raise setting["dask"].error("must be a Dask scheduler address such as tcp://scheduler:8786")
    return ExecutorSetting(kind="dask", address=address, workers=workers)


def _shadow_mode(node: Node) -> ShadowMode:
    value = node.text()
    if value not in SHADOW_MODES:
        raise node.error("must be 'schema' or 'database'")
    return value  # type: ignore[return-value]


def valid_cron(cron: object, error: Callable[[str], ConfigError]) -> str:
    """``cron`` if it is a cron expression a schedule can use, else ``error(message)`` is raised.

    >>> valid_cron("0 3 * * *", ConfigError)
    '0 3 * * *'
    >>> valid_cron("61 3 * * *", ConfigError)
    Traceback (most recent call last):
    datastage.errors.ConfigError: not a valid cron expression: '61 3 * * *' (five fields, e.g. "0 3 * * *")
    """
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise error(f"not a valid cron expression: {cron!r} (five fields, e.g. \"0 3 * * *\")")
    return cron


def _check_cron(node: Node) -> None:
    """A schedule's cron expression (``schedule: "0 3 * * *"`` or its ``cron:`` key) must be valid;
    a mapping without ``cron:`` or with other keys is reported by the scheduler, as before."""
    if not isinstance(node.value, str) and "cron" not in node:
        return
    cron = node if isinstance(node.value, str) else node["cron"]
    valid_cron(cron.value, cron.error)


def parse_subset(node: Node) -> SubsetSpec:
    """Parse the ``subset:`` block of an environment."""
    node.check_keys({
        "roots", "passthrough", "exclude", "children", "limit_per_parent", "edges", "seed",
        "max_rows", "budgets", "virtual_foreign_keys", "virtual_primary_keys",
    })
    origins = {key: Origin.of(child) for key, child in node.items()}
    roots = tuple(_root(n) for n in node["roots"].as_list()) if node.get("roots") else ()
    passthrough = tuple(n.text() for n in node["passthrough"].as_list()) if node.get("passthrough") else ()
    exclude: dict[str, Literal["empty", "omit"]] = {}
    for item in node["exclude"].as_list() if node.get("exclude") else []:
        if isinstance(item.value, str):
            exclude[item.text()] = "empty"
        else:
            item.check_keys({"table", "mode"})
            mode = item["mode"].text() if "mode" in item else "empty"
            if mode not in ("empty", "omit"):
                raise item["mode"].error("must be 'empty' or 'omit'")
            exclude[item["table"].text()] = "omit" if mode == "omit" else "empty"
        origins[f"exclude:{list(exclude)[-1]}"] = Origin.of(item)
    children = _children(node["children"]) if node.get("children") else "roots"
    return SubsetSpec(
        roots=roots,
        passthrough=passthrough,
        exclude=exclude,
        children=children,
        limit_per_parent=node["limit_per_parent"].integer(minimum=1) if node.get("limit_per_parent") else None,
        edges=tuple(_edge(n) for n in node["edges"].as_list()) if node.get("edges") else (),
        seed=node["seed"].integer() if node.get("seed") is not None else 0,
        max_rows=node["max_rows"].integer(minimum=1) if node.get("max_rows") else None,
        budgets={k: v.integer(minimum=0) for k, v in node["budgets"].items()} if node.get("budgets") else {},
        virtual_foreign_keys=tuple(_virtual_fk(n) for n in node["virtual_foreign_keys"].as_list())
        if node.get("virtual_foreign_keys") else (),
        virtual_primary_keys={k: _columns(v) for k, v in node["virtual_primary_keys"].items()}
        if node.get("virtual_primary_keys") else {},
        origins=origins,
    )


def _root(node: Node) -> RootSpec:
    if isinstance(node.value, str):
        return RootSpec(table=node.text(), origin=Origin.of(node))
    node.check_keys({"table", "where", "percent", "limit"})
    percent = node["percent"].number(0, 100) if node.get("percent") is not None else None
    limit = node["limit"].integer(minimum=0) if node.get("limit") is not None else None
    return RootSpec(
        table=node["table"].text(),
        where=node["where"].text() if node.get("where") else None,
        percent=percent,
        limit=limit,
        origin=Origin.of(node),
    )


def _children(node: Node) -> ChildrenPolicy:
    value = node.text()
    if value not in CHILDREN_POLICIES:
        raise node.error(f"must be one of none, roots, all{did_you_mean(value, CHILDREN_POLICIES)}")
    return value  # type: ignore[return-value]


def _edge(node: Node) -> EdgeSpec:
    node.check_keys({"fk", "children", "limit_per_parent"})
    return EdgeSpec(
        fk=node["fk"].text(),
        children=_children(node["children"]) if node.get("children") else None,
        limit_per_parent=node["limit_per_parent"].integer(minimum=1) if node.get("limit_per_parent") else None,
        origin=Origin.of(node),
    )


def _columns(node: Node) -> tuple[str, ...]:
    return tuple(n.text() for n in node.as_list())


def _virtual_fk(node: Node) -> VirtualForeignKey:
    node.check_keys({"table", "columns", "references", "ref_columns"})
    columns = _columns(node["columns"])
    ref_columns = _columns(node["ref_columns"]) if node.get("ref_columns") else ()  # () = the parent's key
    if ref_columns and len(columns) != len(ref_columns):
        raise node.error("columns and ref_columns must have the same length")
    return VirtualForeignKey(
        table=node["table"].text(),
        columns=columns,
        references=node["references"].text(),
        ref_columns=ref_columns,
        origin=Origin.of(node),
    )


def _access(node: Node) -> AccessGrant:
    if isinstance(node.value, str):
        return AccessGrant(role=node.text(), origin=Origin.of(node))
    node.check_keys({"role", "privileges"})
    privileges = node["privileges"].text() if node.get("privileges") else "read"
    if privileges not in PRIVILEGES:
        raise node["privileges"].error(f"must be read or write{did_you_mean(privileges, PRIVILEGES)}")
    return AccessGrant(role=node["role"].text(), privileges=privileges, origin=Origin.of(node))


def _hooks(node: Node, points: tuple[str, ...] = HOOK_POINTS) -> dict[str, tuple[HookSpec, ...]]:
    node.check_keys(set(points), what="hook point")
    hooks: dict[str, tuple[HookSpec, ...]] = {}
    for point, items in node.items():
        specs = []
        for item in items.as_list():
            item.check_keys({"sql", "run", "timeout", "warn_only"})
            if ("sql" in item) == ("run" in item):
                raise item.error("a hook needs exactly one of 'sql' or 'run'")
            specs.append(HookSpec(
                sql=item["sql"].text() if "sql" in item else None,
                run=item["run"].text() if "run" in item else None,
                timeout=item["timeout"].number(0.001, 86400) if item.get("timeout") is not None else 300.0,
                warn_only=item["warn_only"].flag() if item.get("warn_only") is not None else False,
                origin=Origin.of(item),
            ))
        hooks[point] = tuple(specs)
    return hooks


def _webhook(node: Node) -> str:
    """The URL of ``notify: URL`` or ``notify: {url: URL, secret: ...}``."""
    if not isinstance(node.value, str):
        node.check_keys({"url", "secret"})
        node = node["url"]
    url = interpolate(node)
    if not url.startswith(("http://", "https://")):
        raise node.error("expected an http:// or https:// webhook URL")
    return url


def _webhook_secret(node: Node) -> str | None:
    """The ``secret:`` of ``notify: {url: ..., secret: ...}``, checked (never shown in an error)."""
    if isinstance(node.value, str) or node.get("secret") is None:
        return None
    secret = interpolate(node["secret"]).strip()
    KNOWN.add(secret)  # before any check: an error about it never shows it
    try:
        webhook_secret_bytes(secret)
    except ValueError as exc:
        raise node["secret"].error(str(exc)) from None
    return secret


def webhook_secret_bytes(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after ``whsec_``, 24 to 64 bytes.

    >>> len(webhook_secret_bytes("whsec_" + base64.b64encode(bytes(32)).decode()))
    32
    >>> webhook_secret_bytes("s3cret-token")
    Traceback (most recent call last):
    ValueError: expected a webhook secret of the form whsec_ followed by base64 of 24 to 64 bytes
    """
    problem = ValueError(f"expected a webhook secret of the form {WEBHOOK_SECRET_PREFIX} followed by base64 of "
                         f"{WEBHOOK_SECRET_BYTES[0]} to {WEBHOOK_SECRET_BYTES[1]} bytes")
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise problem
    try:
        raw = base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise problem from None
    if not WEBHOOK_SECRET_BYTES[0] <= len(raw) <= WEBHOOK_SECRET_BYTES[1]:
        raise problem
    return raw


def _flag(node: Node, key: str, default: bool = False) -> bool:
    child = node.get(key)
    return child.flag() if child is not None else default


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _url(node: Node, base: Path) -> str:
    """Interpolate a URL and make relative SQLite paths relative to the config file."""
    url = interpolate(node)
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            rest = url[len(prefix):]
            if rest and not rest.startswith("/") and not rest.startswith(":memory:"):
                return prefix + str(base / rest)
    if "://" not in url:
        raise node.error("expected a database URL such as postgresql://user@host/db or sqlite:///file.db")
    return url
