"""The one HTTP layer every source uses: auth headers, retries with backoff, error translation,
redaction, and the three pagination styles the vendors use (offset, `Link` header, cursor in body).

A vendor's folder under `pipelines/sources/` holds only what is truly that vendor's; everything that
talks HTTP goes through `VendorClient`.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import requests

from pipelines.accounts import current_account, setting_name

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
REDACTED = "***"
SECRET_QUERY_KEYS = ("secret", "token", "key", "password", "signature")


class VendorError(RuntimeError):
    """A request a vendor refused or that kept failing: says who, where, what came back and what to do.

    The message never holds a credential: the URL is logged without its secret query values and every
    configured secret is masked out of the vendor's reply.
    """

    def __init__(self, vendor: str, method: str, url: str, status: int | None, detail: str, hint: str):
        self.vendor, self.method, self.url, self.status = vendor, method, url, status
        self.detail, self.hint = detail, hint
        where = f"{method} {url}"
        got = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{vendor}: {where} failed with {got}: {detail}. {hint}")

    def __reduce__(self):  # made again from its parts when it crosses from an extract's process (apart.py)
        return type(self), (self.vendor, self.method, self.url, self.status, self.detail, self.hint), self.__dict__


class Throttle:
    """Client-side pacing to a vendor's budget (requests per second, with a burst), so the vendor's
    limit is respected before it is hit; shared by every thread using one client."""

    def __init__(self, per_second: float | None, burst: int = 1):
        self.interval = 1.0 / per_second if per_second else 0.0
        self.burst = max(1, burst)
        self._next_free = 0.0  # the full burst is available at first
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            # a burst's worth of credit at most, then one request per interval
            self._next_free = max(self._next_free, now - self.interval * (self.burst - 1))
            delay = self._next_free - now
            self._next_free += self.interval
        if delay > 0:
            time.sleep(delay)


@dataclass
class VendorClient:
    """An authenticated session for one vendor account.

    `headers` carry the credential; `secrets` lists every secret value so it can be masked out of
    errors and logs; `credential_setting` names the configuration key a user fixes on 401/403;
    `requests_per_second` and `burst` pace calls to the vendor's budget (None: unpaced).
    """

    vendor: str
    base_url: str
    headers: dict[str, str]
    secrets: list[str]
    credential_setting: str
    timeout: float = 30.0
    # how long one call may keep retrying before the run fails (JOURNEY_HTTP_RETRY_SECONDS)
    max_retry_seconds: float = field(default_factory=lambda: float(os.environ.get("JOURNEY_HTTP_RETRY_SECONDS", 120)))
    requests_per_second: float | None = None
    burst: int = 1
    session: requests.Session = field(default_factory=requests.Session)
    pages_fetched: int = 0

    def __post_init__(self) -> None:
        # JOURNEY_HTTP_PACING=off lifts client-side pacing: only for a server without limits (the sandbox in
        # bench mode, benchmarks/bench.py); against a real vendor it would just meet its 429s
        paced = os.environ.get("JOURNEY_HTTP_PACING", "on").strip().lower() not in ("off", "0", "false", "no")
        self.throttle = Throttle(self.requests_per_second if paced else None, self.burst)
        self.base_url = self.base_url.rstrip("/")
        # one of several accounts (pipelines/accounts.py): a refused credential names that account's key
        self.credential_setting = setting_name(self.credential_setting, current_account(self.vendor))
        self.session.headers.update({"Accept": "application/json", "User-Agent": "customer-journey-elt/0.1"})
        self.session.headers.update(self.headers)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    def public_url(self, url: str, params: dict | None = None) -> str:
        """The request URL as it may be shown: secret-looking query values replaced."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True) + list((params or {}).items())
        safe = [(k, REDACTED if any(s in k.lower() for s in SECRET_QUERY_KEYS) else v) for k, v in query]
        return self.redact(urlunsplit(parts._replace(query=urlencode(safe, safe="[]:,"))))

    def request_json(self, method: str, path: str, params: dict | None = None,
                     json: Any = None) -> tuple[Any, requests.Response]:
        """One call, retried on 429, 5xx, timeouts, resets and truncated bodies within a bounded time."""
        url = self.url(path)
        deadline = time.monotonic() + self.max_retry_seconds
        attempt = 0
        while True:
            attempt += 1
            problem: str
            wait: float | None = None
            self.throttle.wait()
            try:
                response = self.session.request(method, url, params=params, json=json, timeout=self.timeout)
                if response.status_code not in RETRYABLE_STATUS:
                    if response.status_code >= 400:
                        raise self._refused(method, url, params, response)
                    # a truncated body fails here and is retried; 204 (GA4's collect) has no body by design.
                    # orjson parses a page in about a third of the time `requests`' own parser takes
                    payload = None if response.status_code == 204 else orjson.loads(response.content)
                    self.pages_fetched += 1
                    return payload, response
                problem = f"HTTP {response.status_code}"
                wait = _retry_after(response)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    orjson.JSONDecodeError) as error:
                problem = type(error).__name__
            backoff = wait if wait is not None else min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random())
            if time.monotonic() + backoff > deadline:
                raise VendorError(self.vendor, method, self.public_url(url, params), None,
                                  f"still failing after {attempt} attempts ({problem})",
                                  f"The vendor or the network is failing; retry later. Retries are bounded "
                                  f"by {self.max_retry_seconds:.0f}s.")
            log.warning("%s: %s %s: %s, retry %d in %.1fs", self.vendor, method,
                        self.public_url(url, params), problem, attempt, backoff)
            time.sleep(backoff)

    def get(self, path: str, params: dict | None = None) -> tuple[Any, requests.Response]:
        return self.request_json("GET", path, params=params)

    def _refused(self, method: str, url: str, params: dict | None, response: requests.Response) -> VendorError:
        detail = self.redact(response.text[:500].strip()) or response.reason
        if response.status_code in (401, 403):
            hint = (f"Check the credential in `{self.credential_setting}` (environment variable "
                    f"{_env_name(self.credential_setting)} or .dlt/secrets.toml): it is missing, wrong, "
                    f"expired or lacks a scope.")
        elif response.status_code == 404:
            hint = "Check the base URL and API version configured for this vendor."
        else:
            hint = "The request was refused; the reply above says why."
        return VendorError(self.vendor, method, self.public_url(url, params), response.status_code, detail, hint)


