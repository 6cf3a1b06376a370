"""The leak check searched by worker processes, in TID-range parts of a PostgreSQL shadow: the same
findings as one process, planted leaks caught, a failing worker a clean step failure."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import ServerDatabases
from load_support import scalar

import datastage
from datastage import checkpool
from datastage.errors import StepError

LEAK_CHECKS = ("leak_masked_columns", "leak_identifiers", "card_sweep")


def _pg_target(config: Path, url: str) -> None:
    config.write_text(config.read_text().replace("url: sqlite:///staging.db", f'url: "{url}"'))


def _plant_leaks(config: Path) -> None:
    """Customers' e-mails in a kept column, and a card number outside the test ranges in another."""
    conn = sqlite3.connect(config.parent / "prod.db")
    conn.execute("UPDATE support_ticket SET subject = subject || ' (reply to ' || "
                 "(SELECT email FROM customer c WHERE c.customer_id = support_ticket.customer_id) || ')' "
                 "WHERE ticket_id % 7 = 0")
    conn.execute("UPDATE support_ticket SET status = 'card 4539 1488 0343 6467' WHERE ticket_id % 11 = 0")
    conn.commit()
    conn.close()


def _figures(config: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> tuple[dict[str, Any], int]:
    monkeypatch.setenv(checkpool.WORKERS_ENV, str(workers))
    tasks: list[int] = []
    run = checkpool._run

    def counted(scanner: Any, parts: list[tuple[str, str, str]], *args: Any) -> Any:
        tasks.append(len(parts))
        return run(scanner, parts, *args)

    monkeypatch.setattr(checkpool, "_run", counted)
    result = datastage.refresh("staging", config=config)
    found = {c.name: (c.status, c.figures) for c in result.checks if c.name in LEAK_CHECKS}
    return found, sum(tasks)


@pytest.mark.postgres
def test_workers_find_exactly_what_one_process_finds(demo_project: Path, pg_databases: ServerDatabases,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _pg_target(demo_project, pg_databases.create("ds_checkpool"))
    _plant_leaks(demo_project)
    monkeypatch.setattr(checkpool, "MIN_PAGES", 0)
    monkeypatch.setattr(checkpool, "PART_PAGES", 2)  # many small parts, most of them TID ranges

    alone, no_tasks = _figures(demo_project, monkeypatch, workers=1)
    together, tasks = _figures(demo_project, monkeypatch, workers=2)

    assert no_tasks == 0 and tasks > 20
    assert together == alone
    assert alone["leak_identifiers"][0] == "FAIL"
    assert alone["leak_identifiers"][1]["matches"]["support_ticket.subject"]["email"] > 3
    assert alone["card_sweep"][0] == "FAIL" and alone["card_sweep"][1]["matches"]["support_ticket.status"] > 3
    assert alone["leak_masked_columns"][0] == "PASS"
    assert alone["leak_masked_columns"][1]["values_checked"] > 1000


@pytest.mark.postgres
def test_a_failing_worker_fails_the_verify_step_and_keeps_the_target(
        demo_project: Path, pg_databases: ServerDatabases, monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_databases.create("ds_checkpool_fail")
    _pg_target(demo_project, url)
    datastage.refresh("staging", config=demo_project)
    before = scalar(url, "SELECT run_id FROM public.datastage_refresh_log ORDER BY started_at DESC LIMIT 1")

    monkeypatch.setattr(checkpool, "MIN_PAGES", 0)
    monkeypatch.setenv(checkpool.WORKERS_ENV, "2")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("worker lost its way")

    monkeypatch.setattr("datastage.leakcheck._Scanner.scan", broken)  # inherited by the forked workers
    failure = r"^verify failed: searching \S+ for the leak check failed: RuntimeError: worker lost its way$"
    with pytest.raises(StepError, match=failure):
        datastage.refresh("staging", config=demo_project)
    after = scalar(url, "SELECT run_id FROM public.datastage_refresh_log ORDER BY started_at DESC LIMIT 1")
    assert after == before
    assert scalar(url, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE '%%__ds_shadow_%%'") == 0


def test_parts_cover_every_block_once() -> None:
    parts = checkpool._parts(5 * checkpool.PART_PAGES + 3, tid_ranges=True)
    assert len(parts) == 6 and parts[-1].endswith(f"'({5 * checkpool.PART_PAGES},0)'::tid")
    assert checkpool._parts(10 * checkpool.PART_PAGES, tid_ranges=False) == [""]
    assert checkpool._parts(checkpool.PART_PAGES, tid_ranges=True) == [""]
