"""The sandbox's webhooks: what happens in its world, pushed to a registered receiver, signed with the
sandbox's test secrets (in its `GET /` index) and retried as the vendors do.

- `deliveries_between(vendors, t0, t1)`: the deliveries for the world's changes in (t0, t1]: one Stripe
  delivery per event `created` in it, one Shopify `orders/create` or `orders/updated` per order whose
  `updated_at` is in it and one `orders/delete` per order deleted in it. The advance handler calls it with
  the old and the new clock, once the world has moved on.
- `Deliverer.deliver(deliveries)`: queue them; worker threads POST each to `<url>/stripe` or
  `<url>/shopify`, signing every attempt afresh (a Stripe signature's `t` is the attempt's time), and retry
  a failure (connection refused, timeout, non-2xx) with exponential backoff: Stripe keeps trying (for
  days; here STRIPE_ATTEMPTS attempts), Shopify gives up after 8 retries. Real vendors wait minutes to
  hours; the sandbox's backoff starts at `backoff_s` (1 s by default, set when registering) so a demo or a
  test sees retries happen.

Controls (sandbox/server.py): `POST /_sandbox/webhooks?url=BASE[&backoff_s=S&max_backoff_s=S&workers=N]`
registers the receiver; `GET /_sandbox/webhooks` answers the delivery counters (`?keys=1` adds the keys
acknowledged); `POST /_sandbox/webhooks/replay?since=ISO[&until=ISO]` (re)delivers a window.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sandbox.store import plain
from sandbox.world import stable_token
from webhooks.signatures import shopify_hmac, stripe_header

STRIPE_ATTEMPTS = 16
SHOPIFY_ATTEMPTS = 9  # the first try and 8 retries
TIMEOUT_S = {"stripe": 10.0, "shopify": 5.0}  # Shopify waits 5 s for a response
ORDER_TOPICS = ("orders/create", "orders/updated")


@dataclass(frozen=True)
class Delivery:
    vendor: str
    topic: str
    event_id: str
    at: datetime  # when it happened in the world
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # unsigned headers; signatures are added per attempt

    @property
    def key(self) -> str:  # the same as the receiver's landing key
        return f"{self.vendor}:{self.topic}:{self.event_id}"


def stripe_deliveries(stripe: object, t0: datetime, t1: datetime) -> list[Delivery]:
    lo, hi = int(t0.timestamp()), int(t1.timestamp())
    return [Delivery("stripe", event["type"], event["id"], datetime.fromtimestamp(event["created"], t1.tzinfo),
                     json.dumps(event, separators=(",", ":"), default=plain).encode())
            for event in reversed(stripe.lists["events"]) if lo < event["created"] <= hi]


def shopify_deliveries(shopify: object, t0: datetime, t1: datetime) -> list[Delivery]:
    from sandbox.vendors.shopify import API_VERSION, SHOP_DOMAIN

    deliveries = []
    for order in shopify.orders:
        updated = datetime.fromisoformat(order["updated_at"])
        if not t0 < updated <= t1:
            continue
        topic = ORDER_TOPICS[order["updated_at"] != order["created_at"]]
        event_id = stable_token(shopify.world.seed, "shopify-event", order["id"], order["updated_at"], length=20)
        headers = {"X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": SHOP_DOMAIN, "X-Shopify-API-Version": API_VERSION,
                   "X-Shopify-Event-Id": event_id, "X-Shopify-Webhook-Id": f"{topic}/{event_id}",
                   "X-Shopify-Triggered-At": updated.isoformat()}
        body = json.dumps(order, default=plain).encode()
        deliveries.append(Delivery("shopify", topic, event_id, updated, body, headers))
    for event in shopify.events:  # deleted orders: `orders/delete`, whose payload is the order's id only
        deleted = datetime.fromisoformat(event["created_at"])
        if event["verb"] != "destroy" or not t0 < deleted <= t1:
            continue
        event_id = str(event["id"])
        headers = {"X-Shopify-Topic": "orders/delete", "X-Shopify-Shop-Domain": SHOP_DOMAIN,
                   "X-Shopify-API-Version": API_VERSION, "X-Shopify-Event-Id": event_id,
                   "X-Shopify-Webhook-Id": f"orders/delete/{event_id}", "X-Shopify-Triggered-At": deleted.isoformat()}
        deliveries.append(Delivery("shopify", "orders/delete", event_id, deleted,
                                   json.dumps({"id": event["subject_id"]}).encode(), headers))
    return deliveries


def deliveries_between(vendors: dict, t0: datetime, t1: datetime) -> list[Delivery]:
    """The deliveries for what happened in (t0, t1], oldest first."""
    deliveries = stripe_deliveries(vendors["stripe"], t0, t1) + shopify_deliveries(vendors["shopify"], t0, t1)
    return sorted(deliveries, key=lambda d: (d.at, d.key))


def secrets_of(vendors: dict) -> dict[str, str]:
    return {"stripe": vendors["stripe"].webhook_secret, "shopify": vendors["shopify"].webhook_secret}


class Deliverer:
    """Queued deliveries to one receiver, sent by worker threads with retries; counters for tests."""

    def __init__(self, secrets: dict[str, str], seed: int = 0):
        self.secrets = secrets
        self.url: str | None = None
        self.backoff_s, self.max_backoff_s = 1.0, 60.0
        self.counts: Counter[str] = Counter()
        self.acknowledged: set[str] = set()
        self.failed: list[str] = []
        self._queue: list[tuple[float, int, int, Delivery]] = []  # (due, tie, attempt, delivery)
        self._tie = itertools.count()
        self._busy = 0
        self._rng = random.Random(seed)
        self._cv = threading.Condition()
        self._workers: list[threading.Thread] = []
        self._stopping = False

    def register(self, url: str, backoff_s: float = 1.0, max_backoff_s: float = 60.0, workers: int = 4) -> None:
        with self._cv:
            self.url = url.rstrip("/")
            self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
            while len(self._workers) < workers:
                worker = threading.Thread(target=self._work, name=f"webhooks-{len(self._workers)}", daemon=True)
                self._workers.append(worker)
                worker.start()

    def deliver(self, deliveries: list[Delivery]) -> int:
        """Queue deliveries (none while no receiver is registered: like a vendor with no endpoint)."""
        with self._cv:
            if self.url is None:
                return 0
            now = time.monotonic()
            for delivery in deliveries:
                heapq.heappush(self._queue, (now, next(self._tie), 0, delivery))
            self.counts["queued"] += len(deliveries)
            self._cv.notify_all()
            return len(deliveries)

    def stats(self, keys: bool = False) -> dict:
        with self._cv:
            stats = {"url": self.url, "pending": len(self._queue) + self._busy, **{k: self.counts[k] for k in (
                "queued", "attempts", "acknowledged", "retried", "failed")}}
            if keys:
                stats["acknowledged_keys"] = sorted(self.acknowledged)
                stats["failed_keys"] = list(self.failed)
            return stats

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()

    def _work(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while True:
            with self._cv:
                while not self._stopping and (not self._queue or self._queue[0][0] > time.monotonic()):
                    self._cv.wait(None if not self._queue else self._queue[0][0] - time.monotonic())
                if self._stopping:
                    return
                _, _, attempt, delivery = heapq.heappop(self._queue)
                self._busy += 1
                url = self.url
            status, connection = self._post(connection, url, delivery)
            with self._cv:
                self._busy -= 1
                self.counts["attempts"] += 1
                if status is not None and 200 <= status < 300:
                    self.counts["acknowledged"] += 1
                    self.acknowledged.add(delivery.key)
                elif attempt + 1 < (STRIPE_ATTEMPTS if delivery.vendor == "stripe" else SHOPIFY_ATTEMPTS):
                    delay = min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * (0.5 + self._rng.random())
                    heapq.heappush(self._queue, (time.monotonic() + delay, next(self._tie), attempt + 1, delivery))
                    self.counts["retried"] += 1
                    self._cv.notify_all()
                else:
                    self.counts["failed"] += 1
                    self.failed.append(delivery.key)

    def _post(self, connection: http.client.HTTPConnection | None, url: str,
              delivery: Delivery) -> tuple[int | None, http.client.HTTPConnection | None]:
        """One attempt, signed now; the status, or None if the receiver could not be reached or hung up."""
        headers = {"Content-Type": "application/json", "User-Agent": f"journey-sandbox-{delivery.vendor}-webhooks",
                   **delivery.headers}
        secret = self.secrets[delivery.vendor]
        if delivery.vendor == "stripe":
            headers["Stripe-Signature"] = stripe_header(secret, delivery.body)
        else:
            headers["X-Shopify-Hmac-Sha256"] = shopify_hmac(secret, delivery.body)
        parts = urlsplit(url)
        try:
            if connection is not None and (connection.host, connection.port) != (parts.hostname, parts.port):
                connection.close()  # the receiver was registered anew elsewhere
                connection = None
            if connection is None:
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S[delivery.vendor])
            connection.request("POST", f"{parts.path}/{delivery.vendor}", body=delivery.body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.will_close:
                connection.close()
                connection = None
            return response.status, connection
        except (OSError, http.client.HTTPException):
            if connection is not None:
                connection.close()
            return None, None
