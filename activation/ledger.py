"""`ops.activation_ledger`: one row per conversion and destination, its state and why. It is a DuckDB table:
in the warehouse itself on DuckDB; on BigQuery in a local DuckDB file beside the warehouse path
(`activation_ledger.duckdb`, where dlt's state and the warehouse lock live), or `JOURNEY_ACTIVATION_LEDGER`
on either (`ledger_path`). Not a BigQuery table: every batch writes it twice (pending, then sent) and each
write must commit at once and be read back by the next run, which BigQuery DML (a job per statement, quotas on
DML per table, conflicts between concurrent MERGEs) serves slowly; the warehouse lock that keeps one activation
at a time is a local file too, so the ledger beside it is kept by the same one machine.

`pending` is written before a batch is sent, `sent` (with the platform's response) right after it answers,
so a rerun never resends what was recorded sent; a crash between the two leaves `pending`, which the next
run sends again and the platform's dedup key absorbs. `too_old` and `no_consent` are final; `failed` (with
its error) is retried by the next run while the conversion is young enough. Every statement commits at
once, so what a killed run recorded survives it. The caller holds the warehouse lock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from activation.conversions import Conversion

PENDING, SENT, FAILED, TOO_OLD, NO_CONSENT = "pending", "sent", "failed", "too_old", "no_consent"
STATUSES = (PENDING, SENT, FAILED, TOO_OLD, NO_CONSENT)
COLUMNS = ("destination", "conversion_id", "kind", "order_id", "customer_id", "occurred_at", "status", "response",
           "error", "destination_clock", "attempts", "run_id", "updated_at")
FINAL = frozenset({SENT, TOO_OLD, NO_CONSENT})  # never sent again

DDL = """
create table if not exists ops.activation_ledger (
    destination varchar not null,
    conversion_id varchar not null,   -- kind:shop:record, see activation.conversions
    kind varchar not null,            -- purchase | refund
    order_id varchar not null,        -- the platforms' dedup key (GA4 transaction_id, Meta event_id)
    customer_id varchar,
    occurred_at timestamp not null,   -- UTC
    status varchar not null,          -- pending | sent | failed | too_old | no_consent
    response varchar,                 -- sent: the platform's answer (JSON)
    error varchar,                    -- failed: why (never a secret)
    destination_clock timestamp,      -- the destination's Date the status was decided against (UTC)
    attempts integer not null default 0,
    run_id varchar,
    updated_at timestamp not null,    -- UTC, this machine's clock
    primary key (destination, conversion_id)
)"""


LEDGER_NAME = "activation_ledger.duckdb"


def ledger_path(warehouse: Path) -> Path:
    """`JOURNEY_ACTIVATION_LEDGER`; else the DuckDB warehouse itself, or on BigQuery `activation_ledger.duckdb`
    beside the warehouse path (which names no data there, only where local state lives)."""
    from pipelines.warehouse import ops_database

    configured = os.environ.get("JOURNEY_ACTIVATION_LEDGER")
    if configured:
        return Path(configured).expanduser().resolve()
    return ops_database(warehouse, LEDGER_NAME)


class Ledger:
    def __init__(self, warehouse: Path, read_only: bool = False):
        self.read_only = read_only
        if read_only and not warehouse.exists():
            self.con = None
            return
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(warehouse), read_only=read_only)
        if not read_only:
            self.con.execute("create schema if not exists ops")
            self.con.execute(DDL)

    def close(self) -> None:
        if self.con is not None:
            self.con.close()

    def statuses(self, destination: str) -> dict[str, str]:
        """conversion_id -> status, for one destination."""
        if self.con is None or not self._exists():
            return {}
        rows = self.con.execute("select conversion_id, status from ops.activation_ledger where destination = ?",
                                [destination]).fetchall()
        return dict(rows)

    def _exists(self) -> bool:
        return bool(self.con.execute("select count(*) from information_schema.tables where table_schema = 'ops' "
                                     "and table_name = 'activation_ledger'").fetchone()[0])

    def record(self, destination: str, conversions: Iterable[Conversion], status: str, run_id: str,
               clock: datetime | None, response: dict | None = None, error: str | None = None,
               attempted: bool = False) -> None:
        """Set the status of these conversions at one destination (an upsert, committed at once)."""
        assert status in STATUSES, status
        now = datetime.now(UTC).replace(tzinfo=None)
        at = clock.astimezone(UTC).replace(tzinfo=None) if clock else None
        rows = [[destination, c.conversion_id, c.kind, c.order_id, c.customer_id,
                 c.occurred_at.astimezone(UTC).replace(tzinfo=None), status,
                 json.dumps(response) if response is not None else None, error, at, int(attempted), run_id, now]
                for c in conversions]
        if not rows or self.con is None or self.read_only:
            return
        import pandas

        frame = pandas.DataFrame(rows, columns=COLUMNS).astype({"response": object, "error": object})
        self.con.register("ledger_rows", frame)  # one statement for the lot: executemany is row by row
        try:
            self.con.execute(f"""
                insert into ops.activation_ledger ({", ".join(COLUMNS)})
                select {", ".join(COLUMNS)} from ledger_rows
                on conflict (destination, conversion_id) do update set
                    status = excluded.status, response = excluded.response, error = excluded.error,
                    destination_clock = excluded.destination_clock,
                    attempts = activation_ledger.attempts + excluded.attempts,
                    run_id = excluded.run_id, updated_at = excluded.updated_at""")
        finally:
            self.con.unregister("ledger_rows")

    def counts(self) -> dict[str, dict[str, int]]:
        """destination -> status -> conversions, over the whole ledger."""
        if self.con is None or not self._exists():
            return {}
        out: dict[str, dict[str, int]] = {}
        for destination, status, n in self.con.execute(
                "select destination, status, count(*) from ops.activation_ledger group by all order by all").fetchall():
            out.setdefault(destination, {})[status] = n
        return out
