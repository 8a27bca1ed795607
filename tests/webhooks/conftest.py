"""Webhook fixtures: the test secrets, a receiver on a private landing file, and signed deliveries."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from webhooks.landing import read_records
from webhooks.receiver import ReceiverServer
from webhooks.signatures import shopify_hmac, stripe_header

SECRETS = {"stripe": "whsec_test_receiver_secret", "shopify": "shpss_test_receiver_secret"}


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[ReceiverServer]:
    with ReceiverServer(tmp_path / "landing", SECRETS) as server:
        yield server


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def stripe_event(event_id: str, kind: str = "charge.succeeded", created: int = 1_700_000_000, **obj: object) -> bytes:
    charge = {"id": "ch_" + event_id, "object": "charge", "amount": 1000, "currency": "usd", "status": "succeeded",
              "created": created, **obj}
    return json.dumps({"id": event_id, "object": "event", "type": kind, "created": created,
                       "data": {"object": charge}}).encode()


def send_stripe(url: str, body: bytes, secret: str = SECRETS["stripe"], timestamp: int | None = None,
                header: str | None = None) -> tuple[int, dict]:
    return post(f"{url}/stripe", body, {"Stripe-Signature": header or stripe_header(secret, body, timestamp)})


def shopify_order(order_id: int, updated_at: str = "2024-03-01T10:00:00-05:00", **fields: object) -> bytes:
    return json.dumps({"id": order_id, "created_at": "2024-03-01T10:00:00-05:00", "updated_at": updated_at,
                       "financial_status": "paid", "total_price": "10.00", **fields}).encode()


def send_shopify(url: str, body: bytes, event_id: str, topic: str = "orders/updated",
                 secret: str = SECRETS["shopify"], hmac_header: str | None = None,
                 shop: str = "test-shop.myshopify.com") -> tuple[int, dict]:
    return post(f"{url}/shopify", body, {
        "X-Shopify-Hmac-Sha256": hmac_header or shopify_hmac(secret, body), "X-Shopify-Topic": topic,
        "X-Shopify-Event-Id": event_id, "X-Shopify-Webhook-Id": f"wh-{event_id}-{time.monotonic_ns()}",
        "X-Shopify-Shop-Domain": shop})


def landed(path: Path) -> list[dict]:
    return list(read_records(path))


def sandbox_control(base: str, path: str, method: str = "POST", **query: object) -> dict:
    from urllib.parse import urlencode

    request = urllib.request.Request(f"{base}/_sandbox/{path}?{urlencode(query)}", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_delivered(base: str, timeout_s: float = 60) -> dict:
    """The sandbox's delivery counters once nothing is queued or in flight."""
    deadline = time.monotonic() + timeout_s
    while True:
        stats = sandbox_control(base, "webhooks", "GET", keys=1)
        if stats["pending"] == 0 or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


def receiver_secrets(index: dict) -> dict[str, str]:
    return {"stripe": index["stripe"]["webhooks"]["signing_secret"],
            "shopify": index["shopify"]["webhooks"]["client_secret"]}
