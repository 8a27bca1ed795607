"""Landed webhooks merged with pulled data: per object the newest vendor version wins, a late webhook
never overwrites fresher data, push and pull never double count; after the next run the mart is the truth."""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.load import load_source, settings_from_index
from sandbox.server import SandboxServer
from sandbox.truth import order_rows
from sandbox.vendors.shopify import SHOP_DOMAIN
from sandbox.webhooks import Delivery, deliveries_between
from sandbox.world import World
from tests.environment import environment
from tests.webhooks.conftest import receiver_secrets, sandbox_control, wait_delivered
from tests.webhooks.test_crash import free_port, start_receiver
from webhooks.landing import Landing
from webhooks.merge import merge_landed, ops_path
from webhooks.settings import SECRET_KEYS, TORN_WRITE_PAUSE_ENV, env_name, landing_path

pytestmark = [pytest.mark.webhooks, pytest.mark.slow]
SEED, PEOPLE = 31, 150


def pointed_at(server: SandboxServer):
    return environment(settings_from_index(server.index(), destinations=False))


def record(delivery: Delivery, body: bytes | None = None, event_id: str | None = None) -> dict:
    """What the receiver lands for a delivery (it is tested on its own in test_receiver.py)."""
    return {"vendor": delivery.vendor, "topic": delivery.topic, "event_id": event_id or delivery.event_id,
            "account": SHOP_DOMAIN if delivery.vendor == "shopify" else None,
            "received_at": datetime.now(UTC).isoformat(), "body": (body or delivery.body).decode()}


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def raw_state(query: Callable[..., list[tuple]]) -> dict[str, list[tuple]]:
    return {table: sorted(query(f"select * exclude (_dlt_load_id, _dlt_id) from {table}"), key=repr)
            for table in ("raw_shopify.orders", "raw_stripe.charges")}


