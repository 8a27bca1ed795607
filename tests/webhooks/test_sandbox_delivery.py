"""The sandbox pushes what happens in its world, signed with the secrets of its index, and retries."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sandbox.server import SandboxServer
from sandbox.webhooks import SHOPIFY_ATTEMPTS, deliveries_between
from tests.webhooks.conftest import landed, receiver_secrets, sandbox_control, wait_delivered
from webhooks.receiver import ReceiverServer

pytestmark = [pytest.mark.webhooks, pytest.mark.sandbox]
EPOCH = "2000-01-01T00:00:00Z"


def test_deliveries_between_are_the_events_and_order_updates_in_the_window(world):
    with SandboxServer(world) as server:
        vendors, clock = server.sandbox.vendors, server.sandbox.clock.now()
        everything = deliveries_between(vendors, clock - timedelta(days=3650), clock)
        week = deliveries_between(vendors, clock - timedelta(days=7), clock)
    stripe_events = vendors["stripe"].lists["events"]
    assert sum(d.vendor == "stripe" for d in everything) == len(stripe_events)
    shopify = vendors["shopify"]
    assert sum(d.vendor == "shopify" for d in everything) == len(shopify.orders) + len(shopify.events)
    assert 0 < len(week) < len(everything)
    assert all(clock - timedelta(days=7) < d.at <= clock for d in week)
    assert [d.at for d in everything] == sorted(d.at for d in everything)
    topics = {d.topic for d in everything if d.vendor == "shopify"}
    assert topics == {"orders/create", "orders/updated", "orders/delete"}
    assert len({d.key for d in everything}) == len(everything)


def test_the_sandbox_delivers_its_world_signed_to_a_registered_receiver(world, tmp_path):
    with SandboxServer(world) as server, \
            ReceiverServer(tmp_path / "landing", receiver_secrets(server.index())) as receiver:
        sandbox_control(server.url, "webhooks", url=receiver.url, backoff_s=0.02)
        queued = sandbox_control(server.url, "webhooks/replay", since=EPOCH)["queued"]
        stats = wait_delivered(server.url)
        expected = {d.key for d in deliveries_between(server.sandbox.vendors, server.sandbox.clock.now()
                                                      - timedelta(days=3650), server.sandbox.clock.now())}
        assert queued == len(expected) > 100
        assert (stats["acknowledged"], stats["failed"]) == (queued, 0)
        sandbox_control(server.url, "webhooks/replay", since=EPOCH)  # a replay: acknowledged, not stored again
        wait_delivered(server.url)
        keys = [f"{r['vendor']}:{r['topic']}:{r['event_id']}" for r in landed(receiver.landing.folder)]
        assert len(keys) == len(set(keys)) and set(keys) == expected
        assert receiver.receiver.counts == {"stored": queued, "duplicate": queued, "refused": 0}


def test_advancing_the_clock_pushes_what_happens_in_the_world_meanwhile(world, tmp_path):
    with SandboxServer(world) as server, \
            ReceiverServer(tmp_path / "landing", receiver_secrets(server.index())) as receiver:
        start = server.sandbox.clock.now()
        sandbox_control(server.url, "webhooks", url=receiver.url, backoff_s=0.02)
        sandbox_control(server.url, "advance", days=10)  # the world moves on: new orders, refunds, deletions
        wait_delivered(server.url)
        expected = deliveries_between(server.sandbox.vendors, start, server.sandbox.clock.now())
        assert expected and {d.vendor for d in expected} == {"stripe", "shopify"}
        assert all(start < d.at <= start + timedelta(days=10) for d in expected)
        assert sorted(r["event_id"] for r in landed(receiver.landing.folder)) == sorted(d.event_id for d in expected)


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first `failures` attempts of each event (or to all of them), then 200."""

    failures = 2
    attempts: dict = {}
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        key = self.headers.get("X-Shopify-Event-Id", self.path)
        with self.lock:
            self.attempts[key] = self.attempts.get(key, 0) + 1
            status = 503 if self.failures is None or self.attempts[key] <= self.failures else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_failed_deliveries_are_retried_and_shopify_gives_up_after_eight_retries(world):
    with SandboxServer(world) as server:
        vendors, clock = server.sandbox.vendors, server.sandbox.clock.now()
        one_order = next(d for d in deliveries_between(vendors, clock - timedelta(days=3650), clock)
                         if d.vendor == "shopify")
        for failures, attempts, acknowledged in ((2, 3, 1), (None, SHOPIFY_ATTEMPTS, 0)):
            handler = type("Flaky", (_Flaky,), {"failures": failures, "attempts": {}})
            httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            try:
                sandbox_control(server.url, "webhooks", url=f"http://127.0.0.1:{httpd.server_address[1]}",
                                backoff_s=0.01, max_backoff_s=0.05)
                before = sandbox_control(server.url, "webhooks", "GET")
                server.sandbox.webhooks.deliver([one_order])
                stats = wait_delivered(server.url)
            finally:
                httpd.shutdown()
                httpd.server_close()
            assert handler.attempts == {one_order.event_id: attempts}
            assert stats["attempts"] - before["attempts"] == attempts
            assert stats["acknowledged"] - before["acknowledged"] == acknowledged
            assert stats["failed"] - before["failed"] == 1 - acknowledged
