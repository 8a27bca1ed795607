"""Shopify Admin REST: orders (with line items, refunds and their transactions) and customers."""

from __future__ import annotations

from collections.abc import Iterator

import dlt

from pipelines.http import VendorClient, link_header_pages
from pipelines.incremental import Cursor, backfill_window, with_account
from pipelines.sources.shopify import settings

PRIMARY_KEY = ("source_account", "id")


def admin_url(base_url: str, api_version: str) -> str:
    """The versioned admin URL: a shop URL gets `/admin/api/<version>` appended; a full one is kept."""
    base_url = base_url.rstrip("/")
    return base_url if "/admin/api/" in base_url else f"{base_url}/admin/api/{api_version}"


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
    client = VendorClient("shopify", admin_url(base_url, api_version), {"X-Shopify-Access-Token": access_token},
                          [access_token], settings.CREDENTIAL,
                          requests_per_second=settings.REQUESTS_PER_SECOND, burst=settings.BURST)
    account = account or client.get("shop.json")[0]["shop"]["myshopify_domain"]
    window = backfill_window(backfill_start, backfill_end)

    def updated_pages(resource: str, extra: dict) -> Iterator[list[dict]]:
        cursor = Cursor(settings.OVERLAP, window)
        params = {"limit": page_size, "order": "updated_at asc", **extra}
        if cursor.since:
            params["updated_at_min"] = cursor.since.isoformat()
        if cursor.until:
            params["updated_at_max"] = cursor.until.isoformat()
        for page in link_header_pages(client, f"{resource}.json", resource, params):
            yield with_account(cursor.track(page, "updated_at"), account)
        cursor.commit()

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge",
                  columns={"customer__id": {"data_type": "bigint"}, "cancelled_at": {"data_type": "timestamp"},
                           "closed_at": {"data_type": "timestamp"}, "email": {"data_type": "text"}})
    def orders() -> Iterator[list[dict]]:
        """`GET orders.json?status=any`, cursor `updated_at` (via `updated_at_min`), merge on
        (account, id); line items, refunds and refund transactions land as child tables replaced with
        their order."""
        yield from updated_pages("orders", {"status": "any"})

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge", columns={"email": {"data_type": "text"}})
    def customers() -> Iterator[list[dict]]:
        """`GET customers.json`, cursor `updated_at`, merge on (account, id); consent included."""
        yield from updated_pages("customers", {})

    return orders, customers
