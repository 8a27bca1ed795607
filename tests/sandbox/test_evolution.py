"""The world moves on when the sandbox's clock is advanced: new people, orders, refunds and CRM edits appear
at their own times, a later clock continues an earlier one's world without rewriting it, and what a sandbox
serves after `advance` is the world `journey sandbox truth --days` describes."""

from __future__ import annotations

import csv
import json
from datetime import timedelta

import pytest
import requests

from flows.cli import main
from sandbox.server import SandboxServer
from sandbox.truth import order_rows, people_rows, served_count_rows
from sandbox.vendors import served_counts_of
from sandbox.world import BULK_EDIT_BEFORE, World

SEED, PEOPLE = 5, 600


@pytest.fixture(scope="module")
def worlds() -> dict[float, World]:
    return {days: World.build(SEED, PEOPLE, days=days) for days in (0, 3, 10)}


def _orders(world: World) -> dict[int, tuple]:
    return {o.order_id: (o.person_id, o.created_at, o.total, o.email, [li.line_item_id for li in o.line_items])
            for o in world.orders()}


def test_a_later_clock_continues_the_world_and_never_renumbers_it(worlds):
    for earlier, later in ((worlds[0], worlds[3]), (worlds[3], worlds[10])):
        before, after = _orders(earlier), _orders(later)
        assert before.items() <= after.items()  # every order as it was, under the same id
        assert all(created > earlier.clock for _, created, *_ in (after[i] for i in after.keys() - before.keys()))
        ids = lambda w: {p.person_id: (p.email, p.activecampaign_contact_id, p.hubspot_contact_id,  # noqa: E731
                                       p.shopify_customer_id) for p in w.people}
        assert ids(earlier).items() <= ids(later).items()
        # a Stripe customer is made at the person's first checkout, and keeps its id
        stripe = {p.person_id: p.stripe_customer_id for p in earlier.people if p.stripe_customer_id}
        assert all(later.person(pid).stripe_customer_id == cus for pid, cus in stripe.items())
        refunds = lambda w: {r.refund_id: (r.processed_at, r.amount, r.succeeded)  # noqa: E731
                             for o in w.orders() for r in o.refunds}
        assert refunds(earlier).items() <= refunds(later).items()
        records = lambda w: {(r.vendor, r.contact_id): (r.email, r.kind) for r in w.crm_records()}  # noqa: E731
        assert records(earlier).items() <= records(later).items()
        deals = lambda w: {(d.vendor, d.deal_id): (d.name, d.created_at) for d in w.deals()}  # noqa: E731
        assert deals(earlier).items() <= deals(later).items()


def test_the_world_changes_as_days_pass(worlds):
    start, later = worlds[0], worlds[10]
    arrivals = [p for p in later.people if p.person_id > PEOPLE]
    assert arrivals and all(start.clock < p.created_at <= later.clock for p in arrivals)
    new_orders = [o for o in later.orders() if o.created_at > start.clock]
    assert len(new_orders) >= 20 and all(o.created_at <= later.clock for o in new_orders)
    assert any(o.person_id > PEOPLE for o in new_orders)  # an arrival bought
    # paid orders of the start refunded after it: the same order, updated later
    was = {o.order_id: o for o in start.orders()}
    late_refunds = [o for o in later.orders() if o.order_id in was and o.refunded != was[o.order_id].refunded]
    assert late_refunds and all(was[o.order_id].financial_status == "paid" for o in late_refunds)
    assert all(o.updated_at > start.clock for o in late_refunds)
    # nothing in the world is after its clock
    assert all(r.processed_at <= later.clock for o in later.orders() for r in o.refunds)
    assert all(t.touched_at <= later.clock for p in later.people for t in p.touches)
    # CRM contacts edited since the start
    hubspot_edits = sum(1 for p in later.people if p.in_hubspot and p.person_id <= PEOPLE
                        and p.hubspot_updated_at > start.person(p.person_id).hubspot_updated_at)
    assert hubspot_edits >= 10
    # truth follows: more people, more orders, revenue changed
    assert len(people_rows(later)) == len(later.people) > len(people_rows(start))
    assert len(order_rows(later)) > len(order_rows(start))


