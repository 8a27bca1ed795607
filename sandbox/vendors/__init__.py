"""The sandboxed vendors, one module each with the same shape: a class built from the world, as `Vendor`
describes it. A vendor that serves records of the world's people (ActiveCampaign, Shopify, Stripe, HubSpot) is
built as `built` builds it: `Cls(world, store=None, *, deferred=False)` renders every person's records into its
tables at once unless `deferred`; deferred, it is given each person by `add(person)`, then `finish()`es."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sandbox.http import Request, Response
from sandbox.limits import Budget
from sandbox.vendors.activecampaign import Activecampaign
from sandbox.vendors.ga4 import Ga4
from sandbox.vendors.hubspot import Hubspot
from sandbox.vendors.meta import Meta
from sandbox.vendors.shopify import Shopify
from sandbox.vendors.stripe import Stripe
from sandbox.world import World


class Vendor(Protocol):
    name: str  # its path prefix and its key in the index
    rate_limit: Budget  # one account's request budget

    def index(self, root: str) -> dict:
        """Base URL and credentials, as the sandbox's index shows them."""

    def handle(self, request: Request) -> Response:
        """The vendor's own HTTP API; raises HttpError for the vendor's own error responses. `request.now` is
        the sandbox's clock, the one "now" of every time window (retention, backdating limits, scopes): vendors
        keep no clock of their own."""

    def rate_limited(self, retry_after: float) -> Response:
        """The vendor's own 429, asking the client to wait `retry_after` seconds if the vendor says so."""

    def usage_headers(self, used: int) -> dict[str, str]:
        """The budget headers on every response, with `used` requests in the bucket."""

    def shiftable(self, request: Request) -> bool:
        """Whether a `shift` fault can reorder the listing this request pages through."""

    def served_counts(self, now: datetime | None = None) -> dict[str, int]:
        """{endpoint: records} its default listings serve at `now` (default: the world's start, the clock of a
        fresh sandbox), for the truth's `served_counts.csv`; endpoints named as in the vendor's path."""

    def received(self) -> dict[str, list]:
        """What clients wrote to it: `{"raw": [every accepted body or event], "deduplicated": [the same, once
        per the vendor's own deduplication key]}`; empty lists for a vendor that records nothing."""


# The one list of sandboxed vendors; its order is the order of the index.
VENDORS: tuple[type[Vendor], ...] = (Activecampaign, Shopify, Stripe, Hubspot, Ga4, Meta)


def built(world: World) -> dict[str, Vendor]:
    """Every vendor of `world`, drawing each of its people once for all of them: a vendor that serves records of
    the world's people is made `deferred`, given each person (`add`, in person order) and then `finish`es its
    tables; a streamed world (World.build) draws each person again when read, so reading them once matters."""
    vendors = {cls.name: cls(world, deferred=True) if hasattr(cls, "add") else cls(world) for cls in VENDORS}
    takers = [vendor for vendor in vendors.values() if hasattr(vendor, "add")]
    for person in world.people:
        for vendor in takers:
            vendor.add(person)
    for vendor in takers:
        vendor.finish()
    return vendors


def received_by(vendor: Vendor) -> dict[str, list]:
    """`vendor.received()`, or empty lists for a vendor class that does not implement it (yet)."""
    received = getattr(vendor, "received", None)
    return received() if received else {"raw": [], "deduplicated": []}


def served_counts_of(vendor: Vendor, now: datetime | None = None) -> dict[str, int]:
    """`vendor.served_counts(now)` (without `now` if None), or nothing for a vendor class that does not
    implement it (yet)."""
    served_counts = getattr(vendor, "served_counts", None)
    if served_counts is None:
        return {}
    return served_counts() if now is None else served_counts(now)
