"""HubSpot CRM v3: contacts."""

from __future__ import annotations

from collections.abc import Iterator

import dlt

from pipelines.http import VendorClient, cursor_pages
from pipelines.incremental import with_account
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
    full_refresh: bool = False,
):
    client = VendorClient("hubspot", base_url, {"Authorization": f"Bearer {access_token}"},
                          [access_token], settings.CREDENTIAL)
    account = account or str(client.get("account-info/v3/details")[0]["portalId"])

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge")
    def contacts() -> Iterator[list[dict]]:
        """`GET /crm/v3/objects/contacts` (all pages), merge on (account, id)."""
        params = {"limit": page_size, "properties": ",".join(settings.CONTACT_PROPERTIES)}
        for page in cursor_pages(client, "crm/v3/objects/contacts", params, lambda p: p["results"], next_after):
            yield with_account(page, account)

    return (contacts,)
