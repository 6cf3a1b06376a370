"""The compliance report of a refresh or plan: JSON for machines, one HTML file for people.

The report is composed only from step results (plan, scan, load, verify), so it states
what was checked on the loaded data and nothing else. It never contains a source value,
a password or the masking key; the masking key appears as its fingerprint only. Each file
is signed by a detached SSHSIG signature (``RUN_ID.json.sig``, ``RUN_ID.html.sig``) over its exact
bytes, made with the Ed25519 signing key (:mod:`datastage.report.signing`), never the masking
key: verifying needs only the public key, and ``ssh-keygen -Y verify`` checks it as well as
``datastage report verify``. Every string is redacted (:mod:`datastage.secrets`) before it is
signed, and the files are written 0600 in 0700 folders (:mod:`datastage.private`). The HTML
embeds the report data. The JSON follows ``docs/report.schema.json`` (``schema_version``).

Example (a report cut down to the fields a file name and a signature need):
    >>> import tempfile
    >>> from datastage.report.signing import read_trusted_keys, write_signing_key
    >>> folder = Path(tempfile.mkdtemp())
    >>> key = write_signing_key(folder / "signing.key")
    >>> report = {"schema_version": REPORT_SCHEMA_VERSION, "run_id": "20261127-090102-3fa9c1", "environment": "qa"}
    >>> paths = write_report(report, folder / ".datastage", key)
    >>> trusted = read_trusted_keys(folder / "signing.key.pub")
    >>> paths.json.name, verify_report_file(paths.html, trusted).valid
    ('20261127-090102-3fa9c1.json', True)
    >>> _ = paths.json.write_text(paths.json.read_text().replace('"qa"', '"prod"'))
    >>> verify_report_file(paths.json, trusted).message
    'signature does not match: the file was changed after it was signed'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datastage.errors import DatastageError, UsageError
from datastage.limits import MAX_REPORT_BYTES, parse_json, read_bounded
from datastage.private import private_dir, write_private
from datastage.report import sshsig
from datastage.report.history import reports_dir
from datastage.report.html import EMBED_ID, render_html
from datastage.report.signing import ALLOWED_SIGNERS_NAME, PUBLIC_KEY_NAME, SigningKey
from datastage.results import ReportPaths, RunRecord
from datastage.secrets import redact_data, redact_known

if TYPE_CHECKING:
    from datastage.mask.engine import MaskStats
    from datastage.plan import PlanResult
    from datastage.results import LoadResult, VerifyResult
    from datastage.settings import Environment

REPORT_SCHEMA_VERSION = "2.0"
# Masked values depend on these libraries' versions (Faker's data, pandas' and numpy's hashing, AES).
OUTPUT_LIBRARIES = ("Faker", "numpy", "pandas", "cryptography", "phonenumbers", "python-stdnum")


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries masked outputs depend on (None if one is missing)."""
    found: dict[str, str | None] = {}
    for name in OUTPUT_LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found
LEGACY_SIGNATURE_ALGORITHM = "HMAC-SHA256"  # reports of datastage before Ed25519 signatures
MAX_SIGNATURE_BYTES = 64 * 1024
LEGAL_STATEMENT = (
    "The masked data is pseudonymised personal data, not anonymous data: whoever holds the masking key "
    "(or enough context) may re-identify people. Treat the target with the access controls that apply to "
    "personal data, unless the re-identification risk checks in this report show otherwise."
)
ANONYMISATION_STATEMENT = (
    "Measured on the loaded data: no direct identifier was kept, no source value of a masked column or "
    "source identifier reached the target, and every declared quasi-identifier set is k-anonymous "
    "(smallest class {k}, at least {k_min} required). These results support treating the target as "
    "anonymised with respect to the declared quasi-identifiers. The assessment holds only as far as the "
    "declared sets are complete and the masking key stays secret; with the key, masked values can be "
    "linked to other data masked with it."
)
KEPT_STATUSES = ("kept-with-reason", "non_personal", "kept-by-default")


