"""Local worker processes: one per core by default (``workers:`` in an environment sets the count).

Workers are started from a clean process (multiprocessing's ``forkserver``), never forked from
the refresh itself: a fork would inherit the refresh's connections and the thread pools of the
column kernels (polars deadlocks in a child forked from a process that used it).
:meth:`LocalExecutor.share` starts them and sends each the run's secrets and context once over
its pipe (memory only: nothing of them is written to disk or logged); :meth:`LocalExecutor.run`
hands each idle worker its next job over the same pipe and yields results as they come back. A
worker that raises, or dies (killed, out of memory), ends the run with a one-line
:class:`~datastage.errors.StepError` (exit code 1): the jobs not started are cancelled and every
worker is stopped. Workers ignore stop signals (the refresh handles those and stops them), end
when the refresh's end of their pipe closes, and are killed when the process they were started
from ends (``PR_SET_PDEATHSIG``).

Worker processes are only started on Linux: elsewhere jobs run in the calling process, one after the other.

Example (two workers, whose pids differ from the caller's):
    >>> with LocalExecutor(2) as executor:
    ...     executor.share("run-1", {"greeting": b"hello"}, context={"punctuation": "!"})
    ...     done = sorted(executor.run(_echo, ["a", "b", "c"]))
    >>> [text for _, text in done]
    ['a hello!', 'b hello!', 'c hello!']
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

import cloudpickle

from datastage.errors import DatastageError, StepError
from datastage.executor.base import Executor, _echo, forget, install
from datastage.secrets import redact

J = TypeVar("J")
R = TypeVar("R")
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
STOP_SECONDS = 5.0


@dataclass
class _Worker:
    process: BaseProcess
    pipe: Connection
    job: int | None = None  # the position of the job it runs


PRELOAD = ["datastage.executor.work"]  # imported once by the process workers start from


def fork_safe() -> bool:
    """Whether worker processes are started here (Linux only)."""
    return sys.platform.startswith("linux")


def start_forkserver() -> None:
    """Start the process every worker is started from, if it is not running: it imports the workers'
    modules (about a second) while the caller goes on, instead of when the first workers start."""
    if fork_safe():
        _start_context()
        multiprocessing.forkserver.ensure_running()


def _start_context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


class LocalExecutor(Executor):
    """Runs jobs in forked worker processes (``workers``: how many; None: one per core)."""

    label = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._runs: list[str] = []
        self._pool: list[_Worker] = []
        self._broken: str | None = None

    def warm_up(self) -> None:
        """Start the process workers are started from (:func:`start_forkserver`)."""
        start_forkserver()

    def share(self, run_id: str, secrets: Mapping[str, bytes], context: Any = None) -> None:
        install(run_id, secrets, context)
        self._runs.append(run_id)
        if not fork_safe():
            return
        self._stop()
        self._broken = None
        start = _start_context()
        payload = cloudpickle.dumps((run_id, dict(secrets), context))  # sent over each pipe, never stored
        for _ in range(self.workers):
            mine, theirs = start.Pipe()
            process = start.Process(target=_serve, args=(theirs,), daemon=True, name="datastage-worker")
            process.start()
            theirs.close()
            with suppress(OSError, ValueError):  # a worker that died at once: its sentinel tells
                mine.send_bytes(payload)
            self._pool.append(_Worker(process, mine))

    def run(self, fn: Callable[[J], R], jobs: Sequence[J]) -> Iterator[tuple[int, R]]:
        if self._broken is not None:
            raise StepError(self._broken, step="load")
        if not self._pool:  # not forked (not Linux): here, one after the other
            for position, job in enumerate(jobs):
                yield position, fn(job)
            return
        waiting = list(range(len(jobs)))[::-1]
        finished = False
        try:
            for worker in self._pool:
                self._hand(worker, fn, jobs, waiting)
            while any(w.job is not None for w in self._pool):
                busy = [w for w in self._pool if w.job is not None]
                ready = wait([w.pipe for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    if worker.pipe not in ready and worker.process.sentinel not in ready:
                        continue
                    done = worker.job
                    assert done is not None
                    outcome = self._receive(worker, jobs[done])
                    worker.job = None
                    self._hand(worker, fn, jobs, waiting)
                    yield done, outcome
            finished = True
        finally:
            if not finished:  # failed, or the caller stopped early: no worker keeps running a job
                self._broken = self._broken or "the worker processes were stopped after an earlier failure"
                self._stop(kill=True)

    def _hand(self, worker: _Worker, fn: Callable[[J], R], jobs: Sequence[J], waiting: list[int]) -> None:
        if not waiting:
            return
        position = waiting.pop()
        worker.job = position
        with suppress(OSError, ValueError):  # a dead worker: its sentinel tells
            worker.pipe.send((fn, jobs[position]))

    def _receive(self, worker: _Worker, job: Any) -> Any:
        try:
            ok, payload = worker.pipe.recv() if worker.pipe.poll() else (None, None)
        except (EOFError, OSError):
            ok, payload = None, None
        if ok is None:
            worker.process.join(1)
            code = worker.process.exitcode
            how = f"was killed by {signal.Signals(-code).name}" if code is not None and code < 0 else \
                f"ended (exit status {code})" if code is not None else "stopped answering"
            self._broken = f"a worker process {how} while running {job!r}; the remaining jobs were cancelled"
            raise StepError(self._broken, step="load")
        if not ok:
            self._broken = redact(str(payload))
            raise StepError(self._broken, step="load")
        return payload

    def _stop(self, kill: bool = False) -> None:
        pool, self._pool = self._pool, []
        for worker in pool:
            if kill:
                worker.process.kill()
            else:
                with suppress(OSError, ValueError):
                    worker.pipe.send(None)
        for worker in pool:
            worker.process.join(STOP_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(STOP_SECONDS)
            worker.pipe.close()

    def kill(self) -> None:
        """Stop the workers at once, a job still running with them (whoever waits for it gets an error)."""
        self._broken = self._broken or "the worker processes were stopped"
        self._stop(kill=True)

    def close(self) -> None:
        self._stop()
        for run_id in self._runs:
            forget(run_id)
        self._runs.clear()


def _serve(pipe: Connection) -> None:
    """A worker's loop: take the run's secrets and context, then run each job it is handed and send
    back ``(True, result)`` or ``(False, message)``."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the refresh handles stop signals and stops its workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with suppress(OSError, AttributeError):  # a worker dies with the process it was started from
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    warnings.simplefilter("ignore")
    try:
        run_id, secrets, context = cloudpickle.loads(pipe.recv_bytes())
    except (EOFError, OSError):
        os._exit(0)
    install(run_id, secrets, context)
    while True:
        try:
            message = pipe.recv()
        except (EOFError, OSError):
            os._exit(0)
        if message is None:
            os._exit(0)
        fn, job = message
        try:
            reply: tuple[bool, Any] = (True, fn(job))
        except DatastageError as exc:
            reply = (False, redact(exc.message))
        except BaseException as exc:  # noqa: BLE001 - sent back as one line, never a traceback
            reply = (False, redact(f"{type(exc).__name__}: {exc}"))
        try:
            pipe.send(reply)
        except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
            pipe.send((False, redact(f"sending a result back failed: {type(exc).__name__}: {exc}")))


__all__ = ["LocalExecutor", "_echo", "fork_safe", "start_forkserver"]
