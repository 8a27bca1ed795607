"""ActiveCampaign API v3: contacts, deals, and the ecommerce orders and customers its shop connections sync."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import dlt

from pipelines.arrow import arrow_page, batched
from pipelines.check import Check, try_reads
from pipelines.http import VendorClient, offset_pages
from pipelines.incremental import Cursor, backfill_window, with_account
from pipelines.sources.activecampaign import settings
from pipelines.sources.activecampaign.helpers import moment_of, within

PRIMARY_KEY = ("source_account", "id")


def account_of(base_url: str) -> str:
    """The account is the first label of the API host (`acme.api-us1.com` -> `acme`); ActiveCampaign
    has no endpoint that names it. A bare IP or localhost is kept whole."""
    host = urlsplit(base_url).hostname or base_url
    return host if host.replace(".", "").isdigit() or "." not in host else host.split(".")[0]


def make_client(base_url: str, api_token: str) -> VendorClient:
    return VendorClient("activecampaign", base_url, {"Api-Token": api_token}, [api_token], settings.CREDENTIAL,
                        requests_per_second=settings.REQUESTS_PER_SECOND, burst=settings.BURST)


def check(base_url: str = dlt.config.value, api_token: str = dlt.secrets.value) -> Check:
    """`journey check`: one record of each list the source reads."""
    return try_reads("activecampaign", make_client(base_url, api_token), settings.CHECK_READS)


@dlt.source(name="activecampaign", section="activecampaign", max_table_nesting=2)
def activecampaign_source(
    base_url: str = dlt.config.value,
    api_token: str = dlt.secrets.value,
    account: str | None = None,
    page_size: int = settings.PAGE_SIZE,
    backfill_start: str | None = None,
    backfill_end: str | None = None,
):
    client = make_client(base_url, api_token)
    account = account or account_of(base_url)
    window = backfill_window(backfill_start, backfill_end)

    def updated_pages(resource: str, table: str, updated: str, extra: dict) -> Iterator:
        """Rows updated since the cursor minus a day (`filters[updated_after]` takes a date), or all."""
        cursor = Cursor(settings.OVERLAP, window)
        params = dict(extra)
        if cursor.since:
            params["filters[updated_after]"] = cursor.since.date().isoformat()
        if cursor.until:
            params["filters[updated_before]"] = cursor.until.date().isoformat()
        for page in batched(offset_pages(client, resource, resource, params, page_size)):
            yield arrow_page(with_account(cursor.track(page, updated), account), table)
        cursor.commit()

    def changed_pages(resource: str, table: str, updated: str) -> Iterator:
        """Every row read (no server-side filter exists), only those updated since the cursor minus
        `ECOM_OVERLAP` written, so unchanged rows are not rewritten."""
        cursor = Cursor(settings.ECOM_OVERLAP, window)
        for page in batched(offset_pages(client, resource, resource, {}, page_size)):
            list(cursor.track([r for r in page if moment_of(r.get(updated))], updated))  # note the newest
            changed = [r for r in page if within(r.get(updated), cursor.since, cursor.until)]
            if changed:
                yield arrow_page(with_account(changed, account), table)
        cursor.commit()

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge")
    def contacts() -> Iterator:
        """`GET /contacts`, cursor `udate` (via `filters[updated_after]`, a date), merge on (account, id)."""
        yield from updated_pages("contacts", "contacts", "udate", {"orders[id]": "ASC"})

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge", columns={"organization": {"data_type": "text"}})
    def deals() -> Iterator:
        """`GET /deals`, cursor `mdate` (via `filters[updated_after]`, a date, re-reading the last day),
        merge on (account, id). `value` is in cents."""
        yield from updated_pages("deals", "deals", "mdate", {})

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge", table_name="ecom_orders")
    def ecom_orders() -> Iterator:
        """`GET /ecomOrders` in full (no updated filter exists), cursor `updatedDate` applied client
        side (only rows updated since the cursor minus `ECOM_OVERLAP` are written), merge on (account,
        id). Amounts are in cents."""
        yield from changed_pages("ecomOrders", "ecom_orders", "updatedDate")

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge", table_name="ecom_customers")
    def ecom_customers() -> Iterator:
        """`GET /ecomCustomers` in full (no updated filter exists), cursor `tstamp` applied client side,
        merge on (account, id). Revenue fields are cents as strings."""
        yield from changed_pages("ecomCustomers", "ecom_customers", "tstamp")

    return contacts, deals, ecom_orders, ecom_customers
