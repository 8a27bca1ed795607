"""The warehouse on BigQuery: reads for the gate and the run report, and write, audit, publish.

BigQuery has no file to rename, so publishing keeps DESIGN.md's rule with versioned datasets:
1. every public mart (dataset `marts`) and the run history are copied into a new dataset
   `marts_v<UTC time>_<run>` by copy jobs (no bytes scanned; partitioning and clustering kept), the largest
   ones then requiring a partition filter; the version is complete before anyone is told about it;
2. one row in `marts_published.current_version` names the version: replacing that one-row table is the
   atomic step, and readers that resolve the version through it (`published_dataset`) see the last run or
   the new one, never half of one;
3. stable views `marts_published.<table>` (for Looker Studio and analysts' SQL) are pointed at the new
   version, then the run is recorded in `ops.run_history`, and versions older than the previous one dropped.
A failed gate publishes nothing, so readers keep the last good version.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from pipelines.warehouse import bigquery_emulator, bigquery_location, bigquery_project, emulator_credentials

PUBLISHED_DATASET = "marts_published"
POINTER = "current_version"
VERSION_PREFIX = "marts_v"
KEEP_VERSIONS = 2  # the current one and the one before it (a reader may still be on it)
# The largest marts, partitioned by month on these columns (their models' config): published copies require
# a filter on them, so a careless query on the published marts cannot scan every partition.
PARTITION_COLUMNS = {"fct_journey_events": "event_at", "fct_attribution": "converted_at"}


def client():
    """The BigQuery client for the configured project; credentials are Google's usual ones (application
    default credentials or GOOGLE_APPLICATION_CREDENTIALS), or none that checks on an emulator."""
    from google.cloud import bigquery

    project = bigquery_project()
    credentials = emulator_credentials(project) if bigquery_emulator() else None
    capped = bigquery.QueryJobConfig(maximum_bytes_billed=maximum_bytes_billed())
    return bigquery.Client(project=project, credentials=credentials, location=bigquery_location(),
                           default_query_job_config=capped)


def maximum_bytes_billed() -> int:
    """`JOURNEY_BIGQUERY_MAXIMUM_BYTES_BILLED` (default 10 GB, as dbt's profile): a query that would bill more
    fails instead of running."""
    return int(os.environ.get("JOURNEY_BIGQUERY_MAXIMUM_BYTES_BILLED") or 10_000_000_000)


@dataclass
class Published:
    run_id: str
    path: str
    rows_per_table: dict[str, int]
    published_at: datetime


def _name(client_, dataset: str, table: str | None = None) -> str:
    return f"`{client_.project}.{dataset}`" if table is None else f"`{client_.project}.{dataset}.{table}`"


def query(sql: str, client_=None) -> list[tuple]:
    client_ = client_ or client()
    return [tuple(row.values()) for row in client_.query(sql).result()]


def _tables(client_, dataset: str) -> list[str]:
    from google.api_core.exceptions import NotFound

    try:
        return sorted(t.table_id for t in client_.list_tables(dataset))
    except NotFound:
        return []


def mart_tables(client_=None) -> list[str]:
    client_ = client_ or client()
    return [t for t in _tables(client_, "marts") if t != "run_history"]


def mart_row_counts(client_=None) -> dict[str, int]:
    client_ = client_ or client()
    return {t: query(f"select count(*) from {_name(client_, 'marts', t)}", client_)[0][0] for t in mart_tables(client_)}


def unlinked_records(client_=None) -> dict[str, int]:
    client_ = client_ or client()
    rows = query(f"select system, count(*) from {_name(client_, 'intermediate', 'int_identity_records_unioned')} "
                 "where customer_id is null group by system order by system", client_)
    return {system: count for system, count in rows}


def published_dataset(client_=None) -> str | None:
    """The dataset of the last published version (what readers read), or None before the first publish."""
    client_ = client_ or client()
    if POINTER not in _tables(client_, PUBLISHED_DATASET):
        return None
    rows = query(f"select dataset from {_name(client_, PUBLISHED_DATASET, POINTER)}", client_)
    return rows[0][0] if rows else None


def published_identity(client_=None) -> tuple | None:
    """What changes with every publish, from the pointer table's metadata (no query, nothing billed, so a page
    may ask it every few seconds); None before the first publish."""
    from google.api_core.exceptions import NotFound

    client_ = client_ or client()
    try:
        table = client_.get_table(f"{client_.project}.{PUBLISHED_DATASET}.{POINTER}")
    except NotFound:
        return None
    return table.etag, table.modified, table.created


def last_published(client_=None) -> dict | None:
    """The newest published run (run_id, published_at, rows_per_table), or None."""
    client_ = client_ or client()
    dataset = published_dataset(client_)
    if dataset is None:
        return None
    rows = query(f"select run_id, published_at, rows_per_table from {_name(client_, dataset, 'run_history')} "
                 "order by published_at desc, run_id desc limit 1", client_)
    if not rows:
        return None
    run_id, published_at, counts = rows[0]
    return {"run_id": run_id, "published_at": published_at, "rows_per_table": json.loads(counts)}


def _ensure_dataset(client_, dataset: str) -> None:
    from google.cloud import bigquery

    client_.create_dataset(bigquery.Dataset(f"{client_.project}.{dataset}"), exists_ok=True)


RUN_HISTORY_DDL = """create table if not exists {table} (
    run_id string, published_at datetime, mode string,
    rows_per_table string,      -- JSON: public mart table -> rows published
    high_water_marks string     -- JSON: source -> resource -> cursor
)"""


def publish(run_id: str, mode: str, high_water_marks: dict[str, dict[str, str]]) -> Published:
    """Copy every table of dataset `marts` plus the run history into a new version, switch readers to it,
    record the run. The caller holds the warehouse lock (one writer)."""
    from google.cloud import bigquery

    bq = client()
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    version = f"{VERSION_PREFIX}{now:%Y%m%d%H%M%S}_{run_id.replace('-', '')[:8]}"
    _ensure_dataset(bq, "ops")
    history = _name(bq, "ops", "run_history")
    bq.query(RUN_HISTORY_DDL.format(table=history)).result()
    tables = mart_tables(bq)
    counts = {t: query(f"select count(*) from {_name(bq, 'marts', t)}", bq)[0][0] for t in tables}
    row = [bigquery.ScalarQueryParameter("run_id", "STRING", run_id),
           bigquery.ScalarQueryParameter("published_at", "DATETIME", now),
           bigquery.ScalarQueryParameter("mode", "STRING", mode),
           bigquery.ScalarQueryParameter("rows", "STRING", json.dumps(counts)),
           bigquery.ScalarQueryParameter("marks", "STRING", json.dumps(high_water_marks))]
    insert = "insert into {table} values (@run_id, @published_at, @mode, @rows, @marks)"

    # 1. the new version, complete before anyone reads it
    _ensure_dataset(bq, version)
    for table in tables:
        bq.copy_table(f"{bq.project}.marts.{table}", f"{bq.project}.{version}.{table}").result()
        if table in PARTITION_COLUMNS:
            bq.query(f"alter table {_name(bq, version, table)} set options (require_partition_filter = true)"
                     ).result()
    bq.query(f"create table {_name(bq, version, 'run_history')} as select * from {history}").result()
    bq.query(insert.format(table=_name(bq, version, "run_history")),
             job_config=bigquery.QueryJobConfig(query_parameters=row)).result()
    # 2. the atomic switch: one statement replaces the one-row pointer
    _ensure_dataset(bq, PUBLISHED_DATASET)
    bq.query(f"create or replace table {_name(bq, PUBLISHED_DATASET, POINTER)} as "
             f"select '{version}' as dataset, '{run_id}' as run_id, datetime '{now.isoformat(sep=' ')}' as published_at"
             ).result()
    # 3. stable views for BI tools and analysts, the run recorded, old versions dropped
    for table in [*tables, "run_history"]:
        bq.query(f"create or replace view {_name(bq, PUBLISHED_DATASET, table)} as "
                 f"select * from {_name(bq, version, table)}").result()
    bq.query(insert.format(table=history), job_config=bigquery.QueryJobConfig(query_parameters=row)).result()
    versions = sorted(d.dataset_id for d in bq.list_datasets() if d.dataset_id.startswith(VERSION_PREFIX))
    for old in versions[:-KEEP_VERSIONS]:
        bq.delete_dataset(old, delete_contents=True, not_found_ok=True)
    return Published(run_id, f"{bq.project}.{PUBLISHED_DATASET}", counts, now)


def published_rows(client_=None) -> dict[str, list[tuple]]:
    """Every published mart's rows (what readers see), through the current version."""
    client_ = client_ or client()
    dataset = published_dataset(client_)
    return {t: query(f"select * from {_name(client_, dataset, t)}{_all_partitions(t)}", client_)
            for t in _tables(client_, dataset)}


def _all_partitions(table: str) -> str:
    """The filter a table that requires one gets when all of it is meant."""
    column = PARTITION_COLUMNS.get(table)
    return f" where {column} >= datetime '1900-01-01'" if column else ""
