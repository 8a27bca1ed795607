"""The shared HTTP layer: retries what can recover, stops with a clear error on what cannot, and never
lets a credential into a message."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines.http import VendorClient, VendorError, link_header_pages, offset_pages

pytestmark = pytest.mark.sources

SECRET = "sk_test_verysecretvalue1234"


class Scripted:
    """A loopback server answering each request with the next (status, headers, body) in a script."""

    def __init__(self, script: list[tuple[int, dict, bytes]]):
        self.script = list(script)
        self.seen: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.seen.append(self.path)
                status, headers, body = outer.script.pop(0) if outer.script else (500, {}, b"{}")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers = []

    def make(script):
        server = Scripted(script)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def client(url: str, **kwargs) -> VendorClient:
    return VendorClient("stripe", url, {"Authorization": f"Bearer {SECRET}"}, [SECRET], "sources.stripe.api_key",
                        **kwargs)


def test_retries_429_after_retry_after_and_5xx_then_succeeds(scripted):
    server = scripted([(429, {"Retry-After": "0.1"}, b"{}"), (503, {}, b"{}"), (200, {}, b'{"ok": true}')])
    payload, _ = client(server.url).get("v1/thing")
    assert payload == {"ok": True}
    assert len(server.seen) == 3


def test_truncated_body_is_retried(scripted):
    # a JSON body cut short fails to parse and is fetched again
    server = scripted([(200, {}, b'{"ok": tr'), (200, {}, b'{"ok": true}')])
    assert client(server.url).get("x")[0] == {"ok": True}


def test_refused_credential_fails_fast_with_a_clear_redacted_error(scripted):
    body = json.dumps({"error": {"message": f"Invalid API Key provided: {SECRET}"}}).encode()
    server = scripted([(401, {}, body), (200, {}, b"{}")])
    with pytest.raises(VendorError) as caught:
        client(server.url).get("v1/charges", {"limit": 100})
    message = str(caught.value)
    assert len(server.seen) == 1  # not retried
    assert "stripe" in message and "/v1/charges" in message and "401" in message
    assert "sources.stripe.api_key" in message and "SOURCES__STRIPE__API_KEY" in message
    assert SECRET not in message


def test_retries_are_bounded_in_time(scripted):
    server = scripted([(503, {}, b"{}")] * 50)
    with pytest.raises(VendorError, match="still failing"):
        client(server.url, max_retry_seconds=1.0).get("x")


def test_secret_query_values_never_appear_in_errors(scripted):
    server = scripted([(400, {}, b'{"error": "bad"}')])
    with pytest.raises(VendorError) as caught:
        client(server.url).get("mp/collect", {"api_secret": "abc123secret", "measurement_id": "G-1"})
    assert "abc123secret" not in str(caught.value) and "G-1" in str(caught.value)


def test_link_header_paging_follows_next_and_drops_filters(scripted):
    server = scripted([])
    server.script = [
        (200, {"Link": f'<{server.url}/orders.json?page_info=abc&limit=2>; rel="next"'},
         b'{"orders": [{"id": 1}, {"id": 2}]}'),
        (200, {}, b'{"orders": [{"id": 3}]}'),
    ]
    pages = list(link_header_pages(client(server.url), "orders.json", "orders", {"status": "any", "limit": 2}))
    assert [[o["id"] for o in p] for p in pages] == [[1, 2], [3]]
    assert "status=any" in server.seen[0] and "status" not in server.seen[1]


def test_offset_paging_stops_at_meta_total(scripted):
    server = scripted([(200, {}, b'{"contacts": [{"id": "1"}, {"id": "2"}], "meta": {"total": "3"}}'),
                       (200, {}, b'{"contacts": [{"id": "3"}], "meta": {"total": "3"}}')])
    pages = list(offset_pages(client(server.url), "contacts", "contacts", {}, 2))
    assert sum(len(p) for p in pages) == 3 and len(server.seen) == 2


def test_throttle_paces_calls_to_the_budget_after_the_burst():
    import time

    from pipelines.http import Throttle

    throttle = Throttle(per_second=20, burst=3)
    started = time.monotonic()
    for _ in range(3):
        throttle.wait()
    burst_done = time.monotonic()
    for _ in range(4):
        throttle.wait()
    assert burst_done - started < 0.05  # the burst goes at once
    assert time.monotonic() - burst_done >= 4 / 20 - 0.01  # then one call per 1/20 s


def test_pacing_is_on_unless_lifted_for_an_unlimited_server(monkeypatch):
    def paced_interval() -> float:
        return VendorClient("shopify", "http://127.0.0.1:1", {}, [], "sources.shopify.access_token",
                            requests_per_second=2, burst=40).throttle.interval

    monkeypatch.delenv("JOURNEY_HTTP_PACING", raising=False)
    assert paced_interval() == 0.5
    monkeypatch.setenv("JOURNEY_HTTP_PACING", "off")  # what journey bench sets against the bench-mode sandbox
    assert paced_interval() == 0.0