def test_orders_drawn_for_their_whole_life_stand_as_they_were_at_each_clock(worlds):
    """An order placed after the start and refunded a few days later is `paid` before the refund."""
    later = {o.order_id: o for o in World.build(SEED, PEOPLE, days=40).orders()}
    changed = [(o, later[o.order_id]) for o in worlds[10].orders() if o.created_at > worlds[0].clock
               and [r.refund_id for r in o.refunds] != [r.refund_id for r in later[o.order_id].refunds]]
    assert changed, "no order placed after the start was refunded between day 10 and day 40"
    for then, final in changed:
        assert then.refunded < final.refunded or not all(r.succeeded for r in final.refunds)
        assert then.financial_status in ("paid", "partially_refunded", "authorized")
        assert final.updated_at > worlds[10].clock


def test_an_advanced_sandbox_serves_the_world_of_its_clock_and_keeps_what_clients_wrote(worlds):
    with SandboxServer(World.build(SEED, PEOPLE), mode="bench") as server:
        index = server.index()
        ac = index["activecampaign"]
        headers = {"Api-Token": ac["credentials"]["api_token"]}
        contact = {"contact": {"email": "written.before@example.com", "firstName": "Wren"}}
        assert requests.post(f"{ac['base_url']}/contact/sync", json=contact, headers=headers,
                             timeout=10).ok
        moved = requests.post(f"{server.url}/_sandbox/advance", params={"days": 10}, timeout=60)
        assert moved.ok and moved.json()["clock"] == worlds[10].clock.isoformat()
        vendors = server.sandbox.vendors
        truth = {(r["vendor"], r["endpoint"]): r["records"] for r in served_count_rows(worlds[10])}
        truth[("activecampaign", "contacts")] += 1  # the contact written before
        assert truth == {(name, endpoint): records for name, vendor in vendors.items()
                         for endpoint, records in served_counts_of(vendor).items()}
        received = requests.get(f"{server.url}/_sandbox/received/activecampaign", timeout=10).json()
        assert [c["email"] for c in received["raw"]] == ["written.before@example.com"]
        # the Shopify listing holds the orders placed since the start
        shop = index["shopify"]
        since = worlds[0].clock + timedelta(seconds=1)
        orders = requests.get(f"{shop['base_url']}/orders.json", headers={
            "X-Shopify-Access-Token": shop["credentials"]["access_token"]}, params={
            "status": "any", "limit": 250, "created_at_min": since.isoformat()}, timeout=10)
        assert {o["id"] for o in orders.json()["orders"]} == {
            o.order_id for o in worlds[10].orders() if o.created_at >= since}


def test_truth_days_writes_the_world_after_that_many_days(worlds, tmp_path, capsys):
    assert main(["sandbox", "truth", "--seed", str(SEED), "--people", str(PEOPLE), "--days", "10",
                 "--out", str(tmp_path)]) == 0
    with (tmp_path / "people.csv").open() as handle:
        people = list(csv.DictReader(handle))
    assert len(people) == len(worlds[10].people)
    expected = {str(r["person_id"]): str(r["lifetime_net_revenue"]) for r in people_rows(worlds[10])}
    assert {r["person_id"]: r["lifetime_net_revenue"] for r in people} == expected
    assert json.dumps(expected) != json.dumps({str(r["person_id"]): str(r["lifetime_net_revenue"])
                                               for r in people_rows(worlds[0])})


def test_advance_refuses_to_go_back(worlds):
    with SandboxServer(World.build(SEED, 30), mode="bench") as server:
        with pytest.raises(ValueError, match="only moves forward"):
            server.sandbox.advance(timedelta(days=-1))
    with pytest.raises(ValueError, match="only forward"):
        World.build(SEED, 30, days=-1)


