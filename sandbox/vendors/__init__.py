"""The sandboxed vendors, one module each with the same shape: a class built from the world that
answers `index(root)` (base URL and credentials) and `handle(request)` (the vendor's own HTTP API)."""

from sandbox.vendors.activecampaign import Activecampaign
from sandbox.vendors.hubspot import Hubspot
from sandbox.vendors.shopify import Shopify
from sandbox.vendors.stripe import Stripe

# The one list of sandboxed vendors; its order is the order of the index.
VENDORS = (Activecampaign, Shopify, Stripe, Hubspot)
