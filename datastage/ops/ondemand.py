"""On-demand environments: copies of an environment's latest verified copy, with an expiry.

``provision NAME --from ENV`` creates a new database next to ENV's (same server, database
``NAME``; for SQLite the file ``NAME.db`` beside ENV's) and copies ENV's current copy into
it through the same shadow, verify and swap steps as a refresh — the data is already
masked and verified, so nothing is masked again. The copy is registered in
``.datastage/provisioned.json`` with its expiry; ``teardown`` drops it, ``gc`` drops the
expired ones. Registry entries never hold a password.

``--from`` may name an on-demand template (an environment's ``ondemand:`` block, or a named
one): it names the copy (:mod:`datastage.ops.templates`), bounds its TTL and caps how many
copies exist; its ``access:`` is granted on the copy before it goes live, its ``post_provision``
hooks test the copy (a failure drops it or keeps it marked ``failed``), its ``pre_teardown`` hooks
run before ``teardown`` and ``gc`` drop it, and its ``notify:`` webhook hears of every provision.
History, a signed provision report and the webhook record each outcome
(:mod:`datastage.ops.provrecord`).

Example (a one-table project in a temporary folder: refresh staging, then copy it to ``pr_1234``):
    >>> import sqlite3, tempfile
    >>> from pathlib import Path
    >>> import datastage
    >>> from datastage.mask.keys import write_key_file
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = sqlite3.connect(folder / "prod.db").executescript("CREATE TABLE t (id INTEGER PRIMARY KEY);"
    ...                                                        "INSERT INTO t VALUES (1), (2);")
    >>> _ = write_key_file(folder / "masking.key")
    >>> _ = (folder / "rules.yaml").write_text("version: 1\\n")
    >>> config = folder / "datastage.yaml"
    >>> _ = config.write_text("source: {url: sqlite:///prod.db}\\nmasking: {key_file: masking.key}\\n"
    ...                       "environments: {staging: {url: sqlite:///staging.db, rules: rules.yaml}}\\n")
    >>> project = datastage.load_project(config)
    >>> datastage.refresh("staging", config=project).verdict
    'pass'
    >>> copy = provision(project, "pr_1234", "staging", ttl=dt.timedelta(hours=8))
    >>> copy.rows, Path(copy.database).name, sorted(load_registry(project)), teardown(project, "pr_1234").name
    (2, 'pr_1234.db', ['pr_1234'], 'pr_1234')
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import replace
from typing import Any

from datastage._version import __version__
from datastage.errors import (
    ConfigError,
    DatastageError,
    HookFailed,
    SafetyError,
    TargetError,
    UsageError,
    VerificationFailed,
    exit_code_for,
)
from datastage.mask.keys import MaskingKey, optional_key
from datastage.mask.policy import policy_from_text
from datastage.mask.resolve import resolve_policy
from datastage.ops.databases import create_database, database_size, derived_url, drop_database
from datastage.ops.envops import RefreshOps
from datastage.ops.provrecord import Copied, ProvisionOutcome, record_provision, write_provision_report
from datastage.ops.registry import Provisioned, load_registry, locked_registry, registry_path
from datastage.ops.templates import check_cap, copy_name, copy_ttl, owner_name
from datastage.pipeline import entered, load_into_shadow, step, verify_shadow
from datastage.plan import PlanResult
from datastage.progress import NoProgress, Progress
from datastage.report.history import append_history, read_history
from datastage.report.signing import project_signing_key
from datastage.results import current_user, new_run_id, utc_now
from datastage.settings import ONDEMAND_NAME, Environment, OnDemandTemplate, Project, SubsetSpec
from datastage.settings import parse_ttl as ttl_of
from datastage.source.db import dialect_of, make_engine, parse_url, redact_url, snapshot
from datastage.source.identity import check_not_source
from datastage.source.schema import reflect
from datastage.subset.planner import plan_subset
from datastage.targets.registry import open_target
from datastage.yamlfile import did_you_mean

NAME_PATTERN = ONDEMAND_NAME


def parse_ttl(text: str) -> dt.timedelta:
    """``30m``, ``8h``, ``2d``, ``1w`` as a duration.

    >>> parse_ttl("8h")
    datetime.timedelta(seconds=28800)
    """
    try:
        return ttl_of(text)
    except ValueError as exc:
        raise UsageError(f"--ttl {exc}") from None


def _check_name(project: Project, name: str, registry: dict[str, Provisioned]) -> None:
    if not NAME_PATTERN.match(name):
        raise UsageError(f"'{name}' is not a valid name: lower-case letters, digits and _, starting with a letter")
    if name in project.environments:
        raise UsageError(f"'{name}' is a configured environment; choose another name")
    if name in registry:
        raise UsageError(f"'{name}' already exists (from {registry[name].source_environment}); tear it down first")


def _latest_refresh(env: Environment) -> dict[str, Any] | None:
    """The refresh log row of ``env``'s current copy ({} when it has no log; None when there is no copy)."""
    target = open_target(env.url, env.name, env.shadow_mode)
    if not target.exists():
        return None
    log = target.refresh_log()
    return dict(log[-1]) if log else {}


