"""The `journey` command line as a user meets it."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import main

pytestmark = pytest.mark.flows

JOURNEY = [sys.executable, "-m", "flows.cli"]
ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "run" in out and "sandbox" in out


def test_run_without_any_configuration_names_what_is_missing(monkeypatch, tmp_path, capsys):
    import os

    for key in list(os.environ):
        if key.startswith("SOURCES__"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .dlt/ folder here either
    monkeypatch.setenv("JOURNEY_WAREHOUSE", str(tmp_path / "w.duckdb"))
    from flows.elt import NothingConfigured, plan_sources

    with pytest.raises(NothingConfigured) as caught:
        plan_sources(None)
    message = str(caught.value)
    for setting in ("sources.shopify.base_url", "sources.shopify.access_token", "sources.stripe.api_key",
                    "sources.hubspot.access_token", "sources.activecampaign.api_token"):
        assert setting in message


def test_sandbox_truth_writes_the_csv_files(tmp_path):
    assert main(["sandbox", "truth", "--seed", "5", "--people", "60", "--out", str(tmp_path)]) == 0
    with (tmp_path / "people.csv").open() as handle:
        people = list(csv.DictReader(handle))
    assert len(people) == 60
    assert {"person_id", "email", "lifetime_orders", "lifetime_net_revenue"} <= set(people[0])
    assert (tmp_path / "orders.csv").exists() and (tmp_path / "payments.csv").exists()


@pytest.mark.slow
def test_journey_run_sandbox_end_to_end_as_make_run_does(tmp_path):
    """The demo command in its own process: sandbox, Prefect flow, dbt, summary; twice, same mart."""
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(tmp_path),
           "JOURNEY_WAREHOUSE": str(tmp_path / "demo.duckdb"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_HOME": str(tmp_path / "prefect")}
    outputs = []
    for _ in range(2):
        done = subprocess.run(JOURNEY + ["run", "--sandbox", "--people", "150", "--seed", "11"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append(done.stdout)
    for out in outputs:
        assert "Rows loaded:" in out and "dbt build:" in out and f"Warehouse: {tmp_path / 'demo.duckdb'}" in out
    headline = [line for line in outputs[0].splitlines() if line.startswith("Mart:")]
    assert headline and headline == [line for line in outputs[1].splitlines() if line.startswith("Mart:")]


def test_dashboard_subcommand_serves_streamlit_on_loopback_headless(capsys):
    from flows.cli import build_parser, dashboard_command

    assert build_parser().parse_args(["dashboard", "--port", "8600"]).port == 8600
    command = dashboard_command(8600)
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("dashboard/app.py")
    flags = dict(zip(command[5::2], command[6::2], strict=True))
    assert flags["--server.port"] == "8600" and flags["--server.address"] == "127.0.0.1"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
