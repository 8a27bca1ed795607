"""The CRM vendors over real HTTP: HubSpot's archived and merged contacts, search, deals, history and
upserts; ActiveCampaign's deals, ecommerce lists, keyset paging and contact sync; the world's CRM facts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from sandbox.limits import LeakyBucket
from sandbox.server import SandboxServer
from sandbox.vendors.hubspot import SEARCH_RATE_LIMIT
from sandbox.world import CHANNELS, World, touch_rows

pytestmark = pytest.mark.sandbox

SEED = 21


@pytest.fixture(scope="module")
def world() -> World:
    return World.build(SEED, 200)


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[SandboxServer]:
    with SandboxServer(world, mode="bench") as running:
        yield running


class Crm:
    """Authenticated calls to one sandbox's HubSpot and ActiveCampaign."""

    def __init__(self, server: SandboxServer):
        index = server.index()
        self.server = server
        self.hs_url = index["hubspot"]["base_url"]
        self.ac_url = index["activecampaign"]["base_url"]
        self.session = requests.Session()
        self.hs_headers = {"Authorization": "Bearer " + index["hubspot"]["credentials"]["access_token"]}
        self.ac_headers = {"Api-Token": index["activecampaign"]["credentials"]["api_token"]}

    def hs(self, path: str, **params) -> requests.Response:
        return self.session.get(self.hs_url + path, params=params, headers=self.hs_headers, timeout=10)

    def hs_post(self, path: str, body: dict) -> requests.Response:
        return self.session.post(self.hs_url + path, json=body, headers=self.hs_headers, timeout=10)

    def search(self, obj: str = "contacts", **body) -> requests.Response:
        return self.hs_post(f"/crm/v3/objects/{obj}/search", body)

    def search_all(self, obj: str = "contacts", limit: int = 7, **body) -> list[dict]:
        rows, after = [], "0"
        while True:
            page = self.search(obj, limit=limit, after=after, **body).json()
            rows += page["results"]
            if "paging" not in page:
                return rows
            after = page["paging"]["next"]["after"]

    def hs_all(self, obj: str = "contacts", **params) -> list[dict]:
        rows, after = [], 0
        while True:
            page = self.hs(f"/crm/v3/objects/{obj}", limit=100, after=after, **params).json()
            rows += page["results"]
            if "paging" not in page:
                return rows
            after = page["paging"]["next"]["after"]

    def ac(self, path: str, **params) -> requests.Response:
        return self.session.get(self.ac_url + path, params=params, headers=self.ac_headers, timeout=10)

    def ac_all(self, resource: str, **params) -> list[dict]:
        return self.ac("/" + resource, limit=100, **params).json()[resource]


@pytest.fixture(scope="module")
def crm(server: SandboxServer) -> Crm:
    return Crm(server)


def ms(moment: datetime) -> str:
    return str(round(moment.timestamp() * 1000))


# --- HubSpot contacts ------------------------------------------------------------------------------
def test_archived_contacts_are_listed_only_with_archived_true(crm, world):
    archived = {r.contact_id for r in world.crm_records() if r.vendor == "hubspot" and r.kind == "archived"}
    served = crm.hs("/crm/v3/objects/contacts", limit=100, archived="true").json()["results"]
    assert archived and {c["id"] for c in served} == archived
    assert all(c["archived"] and c["archivedAt"] for c in served)
    listed = [c["id"] for c in crm.hs_all()]
    assert not set(listed) & archived and len(listed) == sum(p.in_hubspot for p in world.people)
    assert crm.hs(f"/crm/v3/objects/contacts/{min(archived)}").status_code == 404
    assert crm.hs(f"/crm/v3/objects/contacts/{min(archived)}", archived="true").json()["archived"]