def _worse(*verdicts: str | None) -> str:
    """The worst of ``verdicts`` (pass < warn < fail)."""
    order = ("pass", "warn", "fail")
    return max((v for v in verdicts if v in order), key=order.index, default="pass")


def source_of(project: Project, from_: str) -> tuple[OnDemandTemplate | None, Environment]:
    """The template and environment ``--from`` names: a template (an environment's own ``ondemand:`` is
    named after it), or an environment without one (a copy without template)."""
    template = project.template(from_)
    if template is not None:
        return template, project.environment(template.source_environment)
    if from_ not in project.environments and project.templates:
        known = sorted({*project.environments, *project.templates})
        raise UsageError(f"--from: no environment or template called '{from_}'{did_you_mean(from_, known)}")
    return None, project.environment(from_)


def template_key(template: OnDemandTemplate) -> str:
    """Where a template is written in datastage.yaml (its key path)."""
    if template.name == template.source_environment:
        return f"environments.{template.name}.ondemand"
    return f"ondemand.{template.name}"


def copy_operations(project: Project, copy_env: Environment, template: OnDemandTemplate | None,
                    run_id: str) -> RefreshOps:
    """Hooks, grants and webhook of an on-demand copy: its template's, run against the copy."""
    if template is None:
        return RefreshOps(project, copy_env, run_id)
    variables = {"DATASTAGE_SOURCE_ENVIRONMENT": template.source_environment, "DATASTAGE_TEMPLATE": template.name}
    env = replace(copy_env, hooks=template.hooks, access=template.access, notify=template.notify,
                  notify_secret=template.notify_secret)
    return RefreshOps(project, env, run_id, variables)