def _env_name(setting: str) -> str:
    return setting.replace(".", "__").upper()


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


# --- pagination styles ---------------------------------------------------------------------------
def offset_pages(client: VendorClient, path: str, items_key: str, params: dict,
                 limit: int) -> Iterator[list[dict]]:
    """`limit` + zero-based `offset` until a short page (ActiveCampaign)."""
    offset = 0
    while True:
        payload, _ = client.get(path, {**params, "limit": limit, "offset": offset})
        items = payload.get(items_key) or []
        if items:
            yield items
        total = int(payload.get("meta", {}).get("total") or 0)
        offset += len(items)
        if not items or offset >= total:
            return


def link_header_pages(client: VendorClient, path: str, items_key: str, params: dict) -> Iterator[list[dict]]:
    """Follow `Link: <...>; rel="next"` exactly as given, dropping our own filters after page one (Shopify)."""
    url: str | None = client.url(path)
    query: dict | None = params
    while url:
        payload, response = client.get(url, query)
        items = payload.get(items_key) or []
        if items:
            yield items
        url = response.links.get("next", {}).get("url")
        query = None


def cursor_pages(client: VendorClient, path: str, params: dict, items_of: Callable[[Any], list[dict]],
                 next_params: Callable[[Any, list[dict]], dict | None]) -> Iterator[list[dict]]:
    """A cursor carried in the body: `next_params(payload, items)` gives the next page's extra
    parameters, or None on the last page (Stripe's `starting_after`, HubSpot's `paging.next.after`)."""
    extra: dict = {}
    while True:
        payload, _ = client.get(path, {**params, **extra})
        items = items_of(payload)
        if items:
            yield items
        following = next_params(payload, items)
        if following is None:
            return
        extra = following
