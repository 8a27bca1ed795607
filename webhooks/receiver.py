"""The webhook receiver: `POST /stripe` and `POST /shopify` on 127.0.0.1, `GET /health`.

Each delivery is verified over its raw body (a forged, tampered or stale one gets 400 and nothing is
stored), then appended to the landing file and fsynced; only then does the vendor hear 2xx. A delivery
whose event was landed before (a retry, a replay) also hears 2xx and is not stored again. Anything that
goes wrong while landing answers 500, so the vendor retries.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from webhooks import settings
from webhooks.landing import DEFAULT_SEGMENT_BYTES, Landing
from webhooks.signatures import SignatureError, verify_shopify, verify_stripe

log = logging.getLogger(__name__)


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Delivery:
    vendor: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


def stripe_endpoints(setting: str) -> list[tuple[str | None, str]]:
    """The Stripe signing secret setting: one `whsec_...`, or several endpoints' as `acct_...=whsec_...`
    separated by commas (one endpoint per Stripe account, each with its own secret)."""
    endpoints = []
    for part in filter(None, (p.strip() for p in setting.split(","))):
        account, _, secret = part.partition("=") if part.startswith("acct_") else (None, "", part)
        endpoints.append((account, secret))
    return endpoints


def stripe_signer(header: str | None, body: bytes, setting: str, tolerance_s: float) -> str | None:
    """The account whose endpoint secret signed the delivery (None for a lone secret); refused if none did."""
    refusal = SignatureError("no Stripe signing secret configured")
    for account, secret in stripe_endpoints(setting):
        try:
            verify_stripe(header, body, secret, tolerance_s)
            return account
        except SignatureError as error:
            refusal = error
    raise refusal


def stripe_record(delivery: Delivery, setting: str, tolerance_s: float) -> dict:
    account = stripe_signer(delivery.headers.get("stripe-signature"), delivery.body, setting, tolerance_s)
    event = _json(delivery.body)
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise Refused(400, "a Stripe event needs an `id` and a `type`")
    # a Connect event names the connected account itself, which wins
    return {"event_id": event["id"], "topic": event["type"], "account": event.get("account") or account}


def shopify_secret(setting: str, shop: str | None) -> str:
    """The Shopify client secret setting: one app's secret for every shop, or one per shop (a custom app in
    each) as `shop.myshopify.com=secret` separated by commas; the delivery's `X-Shopify-Shop-Domain` picks."""
    secrets = {}
    for part in filter(None, (p.strip() for p in setting.split(","))):
        domain, _, secret = part.partition("=")
        if domain.endswith(".myshopify.com") and secret:
            secrets[domain] = secret
        else:
            secrets[None] = part
    secret = secrets.get(shop) or secrets.get(None)
    if not secret:
        raise SignatureError(f"no Shopify client secret configured for shop {shop!r}")
    return secret


def shopify_record(delivery: Delivery, setting: str) -> dict:
    headers = delivery.headers
    secret = shopify_secret(setting, headers.get("x-shopify-shop-domain"))
    verify_shopify(headers.get("x-shopify-hmac-sha256"), delivery.body, secret)
    _json(delivery.body)
    topic = headers.get("x-shopify-topic")
    # the event id is the same in every delivery of one event (retries, replays, other subscriptions)
    event_id = headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id")
    if not topic or not event_id:
        raise Refused(400, "a Shopify delivery needs X-Shopify-Topic and X-Shopify-Event-Id (or X-Shopify-Webhook-Id)")
    return {"event_id": event_id, "topic": topic, "account": headers.get("x-shopify-shop-domain"),
            "webhook_id": headers.get("x-shopify-webhook-id"), "triggered_at": headers.get("x-shopify-triggered-at"),
            "api_version": headers.get("x-shopify-api-version")}


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        raise Refused(400, "the body is not JSON") from None


