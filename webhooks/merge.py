"""Landed webhooks into the warehouse, by the next run (or `journey webhooks merge`), under the writer lock.

1. Every landed delivery not yet in `ops.webhook_landing` is inserted there: one row per accepted delivery
   (its key is unique, so merging the same landing file twice adds nothing), with the object it describes
   and that object's vendor version time: a Stripe event's `created`, a Shopify order's `updated_at`.
2. Per object, the newest landed version (over every delivery ever landed, so an old event delivered late
   never wins over a newer one merged earlier) is compared with what the pulls hold, and loaded only if it
   is newer, through dlt into the very raw table and with the very hints the pull uses (`raw_stripe.charges`
   and the other evented Stripe tables; `raw_shopify.orders` with its child tables, and `orders/delete` into
   `raw_shopify.order_deletions` unless the pull has it already). Same table, same key
   (account, id), merge disposition: push and pull can never count one payment or order twice, and staging
   and the marts need no change.
   - Shopify: the raw row's own `updated_at`.
   - Stripe objects carry no update time; a pulled row is the object as of the pull, whose events are
     complete up to the table's events cursor (server time, in dlt state). An event created after that
     cursor is news; one created at or before it is already in the pulled data, or older than it.
3. Each delivery's row records what became of it (`outcome`, `merged_at`): `applied`, `superseded` (a newer
   delivery of the same object), `older_than_pulled`, `not_merged` (a topic no raw table takes, kept in ops
   only). A delivery whose account cannot be told yet waits (no outcome) for a later merge.
Several accounts of a vendor (pipelines/accounts.py): a push belongs to the configured account whose pull
loaded rows of its `source_account`; it is compared with that account's cursors and loaded through that
account's own pipeline. With one account configured, every push is that account's.
On BigQuery the raw tables are read and loaded there (the same SQL, translated as the readers' is), and
`ops.webhook_landing` is kept in a local DuckDB file beside the warehouse path (`ops_path`).
The receiver may be appending meanwhile: the segment it writes is only read (a record being written is
skipped, and picked up by the next merge); the closed ones are deleted once their records are committed
to ops.webhook_landing, so the landing holds only what came since the last run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dlt
import duckdb

from flows.lock import WarehouseLock
from pipelines.accounts import lookup, source_name, split
from pipelines.load import make_pipeline
from pipelines.sources import units
from pipelines.sources.shopify import DELETION_COLUMNS, ORDERS_HINTS
from pipelines.sources.shopify import PRIMARY_KEY as SHOPIFY_KEY
from pipelines.sources.stripe import EVENTED_HINTS
from pipelines.sources.stripe.helpers import EVENTS_CURSOR, latest_objects
from pipelines.sources.stripe.settings import EVENT_TYPES
from pipelines.warehouse import destination_name, ops_database
from webhooks.landing import delivery_key, read_records, segments

TABLE = "ops.webhook_landing"
DDL = f"""
create schema if not exists ops;
create table if not exists {TABLE} (
    delivery_key varchar primary key,  -- vendor:topic:event id, unique per delivered event
    vendor varchar not null,
    topic varchar not null,
    event_id varchar not null,
    source_account varchar,            -- Stripe account id or shop domain; null while unknown
    object_type varchar,               -- charge, customer, payment_intent, refund, order, order_deletion;
                                       -- null: a topic no raw table takes
    object_id varchar,
    version_at timestamptz,            -- the vendor's version time of the object in this delivery
    received_at timestamptz not null,
    payload varchar not null,          -- the raw body as received and verified
    merged_at timestamptz,
    outcome varchar                    -- applied, superseded, older_than_pulled, not_merged; null: waiting
)"""
COLUMNS = ("delivery_key", "vendor", "topic", "event_id", "source_account", "object_type", "object_id",
           "version_at", "received_at", "payload")
STRIPE_TABLES = {kind: table for table, (kind, _) in EVENT_TYPES.items()}  # charge -> charges
# the topics whose payload is the whole order as the REST API serves it (`orders/delete` carries its id only)
SHOPIFY_ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled",
                        "orders/partially_fulfilled")


LANDING_FILE = "webhook_landing.duckdb"


def ops_path(warehouse: Path) -> Path:
    """Where `ops.webhook_landing` is kept (on BigQuery, `webhook_landing.duckdb` beside the warehouse path)."""
    return ops_database(warehouse, LANDING_FILE)


class DuckDBRaw:
    """The pulled raw tables in the DuckDB warehouse, read through the merge's own connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()

    def exists(self, schema: str, table: str) -> bool:
        return bool(self.rows("select count(*) from information_schema.tables where table_schema = ? and "
                              "table_name = ?", [schema, table])[0][0])

    def close(self) -> None:
        pass  # the connection is the merge's


