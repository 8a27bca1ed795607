"""The published marts as every reader sees them (dashboard, activation), on either warehouse: one query layer.

Readers write DuckDB SQL once, naming tables `marts.<table>` and binding `?` parameters, and ask it of the
object `open_published()` yields for one batch of queries:
- on DuckDB, a read-only connection to the published file (flows/publish.py `connect_published`): one file,
  so one batch reads one run;
- on BigQuery, the current version dataset resolved once when the batch opens (flows/bigquery.py
  `published_dataset`: the one-row pointer), so a batch of panel queries reads one run even if a publish
  lands in between. Each statement is translated by SQLGlot (DuckDB -> BigQuery), its `marts.<table>` names
  qualified to that version, its `?` parameters bound as BigQuery query parameters (never pasted into the
  text), and it runs under the client's cost guard (`maximum_bytes_billed`, flows/bigquery.py `client`).

BigQuery requires a partition filter on the published copies of `fct_journey_events` and `fct_attribution`
(`bigquery.PARTITION_COLUMNS`): a query on them must bound their partition column itself, not a function of
it (write `event_at >= ? and event_at < ?`, not `cast(event_at as date) between ...`).

Either way the object has `execute(sql, params) -> result` with `fetchone()`, `fetchall()` and `df()`,
`columns()` (table -> its columns), `where` (what a person is told it reads) and `close()`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from pipelines.warehouse import bigquery_project, destination_name


class NotPublished(Exception):
    """Nothing is published yet where the readers look; the message says where and how to load data."""


class ReadFailed(Exception):
    """The warehouse refused a query on the published marts (the message says why; never a credential)."""


def load_hint(where: str) -> str:
    return (f"No published data at `{where}` yet. Load some with `make run` (or `journey run --sandbox` for the "
            "built-in sandbox); the dashboard picks it up on its next refresh, without a restart.")


def location(published: Path | None = None) -> str:
    """What readers read, for people: the published DuckDB file, or BigQuery's stable views' dataset."""
    if destination_name() == "bigquery":
        from flows.bigquery import PUBLISHED_DATASET

        return f"{bigquery_project() or '<project>'}.{PUBLISHED_DATASET}"
    from flows.publish import published_path

    return str(published or published_path())


def identity(published: Path | None = None) -> tuple | None:
    """Changes with every publish, None while nothing is published: on DuckDB the file's (inode, mtime ns,
    size), as a publish renames a new file into place; on BigQuery the pointer table's metadata."""
    if destination_name() == "bigquery":
        from flows import bigquery

        with _closing(bigquery.client()) as client:
            return bigquery.published_identity(client)
    import os

    from flows.publish import published_path

    try:
        stat = os.stat(published or published_path())
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


@contextmanager
def open_published(published: Path | None = None,
                   required: Sequence[str] = ()) -> Iterator[DuckDBMarts | BigQueryMarts]:
    """The published marts for one batch of queries, closed after it. On DuckDB `published` is the file
    (default `published_path()`); on BigQuery it is not used. NotPublished when nothing is, or when a table
    in `required` is not published."""
    if destination_name() == "bigquery":
        marts = BigQueryMarts.open()
    else:
        from flows.publish import published_path

        marts = DuckDBMarts.open(Path(published) if published else published_path())
    try:
        if required and not set(required) <= set(marts.columns()):
            raise NotPublished(load_hint(marts.where))
        yield marts
    finally:
        marts.close()


@contextmanager
def _closing(client):
    try:
        yield client
    finally:
        client.close()


class DuckDBMarts:
    """The published DuckDB file, read-only: `execute` is DuckDB's own (its result has fetchone, fetchall, df)."""

    def __init__(self, con, where: str):
        self.con, self.where = con, where
        self._columns: dict[str, set[str]] | None = None

    @classmethod
    def open(cls, path: Path) -> DuckDBMarts:
        from flows.publish import connect_published

        if not path.exists():
            raise NotPublished(load_hint(str(path)))
        return cls(connect_published(path), str(path))

    def execute(self, sql: str, params: Sequence | None = None):
        return self.con.execute(sql, list(params or []))

    def columns(self) -> dict[str, set[str]]:
        if self._columns is None:
            self._columns = {}
            for table, column in self.con.execute(
                    "select table_name, column_name from information_schema.columns "
                    "where table_schema = 'marts' and table_catalog = current_database()").fetchall():
                self._columns.setdefault(table, set()).add(column)
        return self._columns

    def close(self) -> None:
        self.con.close()


class BigQueryMarts:
    """One published version on BigQuery, fixed when opened; statements translated by `to_bigquery`."""

    def __init__(self, client, dataset: str):
        self.client, self.dataset = client, dataset
        self.where = f"{client.project}.{dataset}"
        self._columns: dict[str, set[str]] | None = None

    @classmethod
    def open(cls) -> BigQueryMarts:
        from flows import bigquery

        client = bigquery.client()
        try:
            dataset = bigquery.published_dataset(client)
        except Exception as error:
            client.close()
            raise ReadFailed(f"the published version could not be resolved on BigQuery: {_reason(error)}") from None
        if dataset is None:
            client.close()
            raise NotPublished(load_hint(location()))
        return cls(client, dataset)

    def execute(self, sql: str, params: Sequence | None = None) -> Rows:
        return bigquery_execute(self.client, sql, params, self.dataset, self.where)

    def columns(self) -> dict[str, set[str]]:
        """Each table of the version with its columns, from table metadata (no query, nothing billed)."""
        if self._columns is None:
            self._columns = {}
            for item in self.client.list_tables(self.dataset):
                table = self.client.get_table(item.reference)
                self._columns[item.table_id] = {field.name for field in table.schema}
        return self._columns

    def close(self) -> None:
        self.client.close()


