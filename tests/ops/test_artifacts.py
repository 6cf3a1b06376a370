"""Verified artifacts on SQLite: export, the standard tools' check, import, and every tampering refused."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import datastage
from datastage.cli import main
from datastage.errors import ArtifactInvalid
from datastage.report.signing import write_signing_key

SOURCE_SQL = """
CREATE TABLE "odd/name.x" (id INTEGER PRIMARY KEY, label TEXT);
CREATE TABLE item (id INTEGER PRIMARY KEY, title TEXT, price NUMERIC(10, 2), sold DATE, blob BLOB,
                   parent INTEGER REFERENCES "odd/name.x"(id));
INSERT INTO "odd/name.x" VALUES (1, 'Zürich ☃'), (2, NULL);
INSERT INTO item VALUES (1, 'Ünïcödé “quotes”', 12.50, '2024-02-29', X'00FF10', 1),
                        (2, NULL, NULL, NULL, NULL, NULL), (3, 'plain', 0.01, '1999-12-31', X'', 2);
"""


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A refreshed SQLite project (signing key configured) and its staging exported as a sqlite artifact."""
    folder = tmp_path_factory.mktemp("artifacts")
    sqlite3.connect(folder / "prod.db").executescript(SOURCE_SQL)
    (folder / "masking.key").write_text("ab" * 32)
    (folder / "masking.key").chmod(0o600)
    write_signing_key(folder / "signing.key")
    (folder / "rules.yaml").write_text("version: 1\ndefault: keep\n")
    config = {"source": {"url": "sqlite:///prod.db"}, "masking": {"key_file": "masking.key"},
              "signing": {"key_file": "signing.key"},
              "environments": {"staging": {"url": "sqlite:///staging.db", "rules": "rules.yaml"}}}
    (folder / "datastage.yaml").write_text(yaml.safe_dump(config))
    assert datastage.refresh("staging", config=folder / "datastage.yaml").verdict in ("pass", "warn")
    code, output = _cli("export", "staging", "--to", str(folder / "out"), "--config", str(folder / "datastage.yaml"),
                        "--json")
    assert code == 0, output
    return folder, folder / "out"


def test_export_is_signed_and_checks_with_standard_tools(exported: tuple[Path, Path]) -> None:
    folder, out = exported
    assert sorted(p.name for p in out.iterdir()) == ["SHA256SUMS", "SHA256SUMS.sig", "data.sqlite", "manifest.json"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".out.export-")]  # the temporary folder is gone
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "sqlite" and manifest["environment"] == "staging"
    assert manifest["tables"] == {"item": 3, "odd/name.x": 2} and manifest["namespace"] == "datastage-artifact"
    assert manifest["source_verdict"] in ("pass", "warn") and manifest["source_run_id"]
    assert [f["path"] for f in manifest["files"]] == ["data.sqlite"]
    public = (folder / "signing.key.pub").read_text().split()
    signers = folder / "allowed_signers"
    signers.write_text(f'datastage namespaces="datastage-artifact" {public[0]} {public[1]}\n')
    sums = (out / "SHA256SUMS").read_bytes()
    subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "datastage", "-n", "datastage-artifact",
                    "-s", str(out / "SHA256SUMS.sig")], input=sums, check=True, capture_output=True)
    subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, check=True, capture_output=True)
    wrong = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "datastage", "-n",
                            "datastage-report", "-s", str(out / "SHA256SUMS.sig")], input=sums, capture_output=True)
    assert wrong.returncode != 0  # a report signature is not an artifact signature, and back


def test_sqlite_round_trip_is_recorded(exported: tuple[Path, Path], tmp_path: Path) -> None:
    folder, out = exported
    laptop = tmp_path / "laptop.db"
    code, output = _cli("import", str(out), "--into", f"sqlite:///{laptop}", "--config",
                        str(folder / "datastage.yaml"), "--json")
    assert code == 0, output
    result = json.loads(output)
    assert result["tables"] == {"item": 3, "odd/name.x": 2} and result["environment"] == "staging"
    for table in ("item", "odd/name.x"):
        assert _rows(laptop, table) == _rows(folder / "staging.db", table)
    assert _rows(laptop, "item")[0] == (1, "Ünïcödé “quotes”", 12.5, "2024-02-29", b"\x00\xff\x10", 1)
    log = _rows(laptop, "datastage_refresh_log")
    assert len(log) == 1 and log[0][0] == result["run_id"]
    assert f"import of artifact {result['artifact_run_id']} (sqlite export of staging" in log[0][7]
    kinds = [(e["kind"], e.get("run_id")) for e in datastage.history(config=folder / "datastage.yaml",
                                                                      kind="artifact")]
    assert ("import", result["run_id"]) in kinds and ("export", result["artifact_run_id"]) in kinds
    # Without a project, the key is given; the same copy again replaces the one datastage loaded.
    code, output = _cli("import", str(out), "--into", f"sqlite:///{laptop}", "--public-key",
                        str(folder / "signing.key.pub"))
    assert code == 0, output
    assert len(_rows(laptop, "datastage_refresh_log")) == 2 and (tmp_path / "laptop.db.previous").exists()
    assert sorted(p.name for p in out.iterdir()) == ["SHA256SUMS", "SHA256SUMS.sig", "data.sqlite", "manifest.json"]


