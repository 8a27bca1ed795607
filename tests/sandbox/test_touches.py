"""Marketing touches as the vendors expose them, over real HTTP on the session's sandbox: HubSpot's
latest-source properties and their history (one version per touch), and Shopify's landing and referring
sites (the converting session of an order)."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from sandbox.world import CONVERTING_SHARE, Person, World

pytestmark = pytest.mark.sandbox

LATEST_SOURCE = ("hs_latest_source", "hs_latest_source_data_1", "hs_latest_source_data_2")
REFERRER_HOSTS = {"google": "www.google.com", "instagram": "l.instagram.com",
                  "partner-blog.example": "partner-blog.example", "newsletter": None, "(direct)": None}


def listed(url: str, headers: dict, key: str, params: dict, next_params) -> list[dict]:
    """Every record of a list endpoint, following its own cursor (`next_params` of a response, or None)."""
    records, session = [], requests.Session()
    while params is not None:
        response = session.get(url, params=params, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        records += response.json()[key]
        params = next_params(response)
    return records


@pytest.fixture(scope="module")
def hubspot_contacts(sandbox) -> list[dict]:
    index = sandbox.index()["hubspot"]
    names = ",".join(LATEST_SOURCE + ("hs_latest_source_timestamp",))
    params = {"limit": 100, "properties": names, "propertiesWithHistory": ",".join(LATEST_SOURCE)}

    def next_params(response: requests.Response) -> dict | None:
        after = response.json().get("paging", {}).get("next", {}).get("after")
        return {**params, "after": after} if after else None

    return listed(f"{index['base_url']}/crm/v3/objects/contacts",
                  {"Authorization": f"Bearer {index['credentials']['access_token']}"}, "results", params, next_params)


@pytest.fixture(scope="module")
def shopify_orders(sandbox) -> list[dict]:
    index = sandbox.index()["shopify"]

    def next_params(response: requests.Response) -> dict | None:
        if "next" not in response.links:
            return None
        return {"limit": 250, "page_info": parse_qs(urlsplit(response.links["next"]["url"]).query)["page_info"][0]}

    return listed(f"{index['base_url']}/orders.json", {"X-Shopify-Access-Token": index["credentials"]["access_token"]},
                  "orders", {"limit": 250, "status": "any"}, next_params)


def touches_served(world: World, p: Person) -> list:
    return [t for t in p.touches if t.touched_at <= world.clock]


def test_hubspot_latest_source_history_has_one_version_per_touch_newest_first(hubspot_contacts, world):
    people = {p.hubspot_contact_id: p for p in world.people if p.in_hubspot}
    assert {c["id"] for c in hubspot_contacts} == set(people)
    for contact in hubspot_contacts:
        touches = touches_served(world, people[contact["id"]])[::-1]  # newest first, as HubSpot answers
        history = contact["propertiesWithHistory"]
        for name, value in zip(LATEST_SOURCE, ("channel", "source", "campaign"), strict=True):
            assert [h["value"] for h in history[name]] == [getattr(t, value) for t in touches]
            assert [datetime.fromisoformat(h["timestamp"]) for h in history[name]] == [t.touched_at for t in touches]
        properties = contact["properties"]
        assert (properties["hs_latest_source"], properties["hs_latest_source_data_1"],
                properties["hs_latest_source_data_2"]) == (touches[0].channel, touches[0].source, touches[0].campaign)
        assert datetime.fromisoformat(properties["hs_latest_source_timestamp"]) == touches[0].touched_at
    assert sum(len(c["propertiesWithHistory"]["hs_latest_source"]) for c in hubspot_contacts) > 3 * len(people)


def test_shopify_landing_site_parses_back_to_the_converting_touch(shopify_orders, world):
    orders = {o.order_id: o for o in world.orders()}
    assert {o["id"] for o in shopify_orders} == set(orders)
    converted = 0
    for served in shopify_orders:
        order = orders[served["id"]]
        session = world.person(order.person_id).sessions.get(order.order_id)
        landing = urlsplit(served["landing_site"])
        if session is None:
            assert served["landing_site"] == "/" and served["referring_site"] == ""
            continue
        converted += 1
        assert landing.path == "/" and unquote(landing.query) == landing.query  # query-safe: no decoding needed
        expected = {"utm_source": [session.source], "utm_medium": [session.medium]}
        assert parse_qs(landing.query) == expected | ({"utm_campaign": [session.campaign]} if session.campaign else {})
        assert timedelta(minutes=1) <= order.created_at - session.touched_at <= timedelta(minutes=30)
        assert session in world.person(order.person_id).touches
    assert abs(converted / len(orders) - CONVERTING_SHARE) < 0.1


def test_shopify_referring_site_names_the_touch_source(shopify_orders, world):
    orders = {o.order_id: o for o in world.orders()}
    seen = set()
    for served in shopify_orders:
        order = orders[served["id"]]
        session = world.person(order.person_id).sessions.get(order.order_id)
        if session is None:
            continue
        host = REFERRER_HOSTS[session.source]
        if host is None:  # email clients and typed-in visits send no referrer
            assert served["referring_site"] == ""
        else:
            assert urlsplit(served["referring_site"]).netloc == host
            seen.add(session.source)
    assert seen == {"google", "instagram", "partner-blog.example"}
