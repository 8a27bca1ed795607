"""fct_orders and rpt_daily_kpis from the whole chain, checked against the sandbox's truth."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from sandbox.truth import daily_kpi_rows, order_rows
from sandbox.vendors.stripe import Stripe

pytestmark = [pytest.mark.mart, pytest.mark.slow]


def rows(warehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_fct_orders_matches_every_order_of_the_truth_to_the_cent(chain):
    world = chain.world
    mart = {order_id: rest for order_id, *rest in rows(
        chain.warehouse,
        "select order_id, is_counted, gross_revenue, refunds, net_revenue, coalesce(is_first_order, false) "
        "from marts.fct_orders")}
    truth = order_rows(world)
    assert len(mart) == len(truth)
    for order in truth:
        counted, gross, refunds, net, first = mart[order["order_id"]]
        assert counted == order["counted"]
        if counted:
            assert (gross, refunds, net) == (order["gross"], order["refunds"], order["net"])
        assert first == order["is_first_order"]


def test_every_stripe_paid_order_reconciles_with_its_charge(chain):
    """Every order a charge of this Stripe account paid (however the checkout linked them), and no other: an
    order charged in another Stripe account has no charge to reconcile with."""
    world = chain.world
    stripe = Stripe(world)
    stripe_paid = {stripe.order_of_charge[c["id"]] for c in stripe.lists["charges"]
                   if c["status"] == "succeeded" and c["id"] in stripe.order_of_charge}
    assert stripe_paid < {o.order_id for o in world.orders() if o.paid_by_stripe}
    reconciled = {order_id for (order_id,) in rows(
        chain.warehouse, "select order_id from marts.fct_orders where is_payment_reconciled")}
    assert stripe_paid and reconciled == stripe_paid


def test_daily_kpis_equal_the_truth_day_by_day_with_no_gaps(chain):
    world = chain.world
    columns = ["gross_revenue", "refunds", "net_revenue", "orders", "new_customers", "contacts_created",
               "failed_payments"]
    mart = {day: dict(zip(columns, rest, strict=True)) for day, *rest in rows(
        chain.warehouse, f"select date_day, {', '.join(columns)} from marts.rpt_daily_kpis order by 1")}
    days = sorted(mart)
    assert (days[-1] - days[0]).days + 1 == len(days)  # no gaps
    truth = {date.fromisoformat(r["date_day"]): r for r in daily_kpi_rows(world)}
    for day, figures in truth.items():
        expected = {c: figures[c] for c in columns}
        if day in mart:
            assert mart[day] == expected, day
        else:  # outside the mart's range (after the data's as-of date) nothing happened
            assert not any(expected.values()), day
