"""Verified artifacts in the pgdump format (``pg_dump -Fd``): PostgreSQL round trip, checked with the
standard tools, a tampered dump file refused."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ServerDatabases
from test_artifacts_servers import EXPECTED, _select, _tables, pg_project  # noqa: F401 - the fixture

import datastage
from datastage.cli import main


@pytest.mark.postgres
def test_pgdump_round_trip_and_a_tampered_dump(pg_project: Path, pg_databases: ServerDatabases,  # noqa: F811
                                               tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = datastage.export("staging", to=out, format="pgdump", config=pg_project)
    assert result.tables == {"item": 3, "odd/name.x": 2}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "pgdump" and all(f["path"].startswith("dump/") for f in manifest["files"])
    assert (out / "dump" / "toc.dat").is_file()
    subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, check=True, capture_output=True)
    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    victim = next(p for p in sorted((tampered / "dump").iterdir()) if p.name != "toc.dat")
    victim.write_bytes(victim.read_bytes() + b"\0")
    into = pg_databases.create("ds_import")
    result_code = CliRunner().invoke(main, ["import", str(tampered), "--into", into, "--config", str(pg_project)])
    assert result_code.exit_code == 3, result_code.output
    assert f"dump/{victim.name}: its SHA-256 is not the one SHA256SUMS lists" in result_code.output
    assert _tables(into) == []
    imported = datastage.import_artifact(out, into=into, config=pg_project)
    assert imported.format == "pgdump" and _select(into, "item") == EXPECTED
    log = _select(into, "datastage_refresh_log")
    row = next(r for r in log if r[0] == imported.run_id)  # rows are ordered by run id, not by time
    assert f"import of artifact {result.run_id}" in row[7]
    # pgdump artifacts restore into PostgreSQL only, and only into an empty database.
    code = CliRunner().invoke(main, ["import", str(out), "--into", into, "--config", str(pg_project)])
    assert code.exit_code == 2 and "restores into an empty PostgreSQL database" in code.output
    code = CliRunner().invoke(main, ["import", str(out), "--into", f"sqlite:///{tmp_path / 'x.db'}", "--config",
                                     str(pg_project)])
    assert code.exit_code == 2 and "restores into PostgreSQL only" in code.output
    assert not (tmp_path / "x.db").exists()
