"""The dashboard's queries without the UI, on the session's real published marts: every panel answers, the
attribution and payments panels agree with the marts' facts and the truth, and the queries keep answering,
each batch from one run, while a run publishes. (Latency: benchmarks/dashboard_latency.py, never here.)"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import queries
from dashboard.queries import Filters
from dashboard.ranges import preset_range
from flows.publish import last_published, publish
from sandbox.truth import payment_rows
from sandbox.vendors.shopify import Shopify
from sandbox.vendors.stripe import Stripe

from .conftest import APP, without_newer_marts

pytestmark = [pytest.mark.dashboard, pytest.mark.slow]

MODELS = ("first_touch", "last_touch", "linear", "position_based", "time_decay")


@pytest.mark.parametrize("filters", [
    queries.NO_FILTERS,
    Filters(countries=("US", "GB"), customer_type="new"),
    Filters(countries=("US",), customer_type="returning"),
    "first-source",
], ids=["unfiltered", "countries-new", "country-returning", "acquisition-source"])
def test_every_panel_answers_for_a_page_view(published, filters):
    """Every query a page view asks (queries.page_queries, which the latency benchmark times) answers on the
    real published marts, with something to show wherever the data has it. Latency is measured in
    benchmarks/dashboard_latency.py, never asserted here."""
    with queries.open_published(published) as con:
        if filters == "first-source":
            filters = Filters(sources=(queries.filter_options(con).sources[0],))
        answers = {name: ask() for name, ask in queries.page_queries(con, filters, "last_90").items()}
    assert set(answers) >= {"scorecards", "trend_day", "funnel", "cohort_retention", "rfm_segments", "attribution",
                            "run_history", "unmatched_payments"}
    assert answers["run"] is not None and answers["as_of"] is not None and answers["first_date"] is not None
    options = answers["filter_options"]
    assert options.sources and options.countries and options.currencies
    current, previous = answers["scorecards"]
    assert current.orders > 0 and previous.orders > 0 and current.customers > 0
    for name in ("trend_day", "trend_month", "cohort_retention"):
        assert not answers[name].empty, name
    assert answers["trend_day"]["orders"].sum() == current.orders
    assert answers["funnel"]["people"].iloc[0] > 0
    assert answers["rfm_segments"]["customers"].sum() == current.customers
    assert not answers["attribution"].empty
    assert not answers["run_history"].empty
    payments = answers["unmatched_payments"]
    assert payments["unmatched_charges"] > 0 and payments["unmatched_transactions"] > 0
    assert not payments["summary"].empty and not payments["unmatched"].empty
    assert answers["unreconciled_orders"] >= 0


def cents(column) -> Decimal:
    """A money column's sum, exact to the cent (the frame holds the marts' decimals as floats)."""
    return Decimal(f"{column.sum():.2f}")


def attributed_orders(con, rng, model: str) -> dict[str, object]:
    """The orders fct_attribution credits under `model` with a conversion in the range, and their net
    revenue from fct_orders (not from fct_attribution's shares)."""
    rows = con.execute(
        "select o.order_key, o.order_id, o.net_revenue from marts.fct_orders as o where o.order_key in ("
        "select order_key from marts.fct_attribution where attribution_model = ? "
        "and cast(converted_at as date) between ? and ?)", [model, rng.start, rng.end]).fetchall()
    return {"keys": {key for key, _, _ in rows}, "ids": {order_id for _, order_id, _ in rows},
            "net_revenue": sum((net for _, _, net in rows), Decimal(0))}


def test_attribution_by_model_sums_to_the_net_revenue_of_the_attributed_orders(published, truth):
    """Each model shares out each attributed order once: per model, the conversions are the attributed
    orders and the revenue their net revenue, as fct_orders and the truth know it."""
    with queries.open_published(published) as con:
        rng = preset_range("last_90", queries.as_of_date(con))
        frame = queries.attribution(con, rng)
        expected = {model: attributed_orders(con, rng, model) for model in MODELS}
    by_model = frame.groupby("attribution_model")[["conversions", "attributed_net_revenue"]].sum()
    assert sorted(by_model.index) == sorted(MODELS)
    truth_net = {o["order_id"]: o["net"] for o in truth.orders if o["counted"]}
    for model, orders in expected.items():
        assert orders["keys"], model
        assert cents(frame[frame["attribution_model"] == model]["attributed_net_revenue"]) == orders["net_revenue"]
        # conversions are credits rounded to 0.01 per (channel, source) row: within half a cent per row
        rows = int((frame["attribution_model"] == model).sum())
        assert by_model.loc[model, "conversions"] == pytest.approx(len(orders["keys"]), abs=0.005 * rows + 1e-9)
        assert orders["net_revenue"] == sum(truth_net[order_id] for order_id in orders["ids"]), model
    # every model credits the same orders: only how the credit is shared differs
    assert len({frozenset(orders["keys"]) for orders in expected.values()}) == 1


def test_attribution_follows_the_order_filters(published):
    with queries.open_published(published) as con:
        rng = preset_range("last_90", queries.as_of_date(con))
        us = queries.attribution(con, rng, Filters(countries=("US",)))
        want = con.execute(
            "select sum(o.net_revenue) from marts.fct_orders as o where o.country = 'US' and o.order_key in ("
            "select order_key from marts.fct_attribution where attribution_model = 'linear' "
            "and cast(converted_at as date) between ? and ?)", [rng.start, rng.end]).fetchone()[0]
    linear = us[us["attribution_model"] == "linear"]
    assert want and cents(linear["attributed_net_revenue"]) == want


def test_unmatched_payments_are_reported_apart_by_side(published, world):
    """Stripe charges no transaction matched, and Stripe-gateway transactions no charge matched, each
    counted on its own, against fct_payments counted here and against the truth; transactions on other
    gateways (manual) have no charge to match and are never counted as unmatched."""
    with queries.open_published(published) as con:
        payments = queries.unmatched_payments(con, limit=10_000)
        charges, transactions, manual = con.execute("""
            select count(*) filter (where stripe_charge_id is not null and shopify_transaction_id is null
                    and not is_matched),
                count(*) filter (where shopify_transaction_id is not null and shopify_gateway = 'stripe'
                    and not is_matched),
                count(*) filter (where shopify_transaction_id is not null and shopify_gateway <> 'stripe')
            from marts.fct_payments""").fetchone()
    assert manual > 0  # the published data holds manual-gateway transactions: they must not be counted
    assert payments["unmatched_charges"] == charges > 0
    assert payments["unmatched_transactions"] == transactions > 0
    sides = payments["unmatched"]["side"].value_counts().to_dict()
    assert sides == {queries.UNMATCHED_SIDES["charge"]: charges,
                     queries.UNMATCHED_SIDES["transaction"]: transactions}
    assert payments["summary"]["payments"].sum() == payments["stripe_payments"] + manual
    # the truth: charges paying no order, and Stripe sales whose charge Stripe never served
    assert charges == sum(1 for charge in payment_rows(world) if not charge["shopify_order_id"])
    served = {charge["id"] for charge in Stripe(world).lists["charges"]}
    assert transactions == sum(1 for order in Shopify(world).orders for t in order["transactions"]
                               if t["gateway"] == "stripe" and t["authorization"] and t["authorization"] not in served)


def test_newer_marts_missing_answer_none_not_errors(published, tmp_path):
    older = without_newer_marts(published, tmp_path / "older.duckdb")
    with queries.open_published(older) as con:
        answers = {name: ask() for name, ask in queries.page_queries(con).items()}
    assert answers["attribution"] is None and answers["unmatched_payments"] is None
    assert answers["filter_options"].sources == []
    assert answers["scorecards"][0].orders > 0


def test_queries_keep_answering_from_one_run_while_a_run_publishes(private_chain, monkeypatch):
    """A reader loops page views (a connection per batch) while the writer publishes twice: no errors,
    every batch from one run, and the newest run shown once it is published."""
    warehouse, published = private_chain["warehouse"], private_chain["published"]
    before = last_published(published)["run_id"]
    baseline = None
    errors: list[BaseException] = []
    batches: list[set[str]] = []
    stop = threading.Event()

    def reader() -> None:
        nonlocal baseline
        while not stop.is_set():
            try:
                with queries.open_published(published) as con:
                    first = queries.latest_run(con).run_id
                    answers = {name: ask() for name, ask in queries.page_queries(con).items()}
                    last = queries.latest_run(con).run_id
                figures = answers["scorecards"]
                baseline = baseline or figures
                assert figures == baseline  # the same data republished: the same figures, never half of one
                batches.append({first, last, answers["run"].run_id})
            except BaseException as error:  # noqa: BLE001 - every failure counts
                errors.append(error)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        new_runs = []
        for number in range(2):
            run_id = f"dashboard-test-{number}"
            publish(warehouse, published, run_id, "incremental", {})
            new_runs.append(run_id)
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors, errors[:3]
    assert len(batches) > 3 and all(len(runs) == 1 for runs in batches)
    seen = [next(iter(runs)) for runs in batches]
    assert seen[0] == before and seen[-1] == new_runs[-1]
    assert set(seen) <= {before, *new_runs}

    # the page itself shows the new run without a restart
    monkeypatch.setenv("JOURNEY_PUBLISHED", str(published))
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    assert any(f"Run `{new_runs[-1]}`" in c.value for c in app.caption)
    publish(warehouse, published, "dashboard-test-after", "incremental", {})
    app.button[0].click().run()  # "Check for new data": the same session, now on the newer file
    assert any("Run `dashboard-test-after`" in c.value for c in app.caption)


def test_ranges_over_no_data_answer_zeros_not_errors(published):
    with queries.open_published(published) as con:
        first = queries.first_date(con)
        empty = preset_range("last_7", first - timedelta(days=400))
        figures = queries.kpis(con, empty)
        assert figures.orders == 0 and figures.average_order_value is None and figures.conversion_rate is None
        assert queries.trend(con, empty, grain="week")["orders"].sum() == 0
        assert queries.cohort_retention(con, empty, Filters(countries=("US",))).empty


def test_published_file_identity_changes_with_each_publish(private_chain):
    published: Path = private_chain["published"]
    before = queries.file_identity(published)
    publish(private_chain["warehouse"], published, "identity-check", "incremental", {})
    assert queries.file_identity(published) != before
    assert queries.file_identity(published.with_name("absent.duckdb")) is None


def test_has_names_a_table_only_when_it_is_published(published):
    with queries.open_published(published) as con:
        assert queries.has(con, "fct_orders") and queries.has(con, "fct_orders", {"country", "order_date"})
        assert not queries.has(con, "no_such_table") and not queries.has(con, "fct_orders", {"no_such_column"})
