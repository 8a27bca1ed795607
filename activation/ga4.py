"""GA4 Measurement Protocol (api-contracts.md section 5): `purchase` and `refund` events, one request per
client id with at most 25 events, each backdated to when it happened (at most 72 hours: older ones are
recorded too old, never sent).

`/mp/collect` answers 2xx whatever it is sent and drops what is malformed, so every request is first
checked against `/debug/mp/collect` (which records nothing); a request it finds problems in is rejected
here, with GA4's own validation messages, and never sent blind (`activation.ga4.validate = false` skips
the check). GA4 deduplicates purchases and refunds by `transaction_id` (the Shopify order id), so a resend
after a crash is harmless.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from activation.base import BatchRejected, Destination, Sent, read_settings, require, response_clock
from activation.conversions import PURCHASE, REFUND, Conversion
from pipelines.http import VendorClient

NAME = "ga4"
BASE_URL = "https://www.google-analytics.com"
SETTINGS = ("base_url", "measurement_id", "api_secret", "validate")
SECRETS = ("api_secret",)
REQUIRED = ("measurement_id", "api_secret")
MAX_AGE = timedelta(hours=72)
MAX_EVENTS = 25  # per request
ENGAGEMENT_TIME_MSEC = 1  # GA4 needs a positive engagement time for events to count as engaged sessions


def micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


class Ga4(Destination):
    name = NAME
    max_age = MAX_AGE
    needs_consent = True
    kinds = frozenset({PURCHASE, REFUND})

    def __init__(self, client: VendorClient, measurement_id: str, api_secret: str, validate: bool = True):
        super().__init__(client)
        self.params = {"measurement_id": measurement_id, "api_secret": api_secret}
        self.validating = validate

    def clock(self) -> datetime:
        # an empty debug request: validated, never recorded
        _, response = self.call("POST", "debug/mp/collect", params=self.params, json={})
        return response_clock(response)

    def batches(self, conversions: list[Conversion]) -> list[list[Conversion]]:
        by_client: dict[str, list[Conversion]] = {}
        for conversion in conversions:
            by_client.setdefault(conversion.ga4_client_id, []).append(conversion)
        return [events[i:i + MAX_EVENTS] for events in by_client.values() for i in range(0, len(events), MAX_EVENTS)]

    @staticmethod
    def event(conversion: Conversion) -> dict:
        value = float(conversion.value)  # JSON has no decimals: the one place money becomes a number
        params: dict[str, Any] = {"transaction_id": conversion.order_id, "value": value,
                                  "currency": conversion.currency, "engagement_time_msec": ENGAGEMENT_TIME_MSEC}
        if conversion.kind == PURCHASE:
            # the marts carry no line items: the order is its one item
            params["items"] = [{"item_id": conversion.order_id, "item_name": f"Order {conversion.order_name or ''}"
                                .strip(), "price": value, "quantity": 1}]
        return {"name": conversion.kind, "timestamp_micros": micros(conversion.occurred_at), "params": params}

    def body(self, batch: list[Conversion]) -> dict:
        return {"client_id": batch[0].ga4_client_id,
                "timestamp_micros": micros(min(c.occurred_at for c in batch)),
                # only customers who consented are sent at all (activation.run)
                "consent": {"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"},
                "events": [self.event(c) for c in batch]}

    def validate(self, batch: list[Conversion]) -> list[str]:
        payload, _ = self.call("POST", "debug/mp/collect", params=self.params, json=self.body(batch))
        return [f"{m.get('validationCode')}: {m.get('description')} ({m.get('fieldPath')})"
                for m in (payload or {}).get("validationMessages", [])]

    def send(self, batch: list[Conversion]) -> Sent:
        if self.validating:
            problems = self.validate(batch)
            if problems:
                raise BatchRejected("GA4 validation: " + "; ".join(problems))
        _, response = self.call("POST", "mp/collect", params=self.params, json=self.body(batch))
        return Sent({"status": response.status_code, "events": len(batch)}, response_clock(response))


def from_settings() -> Ga4:
    values = read_settings(NAME, SETTINGS, SECRETS)
    require(NAME, values, REQUIRED)
    secret = values["api_secret"]
    client = VendorClient(NAME, values.get("base_url", BASE_URL), {"Content-Type": "application/json"}, [secret],
                          f"activation.{NAME}.api_secret")
    validate = str(values.get("validate", "true")).lower() not in ("false", "0", "no")
    return Ga4(client, values["measurement_id"], secret, validate)
