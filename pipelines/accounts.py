"""Several accounts of one vendor (two Shopify shops, a Stripe account per region).

    [sources.shopify]
    accounts = ["eu", "us"]       # or SOURCES__SHOPIFY__ACCOUNTS=eu,us
    api_version = "2025-01"       # shared by both accounts
    [sources.shopify.eu]
    base_url = "https://acme-eu.myshopify.com"   # each account's own settings; any setting missing here
                                                  # falls back to [sources.shopify], as dlt looks it up

Each account is read by its own dlt pipeline (`journey_shopify_eu`, its own cursors) into the vendor's one
dataset; rows carry `source_account` (the vendor's own account id unless `account` is set) and merge on
(source_account, id), so two accounts never collide. Without `accounts` a vendor has one unnamed account
configured directly under `sources.<vendor>`.

A unit of work is named `vendor` or `vendor.account` (as in `journey run --source shopify.eu`).
"""

from __future__ import annotations

import re

import dlt
from dlt.common.configuration.container import Container
from dlt.common.configuration.specs.config_section_context import ConfigSectionContext

ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9_]*")


def accounts(vendor: str) -> list[str | None]:
    """The vendor's configured accounts (`sources.<vendor>.accounts`, a list or comma-separated), or
    `[None]`: the one account configured directly under `sources.<vendor>`."""
    raw = dlt.config.get(f"sources.{vendor}.accounts")
    names = raw if isinstance(raw, list | tuple) else str(raw or "").split(",")
    names = [str(name).strip() for name in names if str(name).strip()]
    bad = [name for name in names if not ACCOUNT_NAME.fullmatch(name)]
    if bad:
        raise ValueError(f"sources.{vendor}.accounts: {', '.join(map(repr, bad))} cannot name an account: use "
                         f"lower-case letters, digits and '_', starting with a letter (it becomes a config "
                         f"section, SOURCES__{vendor.upper()}__<ACCOUNT>__..., and a pipeline name)")
    if len(set(names)) != len(names):
        raise ValueError(f"sources.{vendor}.accounts names an account twice: {', '.join(names)}")
    return names or [None]


def unit(vendor: str, account: str | None) -> str:
    return f"{vendor}.{account}" if account else vendor


def split(name: str) -> tuple[str, str | None]:
    """`shopify.eu` -> (`shopify`, `eu`); `shopify` -> (`shopify`, None)."""
    vendor, _, account = name.partition(".")
    return vendor, account or None


def source_name(unit: str) -> str:
    """The dlt source of a unit, and so its schema (`_dlt_loads.schema_name`) and its key in the pipeline's
    state: named after the account (`shopify.eu` -> `eu`), or the vendor for its unnamed account."""
    vendor, account = split(unit)
    return account or vendor


def sections(vendor: str, account: str | None) -> tuple[str, ...]:
    """The config sections dlt reads an account's settings from (then falls back to the vendor's)."""
    return ("sources", vendor, account) if account else ("sources", vendor)


def setting_name(setting: str, account: str | None) -> str:
    """`sources.shopify.access_token` as the account's own key: `sources.shopify.eu.access_token`."""
    if not account:
        return setting
    prefix, _, key = setting.rpartition(".")
    return f"{prefix}.{account}.{key}"


def lookup(setting: str, account: str | None, secret: bool = False):
    """A setting's value for an account, with dlt's fallback to the vendor's section; None if unset."""
    provider = dlt.secrets if secret else dlt.config
    for name in dict.fromkeys((setting_name(setting, account), setting)):
        value = provider.get(name)
        if value not in (None, ""):
            return value
    return None


def current_account(vendor: str) -> str | None:
    """The account whose settings are being read now: inside a dlt source (or a check) run for
    `sources.<vendor>.<account>`; None for the vendor's unnamed account."""
    active = Container()[ConfigSectionContext].sections
    if len(active) == 3 and active[:2] == ("sources", vendor) and active[2] != vendor:
        return active[2]
    return None
