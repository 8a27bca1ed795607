"""ActiveCampaign API v3: contacts."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import dlt

from pipelines.http import VendorClient, offset_pages
from pipelines.incremental import Cursor, backfill_window, with_account
from pipelines.sources.activecampaign import settings

PRIMARY_KEY = ("source_account", "id")


def account_of(base_url: str) -> str:
    """The account is the first label of the API host (`acme.api-us1.com` -> `acme`); ActiveCampaign
    has no endpoint that names it. A bare IP or localhost is kept whole."""
    host = urlsplit(base_url).hostname or base_url
    return host if host.replace(".", "").isdigit() or "." not in host else host.split(".")[0]


@dlt.source(name="activecampaign", section="activecampaign", max_table_nesting=2)
def activecampaign_source(
    base_url: str = dlt.config.value,
    api_token: str = dlt.secrets.value,
    account: str | None = None,
    page_size: int = settings.PAGE_SIZE,
    backfill_start: str | None = None,
    backfill_end: str | None = None,
):
    client = VendorClient("activecampaign", base_url, {"Api-Token": api_token}, [api_token], settings.CREDENTIAL,
                          requests_per_second=settings.REQUESTS_PER_SECOND, burst=settings.BURST)
    account = account or account_of(base_url)
    window = backfill_window(backfill_start, backfill_end)

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge")
    def contacts() -> Iterator[list[dict]]:
        """`GET /contacts`, cursor `udate` (via `filters[updated_after]`, a date), merge on (account, id)."""
        cursor = Cursor(settings.OVERLAP, window)
        params = {"orders[id]": "ASC"}
        if cursor.since:
            params["filters[updated_after]"] = cursor.since.date().isoformat()
        if cursor.until:
            params["filters[updated_before]"] = cursor.until.date().isoformat()
        for page in offset_pages(client, "contacts", "contacts", params, page_size):
            yield with_account(cursor.track(page, "udate"), account)
        cursor.commit()

    return (contacts,)
