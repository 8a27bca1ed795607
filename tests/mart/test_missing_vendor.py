"""A vendor that was never loaded does not break the build: staging reads every raw table through the
`raw_table` macro, which stands an empty typed relation in for a missing one. On the session's warehouse
with one vendor's raw dataset removed (as if it had never been configured), the mart builds with every
test and contract passing, every person some other vendor knows is there, and revenue is the truth's."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import pytest

from flows.dbt import dbt_build
from sandbox.truth import daily_kpi_rows, people_rows

pytestmark = [pytest.mark.mart, pytest.mark.slow]

REVENUE = ["gross_revenue", "refunds", "net_revenue", "orders", "new_customers"]


def rows(warehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module", params=["hubspot", "stripe"])
def without(request, elt_run, tmp_path_factory):
    """(vendor, warehouse): the session's loaded warehouse without that vendor's raw data, built afresh."""
    vendor = request.param
    warehouse = tmp_path_factory.mktemp(f"without-{vendor}") / "warehouse.duckdb"
    shutil.copyfile(elt_run["warehouse"], warehouse)
    with duckdb.connect(str(warehouse)) as con:
        for schema in (f"raw_{vendor}", f"raw_{vendor}_staging", "staging", "intermediate", "marts"):
            con.execute(f"drop schema if exists {schema} cascade")
    result = dbt_build(warehouse)  # raises, naming them, if any model, contract or test fails
    assert result.models_passed >= 25 and result.tests_passed >= 100 and not result.failures
    return vendor, warehouse


def test_everyone_another_vendor_knows_is_a_customer(without, elt_run):
    vendor, warehouse = without
    known_elsewhere = {email for (email,) in rows(
        elt_run["warehouse"],
        "select distinct email from intermediate.int_identity_records_unioned "
        f"where customer_id is not null and system not like '{vendor}%'")}
    customers = {email for (email,) in rows(warehouse, "select email from marts.dim_customers")}
    assert known_elsewhere and customers == known_elsewhere


def test_buyers_and_daily_revenue_equal_the_truth(without, world):
    vendor, warehouse = without
    truth = {r["email"]: (r["lifetime_orders"], r["lifetime_net_revenue"]) for r in people_rows(world)
             if r["lifetime_orders"] > 0}
    mart = {email: (orders, net) for email, orders, net in rows(
        warehouse, "select email, lifetime_orders, lifetime_net_revenue from marts.dim_customers "
                   "where lifetime_orders > 0")}
    assert mart == truth
    days = {day: figures for day, *figures in rows(
        warehouse, f"select date_day, {', '.join(REVENUE)} from marts.rpt_daily_kpis")}
    for row in daily_kpi_rows(world):
        expected = [row[c] for c in REVENUE]
        assert days.get(date.fromisoformat(row["date_day"]), [0] * len(REVENUE)) == expected, row["date_day"]


def test_nothing_of_the_missing_vendor_and_the_rest_intact(without, elt_run):
    vendor, warehouse = without
    if vendor == "stripe":
        assert rows(warehouse, "select count(*) from marts.fct_payments where stripe_charge_id is not null") == [(0,)]
        assert rows(warehouse, "select count(*) from marts.fct_orders where is_paid_by_stripe") == [(0,)]
        assert rows(warehouse, "select sum(failed_payments) from marts.rpt_daily_kpis") == [(0,)]
        # every Shopify payment transaction is still there, unmatched
        shopify = "select count(*) from marts.fct_payments where shopify_transaction_id is not null"
        assert rows(warehouse, shopify) == rows(elt_run["warehouse"], shopify)
    else:
        assert rows(warehouse, "select count(*) from marts.fct_journey_events where source_system = 'hubspot'") \
            == [(0,)]
        assert rows(warehouse, "select count(*) from marts.fct_attribution where touch_source_system = 'hubspot'") \
            == [(0,)]
        # payments are untouched by a CRM's absence
        payments = "select payment_id, match_method, stripe_charge_id from marts.fct_payments order by 1"
        assert rows(warehouse, payments) == rows(elt_run["warehouse"], payments)
