"""The one list of sources. A fifth vendor adds its folder here and one line below."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pipelines.sources import activecampaign, hubspot, shopify, stripe
from pipelines.sources.activecampaign import settings as activecampaign_settings
from pipelines.sources.hubspot import settings as hubspot_settings
from pipelines.sources.shopify import settings as shopify_settings
from pipelines.sources.stripe import settings as stripe_settings


@dataclass(frozen=True)
class Source:
    name: str
    factory: Any  # the @dlt.source function
    settings: ModuleType
    check: Any  # `journey check`: tries the configured credentials (pipelines/check.py)

    @property
    def dataset(self) -> str:
        return f"raw_{self.name}"


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("activecampaign", activecampaign.activecampaign_source, activecampaign_settings, activecampaign.check),
    Source("shopify", shopify.shopify_source, shopify_settings, shopify.check),
    Source("stripe", stripe.stripe_source, stripe_settings, stripe.check),
    Source("hubspot", hubspot.hubspot_source, hubspot_settings, hubspot.check),
)}
