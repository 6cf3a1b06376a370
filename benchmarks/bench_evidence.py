"""Evidence cost on the demo at a given scale: PII scan, leak check and the rest of verification.

Run by hand (results go to benchmarks/README.md):

    .venv/bin/python benchmarks/bench_evidence.py --scale 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import datastage

WORK = Path(__file__).resolve().parent / "work" / "evidence"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=10)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    demo = datastage.demo(WORK, scale=args.scale)
    os.environ.setdefault("DATASTAGE_MASKING_KEY", "benchmark-masking-key-0123456789-0123456789abcdef")
    config = demo.config
    config.write_text(config.read_text().replace("percent: 25", "percent: 100"))

    started = time.monotonic()
    outcome = datastage.scan(config=config)
    scan_seconds = time.monotonic() - started

    started = time.monotonic()
    result = datastage.refresh("staging", config=config)
    total = time.monotonic() - started
    assert result.report is not None and result.verify is not None
    report = json.loads(result.report.json.read_text())
    leak = {c["name"]: c["figures"] for c in report["checks"]}
    values = leak["leak_identifiers"]["values_checked"]
    print(f"scale {args.scale}: {result.rows:,} rows loaded, verdict {result.verdict}")
    print(f"  datastage scan (1,000-row samples, {len(outcome.result.findings)} columns): {scan_seconds:.2f}s")
    print(f"  refresh total {total:.2f}s; plan-time scan {report['scan']['seconds']:.2f}s; "
          f"verification {result.verify.seconds:.2f}s ({values:,} text values searched, "
          f"{values / max(result.verify.seconds, 1e-9):,.0f} values/s)")


if __name__ == "__main__":
    main()
