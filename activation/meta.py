"""Meta Conversions API (api-contracts.md section 6): `Purchase` server events, at most 1000 per request.

`event_id` is the Shopify order id, so Meta deduplicates this event with the browser pixel's (and with a
resend after a crash). `event_time` must be at most 7 days old: older ones are recorded too old. Customer
fields are normalized and SHA-256 hashed exactly as Meta specifies before they leave; the clear values are
never sent. If one event is invalid Meta rejects the whole request; `activation.run` then splits it so the
valid events still go. `action_source` is configurable; `website` is refused because it requires the
browser's user agent, which the marts do not carry (Meta would reject every such event).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

from activation.base import Destination, NotConfigured, Sent, read_settings, require, response_clock
from activation.conversions import PURCHASE, Conversion
from pipelines.http import VendorClient

NAME = "meta"
BASE_URL = "https://graph.facebook.com"
API_VERSION = "v21.0"
SETTINGS = ("base_url", "api_version", "pixel_id", "access_token", "test_event_code", "action_source",
            "batch_size")
SECRETS = ("access_token",)
REQUIRED = ("pixel_id", "access_token")
MAX_AGE = timedelta(days=7)
MAX_EVENTS = 1000  # per request
# action_source -> the fields it requires beyond event_name, event_time and user_data (Meta's parameters page)
ACTION_SOURCES = {"email": (), "app": (), "phone_call": (), "chat": (), "physical_store": (), "system_generated": (),
                  "business_messaging": (), "other": (), "website": ("event_source_url", "client_user_agent")}
# A web order whose browser data the marts do not carry: "website" needs the user agent, so "other".
DEFAULT_ACTION_SOURCE = "other"
UNAVAILABLE = frozenset({"client_user_agent"})  # required by some action sources, not in the marts


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalize_email(email: str) -> str:
    """Meta: trim surrounding white space, lower-case."""
    return email.strip().lower()


def normalize_phone(phone: str) -> str:
    """Meta: digits only, with the country code, without a leading `00` or `+`."""
    digits = re.sub(r"\D", "", phone)
    return digits[2:] if digits.startswith("00") else digits


def normalize_country(country: str) -> str:
    """Meta: the ISO 3166-1 alpha-2 code, lower-case."""
    return country.strip().lower()


def user_data(conversion: Conversion) -> dict:
    """Only hashed identifiers: the email (`em`), the customer id (`external_id`) and the country."""
    data = {}
    if conversion.email:
        data["em"] = [sha256(normalize_email(conversion.email))]
    if conversion.customer_id:
        data["external_id"] = [sha256(conversion.customer_id.strip().lower())]
    if conversion.country:
        data["country"] = [sha256(normalize_country(conversion.country))]
    return data


class Meta(Destination):
    name = NAME
    max_age = MAX_AGE
    needs_consent = True
    kinds = frozenset({PURCHASE})  # Meta has no standard refund event

    def __init__(self, client: VendorClient, api_version: str, pixel_id: str, access_token: str,
                 action_source: str = DEFAULT_ACTION_SOURCE, test_event_code: str | None = None,
                 batch_size: int = MAX_EVENTS):
        super().__init__(client)
        self.path = f"{api_version}/{pixel_id}/events"
        self.access_token = access_token
        self.action_source = action_source
        self.test_event_code = test_event_code
        self.batch_size = max(1, min(batch_size, MAX_EVENTS))

    def clock(self) -> datetime:
        # reading the pixel changes nothing (the token in its query is masked in every log line and error)
        _, response = self.call("GET", self.path.rsplit("/", 1)[0],
                                params={"fields": "id", "access_token": self.access_token})
        return response_clock(response)

    def batches(self, conversions: list[Conversion]) -> list[list[Conversion]]:
        return [conversions[i:i + self.batch_size] for i in range(0, len(conversions), self.batch_size)]

    def event(self, conversion: Conversion) -> dict:
        return {"event_name": "Purchase", "event_time": int(conversion.occurred_at.timestamp()),
                "event_id": conversion.order_id, "action_source": self.action_source,
                "user_data": user_data(conversion),
                "custom_data": {"value": float(conversion.value), "currency": conversion.currency,
                                "order_id": conversion.order_id, "content_ids": [conversion.order_id],
                                "content_type": "product"}}

    def body(self, batch: list[Conversion]) -> dict:
        body: dict = {"data": [self.event(c) for c in batch]}
        if self.test_event_code:
            body["test_event_code"] = self.test_event_code
        return body

    def send(self, batch: list[Conversion]) -> Sent:
        # the token goes in the body, never in a URL that a log line or proxy could keep
        payload, response = self.call("POST", self.path, json={**self.body(batch), "access_token": self.access_token})
        return Sent({k: payload.get(k) for k in ("events_received", "messages", "fbtrace_id")},
                    response_clock(response))


def from_settings() -> Meta:
    values = read_settings(NAME, SETTINGS, SECRETS)
    require(NAME, values, REQUIRED)
    action_source = values.get("action_source", DEFAULT_ACTION_SOURCE)
    if action_source not in ACTION_SOURCES:
        raise NotConfigured([f"activation.meta.action_source: one of {', '.join(ACTION_SOURCES)}"])
    lacking = UNAVAILABLE.intersection(ACTION_SOURCES[action_source])
    if lacking:
        raise NotConfigured([f"activation.meta.action_source: {action_source!r} requires {', '.join(lacking)}, "
                             "which the marts do not carry; choose another"])
    token = values["access_token"]
    client = VendorClient(NAME, values.get("base_url", BASE_URL), {}, [token], f"activation.{NAME}.access_token")
    return Meta(client, values.get("api_version", API_VERSION), str(values["pixel_id"]), token, action_source,
                values.get("test_event_code"), int(values.get("batch_size", MAX_EVENTS)))
