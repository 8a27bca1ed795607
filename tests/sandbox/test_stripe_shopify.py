"""Stripe's payment lists and events, and Shopify's transactions, scopes and events, over real HTTP:
coherent with each other and with the world, and paged by each vendor's own rules."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import requests

from sandbox.http import Request
from sandbox.server import SandboxServer
from sandbox.truth import export, served_count_rows
from sandbox.vendors.shopify import COLUMNS, ORDER_WINDOW, Shopify
from sandbox.vendors.stripe import EVENT_RETENTION, fee, minor
from sandbox.world import World

pytestmark = pytest.mark.sandbox

SEED = 21
LISTS = ("customers", "charges", "payment_intents", "refunds", "balance_transactions", "events")


@pytest.fixture(scope="module")
def world() -> World:
    return World.build(SEED, 150)


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[SandboxServer]:
    with SandboxServer(world, mode="bench") as server:
        yield server


@pytest.fixture(scope="module")
def session() -> requests.Session:
    return requests.Session()


def stripe_get(server: SandboxServer, session: requests.Session, resource: str, **params) -> requests.Response:
    index = server.index()["stripe"]
    return session.get(f"{index['base_url']}/v1/{resource}", params=params, timeout=10,
                       headers={"Authorization": f"Bearer {index['credentials']['api_key']}",
                                "Stripe-Version": "2022-11-15"})


def stripe_all(server: SandboxServer, session: requests.Session, resource: str, **params) -> list[dict]:
    records: list[dict] = []
    while True:
        page = stripe_get(server, session, resource, limit=100, **params).json()
        assert page["object"] == "list" and page["url"] == f"/v1/{resource}"
        records += page["data"]
        if not page["has_more"]:
            return records
        params["starting_after"] = page["data"][-1]["id"]


def shopify_all(server: SandboxServer, session: requests.Session, resource: str, token: str | None = None,
                **params) -> list[dict]:
    index = server.index()["shopify"]
    headers = {"X-Shopify-Access-Token": token or index["credentials"]["access_token"]}
    response = session.get(f"{index['base_url']}/{resource}.json", params={"limit": 250, **params},
                           headers=headers, timeout=10)
    records = []
    while True:
        assert response.status_code == 200, response.text
        records += response.json()[resource]
        if "next" not in response.links:
            return records
        response = session.get(response.links["next"]["url"], headers=headers, timeout=10)


@pytest.fixture(scope="module")
def stripe(server: SandboxServer, session: requests.Session) -> dict[str, list[dict]]:
    return {resource: stripe_all(server, session, resource) for resource in LISTS}


@pytest.fixture(scope="module")
def orders(server: SandboxServer, session: requests.Session) -> dict[int, dict]:
    return {o["id"]: o for o in shopify_all(server, session, "orders", status="any")}


def test_lists_are_newest_first_without_repeats(stripe):
    for resource, records in stripe.items():
        keys = [(r["created"], r["id"]) for r in records]
        assert keys == sorted(keys, reverse=True), resource
        assert len({r["id"] for r in records}) == len(records), resource
        assert records, resource


@pytest.fixture(scope="module")
def order_of_charge(server: SandboxServer) -> dict[str, int]:
    return server.sandbox.vendors["stripe"].order_of_charge


def test_every_charge_that_pays_an_order_matches_it(stripe, orders, order_of_charge):
    charges = stripe["charges"]
    assert {c["status"] for c in charges} == {"succeeded", "failed"}
    for charge in charges:
        if charge["id"] not in order_of_charge:  # made outside the shop: no order, no intent, no metadata
            assert charge["metadata"] == {} and charge["payment_intent"] is None
            continue
        order = orders[order_of_charge[charge["id"]]]
        paid = order["total_price_set"]["presentment_money"]  # charged in what the buyer paid in
        assert charge["currency"] == order["presentment_currency"].lower() == paid["currency_code"].lower()
        assert charge["amount"] == minor(Decimal(paid["amount"]), charge["currency"])
        assert charge["metadata"].get("shopify_order_id", str(order["id"])) == str(order["id"])


def test_payment_intents_line_up_with_charges_and_shopify_transactions(stripe, orders, order_of_charge):
    intents = {pi["id"]: pi for pi in stripe["payment_intents"]}
    by_intent = defaultdict(list)
    for charge in stripe["charges"]:
        if charge["payment_intent"]:
            by_intent[charge["payment_intent"]].append(charge)
    assert set(by_intent) == set(intents)
    for intent_id, charges in by_intent.items():
        intent = intents[intent_id]
        newest = max(charges, key=lambda c: c["created"])
        assert intent["latest_charge"] == newest["id"]
        paid = [c for c in charges if c["status"] == "succeeded"]
        assert intent["status"] == ("succeeded" if paid else "requires_payment_method")
        assert intent["amount_received"] == (intent["amount"] if paid else 0)
    charges = {c["id"]: c for c in stripe["charges"]}
    stripe_sales = [t for o in orders.values() for t in o["transactions"] if t["gateway"] == "stripe"]
    # every charge that pays an order has its Shopify sale; sales charged in another account have no charge
    assert len([t for t in stripe_sales if t["authorization"] not in charges]) > 0
    assert sum(1 for t in stripe_sales if t["authorization"] in charges) + sum(
        1 for t in stripe_sales if not t["authorization"]) == len(order_of_charge)
    for sale in (t for t in stripe_sales if t["authorization"] in charges):
        charge = charges[sale["authorization"]]
        assert sale["kind"] == "sale"
        assert sale["status"] == ("success" if charge["status"] == "succeeded" else "failure")
        assert sale["receipt"]["payment_intent"] == charge["payment_intent"]
        assert order_of_charge[charge["id"]] == sale["order_id"]
    for sale in (t for t in stripe_sales if not t["authorization"] and t["receipt"]):
        assert sale["receipt"]["payment_intent"] in intents
    counted_by_stripe = [o for o in orders.values() if "stripe" in o["payment_gateway_names"]]
    assert all(any(t["status"] == "success" for t in o["transactions"]) for o in counted_by_stripe)


def test_refunds_sum_to_amount_refunded_and_match_shopify_refunds(stripe, orders, order_of_charge):
    charges = {c["id"]: c for c in stripe["charges"]}
    refunded = defaultdict(int)
    for refund in stripe["refunds"]:
        charge = charges[refund["charge"]]
        assert charge["status"] == "succeeded" and refund["status"] == "succeeded"
        assert refund["payment_intent"] == charge["payment_intent"]
        refunded[refund["charge"]] += refund["amount"]
    for charge in charges.values():
        assert charge["amount_refunded"] == refunded[charge["id"]]
        assert charge["refunded"] == (charge["amount_refunded"] == charge["amount"] and charge["amount"] > 0)
    assert any(c["refunded"] for c in charges.values()) and any(0 < c["amount_refunded"] < c["amount"]
                                                               for c in charges.values())
    paid_here = set(order_of_charge.values())  # orders charged in this Stripe account, not another
    shopify_refunds = {t["authorization"]: t for o in orders.values() if o["id"] in paid_here
                       for r in o["refunds"] for t in r["transactions"]
                       if t["gateway"] == "stripe" and t["status"] == "success"}
    assert set(shopify_refunds) == {r["id"] for r in stripe["refunds"]}
    for refund in stripe["refunds"]:
        assert refund["amount"] == int(Decimal(shopify_refunds[refund["id"]]["amount"]) * 100)
        processed_at = datetime.fromisoformat(shopify_refunds[refund["id"]]["processed_at"])
        assert refund["created"] == int(processed_at.timestamp())


def test_balance_transactions_net_the_fee_one_per_succeeded_charge_and_refund(stripe, server):
    transactions = stripe["balance_transactions"]
    by_source = {t["source"]: t for t in transactions}
    succeeded = [c for c in stripe["charges"] if c["status"] == "succeeded"]
    assert len(transactions) == len(succeeded) + len(stripe["refunds"]) == len(by_source)
    now = int(server.sandbox.clock.now().timestamp())
    for t in transactions:
        assert t["net"] == t["amount"] - t["fee"]
        assert t["status"] == ("available" if t["available_on"] <= now else "pending")
    settled = {o["id"]: minor(Decimal(o["total_price_set"]["shop_money"]["amount"]), "usd")
               for o in server.sandbox.vendors["shopify"].orders}
    order_of = server.sandbox.vendors["stripe"].order_of_charge
    for charge in succeeded:
        t = by_source[charge["id"]]
        # settled in the account's currency (USD): a charge in another converted at the order's own rate
        amount = charge["amount"] if charge["currency"] == "usd" else settled[order_of[charge["id"]]]
        assert (t["type"], t["reporting_category"], t["amount"], t["currency"]) == ("charge", "charge", amount, "usd")
        assert t["fee"] == fee(amount) == round(amount * 0.029 + 30)
        assert t["exchange_rate"] is None if charge["currency"] == "usd" else t["exchange_rate"] > 0
        assert charge["balance_transaction"] == t["id"]
    for refund in stripe["refunds"]:
        t = by_source[refund["id"]]
        assert (t["type"], t["fee"], t["currency"]) == ("refund", 0, "usd") and t["amount"] < 0
        assert refund["currency"] != "usd" or t["amount"] == -refund["amount"]
    assert {t["status"] for t in transactions} == {"available", "pending"}
    assert fee(1000) == 59 and fee(8893) == 288


def test_events_keep_30_days_and_show_objects_as_of_the_event(stripe, server):
    events = stripe["events"]
    oldest = (server.sandbox.clock.now() - EVENT_RETENTION).timestamp()
    assert all(e["created"] >= oldest for e in events)
    everything = server.sandbox.vendors["stripe"].lists["events"]
    assert any(e["created"] < oldest for e in everything)  # there were older ones, not served
    assert {e["id"] for e in events} == {e["id"] for e in everything if e["created"] >= oldest}
    assert {"charge.succeeded", "charge.failed", "charge.refunded", "customer.created"} <= {
        e["type"] for e in everything}
    for event in (e for e in everything if e["type"] == "charge.succeeded"):
        assert event["data"]["object"]["amount_refunded"] == 0
    charges = {c["id"]: c for c in stripe["charges"]}
    for event in (e for e in everything if e["type"] == "charge.refunded"):
        charge, previous = event["data"]["object"], event["data"]["previous_attributes"]
        assert previous["amount_refunded"] < charge["amount_refunded"] <= charges[charge["id"]]["amount_refunded"]
        assert ("refunded" in previous) == charge["refunded"]


def test_events_filter_by_type_and_types(server, session, stripe):
    served_types = {e["type"] for e in stripe["events"]}
    for kind in served_types:
        assert {e["type"] for e in stripe_all(server, session, "events", type=kind)} == {kind}
    charges = stripe_all(server, session, "events", type="charge.*")
    assert charges and all(e["type"].startswith("charge.") for e in charges)
    both = stripe_all(server, session, "events", **{"types[]": ["charge.succeeded", "customer.created"]})
    assert {e["type"] for e in both} <= {"charge.succeeded", "customer.created"}
    assert len(both) == sum(e["type"] in ("charge.succeeded", "customer.created") for e in stripe["events"])
    refused = stripe_get(server, session, "events", type="charge.failed", **{"types[]": "charge.succeeded"})
    assert refused.status_code == 400


@pytest.mark.parametrize("resource", ["payment_intents", "refunds", "balance_transactions", "events"])
def test_new_lists_refuse_bad_paging_and_page_both_ways(server, session, stripe, resource):
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"starting_after": "x_1", "ending_before": "x_2"},
                   {"starting_after": "x_missing"}, {"created[gte]": "yesterday"}):
        response = stripe_get(server, session, resource, **params)
        assert response.status_code == 400, params
        assert response.json()["error"]["type"] == "invalid_request_error"
    records = stripe[resource]
    middle = records[len(records) // 2]
    after = stripe_get(server, session, resource, limit=3, starting_after=middle["id"]).json()["data"]
    before = stripe_get(server, session, resource, limit=3, ending_before=middle["id"]).json()["data"]
    position = records.index(middle)
    assert after == records[position + 1:position + 4]
    assert before == records[max(0, position - 3):position]
    bound = middle["created"]
    newer = stripe_all(server, session, resource, **{"created[gt]": bound})
    assert newer == [r for r in records if r["created"] > bound]


def test_list_filters_by_their_own_fields(server, session, stripe):
    refund = stripe["refunds"][0]
    assert [r["id"] for r in stripe_all(server, session, "refunds", charge=refund["charge"])] == [
        r["id"] for r in stripe["refunds"] if r["charge"] == refund["charge"]]
    refunds = stripe_all(server, session, "balance_transactions", type="refund")
    assert len(refunds) == len(stripe["refunds"])
    usd = next(r for r in stripe["refunds"] if r["currency"] == "usd")
    assert stripe_all(server, session, "balance_transactions", source=usd["id"])[0]["amount"] == -usd["amount"]


def test_shopify_hides_orders_older_than_60_days_without_read_all_orders(server, session, orders):
    vendor = server.sandbox.vendors["shopify"]
    recent = shopify_all(server, session, "orders", token=vendor.token_without_read_all_orders, status="any")
    oldest = server.sandbox.clock.now() - ORDER_WINDOW
    expected = {i for i, o in orders.items() if datetime.fromisoformat(o["created_at"]) >= oldest}
    assert {o["id"] for o in recent} == expected
    assert 0 < len(expected) < len(orders)
    assert vendor.token_without_read_all_orders not in str(server.index())
    index = server.index()["shopify"]
    scopes_url = index["base_url"].split("/admin/")[0] + "/admin/oauth/access_scopes.json"
    handles = lambda token: {s["handle"] for s in session.get(  # noqa: E731
        scopes_url, headers={"X-Shopify-Access-Token": token}, timeout=10).json()["access_scopes"]}
    assert "read_all_orders" in handles(index["credentials"]["access_token"])
    assert "read_all_orders" not in handles(vendor.token_without_read_all_orders)


def test_shopify_deleted_order_events_envelope(server, session, world):
    index = server.index()["shopify"]
    since = world.clock - timedelta(days=60)
    response = session.get(f"{index['base_url']}/events.json", timeout=10,
                           params={"filter": "Order", "verb": "destroy", "created_at_min": since.isoformat()},
                           headers={"X-Shopify-Access-Token": index["credentials"]["access_token"]})
    assert response.status_code == 200 and "Link" not in response.headers
    events = response.json()["events"]
    assert [e["subject_id"] for e in events] == [o.order_id for o in world.deleted_orders() if o.deleted_at >= since]
    assert events and all(e["subject_type"] == "Order" and e["verb"] == "destroy" and e["message"] for e in events)


def test_shopify_events_page_and_filter(world):
    """The world deletes nothing yet, so the paging of events is shown on a vendor given some."""
    shopify = Shopify(world)
    start = world.clock - timedelta(days=10)
    events = [{"id": 100 + i, "subject_id": 5_200_000_000 + i, "subject_type": "Order" if i % 3 else "Product",
               "verb": "destroy", "created_at": (start + timedelta(days=i)).isoformat(), "message": "deleted"}
              for i in range(9)]
    shopify.events = shopify.store.table(COLUMNS["events"], events)

    def get(url: str, **query: str) -> tuple[list[dict], str | None]:
        path, _, raw = url.partition("?")
        request = Request("GET", path, {**Request.parse_query(raw), **{k: [v] for k, v in query.items()}},
                          {"x-shopify-access-token": shopify.token}, b"", "http://sandbox", now=world.clock)
        response = shopify.handle(request)
        link = response.headers.get("Link")
        return json.loads(response.body)["events"], link[1:link.index(">")].removeprefix("http://sandbox/shopify") \
            if link else None

    seen, url = [], "/admin/api/2025-01/events.json?filter=Order&verb=destroy&limit=2"
    while url:
        page, url = get(url)
        seen += page
    assert [e["id"] for e in seen] == [100 + i for i in range(9) if i % 3]
    later, _ = get("/admin/api/2025-01/events.json", filter="Order", created_at_min=(start + timedelta(days=5))
                   .isoformat())
    assert [e["id"] for e in later] == [105, 107, 108]


def test_served_counts_truth_matches_what_is_served(world, stripe, orders, server, session):
    counts = {(r["vendor"], r["endpoint"]): r["records"] for r in served_count_rows(world)}
    for resource in LISTS:
        assert counts[("stripe", resource)] == len(stripe[resource])
    assert counts[("shopify", "orders")] == len(orders)
    assert counts[("shopify", "customers")] == len(shopify_all(server, session, "customers"))


def test_writes_received_are_empty_for_read_only_vendors(server, session):
    for vendor in ("stripe", "shopify", "hubspot", "activecampaign"):
        assert session.get(f"{server.url}/_sandbox/received/{vendor}", timeout=10).json() == {
            "raw": [], "deduplicated": []}
    assert session.get(f"{server.url}/_sandbox/received/nobody", timeout=10).status_code == 404


def test_windows_follow_the_sandbox_clock_when_advanced(session):
    world = World.build(SEED, 40)
    with SandboxServer(world, mode="bench") as fresh:
        before = stripe_all(fresh, session, "events")
        recent = lambda: shopify_all(fresh, session, "orders", status="any",  # noqa: E731
                                     token=fresh.sandbox.vendors["shopify"].token_without_read_all_orders)
        recent_before = recent()
        assert session.post(fresh.url + "/_sandbox/advance", params={"days": 20}, timeout=10).ok
        after = stripe_all(fresh, session, "events")
        start = world.clock.timestamp()
        oldest = (world.clock + timedelta(days=20) - EVENT_RETENTION).timestamp()
        # events of the start that are still kept are served unchanged; the others happened since
        assert [e for e in after if e["created"] <= start] == [e for e in before if e["created"] >= oldest]
        assert all(e["created"] > start for e in after if e["id"] not in {b["id"] for b in before})
        assert len([e for e in after if e["created"] <= start]) < len(before)
        assert {t["status"] for t in stripe_all(fresh, session, "balance_transactions")
                if t["created"] <= start} == {"available"}
        assert len([o for o in recent() if o["id"] in {r["id"] for r in recent_before}]) < len(recent_before)


def test_truth_export_writes_served_counts(world, tmp_path):
    written = {path.name for path in export(world, tmp_path)}
    assert {"payments.csv", "served_counts.csv"} <= written
    with (tmp_path / "served_counts.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["vendor", "endpoint", "records"]
    assert {(r["vendor"], r["endpoint"]) for r in rows} >= {("stripe", name) for name in LISTS} | {
        ("shopify", "orders"), ("shopify", "customers")}
    with (tmp_path / "payments.csv").open() as handle:
        payment = next(csv.DictReader(handle))
    assert datetime.fromisoformat(payment["created_at"]).utcoffset() == timedelta(0)
