"""The receiver's facts, as data: paths, headers, tolerance, and the names of its secrets.

Secrets are read from the environment (dlt's naming: `WEBHOOKS__STRIPE__SIGNING_SECRET`,
`WEBHOOKS__SHOPIFY__CLIENT_SECRET`) or, when not set there, from `.dlt/secrets.toml`
(`[webhooks.stripe] signing_secret = ...`). They are never printed, logged or put in an error.
"""

from __future__ import annotations

import os
from pathlib import Path

VENDORS = ("stripe", "shopify")
DEFAULT_PORT = 8790
STRIPE_TOLERANCE_S = 300  # Stripe's SDK default: signatures older (or newer) than this are refused
MAX_BODY_BYTES = 1 << 20  # both vendors cap payloads well below this
# setting key (dlt's dotted name) of each vendor's signing secret; env var: upper case, dots -> "__"
SECRET_KEYS = {"stripe": "webhooks.stripe.signing_secret", "shopify": "webhooks.shopify.client_secret"}
# Test-only: pause this many seconds halfway through writing a landing record, so a kill lands mid-append.
TORN_WRITE_PAUSE_ENV = "JOURNEY_WEBHOOKS_TEST_TORN_WRITE_PAUSE_S"
SEGMENT_BYTES_ENV = "JOURNEY_WEBHOOK_SEGMENT_BYTES"  # landing segment size (default 64 MiB)


def env_name(key: str) -> str:
    return key.upper().replace(".", "__")


def secret(vendor: str) -> str | None:
    """A vendor's signing secret from the environment, else from dlt's secrets (imported only then)."""
    key = SECRET_KEYS[vendor]
    value = os.environ.get(env_name(key))
    if value:
        return value
    try:
        import dlt

        value = dlt.secrets.get(key)
    except Exception:  # no dlt configuration at all: the vendor is simply not configured
        return None
    return str(value) if value else None


def secrets_from_index(index: dict) -> dict[str, str]:
    """The receiver's settings (environment variables) from a sandbox's `GET /` index: its test secrets."""
    return {env_name(SECRET_KEYS["stripe"]): index["stripe"]["webhooks"]["signing_secret"],
            env_name(SECRET_KEYS["shopify"]): index["shopify"]["webhooks"]["client_secret"]}


def landing_path(warehouse: Path | None = None) -> Path:
    """The landing folder: `JOURNEY_WEBHOOK_LANDING`, or `<warehouse file>.webhooks/` beside the warehouse
    (so the receiver and the run that merges it agree without being told)."""
    explicit = os.environ.get("JOURNEY_WEBHOOK_LANDING")
    if explicit:
        return Path(explicit).expanduser().resolve()
    if warehouse is None:
        from pipelines.warehouse import warehouse_path

        warehouse = warehouse_path()
    return warehouse.with_name(warehouse.name + ".webhooks")
