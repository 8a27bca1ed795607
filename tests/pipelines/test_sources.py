"""Each source against the sandbox over HTTP: loads exactly what is served, stamped with its account,
and a second run reads only what changed."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.http import VendorError
from pipelines.load import load_source
from pipelines.sources import SOURCES

pytestmark = pytest.mark.sources

# vendor -> (raw table, how many records the world serves for it)
EXPECTED = {
    "activecampaign": ("contacts", lambda w: sum(1 for p in w.people if p.in_activecampaign)),
    "shopify": ("orders", lambda w: len(w.orders())),
    "stripe": ("customers", lambda w: sum(1 for p in w.people if p.stripe_customer_id and not p.stripe_deleted_at)),
    # HubSpot: the listed contacts and the archived ones, flagged
    "hubspot": ("contacts", lambda w: sum(1 for p in w.people if p.in_hubspot) + sum(
        1 for r in w.crm_records() if r.vendor == "hubspot" and r.kind == "archived")),
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, sandbox_settings):
    warehouse = tmp_path_factory.mktemp("sources") / "warehouse.duckdb"
    first = {name: load_source(name, warehouse) for name in SOURCES}
    second = {name: load_source(name, warehouse) for name in SOURCES}
    return warehouse, first, second


@pytest.mark.parametrize("vendor", list(SOURCES))
def test_full_load_has_every_record_once_with_its_account(loaded, world, vendor):
    warehouse, first, _ = loaded
    table, expected = EXPECTED[vendor]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows, ids, accounts = con.execute(
            f"select count(*), count(distinct id), count(distinct source_account) from raw_{vendor}.{table}"
        ).fetchone()
    assert rows == ids == expected(world)
    assert accounts == 1
    assert first[vendor].rows[table] == expected(world)


@pytest.mark.parametrize("vendor", ["activecampaign", "shopify", "stripe", "hubspot"])
def test_second_run_reads_only_the_overlap_window(loaded, vendor):
    _, first, second = loaded
    table, _ = EXPECTED[vendor]
    assert second[vendor].rows.get(table, 0) < first[vendor].rows[table] / 10


def test_shopify_children_stay_with_their_order(loaded, world):
    warehouse, _, _ = loaded
    with duckdb.connect(str(warehouse), read_only=True) as con:
        line_items = con.execute("select count(*) from raw_shopify.orders__line_items").fetchone()[0]
        orphans = con.execute(
            "select count(*) from raw_shopify.orders__line_items li "
            "left join raw_shopify.orders o on li._dlt_root_id = o._dlt_id where o._dlt_id is null").fetchone()[0]
    assert line_items == sum(len(o.line_items) for o in world.orders())
    assert orphans == 0


def test_wrong_token_fails_fast_naming_the_setting_without_the_token(tmp_path, sandbox_settings, monkeypatch):
    monkeypatch.setenv("SOURCES__SHOPIFY__ACCESS_TOKEN", "shpat_this_is_wrong_0000")
    with pytest.raises(VendorError) as caught:
        load_source("shopify", tmp_path / "w.duckdb")
    message = str(caught.value)
    assert "401" in message and "sources.shopify.access_token" in message
    assert "shpat_this_is_wrong_0000" not in message
