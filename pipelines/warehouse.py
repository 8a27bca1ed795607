"""Where the warehouse lives, and the facts that follow from it (dlt's state directory, the destination).

The warehouse is DuckDB (default, embedded) or BigQuery, chosen by configuration only: `JOURNEY_DESTINATION`
(`duckdb` or `bigquery`; `journey run --destination` sets it). On BigQuery, the project, location and
credentials are dlt's usual settings (`DESTINATION__BIGQUERY__...`, a service-account JSON or application
default credentials); dbt's `bigquery` target reads the same project (`JOURNEY_BIGQUERY_PROJECT`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DESTINATIONS = ("duckdb", "bigquery")
MEMORY_LIMIT = re.compile(r"\d+(\.\d+)?\s*(b|kb|mb|gb|tb|kib|mib|gib|tib|%)", re.IGNORECASE)


def warehouse_path() -> Path:
    """`JOURNEY_WAREHOUSE`, or `data/warehouse.duckdb`; relative paths are taken from the working directory.
    On BigQuery it names no data, only where dlt keeps its local working state (beside it)."""
    return Path(os.environ.get("JOURNEY_WAREHOUSE") or DEFAULT_WAREHOUSE).expanduser().resolve()


def pipelines_dir(warehouse: Path) -> Path:
    """dlt's working directory (incremental state) beside the warehouse file, so a new warehouse file
    never inherits another one's cursors."""
    return warehouse.with_name(warehouse.name + ".dlt")


def ops_database(warehouse: Path, name: str) -> Path:
    """Where an operational table (`ops.*`: the activation ledger, the webhook landing) is kept: in the DuckDB
    warehouse itself; on BigQuery in the local DuckDB file `name` beside the warehouse path, with dlt's state
    and the run lock (its rows are written one at a time and each must commit at once, which BigQuery DML
    serves slowly)."""
    return warehouse.with_name(name) if destination_name() == "bigquery" else warehouse


def destination_name() -> str:
    """`JOURNEY_DESTINATION`: `duckdb` (default) or `bigquery`."""
    name = (os.environ.get("JOURNEY_DESTINATION") or "duckdb").strip().lower()
    if name not in DESTINATIONS:
        raise ValueError(f"JOURNEY_DESTINATION={name!r}: choose one of {', '.join(DESTINATIONS)}")
    return name


LOAD_MEMORY_LIMIT = "512MB"  # loads append files and merge by key: more memory only fills DuckDB's cache


def _memory_setting(variable: str) -> str | None:
    raw = (os.environ.get(variable) or "").strip()
    if raw and not MEMORY_LIMIT.fullmatch(raw):
        raise ValueError(f"{variable}={raw!r}: give a size such as 512MB or 2GB, or a share of the machine's memory "
                         f"such as 50%")
    return raw or None


def duckdb_memory_limit() -> str | None:
    """`JOURNEY_DUCKDB_MEMORY_LIMIT` (`512MB`, `2GB`, `50%`): the most memory DuckDB may take in a dbt build
    before it spills to disk beside the warehouse. Unset: DuckDB's own default, 80% of the machine's memory,
    the fastest where memory is plenty (benchmarks/HISTORY.md, "Memory bound")."""
    return _memory_setting("JOURNEY_DUCKDB_MEMORY_LIMIT")


def duckdb_load_memory_limit() -> str:
    """`JOURNEY_DUCKDB_LOAD_MEMORY_LIMIT`: the most memory DuckDB may take in a dlt load; unset, `512MB`.
    Unbounded, a load's memory grows with the data it writes (DuckDB keeps written blocks cached, up to its
    limit) though nothing needs it: at 1M people this bound took the full run's peak from 2,561 to 1,108 MiB
    for 33 s more of loading (benchmarks/HISTORY.md, "Memory: the loads bounded")."""
    return _memory_setting("JOURNEY_DUCKDB_LOAD_MEMORY_LIMIT") or LOAD_MEMORY_LIMIT


def dbt_target() -> str:
    """The dbt target (profiles.yml) for the chosen destination; `JOURNEY_DBT_TARGET` overrides it."""
    return os.environ.get("JOURNEY_DBT_TARGET") or destination_name()


def bigquery_project() -> str | None:
    """`JOURNEY_BIGQUERY_PROJECT`: the project that holds the datasets (dlt's and dbt's); unset, dlt takes
    its credentials' project."""
    return os.environ.get("JOURNEY_BIGQUERY_PROJECT") or None


def bigquery_location() -> str:
    """`JOURNEY_BIGQUERY_LOCATION`: where datasets are created (default `US`)."""
    return os.environ.get("JOURNEY_BIGQUERY_LOCATION") or "US"


def bigquery_emulator() -> str | None:
    """`BIGQUERY_EMULATOR_HOST` (with `http://`): the official client then talks to a local emulator."""
    return os.environ.get("BIGQUERY_EMULATOR_HOST") or None


def emulator_credentials(project: str):
    """Credentials for a local emulator, which checks none: an access token that google-auth never tries to
    refresh (no expiry), so nothing calls Google's token endpoint. dlt rejects anonymous credentials."""
    from google.oauth2.credentials import Credentials

    return Credentials(token="emulator", quota_project_id=project)
