"""The small HTTP vocabulary every sandboxed vendor shares: requests, responses, JSON errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import parse_qs

from sandbox.store import plain


@dataclass
class Request:
    method: str
    path: str  # the path below the vendor's prefix, e.g. "/admin/api/2025-01/orders.json"
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    root_url: str  # "http://127.0.0.1:PORT"
    now: datetime  # the sandbox's clock as the request arrived: the "now" of every vendor's time windows
    shift: bool = False  # fault injection: reorder the listing before cutting this page (sandbox/faults.py)

    @classmethod
    def parse_query(cls, raw: str) -> dict[str, list[str]]:
        return parse_qs(raw, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> object:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(payload, separators=(",", ":"), default=plain).encode()
        return cls(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


class HttpError(Exception):
    """Raised inside a vendor handler to answer with that vendor's own error response."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def int_arg(request: Request, name: str, default: int, error: callable) -> int:
    """An integer query parameter, or the vendor's own 400 through `error(message)`."""
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise error(f"Invalid integer: {name}={raw}") from None
