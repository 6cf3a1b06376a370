"""The registry of on-demand environments: ``.datastage/provisioned.json``, one entry per copy.

Entries never hold a password. Whoever checks and then changes the registry (the cap of a
template, a new reservation, a teardown) does both under :func:`locked_registry`, an exclusive
``flock`` that holds across processes.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from datastage.errors import UsageError
from datastage.limits import MAX_STATE_BYTES, read_json_file
from datastage.private import open_private, private_dir
from datastage.report.history import write_state
from datastage.settings import Project

REGISTRY_LOCK = "provisioned.lock"


@dataclass
class Provisioned:
    """One on-demand environment in the registry."""

    name: str
    source_environment: str
    dialect: str
    database: str
    created_at: str
    expires_at: str | None
    created_by: str
    run_id: str
    rows: int = 0
    verdict: str = "pass"  # the worse of the source copy's last verdict and the copy's own checks
    source_verdict: str | None = None  # the last refresh verdict of the copy it came from
    source_run_id: str | None = None  # and that refresh's run id
    template: str | None = None  # the on-demand template it was made by (None: no template)
    owner: str | None = None  # who it is for (``--owner``; default the OS user who made it)
    state: str = "ready"  # provisioning | ready | failed (a post_provision test failed and it was kept)
    last_test: str | None = None  # the outcome of its last post_provision tests: passed | failed | None (none)
    report_json: str | None = None  # its provision report

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and dt.datetime.fromisoformat(self.expires_at.replace("Z", "+00:00")) <= now


def registry_path(project: Project) -> Path:
    return project.state_dir / "provisioned.json"


def load_registry(project: Project) -> dict[str, Provisioned]:
    path = registry_path(project)
    if not path.is_file():
        return {}
    raw = read_json_file(path, MAX_STATE_BYTES, UsageError, "the registry of on-demand environments is not valid JSON")
    known = set(Provisioned.__dataclass_fields__)
    if not isinstance(raw, dict) or not all(isinstance(e, dict) and set(e) <= known for e in raw.values()):
        raise UsageError("the registry of on-demand environments is not a mapping of environments", file=str(path))
    try:
        return {str(name): Provisioned(**entry) for name, entry in raw.items()}
    except TypeError:  # an entry without a required field
        raise UsageError("the registry of on-demand environments has an incomplete entry", file=str(path)) from None


def save_registry(project: Project, registry: dict[str, Provisioned]) -> None:
    write_state(registry_path(project), {k: asdict(v) for k, v in registry.items()}, root=project.state_dir)


@contextmanager
def locked_registry(project: Project) -> Iterator[dict[str, Provisioned]]:
    """The registry, read and (when changed) saved under an exclusive lock that holds across processes
    (``flock`` on ``provisioned.lock`` in the state folder), so a check and a change are one step."""
    private_dir(project.state_dir, root=project.state_dir)
    fd = open_private(project.state_dir / REGISTRY_LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        registry = load_registry(project)
        before = {k: asdict(v) for k, v in registry.items()}
        yield registry
        if {k: asdict(v) for k, v in registry.items()} != before:
            save_registry(project, registry)
    finally:
        os.close(fd)  # and with it the lock