def bigquery_execute(client, sql: str, params: Sequence | None = None, dataset: str = "",
                     where: str | None = None) -> Rows:
    """DuckDB SQL run on BigQuery (`to_bigquery`: `marts.<table>` read from `dataset`; any other `<dataset>.<table>`
    from the client's project as it is named), `?` parameters bound, under the client's cost guard."""
    from google.cloud import bigquery

    translated = to_bigquery(sql, client.project, dataset)
    config = bigquery.QueryJobConfig(query_parameters=[_parameter(f"p{number}", value)
                                                       for number, value in enumerate(params or [], start=1)])
    try:  # the client's default job config (maximum_bytes_billed) is merged into this one
        result = client.query(translated, job_config=config).result()
    except Exception as error:
        raise ReadFailed(f"BigQuery refused a query on {where or client.project}: {_reason(error)}") from None
    return Rows([tuple(row.values()) for row in result], [field.name for field in result.schema])


def _reason(error: Exception) -> str:
    return getattr(error, "message", None) or str(error).splitlines()[0][:500]


class Rows:
    """A BigQuery result with the part of DuckDB's result API readers use."""

    def __init__(self, rows: list[tuple], names: list[str]):
        self.rows, self.names = rows, names

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple]:
        return list(self.rows)

    def df(self):
        """As DuckDB's `df()` gives it: decimals as floats, dates as datetime64, integers with nulls as Int64,
        so panels, tables and charts see one shape whichever warehouse answered."""
        import pandas as pd

        frame = pd.DataFrame.from_records(self.rows, columns=self.names)
        for name in frame.columns:
            column = self._column(name)  # the values as the warehouse gave them, before pandas' inference
            values = [v for v in column if v is not None]
            if values and all(isinstance(v, Decimal) for v in values):
                frame[name] = frame[name].astype("float64")
            elif values and all(isinstance(v, date) and not isinstance(v, datetime) for v in values):
                frame[name] = pd.to_datetime(frame[name])
            elif values and len(values) < len(column) and all(type(v) is int for v in values):
                frame[name] = pd.array(column, dtype="Int64")
        return frame


    def _column(self, name: str) -> list:
        index = self.names.index(name)
        return [row[index] for row in self.rows]


def _parameter(name: str, value):
    """A typed BigQuery query parameter for a Python value (lists become arrays of their items' type)."""
    from google.cloud import bigquery

    if isinstance(value, list | tuple):
        kinds = {_kind(v) for v in value if v is not None} or {"STRING"}
        if len(kinds) != 1:
            raise TypeError(f"parameter {name}: a list of mixed types {sorted(kinds)}")
        return bigquery.ArrayQueryParameter(name, kinds.pop(), list(value))
    return bigquery.ScalarQueryParameter(name, _kind(value) if value is not None else "STRING", value)


def _kind(value) -> str:
    # bool before int (a bool is an int), datetime before date (a datetime is a date)
    for python, kind in ((bool, "BOOL"), (int, "INT64"), (float, "FLOAT64"), (Decimal, "BIGNUMERIC"),
                         (str, "STRING"), (datetime, "DATETIME"), (date, "DATE")):
        if isinstance(value, python):
            if kind == "DATETIME" and value.tzinfo is not None:
                return "TIMESTAMP"
            return kind
    raise TypeError(f"no BigQuery type for a parameter of type {type(value).__name__}")


@functools.lru_cache(maxsize=512)
def to_bigquery(sql: str, project: str, dataset: str) -> str:
    """DuckDB SQL as BigQuery SQL over one published version: SQLGlot's translation, with
    - `?` parameters numbered in the order they appear in the DuckDB text and named `@p1, @p2, ...`
      (numbered before translating, since a translation may reorder them, e.g. `filter (where ...)`);
    - `marts.<table>` qualified to `<project>.<dataset>.<table>`;
    - weeks truncated as DuckDB does (from Monday: WEEK(MONDAY); BigQuery's plain WEEK starts on Sunday)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.tokens import TokenType

    dialect = sqlglot.Dialect.get_or_raise("duckdb")
    placeholders = [t for t in dialect.tokenize(sql) if t.token_type == TokenType.PLACEHOLDER and t.text == "?"]
    numbered = sql
    for number, token in reversed(list(enumerate(placeholders, start=1))):
        numbered = f"{numbered[:token.start]}${number}{numbered[token.end + 1:]}"
    tree = sqlglot.parse_one(numbered, read="duckdb")
    for placeholder in tree.find_all(exp.Placeholder):
        if str(placeholder.this).isdigit():
            placeholder.set("this", f"p{placeholder.this}")
    for table in tree.find_all(exp.Table):
        if table.db == "marts" and not table.catalog:
            table.set("db", exp.to_identifier(dataset, quoted=True))
            table.set("catalog", exp.to_identifier(project, quoted=True))
            table.set("this", exp.to_identifier(table.name, quoted=True))
    for trunc in tree.find_all(exp.DateTrunc, exp.TimestampTrunc, exp.DatetimeTrunc):
        unit = trunc.args.get("unit")
        if unit is not None and unit.name.upper() == "WEEK":
            trunc.set("unit", exp.WeekStart(this=exp.var("MONDAY")))
    return tree.sql(dialect="bigquery")
