"""HubSpot and ActiveCampaign in depth, against the session's sandbox over HTTP: a full load lands
exactly what is served (archived contacts flagged, merges, history, deals and their contacts, ecommerce
orders and customers), a second run searches or filters instead of re-reading and re-writing, and the
search sweep never meets HubSpot's 10,000-result cap, whatever the data."""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from pipelines.load import load_source
from pipelines.sources.hubspot.helpers import epoch_ms, search_modified

pytestmark = pytest.mark.sources

# small pages, so a first run's full list and a second run's search differ in pages on a small world
HUBSPOT_PAGES = {"SOURCES__HUBSPOT__PAGE_SIZE": "10", "SOURCES__HUBSPOT__SEARCH_PAGE_SIZE": "10"}


def requests_made(sandbox, vendor: str) -> int:
    with urllib.request.urlopen(f"{sandbox.url}/_sandbox/stats") as reply:
        return json.load(reply)["requests"].get(vendor, 0)


@pytest.fixture(scope="module")
def crm_runs(tmp_path_factory, sandbox_settings, sandbox):
    """Each CRM source loaded twice into a warehouse of its own, with the requests each run made."""
    warehouse = tmp_path_factory.mktemp("crm") / "warehouse.duckdb"
    saved = {k: os.environ.get(k) for k in HUBSPOT_PAGES}
    os.environ.update(HUBSPOT_PAGES)
    runs: dict[str, list] = {}
    try:
        for vendor in ("hubspot", "activecampaign"):
            for _ in range(2):
                before = requests_made(sandbox, vendor)
                result = load_source(vendor, warehouse)
                runs.setdefault(vendor, []).append((result, requests_made(sandbox, vendor) - before))
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    return warehouse, runs


def rows(warehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.parametrize("obj", ["contacts", "deals"])
def test_hubspot_full_load_has_every_record_once_archived_flagged(crm_runs, sandbox, obj):
    warehouse, _ = crm_runs
    served = sandbox.sandbox.vendors["hubspot"].records[obj]
    loaded = rows(warehouse, f"select id, archived, count(*) over (partition by source_account, id) "
                             f"from raw_hubspot.{obj}")
    assert {i: a for i, a, _ in loaded} == {r["id"]: r["archived"] for r in served}
    assert all(n == 1 for _, _, n in loaded)
    live = sum(1 for _, archived, _ in loaded if not archived)
    assert live == sandbox.sandbox.vendors["hubspot"].served_counts()[obj]


def test_hubspot_search_rows_land_in_the_list_columns(crm_runs):
    warehouse, runs = crm_runs
    assert runs["hubspot"][1][0].rows.get("contacts", 0) > 0  # the second run did write search rows
    assert runs["hubspot"][1][0].new_columns == {}
    missing = rows(warehouse, "select count(*) from raw_hubspot.contacts where properties__email is null "
                              "or properties__lastmodifieddate is null or source_account is null")
    assert missing == [(0,)]


def test_hubspot_merges_history_and_deal_contacts_are_landed(crm_runs, sandbox, world):
    warehouse, _ = crm_runs
    hubspot = sandbox.sandbox.vendors["hubspot"]
    merges = {(r.contact_id, world.person(r.person_id).hubspot_contact_id)
              for r in world.crm_records() if r.vendor == "hubspot" and r.kind == "merged"}
    assert merges and set(rows(warehouse, "select merged_id, surviving_id from raw_hubspot.contact_merges")) == merges
    history = rows(warehouse, "select contact_id, count(*) from raw_hubspot.contacts_lifecyclestage_history "
                              "group by contact_id")
    live = {r["id"] for r in hubspot.records["contacts"] if not r["archived"]}
    assert dict(history) == {i: len(hubspot.lifecycle_history(i)) for i in live}
    archived = {r["id"] for r in hubspot.records["deals"] if r["archived"]}
    links = {(deal_id, other) for deal_id, others in hubspot.links["deals"].items() if deal_id not in archived
             for other in others}
    assert set(rows(warehouse, "select deal_id, contact_id from raw_hubspot.deal_contacts")) == links


def test_hubspot_touches_are_landed_one_row_per_touch_as_the_world_has_them(crm_runs, world):
    warehouse, _ = crm_runs
    landed = rows(warehouse, "select contact_id, changed_at, channel, utm_source, utm_campaign, source_type "
                             "from raw_hubspot.contacts_latest_source_history")
    expected = {(p.hubspot_contact_id, t.touched_at, t.channel, t.source, t.campaign, "ANALYTICS")
                for p in world.people if p.in_hubspot for t in p.touches if t.touched_at <= world.clock}
    assert len(landed) == len(expected) and set(landed) == expected


def test_hubspot_second_run_searches_far_fewer_pages(crm_runs):
    _, runs = crm_runs
    (first, first_requests), (second, second_requests) = runs["hubspot"]
    assert second_requests * 3 < first_requests
    assert second.rows.get("contacts", 0) < first.rows["contacts"] / 10
    assert second.rows.get("deals", 0) < first.rows["deals"] / 4
    # search carries no history: it is read by batch read for exactly the contacts the search found again
    assert 0 < second.rows["contacts_lifecyclestage_history"] < first.rows["contacts_lifecyclestage_history"] / 10
    assert 0 < second.rows["contacts_latest_source_history"] < first.rows["contacts_latest_source_history"] / 10
    assert second.high_water["contacts"] >= first.high_water["contacts"]


@pytest.mark.parametrize("endpoint, table", [("contacts", "contacts"), ("deals", "deals"),
                                             ("ecomOrders", "ecom_orders"), ("ecomCustomers", "ecom_customers")])
def test_activecampaign_full_load_has_every_record_once(crm_runs, sandbox, endpoint, table):
    warehouse, _ = crm_runs
    served = {r["id"] for r in sandbox.sandbox.vendors["activecampaign"].lists[endpoint]}
    loaded = rows(warehouse, f"select id from raw_activecampaign.{table}")
    assert len(loaded) == len(served) and {i for (i,) in loaded} == served


@pytest.mark.parametrize("table", ["deals", "ecom_orders", "ecom_customers"])
def test_activecampaign_second_run_writes_only_changed_rows(crm_runs, table):
    _, runs = crm_runs
    (first, _), (second, _) = runs["activecampaign"]
    assert second.rows.get(table, 0) < first.rows[table] / 10


# --- the search sweep, on its own: a fake search with HubSpot's rules and a small cap ----------------
MODIFIED = "lastmodifieddate"


def fake_search(records: list[dict], cap: int, calls: list[dict], on_call=None):
    """HubSpot's search over `records`: filter groups ORed, filters ANDed, dates as epoch ms, sorted as
    asked, offset `after`, 400 (here an error) once after + limit passes `cap`."""
    def value(record: dict, name: str) -> int:
        raw = record["properties"][name]
        return int(raw) if name == "hs_object_id" else epoch_ms(raw)

    checks = {"EQ": int.__eq__, "GT": int.__gt__, "GTE": int.__ge__, "LTE": int.__le__, "LT": int.__lt__}

    def search(body: dict) -> dict:
        calls.append(body)
        if on_call:
            on_call(len(calls))
        after, limit = int(body["after"]), body["limit"]
        if after + limit > cap:
            raise AssertionError(f"searched past the cap: after {after} + limit {limit} > {cap}")
        groups = body["filterGroups"]
        matched = [r for r in records if not groups or any(
            all(checks[f["operator"]](value(r, f["propertyName"]), int(f["value"])) for f in g["filters"])
            for g in groups)]
        matched.sort(key=lambda r: tuple(value(r, s["propertyName"]) for s in body["sorts"]))
        page = matched[after:after + limit]
        more = after + limit < len(matched)
        return {"total": len(matched), "results": [dict(r) for r in page],
                **({"paging": {"next": {"after": str(after + limit)}}} if more else {})}
    return search


def record(object_id: int, modified: datetime) -> dict:
    stamp = modified.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"id": str(object_id), "properties": {"hs_object_id": str(object_id), MODIFIED: stamp}}


