"""Choosing BigQuery is configuration only: what each setting selects, without a warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import main
from pipelines.load import make_destination, make_staging
from pipelines.warehouse import dbt_target, destination_name

pytestmark = pytest.mark.bigquery


def test_destination_defaults_to_duckdb_and_is_checked(monkeypatch):
    monkeypatch.delenv("JOURNEY_DESTINATION", raising=False)
    monkeypatch.delenv("JOURNEY_DBT_TARGET", raising=False)
    assert (destination_name(), dbt_target()) == ("duckdb", "duckdb")
    monkeypatch.setenv("JOURNEY_DESTINATION", "BigQuery ")
    assert (destination_name(), dbt_target()) == ("bigquery", "bigquery")
    monkeypatch.setenv("JOURNEY_DESTINATION", "snowflake")
    with pytest.raises(ValueError, match="duckdb, bigquery"):
        destination_name()


def test_an_emulator_needs_a_project_and_gets_credentials_that_never_refresh(monkeypatch, tmp_path):
    monkeypatch.setenv("JOURNEY_DESTINATION", "bigquery")
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("JOURNEY_BIGQUERY_PROJECT", raising=False)
    with pytest.raises(ValueError, match="JOURNEY_BIGQUERY_PROJECT"):
        make_destination(tmp_path / "w.duckdb")
    monkeypatch.setenv("JOURNEY_BIGQUERY_PROJECT", "p1")
    destination = make_destination(tmp_path / "w.duckdb")
    assert destination.destination_type.endswith("bigquery")
    credentials = destination.config_params["credentials"]
    native = credentials.to_native_credentials()
    assert credentials.project_id == "p1" and native.valid and not native.expired  # no call to Google's token URL
    assert make_staging() is None
    monkeypatch.setenv("JOURNEY_BIGQUERY_STAGING_BUCKET", "gs://bucket/journey")
    assert make_staging().destination_type.endswith("filesystem")


def test_the_dashboard_serves_on_bigquery_and_says_what_it_reads(monkeypatch, capsys):
    """It used to refuse there; it now reads the published version through flows/published.py."""
    started = []
    monkeypatch.setenv("JOURNEY_DESTINATION", "bigquery")
    monkeypatch.setenv("JOURNEY_BIGQUERY_PROJECT", "p1")
    monkeypatch.setattr("os.execve", lambda path, command, env: started.append(command))
    assert main(["dashboard", "--port", "8599"]) == 0
    assert started and "streamlit" in started[0] and "p1.marts_published" in capsys.readouterr().out


def test_the_activation_ledger_is_a_local_duckdb_file_on_bigquery(monkeypatch, tmp_path):
    from activation.ledger import ledger_path

    monkeypatch.delenv("JOURNEY_ACTIVATION_LEDGER", raising=False)
    monkeypatch.delenv("JOURNEY_DESTINATION", raising=False)
    assert ledger_path(tmp_path / "w.duckdb") == tmp_path / "w.duckdb"  # DuckDB: in the warehouse, as before
    monkeypatch.setenv("JOURNEY_DESTINATION", "bigquery")
    assert ledger_path(tmp_path / "w.duckdb") == tmp_path / "activation_ledger.duckdb"
    monkeypatch.setenv("JOURNEY_ACTIVATION_LEDGER", str(tmp_path / "elsewhere" / "ledger.duckdb"))
    assert ledger_path(tmp_path / "w.duckdb") == tmp_path / "elsewhere" / "ledger.duckdb"


def test_duckdb_sql_is_translated_for_one_published_version():
    from flows.published import to_bigquery

    sql = ("select date_trunc('week', cast(o.order_date as date)), count(*) filter (where o.country = ?) "
           "from marts.fct_orders as o where list_contains(?, o.currency) and o.note = '?' limit ?")
    translated = to_bigquery(sql, "p-1", "marts_v1")
    assert "`p-1`.`marts_v1`.`fct_orders`" in translated and "WEEK(MONDAY)" in translated
    assert "COUNTIF(o.country = @p1)" in translated and "UNNEST(@p2)" in translated and "LIMIT @p3" in translated
    assert "'?'" in translated  # a question mark in a string is not a parameter


def test_the_emulator_environment_is_its_own(tmp_path):
    from tests.bigquery.emulator import VENV

    assert VENV == Path(__file__).resolve().parents[2] / ".venv-bqemulator"
    # ignored as any kind of entry: a symlink to it (a worktree's) is no directory, and `.venv-bqemulator/` missed it
    assert ".venv-bqemulator" in (VENV.parent / ".gitignore").read_text().split()
