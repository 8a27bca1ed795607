"""Schema drift, as a vendor changes what it sends: a new field lands as a new column and is named in the run
summary; a field that changes type stops the run with a clear message and loads nothing."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from flows.summary import RunSummary, format_summary
from pipelines.load import SchemaChanged, load_source, settings_from_index
from sandbox.server import SandboxServer
from sandbox.store import whole
from sandbox.world import World

pytestmark = pytest.mark.sources


@pytest.fixture
def drifting(monkeypatch) -> Iterator[SandboxServer]:
    with SandboxServer(World.build(17, 40), mode="bench") as server:
        for key, value in settings_from_index(server.index(), destinations=False).items():
            monkeypatch.setenv(key, value)
        yield server


def change_newest_charge(server: SandboxServer, **fields) -> None:
    """The vendor changes what it serves for its newest charge (newest first: in the next run's overlap)."""
    stripe = server.sandbox.vendors["stripe"]
    stripe.lists["charges"] = stripe.lists["charges"].edit(replace={0: {**whole(stripe.lists["charges"][0]), **fields}})


def count(warehouse, sql: str) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def test_a_new_field_lands_and_is_named_in_the_run_summary(drifting, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    load_source("stripe", warehouse)
    change_newest_charge(drifting, radar_score="elevated")
    second = load_source("stripe", warehouse)
    assert second.new_columns == {"charges": ["radar_score"]}
    assert count(warehouse, "select count(*) from raw_stripe.charges where radar_score = 'elevated'") == 1

    report = format_summary(RunSummary("run-1", warehouse, tmp_path / "marts.duckdb", loads=[second]))
    assert "stripe          new columns in charges: radar_score" in report


def test_a_field_changing_type_stops_the_run_and_loads_nothing(drifting, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    load_source("stripe", warehouse)
    before = count(warehouse, "select count(*) from raw_stripe._dlt_loads")
    change_newest_charge(drifting, amount="12.34")  # was an integer of minor units
    with pytest.raises(SchemaChanged) as stopped:
        load_source("stripe", warehouse)
    message = str(stopped.value)
    assert "'amount'" in message and "'charges'" in message and "bigint" in message and "nothing" in message
    assert count(warehouse, "select count(*) from raw_stripe._dlt_loads") == before
    change_newest_charge(drifting, amount=1234)  # the vendor reverts: the next run goes through
    load_source("stripe", warehouse)
    assert count(warehouse, "select count(*) from raw_stripe._dlt_loads") == before + 1
