"""The hard cases of payment reconciliation are in the world, often enough to test, and the truth about them
is honest: each charge pays the order the truth says, and a charge said to pay none could not fairly be
matched to one."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from sandbox.vendors.shopify import Shopify
from sandbox.vendors.stripe import Stripe, minor
from sandbox.world import World

pytestmark = pytest.mark.sandbox

BIG_SEED, BIG_PEOPLE = 7, 2000
WINDOW = timedelta(hours=24)  # the mart's email/amount/time window


def payment_cases(world: World) -> Counter:
    """How many of each hard case the world serves, counted from what the vendors serve."""
    shopify, stripe = Shopify(world), Stripe(world)
    charges = {c["id"]: c for c in stripe.lists["charges"]}
    sales = [t for o in shopify.orders for t in o["transactions"] if t["gateway"] == "stripe"]
    cases = Counter()
    for sale in sales:
        intent = sale["receipt"].get("payment_intent")
        if sale["authorization"] and sale["authorization"] not in charges:
            cases["charge_absent_from_stripe"] += 1
        elif sale["authorization"]:
            cases["names_charge"] += 1
        elif intent:
            cases["names_intent_only"] += 1
        else:
            cases["names_neither"] += 1
    for charge in charges.values():
        if charge["id"] not in stripe.order_of_charge:
            cases["charge_pays_no_order"] += 1
        elif not charge["metadata"].get("shopify_order_id"):
            cases["charge_without_order_metadata"] += 1
    return cases


HARD_CASES = ("charge_absent_from_stripe", "names_intent_only", "names_neither", "charge_pays_no_order",
              "charge_without_order_metadata")


@pytest.fixture(scope="module")
def big_world() -> World:
    return World.build(BIG_SEED, BIG_PEOPLE)


def test_every_hard_case_occurs_a_few_times_in_the_test_world(world):
    cases = payment_cases(world)
    print(f"\npayment cases, {world.size} people:", dict(cases))
    for case in HARD_CASES:
        assert cases[case] >= 3, (case, cases)


def test_every_hard_case_occurs_at_least_20_times_in_a_default_world(big_world):
    cases = payment_cases(big_world)
    print(f"\npayment cases, {big_world.size} people:", dict(cases))
    for case in HARD_CASES:
        assert cases[case] >= 20, (case, cases)


def test_payment_cases_are_deterministic_per_seed(world):
    again = World.build(world.seed, world.size)
    assert Stripe(again).lists["charges"] == Stripe(world).lists["charges"]
    assert [o["transactions"] for o in Shopify(again).orders] == [o["transactions"] for o in Shopify(world).orders]


def normalized(email: str | None) -> str | None:
    return email.strip().lower() if email else None


def test_truth_of_which_order_a_charge_pays_is_honest(world):
    """A charge the truth ties to an order has its amount, currency and outcome; a bare charge (no id on the
    Shopify side) carries the order's email, created close to its sale; a charge said to pay no order has
    no Shopify sale of the same email and amount within the matching window."""
    shopify, stripe = Shopify(world), Stripe(world)
    orders = {o["id"]: o for o in shopify.orders}
    customers = {c["id"]: c for c in stripe.lists["customers"]}
    emails = lambda c: {normalized(c["billing_details"]["email"]),  # noqa: E731
                        normalized(customers.get(c["customer"], {}).get("email"))} - {None}
    sales = [(o, t) for o in shopify.orders for t in o["transactions"] if t["gateway"] == "stripe"]
    for charge in stripe.lists["charges"]:
        created = datetime.fromtimestamp(charge["created"]).astimezone()
        order_id = stripe.order_of_charge.get(charge["id"])
        if order_id is None:
            assert not any(normalized(o["email"]) in emails(charge)
                           and minor(Decimal(t["amount"]), t["currency"].lower()) == charge["amount"]
                           and abs(datetime.fromisoformat(t["processed_at"]) - created) <= WINDOW
                           for o, t in sales), charge["id"]
            continue
        order = orders[order_id]
        paid = order["total_price_set"]["presentment_money"]  # charged in what the buyer paid in
        assert charge["currency"] == paid["currency_code"].lower()
        assert charge["amount"] == minor(Decimal(paid["amount"]), charge["currency"])
        if charge["payment_intent"] is None:  # the older checkout app's bare charge
            assert normalized(order["email"]) in emails(charge)
            assert abs(datetime.fromisoformat(order["processed_at"]) - created) <= timedelta(minutes=1)


def test_stripe_charges_and_their_events_are_rendered_as_of_each_refund(world: World):
    """A charge is served as it is now (every refund counted); each `charge.refunded` event shows it just after
    that refund, and what that refund changed."""
    stripe = Stripe(world)
    charges = {c["id"]: c.record() for c in stripe.lists["charges"]}
    refunds: dict[str, list[dict]] = {}
    for refund in sorted((r.record() for r in stripe.lists["refunds"]), key=lambda r: (r["created"], r["id"])):
        refunds.setdefault(refund["charge"], []).append(refund)
    events = sorted((e.record() for e in stripe.lists["events"] if e["type"] == "charge.refunded"),
                    key=lambda e: e["created"])
    assert len(events) == sum(map(len, refunds.values())) >= 20
    seen: dict[str, int] = {}
    for event in events:
        charge, previous = event["data"]["object"], event["data"]["previous_attributes"]
        n = seen[charge["id"]] = seen.get(charge["id"], 0) + 1
        assert charge["amount_refunded"] == sum(r["amount"] for r in refunds[charge["id"]][:n])
        assert previous["amount_refunded"] == sum(r["amount"] for r in refunds[charge["id"]][:n - 1])
    for charge_id, done in refunds.items():
        assert charges[charge_id]["amount_refunded"] == sum(r["amount"] for r in done)
        assert charges[charge_id]["refunded"] == (charges[charge_id]["amount_refunded"] >= charges[charge_id]["amount"])
