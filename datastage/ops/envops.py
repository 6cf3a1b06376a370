"""What happens around a refresh in an environment: hooks, access grants, notifications.

A refresh calls :class:`RefreshOps` at fixed points (it implements
:class:`datastage.pipeline.RefreshOperations`; :mod:`datastage.api` hands it to the pipeline):
``pre_refresh`` hooks once it holds the lock; ``post_load`` hooks and the ``access:`` grants
against the shadow, before the checks that decide the swap; ``post_refresh`` hooks after the
swap (rolling back when ``rollback_on_failure: true`` and a hook fails); ``on_failure`` hooks
and the ``notify:`` webhook at the end. Every outcome is kept for the report.

Shell hooks connect with the environment's credentials only: ``DATASTAGE_TARGET_URL`` and
``DATASTAGE_SHADOW_URL`` carry user, host, port and database (and query settings such as the
shadow's ``options``) but never a password; the password is in the client's own variable,
``PGPASSWORD`` (PostgreSQL) or ``MYSQL_PWD`` (MariaDB/MySQL). Nothing of the source reaches
them: a variable carrying its URL or password (in any encoding) is removed, and so are the
inherited ``PGPASSWORD``/``PGPASSFILE`` (PostgreSQL source) or ``MYSQL_PWD``/``MYSQL_TEST_LOGIN_FILE``
(MySQL source) the source may log in with. An environment whose password is the source's
gives its hooks no password at all.

Example (a hook sees the target's URL without its password, and the password in ``PGPASSWORD``):
    >>> from pathlib import Path
    >>> from datastage.settings import Environment, HookSpec, Project, SubsetSpec
    >>> hook = HookSpec(run='echo "$DATASTAGE_TARGET_URL, password ${PGPASSWORD:+set}"')
    >>> qa = Environment("qa", "postgresql://app:qa-example-pw@db/qa", None, SubsetSpec(),
    ...                  hooks={"pre_refresh": (hook,)})
    >>> project = Project(Path("datastage.yaml"), "postgresql://reader:prod-example-pw@prod/app", {"qa": qa})
    >>> [(result.status, result.output) for result in RefreshOps(project, qa, "r1").run("pre_refresh", sql=None)]
    [('ok', 'postgresql://app@db/qa, password set\\n')]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from datastage.errors import HookFailed
from datastage.ops.hooks import HookResult, run_hooks, sql_runner_for
from datastage.ops.notify import NotifyResult, send, summary_payload
from datastage.secrets import Secrets, get_logger
from datastage.settings import Environment, Project
from datastage.source.db import (
    db_error_message,
    dialect_of,
    make_engine,
    parse_url,
    sqlite_path,
    url_password,
    url_without_password,
)
from datastage.targets.base import Shadow

log = get_logger("datastage.refresh")
ConnectionFactory = Callable[[], AbstractContextManager[Connection]]


PASSWORD_VARIABLES = {"postgresql": "PGPASSWORD", "mysql": "MYSQL_PWD"}
CREDENTIAL_VARIABLES = {"postgresql": ("PGPASSWORD", "PGPASSFILE"), "mysql": ("MYSQL_PWD", "MYSQL_TEST_LOGIN_FILE")}


def plain_url(url: str) -> str:
    """A URL as shell tools take it: ``postgresql://`` / ``mysql://`` without the Python driver name,
    and without any password (hooks get it in :func:`password_variables`)."""
    parsed = parse_url(url)
    return url_without_password(parsed, drivername=parsed.drivername.split("+", 1)[0])


def password_variables(url: str) -> dict[str, str]:
    """The client variable that hands ``url``'s password to a hook: ``PGPASSWORD`` or ``MYSQL_PWD``."""
    parsed = parse_url(url)
    password = url_password(parsed)
    variable = PASSWORD_VARIABLES.get(dialect_of(parsed))
    return {variable: password} if variable and password else {}


def source_secrets(project: Project) -> Secrets:
    """What would hand the source's credentials to a hook: its URL and its passwords."""
    secrets = project.source_secrets()
    secrets.add(project.source_url)
    return secrets


def source_credential_variables(project: Project) -> tuple[str, ...]:
    """Inherited variables the source's client may log in with, which hooks must not inherit."""
    try:
        return CREDENTIAL_VARIABLES.get(dialect_of(parse_url(project.source_url)), ())
    except Exception:  # noqa: BLE001 - an unusable source URL has no client variables
        return ()


