"""The local executor: forked workers with the run's secrets in memory, failures as one-line errors."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from datastage.errors import StepError
from datastage.executor.base import context, shared
from datastage.executor.local import LocalExecutor
from datastage.executor.parallel import injective
from datastage.secrets import register_key

SECRET = b"a-secret-that-never-shows-0123456789"


def _whoami(word: str) -> tuple[str, int, bytes, str]:
    return word, os.getpid(), shared("key"), context()["suffix"]


def _fail(word: str) -> str:
    if word == "bad":
        raise RuntimeError(f"cannot handle {word} with {SECRET.decode()}")
    return word


def _die(word: str) -> str:
    if word == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    return word


def test_workers_run_every_job_with_the_shared_secrets_in_other_processes() -> None:
    with LocalExecutor(2) as executor:
        executor.share("run-a", {"key": SECRET}, context={"suffix": "!"})
        done = dict(executor.run(_whoami, ["a", "b", "c", "d", "e"]))
        again = dict(executor.run(_whoami, ["f"]))  # the same workers serve a second batch of jobs
    assert sorted(done) == [0, 1, 2, 3, 4] and list(again) == [0]
    assert {word for word, _, _, _ in done.values()} == {"a", "b", "c", "d", "e"}
    pids = {pid for _, pid, _, _ in [*done.values(), *again.values()]}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {(key, suffix) for _, _, key, suffix in done.values()} == {(SECRET, "!")}


def test_a_job_that_raises_stops_the_run_in_one_line_without_the_secret() -> None:
    register_key(SECRET)
    with LocalExecutor(2) as executor:
        executor.share("run-b", {"key": SECRET})
        with pytest.raises(StepError) as caught:
            list(executor.run(_fail, ["a", "bad", "c", "d"]))
        assert "RuntimeError: cannot handle bad" in str(caught.value)
        assert SECRET.decode() not in str(caught.value) and "\n" not in str(caught.value)
        with pytest.raises(StepError, match="cannot handle bad"):  # stopped: no more jobs run
            list(executor.run(_fail, ["a"]))


def test_a_killed_worker_fails_the_run_and_stops_the_others() -> None:
    with LocalExecutor(2) as executor:
        executor.share("run-c", {})
        with pytest.raises(StepError, match=r"was killed by SIGKILL while running 'die'") as caught:
            list(executor.run(_die, ["a", "die", "b", "c"]))
        assert caught.value.exit_code == 1
        assert executor._pool == []  # every worker was stopped


def test_kill_stops_a_running_job_at_once_and_its_caller_gets_an_error() -> None:
    with LocalExecutor(1) as executor:
        executor.share("run-d", {})
        outcome: list[BaseException] = []

        def wait_for_the_job() -> None:
            try:
                list(executor.run(time.sleep, [60]))
            except StepError as exc:
                outcome.append(exc)

        waiting = threading.Thread(target=wait_for_the_job)
        started = time.monotonic()
        waiting.start()
        time.sleep(0.5)  # the worker is asleep in its job
        executor.kill()
        waiting.join(10)
        assert not waiting.is_alive() and time.monotonic() - started < 10
        assert len(outcome) == 1 and executor._pool == []
        with pytest.raises(StepError):  # stopped: no more jobs run
            list(executor.run(time.sleep, [0]))


def test_unique_identities_merge_only_when_one_to_one() -> None:
    outs, ins = np.array([1, 2, 3, 1], dtype=np.uint64), np.array([10, 20, 30, 10], dtype=np.uint64)
    assert injective(outs, ins)
    assert not injective(np.append(outs, 3), np.append(ins, 40))  # output 3 given to inputs 30 and 40
    assert not injective(np.append(outs, 4), np.append(ins, 10))  # input 10 given outputs 1 and 4
