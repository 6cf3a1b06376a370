"""The HTML page of a report: one self-contained file (inline CSS, no scripts run, no external assets).

Verdict first, then provenance, checks (with the leak findings), columns, subset, schema drift and the legal
status. The signed JSON is embedded (as inert ``application/json``) so the page can be
verified on its own; the page is a pure function of that JSON, so verification can
re-render it and compare.

Example:
    >>> page = render_html({"kind": "plan", "environment": "staging", "run_id": "x", "verdict": "planned"})
    >>> "PLANNED" in page and "<script" in page
    True
"""

from __future__ import annotations

import html
import json
from typing import Any

EMBED_ID = "datastage-report"

_STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7fb}
main{max-width:80rem;margin:0 auto;padding:1.5rem 1.25rem 3rem}
.banner{border-radius:.6rem;padding:1.1rem 1.4rem;color:#fff;display:flex;gap:1.4rem;align-items:center;flex-wrap:wrap}
.banner .verdict{font-size:2.2rem;font-weight:800;letter-spacing:.04em}
.banner .what{font-size:1.05rem;line-height:1.5}
.pass{background:#1f7a47}.warn{background:#a86a06}.fail,.error{background:#b3261e}.planned{background:#3b5b92}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.8rem;margin:1rem 0}
.card{background:#fff;border:1px solid #e3e6ef;border-radius:.5rem;padding:.7rem .9rem}
.card b{display:block;font-size:1.35rem}.card span{color:#5b6478;font-size:.85rem}
h2{font-size:1.2rem;margin:2rem 0 .6rem;padding-bottom:.3rem;border-bottom:2px solid #e3e6ef}
table{border-collapse:collapse;width:100%;font-size:.88rem;background:#fff;border:1px solid #e3e6ef}
th,td{text-align:left;padding:.38rem .6rem;border-bottom:1px solid #eef0f6;vertical-align:top}
th{background:#eef1f8;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{font-weight:700}.PASS{color:#1f7a47}.WARN{color:#a86a06}.FAIL{color:#b3261e}
tr.FAILrow{background:#fdecea}tr.WARNrow{background:#fff6e0}
.badge{display:inline-block;border-radius:1rem;padding:0 .55rem;font-size:.78rem;font-weight:600;white-space:nowrap}
.direct_identifier{background:#fde2e0;color:#8c1d16}.quasi_identifier{background:#fff0cc;color:#7a5200}
.sensitive{background:#efe0fb;color:#5b2784}.non_personal{background:#e4f3ea;color:#1f5f3a}
.unknown{background:#e9ebf0;color:#49516a}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1.2rem;background:#fff;border:1px solid #e3e6ef;
border-radius:.5rem;padding:.8rem 1rem;margin:0}
dt{color:#5b6478}dd{margin:0;word-break:break-all}
.muted{color:#5b6478}code{background:#eef1f8;padding:0 .25rem;border-radius:.2rem;font-size:.85em}
details summary{cursor:pointer;color:#3b5b92}pre{white-space:pre-wrap;font-size:.78rem;margin:.3rem 0}
.legal{background:#fff;border-left:4px solid #3b5b92;padding:.8rem 1rem}
.errorbox{background:#fdecea;border:1px solid #f3b8b2;border-radius:.5rem;padding:.7rem 1rem;margin-top:1rem}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _e(value)


def _headline(report: dict[str, Any]) -> str:
    summary = report.get("summary") or {}
    kind = report.get("kind", "refresh")
    parts = [f"{_e(kind)} of <b>{_e(report.get('environment'))}</b>", f"run {_e(report.get('run_id'))}"]
    counts = summary.get("checks") or {}
    if kind == "refresh" and report.get("checks"):
        parts.append(f"{counts.get('PASS', 0)} checks passed, {counts.get('WARN', 0)} warned, "
                     f"{counts.get('FAIL', 0)} failed")
    if kind == "provision":
        pass  # what became of the copy is said below
    elif report.get("verdict") == "fail":
        parts.append("shadow copy discarded; the target was left untouched")
    elif report.get("verdict") == "error":
        parts.append("the refresh stopped; the target was left untouched")
    elif report.get("verdict") == "planned":
        parts.append("nothing was written to any database")
    elif report.get("verdict") == "pending":
        parts.append("written right before the swap; the run's outcome replaces this report")
    made = report.get("provision")
    if isinstance(made, dict):
        parts.append(f"copy of {_e(made.get('source_environment'))} (refresh {_e(made.get('source_run_id'))}: "
                     f"{_e(made.get('source_verdict'))}) for {_e(made.get('owner'))}: {_e(made.get('outcome'))}")
    parts.append(f"exit code {_e(report.get('exit_code'))}")
    return " · ".join(parts)


def _cards(report: dict[str, Any]) -> str:
    summary = report.get("summary") or {}
    items = [("tables", summary.get("tables")), ("rows selected", summary.get("rows_selected")),
             ("rows loaded", summary.get("rows_loaded")), ("masked columns", summary.get("masked_columns")),
             ("personal columns found", summary.get("personal_columns")),
             ("seconds", summary.get("seconds"))]
    return "<div class='cards'>" + "".join(
        f"<div class='card'><b>{_n(v) if v is not None else '–'}</b><span>{_e(k)}</span></div>" for k, v in items
    ) + "</div>"


def _provenance(report: dict[str, Any]) -> str:
    prov = report.get("provenance") or {}
    rows = (("Trigger", "trigger"), ("Actor", "actor"), ("Host", "host"), ("datastage", "datastage_version"),
            ("Started", "started_at"), ("Finished", "finished_at"), ("Source", "source"), ("Target", "target"),
            ("Config", "config"), ("Rules file", "rules_path"), ("Rules SHA-256", "rules_sha256"),
            ("Masking key", "key_id"))
    strength = prov.get("key_strength")
    warning = strength.get("warning") if isinstance(strength, dict) else None
    weak = f"<dt>Key strength</dt><dd>warning: {_e(warning)}</dd>" if warning else ""
    return "<h2>Provenance</h2><dl id='provenance'>" + "".join(
        f"<dt>{label}</dt><dd>{_e(prov.get(key))}</dd>" for label, key in rows) + weak + "</dl>"


def _checks(report: dict[str, Any]) -> str:
    checks = report.get("checks") or []
    out = ["<h2>Checks</h2><table id='checks'><thead><tr><th>Check</th><th>Table</th><th>Status</th>"
           "<th>Result</th><th>Figures</th></tr></thead><tbody>"]
    for check in checks:
        status = _e(check.get("status"))
        figures = json.dumps(check.get("figures") or {}, indent=1, sort_keys=True, default=str)
        out.append(f"<tr class='{status}row'><td>{_e(check.get('name'))}</td><td>{_e(check.get('table') or '')}</td>"
                   f"<td class='status {status}'>{status}</td><td>{_e(check.get('summary'))}</td>"
                   f"<td><details><summary>figures</summary><pre>{_e(figures)}</pre></details></td></tr>")
    if not checks:
        why = "a plan runs no checks" if report.get("kind") == "plan" else "no checks ran"
        out.append(f"<tr><td colspan='5' class='muted'>{why}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out) + _findings(checks)


def _findings(checks: list[dict[str, Any]]) -> str:
    """The leak findings: found in, origin, kind, count and the target rows' keys (never a value)."""
    found = [(check, finding) for check in checks for finding in check.get("findings") or []]
    if not found:
        return ""
    out = ["<h3>Leak findings</h3><table id='findings'><thead><tr><th>Check</th><th>Found in</th>"
           "<th>Origin (source)</th><th>Kind</th><th>Count</th><th>Target rows (primary key)</th></tr></thead><tbody>"]
    for check, finding in found:
        status = _e(check.get("status"))
        key_columns = finding.get("key_columns")
        if key_columns is None:
            rows = f"{_n(finding.get('row_count'))} row(s); the table has no primary key"
        else:
            keys = ", ".join("(" + ", ".join(_e(v) for v in row) + ")" if len(row) > 1 else _e(row[0])
                             for row in finding.get("rows") or [])
            rows = f"{_n(finding.get('row_count'))} row(s), {_e(', '.join(key_columns))}: {keys}"
        out.append(f"<tr class='{status}row'><td>{_e(check.get('name'))}</td><td>{_e(finding.get('column'))}</td>"
                   f"<td>{_e(', '.join(finding.get('origin') or []) or 'not a source column')}</td>"
                   f"<td>{_e(finding.get('kind'))}</td><td class='num'>{_n(finding.get('count'))}</td>"
                   f"<td>{rows}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _evidence(col: dict[str, Any]) -> str:
    parts = []
    for item in col.get("evidence") or []:
        if item.get("source") == "values":
            parts.append(f"{item.get('pattern')} in {float(item.get('share') or 0):.0%} of {item.get('sampled')}")
        else:
            parts.append(f"name: {item.get('pattern')}")
    return "; ".join(parts)


def _columns(report: dict[str, Any]) -> str:
    out = ["<h2>Column treatment</h2><table id='columns'><thead><tr><th>Table</th><th>Column</th>"
           "<th>Classification</th><th>Evidence (no values)</th><th>Treatment</th><th>Status</th>"
           "<th>Rows changed</th></tr></thead><tbody>"]
    for col in report.get("columns") or []:
        classification = col.get("classification") or "unknown"
        treatment = f"<code>{_e(col.get('treatment'))}</code>"
        if col.get("inherited_from"):
            treatment += f" <span class='muted'>from {_e(col['inherited_from'])}</span>"
        if col.get("reason"):
            treatment += f"<br><span class='muted'>{_e(col['reason'])}</span>"
        if col.get("classification_source") == "rules":  # stated by the rules (classify:), with their reason
            scan = col.get("scan_classification")
            said = f"scan: {str(scan).replace('_', ' ')}; " if scan and scan != classification else ""
            source = (f" <span class='muted source-rules'>by the rules ({_e(said)}{_e(col.get('classified_reason'))})"
                      "</span>")
        else:
            source = f" <span class='muted'>{_e(col.get('confidence') or '')}</span>"
        out.append(f"<tr><td>{_e(col.get('table'))}</td><td>{_e(col.get('column'))}</td>"
                   f"<td><span class='badge {_e(classification)}'>{_e(classification.replace('_', ' '))}</span>"
                   f"{source}</td>"
                   f"<td class='muted'>{_e(_evidence(col))}</td><td>{treatment}</td><td>{_e(col.get('status'))}</td>"
                   f"<td class='num'>{_n(col.get('rows_changed')) if col.get('rows_changed') is not None else ''}"
                   f"</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _subset(report: dict[str, Any]) -> str:
    subset = report.get("subset") or {}
    spec = subset.get("spec") or {}
    roots = ", ".join(
        f"{r['table']}" + (f" where {r['where']}" if r.get("where") else "")
        + (f" {r['percent']}%" if r.get("percent") is not None else "")
        + (f" limit {r['limit']}" if r.get("limit") is not None else "") for r in spec.get("roots", [])
    ) or "none (every table copied whole)"
    out = [f"<h2>Subset</h2><p>Roots: {_e(roots)}. Passthrough: {_e(', '.join(spec.get('passthrough', [])) or 'none')}."
           f" Excluded: {_e(', '.join(spec.get('exclude', {})) or 'none')}. Kept from the target: "
           f"{_e(', '.join(spec.get('keep_from_target', [])) or 'none')}. Seed {_e(spec.get('seed'))}.</p>",
           "<table id='subset'><thead><tr><th>Table</th><th>Source rows</th><th>Selected</th><th>Loaded</th>"
           "<th>Brought in by</th></tr></thead><tbody>"]
    for row in subset.get("tables") or []:
        reasons = "; ".join(f"{k} ({v:,})" if isinstance(v, int) else f"{k} ({v})"
                            for k, v in (row.get("reasons") or {}).items()) or row.get("note") or ""
        loaded = row.get("loaded_rows")
        out.append(f"<tr><td>{_e(row.get('table'))}</td><td class='num'>{_n(row.get('source_rows'))}</td>"
                   f"<td class='num'>{_n(row.get('selected_rows'))}</td>"
                   f"<td class='num'>{_n(loaded) if loaded is not None else ''}</td><td>{_e(reasons)}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _operations(report: dict[str, Any]) -> str:
    ops = report.get("operations") or {}
    hooks, access = ops.get("hooks") or [], ops.get("access") or []
    if not hooks and not access and not ops.get("rolled_back"):
        return ""
    out = ["<h2>Hooks and access</h2>"]
    if ops.get("rolled_back"):
        out.append("<p class='FAIL' id='rolled-back'>A post_refresh hook failed: the previous copy was rolled "
                   "back in.</p>")
    if hooks:
        out.append("<table id='hooks'><thead><tr><th>Point</th><th>Hook</th><th>Outcome</th><th>Seconds</th>"
                   "</tr></thead><tbody>")
        for hook in hooks:
            status = str(hook.get("status"))
            css = "PASS" if status == "ok" else ("WARN" if hook.get("warn_only") else "FAIL")
            exit_code = f" (exit {hook['exit_code']})" if hook.get("exit_code") not in (None, 0) else ""
            out.append(f"<tr><td>{_e(hook.get('point'))}</td><td><code>{_e(hook.get('command'))}</code></td>"
                       f"<td class='{css}'>{_e(status)}{_e(exit_code)}</td>"
                       f"<td class='num'>{_e(hook.get('seconds'))}</td></tr>")
        out.append("</tbody></table>")
    if access:
        grants = ", ".join(f"{g.get('role')} ({g.get('privileges')})" for g in access)
        out.append(f"<p id='access'>Access granted on the new copy: {_e(grants)}.</p>")
    return "".join(out)


def _drift(report: dict[str, Any]) -> str:
    drift = report.get("schema_drift") or {}
    items = [f"<li>{_e(k.replace('_', ' '))}: {_e(', '.join(v))}</li>" for k, v in drift.items() if v]
    body = f"<ul>{''.join(items)}</ul>" if items else "<p class='muted'>No tables or columns added or removed.</p>"
    return f"<h2>Schema drift since the last refresh</h2><div id='drift'>{body}</div>"


def _legal(report: dict[str, Any]) -> str:
    legal = report.get("legal_status") or {}
    unmet = legal.get("unmet") or []
    extra = ("<details><summary>why not anonymous</summary><ul>" + "".join(f"<li>{_e(u)}</li>" for u in unmet)
             + "</ul></details>") if unmet else ""
    overrides = legal.get("overrides") or []
    if overrides:
        extra += ("<p>Classifications stated by the rules in place of the scan's:</p><ul id='overrides'>"
                  + "".join(f"<li>{_e(o)}</li>" for o in overrides) + "</ul>")
    return (f"<h2>Legal status: {_e(str(legal.get('status', '')).replace('_', ' '))}</h2>"
            f"<div class='legal' id='legal'><p>{_e(legal.get('statement'))}</p>{extra}</div>")


def _signature(report: dict[str, Any]) -> str:
    signature = report.get("signature")
    if not signature:
        return ("<p class='muted' id='signature'>Not signed: no signing key was configured "
                "(<code>signing.key_file</code> in datastage.yaml).</p>")
    page = f"{report.get('run_id')}.html"
    identity, namespace = signature.get("identity"), signature.get("namespace")
    return (f"<div class='muted' id='signature'><p>Signed with {_e(signature.get('algorithm'))} key "
            f"<code id='signing-key'>{_e(signature.get('fingerprint'))}</code>; the detached signatures "
            f"<code>{_e(page)}.sig</code> and <code>{_e(report.get('run_id'))}.json.sig</code> cover the exact "
            "bytes of each file. Check this page with OpenSSH alone, given the signer's "
            "<code>allowed_signers</code> line:</p>"
            f"<pre id='verify-command'>ssh-keygen -Y verify -f allowed_signers -I {_e(identity)} -n {_e(namespace)} "
            f"-s {_e(page)}.sig &lt; {_e(page)}</pre>"
            f"<p>or with <code>datastage report verify {_e(page)} --public-key signing.pub</code>.</p></div>")


def _embedded(report: dict[str, Any]) -> str:
    data = json.dumps(report, default=str).replace("<", "\\u003c")  # key order kept: the page renders from it
    return f'<script type="application/json" id="{EMBED_ID}">{data}</script>'


def render_html(report: dict[str, Any]) -> str:
    """A single self-contained HTML page: verdict first, then provenance, checks, columns, subset."""
    verdict = str(report.get("verdict", "error"))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>datastage {_e(report.get('kind'))} {_e(report.get('environment'))}: {_e(verdict.upper())} "
        f"({_e(report.get('run_id'))})</title>",
        f"<style>{_STYLE}</style></head><body><main>",
        f"<header class='banner {_e(verdict)}'><div class='verdict' id='verdict'>{_e(verdict.upper())}</div>"
        f"<div class='what'>{_headline(report)}</div></header>",
    ]
    if report.get("error"):
        parts.append(f"<div class='errorbox' id='error'><b>Error:</b> {_e(report['error'])}</div>")
    parts += [_cards(report), _provenance(report), _checks(report), _columns(report), _subset(report),
              _operations(report), _drift(report), _legal(report), _signature(report), "</main>",
              _embedded(report), "</body></html>\n"]
    return "".join(parts)