def test_merged_contacts_are_gone_and_named_by_their_survivor(crm, world):
    merged = [r for r in world.crm_records() if r.kind == "merged"]
    assert merged
    record = merged[0]
    survivor = world.person(record.person_id).hubspot_contact_id
    got = crm.hs(f"/crm/v3/objects/contacts/{survivor}", properties="hs_merged_object_ids,email").json()
    assert record.contact_id in got["properties"]["hs_merged_object_ids"].split(";")
    assert crm.hs(f"/crm/v3/objects/contacts/{record.contact_id}").status_code == 404
    assert crm.hs(f"/crm/v3/objects/contacts/{record.contact_id}", archived="true").status_code == 404
    having = crm.search_all(filterGroups=[{"filters": [{"propertyName": "hs_merged_object_ids",
                                                        "operator": "HAS_PROPERTY"}]}])
    assert {c["id"] for c in having} == {world.person(r.person_id).hubspot_contact_id for r in merged
                                         if not world.person(r.person_id).hubspot_indexed_at}


def test_contacts_carry_original_source_consent_and_lifecycle_history(crm, world):
    buyer = next(p for p in world.people if p.in_hubspot and p.orders and len(p.lifecycle) == 3)
    got = crm.hs(f"/crm/v3/objects/contacts/{buyer.hubspot_contact_id}",
                 properties="hs_analytics_source,hs_email_optout,lifecyclestage",
                 propertiesWithHistory="lifecyclestage").json()
    assert got["properties"]["hs_analytics_source"] == buyer.touches[0].channel
    assert got["properties"]["hs_email_optout"] == ("false" if buyer.accepts_marketing else "true")
    assert got["properties"]["lifecyclestage"] == "customer"
    history = got["propertiesWithHistory"]["lifecyclestage"]
    assert [h["value"] for h in history] == ["customer", "lead", "subscriber"]  # newest first
    first_order = min(o.created_at for o in buyer.orders)
    assert datetime.fromisoformat(history[0]["timestamp"]) == first_order
    assert all(h["sourceType"] for h in history)


def test_batch_read_gives_history_for_at_most_50_ids_and_names_those_not_found(crm, world):
    listed = [c["id"] for c in crm.hs_all()]
    archived = next(r.contact_id for r in world.crm_records() if r.vendor == "hubspot" and r.kind == "archived")
    body = {"inputs": [{"id": i} for i in listed[:49]] + [{"id": archived}], "properties": ["email"],
            "propertiesWithHistory": ["lifecyclestage", "hs_latest_source"]}
    read = crm.hs_post("/crm/v3/objects/contacts/batch/read", body)
    assert read.status_code == 207  # partly: the archived one is not found without archived=true
    got = read.json()
    assert [r["id"] for r in got["results"]] == listed[:49]
    assert got["errors"][0]["category"] == "OBJECT_NOT_FOUND" and got["errors"][0]["context"]["ids"] == [archived]
    one = crm.hs(f"/crm/v3/objects/contacts/{listed[0]}", properties="email",
                 propertiesWithHistory="lifecyclestage,hs_latest_source").json()
    assert got["results"][0]["propertiesWithHistory"] == one["propertiesWithHistory"]
    too_many = crm.hs_post("/crm/v3/objects/contacts/batch/read", {**body, "inputs": [{"id": i} for i in listed[:51]]})
    assert too_many.status_code == 400 and "property histories is 50" in too_many.json()["message"]
    plain = crm.hs_post("/crm/v3/objects/contacts/batch/read", {"inputs": [{"id": i} for i in listed[:100]]})
    assert plain.status_code == 200 and len(plain.json()["results"]) == 100
    assert crm.hs_post("/crm/v3/objects/contacts/batch/read",
                       {"inputs": [{"id": i} for i in listed[:101]]}).status_code == 400


def test_lastmodifieddate_moves_after_creation_for_some(crm):
    contacts = crm.hs("/crm/v3/objects/contacts", limit=100).json()["results"]
    moved = [c for c in contacts if c["properties"]["lastmodifieddate"] > c["properties"]["createdate"]]
    assert 10 < len(moved) < len(contacts)
    assert all(c["updatedAt"] == c["properties"]["lastmodifieddate"] for c in contacts)


def test_too_long_properties_get_414(crm):
    names = ",".join(f"custom_property_{n}" for n in range(500))
    assert crm.hs("/crm/v3/objects/contacts", properties=names).status_code == 414