def _tamper_byte(out: Path) -> str:
    data = bytearray((out / "data.sqlite").read_bytes())
    data[-1] ^= 1
    (out / "data.sqlite").write_bytes(bytes(data))
    return "data.sqlite: its SHA-256 is not the one SHA256SUMS lists"


def _extra_file(out: Path) -> str:
    (out / "notes.txt").write_text("hello")
    return "notes.txt: not listed in SHA256SUMS"


def _missing_file(out: Path) -> str:
    (out / "data.sqlite").unlink()
    return "data.sqlite: listed in SHA256SUMS but missing"


def _resigned(out: Path) -> str:
    key = write_signing_key(out.parent / "other.key")
    (out / "SHA256SUMS.sig").write_text(key.sign((out / "SHA256SUMS").read_bytes(), "datastage-artifact"))
    return "SHA256SUMS.sig: signed by SHA256:"


def _edited_sums(out: Path) -> str:
    sums = out / "SHA256SUMS"
    sums.write_text(sums.read_text() + "0" * 64 + "  ../staging.db\n")
    return "SHA256SUMS.sig: does not verify"


def _traversal(out: Path) -> str:
    key = write_signing_key(out.parent / "signing2.key")  # signed by a trusted key, and still refused
    sums = out / "SHA256SUMS"
    sums.write_text(sums.read_text() + "0" * 64 + "  ../staging.db\n")
    (out / "SHA256SUMS.sig").write_text(key.sign(sums.read_bytes(), "datastage-artifact"))
    return "names a path outside the artifact folder: '../staging.db'"


def _symlink(out: Path) -> str:
    (out / "link").symlink_to(out.parent / "prod.db")
    return "link: a symbolic link"


@pytest.mark.parametrize("tamper", [_tamper_byte, _extra_file, _missing_file, _resigned, _edited_sums, _traversal,
                                    _symlink])
def test_a_changed_artifact_is_refused_and_nothing_is_written(exported: tuple[Path, Path], tmp_path: Path,
                                                              tamper: object) -> None:
    folder, out = exported
    copy = tmp_path / "copy" / "out"
    shutil.copytree(out, copy)
    expected = tamper(copy)  # type: ignore[operator]
    signer = tmp_path / "copy" / "signing2.key.pub" if tamper is _traversal else folder / "signing.key.pub"
    keys = ["--public-key", str(signer)]
    before = sorted(p.name for p in copy.iterdir())
    target = tmp_path / "target.db"
    code, output = _cli("import", str(copy), "--into", f"sqlite:///{target}", *keys)
    assert code == 3, output
    assert expected in output and len(output.strip().splitlines()) == 1
    assert not target.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["copy"]
    assert sorted(p.name for p in copy.iterdir()) == before  # reading the artifact changed nothing


