"""The dashboard's queries without the UI: each panel answers well under a second, and the queries keep
answering, each batch from one run, while a run publishes."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import queries
from dashboard.queries import Filters
from dashboard.ranges import comparison_range, preset_range
from flows.publish import last_published, publish

from .conftest import APP, with_coming_marts

pytestmark = [pytest.mark.dashboard, pytest.mark.slow]


def panels(con, filters: Filters = queries.NO_FILTERS) -> dict:
    """Every query one page view asks, by panel, for the default range."""
    as_of = queries.as_of_date(con)
    current = preset_range("last_28", as_of)
    previous = comparison_range(current, "previous_period")
    return {
        "run": lambda: queries.latest_run(con),
        "as_of": lambda: queries.as_of_date(con),
        "filter_options": lambda: queries.filter_options(con),
        "scorecards": lambda: (queries.kpis(con, current, filters), queries.kpis(con, previous, filters)),
        "trend_day": lambda: queries.trend(con, current, filters, "day"),
        "trend_month": lambda: queries.trend(con, preset_range("year_to_date", as_of), filters, "month"),
        "funnel": lambda: queries.funnel(con, current, filters),
        "cohort_retention": lambda: queries.cohort_retention(con, current, filters),
        "rfm_segments": lambda: queries.rfm_segments(con, current, filters),
        "attribution": lambda: queries.attribution(con, current, filters),
        "run_history": lambda: queries.run_history(con),
        "unmatched_payments": lambda: queries.unmatched_payments(con),
    }


@pytest.mark.parametrize(("filters", "coming_marts"), [
    (queries.NO_FILTERS, False),
    (Filters(countries=("US", "GB"), customer_type="new"), False),
    (queries.NO_FILTERS, True),
    (Filters(sources=("google",), countries=("US",)), True),
], ids=["unfiltered", "filtered", "with-attribution-payments", "with-attribution-payments-filtered"])
def test_every_panel_answers_well_under_a_second(published, tmp_path, filters, coming_marts):
    if coming_marts:  # time the panels on fct_attribution and fct_payments too, not only their notes
        published = with_coming_marts(published, tmp_path / "extended.duckdb")
    with queries.open_published(published) as con:
        timings = {}
        for name, ask in panels(con, filters).items():
            ask()  # the first call pays DuckDB's one-off costs; a page view repeats them warm
            started = time.perf_counter()
            ask()
            timings[name] = time.perf_counter() - started
        if coming_marts:
            assert answers_present(con, filters)
    print("\npanel latencies (ms):", {name: round(seconds * 1000, 1) for name, seconds in timings.items()})
    slow = {name: seconds for name, seconds in timings.items() if seconds > 0.25}
    assert not slow, slow


def answers_present(con, filters: Filters) -> bool:
    rng = preset_range("last_90", queries.as_of_date(con))
    return not queries.attribution(con, rng, filters).empty and queries.unmatched_payments(con)["payments"] > 0


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
                    answers = {name: ask() for name, ask in panels(con).items()}
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
