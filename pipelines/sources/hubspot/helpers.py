"""HubSpot's own quirks: the search endpoint's 10,000-result cap and lagging index, merged contacts
listed on their survivor, and history and associations nested in a record."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from pipelines.incremental import parse_time

ID_PROPERTY = "hs_object_id"
LATEST_SOURCE, LATEST_SOURCE_DATA_1, LATEST_SOURCE_DATA_2 = (
    "hs_latest_source", "hs_latest_source_data_1", "hs_latest_source_data_2")


def next_after(payload: dict, items: list[dict]) -> dict | None:
    """The list endpoint's cursor: `paging.next.after`, absent on the last page."""
    after = payload.get("paging", {}).get("next", {}).get("after")
    return {"after": after} if after else None


def epoch_ms(value: str | datetime) -> int:
    """A timestamp as search compares dates: epoch milliseconds."""
    return round(parse_time(value).timestamp() * 1000)


def window_filters(modified: str, since: datetime | None, until: datetime | None,
                   resume: tuple[int, int] | None) -> list[dict]:
    """Filter groups (ORed) for rows modified in [since, until] that sort after `resume`, the
    (modified ms, id) of the last row already read: a keyset on the search's own sort order."""
    upper = [{"propertyName": modified, "operator": "LTE", "value": str(epoch_ms(until))}] if until else []
    if resume is None:
        lower = [{"propertyName": modified, "operator": "GTE", "value": str(epoch_ms(since))}] if since else []
        return [{"filters": lower + upper}] if lower or upper else []
    moment, last_id = resume
    return [{"filters": [{"propertyName": modified, "operator": "EQ", "value": str(moment)},
                         {"propertyName": ID_PROPERTY, "operator": "GT", "value": str(last_id)}] + upper},
            {"filters": [{"propertyName": modified, "operator": "GT", "value": str(moment)}] + upper}]


def search_modified(search: Callable[[dict], dict], modified: str, properties: Sequence[str],
                    since: datetime | None, until: datetime | None = None, page_size: int = 200,
                    cap: int = 10_000) -> Iterator[list[dict]]:
    """Every record modified in [since, until], in pages, however many there are.

    One search query can page through at most `cap` results (HubSpot answers 400 past 10,000), so rows
    are sorted by (modified, id) and each page is a fresh query for the rows after the last one read
    (`after` stays 0). The window thus narrows page by page: it never meets the cap, never sticks when
    more than `cap` rows share one timestamp (bulk updates), and never skips a row when a row already
    read is modified mid-sweep (it only moves later and is read again, which merge absorbs), as offset
    paging through one query would.
    """
    if page_size > cap:
        raise ValueError(f"a search page of {page_size} rows passes the {cap}-result cap")
    sorts = [{"propertyName": modified, "direction": "ASCENDING"},
             {"propertyName": ID_PROPERTY, "direction": "ASCENDING"}]
    resume: tuple[int, int] | None = None
    while True:
        payload = search({"filterGroups": window_filters(modified, since, until, resume), "sorts": sorts,
                          "properties": list(properties), "limit": page_size, "after": "0"})
        rows = payload.get("results") or []
        if rows:
            yield rows
        if len(rows) < page_size or not payload.get("paging"):
            return
        last = rows[-1]
        resume = (epoch_ms(last["properties"][modified]), int(last["id"]))


def merges_of(contacts: list[dict], account: str) -> list[dict]:
    """The merged-away ids a surviving contact lists in `hs_merged_object_ids` ("1;2"), one row each,
    so staging can re-key facts that still name a merged-away id."""
    return [{"source_account": account, "merged_id": merged.strip(), "surviving_id": c["id"]}
            for c in contacts for merged in (c["properties"].get("hs_merged_object_ids") or "").split(";")
            if merged.strip()]


def pop_histories(records: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """Each record's `propertiesWithHistory` by record id, popped off the record so a later read without
    it (search) cannot wipe it when the record is merged again."""
    return {record["id"]: record.pop("propertiesWithHistory", None) or {} for record in records}


def history_of(histories: dict[str, dict[str, list[dict]]], account: str, name: str, id_column: str) -> list[dict]:
    """A property's history (`propertiesWithHistory`, see pop_histories), one row per change."""
    return [{"source_account": account, id_column: record_id, "value": change.get("value"),
             "changed_at": change.get("timestamp"), "source_type": change.get("sourceType"),
             "source_id": change.get("sourceId")}
            for record_id, history in histories.items() for change in history.get(name, [])]


def latest_source_history_of(histories: dict[str, dict[str, list[dict]]], account: str) -> list[dict]:
    """A contact's marketing touches as HubSpot keeps them, one row per touch: each version of
    `hs_latest_source` (the channel category) with the `_data_1` (utm source) and `_data_2` (utm campaign,
    "" when none) versions set at the same moment, values as served."""
    rows = []
    for contact_id, history in histories.items():
        at_time = {name: {v.get("timestamp"): v.get("value") for v in history.get(name, [])}
                   for name in (LATEST_SOURCE_DATA_1, LATEST_SOURCE_DATA_2)}
        for version in history.get(LATEST_SOURCE, []):
            at = version.get("timestamp")
            rows.append({"source_account": account, "contact_id": contact_id, "changed_at": at,
                         "channel": version.get("value"), "utm_source": at_time[LATEST_SOURCE_DATA_1].get(at),
                         "utm_campaign": at_time[LATEST_SOURCE_DATA_2].get(at),
                         "source_type": version.get("sourceType")})
    return rows


def associations_of(records: list[dict], account: str, other: str, id_column: str, other_column: str) -> list[dict]:
    """A record's associations with `other` objects, one row per pair, popped off each record (search
    results carry none, and a nested table would be emptied when such a result is merged)."""
    rows = []
    for record in records:
        linked = (record.pop("associations", None) or {}).get(other, {}).get("results", [])
        rows += [{"source_account": account, id_column: record["id"], other_column: link["id"],
                  "association_type": link.get("type")} for link in linked]
    return rows