class RefreshOps:
    """Hooks, grants and the webhook of one run in an environment; collects what happened.

    A refresh uses the environment's own ``hooks:``, ``access:`` and ``notify:``; an on-demand copy is
    an :class:`Environment` holding its template's (:mod:`datastage.ops.ondemand`), with ``variables``
    (such as ``DATASTAGE_TEMPLATE``) added to every shell hook's environment.
    """

    def __init__(self, project: Project, env: Environment, run_id: str,
                 variables: dict[str, str] | None = None) -> None:
        self.project = project
        self.env = env
        self.run_id = run_id
        self.variables = dict(variables or {})
        self.hooks: list[HookResult] = []
        self.access: list[dict[str, str]] = []
        self.rolled_back = False
        self.notification: NotifyResult | None = None
        self.secrets = source_secrets(project)
        self.drop = source_credential_variables(project)
        self.redact = Secrets()  # the environment's passwords: hooks get them, their recorded output may not
        self.redact.add_url(env.url)

    @property
    def post_load_changes_rows(self) -> bool:
        """Whether the environment has ``post_load`` hooks (which may change the loaded copy)."""
        return bool(self.env.hooks.get("post_load"))

    def environment_variables(self, **extra: str) -> dict[str, str]:
        """What every shell hook receives: the environment's URLs without password, the password in the
        client's variable; never anything of the source."""
        variables = {"DATASTAGE_ENVIRONMENT": self.env.name, "DATASTAGE_RUN_ID": self.run_id,
                     "DATASTAGE_TARGET_URL": plain_url(self.env.url),
                     "DATASTAGE_CONFIG": str(self.project.path), **self.variables}
        for name, password in password_variables(self.env.url).items():
            if self.secrets.found_in(password):  # the same password as the source's: hooks never get it
                log.warning("hooks get no password: the environment's is the source's",
                            extra={"environment": self.env.name, "run_id": self.run_id})
                continue
            variables[name] = password
        for name, value in extra.items():
            variables[name] = plain_url(value) if name.endswith("_URL") and "://" in value else value
        return variables

    def target_connection(self) -> ConnectionFactory | None:
        """Connections to the environment's current copy for SQL hooks (None if it has no copy yet)."""
        path = sqlite_path(self.env.url) if parse_url(self.env.url).get_backend_name() == "sqlite" else None
        if path is not None and not path.is_file():
            return None

        def connect() -> AbstractContextManager[Connection]:
            return _connected(self.env.url)

        return connect

    def run(self, point: str, sql: ConnectionFactory | None, raise_on_failure: bool = True,
            **variables: str) -> list[HookResult]:
        """Run the hooks of ``point``; raises :class:`~datastage.errors.HookFailed` on a hard failure."""
        specs = self.env.hooks.get(point, ())
        if not specs:
            return []
        needs_sql = any(spec.sql for spec in specs)
        results: list[HookResult] = []
        env_vars = self.environment_variables(**variables)

        def run(runner: Any = None) -> list[HookResult]:
            return run_hooks(point, specs, env_vars=env_vars, cwd=self.project.root, sql_runner=runner,
                             secrets=self.secrets, redact=self.redact, drop=self.drop,
                             raise_on_failure=raise_on_failure)

        try:
            if needs_sql and sql is not None:
                with sql() as conn:
                    results = run(sql_runner_for(conn))
            else:
                results = run()
        except HookFailed as exc:
            results = exc.results
            raise
        except SQLAlchemyError as exc:
            raise HookFailed(f"{point} hooks cannot reach the database: {db_error_message(exc)}",
                             step=f"hook {point}") from None
        finally:
            self.hooks.extend(results)
            for result in results:
                log.info("hook finished", extra={"environment": self.env.name, "run_id": self.run_id,
                                                 **result.to_dict()})
        return results

    def run_recorded(self, point: str, sql: ConnectionFactory | None, **variables: str) -> None:
        """Run hooks whose failure must not hide another outcome (``on_failure``): record, never raise."""
        try:
            self.run(point, sql, raise_on_failure=False, **variables)
        except Exception as exc:  # noqa: BLE001 - the refresh's own outcome must survive its on_failure hooks
            log.error("hook point failed", extra={"point": point, "error": str(exc)})

    def pre_refresh(self) -> None:
        """``pre_refresh`` hooks, against the current copy (once the refresh holds the lock)."""
        self.run("pre_refresh", self.target_connection())

    def post_load(self, shadow: Shadow) -> None:
        """``post_load`` hooks, against the loaded shadow (before the checks that decide the swap)."""
        self.run("post_load", shadow.hook_connection, DATASTAGE_SHADOW_URL=shadow.hook_url() or "")

    def post_refresh(self) -> None:
        """``post_refresh`` hooks, against the new copy (after the swap)."""
        self.run("post_refresh", self.target_connection())

    def on_failure(self, verdict: str, error: str) -> None:
        """``on_failure`` hooks (``DATASTAGE_VERDICT``, ``DATASTAGE_ERROR``): recorded, never raised."""
        self.run_recorded("on_failure", self.target_connection(), DATASTAGE_VERDICT=verdict, DATASTAGE_ERROR=error)

    def grant(self, shadow: Shadow) -> None:
        """Apply ``access:`` to the shadow (before the swap, so the new copy goes live with its grants)."""
        if self.env.access:
            shadow.grant(list(self.env.access))
            self.access = [{"role": g.role, "privileges": g.privileges} for g in self.env.access]

    def notify(self, result: dict[str, Any], kind: str = "refresh") -> None:
        """POST the run's summary to the environment's webhook (if any); failures are only recorded."""
        if not self.env.notify:
            return
        self.notification = send(self.env.notify, summary_payload(result, kind), secret=self.env.notify_secret)
        level = logging.INFO if self.notification.ok else logging.WARNING
        log.log(level, "notification sent", extra={"environment": self.env.name, "run_id": self.run_id,
                                                   **self.notification.to_dict()})

    def to_report(self) -> dict[str, Any]:
        return {"hooks": [h.to_dict() for h in self.hooks], "access": list(self.access),
                "rolled_back": self.rolled_back}


@contextmanager
def _connected(url: str) -> Iterator[Connection]:
    """A read-write connection to ``url``, closed (and its engine disposed) on exit."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()
