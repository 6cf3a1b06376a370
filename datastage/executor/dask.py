"""Jobs on an existing Dask distributed cluster: ``executor: {dask: "tcp://scheduler:8786"}``.

:class:`DaskExecutor` connects a :class:`distributed.Client` to a scheduler someone else runs
(it never starts a cluster). :meth:`~DaskExecutor.share` hands the run's secrets and context to
every worker of the cluster once, in memory (``Client.run``: no task, no scatter, so nothing the
scheduler keeps, a worker spills to disk or logs with a failed task's arguments); the payload is
sealed, so even the worker's "Run Failed" log line shows ``<sealed ...>`` and not its content.
Jobs then run only on the workers that hold them: a worker that joins later has no secrets and
gets no job. A job that fails ends :meth:`~DaskExecutor.run` with its error as one redacted line;
a worker that dies (or restarts, losing its memory) or a scheduler that goes away ends it with
:class:`~datastage.errors.StepError` (exit code 1). Either way the jobs not yet done are
cancelled.

:mod:`distributed` is imported when a Dask executor is opened, never by ``datastage --version``.

Example (a scheduler and workers running elsewhere)::

    with DaskExecutor("tcp://scheduler:8786", workers=8) as executor:
        executor.share("run-1", {"masking_key": key}, context=plan)
        for position, counts in executor.run(copy_chunk, chunks):
            ...
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from datastage.errors import ConfigError, DatastageError, StepError
from datastage.executor import base
from datastage.executor.allocator import restore_after_run, tune_for_run
from datastage.executor.base import Executor, context, forget, install
from datastage.secrets import KNOWN, redact

J = TypeVar("J")
R = TypeVar("R")

POLL_SECONDS = 0.25  # how often a run checks that the workers holding its secrets are still there
MAX_MESSAGE = 500  # characters of a failed job's message in the one-line error


class _Sealed:
    """The run's secrets and context on their way to the workers: pickled as they are, but never
    shown (``repr`` gives only their count), so no log line of a worker or scheduler holds them.

    >>> _Sealed({"masking_key": b"0123456789abcdef"}, {"plan": "three tables"})
    <sealed: 1 secrets and a context>
    """

    __slots__ = ("context", "secrets")

    def __init__(self, secrets: Mapping[str, bytes], context: Any) -> None:
        self.secrets = dict(secrets)
        self.context = context

    def __getstate__(self) -> tuple[dict[str, bytes], Any]:
        return self.secrets, self.context

    def __setstate__(self, state: tuple[dict[str, bytes], Any]) -> None:
        self.secrets, self.context = state

    def __repr__(self) -> str:
        return f"<sealed: {len(self.secrets)} secrets and a context>"

    __str__ = __repr__


_INCARNATION = uuid.uuid4().hex  # one per worker process: a restarted worker at the same address has another


class _RedactLines(logging.Filter):
    """Formats a record's message and hides every known secret in it (whatever its arguments are:
    distributed logs a failed task's exception object, not its text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        with contextlib.suppress(Exception):  # a record that cannot be formatted is left to the handler
            record.msg, record.args = redact(record.getMessage()), ()
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = _RedactLines()


def _hide_secrets_in_logs(prefix: str = "") -> None:
    """Put the redacting filter on the log handlers of this process: every one (``prefix`` "", on a
    worker), or those of the loggers whose name starts with ``prefix`` ("distributed", here)."""
    found = list(logging.root.manager.loggerDict.items())
    loggers = [logger for name, logger in found if isinstance(logger, logging.Logger) and name.startswith(prefix)]
    for logger in loggers if prefix else [logging.getLogger(), *loggers]:
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


def _install_on_worker(run_id: str, sealed: _Sealed) -> str:
    """On a worker: keep the run's secrets and context in memory, hide them from every log line of
    the worker; returns this process's incarnation (a worker process that restarts has a new one)."""
    for value in sealed.secrets.values():
        KNOWN.add_key(value)  # raw, hex and base64 forms: whatever the worker logs, they are hidden
    _hide_secrets_in_logs()
    install(run_id, sealed.secrets, sealed.context)
    tune_for_run(run_id)  # a nanny's fixed allocator thresholds cost masking about 1.8x the CPU
    return _INCARNATION


def _forget_on_worker(run_id: str) -> None:
    """On a worker: drop the run's secrets and context. Their forms stay in the worker's redaction
    set: hiding them from a later log line costs nothing, and a worker in the client's own process
    must not lose secrets registered there since."""
    forget(run_id)
    restore_after_run(run_id)


