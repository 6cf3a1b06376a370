"""The executor contract: run one function over many jobs, with the run's secrets in worker memory only.

An :class:`Executor` runs ``fn(job)`` for each job and yields ``(position, result)`` as jobs
finish. What a job must not carry (the masking key, database passwords) is handed to every
worker once, in memory, with :meth:`Executor.share`, and read back inside the job with
:func:`shared`; it is never part of a task, a pickle on disk or a log line. What every job of
the run reads (the plan, the resolved policy, the source identifiers) goes to each worker once
as the run's context (:func:`context`), not with every job. A job that fails, or
a worker that dies, ends :meth:`Executor.run` with :class:`~datastage.errors.StepError` (exit
code 1); results already yielded stay valid, jobs not yet started are cancelled.

Example (the in-process executor):
    >>> with InlineExecutor() as executor:
    ...     executor.share("run-1", {"greeting": b"hello"}, context={"punctuation": "!"})
    ...     sorted(executor.run(_echo, ["a", "b"]))
    [(0, 'a hello!'), (1, 'b hello!')]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from datastage.errors import StepError

J = TypeVar("J")
R = TypeVar("R")

_SHARED: dict[str, dict[str, bytes]] = {}  # run id -> name -> secret, in this process's memory
_CONTEXT: dict[str, Any] = {}  # run id -> the run's context
_CURRENT: list[str] = []  # the run whose secrets jobs in this process read


def install(run_id: str, secrets: Mapping[str, bytes], context: Any = None) -> None:
    """Keep ``secrets`` and ``context`` for ``run_id`` in this process (each worker, by :meth:`Executor.share`)."""
    _SHARED[run_id] = dict(secrets)
    _CONTEXT[run_id] = context
    _CURRENT[:] = [run_id]


def forget(run_id: str) -> None:
    """Drop the secrets and context of ``run_id`` from this process."""
    _SHARED.pop(run_id, None)
    _CONTEXT.pop(run_id, None)
    if _CURRENT[:1] == [run_id]:
        _CURRENT.clear()


def context(run_id: str | None = None) -> Any:
    """Inside a job: the context the executor shared for the run (``run_id``: the current one)."""
    run = run_id if run_id is not None else (_CURRENT[0] if _CURRENT else "")
    if run not in _CONTEXT:
        raise StepError(f"this worker holds no context for run {run or '?'}", step="load")
    return _CONTEXT[run]


def shared(name: str, run_id: str | None = None) -> bytes:
    """Inside a job: the secret ``name`` the executor shared for the run (``run_id``: the current one)."""
    run = run_id if run_id is not None else (_CURRENT[0] if _CURRENT else "")
    try:
        return _SHARED[run][name]
    except KeyError:
        raise StepError(f"this worker holds no '{name}' for run {run or '?'}: it joined after the run started "
                        "or lost its memory", step="load") from None


class Executor(ABC):
    """Runs one function over many jobs; see the module docstring for the promises."""

    label: str = "executor"
    workers: int = 1

    def __enter__(self) -> Executor:
        return self

    def warm_up(self) -> None:  # noqa: B027 - most executors have nothing to start early
        """Start what the workers will start from, while the caller does other work (nothing by default)."""

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @abstractmethod
    def share(self, run_id: str, secrets: Mapping[str, bytes], context: Any = None) -> None:
        """Put ``secrets`` and ``context`` into every worker's memory for the run (the current run there).

        Local workers start (fork) here, so they inherit both; Dask workers receive them once."""

    @abstractmethod
    def run(self, fn: Callable[[J], R], jobs: Sequence[J]) -> Iterator[tuple[int, R]]:
        """``(position in jobs, fn(job))`` for every job, as they finish; raises StepError on a failure."""

    @abstractmethod
    def close(self) -> None:
        """Stop the workers this executor started and forget the run's secrets."""


class InlineExecutor(Executor):
    """Runs every job here, one after the other (one worker: small tables, SQLite, tests)."""

    label = "inline"
    workers = 1

    def __init__(self) -> None:
        self._runs: list[str] = []

    def share(self, run_id: str, secrets: Mapping[str, bytes], context: Any = None) -> None:
        install(run_id, secrets, context)
        self._runs.append(run_id)

    def run(self, fn: Callable[[J], R], jobs: Sequence[J]) -> Iterator[tuple[int, R]]:
        for position, job in enumerate(jobs):
            yield position, fn(job)

    def close(self) -> None:
        for run_id in self._runs:
            forget(run_id)
        self._runs.clear()


def _echo(word: str) -> str:
    return f"{word} {shared('greeting').decode()}{context()['punctuation']}"
