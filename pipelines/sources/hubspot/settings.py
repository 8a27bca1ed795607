"""HubSpot facts: the API root, page sizes, the search cap and lookback, and the properties read."""

from datetime import timedelta

BASE_URL = "https://api.hubapi.com"
PAGE_SIZE = 100  # the list endpoint's maximum
SEARCH_PAGE_SIZE = 200  # the search endpoint's maximum (raised from 100 in Sept 2024)
SEARCH_CAP = 10_000  # results one search query can page through; past it HubSpot answers 400
# The search index lags: an update can become searchable well after its `lastmodifieddate`, so every
# incremental search starts this far before the saved cursor (the sandbox models lags of up to 4 days).
SEARCH_LOOKBACK = timedelta(days=4)

CONTACTS = "contacts"
DEALS = "deals"
# the last-modified property search filters and sorts on, per object
MODIFIED = {CONTACTS: "lastmodifieddate", DEALS: "hs_lastmodifieddate"}
# List and search ask for the same properties, so both land in the same columns of the same table.
CONTACT_PROPERTIES = ("email", "firstname", "lastname", "createdate", "lastmodifieddate", "lifecyclestage",
                      "hs_email_optout", "hs_merged_object_ids")
DEAL_PROPERTIES = ("dealname", "amount", "dealstage", "pipeline", "closedate", "createdate", "hs_lastmodifieddate")
# `propertiesWithHistory` on the contact list read: lifecycle stages, and marketing touches as the versions
# of the latest-source properties (channel category, utm source, utm campaign)
CONTACT_HISTORY = ("lifecyclestage", "hs_latest_source", "hs_latest_source_data_1", "hs_latest_source_data_2")
DEAL_ASSOCIATIONS = ("contacts",)  # `associations` on the deal list read
# Search returns no history: an incremental run reads it for the contacts search found by batch read, which
# takes at most 50 ids a request when history is asked (100 otherwise)
HISTORY_BATCH = 50

CREDENTIAL = "sources.hubspot.access_token"
REQUIRED = (CREDENTIAL,)

# Client-side pacing to the vendor budget (api-contracts.md), so its limit is respected before it is hit.
REQUESTS_PER_SECOND = 10
BURST = 100
SEARCH_REQUESTS_PER_SECOND = 5  # search has its own budget on top of the account's
SEARCH_BURST = 5

# `journey check`: one record of each object the source reads (a token without the scope gets 403)
CHECK_READS = {"crm.objects.contacts.read": ("crm/v3/objects/contacts", {"limit": 1}),
               "crm.objects.deals.read": ("crm/v3/objects/deals", {"limit": 1})}
