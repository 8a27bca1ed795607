"""Shopify facts: the pinned Admin REST version, page size and the incremental overlap."""

from datetime import timedelta

API_VERSION = "2025-01"
PAGE_SIZE = 250  # Shopify's maximum
OVERLAP = timedelta(hours=1)  # re-read this much before the last high-water mark
CREDENTIAL = "sources.shopify.access_token"
REQUIRED = ("sources.shopify.base_url", CREDENTIAL)

# Client-side pacing to the vendor budget (api-contracts.md), so its limit is respected before it is hit.
REQUESTS_PER_SECOND = 2
BURST = 40

# Deletions: Shopify serves destroyed orders as events; customers have no such feed, so their ids are
# listed in full each run (only the id, at the largest page) and staging flags those no longer listed.
ORDER_DELETION_EVENTS = {"filter": "Order", "verb": "destroy"}
CUSTOMER_ID_FIELDS = "id"

# `journey check`: the scopes the app's token needs (Shopify lists a token's own scopes); without
# read_all_orders Shopify silently serves only the last 60 days of orders
ACCESS_SCOPES_PATH = "/admin/oauth/access_scopes.json"
NEEDED_SCOPES = {"read_orders": "orders", "read_all_orders": "orders older than 60 days (else silently left out)",
                 "read_customers": "customers and their consent"}
