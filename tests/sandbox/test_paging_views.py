"""Pages cut from sorted views (built once per vendor object) answer exactly what a scan of the whole list
answers: HubSpot search by slices against its scan, ActiveCampaign selections against theirs, Shopify
pages against a filter-and-sort of every record. Each vendor keeps its scan for requests the views do not
answer, so the two paths must never drift apart."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

from sandbox.http import HttpError, Request
from sandbox.store import whole
from sandbox.vendors.activecampaign import Activecampaign
from sandbox.vendors.hubspot import Hubspot, _key
from sandbox.vendors.shopify import Shopify

pytestmark = pytest.mark.sandbox


def ask(vendor, method: str, path: str, query: dict, headers: dict, body: dict | None = None, now=None):
    request = Request(method, path, {k: [v] for k, v in query.items()}, headers,
                      json.dumps(body).encode() if body is not None else b"", "http://sandbox", now=now)
    try:
        response = vendor.handle(request)
    except HttpError as error:
        response = error.response
    return response.status, json.loads(response.body), response.headers.get("Link")


def test_hubspot_search_by_slices_answers_what_the_scan_answers(world):
    fast, scan = Hubspot(world), Hubspot(world)
    scan._search_by_range = lambda *args: None  # the scan answers everything
    headers = {"authorization": f"Bearer {fast.token}"}
    rng = random.Random(3)
    for obj, modified in (("contacts", "lastmodifieddate"), ("deals", "hs_lastmodifieddate")):
        records = [whole(r) for r in fast.records[obj] if not r["archived"]]
        stamps = sorted({_key(modified, r["properties"][modified]) for r in records})
        sorts = [{"propertyName": modified, "direction": "ASCENDING"},
                 {"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        for _ in range(40):
            moment, until, last = rng.choice(stamps), rng.choice(stamps), rng.choice(records)["id"]
            groups = rng.choice([
                [],
                [{"filters": [{"propertyName": modified, "operator": "GTE", "value": str(moment)}]}],
                [{"filters": [{"propertyName": modified, "operator": "EQ", "value": str(moment)},
                              {"propertyName": "hs_object_id", "operator": "GT", "value": last}]},
                 {"filters": [{"propertyName": modified, "operator": "GT", "value": str(moment)},
                              {"propertyName": modified, "operator": "LTE", "value": str(until)}]}],
                [{"filters": [{"propertyName": modified, "operator": "BETWEEN", "value": str(min(moment, until)),
                               "highValue": str(max(moment, until))}]}, {"filters": []}]])
            body = {"filterGroups": groups, "sorts": rng.choice([sorts, sorts[:1], [modified]]),
                    "limit": rng.choice([1, 7, 200]), "after": str(rng.choice([0, 0, 5, 150]))}
            path = f"/crm/v3/objects/{obj}/search"
            assert ask(fast, "POST", path, {}, headers, body, world.clock) == \
                ask(scan, "POST", path, {}, headers, body, world.clock), body
    assert any(world.clock < at for at in fast.indexed_at.values())  # late updates the index has not seen: skipped


def test_activecampaign_selections_answer_what_the_scan_answers(world):
    vendor = Activecampaign(world)
    headers = {"api-token": vendor.token}
    rng = random.Random(5)
    for resource in ("contacts", "deals"):
        records = vendor.lists[resource]
        days = sorted({r["udate" if resource == "contacts" else "mdate"][:10] for r in records})
        for _ in range(40):
            query = {"limit": str(rng.choice([1, 20, 100])), "offset": str(rng.choice([0, 3, len(records) - 2]))}
            if rng.random() < 0.6:
                query["filters[updated_after]"] = rng.choice(days)
            if rng.random() < 0.3:
                query["filters[updated_before]"] = rng.choice(days)
            if resource == "contacts" and rng.random() < 0.6:
                query["orders[id]"] = rng.choice(["ASC", "DESC"])
            if resource == "contacts" and rng.random() < 0.4:
                query["id_greater"] = rng.choice(records)["id"]
            request = Request("GET", f"/api/3/{resource}", {k: [v] for k, v in query.items()}, headers, b"",
                              "http://sandbox", now=world.clock)
            assert list(vendor._select(request, resource)) == vendor._scan(request, resource, records), query


def test_shopify_pages_answer_what_filtering_and_sorting_every_record_answers(world):
    vendor = Shopify(world)
    headers = {"x-shopify-access-token": vendor.token}
    rng = random.Random(11)
    moments = sorted({o["updated_at"] for o in vendor.orders})
    for _ in range(25):
        field, direction = rng.choice(["id", "updated_at", "created_at"]), rng.choice(["asc", "desc"])
        query = {"status": rng.choice(["any", "open", "closed", "cancelled"]), "order": f"{field} {direction}",
                 "limit": str(rng.choice([3, 50, 250]))}
        bounds = {name: rng.choice(moments) for name in ("updated_at_min", "updated_at_max", "created_at_min")
                  if rng.random() < 0.4}
        if rng.random() < 0.3:
            query["since_id"] = str(rng.choice(vendor.orders)["id"])
        query.update(bounds)
        served, path, params = [], "/admin/api/2025-01/orders.json", query
        while path:
            status, body, link = ask(vendor, "GET", path, params, headers, now=world.clock)
            assert status == 200, body
            served += [o["id"] for o in body["orders"]]
            path, _, raw = (link[1:link.index(">")].removeprefix("http://sandbox/shopify").partition("?")
                            if link else (None, None, None))
            params = {k: v[-1] for k, v in Request.parse_query(raw or "").items()}
        def within(order: dict, bounds: dict = bounds, query: dict = query) -> bool:
            for name, field, keep in (("updated_at_min", "updated_at", datetime.__ge__),
                                      ("updated_at_max", "updated_at", datetime.__le__),
                                      ("created_at_min", "created_at", datetime.__ge__)):
                if name in bounds and not keep(datetime.fromisoformat(order[field]),
                                               datetime.fromisoformat(bounds[name])):
                    return False
            return "since_id" not in query or order["id"] > int(query["since_id"])

        kept = [o for o in vendor.orders if Shopify._has_status(o, query["status"]) and within(o)]
        kept.sort(key=lambda o: (Shopify._sort_value(o, field), o["id"]), reverse=direction == "desc")
        assert served == [o["id"] for o in kept], query
