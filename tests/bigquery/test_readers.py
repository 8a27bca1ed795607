"""The readers on BigQuery (bqemulator 1.4.0 standing in for it): the dashboard and activation read the published
marts through flows/published.py, and every query they ask answers on BigQuery as on the DuckDB published file
of the same world (`elt_run` and `bigquery_run` load the same sandbox world).

Every panel query runs on the emulator but those listed in PANELS_NOT_RUN_ON_EMULATOR, which are checked to
translate and parse with SQLGlot's BigQuery dialect only. Not proven here: that BigQuery itself
accepts the partition filters (the emulator enforces no `require_partition_filter`, test_bigquery.py), so the
queries on the partitioned marts are checked for a bound on the partition column itself instead.
"""

from __future__ import annotations

from dataclasses import astuple
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlglot

from activation.conversions import read_conversions
from dashboard import queries
from flows import published as layer
from flows.bigquery import PARTITION_COLUMNS
from tests.bigquery.test_bigquery import canonical
from tests.environment import environment

pytestmark = [pytest.mark.bigquery, pytest.mark.slow]

# panel -> why it cannot run on the emulator; those are checked to translate and parse only
PANELS_NOT_RUN_ON_EMULATOR: dict[str, str] = {
    # DuckDB's weeks start on Monday, so the layer asks BigQuery for DATE_TRUNC(..., WEEK(MONDAY)); bqemulator
    # 1.4.0 truncates that to the Sunday before (it drops the MONDAY), and rejects ISOWEEK and DATE - INT64
    "trend_week_ytd": "the emulator truncates WEEK(MONDAY) to Sunday",
}
# each warehouse's own runs (ids and times differ; the rows of the marts do not)
RUN_PANELS = {"run", "run_history"}


class Recorder:
    """A published-marts object that notes every statement a panel asks, with its parameters."""

    def __init__(self, con):
        self.con, self.panel, self.asked = con, "setup", []  # setup: what the page asks before its panels

    def execute(self, sql, params=None):
        self.asked.append((self.panel, sql, list(params or [])))
        return self.con.execute(sql, params)

    def columns(self):
        return self.con.columns()

    @property
    def where(self):
        return self.con.where


def filter_sets(con) -> list[queries.Filters]:
    """No filter; every filter at once (a source, countries, a currency, new customers); returning customers."""
    options = queries.filter_options(con)
    assert options.sources and len(options.countries) >= 2 and options.currencies
    return [queries.NO_FILTERS,
            queries.Filters(tuple(options.sources[:2]), tuple(options.countries[:2]), tuple(options.currencies[:1]),
                            "new"),
            queries.Filters(countries=tuple(options.countries[:3]), customer_type="returning")]


def ask_every_panel(con) -> dict[str, object]:
    """Every panel of a page view for each filter set, plus the trend at every grain: (panel, filters) -> answer."""
    answers = {}
    for number, filters in enumerate(filter_sets(con)):
        panels = queries.page_queries(con, filters)
        as_of = queries.as_of_date(con)
        for grain in queries.GRAINS:
            panels[f"trend_{grain}_ytd"] = (lambda g=grain, f=filters, a=as_of: queries.trend(
                con, queries.preset_range("year_to_date", a), f, g))
        for name, ask in panels.items():
            if isinstance(con, Recorder):
                con.panel = f"{name}#{number}"
            answers[f"{name}#{number}"] = ask()
    return answers


@pytest.fixture(scope="module")
def duckdb_asked(elt_run):
    """What the page asks on the DuckDB published file: each statement with its parameters and its rows."""
    with queries.open_published(elt_run["published"]) as con:
        recorder = Recorder(con)
        answers = ask_every_panel(recorder)
        asked = [(panel, sql, params, con.execute(sql, params).fetchall()) for panel, sql, params in recorder.asked]
    return {"asked": asked, "answers": answers}


def test_every_panel_query_returns_the_duckdb_rows_on_bigquery(bigquery_run, duckdb_asked):
    """The same statements, parameters bound, on both warehouses: values compared exactly (money as decimals)."""
    asked = duckdb_asked["asked"]
    panels = {panel.split("#")[0] for panel, *_ in asked}
    assert {"scorecards", "trend_day", "trend_month", "funnel", "cohort_retention", "rfm_segments", "attribution",
            "unmatched_payments", "unreconciled_orders", "filter_options"} <= panels
    assert len(asked) > 60
    differing, failed = {}, {}
    with environment(bigquery_run["emulator"].env()), layer.open_published() as con:
        assert isinstance(con, layer.BigQueryMarts)
        for panel, sql, params, on_duckdb in asked:
            name = panel.split("#")[0]
            if name in PANELS_NOT_RUN_ON_EMULATOR:
                translated = layer.to_bigquery(sql, con.client.project, con.dataset)
                sqlglot.parse_one(translated, read="bigquery")
                assert "WEEK(MONDAY)" in translated, translated
                continue
            try:
                on_bigquery = con.execute(sql, params).fetchall()
            except layer.ReadFailed as error:
                failed.setdefault(name, str(error)[:300])
                continue
            if name in RUN_PANELS:  # another warehouse's runs: the shape only
                assert on_bigquery and len(on_bigquery[0]) == len(on_duckdb[0]), panel
                continue
            if [tuple(map(canonical, row)) for row in on_bigquery] != [tuple(map(canonical, row)) for row in on_duckdb]:
                differing[panel] = (sql[:200], on_bigquery[:3], on_duckdb[:3])
    assert failed == {}, failed
    assert differing == {}, differing