class BigQueryRaw:
    """The pulled raw tables on BigQuery (the `raw_<vendor>` datasets of the configured project): the same DuckDB
    SQL, translated and run as the readers' is (flows/published.py)."""

    def __init__(self):
        from flows import bigquery

        self.client = bigquery.client()

    def rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        from flows.published import bigquery_execute

        return bigquery_execute(self.client, sql, params).fetchall()

    def exists(self, schema: str, table: str) -> bool:
        from google.api_core.exceptions import NotFound

        try:
            self.client.get_table(f"{self.client.project}.{schema}.{table}")
        except NotFound:
            return False
        return True

    def close(self) -> None:
        self.client.close()


RawTables = DuckDBRaw | BigQueryRaw


@contextmanager
def _stores(warehouse: Path) -> Iterator[tuple[duckdb.DuckDBPyConnection, RawTables]]:
    """`ops.webhook_landing`'s connection (`ops_path`) and the pulled raw tables, wherever the warehouse is."""
    path = ops_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        raw = BigQueryRaw() if destination_name() == "bigquery" else DuckDBRaw(con)
        try:
            yield con, raw
        finally:
            raw.close()


@dataclass
class MergeResult:
    landed: int = 0  # deliveries new to ops.webhook_landing
    applied: Counter[str] = field(default_factory=Counter)  # raw table -> rows loaded from webhooks
    outcomes: Counter[str] = field(default_factory=Counter)  # outcome -> deliveries decided now
    waiting: int = 0  # deliveries left for a later merge (their account not known yet)


def describe(record: dict) -> dict:
    """A landed record as a row of ops.webhook_landing."""
    payload = json.loads(record["body"])
    row = {"delivery_key": delivery_key(record), "vendor": record["vendor"], "topic": record["topic"],
           "event_id": record["event_id"], "source_account": record.get("account"), "object_type": None,
           "object_id": None, "version_at": None, "received_at": datetime.fromisoformat(record["received_at"]),
           "payload": record["body"]}
    if record["vendor"] == "stripe":
        obj = (payload.get("data") or {}).get("object") or {}
        if obj.get("object") in STRIPE_TABLES and obj.get("id"):
            row.update(object_type=obj["object"], object_id=obj["id"],
                       version_at=datetime.fromtimestamp(int(payload["created"]), UTC))
    elif record["topic"] in SHOPIFY_ORDER_TOPICS and payload.get("id") and payload.get("updated_at"):
        row.update(object_type="order", object_id=str(payload["id"]),
                   version_at=datetime.fromisoformat(payload["updated_at"]).astimezone(UTC))
    elif record["topic"] == "orders/delete" and payload.get("id"):
        deleted = record.get("triggered_at") or record["received_at"]
        row.update(object_type="order_deletion", object_id=str(payload["id"]),
                   version_at=datetime.fromisoformat(deleted.replace("Z", "+00:00")).astimezone(UTC))
    return row