def provision(project: Project, name: str | None, from_: str, *, ttl: dt.timedelta | None = None,
              variables: Mapping[str, str] | None = None, owner: str | None = None,
              progress: Progress | None = None) -> Provisioned:
    """Copy the current (verified) copy of ``from_`` (a template or an environment) into a new database:
    copy, the template's grants, its ``post_provision`` tests; recorded in history, report and webhook.

    ``name`` (or the template's pattern filled from ``variables``), ``ttl`` (or the template's) and
    ``max_copies`` are checked first; the registry entry is reserved under a lock (state
    ``provisioning``) so concurrent provisions cannot exceed the cap, and removed if anything fails.
    A failing ``post_provision`` test raises :class:`HookFailed` after the copy was dropped
    (``on_test_failure: teardown``) or kept in state ``failed`` (``keep``).
    """
    progress = progress or NoProgress()
    owner = owner_name(owner) if owner is not None else None
    template, env = source_of(project, from_)
    name = copy_name(template, name, variables or {})
    life = copy_ttl(template, ttl)
    key = f"environments.{env.name}.url"
    # ENV is read (and locked) as the copy's source: it must not be the unmasked source itself.
    check_not_source(project.source_url, project.source_schemas, env.url, what=f"environment '{env.name}'",
                     file=str(project.path), key=key, verb="copy")
    if not NAME_PATTERN.match(name):
        raise UsageError(f"'{name}' is not a valid name: lower-case letters, digits and _, starting with a letter")
    url = derived_url(env.url, name)
    check_not_source(project.source_url, project.source_schemas, url,
                     what=f"on-demand environment '{name}' next to '{env.name}'", file=str(project.path), key=key)
    if template is not None and template.access and dialect_of(parse_url(url)) == "sqlite":
        raise ConfigError("SQLite has no roles to grant access to; remove access: from the template",
                          file=str(project.path), key=f"{template_key(template)}.access")
    signer = project_signing_key(project)
    latest = _latest_refresh(env)
    if latest is None:
        raise UsageError(f"environment '{env.name}' has no copy yet; refresh it first")
    verdict = str(latest.get("verdict") or "unknown")
    source_run_id = str(latest["run_id"]) if latest.get("run_id") else None
    if verdict not in ("pass", "warn"):
        raise UsageError(f"the current copy of '{env.name}' is not a verified copy (last verdict: {verdict})")
    run_id = new_run_id()
    started, started_at = time.monotonic(), utc_now()
    expires = dt.datetime.now(dt.UTC) + life if life else None
    entry = Provisioned(
        name=name, source_environment=env.name, dialect=dialect_of(parse_url(url)),
        database=parse_url(url).database or name, created_at=started_at,
        expires_at=expires.isoformat(timespec="seconds").replace("+00:00", "Z") if expires else None,
        created_by=current_user(), run_id=run_id, source_verdict=verdict, source_run_id=source_run_id,
        template=template.name if template else None, owner=owner or current_user(), state="provisioning")
    with locked_registry(project) as registry:  # the cap is checked and a place reserved in one step
        _check_name(project, name, registry)
        check_cap(template, registry.values())
        registry[name] = entry
    # The new database is empty: the copy goes into a shadow schema there, whatever ENV's shadow is.
    copy_env = replace(env, name=name, url=url, keep=(), hooks={}, access=(), notify=None, notify_secret=None,
                       subset=SubsetSpec(), shadow_mode="schema")
    ops = copy_operations(project, copy_env, template, run_id)
    dropped = f"the copy failed and was dropped; {name} does not exist"
    outcome = ProvisionOutcome(
        run_id=run_id, name=name, started_at=started_at, seconds=0.0, source_environment=env.name,
        source_url=redact_url(env.url), target_url=redact_url(url), template=entry.template,
        owner=entry.owner or "", source_run_id=source_run_id, source_verdict=verdict, expires_at=entry.expires_at,
        verdict="error", exit_code=1, state="torn-down", last_test=None, outcome=dropped)
    created = False
    try:
        create_database(env.url, name)
        created = True
        copied = _copy(project, env, copy_env, run_id, progress, verdict, ops)
        outcome.copied = copied
        entry = replace(entry, rows=copied.rows, verdict=copied.verdict)
        failure = _test(ops, template)
        outcome.verdict, outcome.exit_code = ("fail", 1) if failure else (copied.verdict, 0)
        entry.last_test = outcome.last_test = ("failed" if failure else "passed") if ops.env.hooks.get(
            "post_provision") else None
        if failure is not None and template is not None and template.on_test_failure == "teardown":
            ops.run_recorded("pre_teardown", ops.target_connection())
            drop_database(env.url, name)
            created = False
            outcome.outcome = f"a post_provision test failed; {name} was torn down (on_test_failure: teardown)"
        else:
            entry.state = outcome.state = "failed" if failure else "ready"
            outcome.outcome = (f"a post_provision test failed; {name} is kept, marked failed (on_test_failure: "
                               f"keep): `datastage teardown {name}` drops it" if failure else f"{name} is ready")
        outcome.error = f"{outcome.outcome}: {failure.message}" if failure else None
        outcome.seconds = time.monotonic() - started
        paths = write_provision_report(project, outcome, ops, signer)
        entry.report_json = str(paths.json)
        with locked_registry(project) as registry:
            if outcome.state == "torn-down":
                registry.pop(name, None)
            else:
                registry[name] = entry
    except BaseException as exc:
        if created:
            with suppress(DatastageError):
                drop_database(env.url, name)
        with locked_registry(project) as registry:
            registry.pop(name, None)
        if isinstance(exc, Exception):  # a Ctrl-C only cleans up
            outcome.verdict, outcome.state, outcome.outcome = "error", "torn-down", dropped
            outcome.error, outcome.exit_code = str(exc), exit_code_for(exc)
            outcome.seconds = time.monotonic() - started
            with suppress(DatastageError):
                record_provision(project, outcome, ops, None)
        raise
    record_provision(project, outcome, ops, paths)
    if failure is not None:
        raise HookFailed(outcome.error or failure.message)
    return entry


def _test(ops: RefreshOps, template: OnDemandTemplate | None) -> HookFailed | None:
    """Run the ``post_provision`` hooks against the new copy; the failure, if one failed."""
    if template is None:
        return None
    try:
        ops.run("post_provision", ops.target_connection())
    except HookFailed as exc:
        return exc
    return None