def test_each_panel_answers_the_same_on_bigquery(bigquery_run, duckdb_asked):
    """The panels' own answers (frames, scorecards, options) read through the BigQuery connection."""
    with environment(bigquery_run["emulator"].env()), queries.open_published(Path("unused")) as con:
        on_bigquery = ask_every_panel(con)
    on_duckdb = duckdb_asked["answers"]
    assert on_bigquery.keys() == on_duckdb.keys()
    for panel, answer in on_duckdb.items():
        if panel.split("#")[0] in RUN_PANELS | PANELS_NOT_RUN_ON_EMULATOR.keys():
            continue
        assert comparable(on_bigquery[panel]) == comparable(answer), panel


def comparable(answer):
    """An answer as plain values: frames by column names and rounded cells (DuckDB's df() gives floats for
    decimals), dataclasses by fields."""
    if answer is None:
        return None
    if isinstance(answer, pd.DataFrame):
        return list(answer.columns), [tuple(_cell(v) for v in row) for row in answer.itertuples(index=False)]
    if isinstance(answer, dict):
        return {key: comparable(value) for key, value in answer.items()}
    if isinstance(answer, tuple | list):
        return [comparable(item) for item in answer]
    if hasattr(answer, "__dataclass_fields__"):
        return tuple(comparable(value) for value in astuple(answer))
    return _cell(answer)


def _cell(value):
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None  # DuckDB's df() gives pd.NA in nullable columns, a frame of BigQuery rows None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):  # DuckDB's df() turns an integer column with nulls into floats
        return f"{float(value):.6f}"
    if isinstance(value, pd.Timestamp | datetime | date):
        return pd.Timestamp(value).isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _cell(value.item())
    return value


def test_queries_on_partitioned_marts_bound_their_partition_column(duckdb_asked):
    """BigQuery requires a filter on the partition column of the published fct_journey_events and
    fct_attribution; the emulator enforces none, so check the translated statements bound the column itself."""
    checked = 0
    for panel, sql, _params, _rows in duckdb_asked["asked"]:
        tree = sqlglot.parse_one(layer.to_bigquery(sql, "p", "marts_v1"), read="bigquery")
        for table, column in PARTITION_COLUMNS.items():
            for scan in (t for t in tree.find_all(sqlglot.exp.Table) if t.name == table):
                select = scan.find_ancestor(sqlglot.exp.Select)
                where = select.args.get("where")
                alias = scan.alias_or_name
                bounded = where is not None and any(
                    isinstance(c.parent, sqlglot.exp.GTE | sqlglot.exp.GT | sqlglot.exp.LT | sqlglot.exp.LTE)
                    and c.name == column and c.table in ("", alias) for c in where.find_all(sqlglot.exp.Column))
                assert bounded, f"{panel}: {table} read without a bound on {column}"
                checked += 1
    assert checked > 0
    from activation.conversions import QUERY

    assert "e.event_at >= timestamp" in QUERY  # activation's refunds: every partition, said so


def test_read_conversions_returns_the_same_conversions_on_bigquery(bigquery_run, elt_run):
    on_duckdb = read_conversions(elt_run["published"])
    with environment(bigquery_run["emulator"].env()):
        on_bigquery = read_conversions()
    assert len(on_duckdb) > 100 and any(c.kind == "refund" for c in on_duckdb)
    assert on_bigquery == on_duckdb  # dataclass equality: decimals by value, times as aware UTC


def test_activation_sends_from_bigquery_and_keeps_its_ledger_in_a_local_file(bigquery_run, world, tmp_path,
                                                                             monkeypatch):
    """`activate` on BigQuery: conversions from the published version, the ledger in
    `activation_ledger.duckdb` beside the warehouse path (activation/ledger.py), a rerun sends nothing again."""
    import duckdb

    from activation.run import activate
    from pipelines.load import settings_from_index
    from sandbox.server import SandboxServer

    state = tmp_path / "state.duckdb"
    with SandboxServer(world, mode="bench") as server:
        for key, value in settings_from_index(server.index()).items():
            if key.startswith("ACTIVATION__"):
                monkeypatch.setenv(key, value)
        with environment(bigquery_run["emulator"].env()):
            first = activate(Path("unused"), state, names=["ga4", "meta"])
            second = activate(Path("unused"), state, names=["ga4", "meta"])
    assert first.failed == 0 and first.sent > 0 and first.conversions > 100
    assert second.sent == 0 and second.failed == 0
    assert not state.exists()  # on BigQuery the warehouse path names no data: nothing was written there
    with duckdb.connect(str(tmp_path / "activation_ledger.duckdb"), read_only=True) as con:
        sent = con.execute("select count(*) from ops.activation_ledger where status = 'sent'").fetchone()[0]
    assert sent == first.sent


def test_the_dashboard_page_renders_on_bigquery_with_the_duckdb_figures(bigquery_run, elt_run, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import APP

    def render() -> AppTest:
        app = AppTest.from_file(str(APP), default_timeout=600).run()
        assert not app.exception, app.exception
        assert not app.error, [e.value for e in app.error]
        return app

    monkeypatch.setenv("JOURNEY_PUBLISHED", str(elt_run["published"]))
    on_duckdb = render()
    with environment(bigquery_run["emulator"].env()):
        on_bigquery = render()
    metrics = [(m.label, m.value, m.delta) for m in on_duckdb.metric if m.label != "Last published (UTC)"]
    assert len(metrics) >= 8
    assert [(m.label, m.value, m.delta) for m in on_bigquery.metric if m.label != "Last published (UTC)"] == metrics
