"""Stripe API v1: customers, charges, payment intents, refunds and balance transactions.

Stripe has no "updated since" filter: a table's first run reads it in full by `created`; later runs
read what was created since the high-water mark and, for the tables events describe, every event since
the events cursor, merging each event's `data.object` over the row (status changes, refunds of old
charges, deletions). Events are kept 30 days, so a cursor older than that reads the table in full again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

import dlt

from pipelines.arrow import arrow_page, batched
from pipelines.check import Check, try_reads
from pipelines.http import VendorClient
from pipelines.incremental import Cursor, backfill_window, parse_time, with_account
from pipelines.sources.stripe import settings
from pipelines.sources.stripe.helpers import EventsCursor, Listing, ServerClock, events_expired, latest_objects

log = logging.getLogger(__name__)

PRIMARY_KEY = ("source_account", "id")
# `deleted` exists from the first load, false until a `*.deleted` event marks the row (soft delete)
DELETED = {"deleted": {"data_type": "bool"}}
# The hints of the tables events describe; webhooks/merge.py loads pushed events into them with these too.
EVENTED_HINTS = {table: {"name": table, "primary_key": PRIMARY_KEY, "write_disposition": "merge", "columns": columns}
                 for table, columns in {
    "customers": {"email": {"data_type": "text"}, "name": {"data_type": "text"}, **DELETED},
    "charges": {"failure_code": {"data_type": "text"}, "failure_message": {"data_type": "text"},
                "customer": {"data_type": "text"}, "balance_transaction": {"data_type": "text"}, **DELETED},
    "payment_intents": {"customer": {"data_type": "text"}, "latest_charge": {"data_type": "text"},
                        "canceled_at": {"data_type": "bigint"}, "description": {"data_type": "text"}, **DELETED},
    "refunds": {"charge": {"data_type": "text"}, "payment_intent": {"data_type": "text"},
                "reason": {"data_type": "text"}, "balance_transaction": {"data_type": "text"}, **DELETED},
}.items()}


def make_client(base_url: str, api_key: str, stripe_version: str) -> VendorClient:
    return VendorClient("stripe", base_url, {"Authorization": f"Bearer {api_key}", "Stripe-Version": stripe_version},
                        [api_key], settings.CREDENTIAL, requests_per_second=settings.REQUESTS_PER_SECOND,
                        burst=settings.BURST)


def check(api_key: str = dlt.secrets.value, base_url: str = settings.BASE_URL,
          stripe_version: str = settings.STRIPE_VERSION) -> Check:
    """`journey check`: one record of each list the source reads (a restricted key needs each permission)."""
    return try_reads("stripe", make_client(base_url, api_key, stripe_version), settings.CHECK_READS)


@dlt.source(name="stripe", section="stripe", max_table_nesting=2)
def stripe_source(
    api_key: str = dlt.secrets.value,
    base_url: str = settings.BASE_URL,
    stripe_version: str = settings.STRIPE_VERSION,
    account: str | None = None,
    page_size: int = settings.PAGE_SIZE,
    backfill_start: str | None = None,
    backfill_end: str | None = None,
):
    client = make_client(base_url, api_key, stripe_version)
    clock = ServerClock(client)
    account = account or client.get("v1/account")[0]["id"]
    window = backfill_window(backfill_start, backfill_end)

    def listing(path: str, since: datetime | None, until: datetime | None = None, **extra: object) -> Listing:
        params: dict = {"limit": page_size, **extra}
        if since:
            params["created[gte]"] = int(since.timestamp())
        if until:
            params["created[lte]"] = int(until.timestamp())
        return Listing(client, clock, path, params)

    def stamp(page: list[dict], deleted: bool | None = False) -> list[dict]:
        stamped = with_account(page, account)
        if deleted is not None:
            for row in stamped:
                row.setdefault("deleted", deleted)
        return stamped

    def evented(table: str, flat: bool = True) -> Iterator:
        """`created` reads plus, after the first full read, the table's events since the events cursor.
        `flat`: the table has no child tables, so its pages go as Arrow tables (pipelines/arrow.py)."""
        def rows(page: list[dict], deleted: bool | None = False) -> list[dict]:
            stamped = stamp(page, deleted)
            return arrow_page(stamped, table, EVENTED_HINTS[table]["columns"]) if flat else stamped

        cursor = Cursor(settings.OVERLAP, window)
        if window:  # a backfill reads the window by `created` and moves no cursor
            for page in batched(listing(f"v1/{table}", cursor.since, cursor.until)):
                yield rows(page)
            return
        events = EventsCursor(settings.EVENTS_OVERLAP)
        full = events.saved is None
        if not full and events_expired(events.saved, clock.now(), settings.EVENT_RETENTION):
            log.warning("stripe: %s events were last read at %s, more than %s days before Stripe's clock (%s); "
                        "events older than that are gone, so %s is read in full again", table,
                        events.saved.isoformat(), settings.EVENT_RETENTION.days, clock.now().isoformat(), table)
            full = True
        created = listing(f"v1/{table}", None if full else cursor.since)
        seen: set[str] = set()  # what `created` listed since the cursor; a full read needs none (no events)
        for page in batched(created):
            if not full:
                seen.update(row["id"] for row in page)
            yield rows(cursor.track(page, "created"))
        if full:
            events.cover(created.started_at)
        else:
            kind, types = settings.EVENT_TYPES[table]
            read = listing("v1/events", events.since, **{"types[]": list(types)})
            changed = latest_objects((event for page in read for event in page), kind)
            # a row just listed by `created` is at least as new as any event about it
            updates = [row for object_id, row in changed.items() if object_id not in seen]
            if updates:
                yield rows(updates, deleted=None)
            events.cover(read.started_at)
        cursor.commit()
        events.commit()

    @dlt.resource(**EVENTED_HINTS["customers"])
    def customers() -> Iterator:
        """`GET /v1/customers`, cursor `created` (via `created[gte]`) then `customer.*` events (events
        cursor), merge on (account, id); `customer.deleted` sets `deleted`."""
        yield from evented("customers")

    @dlt.resource(**EVENTED_HINTS["charges"])
    def charges() -> Iterator:
        """`GET /v1/charges`, cursor `created` (via `created[gte]`) then `charge.*` events (events
        cursor: refunds and status changes of old charges), merge on (account, id)."""
        yield from evented("charges")

    @dlt.resource(**EVENTED_HINTS["payment_intents"])
    def payment_intents() -> Iterator:
        """`GET /v1/payment_intents`, cursor `created` (via `created[gte]`) then `payment_intent.*`
        events (events cursor), merge on (account, id)."""
        yield from evented("payment_intents", flat=False)  # payment_method_types: a child table

    @dlt.resource(**EVENTED_HINTS["refunds"])
    def refunds() -> Iterator:
        """`GET /v1/refunds`, cursor `created` (via `created[gte]`) then `refund.*` and
        `charge.refund.updated` events (events cursor), merge on (account, id)."""
        yield from evented("refunds")

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge",
                  columns={"source": {"data_type": "text"}, "description": {"data_type": "text"},
                           "status": {"data_type": "text"}},
                  nested_hints={"fee_details": {"columns": {
                      name: {"name": name, "data_type": kind} for name, kind in (
                          ("amount", "bigint"), ("currency", "text"), ("type", "text"),
                          ("description", "text"), ("application", "text"))}}})
    def balance_transactions() -> Iterator[list[dict]]:
        """`GET /v1/balance_transactions`, cursor `created` re-read over a trailing window, merge on
        (account, id). No events describe them, and their `status` moves from `pending` to `available`:
        each run starts at the oldest transaction still `pending` last run, or the high-water mark
        minus the overlap, whichever is older (`oldest_pending` in resource state)."""
        cursor = Cursor(settings.OVERLAP, window)
        state = dlt.current.resource_state()
        since = cursor.since
        if not window and since and state.get("oldest_pending"):
            since = min(since, parse_time(state["oldest_pending"]))
        oldest_pending: datetime | None = None
        for page in batched(listing("v1/balance_transactions", since, cursor.until)):
            for row in page:
                if row.get("status") == "pending":
                    moment = parse_time(row["created"])
                    oldest_pending = moment if oldest_pending is None else min(oldest_pending, moment)
            yield stamp(cursor.track(page, "created"), deleted=None)
        if window:
            return
        cursor.commit()
        # every transaction pending last run was re-read now, so this run's pending ones are all of them
        if oldest_pending is None:
            state.pop("oldest_pending", None)
        else:
            state["oldest_pending"] = oldest_pending.isoformat()

    return customers, charges, payment_intents, refunds, balance_transactions
