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


@pytest.mark.parametrize("command", ["activate", "dashboard"])
def test_duckdb_only_commands_refuse_on_bigquery_instead_of_showing_another_warehouse(monkeypatch, capsys, command):
    monkeypatch.setenv("JOURNEY_DESTINATION", "bigquery")
    monkeypatch.setenv("JOURNEY_BIGQUERY_PROJECT", "p1")
    assert main([command]) == 2
    assert "p1.marts_published" in capsys.readouterr().err


def test_the_emulator_environment_is_its_own(tmp_path):
    from tests.bigquery.emulator import VENV

    assert VENV == Path(__file__).resolve().parents[2] / ".venv-bqemulator"
    assert ".venv-bqemulator/" in (VENV.parent / ".gitignore").read_text()
