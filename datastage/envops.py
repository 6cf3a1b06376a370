"""What happens around a refresh in an environment: hooks, access grants, notifications.

A refresh calls :class:`RefreshOps` at fixed points: ``pre_refresh`` hooks once it holds
the lock; ``post_load`` hooks and the ``access:`` grants against the shadow, before the
checks that decide the swap; ``post_refresh`` hooks after the swap (rolling back when
``rollback_on_failure: true`` and a hook fails); ``on_failure`` hooks and the ``notify:``
webhook at the end. Every outcome is kept for the report.

Example:
    >>> ops = RefreshOps(project, env, run_id="r1")          # doctest: +SKIP
    >>> ops.run("pre_refresh", sql=None)                     # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from datastage.config import Environment, Project
from datastage.db import db_error_message, make_engine, parse_url, sqlite_path
from datastage.hooks import HookFailed, HookResult, run_hooks, sql_runner_for
from datastage.notify import NotifyResult, send, summary_payload

log = logging.getLogger("datastage.refresh")
ConnectionFactory = Callable[[], AbstractContextManager[Connection]]


def plain_url(url: str) -> str:
    """A URL as shell tools take it: ``postgresql://`` / ``mysql://`` without the Python driver name."""
    parsed = parse_url(url)
    driver = parsed.drivername.split("+", 1)[0]
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def source_secrets(project: Project) -> list[str]:
    """Strings that would hand the source's credentials to a hook: its URL and password."""
    secrets = [project.source_url]
    try:
        password = make_url(project.source_url).password
    except Exception:  # noqa: BLE001 - an unparsable URL has no password to hide
        password = None
    if password:
        secrets.append(str(password))
    return secrets


class RefreshOps:
    """Hooks, grants and the webhook of one refresh; collects what happened."""

    def __init__(self, project: Project, env: Environment, run_id: str) -> None:
        self.project = project
        self.env = env
        self.run_id = run_id
        self.hooks: list[HookResult] = []
        self.access: list[dict[str, str]] = []
        self.rolled_back = False
        self.notification: NotifyResult | None = None
        self.secrets = source_secrets(project)
        password = parse_url(env.url).password
        self.redact = [str(password)] if password else []  # hooks may use it; their recorded output may not

    def environment_variables(self, **extra: str) -> dict[str, str]:
        """What every shell hook receives (the environment's own URL; never the source's)."""
        variables = {"DATASTAGE_ENVIRONMENT": self.env.name, "DATASTAGE_RUN_ID": self.run_id,
                     "DATASTAGE_TARGET_URL": plain_url(self.env.url),
                     "DATASTAGE_CONFIG": str(self.project.path)}
        variables.update(extra)
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
        """Run the hooks of ``point``; raises :class:`~datastage.hooks.HookFailed` on a hard failure."""
        specs = self.env.hooks.get(point, ())
        if not specs:
            return []
        needs_sql = any(spec.sql for spec in specs)
        results: list[HookResult] = []
        env_vars = self.environment_variables(**variables)

        def run(runner: Any = None) -> list[HookResult]:
            return run_hooks(point, specs, env_vars=env_vars, cwd=self.project.root, sql_runner=runner,
                             secrets=self.secrets, redact=self.redact, raise_on_failure=raise_on_failure)

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

    def grant(self, shadow: Any) -> None:
        """Apply ``access:`` to the shadow (before the swap, so the new copy goes live with its grants)."""
        if self.env.access:
            shadow.grant(list(self.env.access))
            self.access = [{"role": g.role, "privileges": g.privileges} for g in self.env.access]

    def notify(self, result: dict[str, Any]) -> None:
        """POST the refresh summary to the environment's webhook (if any); failures are only recorded."""
        if not self.env.notify:
            return
        self.notification = send(self.env.notify, summary_payload(result))
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
