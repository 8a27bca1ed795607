"""The sandbox's HTTP server: every vendor under its own path prefix on one loopback port.

`GET /` answers the index DESIGN.md specifies; `GET /_sandbox/stats` the clock and counters;
`POST /_sandbox/advance?days=D` moves the clock forward, and the world with it (rebuilt as of the new clock,
what clients wrote replayed into it: see `Sandbox.advance`), pushing what happened meanwhile to a registered
webhook receiver; `/_sandbox/webhooks` registers one, counts deliveries and replays windows
(sandbox/webhooks.py); `GET /_sandbox/received/<vendor>` answers what clients wrote to that vendor
(`{"raw": [...], "deduplicated": [...]}`, see `Vendor.received`). In `faithful`
mode every vendor's rate limit applies (sandbox/limits.py); in `bench` mode none does. Faults are injected as
sandbox/faults.py says.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from sandbox.clock import Clock
from sandbox.faults import FAULT_KINDS, FAULT_RETRY_AFTER_S, TRANSPORT_FAULTS, FaultPlan, FaultSpec, server_error
from sandbox.http import HttpError, Request, Response, http_date
from sandbox.limits import LeakyBucket
from sandbox.vendors import Vendor, built, received_by
from sandbox.webhooks import Deliverer, deliveries_between, secrets_of
from sandbox.world import World

log = logging.getLogger(__name__)
MODES = ("faithful", "bench")
POLL_S = 0.05  # how often the serving loop looks for stop(); stopping waits this long at most


class _Gate:
    """Requests pass while the world stands; `advance` shuts it, waits for the requests inside to finish, and
    opens it again with the next world in place, so only one world is ever held (benchmarks/README.md, "Sandbox
    serving": a second world beside the first doubled the server's peak)."""

    def __init__(self):
        self._changed = threading.Condition()
        self._inside = 0
        self._shut = False

    @contextmanager
    def passing(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._shut)
            self._inside += 1
        try:
            yield
        finally:
            with self._changed:
                self._inside -= 1
                self._changed.notify_all()

    @contextmanager
    def shut(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._shut)  # one advance at a time
            self._shut = True
            self._changed.wait_for(lambda: self._inside == 0)
        try:
            yield
        finally:
            with self._changed:
                self._shut = False
                self._changed.notify_all()


class Sandbox:
    """The vendors of one world, their budgets and faults, its clock, and what was asked of them."""

    def __init__(self, world: World, faults: str | None = None, mode: str = "faithful"):
        if mode not in MODES:
            raise ValueError(f"unknown sandbox mode {mode!r}; modes are {', '.join(MODES)}")
        self.world = world
        self.mode = mode
        self.clock = Clock(world.clock)
        self.vendors = self._vendors(world)
        self.buckets = ({name: LeakyBucket(v.rate_limit) for name, v in self.vendors.items()}
                        if mode == "faithful" else {})
        self.writes: list[tuple[str, Request]] = []  # every write a vendor accepted, to replay into a new world
        self._world_lock = threading.Lock()  # held by each write, so writes replay in the order they were made
        self._gate = _Gate()  # every request that reads the world passes it; `advance` shuts it
        self.fault_plan = FaultPlan(FaultSpec.parse(faults), world.seed)
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.rate_limited: Counter[str] = Counter()  # refusals for real over-use, apart from injected 429s
        self.webhooks = Deliverer(secrets_of(self.vendors), world.seed)
        self._lock = threading.Lock()

    def _vendors(self, world: World) -> dict[str, Vendor]:
        vendors = built(world)
        if self.mode == "faithful":  # a vendor with per-endpoint budgets too (HubSpot search) turns them on
            for vendor in vendors.values():
                getattr(vendor, "enforce_endpoint_limits", lambda: None)()
        return vendors

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward, and the world with it: the world is rebuilt as of the new clock (new people,
        orders, refunds and CRM edits appear, each at its own time; nothing served before changes its id) and
        every write clients made is replayed into it, so what they wrote stays. Rate-limit budgets and
        counters carry on. Requests wait meanwhile: the old world is let go before the new one is built."""
        if delta < timedelta(0):
            raise ValueError(f"the sandbox clock only moves forward, not by {delta}")
        with self._gate.shut():
            seed, size, start = self.world.seed, self.world.size, self.world.start
            days = (self.clock.now() - start) / timedelta(days=1)
            self.world = self.vendors = None
            gc.collect()  # the world's objects refer to each other: cycles, freed only by the collector
            try:
                self.world, self.vendors = self._built(seed, size, days + delta / timedelta(days=1))
            except BaseException:
                self.world, self.vendors = self._built(seed, size, days)  # the world as it was, so serving goes on
                raise
            self.clock.advance(delta)

    def _built(self, seed: int, size: int, days: float) -> tuple[World, dict[str, Vendor]]:
        world = World.build(seed, size, days=days, streamed=True)
        vendors = self._vendors(world)
        for prefix, request in self.writes:
            vendors[prefix].handle(request)
        return world, vendors

    def index(self, root: str) -> dict:
        return {name: vendor.index(root) for name, vendor in self.vendors.items()}

    def stats(self) -> dict:
        with self._lock:
            return {"clock": self.clock.now().isoformat(), "faults": {k: self.faults[k] for k in FAULT_KINDS},
                    "requests": dict(self.requests), "rate_limited": dict(self.rate_limited)}

    def _count(self, counter: Counter[str], key: str) -> int:
        with self._lock:
            counter[key] += 1
            return counter[key]

    def dispatch(self, request: Request, prefix: str) -> tuple[Response, str | None]:
        """The response, and the transport fault (`timeout`, `reset`, `truncate`) to deliver it with."""
        if prefix == "_sandbox" and request.path == "/advance":  # shuts the gate itself
            return self._control(request), None
        with self._gate.passing():
            return self._dispatch(request, prefix)

    def _dispatch(self, request: Request, prefix: str) -> tuple[Response, str | None]:
        if prefix == "" and request.path in ("", "/"):
            return Response.json(200, self.index(request.root_url)), None
        if prefix == "_sandbox":
            return self._control(request), None
        vendor = self.vendors.get(prefix)
        if vendor is None:
            return Response.json(404, {"error": f"no sandboxed vendor at /{prefix}; see GET / for the index"}), None
        self._count(self.requests, prefix)
        bucket = self.buckets.get(prefix)
        wait, used = bucket.take() if bucket else (0.0, 1)  # bench: as if every request found the bucket empty
        if wait:
            self._count(self.rate_limited, prefix)
            response, fault = vendor.rate_limited(wait), None
        else:
            response, fault = self._vendor_response(vendor, request)
        response.headers.update(vendor.usage_headers(used))
        return response, fault if fault in TRANSPORT_FAULTS else None

    def _vendor_response(self, vendor: Vendor, request: Request) -> tuple[Response, str | None]:
        fault = self.fault_plan.draw(lambda: vendor.shiftable(request))
        nth = self._count(self.faults, fault) if fault else 0
        if fault == "429":
            return vendor.rate_limited(FAULT_RETRY_AFTER_S), fault
        if fault == "5xx":
            return server_error(nth), fault
        request.shift = fault == "shift"
        if request.method == "GET" or request.path.endswith("/search"):  # HubSpot's search reads, by POST
            return self._handle(vendor, request), fault
        with self._world_lock:
            response = self._handle(self.vendors[vendor.name], request)
            if response.status < 300:
                self.writes.append((vendor.name, request))
        return response, fault

    @staticmethod
    def _handle(vendor: Vendor, request: Request) -> Response:
        try:
            return vendor.handle(request)
        except HttpError as error:
            return error.response

    def _control(self, request: Request) -> Response:
        if request.path == "/stats" and request.method == "GET":
            return Response.json(200, self.stats())
        if request.path == "/advance" and request.method == "POST":
            try:
                days = float(request.arg("days", ""))
            except ValueError:
                days = math.nan
            if not (math.isfinite(days) and days >= 0):
                return Response.json(400, {"error": "days must be a number of days >= 0: the clock only moves forward"})
            before = self.clock.now()
            self.advance(timedelta(days=days))
            if self.webhooks.url is not None:  # push what happened meanwhile to the registered receiver
                self.webhooks.deliver(deliveries_between(self.vendors, before, self.clock.now()))
            return Response.json(200, self.stats())
        if request.path.startswith("/webhooks"):
            return self._webhooks(request)
        if request.path.startswith("/received/") and request.method == "GET":
            vendor = self.vendors.get(request.path.removeprefix("/received/"))
            if vendor is None:
                return Response.json(404, {"error": f"no sandboxed vendor {request.path.removeprefix('/received/')!r}"})
            return Response.json(200, received_by(vendor))
        return Response.json(404, {"error": "sandbox controls: GET /_sandbox/stats, POST /_sandbox/advance?days=D, "
                                            "GET /_sandbox/received/<vendor>, POST|GET /_sandbox/webhooks, "
                                            "POST /_sandbox/webhooks/replay?since=ISO"})

    def _webhooks(self, request: Request) -> Response:
        """Register the receiver, read the delivery counters, or (re)deliver a window (sandbox/webhooks.py)."""
        try:
            if request.path == "/webhooks" and request.method == "POST":
                url = request.arg("url")
                if not url or not url.startswith("http"):
                    raise ValueError("url must be the receiver's base URL, e.g. http://127.0.0.1:8790 (deliveries "
                                     "go to <url>/stripe and <url>/shopify)")
                self.webhooks.register(url, float(request.arg("backoff_s", "1")),
                                       float(request.arg("max_backoff_s", "60")), int(request.arg("workers", "4")))
                return Response.json(200, self.webhooks.stats())
            if request.path == "/webhooks" and request.method == "GET":
                return Response.json(200, self.webhooks.stats(keys=request.arg("keys") == "1"))
            if request.path == "/webhooks/replay" and request.method == "POST":
                now = self.clock.now()
                since = _moment(request.arg("since"), now)
                until = _moment(request.arg("until"), now) if request.arg("until") else now
                if self.webhooks.url is None:
                    raise ValueError("no receiver registered: POST /_sandbox/webhooks?url=... first")
                return Response.json(200, {"queued": self.webhooks.deliver(deliveries_between(self.vendors, since,
                                                                                              until))})
        except ValueError as error:
            return Response.json(400, {"error": str(error)})
        return Response.json(404, {"error": "webhook controls: POST /_sandbox/webhooks?url=BASE, "
                                            "GET /_sandbox/webhooks, POST /_sandbox/webhooks/replay?since=ISO"})


def _moment(raw: str | None, now: datetime) -> datetime:
    if not raw:
        raise ValueError("since must be an ISO time, e.g. 2024-01-01T00:00:00Z")
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: tuple) -> None:
        # a client that gave up (timeout faults) or a connection we broke on purpose is no server error
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("connection from %s ended early", client_address)
        else:
            super().handle_error(request, client_address)


def _handler(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "journey-sandbox/0.1"
        # headers and body go out in separate writes: with Nagle's algorithm on, a keep-alive client's
        # delayed ACK would hold every response back by some 40 ms
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            url = urlsplit(self.path)
            parts = url.path.split("/", 2)  # "", prefix, rest
            prefix = parts[1] if len(parts) > 1 else ""
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command, path="/" + (parts[2] if len(parts) > 2 else ""),
                query=Request.parse_query(url.query), headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
                root_url=f"http://{self.server.server_address[0]}:{self.server.server_address[1]}",
                now=sandbox.clock.now())
            try:
                response, fault = sandbox.dispatch(request, prefix)
            except Exception:  # a sandbox bug must answer 500, not hang the client
                log.exception("sandbox failed on %s %s", self.command, self.path)
                response, fault = Response.json(500, {"error": "sandbox internal error"}), None
            if fault == "reset":
                self._reset()
                return
            if fault == "timeout":
                time.sleep(sandbox.fault_plan.spec.timeout_s)  # the client is expected to have given up
                self.close_connection = True
            self._send(response, truncate=fault == "truncate")

        def _send(self, response: Response, truncate: bool) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            body = response.body
            if truncate:  # promise the whole body, send half of it, hang up
                body = body[:len(body) // 2]
                self.close_connection = True
            self.wfile.write(body)

        def _reset(self) -> None:
            """Abort the connection: with SO_LINGER on and a zero timeout, closing sends a TCP RST, not a FIN.
            (The close takes effect when the handler lets go of the socket's read file, right after this.)"""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

        def date_time_string(self, timestamp: float | None = None) -> str:
            # the one `Date` header send_response writes: the sandbox's clock, never the wall clock
            return http_date(sandbox.clock.now())

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("%s - %s", self.address_string(), format % args)

    return Handler


class SandboxServer:
    """A running sandbox on 127.0.0.1; use as a context manager or call `start()` / `stop()`.

    `faults` is a fault SPEC (sandbox/faults.py); `mode` is `faithful` (vendors' rate limits apply)
    or `bench` (no limits)."""

    def __init__(self, world: World, port: int = 0, faults: str | None = None, mode: str = "faithful"):
        self.sandbox = Sandbox(world, faults=faults, mode=mode)
        self.httpd = _Server(("127.0.0.1", port), _handler(self.sandbox))
        self._thread: threading.Thread | None = None
        self._served = False  # shutdown() waits for a serve_forever that must have begun

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def index(self) -> dict:
        return json.loads(json.dumps(self.sandbox.index(self.url)))

    def start(self) -> SandboxServer:
        self._served = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(POLL_S,), name="sandbox",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._served = True
        self.httpd.serve_forever(POLL_S)

    def stop(self) -> None:
        self.sandbox.webhooks.stop()
        if self._served:  # else (stopped before it served: Ctrl-C while `journey sandbox` starts) it would wait forever
            self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
