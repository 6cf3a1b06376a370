"""The example Pagila policy against a real Pagila on PostgreSQL: checked, then applied."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import TEST_KEY, ServerDatabases, load_pagila

from datastage.cli import main
from datastage.mask.engine import MaskingEngine
from datastage.mask.keys import MaskingKey
from datastage.mask.policy import load_policy
from datastage.mask.resolve import resolve_policy
from datastage.rulescheck import check_policy_file
from datastage.source.schema import reflect
from datastage.source.values import rows_to_frame

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "rules" / "pagila.yaml"


@pytest.mark.postgres
def test_pagila_policy_checks_clean_and_masks_customers(pg_databases: ServerDatabases, datasets: Path,
                                                        tmp_path: Path) -> None:
    url = pg_databases.create("ds_pagila")
    load_pagila(datasets, url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            model = reflect(conn)
            customers = conn.execute(sa.text(
                "SELECT customer_id, first_name, last_name, email, create_date FROM customer ORDER BY customer_id"
            )).all()
            phones = [r[0] for r in conn.execute(sa.text("SELECT phone FROM address"))]
    finally:
        engine.dispose()

    result = check_policy_file(POLICY, model)
    assert [str(e) for e in result.errors] == [] and result.warnings == []
    assert result.policy is not None
    statuses = {(d.table, d.column): d.status for d in result.policy.decisions.values()}
    assert statuses[("customer", "email")] == "protected" and statuses[("payment", "amount")] == "non_personal"

    # The same check through the CLI, with a project pointing at the database.
    config = tmp_path / "datastage.yaml"
    config.write_text(f"source: {{url: '{url}'}}\n"
                      f"environments:\n  dev: {{url: 'sqlite:///dev.db', rules: '{POLICY}'}}\n")
    cli = CliRunner().invoke(main, ["rules", "check", "--config", str(config), "--env", "dev", "--strict"])
    assert cli.exit_code == 0, cli.output
    assert cli.output.strip() == f"{POLICY}: ok (16 masked columns, 0 warning(s))"

    resolved = resolve_policy(load_policy(POLICY), model)
    masker = MaskingEngine(resolved, MaskingKey(TEST_KEY.encode(), source="test"))
    frame = rows_to_frame(customers, ["customer_id", "first_name", "last_name", "email", "create_date"])
    masked, stats = masker.mask_batch("customer", frame)
    assert len(masked) == 599 and stats.changed["email"] == frame["email"].notna().sum()
    assert not set(masked["email"].dropna()) & set(frame["email"].dropna())
    assert masked["email"].dropna().is_unique
    for first, last, email in masked[["first_name", "last_name", "email"]].itertuples(index=False):
        assert email.startswith(re.sub("[^a-z0-9]", "", first.lower()) + ".")
        assert re.sub("[^a-z0-9]", "", last.lower()) in email
    shifted = (pd.to_datetime(masked["create_date"]) - pd.to_datetime(frame["create_date"])).dt.days
    assert ((shifted.abs() >= 1) & (shifted.abs() <= 30)).all()

    addresses = rows_to_frame([(p,) for p in phones], ["phone"])
    masked_phones, _ = masker.mask_batch("address", addresses)
    assert masked_phones["phone"].is_unique == addresses["phone"].is_unique
    assert all(re.sub(r"\d", "9", a) == re.sub(r"\d", "9", b)
               for a, b in zip(addresses["phone"], masked_phones["phone"], strict=True))
