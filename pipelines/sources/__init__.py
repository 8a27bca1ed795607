"""The one list of sources. A fifth vendor adds its folder here and one line below."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from dlt.common.configuration.container import Container
from dlt.common.configuration.inject import with_config
from dlt.common.configuration.specs.config_section_context import ConfigSectionContext

from pipelines import accounts
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
    check: Any  # `journey check`: tries the configured credentials (pipelines/check.py); plain, see `checker`

    @property
    def dataset(self) -> str:
        return f"raw_{self.name}"

    def source_for(self, account: str | None) -> Any:
        """The dlt source function reading one account's settings (`sources.<vendor>.<account>`, falling
        back to `sources.<vendor>`); its schema and state are named after the account."""
        return self.factory.with_args(name=account, section=self.name) if account else self.factory


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("activecampaign", activecampaign.activecampaign_source, activecampaign_settings, activecampaign.check),
    Source("shopify", shopify.shopify_source, shopify_settings, shopify.check),
    Source("stripe", stripe.stripe_source, stripe_settings, stripe.check),
    Source("hubspot", hubspot.hubspot_source, hubspot_settings, hubspot.check),
)}


def source_of(unit: str) -> tuple[Source, str | None]:
    """`shopify.eu` -> (the Shopify source, `eu`)."""
    vendor, account = accounts.split(unit)
    if vendor not in SOURCES:
        raise ValueError(f"unknown source {vendor!r}; choose from {', '.join(SOURCES)}")
    return SOURCES[vendor], account


def units(names: list[str] | None = None) -> list[str]:
    """What to read: each named vendor as its configured accounts (`shopify` -> `shopify.eu`,
    `shopify.us`), each named account as itself; all vendors when none is named."""
    out = []
    for name in names or list(SOURCES):
        source, account = source_of(name)
        configured = accounts.accounts(source.name)
        if account and account not in configured:
            raise ValueError(f"{name}: no account {account!r} in sources.{source.name}.accounts "
                             f"({', '.join(a for a in configured if a) or 'none configured'})")
        out += [accounts.unit(source.name, a) for a in ([account] if account else configured)]
    return list(dict.fromkeys(out))


def checker(unit: str) -> Any:
    """The vendor's `check` for one account (`shopify.eu`), reading that account's settings as its source
    would (and in its config section, so a refused credential names the account's own key)."""
    source, account = source_of(unit)
    section = accounts.sections(source.name, account)

    def run_check():
        with Container().injectable_context(ConfigSectionContext(sections=section)):
            return with_config(source.check, sections=section)()

    return run_check
