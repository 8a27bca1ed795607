"""HubSpot CRM v3: contacts."""

from __future__ import annotations

from collections.abc import Iterator

import dlt

from pipelines.http import VendorClient, cursor_pages
from pipelines.incremental import backfill_window, parse_time, with_account
from pipelines.sources.hubspot import settings

PRIMARY_KEY = ("source_account", "id")


def next_after(payload: dict, items: list[dict]) -> dict | None:
    after = payload.get("paging", {}).get("next", {}).get("after")
    return {"after": after} if after else None


@dlt.source(name="hubspot", section="hubspot", max_table_nesting=2)
def hubspot_source(
    access_token: str = dlt.secrets.value,
    base_url: str = settings.BASE_URL,
    account: str | None = None,
    page_size: int = settings.PAGE_SIZE,
    backfill_start: str | None = None,
    backfill_end: str | None = None,
):
    client = VendorClient("hubspot", base_url, {"Authorization": f"Bearer {access_token}"},
                          [access_token], settings.CREDENTIAL,
                          requests_per_second=settings.REQUESTS_PER_SECOND, burst=settings.BURST)
    account = account or str(client.get("account-info/v3/details")[0]["portalId"])
    window = backfill_window(backfill_start, backfill_end)

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge")
    def contacts() -> Iterator[list[dict]]:
        """`GET /crm/v3/objects/contacts` (all pages), merge on (account, id). A backfill keeps the
        contacts updated within its window (the list endpoint has no server-side filter)."""
        params = {"limit": page_size, "properties": ",".join(settings.CONTACT_PROPERTIES)}
        for page in cursor_pages(client, "crm/v3/objects/contacts", params, lambda p: p["results"], next_after):
            if window:
                start, end = (parse_time(t) for t in window)
                page = [c for c in page if start <= parse_time(c["updatedAt"]) <= end]
            yield with_account(page, account)

    return (contacts,)
