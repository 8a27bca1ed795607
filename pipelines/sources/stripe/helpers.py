"""Stripe's own quirks: lists paged by `starting_after`, no "updated since" filter (updates come only
through `/v1/events`, kept 30 days), and the server's clock read from the `Date` of its responses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import dlt
import requests

from pipelines.http import VendorClient, cursor_pages
from pipelines.incremental import parse_time

EVENTS_CURSOR = "events_cursor"  # resource-state key: events are read completely up to this server time


def next_after(payload: dict, items: list[dict]) -> dict | None:
    return {"starting_after": items[-1]["id"]} if payload.get("has_more") and items else None


def server_time(response: requests.Response) -> datetime | None:
    """The moment a response's `Date` header names, in UTC, or None without a usable one."""
    raw = response.headers.get("Date")
    try:
        return parse_time(parsedate_to_datetime(raw)) if raw else None
    except (TypeError, ValueError):
        return None


class ServerClock:
    """Stripe's clock as its responses tell it: windows and event retention are judged against the
    server's `Date`, never against this machine's clock."""

    def __init__(self, client: VendorClient):
        self.client = client
        self.latest: datetime | None = None
        client.session.hooks["response"].append(self._seen)

    def _seen(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        moment = server_time(response)
        if moment is not None:
            self.latest = moment

    def now(self) -> datetime:
        if self.latest is None:
            self.client.get("v1/account")
        if self.latest is None:
            raise RuntimeError(f"stripe: {self.client.base_url} answers without a `Date` header; the events "
                               f"cursor cannot be judged against the server's clock")
        return self.latest


class Listing:
    """One list read, newest first by `starting_after`; remembers the server's time at its first page,
    which is how far the read is complete (anything newer shows up in events or the next read)."""

    def __init__(self, client: VendorClient, clock: ServerClock, path: str, params: dict):
        self.client, self.clock, self.path, self.params = client, clock, path, params
        self.started_at: datetime | None = None

    def _items(self, payload: dict) -> list[dict]:
        if self.started_at is None:
            self.started_at = self.clock.latest
        return payload["data"]

    def __iter__(self) -> Iterator[list[dict]]:
        return cursor_pages(self.client, self.path, self.params, self._items, next_after)


def events_expired(cursor: datetime, server_now: datetime, retention: timedelta) -> bool:
    """Whether events after `cursor` may already be gone: Stripe lists only `retention` back from now."""
    return cursor < server_now - retention


@dataclass
class EventsCursor:
    """How far a table's events have been read, in resource state; like `Cursor` it moves only when
    the resource has yielded its last page. A table never read in full yet has none; a state saved
    before events were read starts from that table's `created` high-water mark."""

    overlap: timedelta

    def __post_init__(self) -> None:
        self.state = dlt.current.resource_state()
        self.covered: datetime | None = None

    @property
    def saved(self) -> datetime | None:
        value = self.state.get(EVENTS_CURSOR) or self.state.get("high_water")
        return parse_time(value) if value else None

    @property
    def since(self) -> datetime | None:
        saved = self.saved
        return saved - self.overlap if saved else None

    def cover(self, moment: datetime | None) -> None:
        """Events are complete up to `moment` (the server time of a finished read's first page)."""
        if moment is not None and (self.covered is None or moment > self.covered):
            self.covered = moment

    def commit(self) -> None:
        saved = self.state.get(EVENTS_CURSOR)
        if self.covered is not None and (not saved or self.covered > parse_time(saved)):
            self.state[EVENTS_CURSOR] = self.covered.isoformat()


def latest_objects(events: Iterable[dict], kind: str) -> dict[str, dict]:
    """Each object's newest state among `events`, as a row: `data.object` (in the event's own API
    version), marked `deleted` by a `*.deleted` event. Events about other objects (a customer's
    subscription, a charge's dispute) are skipped."""
    newest: dict[str, tuple[int, dict]] = {}
    for event in events:
        obj = (event.get("data") or {}).get("object") or {}
        if obj.get("object") != kind or not obj.get("id"):
            continue
        created = int(event.get("created") or 0)
        if obj["id"] in newest and newest[obj["id"]][0] >= created:  # listed newest first
            continue
        row = {**obj, "deleted": event.get("type", "").endswith(".deleted") or bool(obj.get("deleted"))}
        newest[obj["id"]] = (created, row)
    return {object_id: row for object_id, (_, row) in newest.items()}
