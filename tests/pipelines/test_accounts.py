"""Several accounts of one vendor: two Shopify shops and two Stripe accounts (two sandboxes, two worlds whose
ids collide) read by their own pipelines into one dataset, every row stamped with its account, each
account's settings falling back to the vendor's, each account's cursors its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from flows.cli import main
from flows.elt import plan_sources
from pipelines.accounts import accounts
from pipelines.http import VendorError
from pipelines.load import load_source, make_pipeline, missing_settings
from sandbox.server import SandboxServer
from sandbox.truth import order_rows
from sandbox.webhooks import deliveries_between
from sandbox.world import World
from webhooks.landing import Landing
from webhooks.merge import merge_landed

pytestmark = pytest.mark.sources

SECOND_SEED, SECOND_PEOPLE = 8, 60
SECOND_SHOP = "second-shop"  # both sandboxes' shops share a domain: the label is set, as a user may


@pytest.fixture(scope="module")
def second() -> Iterator[SandboxServer]:
    with SandboxServer(World.build(SECOND_SEED, SECOND_PEOPLE)) as server:
        yield server


@pytest.fixture(scope="module")
def two_accounts(sandbox_settings, second) -> Iterator[dict[str, str]]:
    """`main` reads the session's sandbox through the vendor-level settings (the fallback); `second` has its
    own URL and credential."""
    index = second.index()
    settings = {
        "SOURCES__SHOPIFY__ACCOUNTS": "main,second", "SOURCES__STRIPE__ACCOUNTS": "main, second",
        "SOURCES__SHOPIFY__SECOND__BASE_URL": index["shopify"]["base_url"],
        "SOURCES__SHOPIFY__SECOND__ACCESS_TOKEN": index["shopify"]["credentials"]["access_token"],
        "SOURCES__SHOPIFY__SECOND__ACCOUNT": SECOND_SHOP,
        "SOURCES__STRIPE__SECOND__BASE_URL": index["stripe"]["base_url"],
        "SOURCES__STRIPE__SECOND__API_KEY": index["stripe"]["credentials"]["api_key"],
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in settings.items():
            patch.setenv(key, value)
        yield settings


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, two_accounts) -> dict:
    warehouse = tmp_path_factory.mktemp("accounts") / "warehouse.duckdb"
    ready, missing = plan_sources(["shopify", "stripe"])
    first = {unit: load_source(unit, warehouse) for unit in ready}
    second_run = {unit: load_source(unit, warehouse) for unit in ready}
    return {"warehouse": warehouse, "ready": ready, "missing": missing, "first": first, "second": second_run}


def rows(warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_each_configured_account_is_its_own_unit_of_work(loaded):
    assert loaded["ready"] == ["shopify.main", "shopify.second", "stripe.main", "stripe.second"]
    assert loaded["missing"] == {}


def test_orders_of_two_shops_with_colliding_ids_are_all_kept_by_account(loaded, sandbox, second):
    served = {"journey-sandbox.myshopify.com": sandbox.sandbox.vendors["shopify"].served_counts()["orders"],
              SECOND_SHOP: second.sandbox.vendors["shopify"].served_counts()["orders"]}
    counted = dict(rows(loaded["warehouse"], "select source_account, count(*) from raw_shopify.orders group by 1"))
    assert counted == served
    [(shared,)] = rows(loaded["warehouse"], "select count(*) from (select id from raw_shopify.orders group by id "
                                            "having count(distinct source_account) = 2)")
    assert shared > 0.5 * served[SECOND_SHOP]  # the worlds reuse ids: only the account tells them apart
    # child tables follow their own order: no line item attached to the other shop's order of the same id
    [(orphans,)] = rows(loaded["warehouse"], """
        select count(*) from raw_shopify.orders__line_items as li
        left join raw_shopify.orders as o on o._dlt_id = li._dlt_parent_id where o.id is null""")
    assert orphans == 0


def test_stripe_accounts_are_told_apart_by_their_own_account_ids(loaded, sandbox, second):
    counted = dict(rows(loaded["warehouse"], "select source_account, count(*) from raw_stripe.charges group by 1"))
    served = [s.sandbox.vendors["stripe"].served_counts(s.sandbox.clock.now())["charges"] for s in (sandbox, second)]
    assert sorted(counted.values()) == sorted(served) and len(counted) == 2
    assert all(account.startswith("acct_") for account in counted)


def test_each_account_keeps_its_own_cursors_and_the_second_run_reads_only_changes(loaded):
    marks = {unit: result.high_water for unit, result in loaded["first"].items()}
    assert marks["shopify.main"]["orders"] != marks["shopify.second"]["orders"]
    for unit in loaded["ready"]:
        state = make_pipeline(unit, loaded["warehouse"]).state["sources"]
        assert list(state) == [unit.split(".")[1]]  # the account's own state, nothing of the other's
    for unit in ("shopify.main", "shopify.second"):  # nothing changed: only the overlap window is re-read
        assert loaded["second"][unit].rows.get("orders", 0) < loaded["first"][unit].rows["orders"]


def test_an_accounts_missing_settings_are_named_with_its_own_keys(two_accounts, monkeypatch):
    monkeypatch.setenv("SOURCES__SHOPIFY__ACCOUNTS", "main,second,third")
    monkeypatch.delenv("SOURCES__SHOPIFY__BASE_URL")
    assert missing_settings("shopify.second") == []
    assert missing_settings("shopify.third") == ["sources.shopify.third.base_url"]
    ready, missing = plan_sources(["shopify"])
    assert ready == ["shopify.second"]
    assert missing == {"shopify.main": ["sources.shopify.main.base_url"],
                       "shopify.third": ["sources.shopify.third.base_url"]}
    with pytest.raises(ValueError, match="no account 'fourth'"):
        plan_sources(["shopify.fourth"])


@pytest.mark.parametrize("raw, error", [("eu,EU-west", "cannot name an account"), ("eu,eu", "twice")])
def test_bad_account_names_are_refused_with_the_rule(monkeypatch, raw, error):
    monkeypatch.setenv("SOURCES__SHOPIFY__ACCOUNTS", raw)
    with pytest.raises(ValueError, match=error):
        accounts("shopify")


def test_a_refused_credential_names_the_accounts_own_setting(two_accounts, monkeypatch, tmp_path):
    monkeypatch.setenv("SOURCES__SHOPIFY__SECOND__ACCESS_TOKEN", "shpat_wrong_token_for_the_second_shop")
    with pytest.raises(VendorError) as failed:
        load_source("shopify.second", tmp_path / "warehouse.duckdb")
    message = str(failed.value)
    assert "sources.shopify.second.access_token" in message and "SOURCES__SHOPIFY__SECOND__ACCESS_TOKEN" in message
    assert "shpat_wrong_token_for_the_second_shop" not in message


def test_check_reports_each_account(two_accounts, capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    for unit in ("shopify.main", "shopify.second", "stripe.main", "stripe.second", "hubspot", "activecampaign"):
        assert f"{unit}: ok" in out


def test_each_shops_customer_listing_replaces_only_its_own(loaded, sandbox, second):
    """Staging flags a customer missing from its shop's last listing as deleted: one shop's run must not
    replace the other's listing."""
    warehouse = loaded["warehouse"]
    served = {"journey-sandbox.myshopify.com": sandbox.sandbox.vendors["shopify"].served_counts()["customers"],
              SECOND_SHOP: second.sandbox.vendors["shopify"].served_counts()["customers"]}
    count = "select source_account, count(*) from raw_shopify.customer_ids_seen group by 1"
    assert dict(rows(warehouse, count)) == served
    with duckdb.connect(str(warehouse)) as con:  # a customer the second shop listed before and has deleted since
        con.execute("insert into raw_shopify.customer_ids_seen (id, source_account, _dlt_load_id, _dlt_id) "
                    "values (999999999, ?, '0', 'gone')", [SECOND_SHOP])
    load_source("shopify.second", warehouse)
    assert dict(rows(warehouse, count)) == served


