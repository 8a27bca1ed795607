"""HubSpot CRM v3: contacts (with their lifecycle-stage history, their marketing touches as the history of
the latest-source properties, and merges) and deals (with their contacts), archived ones included.

History comes with list reads (`propertiesWithHistory`); search, which incremental runs and backfills use,
returns none, so for the contacts a search finds it is read by batch read, 50 ids a request."""

from __future__ import annotations

from collections.abc import Iterator

import dlt

from pipelines.arrow import arrow_page, batched
from pipelines.check import Check, try_reads
from pipelines.http import VendorClient, cursor_pages
from pipelines.incremental import Cursor, backfill_window, parse_time, with_account
from pipelines.sources.hubspot import settings
from pipelines.sources.hubspot.helpers import (
    associations_of,
    history_of,
    latest_source_history_of,
    merges_of,
    next_after,
    pop_histories,
    search_modified,
)

PRIMARY_KEY = ("source_account", "id")


def make_client(base_url: str, access_token: str) -> VendorClient:
    return VendorClient("hubspot", base_url, {"Authorization": f"Bearer {access_token}"}, [access_token],
                        settings.CREDENTIAL, requests_per_second=settings.REQUESTS_PER_SECOND, burst=settings.BURST)


def check(access_token: str = dlt.secrets.value, base_url: str = settings.BASE_URL) -> Check:
    """`journey check`: one record of each object the source reads (each needs its own scope)."""
    return try_reads("hubspot", make_client(base_url, access_token), settings.CHECK_READS)


