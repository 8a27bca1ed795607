"""Stripe API v1: customers and charges."""

from __future__ import annotations

from collections.abc import Iterator

import dlt

from pipelines.http import VendorClient, cursor_pages
from pipelines.incremental import Cursor, backfill_window, with_account
from pipelines.sources.stripe import settings

PRIMARY_KEY = ("source_account", "id")


def next_after(payload: dict, items: list[dict]) -> dict | None:
    return {"starting_after": items[-1]["id"]} if payload.get("has_more") and items else None


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
    client = VendorClient("stripe", base_url, {"Authorization": f"Bearer {api_key}",
                                               "Stripe-Version": stripe_version}, [api_key], settings.CREDENTIAL,
                          requests_per_second=settings.REQUESTS_PER_SECOND, burst=settings.BURST)
    account = account or client.get("v1/account")[0]["id"]
    window = backfill_window(backfill_start, backfill_end)

    def created_pages(resource: str) -> Iterator[list[dict]]:
        cursor = Cursor(settings.OVERLAP, window)
        params: dict = {"limit": page_size}
        if cursor.since:
            params["created[gte]"] = int(cursor.since.timestamp())
        if cursor.until:
            params["created[lte]"] = int(cursor.until.timestamp())
        pages = cursor_pages(client, f"v1/{resource}", params, lambda p: p["data"], next_after)
        for page in pages:
            yield with_account(cursor.track(page, "created"), account)
        cursor.commit()

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge", columns={"email": {"data_type": "text"}})
    def customers() -> Iterator[list[dict]]:
        """`GET /v1/customers`, cursor `created` (via `created[gte]`), merge on (account, id)."""
        yield from created_pages("customers")

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge",
                  columns={"failure_code": {"data_type": "text"}, "customer": {"data_type": "text"}})
    def charges() -> Iterator[list[dict]]:
        """`GET /v1/charges`, cursor `created` (via `created[gte]`), merge on (account, id)."""
        yield from created_pages("charges")

    return customers, charges
