"""README's CI example, literally: every ``datastage`` command of its workflow, run by a shell with the
job's variables, against a SQLite project whose staging has a template like the README's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from test_templates import SQLITE_COUNT, _project

import datastage

ROOT = Path(__file__).resolve().parents[2]


def workflow_commands() -> list[str]:
    """The ``run:`` lines of the workflow in README's "In CI" section that call datastage."""
    section = (ROOT / "README.md").read_text().split("\n### In CI: a copy per pull request\n", 1)[1]
    block = re.search(r"^```yaml\n(.*?)^```", section, re.S | re.M)
    assert block is not None, "README's CI section has no ```yaml block"
    steps = yaml.safe_load(block.group(1))["jobs"]["test"]["steps"]
    return [step["run"] for step in steps if str(step.get("run", "")).startswith("datastage ")]


def test_the_ci_example_provisions_tests_and_tears_down(tmp_path: Path) -> None:
    commands = workflow_commands()
    assert [c.split()[1] for c in commands] == ["provision", "teardown"]
    config = _project(tmp_path / "project", name="pr_{id}", ttl="8h", max_ttl="3d", max_copies=5,
                      hooks={"post_provision": [{"run": SQLITE_COUNT}]})
    assert datastage.refresh("staging", config=config).verdict == "pass"
    bin_dir = Path(sys.executable).parent
    datastage_bin = shutil.which("datastage", path=str(bin_dir))
    env = {**os.environ, "DATASTAGE_CONFIG": str(config), "PR": "42", "OWNER": "octocat",
           "PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    if datastage_bin is None:  # a venv without the script: the module stands in for it
        env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
        (tmp_path / "datastage").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m datastage "$@"\n')
        (tmp_path / "datastage").chmod(0o755)
    provisioned = subprocess.run(["bash", "-c", commands[0]], env=env, capture_output=True, text=True, timeout=120)
    assert provisioned.returncode == 0, provisioned.stderr
    assert "provisioned pr_42 from staging" in provisioned.stdout
    listed = json.loads(subprocess.run(["bash", "-c", 'datastage envs --owner "$OWNER" --json'], env=env,
                                       capture_output=True, text=True, timeout=60, check=True).stdout)
    copy = next(row for row in listed if row["name"] == "pr_42")
    assert (copy["template"], copy["owner"], copy["state"], copy["last_test"]) == ("staging", "octocat", "ready",
                                                                                     "passed")
    assert (config.parent / "pr_42.db").is_file()
    torn = subprocess.run(["bash", "-c", commands[1]], env=env, capture_output=True, text=True, timeout=60)
    assert torn.returncode == 0, torn.stderr
    assert not (config.parent / "pr_42.db").exists()
    assert all(row["name"] != "pr_42" for row in datastage.envs(config=config))
