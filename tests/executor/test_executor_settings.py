"""``executor:`` and ``workers:`` in datastage.yaml: local processes or a Dask scheduler, and one-line
errors (file:line: key) with exit code 2 for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from datastage.cli import main
from datastage.errors import ConfigError
from datastage.settings import ExecutorSetting, load_project


def _project(tmp_path: Path, lines: str) -> Path:
    path = tmp_path / "datastage.yaml"
    path.write_text("source: {url: 'sqlite:///prod.db'}\nenvironments:\n  staging:\n"
                    f"    url: 'sqlite:///staging.db'\n{lines}")
    return path


def _setting(tmp_path: Path, lines: str) -> ExecutorSetting:
    return load_project(_project(tmp_path, lines)).environment("staging").executor


def test_local_is_the_default_and_can_be_named(tmp_path: Path) -> None:
    assert _setting(tmp_path, "") == ExecutorSetting()
    assert _setting(tmp_path, "    executor: local\n    workers: 3\n") == ExecutorSetting(workers=3)


def test_a_dask_scheduler_address_with_chunks_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setting = _setting(tmp_path, "    executor: {dask: 'tcp://scheduler:8786'}\n    workers: 16\n")
    assert setting == ExecutorSetting(kind="dask", address="tcp://scheduler:8786", workers=16)
    assert setting.label == "dask tcp://scheduler:8786"
    monkeypatch.setenv("DASK_SCHEDULER", "tls://10.0.0.7:8786")
    block = "    executor:\n      dask: ${DASK_SCHEDULER}\n"
    assert _setting(tmp_path, block) == ExecutorSetting(kind="dask", address="tls://10.0.0.7:8786")


@pytest.mark.parametrize(("lines", "where", "message"), [
    ("    executor: spark\n", "executor", "must be 'local' or {dask: <scheduler address>}"),
    ("    executor: {dask: 'http://scheduler:8786'}\n", "executor.dask",
     "must be a Dask scheduler address such as tcp://scheduler:8786"),
    ("    executor: {dask: 'scheduler:8786'}\n", "executor.dask",
     "must be a Dask scheduler address such as tcp://scheduler:8786"),
    ("    executor: {dask: ''}\n", "executor.dask", "expected a non-empty string, got ''"),
    ("    executor: {ray: 'tcp://x:1'}\n", "executor.ray", "unknown key 'ray'"),
    ("    executor: {dask: 'tcp://s:8786', threads: 2}\n", "executor.threads", "unknown key 'threads'"),
    ("    executor: [local]\n", "executor", "expected a mapping, got a list"),
    ("    workers: 0\n", "workers", "must be at least 1, got 0"),
])
def test_a_bad_executor_is_one_line_naming_file_line_and_key(tmp_path: Path, lines: str, where: str,
                                                             message: str) -> None:
    path = _project(tmp_path, lines)
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert str(info.value) == f"{path}:5: environments.staging.{where}: {message}"
    assert info.value.exit_code == 2


def test_the_command_line_exits_2_with_that_line(tmp_path: Path) -> None:
    path = _project(tmp_path, "    executor: {dask: 'http://scheduler:8786'}\n")
    done = CliRunner().invoke(main, ["refresh", "staging", "--config", str(path)])
    assert done.exit_code == 2
    assert f"{path}:5: environments.staging.executor.dask: must be a Dask scheduler address" in done.output
    assert len(done.output.strip().splitlines()) == 1
