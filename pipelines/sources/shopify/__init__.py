"""Shopify Admin REST: orders (with line items, payment transactions, refunds and their transactions),
customers, and what was deleted: destroyed orders from the events feed, customers by listing every id."""

from __future__ import annotations

from collections.abc import Iterator

import dlt

from pipelines.arrow import arrow_page, batched
from pipelines.check import Check, quick
from pipelines.http import VendorClient, link_header_pages
from pipelines.incremental import Cursor, backfill_window, with_account
from pipelines.sources.shopify import settings

PRIMARY_KEY = ("source_account", "id")
# Payment and refund transactions: types fixed so a page of nulls (manual gateways, no parent) never
# leaves a column out or lets a later page add a variant of it.
TRANSACTION_COLUMNS = {
    "id": {"data_type": "bigint"}, "order_id": {"data_type": "bigint"}, "parent_id": {"data_type": "bigint"},
    "kind": {"data_type": "text"}, "status": {"data_type": "text"}, "amount": {"data_type": "text"},
    "currency": {"data_type": "text"}, "gateway": {"data_type": "text"}, "authorization": {"data_type": "text"},
    "receipt__payment_intent": {"data_type": "text"}, "test": {"data_type": "bool"},
    "created_at": {"data_type": "timestamp"}, "processed_at": {"data_type": "timestamp"},
}
REFUND_COLUMNS = {
    "id": {"data_type": "bigint"}, "order_id": {"data_type": "bigint"}, "note": {"data_type": "text"},
    "created_at": {"data_type": "timestamp"}, "processed_at": {"data_type": "timestamp"},
}
DELETION_COLUMNS = {
    "id": {"data_type": "bigint"}, "deleted_at": {"data_type": "timestamp"},
    "event_id": {"data_type": "bigint"}, "message": {"data_type": "text"},
}

# No primary key on the customer-id listing, explicitly (it was keyed before, and dlt keeps a stored hint
# unless told otherwise): with one, dlt's delete-insert deletes by key OR account, a nested-loop join
# quadratic in ids (100k customers took 20 GB and was killed).
LISTING_COLUMNS = {"id": {"data_type": "bigint", "primary_key": False},
                   "source_account": {"data_type": "text", "primary_key": False}}


def named(columns: dict[str, dict]) -> dict[str, dict]:
    """Nested hints take each column with its name inside (dlt does not fill it in for them)."""
    return {name: {"name": name, **hint} for name, hint in columns.items()}


# webhooks/merge.py loads pushed orders (`orders/*` webhooks) into the same table with these hints too
ORDERS_HINTS = {
    "name": "orders", "primary_key": PRIMARY_KEY, "write_disposition": "merge",
    "columns": {"customer__id": {"data_type": "bigint"}, "cancelled_at": {"data_type": "timestamp"},
                "closed_at": {"data_type": "timestamp"}, "email": {"data_type": "text"}},
    "nested_hints": {"transactions": {"columns": named(TRANSACTION_COLUMNS)},
                     "refunds": {"columns": named(REFUND_COLUMNS)},
                     ("refunds", "transactions"): {"columns": named(TRANSACTION_COLUMNS)}},
}


def admin_url(base_url: str, api_version: str) -> str:
    """The versioned admin URL: a shop URL gets `/admin/api/<version>` appended; a full one is kept."""
    base_url = base_url.rstrip("/")
    return base_url if "/admin/api/" in base_url else f"{base_url}/admin/api/{api_version}"


def deletion(event: dict) -> dict:
    """A destroy event as a row about the order it destroyed."""
    return {"id": event["subject_id"], "deleted_at": event["created_at"], "event_id": event["id"],
            "message": event.get("message")}


def make_client(base_url: str, access_token: str, api_version: str) -> VendorClient:
    return VendorClient("shopify", admin_url(base_url, api_version), {"X-Shopify-Access-Token": access_token},
                        [access_token], settings.CREDENTIAL, requests_per_second=settings.REQUESTS_PER_SECOND,
                        burst=settings.BURST)


def check(base_url: str = dlt.config.value, access_token: str = dlt.secrets.value,
          api_version: str = settings.API_VERSION) -> Check:
    """`journey check`: the token's own scopes (`access_scopes.json`, at the shop root, unversioned) against
    the ones the source needs."""
    client = quick(make_client(base_url, access_token, api_version))
    root = client.base_url.split("/admin/api/")[0]
    granted = {s["handle"] for s in client.get(root + settings.ACCESS_SCOPES_PATH)[0]["access_scopes"]}
    return Check("shopify", verified=sorted(set(settings.NEEDED_SCOPES) & granted),
                 missing=[f"{scope}: needed for {why}" for scope, why in settings.NEEDED_SCOPES.items()
                          if scope not in granted])