def test_a_run_over_two_shops_publishes_each_shops_orders_to_the_cent(two_accounts, prefect_server, tmp_path,
                                                                     sandbox, second):
    """The whole flow (an extract task per account, dbt, the quality gate, publish) over two shops whose order
    ids collide: every order of each shop once in the published mart, its revenue the truth's."""
    from flows.elt import elt_flow

    published = tmp_path / "published.duckdb"
    summary = elt_flow(warehouse=str(tmp_path / "warehouse.duckdb"), published=str(published))
    assert [load.source for load in summary.loads] == [
        "activecampaign", "shopify.main", "shopify.second", "stripe.main", "stripe.second", "hubspot"]
    assert summary.gate.passed and summary.published_rows["fct_orders"] > 0
    shops = (("journey-sandbox.myshopify.com", sandbox.sandbox.world), (SECOND_SHOP, second.sandbox.world))
    for account, served in shops:
        mart = {order_id: (counted, gross, refunds, net) for order_id, counted, gross, refunds, net in rows(
            published, "select order_id, is_counted, gross_revenue, refunds, net_revenue from marts.fct_orders "
                       f"where source_account = '{account}'")}
        truth = {o["order_id"]: (o["counted"], o["gross"], o["refunds"], o["net"]) for o in order_rows(served)}
        assert mart.keys() == truth.keys()
        assert {k: v for k, v in mart.items() if v[0]} == {k: v for k, v in truth.items() if v[0]}


