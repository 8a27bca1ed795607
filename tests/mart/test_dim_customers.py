"""The whole chain (sandbox over HTTP -> dlt -> DuckDB -> dbt, as one Prefect flow) against the truth."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from sandbox.truth import people_rows

pytestmark = [pytest.mark.mart, pytest.mark.flows, pytest.mark.slow]


def mart_people(warehouse) -> dict[str, tuple[int, Decimal]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select email, lifetime_orders, lifetime_net_revenue from marts.dim_customers").fetchall()
    return {email: (orders, net) for email, orders, net in rows}


def test_dim_customers_matches_the_truth_for_buyers_to_the_cent(chain):
    mart = mart_people(chain.warehouse)
    truth = {r["email"]: (r["lifetime_orders"], r["lifetime_net_revenue"]) for r in people_rows(chain.world)}
    mart_buyers = {e: v for e, v in mart.items() if v[0] > 0}
    true_buyers = {e: v for e, v in truth.items() if v[0] > 0}
    assert len(mart_buyers) == len(true_buyers)
    assert sum(v[1] for v in mart_buyers.values()) == sum(v[1] for v in true_buyers.values())
    assert mart_buyers == true_buyers  # every buyer, their order count and net revenue, to the cent
    assert all(isinstance(v[1], Decimal) for v in mart.values())


def test_dim_customers_has_one_row_per_real_person(chain):
    mart = mart_people(chain.warehouse)
    assert set(mart) == {p.email for p in chain.world.people}


def test_second_run_leaves_the_same_warehouse(elt_run):
    first, second = elt_run["after_first"], elt_run["after_second"]
    assert set(first) == set(second)
    for table in first:
        assert first[table] == second[table], f"{table} changed on a rerun with no new data"
    assert len(first["marts.dim_customers"]) > 0


def test_run_summary_reports_loads_dbt_and_headline(elt_run, world):
    summary = elt_run["first"]
    assert {load.source for load in summary.loads} == {"activecampaign", "shopify", "stripe", "hubspot"}
    assert summary.dbt.models_passed >= 10 and summary.dbt.tests_passed >= 20 and not summary.dbt.failures
    truth = people_rows(world)
    assert summary.headline.customers == sum(1 for r in truth if r["lifetime_orders"] > 0)
    assert summary.headline.net_revenue == sum(r["lifetime_net_revenue"] for r in truth)
    assert summary.headline.people == len(truth)


def test_a_new_warehouse_file_loads_everything_again(elt_run, tmp_path, sandbox_settings):
    from flows.elt import elt_flow

    fresh = elt_flow(warehouse=str(tmp_path / "other.duckdb"), published=str(tmp_path / "other-marts.duckdb"))
    # no cursor inherited from the other warehouse: every table loads in full again
    rows_by_source = {load.source: load.rows for load in elt_run["first"].loads}
    assert {load.source: load.rows for load in fresh.loads} == rows_by_source
    assert fresh.headline == elt_run["first"].headline
    assert (tmp_path / "other.duckdb.dlt").is_dir()