def merge_landed(warehouse: Path, landing: Path, hold_lock: bool = True) -> MergeResult:
    """Move landed deliveries into ops.webhook_landing and their news into the raw tables."""
    lock = WarehouseLock(warehouse, purpose="webhooks merge") if hold_lock else None
    if lock:
        lock.acquire()
    try:
        return _merge(warehouse, landing)
    finally:
        if lock:
            lock.release()


def _merge(warehouse: Path, landing: Path) -> MergeResult:
    result = MergeResult()
    listed = segments(landing)  # all but the last are closed: the receiver never writes them again
    records = list(read_records(landing, listed))
    with _stores(warehouse) as (con, raw):
        con.execute(DDL)
        result.landed = _insert_new(con, records)
        for closed in listed[:-1]:  # their records are in ops.webhook_landing now (committed)
            closed.unlink()
        _fill_stripe_account(con, raw)
        _label_accounts(con)
        candidates = _newest_pending(con)
        if not candidates:
            return result
        decided = _decide(raw, warehouse, candidates)
    for unit, tables in _rows_to_load(decided).items():  # DuckDB's file let go of first: dlt writes it
        _load(unit, tables, warehouse)
        result.applied.update({table: len(rows) for table, rows in tables.items()})
    with duckdb.connect(str(ops_path(warehouse))) as con:
        result.outcomes, result.waiting = _record_outcomes(con, decided)
    return result


def _insert_new(con: duckdb.DuckDBPyConnection, records: list[dict]) -> int:
    known = {key for (key,) in con.execute(f"select delivery_key from {TABLE}").fetchall()}
    rows, keys = [], set()
    for record in records:
        key = delivery_key(record)
        if key not in known and key not in keys:  # the receiver stores each key once; be safe anyway
            keys.add(key)
            row = describe(record)
            rows.append(tuple(row[c] for c in COLUMNS))
    if rows:
        con.execute("begin")
        con.executemany(f"insert into {TABLE} ({', '.join(COLUMNS)}) values ({', '.join('?' * len(COLUMNS))})", rows)
        con.execute("commit")
    return len(rows)


def _fill_stripe_account(con: duckdb.DuckDBPyConnection, raw: RawTables) -> None:
    """Stripe names the account only on Connect events: otherwise it is the account the pulls read, when
    there is one (configured as `sources.stripe.account`, or the only one in raw_stripe)."""
    if not con.execute(f"select count(*) from {TABLE} where vendor = 'stripe' and source_account is null "
                       f"and merged_at is null").fetchone()[0]:
        return
    account = dlt.config.get("sources.stripe.account")
    if not account and raw.exists("raw_stripe", "charges"):
        accounts = [a for (a,) in raw.rows("select distinct source_account from raw_stripe.charges")]
        account = accounts[0] if len(accounts) == 1 else None
    if account:
        con.execute(f"update {TABLE} set source_account = ? where vendor = 'stripe' and source_account is null",
                    [account])


def _label_accounts(con: duckdb.DuckDBPyConnection) -> None:
    """A vendor's one account configured with a label (`sources.<vendor>.account`): its pulls stamp rows with
    the label, while a push names the vendor's own id (the Stripe account, the shop's domain), so its pushes
    take the label and push and pull name the account alike. A Stripe Connect event keeps the connected account
    it names, which is not the one pulled. (With several accounts, a label cannot be told from a push: leave
    it unset there, README.)"""
    for vendor in ("stripe", "shopify"):
        configured = units([vendor])
        label = lookup(f"sources.{vendor}.account", split(configured[0])[1]) if len(configured) == 1 else None
        if label:
            con.execute(f"update {TABLE} set source_account = ? where vendor = ? and merged_at is null "
                        f"and source_account is not null and source_account <> ? "
                        f"and (vendor <> 'stripe' or json_extract_string(payload, '$.account') is null)",
                        [str(label), vendor, str(label)])