def test_a_full_refresh_of_one_account_rereads_it_and_keeps_the_others_rows(loaded, second):
    warehouse = loaded["warehouse"]
    before = dict(rows(warehouse, "select source_account, count(*) from raw_shopify.orders group by 1"))
    again = load_source("shopify.second", warehouse, full_refresh=True)
    assert again.rows["orders"] == second.sandbox.vendors["shopify"].served_counts()["orders"]  # all read again
    assert dict(rows(warehouse, "select source_account, count(*) from raw_shopify.orders group by 1")) == before
    assert again.high_water["orders"] == loaded["first"]["shopify.second"].high_water["orders"]


def test_webhooks_are_judged_by_their_own_accounts_cursors_and_loaded_through_its_pipeline(loaded, sandbox, second,
                                                                                          tmp_path):
    """Pushes for two Stripe accounts: each is compared with its own account's events cursor (a stale one for
    `second` is refused, though `main` knows nothing of it) and loaded through its own pipeline; a push for
    an account no pull has read waits."""
    warehouse, landing = loaded["warehouse"], Landing(tmp_path / "landing")
    pushed = {}
    for unit, server in (("stripe.main", sandbox), ("stripe.second", second)):
        vendors, clock = server.sandbox.vendors, server.sandbox.clock.now()
        first, other = [json.loads(d.body) for d in deliveries_between(vendors, clock - timedelta(days=3650), clock)
                        if d.topic == "charge.succeeded"][:2]
        charge, account = first["data"]["object"], vendors["stripe"].account_id
        pushed[unit] = (account, charge)
        landing.append(stripe_record({**first, "id": f"evt_fresh_{account}", "type": "charge.refunded",
                                      "created": int(clock.timestamp()) + 3600,  # after its events cursor: news
                                      "data": {"object": {**charge, "amount_refunded": charge["amount"],
                                                          "refunded": True}}}, account))
    stale = other["data"]["object"]  # another of second's charges, pushed as of before its events cursor
    landing.append(stripe_record({**other, "id": "evt_stale_second", "type": "charge.refunded",
                                  "created": stale["created"] + 60,
                                  "data": {"object": {**stale, "amount_refunded": 1}}}, account))
    landing.append(stripe_record({**other, "id": "evt_unknown_account", "created": int(clock.timestamp()) + 60,
                                  "data": {"object": {**stale, "id": "ch_unknown"}}}, "acct_never_pulled"))

    stale_sql = "select amount_refunded from raw_stripe.charges where source_account = ? and id = ?"
    stale_before = rows(warehouse, stale_sql, [account, stale["id"]])

    result = merge_landed(warehouse, landing.folder)
    assert dict(result.applied) == {"charges": 2} and result.waiting == 1
    assert dict(result.outcomes) == {"applied": 2, "older_than_pulled": 1}
    for unit, (account, charge) in pushed.items():
        assert rows(warehouse, "select charges.amount_refunded, loads.schema_name from raw_stripe.charges as charges "
                    "join raw_stripe._dlt_loads as loads on charges._dlt_load_id = loads.load_id "
                    "where charges.source_account = ? and charges.id = ?", [account, charge["id"]]) == [
            (charge["amount"], unit.split(".")[1])]  # the fresh refund, loaded by the account's own pipeline
    assert rows(warehouse, stale_sql, [account, stale["id"]]) == stale_before != [(1,)]  # the stale push: nothing


def stripe_record(event: dict, account: str) -> dict:
    """What the receiver lands for a Stripe event signed by `account`'s endpoint secret (test_receiver.py)."""
    return {"vendor": "stripe", "topic": event["type"], "event_id": event["id"], "account": account,
            "received_at": datetime.now(UTC).isoformat(), "body": json.dumps(event)}
