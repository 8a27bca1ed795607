"""The journey marts (identity, RFM, cohorts, the event timeline) against each seed's truth, and the
incremental event model against a rebuild from scratch."""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from datetime import date, datetime

import duckdb
import pytest

from flows.dbt import run_dbt
from sandbox.truth import order_rows, payment_rows, people_rows
from sandbox.vendors.stripe import Stripe

pytestmark = [pytest.mark.mart, pytest.mark.slow]


def rows(warehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def test_the_world_holds_the_hard_cases_the_mart_must_handle(chain):
    people, orders = chain.world.people, chain.world.orders()
    assert sum(p.activecampaign_email != p.email or p.hubspot_email != p.email for p in people) >= 20
    assert sum(1 for o in orders if o.counted and not chain.world.person(o.person_id).has_shopify_account) >= 20
    assert sum(1 for o in orders if any(r.succeeded for r in o.refunds)) >= 20
    assert sum(1 for o in orders if o.cancelled_at) >= 5
    assert sum(1 for p in people if p.stripe_payer and p.stripe_email_missing) >= 10


def test_identity_links_every_buyers_records_with_precision_and_recall_one(chain):
    """Each true buyer's records (CRM contacts, Shopify customer, Stripe customer, orders) against the
    person the mart resolved each record to."""
    by_email = {p.email: p for p in chain.world.people}
    # a Stripe customer with no email whose charges here pay no order (all went through another Stripe
    # account) carries nothing that could link it: it must be kept unlinked and counted, not guessed
    paying = {r["charge_id"] for r in payment_rows(chain.world) if r["shopify_order_id"]}
    paid_by = {c["customer"] for c in Stripe(chain.world).lists["charges"] if c["customer"] and c["id"] in paying}
    # a deleted Stripe customer is no record of anyone any more (flagged in staging, left out of identity)
    stripe_of = {p.person_id: "" if p.stripe_deleted_at else p.stripe_customer_id for p in chain.world.people}
    unlinkable = {p.stripe_customer_id for p in chain.world.people
                  if stripe_of[p.person_id] and p.stripe_email_missing and p.stripe_customer_id not in paid_by}
    truth = set()
    for p in chain.world.people:
        if not p.counted_orders:
            continue
        truth |= {(p.person_id, "order", str(o.order_id)) for o in p.orders if not o.deleted_at}
        for system, record in (("activecampaign", p.activecampaign_contact_id), ("hubspot", p.hubspot_contact_id),
                               ("shopify_customer", p.shopify_customer_id), ("stripe", stripe_of[p.person_id])):
            if record and record not in unlinkable:
                truth.add((p.person_id, system, str(record)))
    kept = {record for (record,) in rows(chain.warehouse, """
        select record_id from intermediate.int_identity_records_unioned
        where system = 'stripe' and customer_id is null""")}
    assert unlinkable <= kept  # kept, and counted by the gate
    buyers = {p.person_id for p in chain.world.people if p.counted_orders}
    mart = set()
    for email, ac, hubspot, shopify, stripe in rows(chain.warehouse, """
            select email, activecampaign_contact_id, hubspot_contact_id, shopify_customer_id, stripe_customer_id
            from marts.dim_customers where lifetime_orders > 0"""):
        person = by_email[email].person_id
        for system, record in (("activecampaign", ac), ("hubspot", hubspot), ("shopify_customer", shopify),
                               ("stripe", stripe)):
            if record:
                mart.add((person, system, str(record)))
    for email, order_id in rows(chain.warehouse, """
            select customers.email, orders.order_id from marts.fct_orders as orders
            inner join marts.dim_customers as customers using (customer_id)"""):
        if by_email[email].person_id in buyers:
            mart.add((by_email[email].person_id, "order", str(order_id)))
    precision = len(mart & truth) / len(mart)
    recall = len(mart & truth) / len(truth)
    print(f"seed {chain.seed}: identity precision {precision:.4f}, recall {recall:.4f} over {len(truth)} links")
    assert (precision, recall) == (1.0, 1.0), sorted(truth - mart)[:5] + sorted(mart - truth)[:5]


def test_customer_type_consent_and_rfm_follow_the_truth(chain):
    truth = {r["email"]: r for r in people_rows(chain.world)}
    consent = {p.email: p.accepts_marketing and (p.has_shopify_account or p.in_hubspot) for p in chain.world.people}
    mart = rows(chain.warehouse, """
        select email, customer_type, lifetime_orders, has_marketing_consent, rfm_segment, r_score, f_score, m_score,
            days_since_last_order, average_order_value, lifetime_gross_revenue
        from marts.dim_customers""")
    assert len(mart) == len(truth)
    for email, kind, orders, consented, segment, r, f, m, recency, aov, gross in mart:
        expected_orders = truth[email]["lifetime_orders"]
        assert orders == expected_orders
        assert kind == ("prospect" if orders == 0 else "new" if orders == 1 else "returning")
        assert consented == consent[email], email
        if orders == 0:
            assert (segment, r, f, m, aov) == ("prospect", None, None, None, None)
        else:
            assert {r, f, m} <= {1, 2, 3, 4, 5} and recency >= 0
            assert abs(aov * orders - gross) <= orders * 0.005  # gross / orders, rounded to the cent
            if segment == "champions":
                assert r >= 4 and f + m >= 8
    # scores are quintiles by rank: the most recent buyers score 5 on recency, the longest gone 1
    (latest,), (oldest,) = rows(chain.warehouse, """
        select distinct r_score from marts.dim_customers
        where days_since_last_order = (select min(days_since_last_order) from marts.dim_customers)
        union all
        select distinct r_score from marts.dim_customers
        where days_since_last_order = (select max(days_since_last_order) from marts.dim_customers)""")
    assert (latest, oldest) == (5, 1)


def test_cohort_retention_matches_the_truth_cell_by_cell(chain):
    counted = [r for r in order_rows(chain.world) if r["counted"]]
    first_month: dict[int, date] = {}
    for r in sorted(counted, key=lambda r: (r["created_at"], r["order_id"])):
        first_month.setdefault(r["person_id"], datetime.fromisoformat(r["created_at"]).date().replace(day=1))
    size = Counter(first_month.values())
    active: dict[tuple[date, int], set[int]] = defaultdict(set)
    for r in counted:
        cohort = first_month[r["person_id"]]
        active[(cohort, months_between(cohort, datetime.fromisoformat(r["created_at"]).date()))].add(r["person_id"])
    mart = {(cohort, month): (cohort_size, active_customers, rate)
            for cohort, month, cohort_size, active_customers, rate in rows(chain.warehouse, """
                select cohort_month, month_number, cohort_size, active_customers, retention_rate
                from marts.rpt_cohort_retention""")}
    assert {cohort for cohort, _ in mart} == set(size)
    for (cohort, month), (cohort_size, active_customers, rate) in mart.items():
        assert cohort_size == size[cohort]
        assert active_customers == len(active.get((cohort, month), ()))
        assert rate == round(active_customers / cohort_size, 4)
    assert set(active) <= set(mart)  # every month with activity has its cell
    for cohort in size:  # and every cohort runs without gaps from month 0
        months = sorted(month for c, month in mart if c == cohort)
        assert months == list(range(len(months)))


def test_journey_events_hold_every_order_payment_and_refund_of_each_person(chain):
    world = chain.world
    person_of_email = {p.email: p.person_id for p in world.people}
    expected: Counter = Counter()
    for o in world.orders():
        expected[(o.person_id, "order_placed")] += 1
        expected[(o.person_id, "refund_issued")] += sum(1 for r in o.refunds if r.succeeded)
    order_person = {str(o.order_id): o.person_id for o in world.orders()}
    paying = {}  # charge id -> the order it really pays (the truth), for charges that pay one
    for charge in payment_rows(world):
        if charge["status"] in ("succeeded", "failed") and charge["shopify_order_id"] in order_person:
            paying[charge["charge_id"]] = charge["shopify_order_id"]
            expected[(order_person[charge["shopify_order_id"]], f"payment_{charge['status']}")] += 1
    mart: Counter = Counter()
    for email, event_type, record in rows(chain.warehouse, """
            select customers.email, events.event_type, events.source_record_id from marts.fct_journey_events as events
            inner join marts.dim_customers as customers using (customer_id)
            where event_type in ('order_placed', 'refund_issued', 'payment_succeeded', 'payment_failed')"""):
        if event_type.startswith("payment_") and record not in paying:
            continue  # a charge that pays no order (an invoice, a manual charge): its payer's, checked apart
        mart[(person_of_email[email], event_type)] += 1
    expected = +expected
    assert mart == expected


def test_journey_events_are_sequenced_without_gaps_in_time_order(chain):
    broken = rows(chain.warehouse, """
        with checked as (
            select customer_id, event_sequence, event_at, previous_event_at, seconds_since_previous_event,
                row_number() over (partition by customer_id order by event_sequence) as expected_sequence
            from marts.fct_journey_events
        )
        select * from checked
        where event_sequence <> expected_sequence
            or (event_sequence = 1) <> (previous_event_at is null)
            or previous_event_at > event_at
            or seconds_since_previous_event <> date_diff('second', previous_event_at, event_at)""")
    assert broken == []
    kinds = {kind for (kind,) in rows(chain.warehouse, "select distinct event_type from marts.fct_journey_events")}
    assert {"contact_created", "lifecycle_stage_changed", "deal_created", "deal_won", "order_placed",
            "payment_succeeded", "payment_failed", "refund_issued"} <= kinds


def test_incremental_events_equal_a_rebuild_from_scratch(elt_run, tmp_path):
    """`elt_run` built the events twice (the second time incrementally); a full refresh of a copy gives
    the same rows."""
    copy = tmp_path / "copy.duckdb"
    shutil.copy(elt_run["warehouse"], copy)
    query = "select * exclude (_dlt_load_id) from intermediate.int_journey_events_unioned order by event_id"
    before = rows(copy, query)
    run_dbt(["run", "--full-refresh", "--select", "int_journey_events_unioned"], copy)
    assert rows(copy, query) == before and len(before) > 0
