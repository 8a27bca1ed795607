"""fct_attribution on each seed's chain: every credited touch is a real touch of the order's person within
the lookback, every model credits exactly the order's touches, and revenue is shared to the cent."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import duckdb
import pytest

from sandbox.truth import order_rows

pytestmark = [pytest.mark.mart, pytest.mark.slow]

MODELS = {"first_touch", "last_touch", "linear", "position_based", "time_decay"}
LOOKBACK = timedelta(days=30)  # dbt_project.yml: attribution_lookback_days


def rows(warehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_credited_touches_are_real_touches_of_the_buyer_within_the_lookback(chain):
    world = chain.world
    person_of_email = {p.email: p.person_id for p in world.people}
    truth_touches = defaultdict(list)
    for p in world.people:
        for t in p.touches:
            truth_touches[p.person_id].append(t)
    orders = {str(o.order_id): o for o in world.orders()}
    credited = rows(chain.warehouse, """
        select distinct attribution.order_id, customers.email, attribution.touched_at, attribution.converted_at,
            attribution.utm_source, attribution.utm_medium, coalesce(attribution.utm_campaign, '')
        from marts.fct_attribution as attribution
        inner join marts.dim_customers as customers using (customer_id)""")
    assert credited
    for order_id, email, touched_at, converted_at, source, medium, campaign in credited:
        order = orders[str(order_id)]
        assert order.person_id == person_of_email[email]
        assert converted_at - LOOKBACK < touched_at <= converted_at
        # a real touch of that person: at the same time (HubSpot), or the session up to 30 minutes before
        # the order it converted (Shopify stamps it at the order)
        assert any((t.source, t.medium, t.campaign) == (source, medium, campaign)
                   and timedelta(0) <= touched_at - t.touched_at.replace(tzinfo=None) <= timedelta(minutes=30)
                   for t in truth_touches[order.person_id]), (order_id, touched_at, source)


def test_every_model_credits_each_attributed_order_once_and_to_the_cent(chain):
    per_order = rows(chain.warehouse, """
        select order_key, count(distinct attribution_model), count(distinct touch_id),
            count(*) = count(distinct attribution_model) * count(distinct touch_id)
        from marts.fct_attribution group by order_key""")
    assert per_order and all(models == len(MODELS) and full for _, models, _, full in per_order)
    unshared = rows(chain.warehouse, """
        select attribution.order_key, attribution.attribution_model
        from marts.fct_attribution as attribution
        inner join marts.fct_orders as orders using (order_key)
        group by 1, 2, orders.net_revenue
        having sum(attribution.attributed_net_revenue) <> orders.net_revenue or abs(sum(credit) - 1) > 1e-9""")
    assert unshared == []
    counted = {r["order_id"] for r in order_rows(chain.world) if r["counted"]}
    attributed = {order_id for (order_id,) in rows(chain.warehouse,
                                                   "select distinct order_id from marts.fct_attribution")}
    assert attributed <= counted
    print(f"seed {chain.seed}: {len(attributed)} of {len(counted)} counted orders attributed")
    assert len(attributed) >= 0.5 * len(counted)


def test_orders_without_a_touch_in_the_lookback_have_no_credit(chain):
    """An order whose person's touches (as the mart sees them) all fall outside the lookback is not
    attributed, rather than credited to a stale touch."""
    stale = rows(chain.warehouse, f"""
        select orders.order_key
        from marts.fct_orders as orders
        inner join marts.dim_customers as customers using (customer_id)
        where orders.is_counted
            and orders.order_key not in (select order_key from marts.fct_attribution)
            and exists (
                select 1 from intermediate.int_touches_unioned as touches
                where touches.email = customers.email
                    and touches.touched_at <= orders.created_at
                    and touches.touched_at > orders.created_at - interval {LOOKBACK.days} day)""")
    assert stale == []


def test_time_decay_favours_later_touches(chain):
    inverted = rows(chain.warehouse, """
        select a.order_key from marts.fct_attribution as a
        inner join marts.fct_attribution as b
            on a.order_key = b.order_key and a.attribution_model = b.attribution_model and a.touch_index < b.touch_index
        where a.attribution_model = 'time_decay' and a.touched_at < b.touched_at and a.credit > b.credit""")
    assert inverted == []