def _newest_pending(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Undecided deliveries, each with whether it is the newest landed version of its object."""
    cursor = con.execute(f"""
        select delivery_key, vendor, topic, event_id, source_account, object_type, object_id, version_at, payload,
               row_number() over (partition by vendor, source_account, object_type, object_id
                                  order by version_at desc, received_at desc, delivery_key desc) = 1 as newest
        from {TABLE}
        qualify merged_at is null""")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _decide(raw: RawTables, warehouse: Path, candidates: list[dict]) -> list[dict]:
    """Set `outcome` (None: still waiting) and `unit` (the account's pipeline) on each undecided delivery."""
    owners = {vendor: _owners(raw, vendor) for vendor in ("stripe", "shopify")}
    stripe_covered: dict[str, dict[str, datetime]] = {}  # unit -> its evented tables' cursors, read when needed
    orders = [c for c in candidates if c["newest"] and c["object_type"] == "order" and c["source_account"]]
    shopify_versions = _shopify_versions(raw, orders)
    deleted = _shopify_deleted(raw, [c for c in candidates if c["object_type"] == "order_deletion"])
    for c in candidates:
        c["unit"] = owners[c["vendor"]](c["source_account"])
        if c["object_type"] is None:
            c["outcome"] = "not_merged"
        elif c["unit"] is None:
            c["outcome"] = None
        elif not c["newest"]:
            c["outcome"] = "superseded"
        else:
            if c["object_type"] == "order_deletion":  # final: only its absence from the pull matters
                known = (c["source_account"], int(c["object_id"])) in deleted
                c["outcome"] = "older_than_pulled" if known else "applied"
                continue
            if c["vendor"] == "stripe":
                if c["unit"] not in stripe_covered:
                    stripe_covered[c["unit"]] = _stripe_events_cursors(warehouse, c["unit"])
                pulled = stripe_covered[c["unit"]].get(STRIPE_TABLES[c["object_type"]])
            else:
                pulled = shopify_versions.get((c["source_account"], int(c["object_id"])))
            c["outcome"] = "applied" if pulled is None or c["version_at"] > pulled else "older_than_pulled"
    return candidates


def _owners(raw: RawTables, vendor: str) -> Callable[[str | None], str | None]:
    """`source_account -> unit` over the vendor's configured accounts (`stripe`, `stripe.eu`): the account whose
    pull loaded rows of that `source_account` (a named account's dlt schema is named after it); with one
    account configured, that one for any. None: not known until it is pulled."""
    configured = units([vendor])
    if len(configured) == 1:
        return lambda source_account: configured[0] if source_account else None
    by_schema = {source_name(unit): unit for unit in configured}
    tables = sorted(STRIPE_TABLES.values()) if vendor == "stripe" else ["orders"]
    pulled = [f"select distinct pulled.source_account, loads.schema_name from raw_{vendor}.{table} as pulled "
              f"join raw_{vendor}._dlt_loads as loads on pulled._dlt_load_id = loads.load_id"
              for table in tables if raw.exists(f"raw_{vendor}", table)]
    known: dict[str, str] = {}
    if pulled and raw.exists(f"raw_{vendor}", "_dlt_loads"):
        for account, schema in raw.rows(" union ".join(pulled)):
            if schema in by_schema:
                known[account] = by_schema[schema]
    return lambda source_account: known.get(source_account)


def _stripe_events_cursors(warehouse: Path, unit: str) -> dict[str, datetime]:
    """Per evented Stripe table, the server time one account's pulled events are complete to (its pipeline's
    resource state, under the source's name: the account's, or `stripe`)."""
    resources = make_pipeline(unit, warehouse).state.get("sources", {}).get(source_name(unit), {}).get(
        "resources", {})
    covered = {}
    for table in EVENT_TYPES:
        value = resources.get(table, {}).get(EVENTS_CURSOR) or resources.get(table, {}).get("high_water")
        if value:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            covered[table] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return covered


def _shopify_versions(raw: RawTables, orders: list[dict]) -> dict[tuple[str, int], datetime]:
    if not orders or not raw.exists("raw_shopify", "orders"):
        return {}
    ids = sorted({int(o["object_id"]) for o in orders})
    rows = raw.rows("select source_account, id, updated_at from raw_shopify.orders where list_contains(?, id)", [ids])
    return {(account, order_id): updated for account, order_id, updated in rows}


def _shopify_deleted(raw: RawTables, deletions: list[dict]) -> set[tuple[str, int]]:
    if not deletions or not raw.exists("raw_shopify", "order_deletions"):
        return set()
    ids = sorted({int(d["object_id"]) for d in deletions})
    return set(raw.rows("select source_account, id from raw_shopify.order_deletions where list_contains(?, id)", [ids]))


def _rows_to_load(decided: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """unit -> raw table -> rows: each account's news, to load through its own pipeline."""
    loads: dict[str, dict[str, list[dict]]] = {}
    for c in decided:
        if c["outcome"] != "applied":
            continue
        payload = json.loads(c["payload"])
        if c["vendor"] == "stripe":
            (row,) = latest_objects([payload], c["object_type"]).values()  # as the pull's events step makes it
            table = STRIPE_TABLES[c["object_type"]]
        elif c["object_type"] == "order_deletion":  # as the pull's `order_deletions` makes it from the event
            event_id = c["event_id"]
            row = {"id": int(payload["id"]), "deleted_at": c["version_at"].isoformat(),
                   "event_id": int(event_id) if event_id.isdigit() else None, "message": None}
            table = "order_deletions"
        else:
            row, table = payload, "orders"
        loads.setdefault(c["unit"], {}).setdefault(table, []).append({**row, "source_account": c["source_account"]})
    return loads


@dlt.source(name="stripe", max_table_nesting=2)
def _stripe_pushed(tables: dict[str, list[dict]]):
    return [dlt.resource(rows, **EVENTED_HINTS[table]) for table, rows in tables.items()]


@dlt.source(name="shopify", max_table_nesting=3)
def _shopify_pushed(tables: dict[str, list[dict]]):
    hints = {"orders": ORDERS_HINTS, "order_deletions": {
        "name": "order_deletions", "primary_key": SHOPIFY_KEY, "write_disposition": "merge",
        "columns": DELETION_COLUMNS}}
    return [dlt.resource(rows, **hints[table]) for table, rows in tables.items()]


def _load(unit: str, tables: dict[str, list[dict]], warehouse: Path) -> None:
    """Into the account's own pull pipeline (same dataset, schema and state; the source named as the pull's
    is): merged on (account, id); an order's child tables (line items, transactions, refunds) are replaced
    with it, as when pulled."""
    pushed = _stripe_pushed if split(unit)[0] == "stripe" else _shopify_pushed
    make_pipeline(unit, warehouse).run(pushed.with_args(name=source_name(unit))(tables))


def _record_outcomes(con: duckdb.DuckDBPyConnection, decided: list[dict]) -> tuple[Counter[str], int]:
    outcomes = Counter(c["outcome"] for c in decided if c["outcome"])
    now = datetime.now(UTC)
    rows = [(now, c["outcome"], c["delivery_key"]) for c in decided if c["outcome"]]
    if rows:
        con.execute("begin")
        con.executemany(f"update {TABLE} set merged_at = ?, outcome = ? where delivery_key = ?", rows)
        con.execute("commit")
    return outcomes, sum(1 for c in decided if not c["outcome"])


def format_merge(result: MergeResult) -> str:
    applied = ", ".join(f"{table} {n:,}" for table, n in sorted(result.applied.items())) or "nothing"
    outcomes = ", ".join(f"{name} {n:,}" for name, n in sorted(result.outcomes.items())) or "none decided"
    waiting = (f"; {result.waiting:,} waiting (their account is not known until it is pulled)"
               if result.waiting else "")
    return (f"Webhooks: {result.landed:,} new deliveries in {TABLE}; loaded into raw tables: {applied}; "
            f"{outcomes}{waiting}")
