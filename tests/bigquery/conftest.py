"""The BigQuery target, proven on a local emulator: one fresh emulator per test session (a failed load can
leave one hanging), in its own process and environment (`make bqemulator`, which `make test` runs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flows.dbt import TARGET_PATH
from tests.bigquery.emulator import BigQueryEmulator
from tests.environment import environment


@pytest.fixture(scope="session")
def bigquery_emulator() -> Iterator[BigQueryEmulator]:
    with BigQueryEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def bigquery_run(tmp_path_factory, elt_run, sandbox_settings, prefect_server, bigquery_emulator):
    """The whole chain twice (as `elt_run` does: the second run incremental, so dlt's merges and the
    incremental models' BigQuery merge run on loaded tables) with the warehouse on BigQuery (configuration
    only: JOURNEY_DESTINATION and the emulator's address and project), on the same world `elt_run` loaded
    into DuckDB. The DuckDB run is made first so that it never sees the BigQuery settings."""
    from flows.elt import elt_flow

    folder = tmp_path_factory.mktemp("bigquery")
    with environment(bigquery_emulator.env()):  # only for this run: the rest of the session stays on DuckDB
        first = elt_flow(warehouse=str(folder / "state.duckdb"))
        summary = elt_flow(warehouse=str(folder / "state.duckdb"))
        # what dbt ran for BigQuery, read now: later DuckDB builds in this session write the same target folder
        ran = TARGET_PATH / "run" / "journey" / "models" / "marts"
        statements = {path.stem: path.read_text() for path in ran.glob("*.sql")}
    return {"first": first, "summary": summary, "emulator": bigquery_emulator, "state": folder, "mart_ddl": statements}
