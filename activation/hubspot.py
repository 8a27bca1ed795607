"""HubSpot `POST /crm/v3/objects/contacts/batch/upsert` by email (api-contracts.md section 4): up to 100
contacts per request, each with its lifetime value, orders and last order date in the contact properties
named by `activation.hubspot.ltv_field`, `orders_field`, `last_order_field`. Upserts are idempotent.
"""

from __future__ import annotations

from datetime import datetime

from activation import crm
from activation.base import Destination, Sent, read_settings, require, response_clock
from activation.conversions import PURCHASE, Conversion
from pipelines.http import VendorClient
from pipelines.sources.hubspot import settings as source_settings

NAME = "hubspot"
BASE_URL = source_settings.BASE_URL
SETTINGS = ("base_url", "access_token", *crm.CRM_SETTINGS)
SECRETS = ("access_token",)
REQUIRED = ("access_token",)
MAX_CONTACTS = 100  # per batch upsert
FIELDS = {"ltv_field": "journey_lifetime_value", "orders_field": "journey_lifetime_orders",
          "last_order_field": "journey_last_order_date"}


class Hubspot(Destination):
    name = NAME
    needs_consent = False  # the CRM is the customer's own record; its subscriptions govern email
    needs_email = True
    kinds = frozenset({PURCHASE})

    def __init__(self, client: VendorClient, values: dict):
        super().__init__(client)
        self.max_age = crm.max_age(values)
        self.fields = {key: str(values.get(key, default)) for key, default in FIELDS.items()}

    def clock(self) -> datetime:
        _, response = self.call("GET", "crm/v3/objects/contacts", params={"limit": 1})
        return response_clock(response)

    def batches(self, conversions: list[Conversion]) -> list[list[Conversion]]:
        contacts = list(crm.by_contact(conversions).values())  # an email appears once per request
        return [[c for group in contacts[i:i + MAX_CONTACTS] for c in group]
                for i in range(0, len(contacts), MAX_CONTACTS)]

    def body(self, batch: list[Conversion]) -> dict:
        inputs = []
        for email, group in crm.by_contact(batch).items():
            ltv, orders, last = crm.state(group[-1])
            inputs.append({"idProperty": "email", "id": email, "properties": {
                self.fields["ltv_field"]: ltv, self.fields["orders_field"]: orders,
                self.fields["last_order_field"]: last}})
        return {"inputs": inputs}

    def send(self, batch: list[Conversion]) -> Sent:
        payload, response = self.call("POST", "crm/v3/objects/contacts/batch/upsert", json=self.body(batch))
        results = payload.get("results") or []
        return Sent({"status": payload.get("status"), "contacts": [
            {"id": r.get("id"), "new": r.get("new")} for r in results]}, response_clock(response))


def from_settings() -> Hubspot:
    values = read_settings(NAME, SETTINGS, SECRETS)
    require(NAME, values, REQUIRED)
    token = values["access_token"]
    client = VendorClient(NAME, values.get("base_url", BASE_URL), {"Authorization": f"Bearer {token}"}, [token],
                          f"activation.{NAME}.access_token", requests_per_second=source_settings.REQUESTS_PER_SECOND,
                          burst=source_settings.BURST)
    return Hubspot(client, values)
