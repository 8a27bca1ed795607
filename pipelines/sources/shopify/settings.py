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
