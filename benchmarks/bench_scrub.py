"""``scrub`` throughput and quality on one core: labelled notes of ~30 words, through the engine.

The notes come from the test corpus generator (``tests/mask/scrub_corpus.py``): one per row of a
``patient`` table whose first and last names have ``person.*`` rules, with e-mails, phones, cards,
IBANs, national ids, keyword-led ids, IP addresses, URLs and names of the row, of other rows and of
nobody in the table. The notes are masked in batches of ``--batch`` rows (a refresh's default is
10,000) through :class:`~datastage.mask.engine.MaskingEngine`, so the figures include the nested
``email``/``phone``/``card_number``/``iban``/``tokenize`` rules and the names read from the masked
columns. The span finder is also timed on its own, and the corpus gives span recall and the share
of other words kept.

Usage::

    .venv/bin/python benchmarks/bench_scrub.py                   # 100,000 notes
    .venv/bin/python benchmarks/bench_scrub.py --rows 20000 --batch 5000

CPU time (``time.process_time``) is reported next to wall time, best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "mask"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_masking import KEY, model
from scrub_corpus import generate, measure, replaced_regions

from datastage.identify.spans import find_spans
from datastage.mask.engine import MaskingEngine
from datastage.mask.policy import policy_from_text
from datastage.mask.resolve import resolve_policy

SCHEMA = "CREATE TABLE patient (id INTEGER PRIMARY KEY, first TEXT, last TEXT, notes TEXT);"
RULES = ("version: 1\ndefault: keep\ntables:\n  patient:\n    first: person.first_name\n"
         "    last: person.last_name\n    notes: scrub\n")


def timed(run: object, repeat: int) -> tuple[float, float]:
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()  # type: ignore[operator]
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu), key=lambda t: t[1])
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    corpus = generate(args.rows, seed=args.seed)
    words = float(np.mean(corpus.words))
    print(f"corpus: {args.rows:,} notes, {words:.1f} words a note ({time.perf_counter() - started:.0f} s to generate)")
    resolved = resolve_policy(policy_from_text(RULES), model(SCHEMA))
    frame = pd.DataFrame({"id": np.arange(1, args.rows + 1, dtype=object), "first": corpus.first_names,
                          "last": corpus.last_names, "notes": corpus.notes}, dtype=object)
    batches = [frame.iloc[s:s + args.batch].reset_index(drop=True) for s in range(0, args.rows, args.batch)]
    names = [pd.Series(corpus.first_names, dtype=object), pd.Series(corpus.last_names, dtype=object)]

    def spans_only() -> None:
        for s in range(0, args.rows, args.batch):
            find_spans(corpus.notes[s:s + args.batch], names=[n.iloc[s:s + args.batch].reset_index(drop=True)
                                                              for n in names])

    def engine_run() -> None:
        engine = MaskingEngine(resolved, KEY)
        for batch in batches:
            engine.mask_batch("patient", batch)

    find_spans(corpus.notes[:100])  # dictionaries and pools loaded once, outside the timing
    print(f"{'case':<34}{'wall s':>8}{'cpu s':>8}{'values/s (cpu)':>17}")
    for label, run in (("find_spans", spans_only), ("scrub through the engine", engine_run)):
        wall, cpu = timed(run, args.repeat)
        print(f"{label:<34}{wall:>8.2f}{cpu:>8.2f}{args.rows / cpu:>17,.0f}")
    spans = find_spans(corpus.notes, names=names)
    figures = measure(corpus, replaced_regions(spans, len(corpus.notes)))
    print(f"span recall {figures['span_recall']:.4f} of {figures['labelled_spans']:,} labelled spans; "
          f"other words kept {figures['other_words_kept']:.4f} of {figures['other_words']:,}; "
          f"spans on no label {figures['false_spans']:,}")
    print("recall by kind: " + ", ".join(f"{k} {v:.4f}" for k, v in figures["recall_by_kind"].items()))


if __name__ == "__main__":
    main()
