"""The sandbox's HTTP server: every vendor under its own path prefix on one loopback port.

`GET /` answers the index DESIGN.md specifies; `GET /_sandbox/stats` the clock and counters.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from sandbox.http import HttpError, Request, Response, http_date
from sandbox.vendors import VENDORS
from sandbox.world import World

log = logging.getLogger(__name__)
FAULT_KINDS = ("429", "5xx", "timeout", "reset", "truncate", "shift")


class Sandbox:
    """The vendors of one world, and what was asked of them."""

    def __init__(self, world: World):
        self.world = world
        self.vendors = {vendor.name: vendor for vendor in (cls(world) for cls in VENDORS)}
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self._lock = threading.Lock()

    def index(self, root: str) -> dict:
        return {name: vendor.index(root) for name, vendor in self.vendors.items()}

    def stats(self) -> dict:
        with self._lock:
            return {"clock": self.world.clock.isoformat(), "faults": {k: self.faults[k] for k in FAULT_KINDS},
                    "requests": dict(self.requests)}

    def dispatch(self, request: Request, prefix: str) -> Response:
        if prefix == "" and request.path in ("", "/"):
            return Response.json(200, self.index(request.root_url))
        if prefix == "_sandbox" and request.path == "/stats":
            return Response.json(200, self.stats())
        vendor = self.vendors.get(prefix)
        if vendor is None:
            return Response.json(404, {"error": f"no sandboxed vendor at /{prefix}; see GET / for the index"})
        with self._lock:
            self.requests[prefix] += 1
        try:
            return vendor.handle(request)
        except HttpError as error:
            return error.response


def _handler(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "journey-sandbox/0.1"

        def _serve(self) -> None:
            url = urlsplit(self.path)
            parts = url.path.split("/", 2)  # "", prefix, rest
            prefix = parts[1] if len(parts) > 1 else ""
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command, path="/" + (parts[2] if len(parts) > 2 else ""),
                query=Request.parse_query(url.query), headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
                root_url=f"http://{self.server.server_address[0]}:{self.server.server_address[1]}")
            try:
                response = sandbox.dispatch(request, prefix)
            except Exception:  # a sandbox bug must answer 500, not hang the client
                log.exception("sandbox failed on %s %s", self.command, self.path)
                response = Response.json(500, {"error": "sandbox internal error"})
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Date", http_date(sandbox.world.clock))
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("%s - %s", self.address_string(), format % args)

    return Handler


class SandboxServer:
    """A running sandbox on 127.0.0.1; use as a context manager or call `start()` / `stop()`."""

    def __init__(self, world: World, port: int = 0):
        self.sandbox = Sandbox(world)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self.sandbox))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def index(self) -> dict:
        return json.loads(json.dumps(self.sandbox.index(self.url)))

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
