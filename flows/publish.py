"""Write, audit, publish: the public marts and run history copied to a read-only file, atomically.

Readers (dashboard, analysts, activation) open only the published file. It is written to a temporary
file beside it, checkpointed and closed, then renamed into place: a reader sees the last run or the new
one, never half of one, and never holds a lock a run needs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.warehouse import destination_name, warehouse_path

PUBLISHED_NAME = "marts.duckdb"
RUN_HISTORY_DDL = """
create table if not exists ops.run_history (
    run_id varchar primary key,
    published_at timestamp,
    mode varchar,
    rows_per_table varchar,      -- JSON: public mart table -> rows published
    high_water_marks varchar     -- JSON: source -> resource -> cursor
)"""


def published_path() -> Path:
    """`JOURNEY_PUBLISHED`, or `marts.duckdb` beside the warehouse (so `data/marts.duckdb` by default, and a
    warehouse elsewhere never publishes over another one's readers)."""
    configured = os.environ.get("JOURNEY_PUBLISHED")
    return Path(configured).expanduser().resolve() if configured else warehouse_path().with_name(PUBLISHED_NAME)


@dataclass
class Published:
    run_id: str
    path: Path
    rows_per_table: dict[str, int]
    published_at: datetime


def mart_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [t for (t,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts' "
        "and table_catalog = current_database() order by table_name").fetchall()]


def mart_row_counts(warehouse: Path) -> dict[str, int]:
    if destination_name() == "bigquery":
        from flows import bigquery

        return bigquery.mart_row_counts()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f'select count(*) from marts."{t}"').fetchone()[0] for t in mart_tables(con)}


def publish(warehouse: Path, published: Path, run_id: str, mode: str,
            high_water_marks: dict[str, dict[str, str]]) -> Published:
    """Copy every table of schema `marts` plus `run_history` to `published`, atomically. The caller holds
    the warehouse lock. On BigQuery: a new versioned dataset behind stable views (flows/bigquery.py)."""
    if destination_name() == "bigquery":
        from flows import bigquery

        done = bigquery.publish(run_id, mode, high_water_marks)
        return Published(run_id, Path(done.path), done.rows_per_table, done.published_at)
    published.parent.mkdir(parents=True, exist_ok=True)
    temporary = published.with_name(f".{published.name}.{run_id}.tmp")
    temporary.unlink(missing_ok=True)
    now = datetime.now(UTC).replace(tzinfo=None)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists ops")
        con.execute(RUN_HISTORY_DDL)
        tables = [t for t in mart_tables(con) if t != "run_history"]
        counts = {t: con.execute(f'select count(*) from marts."{t}"').fetchone()[0] for t in tables}
        con.execute("attach ? as pub", [str(temporary)])
        try:
            con.execute("create schema pub.marts")
            for table in tables:
                con.execute(f'create table pub.marts."{table}" as select * from marts."{table}"')
            con.execute("create table pub.marts.run_history as select * from ops.run_history")
            con.execute("insert into pub.marts.run_history values (?, ?, ?, ?, ?)",
                        [run_id, now, mode, json.dumps(counts), json.dumps(high_water_marks)])
            con.execute("checkpoint pub")
        finally:
            con.execute("detach pub")
        _fsync(temporary)
        os.replace(temporary, published)  # the atomic step: readers see the old file or the new one
        _fsync(published.parent)
        # recorded only once the new file is in place, so history never claims an unpublished run
        con.execute("insert into ops.run_history values (?, ?, ?, ?, ?)",
                    [run_id, now, mode, json.dumps(counts), json.dumps(high_water_marks)])
    return Published(run_id, published, counts, now)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def connect_published(published: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published marts, where `marts.<table>` resolves.

    The file is attached under a fixed alias: opened directly, the default file name `marts.duckdb` makes
    its catalog `marts`, which collides with the schema `marts`. A connection keeps reading the file it
    opened; reopen to see a newer publish.
    """
    con = duckdb.connect()
    con.execute("attach ? as published (read_only)", [str(published)])
    con.execute("use published")
    return con


def last_published(published: Path) -> dict | None:
    """The newest run in the published file (run_id, published_at, rows_per_table), or None."""
    if destination_name() == "bigquery":
        from flows import bigquery

        return bigquery.last_published()
    if not published.exists():
        return None
    with connect_published(published) as con:
        row = con.execute("select run_id, published_at, rows_per_table from marts.run_history "
                          "order by published_at desc, run_id desc limit 1").fetchone()
    if row is None:
        return None
    return {"run_id": row[0], "published_at": row[1], "rows_per_table": json.loads(row[2])}
