"""Session-wide fixtures: one small world, one sandbox serving it, one Prefect test server, and one
warehouse loaded through the whole chain. Expensive things are built once and read by many tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

# Prefect binds its console log handler to sys.stderr when first imported: import it now, while stderr
# is the session's, not a capture that a single test closes.
import flows.elt  # noqa: E402,F401
from pipelines.load import settings_from_index  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from sandbox.world import World  # noqa: E402
from tests.environment import environment  # noqa: E402

SEED = 7
PEOPLE = 400


@pytest.fixture(scope="session")
def world() -> World:
    return World.build(SEED, PEOPLE)


@pytest.fixture(scope="session")
def sandbox(world: World) -> Iterator[SandboxServer]:
    with SandboxServer(world) as server:
        yield server


@pytest.fixture(scope="session")
def sandbox_settings(sandbox: SandboxServer) -> Iterator[dict[str, str]]:
    """Every source pointed at the session's sandbox through dlt's environment variables. Not the
    activation destinations: their writes (CRM upserts) would change what later reads of this shared
    sandbox see; activation tests use sandboxes of their own."""
    with environment(settings_from_index(sandbox.index(), destinations=False)) as settings:
        yield settings


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def elt_run(tmp_path_factory, sandbox_settings, prefect_server):
    """The whole chain run once (then again) on the session's world; read-only for the tests."""
    from flows.elt import elt_flow

    folder = tmp_path_factory.mktemp("elt")
    warehouse, published = folder / "warehouse.duckdb", folder / "marts.duckdb"
    first = elt_flow(warehouse=str(warehouse), published=str(published))
    after_first = snapshot(warehouse)
    second = elt_flow(warehouse=str(warehouse), published=str(published))
    return {"warehouse": warehouse, "published": published, "first": first, "second": second,
            "after_first": after_first, "after_second": snapshot(warehouse)}


def snapshot(warehouse: Path) -> dict[str, list[tuple]]:
    """Every raw and mart table's rows (without dlt's load bookkeeping), sorted, to compare runs."""
    import duckdb

    tables = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where (table_schema like 'raw\\_%' escape '\\' and table_schema not like '%\\_staging' escape '\\' "
            "and table_name not like '\\_dlt%' escape '\\') or table_schema = 'marts'").fetchall()
        for schema, table in names:
            columns = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "and column_name not like '\\_dlt%' escape '\\' order by column_name", [schema, table]).fetchall()]
            quoted = ", ".join(f'"{c}"' for c in columns)
            tables[f"{schema}.{table}"] = sorted(con.execute(f'select {quoted} from "{schema}"."{table}"').fetchall(),
                                                 key=repr)
    return tables
