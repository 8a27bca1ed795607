"""The baseline: what a dlt user would write first for the same endpoints our sources read on a full run,
with dlt's declarative `rest_api` source and its default settings (nesting, normalizer, write disposition
`append`), the vendors' largest page sizes and the same query parameters, one pipeline per vendor.

`config(vendor, base_url, credentials)` returns the `RESTAPIConfig` for one vendor (base URL and credentials
come from the sandbox's `GET /` index at run time; nothing secret is committed). `ENDPOINTS` names each
resource's endpoint in the harness's own terms (benchmarks/bench.py, `endpoint_key`), so the records each
resource fetched can be compared with ours and the floor's, endpoint by endpoint.

Not read here, and why: the one-record metadata calls our sources make to name the account
(`GET /v1/account`, `GET /shop.json`, `GET /account-info/v3/details`); a dlt user would configure the account
name instead. Everything else a full run of ours reads is here, deletion listings included.
"""

from __future__ import annotations

from typing import Any

from pipelines.sources.activecampaign import settings as activecampaign
from pipelines.sources.hubspot import settings as hubspot
from pipelines.sources.shopify import settings as shopify
from pipelines.sources.stripe import settings as stripe

# resource name (its root table) -> endpoint key, per vendor
ENDPOINTS: dict[str, dict[str, str]] = {
    "activecampaign": {"contacts": "contacts", "deals": "deals", "ecom_orders": "ecomOrders",
                       "ecom_customers": "ecomCustomers"},
    "shopify": {"orders": "orders", "customers": "customers", "order_deletions": "events",
                "customer_ids": "customers?fields=id"},
    "stripe": {name: f"v1/{name}" for name in ("customers", "charges", "payment_intents", "refunds",
                                               "balance_transactions")},
    "hubspot": {"contacts": "crm/v3/objects/contacts", "contacts_archived": "crm/v3/objects/contacts?archived",
                "deals": "crm/v3/objects/deals", "deals_archived": "crm/v3/objects/deals?archived"},
}


def _activecampaign(base_url: str, credentials: dict) -> dict[str, Any]:
    paginator = {"type": "offset", "limit": activecampaign.PAGE_SIZE, "total_path": "meta.total"}
    resources = [{"name": name, "endpoint": {"path": path, "data_selector": path, "paginator": paginator,
                                             "params": {"orders[id]": "ASC"} if name == "contacts" else {}}}
                 for name, path in ENDPOINTS["activecampaign"].items()]
    return {"client": {"base_url": base_url, "auth": {"type": "api_key", "name": "Api-Token",
                                                      "api_key": credentials["api_token"], "location": "header"}},
            "resources": resources}


def _shopify(base_url: str, credentials: dict) -> dict[str, Any]:
    size = shopify.PAGE_SIZE
    endpoints = {
        "orders": ("orders.json", "orders", {"limit": size, "status": "any", "order": "updated_at asc"}),
        "customers": ("customers.json", "customers", {"limit": size, "order": "updated_at asc"}),
        "order_deletions": ("events.json", "events", {"limit": size, **shopify.ORDER_DELETION_EVENTS}),
        "customer_ids": ("customers.json", "customers", {"limit": size, "fields": shopify.CUSTOMER_ID_FIELDS}),
    }
    return {"client": {"base_url": base_url, "paginator": {"type": "header_link"},
                       "auth": {"type": "api_key", "name": "X-Shopify-Access-Token",
                                "api_key": credentials["access_token"], "location": "header"}},
            "resources": [{"name": name, "endpoint": {"path": path, "data_selector": selector, "params": params}}
                          for name, (path, selector, params) in endpoints.items()]}


def _stripe(base_url: str, credentials: dict) -> dict[str, Any]:
    # Stripe's cursor is the last object's id; `has_more` says whether another page exists
    paginator = {"type": "cursor", "cursor_path": "data[-1].id", "cursor_param": "starting_after",
                 "has_more_path": "has_more"}
    return {"client": {"base_url": base_url, "headers": {"Stripe-Version": stripe.STRIPE_VERSION},
                       "auth": {"type": "bearer", "token": credentials["api_key"]}, "paginator": paginator},
            "resources": [{"name": name, "endpoint": {"path": path, "data_selector": "data",
                                                      "params": {"limit": stripe.PAGE_SIZE}}}
                          for name, path in ENDPOINTS["stripe"].items()]}


def _hubspot(base_url: str, credentials: dict) -> dict[str, Any]:
    paginator = {"type": "cursor", "cursor_path": "paging.next.after", "cursor_param": "after"}
    contacts = {"limit": hubspot.PAGE_SIZE, "properties": ",".join(hubspot.CONTACT_PROPERTIES)}
    deals = {"limit": hubspot.PAGE_SIZE, "properties": ",".join(hubspot.DEAL_PROPERTIES)}
    endpoints = {
        "contacts": (hubspot.CONTACTS, {**contacts, "propertiesWithHistory": ",".join(hubspot.CONTACT_HISTORY)}),
        "contacts_archived": (hubspot.CONTACTS, {**contacts, "archived": "true"}),
        "deals": (hubspot.DEALS, {**deals, "associations": ",".join(hubspot.DEAL_ASSOCIATIONS)}),
        "deals_archived": (hubspot.DEALS, {**deals, "archived": "true"}),
    }
    return {"client": {"base_url": base_url, "auth": {"type": "bearer", "token": credentials["access_token"]},
                       "paginator": paginator},
            "resources": [{"name": name, "endpoint": {"path": f"crm/v3/objects/{obj}", "data_selector": "results",
                                                      "params": params}}
                          for name, (obj, params) in endpoints.items()]}


CONFIGS = {"activecampaign": _activecampaign, "shopify": _shopify, "stripe": _stripe, "hubspot": _hubspot}


def config(vendor: str, base_url: str, credentials: dict) -> dict[str, Any]:
    """The `rest_api` configuration of one vendor, pointed at `base_url` (a sandbox's or the vendor's)."""
    return CONFIGS[vendor](base_url.rstrip("/") + "/", credentials)
