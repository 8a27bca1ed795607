"""Stripe and Shopify against the sandbox over HTTP: every table holds exactly what is served, a second
run pages only through what changed, Stripe's events merge updates and deletions over old rows (and a
cursor older than Stripe's event retention reads the table in full), Shopify's deletions land in their
own tables."""

from __future__ import annotations

import copy
import logging
import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import duckdb
import pytest

from pipelines.http import VendorClient
from pipelines.load import load_source, make_pipeline, settings_from_index
from pipelines.sources.stripe import settings as stripe_settings
from pipelines.sources.stripe.helpers import events_expired, latest_objects
from sandbox.server import SandboxServer
from sandbox.vendors.shopify import COLUMNS as SHOPIFY_COLUMNS
from sandbox.vendors.shopify import local
from sandbox.vendors.stripe import COLUMNS as STRIPE_COLUMNS
from sandbox.vendors.stripe import NEWEST_FIRST
from sandbox.world import World

pytestmark = pytest.mark.sources

STRIPE_TABLES = ("customers", "charges", "payment_intents", "refunds", "balance_transactions")
STRIPE_PAGE, SHOPIFY_PAGE = 25, 50  # small pages, so page counts tell a full read from an incremental one


class PageSpy:
    """Every page a VendorClient fetched, by vendor and endpoint path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.pages: Counter[tuple[str, str]] = Counter()
        original = VendorClient.request_json

        def spy(client, method, path, params=None, json=None):
            result = original(client, method, path, params=params, json=json)
            self.pages[(client.vendor, urlsplit(client.url(path)).path.rsplit("/", 1)[-1])] += 1
            return result

        monkeypatch.setattr(VendorClient, "request_json", spy)

    def take(self) -> Counter[tuple[str, str]]:
        pages, self.pages = self.pages, Counter()
        return pages


def rows(warehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, sandbox_settings, sandbox) -> Iterator[dict]:
    """Stripe and Shopify loaded twice from the session's sandbox, with the pages each run fetched."""
    warehouse = tmp_path_factory.mktemp("stripe_shopify") / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCES__STRIPE__PAGE_SIZE", str(STRIPE_PAGE))
        patch.setenv("SOURCES__SHOPIFY__PAGE_SIZE", str(SHOPIFY_PAGE))
        spy = PageSpy(patch)
        before = sandbox.sandbox.stats()["requests"]
        first = {v: load_source(v, warehouse) for v in ("stripe", "shopify")}
        first_pages, middle = spy.take(), sandbox.sandbox.stats()["requests"]
        second = {v: load_source(v, warehouse) for v in ("stripe", "shopify")}
        second_pages, after = spy.take(), sandbox.sandbox.stats()["requests"]
    yield {"warehouse": warehouse, "first": first, "second": second, "first_pages": first_pages,
           "second_pages": second_pages,
           "first_requests": {v: middle.get(v, 0) - before.get(v, 0) for v in ("stripe", "shopify")},
           "second_requests": {v: after.get(v, 0) - middle.get(v, 0) for v in ("stripe", "shopify")}}


@pytest.mark.parametrize("table", STRIPE_TABLES)
def test_stripe_full_load_has_every_served_record_once(loaded, sandbox, table):
    served = sandbox.sandbox.vendors["stripe"].served_counts(sandbox.sandbox.clock.now())[table]
    [(count, ids, accounts)] = rows(loaded["warehouse"],
                                    f"select count(*), count(distinct id), count(distinct source_account) "
                                    f"from raw_stripe.{table}")
    assert count == ids == served > 0
    assert accounts == 1
    assert loaded["first"]["stripe"].rows[table] == served


def test_stripe_rows_carry_a_deleted_flag_false_by_default(loaded):
    for table in ("customers", "charges", "payment_intents", "refunds"):
        assert rows(loaded["warehouse"], f"select distinct deleted from raw_stripe.{table}") == [(False,)]


