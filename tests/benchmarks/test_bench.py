"""`journey bench` at a tiny size, to keep the harness working: every measurement is there with its figures,
floor, baseline and ours fetched the same records endpoint by endpoint, and an incremental run with nothing
changed fetched far fewer. No timing is asserted (benchmarks/README.md holds the figures)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from flows.cli import build_parser

pytestmark = [pytest.mark.bench, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 150


def _bench():
    spec = importlib.util.spec_from_file_location("journey_bench", ROOT / "benchmarks" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _bench()


@pytest.fixture(scope="module")
def measured(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-results")
    result, path = bench.run(PEOPLE, seed=3, out=out, dashboard_repeat=2, workdir=tmp_path_factory.mktemp("work"))
    return {"result": result, "path": path, "out": out}


def test_writes_every_measurement_with_its_figures(bench, measured):
    written = json.loads(measured["path"].read_text())
    assert measured["path"].parent == measured["out"] and measured["path"].suffix == ".json"
    assert written["people"] == PEOPLE
    assert len(written["commit"].removesuffix("-dirty")) == 40
    assert written["machine"]["cpus"] >= 1
    for name in bench.MEASUREMENTS:
        figures = written[name]
        assert figures["seconds"] > 0, name
        assert isinstance(figures["records"], int) and figures["records"] > 0, name
        assert figures["peak_mb"] > 0, name
    assert written["dbt_full"]["models"] > 0 and written["dbt_full"]["tests"] > 0
    assert written["dashboard"]["page_unfiltered"]["p95_ms"] > 0
    assert set(written["ratios"]) >= {"ours_over_floor", "baseline_over_ours", "baseline_parquet_over_ours",
                                      "incremental_nochange_over_full", "dbt_incremental_over_full"}


def test_floor_baseline_and_ours_fetched_the_same_records(bench, measured):
    result = measured["result"]
    assert result["records_check"]["equal"], result["records_check"]["mismatches"]
    ours = result["ours_full"]["endpoints"]
    # every endpoint the floor replayed and the baseline read, with the same records as ours
    assert set(result["floor"]["endpoints"]) == set(ours)
    for key, figures in ours.items():
        assert result["floor"]["endpoints"][key]["records"] == figures["records"], key
        assert result["floor"]["endpoints"][key]["requests"] == figures["requests"], key
        if figures["group"] != "metadata":  # the baseline names no account: no metadata calls
            for baseline in ("baseline", "baseline_parquet"):
                assert result[baseline]["endpoints"][key]["records"] == figures["records"], (baseline, key)
    assert {"activecampaign/contacts", "shopify/orders", "stripe/v1/charges", "hubspot/crm/v3/objects/contacts",
            "activecampaign/ecomOrders", "shopify/customers?fields=id"} <= set(ours)
    assert sum(f["records"] for f in ours.values()) == result["ours_full"]["records"] > PEOPLE


def test_the_records_check_names_who_ours_was_compared_with(bench, measured):
    result = measured["result"]
    assert result["records_check"]["compared"] == ["floor", "baseline", "baseline_parquet"]
    # with everything skipped nothing was compared, and the report says so rather than "equal"
    alone = {**result, **{name: {"skipped": True} for name in ("floor", "baseline", "baseline_parquet")}}
    check = bench.compare_records(alone)
    assert check["compared"] == [] and bench.records_line(check).startswith("records not compared")


def test_an_incremental_run_without_changes_fetches_far_fewer_records(measured):
    result = measured["result"]
    full, nochange = result["ours_full"], result["ours_incremental_nochange"]
    assert nochange["records"] < full["records"] / 2
    split = result["incremental"]
    # endpoints with a server-side filter read only their overlaps; ecom lists are read in full by design
    assert split["ours_incremental_nochange"]["filtered"]["records_ratio"] <= 0.1
    assert split["ours_incremental_nochange"]["ecom"]["records_ratio"] == 1
    # after the clock moved, the filtered endpoints brought what changed
    assert (split["ours_incremental_1pct"]["filtered"]["records"]
            > split["ours_incremental_nochange"]["filtered"]["records"])
    assert 0 < split["changed_share"] < 0.2


def test_report_and_plot(bench, measured, tmp_path):
    text = bench.report(measured["result"])
    assert "ours_over_floor" in text
    assert "records equal per endpoint (floor, baseline, baseline_parquet, ours): True" in text
    svg = bench.plot(measured["out"], tmp_path / "scaling.svg")
    assert svg.read_text().startswith("<svg") and "ours_full" in svg.read_text()


def test_journey_bench_takes_the_same_options():
    args = build_parser().parse_args(["bench", "--quick", "--seed", "5", "--out", "/tmp/x"])
    assert args.command == "bench" and args.quick and args.seed == 5 and args.out == Path("/tmp/x")
