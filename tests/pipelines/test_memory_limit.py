"""DuckDB's memory is bounded where the warehouse is written: dlt's loads by `JOURNEY_DUCKDB_LOAD_MEMORY_LIMIT`
(512MB unless set), dbt's builds by `JOURNEY_DUCKDB_MEMORY_LIMIT` (DuckDB's own default unless set); a value
DuckDB would not take is refused before anything runs, naming the setting."""

from __future__ import annotations

import json

import dlt
import pytest

from flows.dbt import _dbt
from pipelines.load import make_destination
from pipelines.warehouse import duckdb_load_memory_limit, duckdb_memory_limit

pytestmark = pytest.mark.sources


def _load_memory_limit(tmp_path, warehouse) -> str:
    pipeline = dlt.pipeline(pipeline_name="memory_limit", destination=make_destination(warehouse),
                            dataset_name="raw_probe", pipelines_dir=str(tmp_path / "dlt"))
    pipeline.run([{"id": 1}], table_name="probe")
    with pipeline.sql_client() as client:
        return client.execute_sql("select current_setting('memory_limit')")[0][0]


def test_loads_and_dbt_builds_run_under_their_own_limits(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.delenv("JOURNEY_DUCKDB_LOAD_MEMORY_LIMIT", raising=False)
    monkeypatch.setenv("JOURNEY_DUCKDB_MEMORY_LIMIT", "300MB")
    assert _load_memory_limit(tmp_path, warehouse) == "488.2 MiB"  # the loads' default, 512 MB in MiB
    monkeypatch.setenv("JOURNEY_DUCKDB_LOAD_MEMORY_LIMIT", "200MB")
    assert _load_memory_limit(tmp_path, warehouse) == "190.7 MiB"

    shown = _dbt(["show", "--inline", "select current_setting('memory_limit') as memory_limit", "--output", "json"],
                 warehouse)
    output, _ = shown.communicate()
    assert shown.returncode == 0, output
    previews = [json.loads(line)["data"].get("preview") for line in output.splitlines() if '"preview"' in line]
    assert previews and json.loads(previews[-1]) == [{"memory_limit": "286.1 MiB"}]  # 300 MB in MiB


def test_defaults_and_the_values_duckdb_takes(monkeypatch):
    monkeypatch.delenv("JOURNEY_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("JOURNEY_DUCKDB_LOAD_MEMORY_LIMIT", raising=False)
    assert duckdb_memory_limit() is None
    assert duckdb_load_memory_limit() == "512MB"
    for value in ("512MB", "2 GB", "1.5GiB", "50%"):
        monkeypatch.setenv("JOURNEY_DUCKDB_MEMORY_LIMIT", value)
        monkeypatch.setenv("JOURNEY_DUCKDB_LOAD_MEMORY_LIMIT", value)
        assert duckdb_memory_limit() == value
        assert duckdb_load_memory_limit() == value


@pytest.mark.parametrize("value", ["lots", "512", "-1GB", "2 GB; drop table x"])
def test_a_value_duckdb_would_not_take_is_refused_naming_the_setting(monkeypatch, tmp_path, value):
    monkeypatch.setenv("JOURNEY_DUCKDB_LOAD_MEMORY_LIMIT", value)
    with pytest.raises(ValueError, match=r"JOURNEY_DUCKDB_LOAD_MEMORY_LIMIT=.*such as 512MB or 2GB"):
        make_destination(tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("JOURNEY_DUCKDB_MEMORY_LIMIT", value)
    with pytest.raises(ValueError, match=r"JOURNEY_DUCKDB_MEMORY_LIMIT=.*such as 512MB or 2GB"):
        duckdb_memory_limit()
