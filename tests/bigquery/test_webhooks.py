"""Landed webhooks merged into a BigQuery warehouse exactly as into DuckDB (tests/webhooks/test_merge.py's
scenario, run here against its own emulator, since it loads a world of its own into the raw datasets): the
newest version per object wins, a late webhook never overwrites, an order's child tables are replaced, not
added to; `ops.webhook_landing` is kept in a local DuckDB file beside the warehouse path."""

from __future__ import annotations

import pytest

from tests.bigquery.emulator import BigQueryEmulator
from tests.environment import environment
from tests.webhooks.test_merge import newest_version_wins
from webhooks.merge import LANDING_FILE, BigQueryRaw, ops_path

pytestmark = [pytest.mark.bigquery, pytest.mark.webhooks, pytest.mark.slow]


def test_the_newest_version_per_object_wins_on_bigquery_too(tmp_path):
    warehouse = tmp_path / "state.duckdb"  # on BigQuery it names no data: where local state lives
    with BigQueryEmulator() as emulator, environment(emulator.env()):
        assert ops_path(warehouse) == tmp_path / LANDING_FILE
        raw = BigQueryRaw()
        try:
            newest_version_wins(tmp_path, warehouse, lambda sql, params=None: raw.rows(sql, params or []))
            assert raw.exists("raw_shopify", "orders") and not raw.exists("ops", "webhook_landing")
        finally:
            raw.close()
    assert not warehouse.exists()  # nothing of the warehouse's is local but dlt's state and the landing table
