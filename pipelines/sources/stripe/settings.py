"""Stripe facts: the API base, pinned version, page size and the incremental overlap."""

from datetime import timedelta

BASE_URL = "https://api.stripe.com"
STRIPE_VERSION = "2025-01-27.acacia"
PAGE_SIZE = 100  # Stripe's maximum
OVERLAP = timedelta(minutes=10)
CREDENTIAL = "sources.stripe.api_key"
REQUIRED = (CREDENTIAL,)

# Client-side pacing to the vendor budget (api-contracts.md), so its limit is respected before it is hit.
REQUESTS_PER_SECOND = 25
BURST = 25