def _copy(project: Project, env: Environment, copy_env: Environment, run_id: str, progress: Progress,
          source_verdict: str, ops: RefreshOps, log: dict[str, Any] | None = None) -> Copied:
    """Full copy of ``env``'s current copy into ``copy_env``: shadow, load, verify (and grant), swap.

    The copy's verdict is never better than ``source_verdict``. ``log`` adds to (or replaces fields
    of) the copy's refresh-log row.
    """
    # Before any connection: an empty $DATASTAGE_MASKING_KEY (or a key file others may read) stops here.
    # A copy masks nothing, so any key will do when the project has none.
    key = optional_key(project.key_file)
    if key is None:
        key = MaskingKey(secrets.token_bytes(32), source="unused")
    source = make_engine(env.url, read_only=True, role=f"database of {env.name}")
    live = open_target(env.url, env.name, env.shadow_mode)
    target = open_target(copy_env.url, copy_env.name, copy_env.shadow_mode)
    try:
        # ENV's lock keeps a refresh of ENV from swapping its copy while it is being read.
        with live.lock(run_id), target.lock(run_id), snapshot(source) as conn:
            with step("plan"):
                # ENV's copy, where its dialect put it: source.schemas name the source's schemas, which a
                # MariaDB or SQLite target holds in its one database, PostgreSQL under their names.
                model = reflect(conn, live.copy_schemas(project.source_schemas))
                subset = plan_subset(conn, model, SubsetSpec(), batch_size=copy_env.batch_size)
                # Already masked and verified: every column is copied as it is.
                policy = resolve_policy(policy_from_text("version: 1\ndefault: keep\n", f"copy of {env.name}"),
                                        model)
                tables = [model.tables[k] for k in model.load_order()]
                planned = PlanResult(copy_env.name, model, subset, policy, {}, tables,
                                     {t.key: list(t.columns) for t in tables})
            with entered("load", target.shadow(model, run_id)) as shadow:
                load, extracted, _ = load_into_shadow(conn, planned, shadow, target, key, copy_env,
                                                      progress, copy_env.batch_size, source_url=env.url,
                                                      run_id=run_id)
                verified = verify_shadow(planned, shadow, load, extracted,
                                         after_counts=lambda: ops.grant(shadow))
                if verified.verdict == "fail":
                    failed = "; ".join(c.summary for c in verified.failed)
                    raise VerificationFailed(f"the copy of {env.name} did not verify: {failed}", step="provision")
                verdict = _worse(source_verdict, verified.verdict)
                with step("swap"):
                    shadow.go_live({"run_id": run_id, "environment": copy_env.name, "started_at": utc_now(),
                                    "finished_at": utc_now(), "verdict": verdict,
                                    "source": redact_url(env.url), "datastage_version": __version__,
                                    "rows_loaded": load.total_rows, **(log or {})}, target.refresh_log())
        return Copied(load.total_rows, verdict, planned, load, verified)
    finally:
        source.dispose()


def teardown(project: Project, name: str, *, force: bool = False) -> Provisioned:
    """Drop on-demand environment ``name`` after its template's ``pre_teardown`` hooks, and record it.

    A failing ``pre_teardown`` hook (not ``warn_only``) keeps the copy and raises :class:`HookFailed`;
    ``force`` skips the hooks (and drops a copy whose provision never finished).
    """
    registry = load_registry(project)
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none"
        raise UsageError(f"no on-demand environment called '{name}' (known: {known})")
    entry = registry[name]
    if entry.source_environment not in project.environments:
        raise UsageError(f"'{name}' was copied from environment '{entry.source_environment}', which is no longer "
                         f"configured, so its server is unknown; drop database '{entry.database}' by hand and "
                         f"remove '{name}' from {registry_path(project)}")
    if entry.state == "provisioning" and not force:
        raise UsageError(f"'{name}' is still being provisioned (run {entry.run_id}); if that run was killed, "
                         f"`datastage teardown {name} --force` drops what it left")
    env = project.environment(entry.source_environment)
    url = derived_url(env.url, name)
    check_not_source(project.source_url, project.source_schemas, url,
                     what=f"on-demand environment '{name}'", file=str(project.path),
                     key=f"environments.{env.name}.url", verb="drop")
    run_id, started, started_at = new_run_id(), time.monotonic(), utc_now()
    template = project.template(entry.template) if entry.template else None
    copy_env = replace(env, name=name, url=url, hooks={}, access=(), notify=None, notify_secret=None)
    ops = copy_operations(project, copy_env, template, run_id)

    def record(verdict: str, exit_code: int, error: str | None) -> None:
        append_history(project.state_dir, {
            "run_id": run_id, "environment": name, "kind": "teardown", "trigger": "cli", "verdict": verdict,
            "exit_code": exit_code, "rows": 0, "started_at": started_at, "finished_at": utc_now(),
            "seconds": round(time.monotonic() - started, 3), "source_environment": entry.source_environment,
            "template": entry.template, "owner": entry.owner, "forced": force,
            "hooks": [h.to_dict() for h in ops.hooks], "report_json": None, "report_html": None, "error": error,
        })

    if not force:
        try:
            ops.run("pre_teardown", ops.target_connection())
        except HookFailed as exc:
            failed = HookFailed(f"{exc.message}; {name} was kept: fix the hook, or `datastage teardown {name} "
                                "--force` drops it without its pre_teardown hooks")
            record("fail", failed.exit_code, str(failed))
            raise failed from None
    with step("teardown"):
        drop_database(env.url, name)
    with locked_registry(project) as registry:
        registry.pop(name, None)
    record("pass", 0, None)
    return entry


