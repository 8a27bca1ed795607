"""The same dlt sources, dbt models and flow on BigQuery (bqemulator 1.4.0 standing in for it): raw loads and
every public mart equal the DuckDB build of the same world, and publishing keeps write, audit, publish.

Every model runs on the emulator. Two things differ there only, because its DuckDB translation cannot run
them (dbt_project.yml, macros/contracts.sql): staging models are tables instead of views (a query reading
two of those views fails to bind), and contracted tables are created without BigQuery's column list (DuckDB
has none on CREATE TABLE AS; the contract's names and types are still checked before each build).
"""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal

import duckdb
import pytest

from flows.publish import connect_published
from tests.environment import environment

pytestmark = [pytest.mark.bigquery, pytest.mark.slow]

PUBLIC_MARTS = ["dim_customers", "fct_attribution", "fct_journey_events", "fct_orders", "fct_payments",
                "rpt_cohort_retention", "rpt_daily_kpis"]
MODELS_NOT_RUN_ON_EMULATOR: list[str] = []  # every model runs there (see the module's docstring)


def canonical(value):
    """One spelling per value across engines: money as exact decimals (NUMERIC carries 9 decimals, DuckDB's
    decimal(18,2) two: 12.30 == 12.300), floats to 9 decimals, the rest as it is."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, float):
        return f"{value:.9f}"
    return repr(value)


def ordered_hash(rows) -> tuple[int, str]:
    lines = sorted("|".join(canonical(v) for v in row) for row in rows)
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def duckdb_rows(published, table: str) -> list[tuple]:
    with connect_published(published) as con:
        return con.execute(f'select * from marts."{table}"').fetchall()


def test_the_flow_loads_builds_gates_and_publishes_on_bigquery(bigquery_run):
    summary = bigquery_run["summary"]
    assert summary.dbt.failures == []
    assert summary.dbt.models_passed == 30 and summary.dbt.tests_passed > 100
    assert summary.gate.passed, summary.gate.problems
    assert set(summary.gate.freshness.values()) <= {"pass", "warn"}
    assert set(summary.published_rows) == set(PUBLIC_MARTS)
    assert summary.headline.people > 0
    # the activate step ran on BigQuery: it read the published version, and found no destination configured
    assert summary.activation is not None and summary.activation.destinations == []
    # so did the webhook merge (nothing landed), its bookkeeping in the local file beside the state
    assert summary.webhooks is not None and summary.webhooks.landed == 0
    assert (bigquery_run["state"] / "webhook_landing.duckdb").exists()
    first = bigquery_run["first"]
    assert first.dbt.failures == [] and first.gate.passed and first.published_rows == summary.published_rows
    assert sum(sum(load.rows.values()) for load in first.loads) > sum(sum(load.rows.values()) for load in summary.loads)


def test_the_largest_marts_are_partitioned_and_clustered_and_queries_capped(bigquery_run):
    """The DDL dbt ran on BigQuery (the emulator accepts it but keeps no partition metadata and enforces no
    partition filter, so this is as far as it proves)."""
    from flows.bigquery import PARTITION_COLUMNS

    ddl = bigquery_run["mart_ddl"]
    for table, column in {**PARTITION_COLUMNS, "fct_orders": "created_at"}.items():
        assert f"partition by datetime_trunc({column}, month)" in ddl[table], table
        assert "cluster by" in ddl[table], table
    assert "partition by datetime_trunc" not in ddl["dim_customers"]  # a small table: not partitioned


def test_raw_tables_hold_the_rows_duckdb_holds(bigquery_run, elt_run):
    from flows import bigquery

    with environment(bigquery_run["emulator"].env()):
        client = bigquery.client()
        compared = 0
        with duckdb.connect(str(elt_run["warehouse"]), read_only=True) as con:
            tables = con.execute(
                "select table_schema, table_name from information_schema.tables where table_schema like 'raw\\_%' "
                "escape '\\' and table_schema not like '%\\_staging' escape '\\' and table_name not like '\\_dlt%' "
                "escape '\\' order by 1, 2").fetchall()
            for schema, table in tables:
                expected = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
                got = bigquery.query(f"select count(*) from `{client.project}.{schema}.{table}`", client)[0][0]
                assert got == expected, f"{schema}.{table}: BigQuery {got}, DuckDB {expected}"
                compared += 1
    assert compared >= 25


def test_every_public_mart_equals_the_duckdb_build(bigquery_run, elt_run):
    """Ordered row hashes of what readers see (the published version) on both warehouses."""
    from flows import bigquery

    assert MODELS_NOT_RUN_ON_EMULATOR == []
    with environment(bigquery_run["emulator"].env()):
        published = bigquery.published_rows()
    differing = {}
    for table in PUBLIC_MARTS:
        on_bigquery, on_duckdb = ordered_hash(published[table]), ordered_hash(duckdb_rows(elt_run["published"], table))
        assert on_bigquery[0] > 0
        if on_bigquery != on_duckdb:
            differing[table] = (on_bigquery[0], on_duckdb[0])
    assert differing == {}, f"marts differing (BigQuery rows, DuckDB rows): {differing}"


def test_headline_figures_agree_to_the_cent(bigquery_run, elt_run):
    with connect_published(elt_run["published"]) as con:
        people, revenue = con.execute("select count(*), sum(lifetime_net_revenue) from marts.dim_customers").fetchone()
    headline = bigquery_run["summary"].headline
    assert (headline.people, headline.net_revenue) == (people, revenue)


def test_publishing_again_switches_readers_to_the_new_version_at_once(bigquery_run):
    from flows import bigquery

    with environment(bigquery_run["emulator"].env()):
        client = bigquery.client()
        before = bigquery.published_dataset(client)
        identity = bigquery.published_identity(client)
        assert bigquery.last_published(client)["run_id"] == bigquery_run["summary"].run_id
        done = bigquery.publish("republish-test", "incremental", {})
        after = bigquery.published_dataset(client)
        assert bigquery.published_identity(client) != identity  # what the dashboard watches changes
        assert after != before and bigquery.last_published(client)["run_id"] == "republish-test"
        view = f"`{client.project}.{bigquery.PUBLISHED_DATASET}.dim_customers`"
        assert bigquery.query(f"select count(*) from {view}", client)[0][0] == done.rows_per_table["dim_customers"]
        history = bigquery.query(f"select run_id from `{client.project}.{after}.run_history` order by published_at",
                                 client)
        runs = [bigquery_run["first"].run_id, bigquery_run["summary"].run_id, "republish-test"]
        assert [r[0] for r in history] == runs
        assert before in {d.dataset_id for d in client.list_datasets()}  # kept for readers still on it


def test_emulator_settings_never_leak_into_the_session(bigquery_run):
    assert "BIGQUERY_EMULATOR_HOST" not in os.environ and os.environ.get("JOURNEY_DESTINATION") != "bigquery"