# --- HubSpot search -------------------------------------------------------------------------------
def test_search_gte_on_lastmodifieddate_pages_sorted_and_matches_the_world(crm, world):
    bound = world.clock - timedelta(days=120)
    body = {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                           "value": ms(bound)}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["email", "lastmodifieddate"]}
    first = crm.search(limit=5, **body).json()
    rows = crm.search_all(**body)
    expected = {p.hubspot_contact_id for p in world.people
                if p.in_hubspot and p.hubspot_updated_at >= bound and not p.hubspot_indexed_at}
    assert first["total"] == len(rows) == len(expected) and {r["id"] for r in rows} == expected
    stamps = [r["properties"]["lastmodifieddate"] for r in rows]
    assert stamps == sorted(stamps) and set(rows[0]["properties"]) == {"email", "lastmodifieddate"}
    assert first["paging"]["next"]["after"] == "5"


def test_search_ors_groups_ands_filters_and_knows_its_operators(crm, world):
    searchable = [p for p in world.people if p.in_hubspot and not p.hubspot_indexed_at]
    a, b, c, d = searchable[:4]
    groups = [{"filters": [{"propertyName": "email", "operator": "EQ", "value": f"  {a.hubspot_email.upper()} "}]},
              {"filters": [{"propertyName": "hs_object_id", "operator": "IN",
                            "values": [b.hubspot_contact_id, c.hubspot_contact_id]},
                           {"propertyName": "hs_object_id", "operator": "NEQ", "value": c.hubspot_contact_id}]}]
    found = crm.search(filterGroups=groups).json()["results"]
    assert {r["id"] for r in found} == {a.hubspot_contact_id, b.hubspot_contact_id}
    low, high = sorted([c.created_at, d.created_at])
    between = crm.search_all(filterGroups=[{"filters": [{"propertyName": "createdate", "operator": "BETWEEN",
                                                         "value": ms(low), "highValue": ms(high)}]}])
    assert {r["id"] for r in between} == {p.hubspot_contact_id for p in searchable if low <= p.created_at <= high}
    newest = crm.search(sorts=[{"propertyName": "createdate", "direction": "DESCENDING"}], limit=1).json()
    assert newest["results"][0]["properties"]["createdate"] == max(
        r["properties"]["createdate"] for r in crm.search_all(limit=200))
    assert crm.search(filterGroups=[{"filters": [{"propertyName": "email", "operator": "LIKE"}]}]).status_code == 400
    assert crm.search(filterGroups=[{"filters": [{"propertyName": "x", "operator": "HAS_PROPERTY"}]}] * 6
                      ).status_code == 400


def test_search_caps_at_10000_results_and_200_a_page(crm):
    refused = crm.search(limit=100, after="9901")
    assert refused.status_code == 400 and refused.json()["category"] == "VALIDATION_ERROR"
    assert crm.search(limit=100, after="9900").status_code == 200
    assert crm.search(limit=200, after="0").status_code == 200
    assert crm.search(limit=201).status_code == 400


def test_search_sees_a_late_update_only_later_with_an_older_lastmodifieddate(world):
    late = [p for p in world.people if p.hubspot_indexed_at]
    assert late
    with SandboxServer(world, mode="bench") as fresh:
        crm = Crm(fresh)
        before = crm.search_all(limit=200, properties=["lastmodifieddate"])
        assert not {p.hubspot_contact_id for p in late} & {r["id"] for r in before}
        requests.post(fresh.url + "/_sandbox/advance", params={"days": 1}, timeout=10)
        after = {r["id"]: r for r in crm.search_all(limit=200, properties=["lastmodifieddate"])}
    assert {p.hubspot_contact_id for p in late} <= set(after)
    newest_served = max(r["properties"]["lastmodifieddate"] for r in before)
    assert any(after[p.hubspot_contact_id]["properties"]["lastmodifieddate"] < newest_served for p in late)


def test_search_has_its_own_5_per_second_limit_when_enforced(world):
    with SandboxServer(world, mode="bench") as fresh:
        fresh.sandbox.vendors["hubspot"].search_bucket = LeakyBucket(SEARCH_RATE_LIMIT)
        statuses = [Crm(fresh).search(limit=1) for _ in range(8)]
    assert [r.status_code for r in statuses[:5]] == [200] * 5
    refused = [r for r in statuses[5:] if r.status_code == 429]
    assert refused and refused[0].json()["errorType"] == "RATE_LIMIT"