@dlt.source(name="shopify", section="shopify", max_table_nesting=3)
def shopify_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    api_version: str = settings.API_VERSION,
    account: str | None = None,
    page_size: int = settings.PAGE_SIZE,
    backfill_start: str | None = None,
    backfill_end: str | None = None,
):
    client = make_client(base_url, access_token, api_version)
    account = account or client.get("shop.json")[0]["shop"]["myshopify_domain"]
    window = backfill_window(backfill_start, backfill_end)

    def updated_pages(resource: str, extra: dict) -> Iterator[list[dict]]:
        cursor = Cursor(settings.OVERLAP, window)
        params = {"limit": page_size, "order": "updated_at asc", **extra}
        if cursor.since:
            params["updated_at_min"] = cursor.since.isoformat()
        if cursor.until:
            params["updated_at_max"] = cursor.until.isoformat()
        for page in batched(link_header_pages(client, f"{resource}.json", resource, params)):
            yield with_account(cursor.track(page, "updated_at"), account)
        cursor.commit()

    @dlt.resource(**ORDERS_HINTS)
    def orders() -> Iterator[list[dict]]:
        """`GET orders.json?status=any`, cursor `updated_at` (via `updated_at_min`), merge on
        (account, id); line items, payment `transactions` (`orders__transactions`), refunds and refund
        transactions land as child tables replaced with their order.

        `status=any` because the default (`open`) hides closed and cancelled orders. Without the
        `read_all_orders` scope Shopify silently leaves out orders created more than 60 days ago (no
        error, just fewer rows): grant it to the app's token before the first full read."""
        yield from updated_pages("orders", {"status": "any"})

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge", columns=DELETION_COLUMNS)
    def order_deletions() -> Iterator:
        """`GET events.json?filter=Order&verb=destroy`, cursor the event's `created_at` (via
        `created_at_min`), merge on (account, id): one row per destroyed order (`id` is the order's id),
        kept apart from `orders` so merging a deletion never blanks an order's other columns; staging
        anti-joins on it."""
        cursor = Cursor(settings.OVERLAP, window)
        params = {"limit": page_size, **settings.ORDER_DELETION_EVENTS}
        if cursor.since:
            params["created_at_min"] = cursor.since.isoformat()
        if cursor.until:
            params["created_at_max"] = cursor.until.isoformat()
        for page in batched(link_header_pages(client, "events.json", "events", params)):
            yield arrow_page(with_account([deletion(event) for event in cursor.track(page, "created_at")], account),
                             "order_deletions")
        cursor.commit()

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge", columns={"email": {"data_type": "text"}})
    def customers() -> Iterator:
        """`GET customers.json`, cursor `updated_at`, merge on (account, id); consent included."""
        for page in updated_pages("customers", {}):
            yield arrow_page(page, "customers")

    @dlt.resource(name="customer_ids", table_name="customer_ids_seen", merge_key="source_account",
                  write_disposition={"disposition": "merge", "strategy": "delete-insert"},
                  columns=LISTING_COLUMNS)
    def customer_ids() -> Iterator:
        """`GET customers.json?fields=id`, no cursor (every id, every run), into `customer_ids_seen`, the
        account's previous listing replaced (delete-insert on `source_account`: other shops' listings stay):
        Shopify has no deletion feed for customers, so staging flags customers no longer listed here as
        deleted. Each id once per listing (a page may repeat one when the listing shifts under it). A shop
        that lists no customer at all gets one row without an id, so its previous listing is still replaced
        (dlt loads nothing for no rows) and staging flags every customer it had as deleted."""
        params = {"limit": page_size, "fields": settings.CUSTOMER_ID_FIELDS}
        seen: set[int] = set()
        for page in batched(link_header_pages(client, "customers.json", "customers", params)):
            fresh = [customer["id"] for customer in page if customer["id"] not in seen]
            seen.update(fresh)
            yield arrow_page(with_account([{"id": customer_id} for customer_id in fresh], account),
                             "customer_ids_seen", LISTING_COLUMNS)
        if not seen:
            yield with_account([{"id": None}], account)

    return orders, customers, order_deletions, customer_ids