def gc(project: Project, now: dt.datetime | None = None) -> list[Provisioned]:
    """Tear down every on-demand environment whose expiry has passed (each after its ``pre_teardown``
    hooks).

    One that cannot be dropped (or whose hook fails) does not stop the others; the error names every failure.
    """
    moment = now or dt.datetime.now(dt.UTC)
    dropped: list[Provisioned] = []
    failures: list[str] = []
    refused = False
    for entry in list(load_registry(project).values()):
        if entry.expired(moment):
            try:
                dropped.append(teardown(project, entry.name))
            except DatastageError as exc:
                failures.append(f"{entry.name}: {exc}")
                refused = refused or isinstance(exc, SafetyError)
    if failures:
        done = f"tore down {', '.join(e.name for e in dropped)}; " if dropped else ""
        kind = SafetyError if refused else TargetError  # a refusal to drop the source says so in the exit code
        raise kind(f"{done}could not tear down {'; '.join(failures)}", step="gc")
    return dropped


def environments(project: Project, now: dt.datetime | None = None, owner: str | None = None) -> list[dict[str, Any]]:
    """Configured and on-demand environments with last refresh, verdict, size and expiry; for on-demand
    ones also template, owner, state and last test (``owner``: only the on-demand ones of that owner)."""
    moment = now or dt.datetime.now(dt.UTC)
    history = read_history(project.state_dir)
    rows = []
    for env in project.environments.values():
        refreshes = [h for h in history if h.get("environment") == env.name and h.get("kind", "refresh") == "refresh"]
        last = refreshes[-1] if refreshes else {}
        rows.append({"name": env.name, "kind": "configured", "url": redact_url(env.url),
                     "protected": env.protected, "schedule": (env.schedule or {}).get("cron"),
                     "last_refresh": last.get("finished_at"), "last_verdict": last.get("verdict"),
                     "last_run_id": last.get("run_id"), "size_bytes": database_size(env.url),
                     "from": None, "source_verdict": None, "source_run_id": None, "expires_at": None,
                     "expired": False, "template": None,
                     "owner": None, "state": "ready", "last_test": None})
    if owner is not None:
        rows = []
    for entry in load_registry(project).values():
        if owner is not None and entry.owner != owner:
            continue
        source = project.environments.get(entry.source_environment)
        url = derived_url(source.url, entry.name) if source else None
        rows.append({"name": entry.name, "kind": "on-demand", "url": redact_url(url) if url else None,
                     "protected": False, "schedule": None, "last_refresh": entry.created_at,
                     "last_verdict": entry.verdict, "last_run_id": entry.run_id,
                     "size_bytes": database_size(url) if url else None, "from": entry.source_environment,
                     "source_verdict": entry.source_verdict, "source_run_id": entry.source_run_id,
                     "expires_at": entry.expires_at, "expired": entry.expired(moment), "template": entry.template,
                     "owner": entry.owner, "state": entry.state, "last_test": entry.last_test})
    return rows


def copy_verified(project: Project, env: Environment, copy_env: Environment, run_id: str, progress: Progress,
                  source_verdict: str, log: dict[str, Any] | None = None) -> tuple[int, str]:
    """Copy ``env``'s current copy into ``copy_env`` as ``provision`` does (shadow, load, verify, swap, with
    ``env``'s lock held while it is read); returns the rows copied and the copy's verdict."""
    copied = _copy(project, env, copy_env, run_id, progress, source_verdict, RefreshOps(project, copy_env, run_id),
                   log)
    return copied.rows, copied.verdict


def latest_refresh(env: Environment) -> dict[str, Any] | None:
    """The refresh-log row of ``env``'s current copy ({} when it has no log; None when there is no copy)."""
    return _latest_refresh(env)
