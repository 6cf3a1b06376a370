"""The leak findings of a report, one per line: where a leak was found, where it came from, which rows.

``datastage report show RUN_ID --findings`` prints :func:`finding_lines`; ``--json`` prints
:func:`report_findings`. A finding holds names, counts and the target's primary keys of
up to 20 rows, never a leaked value.

Example:
    >>> report = {"checks": [{"name": "leak_identifiers", "status": "FAIL", "findings": [
    ...     {"column": "track.composer", "origin": ["album.title"], "kind": "name", "count": 15, "row_count": 15,
    ...      "key_columns": ["track_id"], "rows": [[3], [8]]}]}]}
    >>> finding_lines(report_findings(report))
    ['FAIL leak_identifiers track.composer: 15 name from album.title; 15 row(s), track_id (first 2): 3, 8']
"""

from __future__ import annotations

from typing import Any


def report_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every finding of every check of ``report``, each with its check's name and status."""
    return [{"check": check.get("name"), "status": check.get("status"), **finding}
            for check in report.get("checks") or [] for finding in check.get("findings") or []]


def _key(row: list[Any]) -> str:
    return str(row[0]) if len(row) == 1 else "(" + ", ".join("NULL" if v is None else str(v) for v in row) + ")"


def finding_line(finding: dict[str, Any], *, with_check: bool = True) -> str:
    """One finding as one line: status and check (``with_check``), found in, count and kind, origin, rows."""
    origin = ", ".join(finding.get("origin") or []) or "no source column (not in the source values hashed)"
    key_columns = finding.get("key_columns")
    rows = int(finding.get("row_count") or 0)
    if key_columns is None:
        where = f"{rows} row(s), no primary key to name them by"
    else:
        keys = ", ".join(_key(row) for row in finding.get("rows") or [])
        more = f" (first {len(finding.get('rows') or [])})" if rows > len(finding.get("rows") or []) else ""
        where = f"{rows} row(s), {', '.join(key_columns)}{more}: {keys}"
    check = f"{finding.get('status')} {finding.get('check')} " if with_check else ""
    return f"{check}{finding.get('column')}: {finding.get('count')} {finding.get('kind')} from {origin}; {where}"


def finding_lines(findings: list[dict[str, Any]]) -> list[str]:
    """One line per finding (``no leak findings`` when there are none)."""
    return [finding_line(f) for f in findings] or ["no leak findings"]
