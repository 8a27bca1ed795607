"""The page rendered headless (Streamlit's AppTest): its scorecards and deltas against figures computed
from the sandbox's truth, for presets, fixed ranges and a filter; its notes for what is not published."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.ranges import DateRange, comparison_range, preset_range
from dashboard.scorecards import scorecards

from .conftest import APP, Truth, without_newer_marts

pytestmark = [pytest.mark.dashboard, pytest.mark.slow]


def render(monkeypatch, published: Path, **widgets) -> AppTest:
    """The page on `published`, with widgets (by key) set one after another, as a user would."""
    monkeypatch.setenv("JOURNEY_PUBLISHED", str(published))
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    for key, value in widgets.items():
        kind = {"preset": "selectbox", "comparison": "selectbox", "custom_range": "date_input",
                "countries": "multiselect", "sources": "multiselect", "customer_type": "radio",
                "grain": "radio", "attribution_model": "selectbox"}[key]
        getattr(app, kind)(key=key).set_value(value)
        app.run()
    assert not app.exception, app.exception
    return app


def tiles(app: AppTest) -> list[tuple[str, str, str | None]]:
    return [(m.label, m.value, m.delta or None) for m in app.metric[:8]]


def expected(truth: Truth, current: DateRange, comparison: str, **filters) -> list[tuple[str, str, str | None]]:
    previous = comparison_range(current, comparison)
    return [(t.label, t.value, t.delta)
            for t in scorecards(truth.kpis(current, **filters), truth.kpis(previous, **filters))]


def test_default_page_is_the_last_28_days_against_the_previous_28(monkeypatch, published, truth):
    app = render(monkeypatch, published)
    current = preset_range("last_28", truth.as_of)
    assert tiles(app) == expected(truth, current, "previous_period")
    assert [m.label for m in app.metric[:8]] == ["Net revenue", "Orders", "Average order value", "New customers",
                                                 "Returning customers", "Conversion rate", "Refund rate",
                                                 "Failed payments"]
    text = " ".join(m.value for m in app.markdown)
    assert current.label() in text and f"as of {truth.as_of:%d %b %Y}" in text
    # data health: the last publish and the run it came from
    assert any(m.label == "Last published (UTC)" for m in app.metric)
    assert any("Run `" in c.value for c in app.caption)


@pytest.mark.parametrize(("preset", "comparison"), [
    ("last_7", "previous_period"), ("last_90", "previous_period"), ("month_to_date", "previous_year"),
    ("year_to_date", "previous_year"),
])
def test_presets_and_comparisons_against_the_truth(monkeypatch, published, truth, preset, comparison):
    app = render(monkeypatch, published, preset=preset, comparison=comparison)
    assert tiles(app) == expected(truth, preset_range(preset, truth.as_of), comparison)


def test_a_fixed_custom_range(monkeypatch, published, truth):
    fixed = DateRange(truth.as_of - timedelta(days=200), truth.as_of - timedelta(days=110))
    app = render(monkeypatch, published, preset="custom", custom_range=(fixed.start, fixed.end))
    assert tiles(app) == expected(truth, fixed, "previous_period")


def test_a_country_filter_and_new_vs_returning_apply_to_the_scorecards(monkeypatch, published, truth):
    current = preset_range("last_90", truth.as_of)
    app = render(monkeypatch, published, preset="last_90", countries=["US"])
    assert tiles(app) == expected(truth, current, "previous_period", countries=("US",))
    unfiltered = expected(truth, current, "previous_period")
    assert tiles(app)[1] != unfiltered[1]  # the filter really narrowed the orders
    app.radio(key="customer_type").set_value("returning").run()
    assert not app.exception
    assert tiles(app) == expected(truth, current, "previous_period", countries=("US",), customer_type="returning")


def test_week_and_month_grains_render(monkeypatch, published):
    for grain in ("week", "month"):
        render(monkeypatch, published, preset="year_to_date", grain=grain)


def test_panels_not_published_yet_say_so(monkeypatch, published, tmp_path):
    """A file an older run published (no fct_attribution, fct_payments or acquisition columns) renders,
    with a note for each panel it cannot fill instead of an error."""
    older = without_newer_marts(published, tmp_path / "older.duckdb")
    app = render(monkeypatch, older)
    notes = " ".join(i.value for i in app.info)
    for table in ("fct_attribution", "fct_payments"):
        assert f"marts.{table}" in notes
    assert notes.count("not available yet") == 2
    assert any("dim_customers.acquisition_source" in c.value and "not available yet" in c.value
               for c in app.sidebar.caption)
    assert not [m for m in app.sidebar.multiselect if m.key == "sources"]
    assert tiles(app)[1][1] != "0"  # the scorecards still show


def test_missing_or_empty_published_file_says_how_to_load_data(monkeypatch, tmp_path):
    app = render(monkeypatch, tmp_path / "nothing.duckdb")
    assert "make run" in app.info[0].value and "journey run --sandbox" in app.info[0].value
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    app = render(monkeypatch, empty)
    assert "make run" in app.info[0].value
    assert not app.metric


def facts(published: Path, sql: str, params: list) -> list[tuple]:
    with duckdb.connect() as con:
        con.execute("attach ? as p (read_only)", [str(published)])
        con.execute("use p")
        return con.execute(sql, params).fetchall()


def test_attribution_payments_and_acquisition_panels_on_the_published_marts(monkeypatch, published, truth):
    """The real fct_attribution, fct_payments and dim_customers.acquisition_source: no notes, every model
    offered, the unmatched payments apart by side, and the source filter narrowing the orders."""
    current = preset_range("last_90", truth.as_of)
    app = render(monkeypatch, published, preset="last_90")
    assert not [i for i in app.info if "not available yet" in i.value]
    assert sorted(app.selectbox(key="attribution_model").options) == sorted(
        ["first_touch", "last_touch", "linear", "position_based", "time_decay"])
    assert app.selectbox(key="attribution_model").value == "last_touch"

    metrics = {m.label: m.value for m in app.metric}
    (charges, transactions), = facts(published, """
        select count(*) filter (where shopify_transaction_id is null and not is_matched),
            count(*) filter (where shopify_transaction_id is not null and shopify_gateway = 'stripe'
                and not is_matched)
        from marts.fct_payments""", [])
    assert metrics["Stripe charges with no transaction"] == f"{charges:,}"
    assert metrics["Stripe-gateway transactions with no charge"] == f"{transactions:,}"

    # the attribution table for the chosen model: its revenue is that of the orders it credits
    (attributed,), = facts(published, """
        select sum(net_revenue) from marts.fct_orders where order_key in (
            select order_key from marts.fct_attribution where attribution_model = 'last_touch'
            and cast(converted_at as date) between ? and ?)""", [current.start, current.end])
    table = next(d.value for d in app.dataframe if "attributed_net_revenue" in d.value.columns)
    assert Decimal(f"{table['attributed_net_revenue'].sum():.2f}") == attributed

    # the acquisition-source filter: the counted orders of the people dim_customers says google acquired
    sources = app.multiselect(key="sources").options
    assert "google" in sources
    orders_all = int(tiles(app)[1][1].replace(",", ""))
    app.multiselect(key="sources").set_value(["google"]).run()
    assert not app.exception
    google = {customer_id for (customer_id,) in facts(
        published, "select customer_id from marts.dim_customers where acquisition_source = 'google'", [])}
    (orders,), = facts(published, "select count(*) from marts.fct_orders where is_counted and order_date between ? "
                       "and ? and list_contains(?, customer_id)", [current.start, current.end, sorted(google)])
    assert int(tiles(app)[1][1].replace(",", "")) == orders < orders_all
