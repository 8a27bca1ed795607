"""The sandboxed vendors, one module each with the same shape: a class built from the world, as `Vendor`
describes it."""

from __future__ import annotations

from typing import Protocol

from sandbox.http import Request, Response
from sandbox.limits import Budget
from sandbox.vendors.activecampaign import Activecampaign
from sandbox.vendors.hubspot import Hubspot
from sandbox.vendors.shopify import Shopify
from sandbox.vendors.stripe import Stripe


class Vendor(Protocol):
    name: str  # its path prefix and its key in the index
    rate_limit: Budget  # one account's request budget

    def index(self, root: str) -> dict:
        """Base URL and credentials, as the sandbox's index shows them."""

    def handle(self, request: Request) -> Response:
        """The vendor's own HTTP API; raises HttpError for the vendor's own error responses."""

    def rate_limited(self, retry_after: float) -> Response:
        """The vendor's own 429, asking the client to wait `retry_after` seconds if the vendor says so."""

    def usage_headers(self, used: int) -> dict[str, str]:
        """The budget headers on every response, with `used` requests in the bucket."""

    def shiftable(self, request: Request) -> bool:
        """Whether a `shift` fault can reorder the listing this request pages through."""


# The one list of sandboxed vendors; its order is the order of the index.
VENDORS: tuple[type[Vendor], ...] = (Activecampaign, Shopify, Stripe, Hubspot)