def test_shopify_full_load_has_every_served_record_once(loaded, sandbox):
    vendor = sandbox.sandbox.vendors["shopify"]
    served = vendor.served_counts()
    warehouse = loaded["warehouse"]
    for table in ("orders", "customers", "customer_ids_seen"):
        [(count, ids)] = rows(warehouse, f"select count(*), count(distinct id) from raw_shopify.{table}")
        assert count == ids == served["customers" if table == "customer_ids_seen" else table], table
    [(transactions, distinct)] = rows(warehouse, "select count(*), count(distinct id) "
                                                 "from raw_shopify.orders__transactions")
    assert transactions == distinct == sum(len(o["transactions"]) for o in vendor.orders)
    [(refund_transactions,)] = rows(warehouse, "select count(*) from raw_shopify.orders__refunds__transactions")
    assert refund_transactions == sum(len(r["transactions"]) for o in vendor.orders for r in o["refunds"])


def test_shopify_payment_transactions_keep_stable_types(loaded):
    types = dict(rows(loaded["warehouse"],
                      "select column_name, data_type from information_schema.columns "
                      "where table_schema = 'raw_shopify' and table_name = 'orders__transactions'"))
    assert types["id"] == types["order_id"] == types["parent_id"] == "BIGINT"
    assert types["authorization"] == types["amount"] == types["receipt__payment_intent"] == "VARCHAR"
    assert types["processed_at"].startswith("TIMESTAMP")


def test_second_run_pages_only_through_what_changed(loaded, sandbox):
    stripe = sandbox.sandbox.vendors["stripe"].served_counts(sandbox.sandbox.clock.now())
    shopify = sandbox.sandbox.vendors["shopify"].served_counts()
    first, second = loaded["first_pages"], loaded["second_pages"]
    # endpoints with a server-side filter: a full read first, then one page
    for table in ("customers", "charges", "payment_intents", "refunds"):
        assert first[("stripe", table)] == math.ceil(stripe[table] / STRIPE_PAGE) > 1
        assert second[("stripe", table)] == 1
    assert second[("stripe", "events")] == 4  # one per evented table, all within one page
    assert first[("stripe", "events")] == 0  # nothing to catch up on after a full read
    # balance transactions re-read the trailing window of those still pending: more than one page, fewer
    # than the full read
    assert 1 <= second[("stripe", "balance_transactions")] < first[("stripe", "balance_transactions")]
    assert first[("shopify", "orders.json")] == math.ceil(shopify["orders"] / SHOPIFY_PAGE) > 1
    assert second[("shopify", "orders.json")] == 1
    # customers: one page of changes, plus the id listing that reconciles deletions every run
    assert second[("shopify", "customers.json")] == 1 + math.ceil(shopify["customers"] / SHOPIFY_PAGE)
    # the sandbox saw at least those requests (and any a rate limit made the client repeat)
    for vendor in ("stripe", "shopify"):
        assert loaded["first_requests"][vendor] >= sum(n for (v, _), n in first.items() if v == vendor)
    assert sum(loaded["second_requests"].values()) < sum(loaded["first_requests"].values()) / 2


def test_balance_transactions_remember_the_oldest_pending(loaded, sandbox):
    pipeline = make_pipeline("stripe", loaded["warehouse"])
    state = pipeline.state["sources"]["stripe"]["resources"]["balance_transactions"]
    pending = [t["created"] for t in sandbox.sandbox.vendors["stripe"].served(
        "balance_transactions", sandbox.sandbox.clock.now()) if t["status"] == "pending"]
    assert datetime.fromisoformat(state["oldest_pending"]) == datetime.fromtimestamp(min(pending), UTC)
    assert loaded["second"]["stripe"].rows["balance_transactions"] >= len(pending)


# --- a tiny world of its own, changed under the client -----------------------------------------------
@pytest.fixture
def tiny(monkeypatch) -> Iterator[SandboxServer]:
    """A small sandbox this test may change (add events, move its clock), with every source pointed at it."""
    with SandboxServer(World.build(11, 40)) as server:
        for key, value in settings_from_index(server.index()).items():
            monkeypatch.setenv(key, value)
        yield server


