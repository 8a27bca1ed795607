"""Stripe facts: the API base, pinned version, page size, the incremental overlaps and which events
update which table."""

from datetime import timedelta

BASE_URL = "https://api.stripe.com"
STRIPE_VERSION = "2025-01-27.acacia"
PAGE_SIZE = 100  # Stripe's maximum
OVERLAP = timedelta(minutes=10)  # re-read this much `created` before the last high-water mark
CREDENTIAL = "sources.stripe.api_key"
REQUIRED = (CREDENTIAL,)

# `GET /v1/events` keeps only the last 30 days ("List events, going back up to 30 days"): a saved events
# cursor older than that (by the server's `Date`) means events were dropped, so the table is read in full.
EVENT_RETENTION = timedelta(days=30)
EVENTS_OVERLAP = timedelta(minutes=10)  # events can become listable a little after their `created`
# table -> (the `object` its events carry in `data.object`, the event types that update it)
EVENT_TYPES = {
    "customers": ("customer", ("customer.*",)),
    "charges": ("charge", ("charge.*",)),
    "payment_intents": ("payment_intent", ("payment_intent.*",)),
    "refunds": ("refund", ("refund.*", "charge.refund.updated")),
}

# Client-side pacing to the vendor budget (api-contracts.md), so its limit is respected before it is hit.
REQUESTS_PER_SECOND = 25
BURST = 25

# `journey check`: one record of each list the source reads (a restricted key without a permission gets 403)
CHECK_READS = {name: (f"v1/{name}", {"limit": 1}) for name in
               ("customers", "charges", "payment_intents", "refunds", "balance_transactions", "events")}
