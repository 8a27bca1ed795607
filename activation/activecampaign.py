"""ActiveCampaign `POST /contact/sync` (api-contracts.md section 1.3): create or update the contact with
this email, its lifetime value, orders and last order date in custom fields (their ids are the account's:
`activation.activecampaign.ltv_field`, `orders_field`, `last_order_field`). One contact per request, paced
to the account's 5 requests per second. An upsert is idempotent, so a resend after a crash is harmless.
"""

from __future__ import annotations

from datetime import datetime

from activation import crm
from activation.base import Destination, Sent, read_settings, require, response_clock
from activation.conversions import PURCHASE, Conversion
from pipelines.http import VendorClient
from pipelines.sources.activecampaign import settings as source_settings

NAME = "activecampaign"
SETTINGS = ("base_url", "api_token", *crm.CRM_SETTINGS)
SECRETS = ("api_token",)
REQUIRED = ("base_url", "api_token")
FIELDS = {"ltv_field": "LIFETIME_VALUE", "orders_field": "LIFETIME_ORDERS", "last_order_field": "LAST_ORDER_DATE"}


class Activecampaign(Destination):
    name = NAME
    needs_consent = False  # the CRM is the customer's own record; its subscriptions govern email
    needs_email = True
    kinds = frozenset({PURCHASE})

    def __init__(self, client: VendorClient, values: dict):
        super().__init__(client)
        self.max_age = crm.max_age(values)
        self.fields = {key: str(values.get(key, default)) for key, default in FIELDS.items()}

    def clock(self) -> datetime:
        _, response = self.call("GET", "contacts", params={"limit": 1})
        return response_clock(response)

    def batches(self, conversions: list[Conversion]) -> list[list[Conversion]]:
        return list(crm.by_contact(conversions).values())

    def body(self, batch: list[Conversion]) -> dict:
        ltv, orders, last = crm.state(batch[-1])
        values = zip(("ltv_field", "orders_field", "last_order_field"), (ltv, orders, last), strict=True)
        return {"contact": {"email": batch[0].email.strip(),
                            "fieldValues": [{"field": self.fields[key], "value": v} for key, v in values]}}

    def send(self, batch: list[Conversion]) -> Sent:
        payload, response = self.call("POST", "contact/sync", json=self.body(batch))
        return Sent({"status": response.status_code, "created": response.status_code == 201,
                     "contact_id": (payload.get("contact") or {}).get("id")}, response_clock(response))


def from_settings() -> Activecampaign:
    values = read_settings(NAME, SETTINGS, SECRETS)
    require(NAME, values, REQUIRED)
    token = values["api_token"]
    client = VendorClient(NAME, values["base_url"], {"Api-Token": token}, [token], f"activation.{NAME}.api_token",
                          requests_per_second=source_settings.REQUESTS_PER_SECOND, burst=source_settings.BURST)
    return Activecampaign(client, values)