def signature_path(path: Path) -> Path:
    """The detached signature of a report file: ``FILE.sig`` beside it."""
    return path.with_name(path.name + ".sig")


def write_report(report: dict[str, Any], state_dir: Path, signer: SigningKey | None = None) -> ReportPaths:
    """Write ``RUN_ID.json`` and ``RUN_ID.html`` under ``state_dir/reports/ENV/``, each with its detached
    signature when ``signer`` is given (unsigned: ``signature`` is null and no ``.sig`` file is left);
    the signer's public key goes to ``state_dir/signing.pub`` and ``state_dir/allowed_signers``."""
    report["signature"] = signer.describe() if signer is not None else None
    folder = reports_dir(state_dir, str(report["environment"]))
    base = folder / str(report["run_id"])
    paths = ReportPaths(base.with_suffix(".json"), base.with_suffix(".html"),
                        signer.fingerprint if signer is not None else None)
    try:
        private_dir(folder, root=state_dir)
        # The report was redacted when it was composed; the last pass only matters for a secret
        # registered since. What is signed is exactly the text written.
        texts = ((paths.json, redact_known(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n")),
                 (paths.html, redact_known(render_html(report))))
        for path, text in texts:
            write_private(path, text)
            if signer is not None:
                write_private(signature_path(path), signer.sign(text.encode("utf-8")))
            else:
                signature_path(path).unlink(missing_ok=True)  # a stale signature would not sign this file
        if signer is not None:
            write_private(state_dir / PUBLIC_KEY_NAME, signer.public_line() + "\n")
            write_private(state_dir / ALLOWED_SIGNERS_NAME, signer.allowed_signers() + "\n")
    except OSError as exc:
        raise DatastageError(f"cannot write the report: {exc.strerror}", file=str(folder), step="report") from None
    return paths


# -- composing ----------------------------------------------------------------------------

def subset_spec_dict(env: Environment) -> dict[str, Any]:
    """The environment's subset specification as the report records it."""
    spec = env.subset
    return {
        "roots": [{"table": r.table, "where": r.where, "percent": r.percent, "limit": r.limit} for r in spec.roots],
        "passthrough": list(spec.passthrough),
        "exclude": dict(spec.exclude),
        "keep_from_target": list(env.keep),
        "children": spec.children,
        "limit_per_parent": spec.limit_per_parent,
        "seed": spec.seed,
        "max_rows": spec.max_rows,
        "virtual_foreign_keys": [f"{v.table}({', '.join(v.columns)}) -> {v.references}({', '.join(v.ref_columns)})"
                                 for v in spec.virtual_foreign_keys],
    }


def _params(rule: Any) -> dict[str, Any]:
    """Strategy parameters that are safe to show (a constant ``value`` may be a secret)."""
    return {k: v for k, v in sorted(rule.params.items()) if k != "value"}


def _columns(planned: PlanResult, stats: dict[str, MaskStats]) -> list[dict[str, Any]]:
    out = []
    for decision in planned.policy.decisions.values():
        table = planned.model.tables[decision.table]
        column = table.columns[decision.column]
        finding = planned.scan.get(decision.table, decision.column) if planned.scan else None
        rule = decision.rule
        masked = rule is not None and not rule.is_keep and decision.status == "protected"
        table_stats = stats.get(decision.table)
        stated = decision.classification  # ``classify:`` in the rules replaces the scan's classification
        out.append({
            "table": decision.table, "column": decision.column, "type": column.type_name,
            "classification": stated or (finding.classification if finding else None),
            "classification_source": "rules" if stated else ("scan" if finding else None),
            "classified_reason": decision.classified_reason if stated else None,
            "scan_classification": finding.classification if finding else None,
            "confidence": round(finding.confidence, 2) if finding else None,
            "evidence": finding.evidence if finding else [],
            "status": decision.status,
            "strategy": rule.strategy if masked and rule is not None else None,
            "params": _params(rule) if masked and rule is not None else {},
            "unique": bool(rule.unique) if masked and rule is not None else False,
            "treatment": decision.treatment, "reason": decision.reason,
            "inherited_from": rule.inherited_from if rule else None,
            "rows_changed": table_stats.changed.get(decision.column, 0) if table_stats is not None else None,
        })
    return out


def compose_report(record: RunRecord, *, plan: PlanResult | None = None, load: LoadResult | None = None,
                   verify: VerifyResult | None = None, stats: dict[str, MaskStats] | None = None,
                   operations: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report dictionary (unsigned) from a run's record and step results (``operations``: the
    hooks, grants and rollback of the refresh, as :meth:`datastage.ops.envops.RefreshOps.to_report` has them)."""
    stats = stats or {}
    checks = [c.to_dict() for c in verify.checks] if verify else []
    report: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": record.kind,
        "run_id": record.run_id,
        "environment": record.environment,
        "verdict": record.verdict,
        "exit_code": record.exit_code,
        "error": record.error,
        "summary": {},
        "provenance": {
            "trigger": record.trigger, "actor": record.actor, "host": record.host,
            "datastage_version": record.datastage_version, "started_at": record.started_at,
            "finished_at": record.finished_at,
            "seconds": round(record.seconds, 3),
            "config": record.config, "source": record.source, "target": record.target,
            "rules_path": record.rules_path, "rules_sha256": record.rules_sha256,
            "key_id": record.key_id, "key_strength": record.key_strength, "libraries": library_versions(),
        },
        "subset": {"spec": record.subset_spec, "tables": []},
        "columns": [],
        "checks": checks,
        "check_settings": plan.checks.to_dict() if plan else None,
        "scan": None,
        "schema_drift": plan.drift if plan else {},
        "lossy_mappings": load.lossy_mappings if load else [],
        "load_notes": load.notes if load else [],
        "operations": operations if operations is not None else {"hooks": [], "access": [], "rolled_back": False},
    }
    if plan is not None:
        for row in plan.table_rows():
            row["loaded_rows"] = load.rows.get(row["table"]) if load else None
            row["reasons"] = {str(k): int(v) for k, v in row["reasons"].items()}
            report["subset"]["tables"].append(row)
        report["subset"]["seed"] = plan.subset.seed
        report["subset"]["full_copy"] = plan.subset.full_copy
        report["subset"]["cycles"] = plan.subset.cycles
        report["columns"] = _columns(plan, stats)
        if plan.scan is not None:
            report["scan"] = {"sample_rows": plan.scan.sample_rows, "seed": plan.scan.seed,
                              "seconds": round(plan.scan.seconds, 3), "counts": plan.scan.counts()}
    report["summary"] = _summary(report)
    report["legal_status"] = legal_status(report)
    # What is signed is exactly what a reader parses back from the file, and holds no secret.
    parsed: dict[str, Any] = redact_data(json.loads(json.dumps(report, default=str)))
    return parsed


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    statuses = [c["status"] for c in report["checks"]]
    columns = report["columns"]
    loaded = [t.get("loaded_rows") for t in report["subset"]["tables"]]
    return {
        "tables": len(report["subset"]["tables"]),
        "rows_selected": sum(int(t.get("selected_rows") or 0) for t in report["subset"]["tables"]),
        "rows_loaded": sum(int(n) for n in loaded if n is not None) if any(n is not None for n in loaded) else None,
        "columns": len(columns),
        "personal_columns": sum(1 for c in columns if c["classification"] in
                                ("direct_identifier", "quasi_identifier", "sensitive")),
        "masked_columns": sum(1 for c in columns if c["status"] == "protected"),
        "checks": {s: statuses.count(s) for s in ("PASS", "WARN", "FAIL")},
        "seconds": report["provenance"]["seconds"],
    }


def legal_status(report: dict[str, Any]) -> dict[str, Any]:
    """Pseudonymised, unless every check passed, no direct identifier was kept and k-anonymity holds.

    A column's classification is the one the rules state (``classify:``) where they state one, else
    the scan's; ``overrides`` lists the columns where the rules' classification applied.
    """
    unmet: list[str] = []
    if report["kind"] == "provision":
        source = (report.get("provision") or {}).get("source_run_id")
        unmet.append(f"a copy of an already masked copy: the report of refresh {source} states how it was masked")
    elif report["kind"] != "refresh":
        unmet.append("no checks ran on loaded data (plan)")
    elif report["verdict"] != "pass":
        unmet.append(f"the verdict is {report['verdict']}, not pass")
    columns = report["columns"]
    kept_direct = [f"{c['table']}.{c['column']}" for c in columns
                   if c["classification"] == "direct_identifier" and c["status"] in KEPT_STATUSES]
    # Kept with a reason although their values are identifiers (the kept-column check found them).
    accepted = next((c["figures"].get("accepted") or {} for c in report["checks"] if c["name"] == "kept_identifiers"),
                    {})
    kept_direct += [label for label, why in accepted.items() if label not in kept_direct
                    and not str(why).startswith("classified ")]
    if kept_direct:
        unmet.append(f"direct identifiers kept: {', '.join(kept_direct[:10])}")
    declared = {(q["table"], col) for q in (report.get("check_settings") or {}).get("quasi_identifiers", [])
                for col in q["columns"]}
    uncovered = [f"{c['table']}.{c['column']}" for c in columns if c["classification"] == "quasi_identifier"
                 and c["status"] not in ("excluded", "truncated") and (c["table"], c["column"]) not in declared]
    if uncovered:
        unmet.append(f"quasi-identifiers outside a declared set: {', '.join(uncovered[:10])}")
    k_checks = [c for c in report["checks"] if c["name"] == "k_anonymity"]
    if not declared:
        unmet.append("no quasi-identifier set declared, so re-identification risk was not measured")
    elif any(c["status"] != "PASS" for c in k_checks):
        unmet.append("a declared quasi-identifier set is below its k_min")
    # What the rules state in place of the scan (``classify:``), so a reader sees what the status rests on.
    overrides = [f"{c['table']}.{c['column']}: {c['classification']} (scan: {c.get('scan_classification') or 'none'};"
                 f" {c.get('classified_reason')})" for c in columns if c.get("classification_source") == "rules"]
    if unmet:
        return {"status": "pseudonymised", "statement": LEGAL_STATEMENT, "unmet": unmet, "overrides": overrides}
    smallest = min((c["figures"].get("k") or 0 for c in k_checks if c["figures"].get("rows")), default=0)
    k_min = max((c["figures"]["k_min"] for c in k_checks), default=0)
    return {"status": "anonymisation_supported",
            "statement": ANONYMISATION_STATEMENT.format(k=smallest, k_min=k_min), "unmet": [],
            "overrides": overrides}


# -- verifying ----------------------------------------------------------------------------

@dataclass
class VerifyOutcome:
    """Result of checking a report file's detached signature."""

    path: Path
    valid: bool
    message: str
    run_id: str | None = None
    fingerprint: str | None = None  # the key that signed the file, when the signature could be read

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "valid": self.valid, "message": self.message, "run_id": self.run_id,
                "fingerprint": self.fingerprint}


_EMBED_RE = re.compile(rf'<script type="application/json" id="{EMBED_ID}">(.*?)</script>', re.DOTALL)


def load_report(path: Path) -> dict[str, Any]:
    """A report from its JSON file, or the report data embedded in its HTML file."""
    return _parse_report(path, _read_report(path))


def _read_bytes(path: Path) -> bytes:
    """The bytes of a report file, refused unread when too large."""
    try:
        return read_bounded(Path(path), MAX_REPORT_BYTES, UsageError)
    except FileNotFoundError:
        raise UsageError("report file not found", file=str(path)) from None
    except OSError as exc:
        raise UsageError(f"cannot read the report: {exc}", file=str(path)) from None


def _read_report(path: Path) -> str:
    """The text of a report file (newlines as text mode reads them)."""
    try:
        text = _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read the report: {exc}", file=str(path)) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _json_text(path: Path, text: str) -> str:
    """The JSON of a report file: the file itself, or the data embedded in an HTML report."""
    if text.lstrip().startswith("<"):
        match = _EMBED_RE.search(text)
        if match is None:
            raise UsageError("not a datastage HTML report (no embedded report data)", file=str(path))
        return match.group(1)
    return text


def _parse_report(path: Path, text: str) -> dict[str, Any]:
    data = parse_json(_json_text(path, text), str(path), UsageError, "not a datastage report: invalid JSON")
    if not isinstance(data, dict) or "schema_version" not in data or "run_id" not in data:
        raise UsageError("not a datastage report (no schema_version/run_id)", file=str(path))
    return data


class _NotStrict(ValueError):
    """JSON that parses, but that no report datastage writes holds."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _NotStrict(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise _NotStrict(f"{name} is not a JSON number")


def strict_json_problem(text: str) -> str | None:
    """Why ``text`` is not strict JSON (one value, no duplicate key, no NaN or Infinity), or None for
    text that is strict or fails to parse at all (the ordinary parse reports that).

    >>> strict_json_problem('{"verdict": "fail", "verdict": "pass"}')
    "duplicate key 'verdict'"
    >>> strict_json_problem('{"a": NaN}'), strict_json_problem('{"a": 1} {"b": 2}'), strict_json_problem('{"a": 1}')
    ('NaN is not a JSON number', 'data after the JSON value at line 1', None)
    """
    try:
        json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except _NotStrict as exc:
        return str(exc)
    except json.JSONDecodeError as exc:
        return f"data after the JSON value at line {exc.lineno}" if exc.msg == "Extra data" else None
    except (RecursionError, ValueError):
        return None
    return None


def _unsigned(path: Path, data: dict[str, Any], run_id: str) -> VerifyOutcome:
    """The outcome for a report without its ``.sig`` file."""
    claimed = data.get("signature")
    if isinstance(claimed, dict) and claimed.get("algorithm") == LEGACY_SIGNATURE_ALGORITHM:
        message = ("signed with HMAC-SHA256 under the masking key by an older datastage; that signature is not "
                   "checked any more (it needs the masking key): refresh again for an Ed25519-signed report")
    elif not claimed:
        message = "the report is not signed (no signing key was configured when it was written)"
    else:
        message = f"the signature file {signature_path(path).name} is missing"
    return VerifyOutcome(path, False, message, run_id)


def _read_signature(path: Path) -> str:
    try:
        raw = read_bounded(path, MAX_SIGNATURE_BYTES, UsageError)
        return raw.decode("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise UsageError(f"cannot read the signature: {reason}", file=str(path)) from None


def verify_report_file(path: Path, trusted: list[bytes]) -> VerifyOutcome:
    """Check a JSON or HTML report against its detached signature ``FILE.sig``: it must sign exactly the
    file's bytes, with one of the ``trusted`` public keys (SSH public-key blobs, see
    :func:`datastage.report.signing.read_trusted_keys`), and name that key. A JSON text with a duplicate
    key, data after it, NaN or Infinity, or a file that is not UTF-8 fails, signed or not."""
    path = Path(path)
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return VerifyOutcome(path, False, "not a report datastage wrote: the file is not UTF-8 text")
    problem = strict_json_problem(_json_text(path, text))
    if problem is not None:
        return VerifyOutcome(path, False, f"not a report datastage wrote: {problem}")
    data = _parse_report(path, text)
    run_id = str(data.get("run_id"))
    sig_path = signature_path(path)
    if not sig_path.is_file():
        return _unsigned(path, data, run_id)
    if not trusted:
        raise UsageError("no public key to verify with: give --public-key FILE.pub or --allowed-signers FILE "
                         f"(a project keeps its own in {PUBLIC_KEY_NAME} in its state folder)", file=str(path))
    armored = _read_signature(sig_path)
    try:
        signer = sshsig.parse(armored).public_key
        fingerprint = sshsig.blob_fingerprint(signer)
        if signer not in trusted:
            given = ", ".join(sshsig.blob_fingerprint(blob) for blob in trusted)
            return VerifyOutcome(path, False, f"signed by key {fingerprint}, but the key given is {given}",
                                 run_id, fingerprint)
        sshsig.verify(armored, raw)
    except sshsig.SignatureError as exc:
        return VerifyOutcome(path, False, str(exc), run_id)
    claimed = data.get("signature")
    named = claimed.get("fingerprint") if isinstance(claimed, dict) else None
    if named != fingerprint:
        return VerifyOutcome(path, False, f"the report names signing key {named}, but it is signed by {fingerprint}",
                             run_id, fingerprint)
    return VerifyOutcome(path, True, f"valid signature by key {fingerprint}", run_id, fingerprint)


# -- text ---------------------------------------------------------------------------------

def render_text(report: dict[str, Any]) -> str:
    """A plain-text rendering for terminals (``datastage report show``)."""
    prov = report.get("provenance", {})
    summary = report.get("summary", {})
    loaded = summary.get("rows_loaded") if summary.get("rows_loaded") is not None else "-"
    lines = [
        f"{report.get('kind')} of {report.get('environment')}  run {report.get('run_id')}",
        f"verdict: {str(report.get('verdict')).upper()}   exit code {report.get('exit_code')}",
    ]
    if report.get("error"):
        lines.append(f"error: {report['error']}")
    made = report.get("provision")
    if isinstance(made, dict):
        lines.append(f"copy of {made.get('source_environment')} (its refresh {made.get('source_run_id')}: "
                     f"{made.get('source_verdict')}), template {made.get('template') or '-'}, owner "
                     f"{made.get('owner')}, expires {made.get('expires_at') or 'never'}")
        lines.append(f"state {made.get('state')}, post_provision tests {made.get('last_test') or 'none'}: "
                     f"{made.get('outcome')}")
    strength = prov.get("key_strength")
    if isinstance(strength, dict) and strength.get("warning"):
        lines.append(f"warning: {strength['warning']}")
    lines += [
        f"when: {prov.get('started_at')} .. {prov.get('finished_at')} ({prov.get('seconds')}s)   "
        f"trigger {prov.get('trigger')} by {prov.get('actor')} on {prov.get('host')}, datastage "
        f"{prov.get('datastage_version')}",
        f"source: {prov.get('source')}",
        f"target: {prov.get('target')}",
        f"rules: {prov.get('rules_path')} (sha256 {str(prov.get('rules_sha256'))[:16]}...)   key {prov.get('key_id')}",
        f"tables {summary.get('tables')}   rows selected {summary.get('rows_selected')}   loaded {loaded}   "
        f"masked columns {summary.get('masked_columns')}   personal columns {summary.get('personal_columns')}",
        "",
        "checks:",
    ]
    for check in report.get("checks", []):
        lines.append(f"  {check['status']:4} {check['name']}: {check['summary']}")
    if not report.get("checks"):
        lines.append("  (none ran)")
    lines += ["", "columns (personal data and masked columns):"]
    for col in report.get("columns", []):
        if col["status"] == "protected" or col.get("classification_source") == "rules" or col["classification"] in (
                "direct_identifier", "quasi_identifier", "sensitive"):
            changed = f" rows changed {col['rows_changed']}" if col.get("rows_changed") is not None else ""
            stated = " (by the rules)" if col.get("classification_source") == "rules" else ""
            lines.append(f"  {col['table']}.{col['column']}: {col['classification']}{stated} -> {col['treatment']} "
                         f"[{col['status']}]{changed}")
    drift = report.get("schema_drift") or {}
    changes = [f"{k.replace('_', ' ')}: {', '.join(v)}" for k, v in drift.items() if v]
    lines += ["", "schema drift: " + ("; ".join(changes) if changes else "none")]
    legal = report.get("legal_status") or {}
    lines += ["", f"legal status: {legal.get('status')}", f"  {legal.get('statement')}"]
    signature = report.get("signature") or {}
    lines.append(f"signature: {signature.get('algorithm')} by {signature.get('fingerprint')}" if signature
                 else "signature: none")
    return "\n".join(lines)
