"""The compliance report of a refresh or plan: JSON for machines, one HTML file for people.

The report is composed only from step results (plan, load, verify), so it states what
was checked on the loaded data and nothing else. It never contains a source value, a
password or the masking key; the key appears as its fingerprint only, and the JSON is
signed with an HMAC under a subkey of the masking key.

Example:
    >>> paths = write_report(report, state_dir)        # doctest: +SKIP
    >>> paths.json.name                                # doctest: +SKIP
    '20261127-090102-3fa9c1.json'
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datastage.errors import DatastageError
from datastage.history import reports_dir

REPORT_SCHEMA_VERSION = "1.0"
LEGAL_STATEMENT = (
    "The masked data is pseudonymised personal data, not anonymous data: whoever holds the masking key "
    "(or enough context) may re-identify people. Treat the target with the access controls that apply to "
    "personal data, unless the re-identification risk checks in this report show otherwise."
)


@dataclass
class ReportPaths:
    json: Path
    html: Path


def canonical_json(data: dict[str, Any]) -> bytes:
    """The bytes a report signature covers: the report without its signature, keys sorted."""
    body = {k: v for k, v in data.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def write_report(report: dict[str, Any], state_dir: Path) -> ReportPaths:
    """Write ``RUN_ID.json`` and ``RUN_ID.html`` under ``state_dir/reports/ENV/``."""
    folder = reports_dir(state_dir, str(report["environment"]))
    base = folder / str(report["run_id"])
    paths = ReportPaths(base.with_suffix(".json"), base.with_suffix(".html"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(paths.json, json.dumps(report, indent=2, sort_keys=False, default=str) + "\n")
        _atomic_write(paths.html, render_html(report))
    except OSError as exc:
        raise DatastageError(f"cannot write the report: {exc.strerror}", file=str(folder), step="report") from None
    return paths


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;
color:#1d2433;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dde;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #eef}
th{background:#f5f6fa}
.verdict{display:inline-block;padding:.4rem 1rem;border-radius:.4rem;font-weight:700;font-size:1.3rem;color:#fff}
.pass{background:#1f8a4c}.warn{background:#c27c0e}.fail,.error{background:#b3261e}
.PASS{color:#1f8a4c;font-weight:600}.WARN{color:#c27c0e;font-weight:600}.FAIL{color:#b3261e;font-weight:600}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{color:#667}dd{margin:0}
.muted{color:#667}code{background:#f5f6fa;padding:0 .2rem;border-radius:.2rem}
"""


def render_html(report: dict[str, Any]) -> str:
    """A single self-contained HTML page: verdict first, then provenance, checks, columns, subset."""
    verdict = str(report.get("verdict", "error"))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>datastage {_e(report.get('kind'))} {_e(report.get('environment'))} {_e(report.get('run_id'))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>datastage {_e(report.get('kind'))} of <code>{_e(report.get('environment'))}</code></h1>",
        f"<p><span class='verdict {_e(verdict)}' id='verdict'>{_e(verdict.upper())}</span> "
        f"<span class='muted'>run {_e(report.get('run_id'))} · exit code {_e(report.get('exit_code'))}</span></p>",
    ]
    if report.get("error"):
        parts.append(f"<p class='FAIL' id='error'>{_e(report['error'])}</p>")
    prov = report.get("provenance", {})
    parts.append("<h2>Provenance</h2><dl>")
    for label, key in (("Trigger", "trigger"), ("Actor", "actor"), ("Host", "host"),
                       ("datastage", "datastage_version"), ("Started", "started_at"), ("Finished", "finished_at"),
                       ("Source", "source"), ("Target", "target"), ("Rules file", "rules_path"),
                       ("Rules SHA-256", "rules_sha256"), ("Masking key", "key_id")):
        parts.append(f"<dt>{label}</dt><dd>{_e(prov.get(key))}</dd>")
    parts.append("</dl>")
    checks = report.get("checks", [])
    parts.append("<h2>Checks</h2><table id='checks'><tr><th>Check</th><th>Status</th><th>Result</th></tr>")
    for check in checks:
        parts.append(f"<tr><td>{_e(check['name'])}</td><td class='{_e(check['status'])}'>{_e(check['status'])}</td>"
                     f"<td>{_e(check['summary'])}</td></tr>")
    if not checks:
        parts.append("<tr><td colspan='3' class='muted'>no checks ran</td></tr>")
    parts.append("</table>")
    drift = report.get("schema_drift") or {}
    if any(drift.get(k) for k in drift):
        parts.append("<h2>Schema drift since the last refresh</h2><ul>")
        for key, items in drift.items():
            if items:
                parts.append(f"<li>{_e(key.replace('_', ' '))}: {_e(', '.join(items))}</li>")
        parts.append("</ul>")
    parts.append("<h2>Column treatment</h2><table id='columns'><tr><th>Table</th><th>Column</th>"
                 "<th>Classification</th><th>Treatment</th><th>Status</th><th>Rows changed</th></tr>")
    for col in report.get("columns", []):
        parts.append(f"<tr><td>{_e(col['table'])}</td><td>{_e(col['column'])}</td>"
                     f"<td>{_e(col.get('classification'))}</td><td><code>{_e(col['treatment'])}</code></td>"
                     f"<td>{_e(col['status'])}</td><td>{_e(col.get('rows_changed'))}</td></tr>")
    parts.append("</table>")
    subset = report.get("subset", {})
    parts.append("<h2>Subset</h2><table id='subset'><tr><th>Table</th><th>Source rows</th><th>Selected</th>"
                 "<th>Loaded</th><th>Brought in by</th></tr>")
    for row in subset.get("tables", []):
        reasons = "; ".join(f"{k}: {v}" for k, v in row.get("reasons", {}).items())
        parts.append(f"<tr><td>{_e(row['table'])}</td><td>{_e(row['source_rows'])}</td>"
                     f"<td>{_e(row['selected_rows'])}</td><td>{_e(row.get('loaded_rows'))}</td>"
                     f"<td>{_e(reasons)}</td></tr>")
    parts.append("</table>")
    parts.append(f"<h2>Legal status</h2><p id='legal'>{_e(report.get('legal_status'))}</p>")
    if report.get("signature"):
        parts.append(f"<p class='muted'>Signature (HMAC-SHA256): <code>{_e(report['signature'])}</code></p>")
    parts.append("</body></html>\n")
    return "".join(parts)
