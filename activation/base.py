"""What every destination shares: its settings (dlt-style, section `activation.<destination>`), the clock
it answers with, and the shape each destination module fills in.

Every destination module (ga4, meta, activecampaign, hubspot) has the same shape: `NAME`, `SETTINGS`
(the keys it needs; `SECRETS` among them), `from_settings()` that builds it or says what is missing, and a
`Destination` subclass that groups conversions into batches, builds each batch's request body, sends it
and reads the destination's clock. Deciding, ledgering and retrying live in `activation.run`, once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import dlt
import requests

from activation.conversions import Conversion
from pipelines.http import VendorClient

SECTION = "activation"
# How long before a platform's window closes a conversion stops being sent: a request takes time, and an
# event that crosses the line in flight is rejected (Meta) or silently dropped (GA4).
SEND_MARGIN = timedelta(minutes=10)
# How long one batch may keep retrying transient failures (429, 5xx, timeouts) before it is recorded as
# failed and the run moves on to the next batch; the next run retries it while it is young enough.
RETRY_SECONDS = 30.0


def setting_name(destination: str, key: str) -> str:
    return f"{SECTION}.{destination}.{key}"


def env_name(destination: str, key: str) -> str:
    return setting_name(destination, key).replace(".", "__").upper()


def read_settings(destination: str, keys: Sequence[str], secrets: Sequence[str]) -> dict[str, Any]:
    """The destination's settings from environment variables or .dlt/config.toml / secrets.toml; secrets
    only from the secret providers. Missing or empty values are left out."""
    values = {}
    for key in keys:
        provider = dlt.secrets if key in secrets else dlt.config
        value = provider.get(setting_name(destination, key))
        if value not in (None, ""):
            values[key] = value
    return values


class NotConfigured(Exception):
    """A destination lacks settings; `missing` names them by their dlt names."""

    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(", ".join(missing))


def require(destination: str, values: dict[str, Any], required: Sequence[str]) -> None:
    missing = [setting_name(destination, key) for key in required if key not in values]
    if missing:
        raise NotConfigured(missing)


def response_clock(response: requests.Response | None) -> datetime | None:
    """The destination's own time, from the `Date` header of its response."""
    raw = response.headers.get("Date") if response is not None else None
    if not raw:
        return None
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class BatchRejected(Exception):
    """The destination refused a batch's content (as opposed to failing to answer): splitting it can save
    the valid events in it."""


@dataclass
class Sent:
    """What the destination answered for a batch: kept in the ledger as the `sent` response."""
    response: dict
    clock: datetime | None


class Destination(ABC):
    """One configured destination account. Subclasses set the class attributes and fill in the methods."""

    name: str
    max_age: timedelta  # the oldest conversion the platform accepts (CRMs: the configured horizon)
    needs_consent: bool  # ad platforms: only customers with marketing consent
    kinds: frozenset[str]  # conversion kinds it takes ("purchase", "refund")

    def __init__(self, client: VendorClient):
        self.client = client
        self.client.max_retry_seconds = min(self.client.max_retry_seconds, RETRY_SECONDS)
        self.requests = 0

    def takes(self, conversion: Conversion) -> bool:
        return conversion.kind in self.kinds and (conversion.email is not None or not self.needs_email)

    needs_email = False

    @abstractmethod
    def clock(self) -> datetime:
        """The destination's time now, from a request that changes nothing there."""

    @abstractmethod
    def batches(self, conversions: list[Conversion]) -> list[list[Conversion]]:
        """The conversions grouped as the platform takes them in one request."""

    @abstractmethod
    def body(self, batch: list[Conversion]) -> dict:
        """The request body for one batch (without credentials): shown by --dry-run, sent by `send`."""

    @abstractmethod
    def send(self, batch: list[Conversion]) -> Sent:
        """Send one batch; raises BatchRejected or pipelines.http.VendorError when it is refused."""

    def validate(self, batch: list[Conversion]) -> list[str]:
        """Problems the platform would find in the batch, where it offers a way to ask (GA4's debug
        endpoint); empty otherwise."""
        return []

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[Any, requests.Response]:
        self.requests += 1
        return self.client.request_json(method, path, **kwargs)
