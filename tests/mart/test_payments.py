"""fct_payments from the whole chain, checked against the sandbox's truth: every Stripe charge once, each
charge that pays an order matched to a transaction of that order, and the unmatched on each side exactly
the ones the world has no partner for."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import duckdb
import pytest

from sandbox.truth import payment_rows
from sandbox.vendors.shopify import Shopify
from sandbox.vendors.stripe import Stripe, fee

pytestmark = [pytest.mark.mart, pytest.mark.slow]

OUTCOMES = {"succeeded": "success", "failed": "failure"}  # a charge's status as Shopify words it


@pytest.fixture(scope="module")
def payments(chain) -> list[dict]:
    with duckdb.connect(str(chain.warehouse), read_only=True) as con:
        cursor = con.execute("select * from marts.fct_payments")
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def stripe_sales(chain) -> list[dict]:
    """Every Shopify transaction on the Stripe gateway, as served."""
    world = chain.world
    return [t for o in Shopify(world).orders for t in o["transactions"] if t["gateway"] == "stripe"]


def test_match_counts_per_tier(payments):
    counts = Counter((p["match_method"] or ("unmatched shopify" if p["shopify_transaction_id"] else
                                            "unmatched stripe")) for p in payments)
    print("\nfct_payments rows per tier:", dict(sorted(counts.items())))
    assert set(counts) == {"charge_id", "payment_intent", "email_amount_time", "unmatched shopify",
                           "unmatched stripe"}


def test_every_charge_that_pays_an_order_is_matched_to_a_transaction_of_it(payments, chain):
    world = chain.world
    by_charge = {p["stripe_charge_id"]: p for p in payments if p["stripe_charge_id"]}
    paying = [r for r in payment_rows(world) if r["shopify_order_id"]]
    assert {r["status"] for r in paying} == {"succeeded", "failed"}
    for charge in paying:
        payment = by_charge[charge["charge_id"]]
        assert payment["is_matched"], charge
        assert payment["shopify_order_id"] == charge["shopify_order_id"]
        assert payment["shopify_status"] == OUTCOMES[charge["status"]]
        assert payment["shopify_amount"] == payment["stripe_amount"] == charge["amount"]
        assert payment["amount_difference"] == 0


def test_every_stripe_charge_appears_exactly_once(payments, chain):
    world = chain.world
    served = sorted(r["charge_id"] for r in payment_rows(world))
    assert sorted(p["stripe_charge_id"] for p in payments if p["stripe_charge_id"]) == served


def test_unmatched_charges_are_exactly_those_paying_no_order(payments, chain):
    world = chain.world
    unmatched = {p["stripe_charge_id"] for p in payments if p["stripe_charge_id"] and not p["is_matched"]}
    pays_none = {r["charge_id"] for r in payment_rows(world) if not r["shopify_order_id"]}
    assert pays_none and unmatched == pays_none
    assert all(p["shopify_transaction_id"] is None for p in payments if p["stripe_charge_id"] in unmatched)


def test_unmatched_stripe_sales_are_exactly_those_whose_charge_is_absent(payments, chain, stripe_sales):
    world = chain.world
    served = {c["id"] for c in Stripe(world).lists["charges"]}
    absent = {t["id"] for t in stripe_sales if t["authorization"] and t["authorization"] not in served}
    unmatched = {p["shopify_transaction_id"] for p in payments
                 if p["shopify_transaction_id"] and not p["is_matched"] and p["shopify_gateway"] == "stripe"}
    assert absent and unmatched == absent
    assert not any(p["is_matched"] for p in payments if p["shopify_gateway"] not in (None, "stripe"))


def test_every_shopify_payment_transaction_appears_once(payments, chain):
    world = chain.world
    transactions = [t["id"] for o in Shopify(world).orders for t in o["transactions"]
                    if t["kind"] in ("sale", "capture", "authorization")]
    assert sorted(p["shopify_transaction_id"] for p in payments if p["shopify_transaction_id"]) == sorted(transactions)


def test_tiers_follow_what_each_transaction_names(payments, stripe_sales):
    named = {t["id"]: ("charge_id" if t["authorization"] else "payment_intent" if t["receipt"] else
                       "email_amount_time") for t in stripe_sales}
    for p in payments:
        if p["is_matched"]:
            assert p["match_method"] == named[p["shopify_transaction_id"]], p


def test_fees_come_from_balance_transactions(payments, chain):
    """Stripe's fee on what the charge settled to in the account's currency (USD): the charge itself, or for a
    charge in another currency the order's shop total."""
    shop_total = {o.order_id: o.total for o in chain.world.orders(deleted=True)}
    order_of_charge = Stripe(chain.world).order_of_charge  # the truth: which order each charge pays
    for p in payments:
        if p["stripe_status"] == "succeeded":
            foreign = p["stripe_amount"] != 0 and p["currency"] != "USD"
            settled = shop_total[order_of_charge[p["stripe_charge_id"]]] if foreign else p["stripe_amount"]
            assert p["stripe_fee"] == Decimal(fee(int(settled * 100))) / 100, p
        elif p["stripe_charge_id"]:
            assert p["stripe_fee"] is None