def test_import_refusals(exported: tuple[Path, Path], tmp_path: Path) -> None:
    folder, out = exported
    config = str(folder / "datastage.yaml")
    code, output = _cli("import", str(out), "--into", f"sqlite:///{folder / 'prod.db'}", "--config", config)
    assert code == 2 and "is the source database; refusing to import into it" in output
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).executescript("CREATE TABLE mine (x INTEGER); INSERT INTO mine VALUES (7);")
    code, output = _cli("import", str(out), "--into", f"sqlite:///{foreign}", "--public-key",
                        str(folder / "signing.key.pub"))
    assert code == 2 and "holds tables datastage did not load" in output
    assert _rows(foreign, "mine") == [(7,)]
    sqlite3.connect(tmp_path / "empty.db").close()  # a file without tables is an empty database
    code, output = _cli("import", str(out), "--into", f"sqlite:///{tmp_path / 'empty.db'}", "--public-key",
                        str(folder / "signing.key.pub"))
    assert code == 0 and _rows(tmp_path / "empty.db", "odd/name.x") == [(1, "Zürich ☃"), (2, None)]
    code, output = _cli("import", str(tmp_path / "nowhere"), "--into", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2 and "nowhere: no such folder" in output
    code, output = _cli("import", str(out), "--into", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 3 and "no trusted public key" in output and not (tmp_path / "x.db").exists()
    guarded = tmp_path / "guarded.yaml"
    guarded.write_text(yaml.safe_dump({
        "source": {"url": f"sqlite:///{folder / 'prod.db'}"},
        "environments": {"demo": {"url": f"sqlite:///{tmp_path / 'demo.db'}", "protected": True}}}))
    code, output = _cli("import", str(out), "--into", f"sqlite:///{tmp_path / 'demo.db'}", "--config", str(guarded),
                        "--public-key", str(folder / "signing.key.pub"))
    assert code == 2 and "environment 'demo' is protected; refusing to import into it" in output
    assert not (tmp_path / "demo.db").exists()
    secret = "Sup3r-secret-pw"
    code, output = _cli("import", str(out), "--into", f"mysql+pymysql://root:{secret}@127.0.0.1:1/x", "--public-key",
                        str(folder / "signing.key.pub"), "--json")
    assert code == 1 and secret not in output and "127.0.0.1" in output
    with pytest.raises(ArtifactInvalid):
        datastage.import_artifact(tmp_path, into=f"sqlite:///{tmp_path / 'y.db'}",
                                  public_key=folder / "signing.key.pub")


def test_export_refusals(exported: tuple[Path, Path], tmp_path: Path) -> None:
    folder, out = exported
    config = folder / "datastage.yaml"
    code, output = _cli("export", "staging", "--to", str(out), "--config", str(config))
    assert code == 2 and "the export folder must not exist or be empty" in output
    unsigned = tmp_path / "datastage.yaml"
    text = yaml.safe_load(config.read_text())
    del text["signing"]
    text["source"]["url"] = f"sqlite:///{folder / 'prod.db'}"
    text["masking"]["key_file"] = str(folder / "masking.key")
    text["environments"]["staging"].update(url=f"sqlite:///{folder / 'staging.db'}",
                                           rules=str(folder / "rules.yaml"))
    text["environments"]["broken"] = {"url": f"sqlite:///{tmp_path / 'broken.db'}", "rules": str(folder / "rules.yaml")}
    unsigned.write_text(yaml.safe_dump(text))
    code, output = _cli("export", "staging", "--to", str(tmp_path / "a"), "--config", str(unsigned))
    assert code == 2 and "datastage key new --signing --output FILE" in output and "signing.key_file" in output
    assert len(output.strip().splitlines()) == 1 and not (tmp_path / "a").exists()
    text["signing"] = {"key_file": str(folder / "signing.key")}
    unsigned.write_text(yaml.safe_dump(text))
    code, output = _cli("export", "broken", "--to", str(tmp_path / "b"), "--config", str(unsigned))
    assert code == 2 and "environment 'broken' has no copy yet" in output
    sqlite3.connect(tmp_path / "broken.db").executescript(
        "CREATE TABLE t (x INTEGER); CREATE TABLE datastage_refresh_log (run_id TEXT, verdict TEXT, started_at TEXT);"
        "INSERT INTO datastage_refresh_log VALUES ('r1', 'fail', '2026');")
    code, output = _cli("export", "broken", "--to", str(tmp_path / "b"), "--config", str(unsigned))
    assert code == 2 and "is not a verified copy (last verdict: fail)" in output
    assert not (tmp_path / "b").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".b.")]
    code, output = _cli("export", "stagin", "--to", str(tmp_path / "c"), "--config", str(unsigned))
    assert code == 2 and "stagin" in output


def test_export_of_an_on_demand_environment(exported: tuple[Path, Path], tmp_path: Path) -> None:
    folder, _ = exported
    config = folder / "datastage.yaml"
    datastage.provision("pr_7", from_env="staging", config=config)
    try:
        result = datastage.export("pr_7", to=tmp_path / "pr", format="parquet", config=config)
        assert result.environment == "pr_7" and result.tables == {"item": 3, "odd/name.x": 2}
        assert sorted(p.name for p in (tmp_path / "pr" / "tables").iterdir()) == ["item.parquet",
                                                                                 "odd%2Fname%2Ex.parquet"]
        laptop = tmp_path / "laptop.db"
        datastage.import_artifact(tmp_path / "pr", into=f"sqlite:///{laptop}", config=config)
        assert _rows(laptop, "item") == _rows(folder / "staging.db", "item")
    finally:
        datastage.teardown("pr_7", config=config)


@pytest.mark.parametrize("swap", ["symlink", "fifo"])
def test_a_file_swapped_after_the_listing_is_refused_and_nothing_is_written(
        exported: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str) -> None:
    """Between listing the folder and reading a file, the file becomes a link (to a file outside) or a FIFO:
    it is never followed or waited on; the import fails on that file and writes nothing."""
    from datastage.ops.artifacts import manifest

    folder, out = exported
    copy = tmp_path / "copy" / "out"
    shutil.copytree(out, copy)
    victim = next(p for p in sorted(copy.iterdir()) if p.name not in ("SHA256SUMS", "SHA256SUMS.sig"))
    outside = tmp_path / "copy" / "outside"
    outside.write_bytes(victim.read_bytes())
    listing = manifest._files

    def listed_then_swapped(where: Path) -> list[str]:
        names = listing(where)
        victim.unlink()
        if swap == "symlink":
            victim.symlink_to(outside)
        else:
            os.mkfifo(victim)
        return names

    monkeypatch.setattr(manifest, "_files", listed_then_swapped)
    target = tmp_path / "target.db"
    code, output = _cli("import", str(copy), "--into", f"sqlite:///{target}",
                        "--public-key", str(folder / "signing.key.pub"))
    assert code == 3, output
    assert victim.name in output and "plain file" in output and len(output.strip().splitlines()) == 1
    assert not target.exists()
