"""Shopify facts: the pinned Admin REST version, page size and the incremental overlap."""

from datetime import timedelta

API_VERSION = "2025-01"
PAGE_SIZE = 250  # Shopify's maximum
OVERLAP = timedelta(hours=1)  # re-read this much before the last high-water mark
CREDENTIAL = "sources.shopify.access_token"
REQUIRED = ("sources.shopify.base_url", CREDENTIAL)
