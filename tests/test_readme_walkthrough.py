"""README's walkthrough, literally: what ``make demo`` does, then every command of the Usage section,
in order, in a fresh demo project, each in its own process with the venv's ``datastage`` on PATH.
Every command must exit 0, so a README command that no longer works as written fails here."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import datastage

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUN_ID = "RUN_ID"  # the placeholder Usage shows for a run id
# The process environment of a newcomer's shell: no key or project from elsewhere.
UNSET = ("DATASTAGE_MASKING_KEY", "DATASTAGE_CONFIG", "DATASTAGE_SIGNING_KEY_FILE")


def usage_commands(text: str) -> list[list[str]]:
    """The commands of the first ``sh`` block of README's Usage section, split as a shell would (comments
    and blank lines dropped)."""
    section = text.split("\n## Usage\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```sh\n(.*?)^```", section, re.S | re.M)
    assert block is not None, "README's Usage section has no ```sh block"
    commands = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return [c for c in commands if c]


def _bin_dir(tmp_path: Path) -> Path:
    """The venv's bin folder when it holds the ``datastage`` script, else a folder with a stand-in for it."""
    venv_bin = Path(sys.executable).parent
    if (venv_bin / "datastage").is_file():
        return venv_bin
    shim = tmp_path / "bin" / "datastage"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m datastage "$@"\n')
    shim.chmod(0o755)
    return shim.parent


def _environ(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    # The checkout under test is what runs, whichever checkout the venv's script was installed from.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


class Shell:
    """Runs README lines one by one as a shell would: ``cd DIR`` changes folder, anything else is a process."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.run_id: str | None = None

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        if argv[0] == "cd":
            self.cwd = self.cwd / argv[1]
            assert self.cwd.is_dir(), f"cd {argv[1]}: no such folder"
            return subprocess.CompletedProcess(argv, 0, "", "")
        if any(RUN_ID in arg for arg in argv):
            argv = [arg.replace(RUN_ID, self.latest_refresh()) for arg in argv]
        done = subprocess.run(argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL, check=False)
        assert done.returncode == 0, (f"`{shlex.join(argv)}` (in {self.cwd}) exited {done.returncode}\n"
                                      f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        return done

    def latest_refresh(self) -> str:
        """The run id of the latest refresh, from ``datastage history --json`` (looked up once)."""
        if self.run_id is None:
            entries = json.loads(self.run(["datastage", "history", "--json"]).stdout)
            refreshes = [e for e in entries if e.get("kind", "refresh") == "refresh" and e.get("verdict") == "pass"]
            assert refreshes, entries
            self.run_id = str(refreshes[-1]["run_id"])
        return self.run_id


def test_usage_commands_are_read_from_the_readme() -> None:
    commands = usage_commands(README.read_text(encoding="utf-8"))
    assert commands[0] == ["cd", "demo"]
    assert all(c[0] == "datastage" for c in commands[1:]), [c for c in commands if c[0] != "datastage"]
    assert {("rules", "check"), ("report", "show"), ("key", "new")} <= {tuple(c[1:3]) for c in commands[1:]}
    assert len(commands) >= 15


def test_every_usage_command_works_as_written_in_a_fresh_demo_project(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    # What `make demo` does before a newcomer reaches Usage (the Makefile's demo target), in this process.
    demo = datastage.demo(tmp_path / "demo").directory
    assert datastage.refresh("staging", rules=demo / "rules" / "pii.yaml", config=demo / "datastage.yaml",
                             trigger="cli").verdict == "pass"
    commands = usage_commands(README.read_text(encoding="utf-8"))
    shell = Shell(tmp_path, _environ(_bin_dir(tmp_path)))
    outputs = {shlex.join(argv): shell.run(argv).stdout for argv in commands}
    # The commands did what their comments say, not only exit 0.
    assert (demo / "rules" / "proposed.yaml").read_text(encoding="utf-8").startswith("# Proposed by")
    assert (demo / "new-masking.key").stat().st_mode & 0o077 == 0
    assert (demo / "new-signing.key.pub").is_file()
    run_id = shell.latest_refresh()
    assert any(run_id in text for command, text in outputs.items() if command.startswith("datastage history"))
    checked = next(text for command, text in outputs.items() if command.startswith("datastage rules check"))
    assert checked.strip().endswith("0 warning(s))"), checked
    assert [e["name"] for e in datastage.envs(config=demo / "datastage.yaml")] == ["staging"]  # pr_1234 torn down