def add_stripe_event(server: SandboxServer, kind: str, obj: dict, created: int) -> None:
    stripe = server.sandbox.vendors["stripe"]
    event = {"id": f"evt_test_{kind}_{obj['id']}", "object": "event", "created": created, "type": kind,
             "data": {"object": obj}, "livemode": False}
    events = [*stripe.lists["events"], event]
    stripe.lists["events"] = stripe.store.table(STRIPE_COLUMNS["events"], events, NEWEST_FIRST)


def test_stripe_events_merge_updates_and_deletions_over_old_rows(tiny, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    load_source("stripe", warehouse)
    stripe, now = tiny.sandbox.vendors["stripe"], tiny.sandbox.clock.now()
    # an old charge (far outside the `created` overlap) refunded now, and an old customer deleted now
    charge = next(c for c in reversed(stripe.lists["charges"])
                  if c["status"] == "succeeded" and not c["amount_refunded"])
    customer = stripe.lists["customers"][-1]
    assert charge["created"] < now.timestamp() - 86400 and customer["created"] < now.timestamp() - 86400
    refunded = {**copy.deepcopy(charge), "amount_refunded": charge["amount"], "refunded": True}
    add_stripe_event(tiny, "charge.refunded", refunded, int(now.timestamp()) - 60)
    add_stripe_event(tiny, "customer.deleted", copy.deepcopy(customer), int(now.timestamp()) - 30)

    second = load_source("stripe", warehouse)

    assert rows(warehouse, f"select amount_refunded, refunded, deleted from raw_stripe.charges "
                           f"where id = '{charge['id']}'") == [(charge["amount"], True, False)]
    assert rows(warehouse, "select id from raw_stripe.customers where deleted") == [(customer["id"],)]
    served = stripe.served_counts(now)
    for table in ("customers", "charges"):
        [(count, ids)] = rows(warehouse, f"select count(*), count(distinct id) from raw_stripe.{table}")
        assert count == ids == served[table]
    assert second.rows["charges"] < served["charges"]  # merged from the event, not a full re-read


def test_stripe_events_cursor_older_than_retention_reads_the_table_in_full(tiny, tmp_path, caplog):
    warehouse = tmp_path / "warehouse.duckdb"
    load_source("stripe", warehouse)
    tiny.sandbox.clock.advance(stripe_settings.EVENT_RETENTION + timedelta(days=1))
    served = tiny.sandbox.vendors["stripe"].served_counts(tiny.sandbox.clock.now())

    with caplog.at_level(logging.WARNING, logger="pipelines.sources.stripe"):
        again = load_source("stripe", warehouse)

    for table in ("customers", "charges", "payment_intents", "refunds"):
        assert again.rows[table] == served[table]
        assert any(f"{table} is read in full again" in r.getMessage() for r in caplog.records)


def test_events_expire_by_the_servers_clock_not_this_machines():
    server_now = datetime(2026, 3, 9, 12, tzinfo=UTC)  # as a response's `Date` says
    retention = stripe_settings.EVENT_RETENTION
    assert not events_expired(server_now - retention + timedelta(minutes=1), server_now, retention)
    assert events_expired(server_now - retention - timedelta(minutes=1), server_now, retention)


def test_latest_event_per_object_wins_and_other_objects_are_skipped():
    events = [  # newest first, as Stripe lists them
        {"type": "customer.deleted", "created": 30, "data": {"object": {"id": "cus_1", "object": "customer"}}},
        {"type": "customer.updated", "created": 20, "data": {"object": {"id": "cus_1", "object": "customer",
                                                                         "email": "new@example.com"}}},
        {"type": "customer.subscription.created", "created": 25,
         "data": {"object": {"id": "sub_1", "object": "subscription"}}},
        {"type": "customer.updated", "created": 10, "data": {"object": {"id": "cus_2", "object": "customer"}}},
    ]
    latest = latest_objects(events, "customer")
    assert set(latest) == {"cus_1", "cus_2"}
    assert latest["cus_1"]["deleted"] is True and latest["cus_2"]["deleted"] is False


def test_shopify_deletions_land_in_their_own_keyed_tables(tiny, tmp_path):
    shopify = tiny.sandbox.vendors["shopify"]
    world_deleted = [e["subject_id"] for e in shopify.events]  # the world's own deletions, and one more here
    destroyed = shopify.orders[0]["id"]
    shopify.events = shopify.store.table(SHOPIFY_COLUMNS["events"], [*shopify.events, {
        "id": 1, "subject_id": destroyed, "subject_type": "Order", "verb": "destroy",
        "created_at": local(tiny.sandbox.clock.now() - timedelta(hours=2)), "message": "An order was deleted.",
        "arguments": [], "body": None}, {
        "id": 2, "subject_id": shopify.orders[1]["id"], "subject_type": "Order", "verb": "confirmed",
        "created_at": local(tiny.sandbox.clock.now()), "message": "An order was confirmed.", "arguments": [],
        "body": None}])
    warehouse = tmp_path / "warehouse.duckdb"
    load_source("shopify", warehouse)
    load_source("shopify", warehouse)  # the overlap re-reads the event: merged, not duplicated

    assert sorted(rows(warehouse, "select id, source_account from raw_shopify.order_deletions")) == sorted(
        (order_id, "journey-sandbox.myshopify.com") for order_id in [*world_deleted, destroyed])
    assert rows(warehouse, "select count(*) from raw_shopify.orders") == [(len(shopify.orders),)]
    assert rows(warehouse, "select count(*), count(distinct id) from raw_shopify.customer_ids_seen") == [
        (len(shopify.customers), len(shopify.customers))]
    tables = make_pipeline("shopify", warehouse).default_schema.tables
    keys = [name for name, column in tables["order_deletions"]["columns"].items() if column.get("primary_key")]
    assert sorted(keys) == ["id", "source_account"] and tables["order_deletions"]["write_disposition"] == "merge"
    listing = tables["customer_ids_seen"]  # each shop's listing replaces its previous one
    assert [name for name, column in listing["columns"].items() if column.get("merge_key")] == ["source_account"]
    assert listing["write_disposition"] == "merge" and listing.get("x-merge-strategy") == "delete-insert"



def test_a_shop_that_lists_no_customer_replaces_its_listing_and_its_customers_read_as_deleted(tiny, tmp_path):
    """dlt loads nothing for no rows, so an empty listing would leave the previous one standing and no deleted
    customer would ever be flagged: the empty listing is one row without an id, and staging's rule (a loaded
    customer missing from its shop's last listing was deleted) then flags every one."""
    shopify, warehouse = tiny.sandbox.vendors["shopify"], tmp_path / "warehouse.duckdb"
    load_source("shopify", warehouse)
    listed = "select id from raw_shopify.customer_ids_seen order by id"
    assert rows(warehouse, listed) == [(c["id"],) for c in sorted(shopify.customers, key=lambda c: c["id"])]
    shopify.customers = shopify.store.table(SHOPIFY_COLUMNS["customers"], [])  # the shop deleted every customer
    load_source("shopify", warehouse)
    assert rows(warehouse, listed) == [(None,)]
    flagged, loaded = rows(warehouse, """  -- stg_shopify__customers' is_deleted, on the raw tables
        select count(*) filter (where listed.source_account is not null and seen.id is null), count(*)
        from raw_shopify.customers as customers
        left join (select distinct source_account from raw_shopify.customer_ids_seen) as listed
            on customers.source_account = listed.source_account
        left join raw_shopify.customer_ids_seen as seen
            on customers.source_account = seen.source_account and customers.id = seen.id""")[0]
    assert flagged == loaded > 0
