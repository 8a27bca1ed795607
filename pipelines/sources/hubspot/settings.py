"""HubSpot facts: the API root, page size and the contact properties read."""

BASE_URL = "https://api.hubapi.com"
PAGE_SIZE = 100  # the list endpoint's maximum
CONTACT_PROPERTIES = ("email", "firstname", "lastname", "createdate", "lastmodifieddate", "lifecyclestage",
                      "hs_email_optout")
CREDENTIAL = "sources.hubspot.access_token"
REQUIRED = (CREDENTIAL,)

# Client-side pacing to the vendor budget (api-contracts.md), so its limit is respected before it is hit.
REQUESTS_PER_SECOND = 10
BURST = 100
