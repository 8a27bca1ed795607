"""`JOURNEY_DUCKDB_MEMORY_LIMIT` bounds DuckDB in both places that write the warehouse: dlt's loads and dbt's
builds; a value DuckDB would not take is refused before anything runs, naming the setting."""

from __future__ import annotations

import json

import dlt
import pytest

from flows.dbt import _dbt
from pipelines.load import make_destination
from pipelines.warehouse import duckdb_memory_limit

pytestmark = pytest.mark.sources


def test_loads_and_dbt_builds_run_under_the_limit(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("JOURNEY_DUCKDB_MEMORY_LIMIT", "300MB")
    pipeline = dlt.pipeline(pipeline_name="memory_limit", destination=make_destination(warehouse),
                            dataset_name="raw_probe", pipelines_dir=str(tmp_path / "dlt"))
    pipeline.run([{"id": 1}], table_name="probe")
    with pipeline.sql_client() as client:
        assert client.execute_sql("select current_setting('memory_limit')") == [("286.1 MiB",)]  # 300 MB in MiB

    shown = _dbt(["show", "--inline", "select current_setting('memory_limit') as memory_limit", "--output", "json"],
                 warehouse)
    output, _ = shown.communicate()
    assert shown.returncode == 0, output
    previews = [json.loads(line)["data"].get("preview") for line in output.splitlines() if '"preview"' in line]
    assert previews and json.loads(previews[-1]) == [{"memory_limit": "286.1 MiB"}]


def test_without_the_setting_duckdb_keeps_its_own_default(monkeypatch):
    monkeypatch.delenv("JOURNEY_DUCKDB_MEMORY_LIMIT", raising=False)
    assert duckdb_memory_limit() is None
    for value in ("512MB", "2 GB", "1.5GiB", "50%"):
        monkeypatch.setenv("JOURNEY_DUCKDB_MEMORY_LIMIT", value)
        assert duckdb_memory_limit() == value


@pytest.mark.parametrize("value", ["lots", "512", "-1GB", "2 GB; drop table x"])
def test_a_value_duckdb_would_not_take_is_refused_naming_the_setting(monkeypatch, tmp_path, value):
    monkeypatch.setenv("JOURNEY_DUCKDB_MEMORY_LIMIT", value)
    with pytest.raises(ValueError, match=r"JOURNEY_DUCKDB_MEMORY_LIMIT=.*such as 512MB or 2GB"):
        make_destination(tmp_path / "warehouse.duckdb")
