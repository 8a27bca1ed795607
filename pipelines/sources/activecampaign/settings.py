"""ActiveCampaign facts: page size and the incremental overlap (its filter takes a date)."""

from datetime import timedelta

PAGE_SIZE = 100  # the API's maximum
OVERLAP = timedelta(days=1)  # `filters[updated_after]` is a date: re-read the last day
CREDENTIAL = "sources.activecampaign.api_token"
REQUIRED = ("sources.activecampaign.base_url", CREDENTIAL)

# Client-side pacing to the vendor budget (api-contracts.md), so its limit is respected before it is hit.
REQUESTS_PER_SECOND = 5
BURST = 1
