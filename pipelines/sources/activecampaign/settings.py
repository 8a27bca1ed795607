"""ActiveCampaign facts: page size, the incremental overlaps and what a full ecommerce read costs."""

from datetime import timedelta

PAGE_SIZE = 100  # the API's maximum
OVERLAP = timedelta(days=1)  # `filters[updated_after]` is a date: re-read the last day
# `ecomOrders` and `ecomCustomers` have no server-side filter: every run reads them in full at the
# largest page (100), paced to the account's 5 requests per second. Per 100,000 orders that is 1,000
# requests and 200 s of the account's whole budget (customers cost the same per 100,000). Only rows
# whose `updatedDate` (orders) / `tstamp` (customers) is at or after the cursor minus this overlap are
# written; the overlap covers the connection's asynchronous sync stamping rows a little late.
ECOM_OVERLAP = timedelta(days=1)
CREDENTIAL = "sources.activecampaign.api_token"
REQUIRED = ("sources.activecampaign.base_url", CREDENTIAL)

# Client-side pacing to the vendor budget (api-contracts.md), so its limit is respected before it is hit.
REQUESTS_PER_SECOND = 5
BURST = 1

# `journey check`: one record of each list the source reads (a user without the permission gets 403)
CHECK_READS = {name: (name, {"limit": 1}) for name in ("contacts", "deals", "ecomCustomers", "ecomOrders")}
