"""The vendor APIs over real HTTP: the index, each vendor's auth, envelope and paging contract."""

from __future__ import annotations

import base64

import pytest
import requests

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def index(sandbox):
    return requests.get(sandbox.url + "/", timeout=10).json()


def test_index_has_every_vendor_with_base_url_and_credentials(index, sandbox):
    assert set(index) >= {"activecampaign", "shopify", "stripe", "hubspot"}
    assert index["activecampaign"]["base_url"] == f"{sandbox.url}/activecampaign/api/3"
    assert index["shopify"]["base_url"] == f"{sandbox.url}/shopify/admin/api/2025-01"
    assert index["stripe"]["base_url"] == f"{sandbox.url}/stripe"
    assert index["hubspot"]["base_url"] == f"{sandbox.url}/hubspot"
    assert set(index["activecampaign"]["credentials"]) == {"api_token"}
    assert set(index["shopify"]["credentials"]) == {"access_token"}
    assert index["stripe"]["credentials"]["api_key"].startswith("sk_test_")
    assert set(index["hubspot"]["credentials"]) == {"access_token"}


def test_stats_report_clock_faults_and_requests(sandbox):
    stats = requests.get(sandbox.url + "/_sandbox/stats", timeout=10).json()
    assert stats["clock"].startswith("2026-")
    assert set(stats["faults"]) == {"429", "5xx", "timeout", "reset", "truncate", "shift"}
    assert isinstance(stats["requests"], dict)


@pytest.mark.parametrize(("vendor", "path", "headers", "status", "body_key"), [
    ("activecampaign", "/contacts", {"Api-Token": "wrong"}, 403, "message"),
    ("shopify", "/orders.json", {"X-Shopify-Access-Token": "shpat_wrong"}, 401, "errors"),
    ("stripe", "/v1/charges", {"Authorization": "Bearer sk_test_wrong"}, 401, "error"),
    ("hubspot", "/crm/v3/objects/contacts", {"Authorization": "Bearer wrong"}, 401, "category"),
])
def test_wrong_credential_gets_the_vendors_own_status_and_body(index, vendor, path, headers, status, body_key):
    response = requests.get(index[vendor]["base_url"] + path, headers=headers, timeout=10)
    assert response.status_code == status
    assert body_key in response.json()


def test_stripe_accepts_basic_auth_and_pages_newest_first(index):
    key = index["stripe"]["credentials"]["api_key"]
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    first = requests.get(index["stripe"]["base_url"] + "/v1/charges?limit=5", headers=auth, timeout=10).json()
    assert first["object"] == "list" and first["url"] == "/v1/charges" and first["has_more"]
    created = [c["created"] for c in first["data"]]
    assert created == sorted(created, reverse=True)
    following = requests.get(index["stripe"]["base_url"] + "/v1/charges",
                             params={"limit": 5, "starting_after": first["data"][-1]["id"]},
                             headers=auth, timeout=10).json()
    assert not {c["id"] for c in following["data"]} & {c["id"] for c in first["data"]}
    assert following["data"][0]["created"] <= created[-1]


@pytest.mark.parametrize("params", [{"limit": 101}, {"limit": 0}, {"starting_after": "ch_a", "ending_before": "ch_b"}])
def test_stripe_rejects_bad_list_parameters(index, params):
    key = index["stripe"]["credentials"]["api_key"]
    response = requests.get(index["stripe"]["base_url"] + "/v1/charges", params=params,
                            headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def shopify_get(index, path, **params):
    token = index["shopify"]["credentials"]["access_token"]
    return requests.get(index["shopify"]["base_url"] + path, params=params,
                        headers={"X-Shopify-Access-Token": token}, timeout=10)


def test_shopify_default_status_hides_closed_and_cancelled_orders(index, world):
    open_ids = set()
    response = shopify_get(index, "/orders.json", limit=250)
    while True:
        open_ids |= {o["id"] for o in response.json()["orders"]}
        if "next" not in response.links:
            break
        response = requests.get(response.links["next"]["url"], timeout=10,
                                headers={"X-Shopify-Access-Token": index["shopify"]["credentials"]["access_token"]})
    cancelled = {o.order_id for o in world.orders() if o.cancelled_at}
    assert cancelled and not open_ids & cancelled
    assert len(open_ids) < len(world.orders())


def test_shopify_pages_by_link_header_and_refuses_filters_beside_page_info(index, world):
    first = shopify_get(index, "/orders.json", status="any", limit=50)
    assert first.status_code == 200 and len(first.json()["orders"]) == 50
    next_url = first.links["next"]["url"]
    assert "page_info=" in next_url
    token = index["shopify"]["credentials"]["access_token"]
    refused = requests.get(next_url + "&status=any", headers={"X-Shopify-Access-Token": token}, timeout=10)
    assert refused.status_code == 400
    assert "cannot be passed when page_info is present" in refused.text
    seen, response = [], first
    while True:
        seen += [o["id"] for o in response.json()["orders"]]
        if "next" not in response.links:
            break
        response = requests.get(response.links["next"]["url"], headers={"X-Shopify-Access-Token": token}, timeout=10)
    assert sorted(seen) == sorted(o.order_id for o in world.orders())
    assert len(seen) == len(set(seen))
    assert shopify_get(index, "/orders.json", limit=251).status_code == 400


def test_shopify_money_is_decimal_strings_and_times_carry_the_shop_offset(index):
    order = shopify_get(index, "/orders.json", status="any", limit=1).json()["orders"][0]
    assert isinstance(order["total_price"], str) and "." in order["total_price"]
    assert order["total_price_set"]["shop_money"]["amount"] == order["total_price"]
    assert order["created_at"][-6:] in ("-05:00", "-04:00")


def test_activecampaign_caps_limit_at_100_and_totals_as_string(index):
    response = requests.get(index["activecampaign"]["base_url"] + "/contacts", params={"limit": 500},
                            headers={"Api-Token": index["activecampaign"]["credentials"]["api_token"]}, timeout=10)
    body = response.json()
    assert response.status_code == 200
    assert len(body["contacts"]) == 100
    assert isinstance(body["meta"]["total"], str) and int(body["meta"]["total"]) > 100
    assert all(isinstance(c["id"], str) for c in body["contacts"])


def test_hubspot_pages_with_after_and_returns_string_properties(index):
    headers = {"Authorization": "Bearer " + index["hubspot"]["credentials"]["access_token"]}
    url = index["hubspot"]["base_url"] + "/crm/v3/objects/contacts"
    first = requests.get(url, params={"limit": 100}, headers=headers, timeout=10).json()
    assert len(first["results"]) == 100
    after = first["paging"]["next"]["after"]
    second = requests.get(url, params={"limit": 100, "after": after}, headers=headers, timeout=10).json()
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}
    assert all(isinstance(v, str) for r in first["results"] for v in r["properties"].values() if v is not None)
    assert requests.get(url, params={"limit": 101}, headers=headers, timeout=10).status_code == 400