def test_the_newest_version_per_object_wins_and_a_late_webhook_never_overwrites(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    newest_version_wins(tmp_path, warehouse, lambda sql, params=None: query(warehouse, sql, params))


def newest_version_wins(tmp_path: Path, warehouse: Path, query: Callable[..., list[tuple]]) -> None:
    """The scenario on the warehouse the environment configures (DuckDB here, BigQuery in tests/bigquery);
    `query(sql, params)` reads its raw tables, in DuckDB's SQL."""
    world = World.build(SEED, PEOPLE)
    with SandboxServer(world, mode="bench") as server, pointed_at(server):
        load_source("shopify", warehouse)
        load_source("stripe", warehouse)
        clock = server.sandbox.clock.now()
        deliveries = deliveries_between(server.sandbox.vendors, clock - timedelta(days=3650), clock)
    landing = Landing(tmp_path / "landing")
    pulled = raw_state(query)

    # every event of the world pushed too: all of it is in the pulled data already
    for delivery in deliveries:
        landing.append(record(delivery))
    result = merge_landed(warehouse, landing.folder)
    assert result.landed == len(deliveries) and not result.applied and result.waiting == 0
    assert set(result.outcomes) <= {"older_than_pulled", "superseded"}
    assert raw_state(query) == pulled

    # news from after the pull: an order refunded, a new order, a charge refunded
    order_delivery = next(d for d in deliveries if d.vendor == "shopify" and d.topic == "orders/create")
    order = json.loads(order_delivery.body)
    pulled_at = datetime.fromisoformat(order["updated_at"])
    line_items = query("select count(*) from raw_shopify.orders__line_items li join raw_shopify.orders o "
                       "on li._dlt_parent_id = o._dlt_id where o.id = ?", [order["id"]])
    refunded = {**order, "financial_status": "refunded", "updated_at": (pulled_at + timedelta(hours=2)).isoformat()}
    new_order = {**copy.deepcopy(order), "id": 99_000_000_001, "name": "#webhook",
                 "updated_at": (pulled_at + timedelta(hours=1)).isoformat()}
    charge_event = next(json.loads(d.body) for d in deliveries if d.topic == "charge.succeeded")
    cursor = max(datetime.fromtimestamp(json.loads(d.body)["created"], UTC) for d in deliveries if d.vendor == "stripe")
    charge = charge_event["data"]["object"]
    refund_event = {**charge_event, "id": "evt_webhook_refund", "type": "charge.refunded",
                    "created": int(clock.timestamp()) + 3600,  # after the pull's events cursor (the sandbox clock)
                    "data": {"object": {**charge, "amount_refunded": charge["amount"], "refunded": True}}}
    news = [(order_delivery, refunded, "shop-evt-refunded"), (order_delivery, new_order, "shop-evt-new"),
            (Delivery("stripe", "charge.refunded", "evt_webhook_refund", clock, b""), refund_event, None)]
    for delivery, payload, event_id in news:
        landing.append(record(delivery, json.dumps(payload).encode(), event_id))
    result = merge_landed(warehouse, landing.folder)
    assert dict(result.applied) == {"orders": 2, "charges": 1} and dict(result.outcomes) == {"applied": 3}
    assert query("select financial_status from raw_shopify.orders where id = ?", [order["id"]]) == [
        ("refunded",)]
    assert query("select count(*) from raw_shopify.orders where id = ?", [new_order["id"]]) == [(1,)]
    assert query("select count(*) from raw_shopify.orders__line_items li join raw_shopify.orders o "
                 "on li._dlt_parent_id = o._dlt_id where o.id = ?", [order["id"]]) == line_items  # replaced, not added
    assert query("select amount_refunded, refunded from raw_stripe.charges where id = ?",
                 [charge["id"]]) == [(charge["amount"], True)]

    # late webhooks: older than what was merged, or than what was pulled; none may overwrite
    stale_order = {**order, "financial_status": "voided", "updated_at": (pulled_at + timedelta(hours=1)).isoformat()}
    stale_charge = {**refund_event, "id": "evt_webhook_late", "created": refund_event["created"] - 60,
                    "data": {"object": {**charge, "amount_refunded": 1}}}
    before_pull = {**refund_event, "id": "evt_webhook_before_pull", "created": int(cursor.timestamp()) - 60,
                   "data": {"object": {**charge, "id": "ch_other_pulled", "amount_refunded": 1}}}
    for delivery, payload, event_id in [(order_delivery, stale_order, "shop-evt-stale"),
                                        (news[2][0], stale_charge, "evt_webhook_late"),
                                        (news[2][0], before_pull, "evt_webhook_before_pull")]:
        landing.append(record(delivery, json.dumps(payload).encode(), event_id))
    result = merge_landed(warehouse, landing.folder)
    assert not result.applied
    assert dict(result.outcomes) == {"superseded": 2, "older_than_pulled": 1}
    assert query("select financial_status from raw_shopify.orders where id = ?", [order["id"]]) == [
        ("refunded",)]
    assert query("select amount_refunded from raw_stripe.charges where id = ?",
                 [charge["id"]]) == [(charge["amount"],)]
    assert query("select count(*) from raw_stripe.charges where id = 'ch_other_pulled'") == [(0,)]

    # merging again changes nothing; one row per accepted delivery, each with what became of it
    again = merge_landed(warehouse, landing.folder)
    assert (again.landed, dict(again.applied), dict(again.outcomes)) == (0, {}, {})
    with duckdb.connect(str(ops_path(warehouse)), read_only=True) as con:  # kept beside BigQuery's raw tables
        assert con.execute("select count(*), count(distinct delivery_key), count(outcome) "
                           "from ops.webhook_landing").fetchall() == [(len(deliveries) + 6,) * 3]


def fct_orders_equal_the_truth(warehouse: Path, world: World) -> None:
    mart = {order_id: rest for order_id, *rest in query(
        warehouse, "select order_id, is_counted, gross_revenue, refunds, net_revenue from marts.fct_orders")}
    truth = order_rows(world)
    assert len(mart) == len(truth)
    for order in truth:
        counted, gross, refunds, net = mart[order["order_id"]]
        assert counted == order["counted"], order
        if counted:
            assert (gross, refunds, net) == (order["gross"], order["refunds"], order["net"]), order


def test_pushes_before_the_first_pull_and_between_pulls_give_the_truth(tmp_path, prefect_server):
    """Webhooks landed before anything was pulled, then a full run: the truth. The world moves on ten days and
    pushes what happened to a receiver killed (SIGKILL) and restarted again and again meanwhile; a run that
    pulls only ActiveCampaign merges the pushes: the truth ten days later."""
    from flows.elt import elt_flow

    world = World.build(SEED, PEOPLE)
    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "marts.duckdb"
    landing, log, port, rng = landing_path(warehouse), tmp_path / "receiver.log", free_port(), random.Random(3)
    with SandboxServer(world, mode="bench") as server, pointed_at(server):
        env = {**os.environ, TORN_WRITE_PAUSE_ENV: "0.004",
               **{env_name(SECRET_KEYS[v]): secret for v, secret in receiver_secrets(server.index()).items()}}
        receiver = start_receiver(port, landing, env, log)
        try:
            sandbox_control(server.url, "webhooks", url=f"http://127.0.0.1:{port}", backoff_s=0.02,
                            max_backoff_s=0.5)
            queued = sandbox_control(server.url, "webhooks/replay", since="2000-01-01T00:00:00Z")["queued"]
            assert wait_delivered(server.url)["acknowledged"] == queued
            pushed_only = merge_landed(warehouse, landing)  # `journey webhooks merge`, before any pull
            shopify = server.sandbox.vendors["shopify"]
            assert (pushed_only.applied["orders"], pushed_only.applied["order_deletions"]) == (
                len(shopify.orders), len(shopify.events))
            assert pushed_only.waiting == queued - len(shopify.orders) - len(shopify.events)  # Stripe: account?

            first = elt_flow(warehouse=str(warehouse), published=str(published))
            assert first.webhooks.waiting == 0 and first.webhooks.outcomes["older_than_pulled"] > 0
            fct_orders_equal_the_truth(warehouse, world)

            start = server.sandbox.clock.now()
            sandbox_control(server.url, "advance", days=10)  # new orders, refunds, deletions: pushed
            for _ in range(12):  # ... while the receiver dies and comes back
                time.sleep(rng.uniform(0.0, 0.2))
                receiver.send_signal(signal.SIGKILL)
                receiver.wait()
                receiver = start_receiver(port, landing, env, log)
            if wait_delivered(server.url)["failed"]:  # a vendor that gave up: resend the window (Shopify's
                sandbox_control(server.url, "webhooks/replay", since=start.isoformat())  # replay, Stripe's resend)
                wait_delivered(server.url)
            news = deliveries_between(server.sandbox.vendors, start, server.sandbox.clock.now())
            second = elt_flow(sources=["activecampaign"], warehouse=str(warehouse), published=str(published))
        finally:
            receiver.terminate()
            receiver.wait()
    assert second.webhooks.applied["orders"] > 0 and second.webhooks.applied["charges"] > 0
    assert query(warehouse, "select count(*), count(outcome) from ops.webhook_landing") == [
        (queued + len(news), queued + len(news))]
    fct_orders_equal_the_truth(warehouse, World.build(SEED, PEOPLE, days=10))


def test_a_labelled_accounts_pushes_take_its_label(tmp_path, monkeypatch):
    """One shop and one Stripe account configured with labels (`SOURCES__SHOPIFY__ACCOUNT`, ...): the pulls
    stamp their rows with the labels, the pushes name the shop's domain and the Stripe account; a push still
    updates the pulled row, never adds it again under the vendor's id. A Stripe Connect event keeps the
    connected account it names."""
    world = World.build(SEED, PEOPLE)
    warehouse, landing = tmp_path / "warehouse.duckdb", Landing(tmp_path / "landing")
    with SandboxServer(world, mode="bench") as server, pointed_at(server):
        monkeypatch.setenv("SOURCES__SHOPIFY__ACCOUNT", "flagship")
        monkeypatch.setenv("SOURCES__STRIPE__ACCOUNT", "flagship_payments")
        load_source("shopify", warehouse)
        load_source("stripe", warehouse)
        clock = server.sandbox.clock.now()
        deliveries = deliveries_between(server.sandbox.vendors, clock - timedelta(days=3650), clock)
        stripe_account = server.sandbox.vendors["stripe"].account_id
    delivery = next(d for d in deliveries if d.topic == "orders/create")
    order = json.loads(delivery.body)
    refunded = {**order, "financial_status": "refunded",
                "updated_at": (datetime.fromisoformat(order["updated_at"]) + timedelta(days=400)).isoformat()}
    landing.append(record(delivery, json.dumps(refunded).encode(), "shop-evt-labelled"))
    charge_delivery = next(d for d in deliveries if d.topic == "charge.succeeded")
    event = json.loads(charge_delivery.body)
    charge = event["data"]["object"]
    later = int(clock.timestamp()) + 3600  # after the pull's events cursor: news
    refund = {**event, "id": "evt_labelled_refund", "type": "charge.refunded", "created": later,
              "data": {"object": {**charge, "amount_refunded": charge["amount"], "refunded": True}}}
    connect = {**event, "id": "evt_connected", "created": later, "account": "acct_connected",
               "data": {"object": {**charge, "id": "ch_connected"}}}
    for payload in (refund, connect):
        landing.append({**record(charge_delivery, json.dumps(payload).encode(), payload["id"]),
                        "topic": payload["type"], "account": payload.get("account") or stripe_account})
    result = merge_landed(warehouse, landing.folder)  # reads the labels from the configuration
    assert dict(result.applied) == {"orders": 1, "charges": 2}
    assert query(warehouse, "select source_account, financial_status from raw_shopify.orders where id = ?",
                 [order["id"]]) == [("flagship", "refunded")]
    assert query(warehouse, "select count(*) from raw_shopify.orders where source_account <> 'flagship'") == [(0,)]
    assert query(warehouse, "select source_account, amount_refunded from raw_stripe.charges where id = ?",
                 [charge["id"]]) == [("flagship_payments", charge["amount"])]
    assert query(warehouse, "select source_account from raw_stripe.charges where id = 'ch_connected'") == [
        ("acct_connected",)]