@dlt.source(name="hubspot", section="hubspot", max_table_nesting=2)
def hubspot_source(
    access_token: str = dlt.secrets.value,
    base_url: str = settings.BASE_URL,
    account: str | None = None,
    page_size: int = settings.PAGE_SIZE,
    search_page_size: int = settings.SEARCH_PAGE_SIZE,
    backfill_start: str | None = None,
    backfill_end: str | None = None,
):
    client = make_client(base_url, access_token)
    # search has a budget of its own: its own pacing over the same session
    searcher = VendorClient("hubspot", base_url, {}, [access_token], settings.CREDENTIAL,
                            requests_per_second=settings.SEARCH_REQUESTS_PER_SECOND, burst=settings.SEARCH_BURST,
                            session=client.session)
    account = account or str(client.get("account-info/v3/details")[0]["portalId"])
    window = backfill_window(backfill_start, backfill_end)

    def modified_pages(obj: str, properties: tuple[str, ...], extra: dict) -> Iterator[list[dict]]:
        """The list endpoint in full on a first run (no cursor yet); afterwards only what search finds
        modified since the cursor minus the lookback (a backfill: within its window). The cursor is
        the newest modification time read, moved only after the last page."""
        modified = settings.MODIFIED[obj]
        cursor = Cursor(settings.SEARCH_LOOKBACK, window)
        if cursor.since is None:
            params = {"limit": page_size, "properties": ",".join(properties), **extra}
            pages = cursor_pages(client, f"crm/v3/objects/{obj}", params, lambda p: p["results"], next_after)
        else:
            def search(body: dict) -> dict:
                return searcher.request_json("POST", f"crm/v3/objects/{obj}/search", json=body)[0]
            pages = search_modified(search, modified, properties, cursor.since, cursor.until, search_page_size,
                                    settings.SEARCH_CAP)
            if extra.get("propertiesWithHistory"):
                pages = (with_histories(obj, page, extra["propertiesWithHistory"]) for page in pages)
        for page in batched(pages):
            list(cursor.track([{modified: r["properties"].get(modified)} for r in page], modified))  # note times
            yield with_account(page, account)
        cursor.commit()

    def with_histories(obj: str, page: list[dict], names: str) -> list[dict]:
        """The page's records with their `propertiesWithHistory`, read by batch read (search has none); a
        record gone between search and read keeps none."""
        for start in range(0, len(page), settings.HISTORY_BATCH):
            chunk = page[start:start + settings.HISTORY_BATCH]
            body = {"inputs": [{"id": r["id"]} for r in chunk], "properties": ["hs_object_id"],
                    "propertiesWithHistory": names.split(",")}
            read = client.request_json("POST", f"crm/v3/objects/{obj}/batch/read", json=body)[0]
            histories = {r["id"]: r.get("propertiesWithHistory", {}) for r in read["results"]}
            for record in chunk:
                record["propertiesWithHistory"] = histories.get(record["id"], {})
        return page

    def archived_pages(obj: str, properties: tuple[str, ...]) -> Iterator[list[dict]]:
        """`?archived=true` in full (search never returns archived rows and the list has no filter),
        keeping only rows archived since the cursor minus the lookback (a backfill: within its window)."""
        cursor = Cursor(settings.SEARCH_LOOKBACK, window)
        params = {"limit": page_size, "properties": ",".join(properties), "archived": "true"}
        for page in batched(cursor_pages(client, f"crm/v3/objects/{obj}", params, lambda p: p["results"], next_after)):
            changed = [r for r in cursor.track(page, "updatedAt")
                       if (cursor.since is None or parse_time(r["updatedAt"]) >= cursor.since)
                       and (cursor.until is None or parse_time(r["updatedAt"]) <= cursor.until)]
            if changed:
                yield with_account(changed, account)
        cursor.commit()

    def side_table(rows: list[dict], table: str, primary_key: tuple[str, ...], columns: dict | None = None):
        hints = dlt.mark.make_hints(table_name=table, primary_key=primary_key, write_disposition="merge",
                                    columns=columns)
        return dlt.mark.with_hints(arrow_page(rows, table, columns), hints, create_table_variant=True)

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge")
    def contacts() -> Iterator:
        """`GET /crm/v3/objects/contacts` in full on the first run, then `POST .../contacts/search` on
        `lastmodifieddate` >= cursor minus `SEARCH_LOOKBACK`; cursor `lastmodifieddate`; merge on
        (account, id). Side tables, merged too: `contacts_lifecyclestage_history` (from
        `propertiesWithHistory=lifecyclestage` on list reads; key account, contact_id, changed_at,
        value), `contacts_latest_source_history` (one row per marketing touch from
        `propertiesWithHistory=hs_latest_source,..._data_1,..._data_2` on list reads: channel, utm source,
        utm campaign; key account, contact_id, changed_at) and `contact_merges` (each id in
        `hs_merged_object_ids` with its survivor; key account, merged_id). Search results carry no
        history: an incremental run reads it for the contacts found by batch read."""
        extra = {"propertiesWithHistory": ",".join(settings.CONTACT_HISTORY)}
        for page in modified_pages(settings.CONTACTS, settings.CONTACT_PROPERTIES, extra):
            histories = pop_histories(page)
            history = history_of(histories, account, "lifecyclestage", "contact_id")
            touches = latest_source_history_of(histories, account)
            merges = merges_of(page, account)
            yield arrow_page(page, "contacts")
            if history:
                yield side_table(history, "contacts_lifecyclestage_history",
                                 ("source_account", "contact_id", "changed_at", "value"),
                                 {"source_id": {"data_type": "text"}, "changed_at": {"data_type": "timestamp"}})
            if touches:
                yield side_table(touches, "contacts_latest_source_history",
                                 ("source_account", "contact_id", "changed_at"),
                                 {"changed_at": {"data_type": "timestamp"}, "channel": {"data_type": "text"},
                                  "utm_source": {"data_type": "text"}, "utm_campaign": {"data_type": "text"},
                                  "source_type": {"data_type": "text"}})
            if merges:
                yield side_table(merges, "contact_merges", ("source_account", "merged_id"))

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge", table_name="contacts")
    def archived_contacts() -> Iterator[list[dict]]:
        """`GET /crm/v3/objects/contacts?archived=true` in full each run, cursor `updatedAt` (client
        side: only rows archived since the cursor minus the lookback are written); merged into
        `contacts` on (account, id) with `archived` = true."""
        for page in archived_pages(settings.CONTACTS, settings.CONTACT_PROPERTIES):
            yield arrow_page(page, "contacts")

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge")
    def deals() -> Iterator:
        """`GET /crm/v3/objects/deals?associations=contacts` in full on the first run, then
        `POST .../deals/search` on `hs_lastmodifieddate` >= cursor minus `SEARCH_LOOKBACK`; cursor
        `hs_lastmodifieddate`; merge on (account, id). Side table `deal_contacts` (key account,
        deal_id, contact_id), from list reads: search results carry no associations."""
        extra = {"associations": ",".join(settings.DEAL_ASSOCIATIONS)}
        for page in modified_pages(settings.DEALS, settings.DEAL_PROPERTIES, extra):
            links = associations_of(page, account, "contacts", "deal_id", "contact_id")
            yield arrow_page(page, "deals")
            if links:
                yield side_table(links, "deal_contacts", ("source_account", "deal_id", "contact_id"))

    @dlt.resource(primary_key=PRIMARY_KEY, write_disposition="merge", table_name="deals")
    def archived_deals() -> Iterator[list[dict]]:
        """`GET /crm/v3/objects/deals?archived=true` in full each run, cursor `updatedAt` (client side);
        merged into `deals` on (account, id) with `archived` = true."""
        for page in archived_pages(settings.DEALS, settings.DEAL_PROPERTIES):
            yield arrow_page(page, "deals")

    return contacts, archived_contacts, deals, archived_deals
