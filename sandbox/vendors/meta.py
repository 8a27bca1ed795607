"""Meta Conversions API: `POST /<version>/<pixel_id>/events` on the Graph API.

Contract (api-contracts.md section 6): `access_token` in the query string (or in the JSON or form body);
body `{"data": [server events], "test_event_code"?}` (a form body carries `data` as a JSON string). Up to
MAX_EVENTS events; if any one is invalid the whole batch is rejected with a 400 Graph error and nothing is
recorded. An event needs `event_name`, `event_time` (Unix seconds, at most MAX_AGE before the sandbox's
clock and at most MAX_AHEAD after it) and `action_source`; a `website` event also `event_source_url` and
`user_data.client_user_agent`; the customer fields in HASHED_FIELDS must be SHA-256 hex digests. A wrong
token gets Graph's OAuthException code 190. Success: `{"events_received": n, "messages": [], "fbtrace_id"}`.
Graph's exact error subcodes are not documented (UNVERIFIED): the sandbox uses code 100 with subcodes
from SUBCODES. `GET /<version>/<pixel_id>` reads the pixel (`{"id", "name"}`), as Graph does; it changes
nothing, so clients use it to check their token and read the clock. Rate limiting: generous, answered with
Graph's throttling code 4 if ever reached.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from datetime import datetime, timedelta
from urllib.parse import parse_qs

from sandbox.http import HttpError, Request, Response
from sandbox.limits import Budget
from sandbox.received import first_per_key
from sandbox.world import World, stable_token

NAME = "meta"
PATH = re.compile(r"^/(v\d+\.\d+)/([^/]+)/events$")
PIXEL_PATH = re.compile(r"^/(v\d+\.\d+)/([^/]+)$")
MAX_EVENTS = 1000
MAX_AGE = timedelta(days=7)
MAX_AHEAD = timedelta(minutes=1)
ACTION_SOURCES = frozenset({"email", "website", "app", "phone_call", "chat", "physical_store", "system_generated",
                            "business_messaging", "other"})
HASHED_FIELDS = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country")
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
SUBCODES = {"missing": 2804001, "too_old": 2804003, "future": 2804004, "unhashed": 2804005, "too_many": 2804006,
            "no_object": 33}


class Meta:
    name = NAME
    rate_limit = Budget(size=10_000, leak_per_second=10_000.0)

    def __init__(self, world: World):
        self.world = world
        self.pixel_id = str(100_000_000_000_000 + world.seed)
        self.access_token = "EAAsandbox" + stable_token(world.seed, "meta", "token", length=40)
        self._events: list[dict] = []  # every recorded event, with its request's test_event_code
        self._traces = itertools.count(1)
        self._lock = threading.Lock()

    def index(self, root: str) -> dict:
        return {"base_url": f"{root}/{NAME}",
                "credentials": {"pixel_id": self.pixel_id, "access_token": self.access_token}}

    def _trace(self) -> str:
        return "A" + stable_token(self.world.seed, "meta", "trace", next(self._traces), length=22)

    def _error(self, status: int, message: str, code: int = 100, subcode: int | None = None,
               kind: str = "OAuthException", transient: bool = False) -> HttpError:
        error: dict = {"message": message, "type": kind, "code": code, "is_transient": transient,
                       "fbtrace_id": self._trace()}
        if subcode is not None:
            error["error_subcode"] = subcode
        return HttpError(Response.json(status, {"error": error}))

    def served_counts(self, now: datetime | None = None) -> dict[str, int]:
        return {}  # nothing to list

    def received(self) -> dict[str, list]:
        """Recorded events; deduplicated keeps the first per (event_name, event_id), and every event
        without an event_id (Meta cannot match those)."""
        with self._lock:
            raw = list(self._events)
        return first_per_key(raw, lambda e: (e["event_name"], str(e["event_id"])) if e.get("event_id") is not None
                        else None)

    # --- rate limit and faults (every vendor has these) ----------------------------------------
    def rate_limited(self, retry_after: float) -> Response:
        """Graph's throttling error (code 4), transient. The HTTP status Graph uses for it is UNVERIFIED."""
        return self._error(429, "(#4) Application request limit reached", code=4, transient=True).response

    def usage_headers(self, used: int) -> dict[str, str]:
        return {}

    def shiftable(self, request: Request) -> bool:
        return False  # nothing to page through

    # --- HTTP ----------------------------------------------------------------------------------
    def _payload(self, request: Request) -> dict:
        """The JSON or form body, with `data` decoded."""
        content_type = request.headers.get("content-type", "")
        try:
            if "application/x-www-form-urlencoded" in content_type:
                form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
                if "data" in form:
                    form["data"] = json.loads(form["data"])
                return form
            payload = request.json()
        except (ValueError, UnicodeDecodeError):
            raise self._error(400, "Invalid parameter: the body is not valid JSON") from None
        return payload if isinstance(payload, dict) else {}

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise self._error(400, "An active access token must be used to query information about the current user.",
                              code=2500)
        if token != self.access_token:
            raise self._error(401, "Invalid OAuth access token - Cannot parse access token", code=190)

    def _pixel(self, request: Request, pixel_id: str) -> Response:
        """`GET /<version>/<pixel_id>`: the pixel's id and name."""
        self._check_token(request.arg("access_token"))
        if pixel_id != self.pixel_id:
            raise self._error(400, f"Unsupported get request. Object with ID '{pixel_id}' does not exist.",
                              subcode=SUBCODES["no_object"], kind="GraphMethodException")
        return Response.json(200, {"id": self.pixel_id, "name": "Sandbox pixel"})

    def handle(self, request: Request) -> Response:
        pixel = PIXEL_PATH.match(request.path)
        if pixel and request.method == "GET":
            return self._pixel(request, pixel.group(2))
        match = PATH.match(request.path)
        if not match:
            raise self._error(400, f"Unknown path components: {request.path}", kind="OAuthException", code=2500)
        if request.method != "POST":
            raise self._error(400, "Unsupported get request.", subcode=SUBCODES["no_object"],
                              kind="GraphMethodException")
        payload = self._payload(request)
        self._check_token(request.arg("access_token") or payload.get("access_token"))
        if match.group(2) != self.pixel_id:
            raise self._error(400, f"Unsupported post request. Object with ID '{match.group(2)}' does not exist, "
                                   "cannot be loaded due to missing permissions, or does not support this operation.",
                              subcode=SUBCODES["no_object"], kind="GraphMethodException")
        events = payload.get("data")
        if not isinstance(events, list) or not events:
            raise self._error(400, "Invalid parameter: the parameter data is required and must be a non-empty array",
                              subcode=SUBCODES["missing"])
        if len(events) > MAX_EVENTS:
            raise self._error(400, f"Invalid parameter: at most {MAX_EVENTS} events per request, got {len(events)}",
                              subcode=SUBCODES["too_many"])
        for i, event in enumerate(events):
            self._validate(i, event, request.now)
        test_event_code = payload.get("test_event_code")
        with self._lock:
            self._events += [{**event, "test_event_code": test_event_code} for event in events]
        return Response.json(200, {"events_received": len(events), "messages": [], "fbtrace_id": self._trace()})

    def _validate(self, i: int, event: object, now: datetime) -> None:
        """Raises the 400 that rejects the whole batch if event `i` is invalid."""
        def invalid(reason: str, subcode: str) -> HttpError:
            return self._error(400, f"Invalid parameter: event {i}: {reason}", subcode=SUBCODES[subcode])

        if not isinstance(event, dict):
            raise invalid("an event must be an object", "missing")
        for name in ("event_name", "event_time", "action_source"):
            if event.get(name) in (None, ""):
                raise invalid(f"the parameter {name} is required", "missing")
        if not isinstance(event["event_time"], int):
            raise invalid("event_time must be a Unix time in seconds", "missing")
        if event["event_time"] < (now - MAX_AGE).timestamp():
            raise invalid(f"event_time is more than {MAX_AGE.days} days in the past", "too_old")
        if event["event_time"] > (now + MAX_AHEAD).timestamp():
            raise invalid("event_time is in the future", "future")
        if event["action_source"] not in ACTION_SOURCES:
            raise invalid(f"action_source {event['action_source']!r} is not one of {sorted(ACTION_SOURCES)}", "missing")
        user_data = event.get("user_data")
        if not isinstance(user_data, dict) or not user_data:
            raise invalid("the parameter user_data is required", "missing")
        if event["action_source"] == "website":
            if not event.get("event_source_url"):
                raise invalid("event_source_url is required for website events", "missing")
            if not user_data.get("client_user_agent"):
                raise invalid("user_data.client_user_agent is required for website events", "missing")
        for name in HASHED_FIELDS:
            values = user_data.get(name)
            for value in values if isinstance(values, list) else [] if values is None else [values]:
                if not isinstance(value, str) or not SHA256_HEX.match(value):
                    raise invalid(f"user_data.{name} must be hashed with SHA-256 (64 hex characters)", "unhashed")