class Receiver:
    """Verifies and lands deliveries; no HTTP in here, so tests and benchmarks can call it directly."""

    def __init__(self, landing: Landing, secrets: dict[str, str | None],
                 tolerance_s: float = settings.STRIPE_TOLERANCE_S):
        self.landing = landing
        self.secrets = secrets
        self.tolerance_s = tolerance_s
        self.counts = {"stored": 0, "duplicate": 0, "refused": 0}
        self._lock = threading.Lock()

    def receive(self, delivery: Delivery) -> bool:
        """True if stored now, False if landed before; raises Refused (4xx/5xx) otherwise."""
        try:
            secret = self.secrets.get(delivery.vendor)
            if not secret:
                raise Refused(503, f"{delivery.vendor} webhooks are not configured on this receiver: set "
                                   f"{settings.env_name(settings.SECRET_KEYS[delivery.vendor])} and restart it")
            try:
                if delivery.vendor == "stripe":
                    fields = stripe_record(delivery, secret, self.tolerance_s)
                else:
                    fields = shopify_record(delivery, secret)
            except SignatureError as error:
                raise Refused(400, str(error)) from None
            try:
                body = delivery.body.decode()
            except UnicodeDecodeError:
                raise Refused(400, "the body is not UTF-8") from None
        except Refused:
            self._count("refused")
            raise
        record = {"vendor": delivery.vendor, **fields,
                  "received_at": datetime.now(UTC).isoformat(timespec="microseconds"), "body": body}
        stored = self.landing.append(record)
        self._count("stored" if stored else "duplicate")
        return stored

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a restarted receiver takes its port back at once


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "journey-webhooks/0.1"
        disable_nagle_algorithm = True
        timeout = 30  # an idle or stalled connection gives its thread back (vendors wait 5-10 s at most)

        def do_POST(self) -> None:  # noqa: N802
            vendor = self.path.split("?", 1)[0].strip("/")
            length = int(self.headers.get("Content-Length") or 0)
            if vendor not in settings.VENDORS:
                self._drain(length)
                return self._send(404, {"error": f"no webhook endpoint at {self.path}; POST to /stripe or /shopify"})
            if length > settings.MAX_BODY_BYTES:
                self.close_connection = True
                return self._send(413, {"error": f"body over {settings.MAX_BODY_BYTES} bytes"})
            delivery = Delivery(vendor, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            try:
                stored = receiver.receive(delivery)
            except Refused as refused:
                return self._send(refused.status, {"error": str(refused)})
            except Exception:  # landing failed (disk full, ...): 500, and the vendor retries
                log.exception("could not land a %s delivery", vendor)
                return self._send(500, {"error": "could not land the delivery; retry"})
            self._send(200, {"received": True, "stored": stored})

        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?", 1)[0] == "/health":
                return self._send(200, {"landing": str(receiver.landing.folder), "records": len(receiver.landing),
                                        **receiver.counts})
            self._send(404, {"error": "GET /health; deliveries: POST /stripe, POST /shopify"})

        def _drain(self, length: int) -> None:
            if length:
                self.rfile.read(length)

        def _send(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("%s - %s", self.address_string(), format % args)

    return Handler


class ReceiverServer:
    """A running receiver on 127.0.0.1; a context manager, or `start()` / `serve_forever()` / `stop()`."""

    def __init__(self, landing_path: Path, secrets: dict[str, str | None], port: int = 0,
                 tolerance_s: float = settings.STRIPE_TOLERANCE_S, torn_write_pause_s: float = 0.0,
                 segment_bytes: int = DEFAULT_SEGMENT_BYTES):
        self.landing = Landing(landing_path, torn_write_pause_s, segment_bytes)
        self.receiver = Receiver(self.landing, secrets, tolerance_s)
        self.httpd = _Server(("127.0.0.1", port), _handler(self.receiver))
        self._thread: threading.Thread | None = None
        self._served = False  # shutdown() waits for a serve_forever that must have begun

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ReceiverServer:
        self._served = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="webhooks", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._served = True
        self.httpd.serve_forever(0.05)

    def stop(self) -> None:
        if self._served:  # else (stopped before it served, e.g. Ctrl-C while registering) it would wait forever
            self.httpd.shutdown()
        self.httpd.server_close()
        self.landing.close()

    def __enter__(self) -> ReceiverServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def configured_secrets() -> dict[str, str | None]:
    return {vendor: settings.secret(vendor) for vendor in settings.VENDORS}


def serve(port: int, landing_path: Path, on_listening: Callable[[str], None] | None = None) -> int:
    """Serve in the foreground until interrupted (the `journey webhooks` command); `on_listening(url)` is
    called once the port is open (to register it with a sandbox)."""
    secrets = configured_secrets()
    if not any(secrets.values()):
        print("journey webhooks: no signing secret configured; set "
              + " and/or ".join(settings.env_name(k) for k in settings.SECRET_KEYS.values())
              + " (or [webhooks.stripe] / [webhooks.shopify] in .dlt/secrets.toml)", file=sys.stderr)
        return 2
    pause = float(os.environ.get(settings.TORN_WRITE_PAUSE_ENV) or 0)
    segment_bytes = int(os.environ.get(settings.SEGMENT_BYTES_ENV) or DEFAULT_SEGMENT_BYTES)
    server = ReceiverServer(landing_path, secrets, port=port, torn_write_pause_s=pause, segment_bytes=segment_bytes)
    landing = server.landing
    torn = f"; cut a torn last record of {landing.torn_bytes} bytes" if landing.torn_bytes else ""
    print(f"Webhooks: {server.url}/stripe and {server.url}/shopify "
          f"({', '.join(v for v, s in secrets.items() if s)} configured); landing {landing.folder} "
          f"({landing.recovered_records} records{torn}). Ctrl-C stops it.", flush=True)
    try:
        if on_listening:
            on_listening(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webhooks.receiver")
    parser.add_argument("--port", type=int, default=settings.DEFAULT_PORT)
    parser.add_argument("--landing", type=Path, required=True)
    args = parser.parse_args(argv)
    return serve(args.port, args.landing)


if __name__ == "__main__":
    sys.exit(main())