START = datetime(2026, 3, 1, tzinfo=UTC)


def test_search_sweep_reads_past_the_cap_and_through_one_crowded_timestamp_exactly_once():
    # 130 rows share one timestamp (a bulk update), more than the cap of 50 a query can page through
    records = [record(i, START + timedelta(minutes=i % 40)) for i in range(1, 200)]
    records += [record(i, START + timedelta(minutes=5)) for i in range(500, 630)]
    early = [record(i, START - timedelta(days=1)) for i in range(900, 910)]  # before the window
    calls: list[dict] = []
    pages = list(search_modified(fake_search(records + early, cap=50, calls=calls), MODIFIED, [MODIFIED], START,
                                 page_size=20, cap=50))
    read = [r["id"] for page in pages for r in page]
    assert sorted(read, key=int) == sorted((r["id"] for r in records), key=int)
    assert len(read) == len(set(read))
    assert len(calls) == len(read) // 20 + 1  # one query per page, none wasted, none stuck


def test_search_sweep_keeps_the_upper_bound_of_a_backfill_window():
    records = [record(i, START + timedelta(hours=i)) for i in range(1, 100)]
    calls: list[dict] = []
    until = START + timedelta(hours=30)
    read = [r["id"] for page in search_modified(fake_search(records, cap=50, calls=calls), MODIFIED, [MODIFIED],
                                                START + timedelta(hours=10), until, page_size=7, cap=50)
            for r in page]
    assert read == [str(i) for i in range(10, 31)]


def test_search_sweep_skips_nothing_when_a_row_read_is_modified_mid_sweep():
    records = [record(i, START + timedelta(minutes=i)) for i in range(1, 61)]

    def touch_first_row(call: int) -> None:
        if call == 2:  # between pages, a row already read is modified: it moves to the end
            records[0] = record(1, START + timedelta(days=1))

    calls: list[dict] = []
    read = [r["id"] for page in search_modified(fake_search(records, cap=50, calls=calls, on_call=touch_first_row),
                                                MODIFIED, [MODIFIED], START, page_size=10, cap=50) for r in page]
    assert set(read) == {str(i) for i in range(1, 61)}  # offset paging would have skipped row 11
