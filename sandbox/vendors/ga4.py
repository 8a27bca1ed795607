"""GA4 Measurement Protocol: `POST /mp/collect` and its validation twin `POST /debug/mp/collect`.

Contract (api-contracts.md section 5): `measurement_id` and `api_secret` in the query string, a JSON body
`{client_id, user_id?, timestamp_micros?, user_properties?, consent?, events: [{name, params}]}`.
`/mp/collect` always answers 204 with an empty body, whatever it is sent; it records the events of a
request whose credentials are right and whose body is valid, and silently drops anything else, as Google
does. `/debug/mp/collect` records nothing and answers `{"validationMessages": [...]}` (empty when valid),
enforcing the documented limits below; it does not check `api_secret`. Backdating is measured against
the sandbox's clock. Google documents no rate limit for the protocol: the budget is a generous no-op.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta

from sandbox.http import HttpError, Request, Response
from sandbox.limits import Budget
from sandbox.received import first_per_key
from sandbox.world import World, stable_token

NAME = "ga4"
MAX_BODY_BYTES = 130 * 1024
MAX_EVENTS = 25
MAX_PARAMS = 25
MAX_USER_PROPERTIES = 25
MAX_NAME_LENGTH = 40
MAX_VALUE_LENGTH = 100
MAX_BACKDATE = timedelta(hours=72)
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESERVED_PREFIXES = ("firebase_", "ga_", "google_", "gtag.")  # a leading "_" already fails NAME_PATTERN
RESERVED_EVENT_NAMES = frozenset({
    "ad_activeview", "ad_click", "ad_exposure", "ad_query", "ad_reward", "adunit_exposure", "app_background",
    "app_clear_data", "app_exception", "app_remove", "app_store_refund", "app_store_subscription_cancel",
    "app_store_subscription_convert", "app_store_subscription_renew", "app_update", "app_upgrade",
    "dynamic_link_app_open", "dynamic_link_app_update", "dynamic_link_first_open", "error", "first_open",
    "first_visit", "in_app_purchase", "notification_dismiss", "notification_foreground", "notification_open",
    "notification_receive", "os_update", "session_start", "session_start_with_rollout", "user_engagement"})
# Events Google deduplicates by their `transaction_id` param (with the event name).
TRANSACTION_EVENTS = frozenset({"purchase", "refund"})


def _message(field_path: str, description: str, code: str) -> dict:
    return {"fieldPath": field_path, "description": description, "validationCode": code}


def _name_messages(name: object, field_path: str, what: str, reserved: frozenset[str] = frozenset()) -> list[dict]:
    if not isinstance(name, str) or not name:
        return [_message(field_path, f"{what} name is required.", "VALUE_REQUIRED")]
    if len(name) > MAX_NAME_LENGTH:
        return [_message(field_path, f"{what} has name [{name}] longer than {MAX_NAME_LENGTH} characters.",
                         "VALUE_OUT_OF_BOUNDS")]
    if not NAME_PATTERN.match(name):
        return [_message(field_path, f"{what} has invalid name [{name}]. Names must start with an alphabetic "
                                     "character and contain only alphanumeric characters and underscores.",
                         "NAME_INVALID")]
    if name.startswith(RESERVED_PREFIXES) or name in reserved:
        return [_message(field_path, f"{what} has name [{name}] which is reserved.", "NAME_RESERVED")]
    return []


def validate(body: bytes, now: datetime) -> list[dict]:
    """The validation messages `/debug/mp/collect` answers for `body` at `now`; empty if it is valid."""
    if len(body) > MAX_BODY_BYTES:
        return [_message("", f"Post body is larger than the limit of {MAX_BODY_BYTES} bytes.", "VALUE_OUT_OF_BOUNDS")]
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return [_message("", "Unable to parse Measurement Protocol JSON payload.", "VALUE_INVALID")]
    messages = []
    if not isinstance(payload.get("client_id"), str) or not payload["client_id"]:
        messages.append(_message("client_id", "Measurement requires a client_id.", "VALUE_REQUIRED"))
    oldest = int((now - MAX_BACKDATE).timestamp() * 1_000_000)
    if "timestamp_micros" in payload:
        stamp = payload["timestamp_micros"]
        if not isinstance(stamp, int) or not oldest <= stamp <= int(now.timestamp() * 1_000_000) + 60_000_000:
            messages.append(_message("timestamp_micros", f"Measurement timestamp_micros [{stamp}] must be within the "
                                     f"last {MAX_BACKDATE.total_seconds() / 3600:g} hours.", "VALUE_INVALID"))
    properties = payload.get("user_properties") or {}
    if not isinstance(properties, dict) or len(properties) > MAX_USER_PROPERTIES:
        messages.append(_message("user_properties", f"Measurement may have at most {MAX_USER_PROPERTIES} "
                                 "user_properties.", "EXCEEDED_MAX_ENTITIES"))
    events = payload.get("events")
    if not isinstance(events, list) or not events:
        return messages + [_message("events", "Measurement requires at least one event.", "VALUE_REQUIRED")]
    if len(events) > MAX_EVENTS:
        messages.append(_message("events", f"Measurement has {len(events)} events; at most {MAX_EVENTS} are allowed.",
                                 "EXCEEDED_MAX_ENTITIES"))
    for i, event in enumerate(events):
        messages += _event_messages(i, event)
    return messages


def _event_messages(i: int, event: object) -> list[dict]:
    path = f"events[{i}]"
    if not isinstance(event, dict):
        return [_message(path, f"Event at index: [{i}] is not an object.", "VALUE_INVALID")]
    messages = _name_messages(event.get("name"), f"{path}.name", f"Event at index: [{i}]", RESERVED_EVENT_NAMES)
    params = event.get("params", {})
    if not isinstance(params, dict):
        return messages + [_message(f"{path}.params", f"Event at index: [{i}] has params that are not an object.",
                                    "VALUE_INVALID")]
    if len(params) > MAX_PARAMS:
        messages.append(_message(f"{path}.params", f"Event at index: [{i}] has {len(params)} params; at most "
                                 f"{MAX_PARAMS} are allowed.", "EXCEEDED_MAX_ENTITIES"))
    for name, value in params.items():
        messages += _name_messages(name, f"{path}.params.{name}", f"Param of event at index: [{i}]")
        if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
            messages.append(_message(f"{path}.params.{name}", f"Event at index: [{i}] has param [{name}] with a value "
                                     f"longer than {MAX_VALUE_LENGTH} characters.", "VALUE_OUT_OF_BOUNDS"))
    return messages


class Ga4:
    name = NAME
    rate_limit = Budget(size=10_000, leak_per_second=10_000.0)

    def __init__(self, world: World):
        self.world = world
        self.measurement_id = "G-" + stable_token(world.seed, "ga4", "measurement", length=10).upper()
        self.api_secret = stable_token(world.seed, "ga4", "secret", length=22)
        self._events: list[dict] = []  # every recorded event, with its request's fields beside it
        self._lock = threading.Lock()

    def index(self, root: str) -> dict:
        return {"base_url": f"{root}/{NAME}",
                "credentials": {"measurement_id": self.measurement_id, "api_secret": self.api_secret}}

    def served_counts(self, now: datetime | None = None) -> dict[str, int]:
        return {}  # nothing to list

    def received(self) -> dict[str, list]:
        """Recorded events, each `{client_id, user_id?, ..., name, params}`; deduplicated keeps the first
        purchase or refund per (name, transaction_id), and every other event."""
        with self._lock:
            raw = list(self._events)

        def key_of(event: dict) -> tuple[str, str] | None:
            transaction_id = (event.get("params") or {}).get("transaction_id")
            return (event["name"], str(transaction_id)) if event["name"] in TRANSACTION_EVENTS and transaction_id \
                else None

        return first_per_key(raw, key_of)

    # --- rate limit and faults (every vendor has these) ----------------------------------------
    def rate_limited(self, retry_after: float) -> Response:
        """Google's standard quota error; the Measurement Protocol documents none of its own."""
        return Response.json(429, {"error": {"code": 429, "message": "Quota exceeded.",
                                             "status": "RESOURCE_EXHAUSTED"}})

    def usage_headers(self, used: int) -> dict[str, str]:
        return {}

    def shiftable(self, request: Request) -> bool:
        return False  # nothing to page through

    # --- HTTP ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path not in ("/mp/collect", "/debug/mp/collect"):
            raise HttpError(Response(404, b"Not Found", {"Content-Type": "text/plain"}))
        if request.method != "POST":
            raise HttpError(Response(405, b"Method Not Allowed", {"Content-Type": "text/plain", "Allow": "POST"}))
        messages = validate(request.body, request.now)
        if request.arg("measurement_id", "") != self.measurement_id:
            messages.insert(0, _message("measurement_id", "Unknown measurement_id.", "VALUE_INVALID"))
        if request.path == "/debug/mp/collect":
            return Response.json(200, {"validationMessages": messages})
        if not messages and request.arg("api_secret", "") == self.api_secret:
            payload = json.loads(request.body)
            context = {k: v for k, v in payload.items() if k != "events"}
            with self._lock:
                self._events += [{**context, **event} for event in payload["events"]]
        return Response(204)