class _MemoryLost(RuntimeError):
    """Raised on a worker process that does not hold the run (it restarted after :meth:`DaskExecutor.share`)."""


def _call(fn: Callable[[J], R], job: J, run_id: str, incarnation: str) -> R:
    """On a worker: run ``fn(job)`` as a job of ``run_id``, in a process that holds the run's secrets."""
    if incarnation != _INCARNATION:
        raise _MemoryLost(f"worker process restarted and lost run {run_id}")
    context(run_id)  # raises StepError when the run's secrets are gone
    base._CURRENT[:] = [run_id]  # shared()/context() without a run id read this run's
    return fn(job)


class DaskExecutor(Executor):
    """Runs jobs on the Dask scheduler at ``address``, at most ``workers`` at once (None: the
    threads of the workers that hold the run's secrets). ``timeout``: seconds to reach the
    scheduler (None: ``$DATASTAGE_CONNECT_TIMEOUT``, 10 s by default)."""

    label = "dask"

    def __init__(self, address: str | None, workers: int | None = None, *, timeout: float | None = None) -> None:
        if not address:
            raise ConfigError("executor: dask needs a scheduler address such as tcp://scheduler:8786")
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be at least 1 (got {workers})")
        if timeout is None:
            from datastage.settings import tuning_from_env

            timeout = tuning_from_env(os.environ).connect_timeout
        self.address = address
        self.limit = workers
        self.timeout = timeout
        self._holders: dict[str, dict[str, str]] = {}  # run id -> worker address -> incarnation
        self._current: str | None = None
        try:
            from distributed import Client  # imported only when a Dask executor is opened
        except ImportError as error:
            raise ConfigError(f"executor: dask needs the 'distributed' package ({error})") from None
        _hide_secrets_in_logs("distributed")
        try:
            self._client = Client(address, timeout=timeout, set_as_default=False, name="datastage")
        except (ValueError, TypeError) as error:
            raise ConfigError(f"executor: {self._where}: not a Dask scheduler address ({_line(error)})") from None
        except (OSError, TimeoutError) as error:
            raise StepError(f"cannot reach the Dask scheduler at {self._where} within {timeout:g} s "
                            f"({_line(error)})", step="executor") from None
        self.workers = workers or max(1, sum(self._nthreads().values()))

    @property
    def client(self) -> Any:
        """The :class:`distributed.Client` of this executor (for diagnostics: logs, worker processes)."""
        return self._client

    @property
    def _where(self) -> str:
        return redact(self.address)

    def _nthreads(self) -> dict[str, int]:
        """Worker address -> threads, as the scheduler sees them now."""
        try:
            return dict(self._client.nthreads())
        except (OSError, TimeoutError) as error:
            raise StepError(f"lost the Dask scheduler at {self._where} ({_line(error)})", step="executor") from None

    def share(self, run_id: str, secrets: Mapping[str, bytes], context: Any = None) -> None:
        """Send ``secrets`` and ``context`` to every worker of the cluster now (waiting up to the
        connect timeout for a first one); later jobs of the run go only to these workers."""
        if not self._nthreads():
            try:
                self._client.wait_for_workers(1, timeout=self.timeout)
            except (OSError, TimeoutError):
                raise StepError(f"the Dask scheduler at {self._where} has no workers "
                                f"(waited {self.timeout:g} s)", step="executor") from None
        try:
            holders = self._client.run(_install_on_worker, run_id, _Sealed(secrets, context),
                                       on_error="return")
        except (OSError, TimeoutError) as error:
            raise StepError(f"lost the Dask scheduler at {self._where} ({_line(error)})", step="executor") from None
        ready = {address: token for address, token in holders.items() if isinstance(token, str)}
        if not ready:
            raise StepError(f"no Dask worker of {self._where} could take the run's secrets "
                            "(do the workers run the same datastage version?)", step="executor")
        self._holders[run_id] = ready
        self._current = run_id
        threads = self._nthreads()
        self.workers = self.limit or max(1, sum(threads.get(address, 1) for address in ready))

    def run(self, fn: Callable[[J], R], jobs: Sequence[J]) -> Iterator[tuple[int, R]]:
        """``(position, fn(job))`` as jobs finish, at most :attr:`workers` in flight."""
        if self._current is None:
            raise StepError("the Dask executor ran a job before share() gave the workers the run", step="executor")
        run_id = self._current
        holders = self._holders[run_id]
        tag = f"{getattr(fn, '__name__', 'job')}-{uuid.uuid4().hex[:12]}"
        in_flight: dict[Any, int] = {}
        finished: queue.Queue[Any] = queue.Queue()  # futures, as their done-callbacks report them
        pending = iter(enumerate(jobs))
        next_check = time.monotonic() + POLL_SECONDS
        try:
            for position, job in pending:
                in_flight[self._submit(fn, job, run_id, holders, tag, position, finished)] = position
                if len(in_flight) >= self.workers:
                    break
            while in_flight:
                try:
                    future = finished.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    future = None
                if time.monotonic() >= next_check:
                    self._check_holders(holders)
                    next_check = time.monotonic() + POLL_SECONDS
                if future is None or future not in in_flight:
                    continue
                position = in_flight.pop(future)
                result = self._outcome(future)
                del future
                yield position, result
                for next_position, job in pending:
                    in_flight[self._submit(fn, job, run_id, holders, tag, next_position, finished)] = next_position
                    break
        finally:
            if in_flight:
                with contextlib.suppress(Exception):
                    self._client.cancel(list(in_flight), force=True)
            in_flight.clear()

    def _submit(self, fn: Callable[[J], R], job: J, run_id: str, holders: dict[str, str], tag: str,
                position: int, finished: queue.Queue[Any]) -> Any:
        # Restricted to the workers that took the run's secrets; on the worker, _call_on_holder checks
        # that the process is the one that took them (not a restart at the same address).
        future = self._client.submit(_call_on_holder, fn, job, run_id, holders, key=f"datastage-{tag}-{position}",
                                     pure=False, workers=sorted(holders), allow_other_workers=False)
        future.add_done_callback(finished.put)
        return future

    def _check_holders(self, holders: Mapping[str, str]) -> None:
        """StepError when a worker that holds the run's secrets has left the cluster."""
        alive = self._nthreads()
        gone = sorted(set(holders) - set(alive))
        if gone:
            raise StepError(f"a Dask worker died or left the cluster during the run ({', '.join(gone)}); "
                            "the jobs not yet done were cancelled", step="executor")

    def _outcome(self, future: Any) -> Any:
        """The result of a finished future (released on the cluster once here), or the one-line
        error its failure stands for."""
        from distributed import KilledWorker

        status = future.status
        try:
            if status == "finished":
                return future.result()
            error = None if status == "cancelled" else future.exception()
        finally:
            future.release()
        if error is None:
            self._check_holders(self._holders[self._current or ""])
            raise StepError(f"a job was cancelled by the Dask scheduler at {self._where}", step="executor")
        if isinstance(error, KilledWorker):
            raise StepError(f"a Dask worker died while running a job ({_line(error)}); "
                            "the jobs not yet done were cancelled", step="executor") from None
        if isinstance(error, _MemoryLost):
            raise StepError(f"a Dask worker died and restarted during the run ({_line(error)}); "
                            "the jobs not yet done were cancelled", step="executor") from None
        if isinstance(error, DatastageError):
            raise error.with_traceback(None) from None  # already one line, redacted again when shown
        name = type(error).__name__
        raise StepError(f"a job failed on a Dask worker: {name}: {_line(error)}", step="executor") from None

    def close(self) -> None:
        """Drop the runs' secrets from the workers and close the connection to the scheduler."""
        client = getattr(self, "_client", None)
        if client is None:
            return
        for run_id in list(self._holders):
            with contextlib.suppress(Exception):  # a worker or the scheduler may be gone: nothing to forget there
                client.run(_forget_on_worker, run_id, on_error="return")
        self._holders.clear()
        self._current = None
        with contextlib.suppress(Exception):
            client.close(timeout=self.timeout)


def _call_on_holder(fn: Callable[[J], R], job: J, run_id: str, holders: Mapping[str, str]) -> R:
    """On a worker: :func:`_call` with the incarnation the executor recorded for this worker."""
    from distributed import get_worker

    return _call(fn, job, run_id, holders.get(get_worker().address, ""))


def _line(error: BaseException) -> str:
    """The message of ``error`` as one redacted line of at most :data:`MAX_MESSAGE` characters."""
    text = " ".join(redact(str(error) or type(error).__name__).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."