# --- HubSpot deals --------------------------------------------------------------------------------
def test_deals_list_with_amounts_associations_and_archived(crm, world):
    deals = {d.deal_id: d for d in world.deals() if d.vendor == "hubspot"}
    listed = crm.hs_all("deals", associations="contacts")
    assert {r["id"] for r in listed} == {i for i, d in deals.items() if not d.archived_at}
    for row in listed:
        deal = deals[row["id"]]
        assert Decimal(row["properties"]["amount"]) == deal.amount and isinstance(row["properties"]["amount"], str)
        assert row["properties"]["dealstage"] in ("presentationscheduled", "closedwon", "closedlost")
        person = world.person(deal.person_id)
        assert row["associations"]["contacts"]["results"] == [{"id": person.hubspot_contact_id,
                                                               "type": "deal_to_contact"}]
    archived = crm.hs_all("deals", archived="true")
    assert {r["id"] for r in archived} == {i for i, d in deals.items() if d.archived_at}


def test_deal_search_on_hs_lastmodifieddate(crm, world):
    bound = world.clock - timedelta(days=200)
    found = crm.search_all("deals", filterGroups=[{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": ms(bound)}]}])
    assert {r["id"] for r in found} == {d.deal_id for d in world.deals()
                                        if d.vendor == "hubspot" and not d.archived_at and d.updated_at >= bound}


# --- HubSpot writes -------------------------------------------------------------------------------
def test_batch_upsert_creates_once_then_updates_and_is_received(crm, server, world):
    existing = next(p for p in world.people if p.in_hubspot)
    inputs = [{"idProperty": "email", "id": "New.Person@Example.com", "properties": {"firstname": "New"}},
              {"idProperty": "email", "id": existing.email.upper(), "properties": {"lifecyclestage": "customer"}}]
    first = crm.hs_post("/crm/v3/objects/contacts/batch/upsert", {"inputs": inputs})
    assert first.status_code == 200 and first.json()["status"] == "COMPLETE"
    created, updated = first.json()["results"]
    assert created["new"] and not updated["new"] and updated["id"] == existing.hubspot_contact_id
    again = crm.hs_post("/crm/v3/objects/contacts/batch/upsert", {"inputs": [
        {"idProperty": "email", "id": "new.person@example.com", "properties": {"firstname": "Newer", "age": 3}}]})
    assert again.json()["results"][0]["id"] == created["id"] and not again.json()["results"][0]["new"]
    got = crm.hs(f"/crm/v3/objects/contacts/{created['id']}", properties="firstname,age,email").json()
    assert got["properties"] == {"firstname": "Newer", "age": "3", "email": "new.person@example.com"}
    received = server.sandbox.vendors["hubspot"].received()
    assert len(received["raw"]) == 3
    assert {"email": "new.person@example.com", "properties": {"firstname": "Newer", "age": "3"}} in received[
        "deduplicated"]
    too_many = [{"idProperty": "email", "id": f"p{n}@example.com", "properties": {}} for n in range(101)]
    assert crm.hs_post("/crm/v3/objects/contacts/batch/upsert", {"inputs": too_many}).status_code == 400


# --- ActiveCampaign -------------------------------------------------------------------------------
def test_ac_deals_filter_inclusively_on_mdate_and_carry_cents(crm, world):
    deals = crm.ac_all("deals")
    by_id = {d.deal_id: d for d in world.deals() if d.vendor == "activecampaign"}
    assert {d["id"] for d in deals} == set(by_id)
    sample = deals[0]
    assert sample["value"] == str(int(by_id[sample["id"]].amount * 100)) and sample["mdate"][-6:] in ("-05:00",
                                                                                                        "-06:00")
    day = datetime.fromisoformat(sample["mdate"]).date()
    ids = lambda **f: {d["id"] for d in crm.ac_all("deals", **f)}  # noqa: E731
    assert sample["id"] in ids(**{"filters[updated_after]": day.isoformat()})
    assert sample["id"] in ids(**{"filters[updated_before]": day.isoformat()})
    assert sample["id"] not in ids(**{"filters[updated_after]": (day + timedelta(days=1)).isoformat()})


def test_ac_ecommerce_lists_ignore_filters_and_carry_cents(crm, world):
    orders = world.orders(deleted=True)  # the shop connection keeps orders the shop deleted later
    meta = crm.ac("/ecomOrders", limit=100, **{"filters[updated_after]": "2099-01-01"}).json()["meta"]
    assert meta["total"] == str(len(orders))
    first = crm.ac("/ecomOrders", limit=1).json()["ecomOrders"][0]
    assert first["externalid"] == str(orders[0].order_id) and first["email"] == orders[0].email
    assert first["totalPrice"] == int(orders[0].total * 100) and isinstance(first["taxAmount"], int)
    assert first["connectionid"] == "1" and first["externalCreatedDate"][-6:] in ("-05:00", "-06:00")
    customers = crm.ac("/ecomCustomers", limit=100, **{"filters[updated_after]": "2099-01-01"}).json()
    assert customers["meta"]["total"] == str(sum(1 for p in world.people if p.orders))
    person = world.person(orders[0].person_id)
    customer = customers["ecomCustomers"][0]
    assert customer["totalRevenue"] == str(sum(int(o.total * 100) for o in person.orders))
    assert isinstance(customer["avgRevenuePerOrder"], str)


def test_ac_contacts_keyset_paging_and_updated_before(crm, world):
    served, last = [], 0
    while True:
        page = crm.ac("/contacts", limit=30, id_greater=last, **{"orders[id]": "ASC"}).json()["contacts"]
        served += page
        if len(page) < 30:
            break
        last = int(page[-1]["id"])
    listed = [p for p in world.people if p.in_activecampaign]
    assert [c["id"] for c in served] == sorted((p.activecampaign_contact_id for p in listed), key=int)
    deleted = {r.contact_id for r in world.crm_records() if r.vendor == "activecampaign"}
    assert deleted and not deleted & {c["id"] for c in served}
    bound = date(2025, 12, 1)
    before = crm.ac_all("contacts", **{"filters[updated_before]": bound.isoformat(), "orders[id]": "ASC"})
    assert all(datetime.fromisoformat(c["udate"]).date() <= bound for c in before) and before
    two = crm.ac("/contacts", **{"ids[]": ["1", "3"]}).json()["contacts"]
    assert [c["id"] for c in two] == ["1", "3"]


def test_ac_contact_sync_creates_then_updates_and_is_received(crm, server):
    url = crm.ac_url + "/contact/sync"
    body = {"contact": {"email": "Sync.Me@Example.com", "firstName": "Sync",
                        "fieldValues": [{"field": "1", "value": "spring_sale"}]}}
    created = crm.session.post(url, json=body, headers=crm.ac_headers, timeout=10)
    assert created.status_code == 201
    updated = crm.session.post(url, json={"contact": {"email": "sync.me@example.com", "lastName": "Later"}},
                               headers=crm.ac_headers, timeout=10)
    assert updated.status_code == 200 and updated.json()["contact"]["id"] == created.json()["contact"]["id"]
    assert updated.json()["contact"]["firstName"] == "Sync" and updated.json()["contact"]["lastName"] == "Later"
    invalid = crm.session.post(url, json={"contact": {"email": "not-an-email"}}, headers=crm.ac_headers, timeout=10)
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["code"] == "email_invalid"
    received = server.sandbox.vendors["activecampaign"].received()
    assert len(received["raw"]) == 2
    assert received["deduplicated"] == [{"email": "sync.me@example.com", "firstName": "Sync", "lastName": "Later",
                                         "fieldValues": [{"field": "1", "value": "spring_sale"}]}]


# --- the world's CRM facts ------------------------------------------------------------------------
def test_every_person_has_touches_in_time_order_before_the_clock(world):
    for p in world.people:
        times = [t.touched_at for t in p.touches]
        assert times and times == sorted(times) and len(set(times)) == len(times)  # HubSpot keys history by time
        assert times[0] <= p.created_at  # the first touch brought them in
        assert all(t.touched_at <= world.clock and (t.source, t.medium) in CHANNELS for t in p.touches)
    rows = touch_rows(world)
    assert len(rows) == sum(len(p.touches) for p in world.people)
    assert set(rows[0]) == {"person_id", "touched_at", "source", "medium", "campaign"}
    assert touch_rows(World.build(SEED, 200)) == rows