def test_deleted_records_are_listed_no_more_and_their_deletion_is_served(worlds):
    world = worlds[10]
    deleted_orders = world.deleted_orders()
    gone = [p for p in world.people if p.stripe_deleted_at]
    assert deleted_orders and gone
    assert all(o.financial_status == "voided" and o.deleted_at > o.cancelled_at for o in deleted_orders)
    with SandboxServer(world, mode="bench") as server:
        index = server.index()
        shop, stripe = index["shopify"], index["stripe"]
        headers = {"X-Shopify-Access-Token": shop["credentials"]["access_token"]}
        listed, url, params = set(), f"{shop['base_url']}/orders.json", {"status": "any", "limit": 250}
        while url:
            page = requests.get(url, params=params, headers=headers, timeout=10)
            listed |= {o["id"] for o in page.json()["orders"]}
            url, params = page.links.get("next", {}).get("url"), None
        assert listed == {o.order_id for o in world.orders()} and not listed & {o.order_id for o in deleted_orders}
        events = requests.get(f"{shop['base_url']}/events.json", headers=headers, timeout=10, params={
            "filter": "Order", "verb": "destroy", "limit": 250}).json()["events"]
        assert [(e["subject_id"], e["verb"]) for e in events] == [(o.order_id, "destroy") for o in deleted_orders]
        auth = {"Authorization": f"Bearer {stripe['credentials']['api_key']}"}
        customers = requests.get(f"{stripe['base_url']}/v1/customers", params={"limit": 100}, headers=auth,
                                 timeout=10).json()
        ids = {c["id"] for c in customers["data"]}
        assert not ids & {p.stripe_customer_id for p in gone}
        kept = world.clock - timedelta(days=30)  # Stripe keeps 30 days of events
        deletions = requests.get(f"{stripe['base_url']}/v1/events", params={"type": "customer.deleted", "limit": 100},
                                 headers=auth, timeout=10).json()["data"]
        assert {e["data"]["object"]["id"] for e in deletions} == {
            p.stripe_customer_id for p in gone if p.stripe_deleted_at >= kept}
    people = {int(r["person_id"]): r for r in people_rows(world)}
    assert all(people[p.person_id]["stripe_customer_id"] == "" for p in gone)


def test_a_default_world_holds_every_hard_case_at_least_20_times():
    world = World.build(SEED, 2000)  # the default size of `journey sandbox`
    people, orders = world.people, world.orders()
    hard = {
        "deleted Shopify orders": len(world.deleted_orders()),
        "deleted Stripe customers": sum(1 for p in people if p.stripe_deleted_at),
        "archived HubSpot contacts": sum(1 for r in world.crm_records() if r.kind == "archived"),
        "deleted ActiveCampaign contacts": sum(1 for r in world.crm_records() if r.kind == "deleted"),
        "HubSpot merges": sum(1 for r in world.crm_records() if r.kind == "merged"),
        "emails differing in case or spaces": sum(1 for p in people if p.hubspot_email and p.hubspot_email != p.email),
        "Stripe payers without an email": sum(1 for p in people if p.stripe_customer_id and p.stripe_email is None),
        "guest checkouts": sum(1 for p in people if p.orders and not p.has_shopify_account),
        "partial refunds": sum(1 for o in orders if o.financial_status == "partially_refunded"),
        "full refunds": sum(1 for o in orders if o.financial_status == "refunded"),
        "cancelled orders": sum(1 for o in orders if o.cancelled_at),
        "failed then retried charges": sum(1 for o in orders if o.paid_by_stripe and o.failed_attempt_first),
        "orders in a second currency": sum(1 for o in orders if o.currency not in ("USD", "JPY")),
        "orders in yen (no minor unit)": sum(1 for o in orders if o.currency == "JPY"),
        "late updates (searchable only later)": sum(1 for p in people if p.hubspot_indexed_at),
    }
    assert {case: n for case, n in hard.items() if n < 20} == {}


def test_a_bulk_edit_puts_a_quarter_of_hubspot_contacts_in_one_hour():
    """In a world of 100,000 people (some 50,000 HubSpot contacts) that hour has more than 10,000 search hits,
    past the cap a single search can page through; here at 2,000 people, its share."""
    world = World.build(SEED, 2000)
    start = world.clock - BULK_EDIT_BEFORE
    contacts = [p for p in world.people if p.in_hubspot]
    in_hour = [p for p in contacts if start <= p.hubspot_updated_at <= start + timedelta(hours=1)]
    assert 0.2 < len(in_hour) / len(contacts) < 0.3
