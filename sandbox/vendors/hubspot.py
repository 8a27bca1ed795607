"""HubSpot CRM v3: contacts and deals, their search, contact upserts, and account details.

Contract (api-contracts.md section 4): `Authorization: Bearer <private-app token>`; list `limit` at most
100 with an `after` cursor in `paging.next`; property values are all strings; archived records only with
`archived=true`; merged-away contacts are gone (404 by id), their ids in the survivor's
`hs_merged_object_ids`; timestamps ISO-8601 in UTC with milliseconds; 414 when the `properties` query
string is too long. Search (`POST .../search`): filter groups ORed, filters ANDed, dates compared as epoch
milliseconds, `limit` at most 200, 400 once `after + limit` passes the 10,000 hard cap, never archived
rows, and a search index that sees a late update only some time after it happened. Rate limit (section
4.4): 100 requests per 10 seconds (Free/Starter private app), over it 429 `RATE_LIMIT` /
`TEN_SECONDLY_ROLLING`, with `Retry-After` only sometimes; search has its own 5 requests per second.
A contact's marketing touches up to the world's clock are its "latest source" properties (`hs_latest_source`:
the channel category; `_data_1`: the utm source; `_data_2`: the utm campaign, "" when none; `_timestamp`),
whose `propertiesWithHistory` hold one version per touch, newest first, like `lifecyclestage`'s.
The date-versioned paths (`/crm/objects/2026-03/...`) are aliases of the v3 ones.
"""

from __future__ import annotations

import bisect
import copy
import functools
import json
import math
import operator
import random
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sandbox.http import HttpError, Request, Response, int_arg
from sandbox.limits import Budget, LeakyBucket
from sandbox.store import Builder, Lookup, Row, Store, Table, whole
from sandbox.world import CrmRecord, Deal, Person, Touch, World, stable_token

NAME = "hubspot"
PORTAL_ID = 40_000_000
V3 = "/crm/v3/objects/"
DATED = "/crm/objects/2026-03/"  # the date-versioned alias of V3
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
              "pipeline"),
}
DATE_PROPERTIES = frozenset({"createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate",
                             "hs_latest_source_timestamp"})
# the "latest source" properties and how each is read off a touch
LATEST_SOURCE: dict[str, Callable[[Touch], str]] = {
    "hs_latest_source": lambda t: t.channel, "hs_latest_source_data_1": lambda t: t.source,
    "hs_latest_source_data_2": lambda t: t.campaign, "hs_latest_source_timestamp": lambda t: iso_ms(t.touched_at)}
NUMBER_PROPERTIES = frozenset({"hs_object_id", "amount"})
DEAL_STAGES = {"open": "presentationscheduled", "won": "closedwon", "lost": "closedlost"}
ASSOCIATION_TYPES = {("deals", "contacts"): "deal_to_contact", ("contacts", "deals"): "contact_to_deal"}
LIST_MAX_LIMIT = 100
SEARCH_MAX_LIMIT = 200
BATCH_MAX_INPUTS = 100  # batch read
BATCH_HISTORY_MAX_INPUTS = 50  # batch read with `propertiesWithHistory`
SEARCH_CAP = 10_000  # results one search query can page through
MAX_GROUPS, MAX_GROUP_FILTERS, MAX_FILTERS = 5, 10, 25
MAX_PROPERTIES_QUERY = 8 * 1024  # characters of `properties` in a URL before 414
BATCH_MAX = 100
SEARCH_RATE_LIMIT = Budget(size=5, leak_per_second=5.0)
# SQL over a stored record (sandbox/store.py): its archived flag, a property's value, and contacts' email lookup
ARCHIVED = "json_extract(body, '$.archived')"
PROPERTY = "json_extract(body, '$.properties.{}')"
EMAIL_INDEX = {"contacts": (f"normalized_email({PROPERTY.format('email')})",)}
COMPARE: dict[str, Callable[[object, object], bool]] = {
    "EQ": operator.eq, "NEQ": operator.ne, "GT": operator.gt, "GTE": operator.ge, "LT": operator.lt,
    "LTE": operator.le}
OPERATORS = frozenset(COMPARE) | {"BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _body(message: str, **fields: str) -> dict:
    return {"status": "error", "message": message, **fields,
            "correlationId": "00000000-0000-4000-8000-" + stable_token(message, length=12).lower()}


def _error(status: int, message: str, category: str) -> HttpError:
    return HttpError(Response.json(status, _body(message, category=category)))


def _invalid(message: str) -> HttpError:
    return _error(400, message, "VALIDATION_ERROR")


def _string(value: object) -> str:
    """A property value as HubSpot stores every one: a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _key(name: str, value: object) -> object:
    """A property value as search compares it: dates as epoch milliseconds, numbers as numbers, text
    case-insensitively."""
    text = _string(value).strip()
    try:
        if name in DATE_PROPERTIES:
            if text.lstrip("-").isdigit():
                return int(text)
            return round(datetime.fromisoformat(text).timestamp() * 1000)
        if name in NUMBER_PROPERTIES:
            return Decimal(text)
    except (ValueError, InvalidOperation):
        raise _invalid(f"Invalid value {text!r} for property {name}") from None
    return text.casefold()


def _record(object_id: str, properties: dict[str, str | None], created: datetime, updated: datetime,
            archived_at: datetime | None = None) -> dict:
    record = {"id": object_id, "properties": properties, "createdAt": iso_ms(created),
              "updatedAt": iso_ms(updated), "archived": archived_at is not None}
    if archived_at:
        record["archivedAt"] = iso_ms(archived_at)
    return record


class Hubspot:
    name = NAME
    rate_limit = Budget(size=100, leak_per_second=10.0)

    def __init__(self, world: World, store: Store | None = None, *, deferred: bool = False):
        self.world = world
        self.store = store or Store()
        self.store.function("normalized_email", normalize_email)
        self.store.function("date_ms", lambda value: _key("createdate", value))  # a date property as search keys it
        self._retry_after_rng = random.Random(f"{world.seed}/hubspot/retry-after")
        self.token = "pat-na1-sandbox-" + stable_token(world.seed, "hubspot", length=20)
        # search's own budget: None (not enforced, as in bench mode) or LeakyBucket(SEARCH_RATE_LIMIT)
        self.search_bucket: LeakyBucket | None = None
        self._lock = threading.Lock()
        self._received: list[dict] = []
        self.indexed_at: dict[str, datetime] = {}  # contact id -> when a late update reaches the search index
        # rendered once, into tables on disk (sandbox/store.py), each in id order; a write puts a new table in place
        self._building = {obj: Builder(self.store, ("id",)) for obj in ("contacts", "deals")}
        self._histories = Builder(self.store, ("id",))  # per contact, its properties' histories (`_history_row`)
        self._links = {obj: Builder(self.store, ("id",)) for obj in ("contacts", "deals")}  # associated ids, if any
        self._next_id = 1001  # merged-away ids are never given again
        if not deferred:
            for p in world.people:
                self.add(p)
            self.finish()

    def add(self, p: Person) -> None:
        """Render a person's records (sandbox/vendors/__init__.py, `built`): their contact (or their archived
        one), its histories and deals, and the associations between these."""
        contacts, deals = self._building["contacts"], self._building["deals"]
        if p.hubspot_contact_id:
            contacts.append(self._contact(p))
            self._histories.append(self._history_row(p))
            if p.hubspot_indexed_at:
                self.indexed_at[p.hubspot_contact_id] = p.hubspot_indexed_at
            linked = [d.deal_id for d in p.deals if d.vendor == NAME]
            if linked:
                self._links["contacts"].append({"id": p.hubspot_contact_id, "ids": linked})
            self._next_id = max(self._next_id, int(p.hubspot_contact_id) + 1)
        for r in p.crm_records:
            if r.vendor == NAME:
                self._next_id = max(self._next_id, int(r.contact_id) + 1)
                if r.kind == "archived":
                    contacts.append(self._archived_contact(r))
                    self._histories.append(self._history_row(r))
        for d in p.deals:
            if d.vendor == NAME:
                deals.append(self._deal(d))
                self._links["deals"].append({"id": d.deal_id, "ids": [p.hubspot_contact_id]})

    def finish(self) -> None:
        """Every person added: the tables, contacts and deals in id order."""
        self.records: dict[str, Table] = {obj: records.table("CAST(id AS INTEGER)", ("id", *EMAIL_INDEX.get(obj, ())))
                                          for obj, records in self._building.items()}
        self._histories_of = Lookup(self._histories.table(indexes=("id",)), "id", "history")
        self.links = {obj: Lookup(records.table(indexes=("id",)), "id", "ids") for obj, records in self._links.items()}
        del self._building, self._histories, self._links

    def enforce_endpoint_limits(self) -> None:
        """Faithful mode: search has its own budget on top of the account's."""
        self.search_bucket = LeakyBucket(SEARCH_RATE_LIMIT)
    def index(self, root: str) -> dict:
        return {"base_url": f"{root}/{NAME}", "credentials": {"access_token": self.token}}

    # --- the world's records in HubSpot's shape --------------------------------------------------
    def _contact(self, p: Person) -> dict:
        merged = [r.contact_id for r in p.crm_records if r.vendor == NAME and r.kind == "merged"]
        properties = {"createdate": iso_ms(p.created_at), "email": p.hubspot_email,
                      "firstname": p.first_name.title(), "lastname": p.last_name.title(),
                      "hs_object_id": p.hubspot_contact_id, "lastmodifieddate": iso_ms(p.hubspot_updated_at),
                      "lifecyclestage": p.lifecycle[-1][0], "hs_email_optout": _string(not p.accepts_marketing),
                      "hs_analytics_source": p.touches[0].channel,
                      "hs_merged_object_ids": ";".join(merged) or None, **self._latest_source(p)}
        return _record(p.hubspot_contact_id, properties, p.created_at, p.hubspot_updated_at)

    def _touches(self, p: Person) -> list[Touch]:
        """The person's touches up to the clock (later ones have not happened yet)."""
        return [t for t in p.touches if t.touched_at <= self.world.clock]

    def _latest_source(self, p: Person) -> dict[str, str]:
        """The latest-source properties of the person's newest touch up to the clock."""
        touches = self._touches(p)
        return {name: read(touches[-1]) for name, read in LATEST_SOURCE.items()} if touches else {}

    def _history_row(self, source: Person | CrmRecord) -> dict:
        """A contact's property histories, newest first, as `propertiesWithHistory` serves them: `lifecyclestage`
        (an archived contact's: it subscribed), and for a listed one its latest-source properties, one version
        per touch, stamped when it happened."""
        if isinstance(source, CrmRecord):  # archived
            first = {"value": "subscriber", "timestamp": iso_ms(source.created_at), "sourceType": "FORM",
                     "sourceId": None}
            return {"id": source.contact_id, "history": {"lifecyclestage": [first]}}
        sources = ["FORM"] + ["INTEGRATION" if stage == "customer" else "AUTOMATION_PLATFORM"
                              for stage, _ in source.lifecycle[1:]]
        touches = self._touches(source)
        return {"id": source.hubspot_contact_id, "history": {"lifecyclestage": [
            {"value": stage, "timestamp": iso_ms(at), "sourceType": kind, "sourceId": None}
            for (stage, at), kind in reversed(list(zip(source.lifecycle, sources, strict=True)))],
            **{name: [{"value": read(t), "timestamp": iso_ms(t.touched_at), "sourceType": "ANALYTICS",
                       "sourceId": None} for t in reversed(touches)] for name, read in LATEST_SOURCE.items()}}}

    def lifecycle_history(self, contact_id: str) -> list[dict] | None:
        """A contact's `lifecyclestage` history, newest first (None: not a contact of the world's)."""
        return self._histories_of.get(contact_id, {}).get("lifecyclestage")

    def source_history(self, contact_id: str, name: str) -> list[dict] | None:
        """The history of a listed contact's latest-source property `name` (None: not a listed contact of the
        world's)."""
        return self._histories_of.get(contact_id, {}).get(name) if name in LATEST_SOURCE else None

    def _archived_contact(self, r: CrmRecord) -> dict:
        p = self.world.person(r.person_id)
        properties = {"createdate": iso_ms(r.created_at), "email": r.email, "firstname": p.first_name.title(),
                      "lastname": p.last_name.title(), "hs_object_id": r.contact_id,
                      "lastmodifieddate": iso_ms(r.removed_at), "lifecyclestage": "subscriber"}
        return _record(r.contact_id, properties, r.created_at, r.removed_at, archived_at=r.removed_at)

    def _deal(self, d: Deal) -> dict:
        properties = {"amount": str(d.amount), "dealname": d.name, "dealstage": DEAL_STAGES[d.stage],
                      "pipeline": "default", "closedate": iso_ms(d.closed_at) if d.closed_at else None,
                      "createdate": iso_ms(d.created_at), "hs_lastmodifieddate": iso_ms(d.updated_at),
                      "hs_object_id": d.deal_id}
        return _record(d.deal_id, properties, d.created_at, d.updated_at, archived_at=d.archived_at)

    # --- what clients wrote and what the listings serve (the truth reads these) ------------------
    def received(self) -> dict[str, list[dict]]:
        """Every batch-upsert input as sent, and per email (normalized) the properties they leave, the
        later input winning."""
        with self._lock:
            raw = copy.deepcopy(self._received)
        latest: dict[str, dict[str, str]] = {}
        for item in raw:
            email = normalize_email(str(item["id"]))
            latest[email] = {**latest.get(email, {}),
                             **{k: _string(v) for k, v in (item.get("properties") or {}).items()}}
        return {"raw": raw, "deduplicated": [{"email": e, "properties": p} for e, p in latest.items()]}

    def served_counts(self) -> dict[str, int]:
        """How many records each default listing (without `archived=true`) serves."""
        return {obj: len(self._listed(obj, archived=False)) for obj in self.records}

    # --- rate limit and faults (every vendor has these) ----------------------------------------
    def rate_limited(self, retry_after: float) -> Response:
        """The 429 of the ten-secondly rolling limit; like HubSpot, `Retry-After` on about half of them."""
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if self._retry_after_rng.random() < 0.5 else {}
        return Response.json(429, _body("You have reached your ten_secondly_rolling limit.", errorType="RATE_LIMIT",
                                        policyName="TEN_SECONDLY_ROLLING"), headers)

    def usage_headers(self, used: int) -> dict[str, str]:
        return {"X-HubSpot-RateLimit-Max": str(self.rate_limit.size),
                "X-HubSpot-RateLimit-Remaining": str(max(0, self.rate_limit.size - used)),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(round(
                    1000 * self.rate_limit.size / self.rate_limit.leak_per_second))}

    def shiftable(self, request: Request) -> bool:
        """Never: `after` is a record id in an order by id (lists) or an offset into a listing that does
        not move while the world does not (search), which no reorder can make skip or repeat."""
        return False

    # --- HTTP ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise _error(401, "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                              "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
                              "oauth-overview", "INVALID_AUTHENTICATION")
        if request.method == "GET" and request.path == "/account-info/v3/details":
            return Response.json(200, {"portalId": PORTAL_ID + self.world.seed, "timeZone": "US/Eastern",
                                       "companyCurrency": "USD", "accountType": "STANDARD"})
        path = V3 + request.path[len(DATED):] if request.path.startswith(DATED) else request.path
        parts = path[len(V3):].split("/") if path.startswith(V3) else []
        if parts and parts[0] in self.records:
            obj, rest = parts[0], parts[1:]
            if request.method == "GET" and not rest:
                return self._list(request, obj)
            if request.method == "GET" and len(rest) == 1:
                return self._one(request, obj, rest[0])
            if request.method == "POST" and rest == ["search"]:
                return self._search(request, obj)
            if request.method == "POST" and rest == ["batch", "upsert"] and obj == "contacts":
                return self._upsert(request)
            if request.method == "POST" and rest == ["batch", "read"]:
                return self._batch_read(request, obj)
        raise _error(404, f"Unable to route {request.method} {request.path}", "OBJECT_NOT_FOUND")

    def _view(self, obj: str, record: Mapping, names: list[str], with_history: tuple[str, ...] | list[str] = (),
              associations: tuple[str, ...] | list[str] = ()) -> dict:
        """A record as a response shows it: the properties asked for, and history and associations if asked."""
        record = whole(record)
        out = {**record, "properties": {n: record["properties"].get(n) for n in names}}
        if with_history:
            histories = self._histories_of.get(record["id"]) if obj == "contacts" else None
            out["propertiesWithHistory"] = {n: self._history(record, n, histories) for n in with_history}
        linked = {other: self.links[obj].get(record["id"], []) for other in associations
                  if (obj, other) in ASSOCIATION_TYPES}
        if any(linked.values()):
            out["associations"] = {other: {"results": [{"id": i, "type": ASSOCIATION_TYPES[(obj, other)]}
                                                       for i in ids]} for other, ids in linked.items() if ids}
        return out

    @staticmethod
    def _history(record: dict, name: str, histories: dict | None) -> list[dict]:
        """A property's history: the world's, where it keeps one (`_history_row`), else its value as last set."""
        if histories and name in histories:
            return histories[name]
        value = record["properties"].get(name)
        return [] if value is None else [{"value": value, "timestamp": record["updatedAt"], "sourceType": "CRM_UI",
                                          "sourceId": None}]

    @staticmethod
    def _names(request: Request, name: str) -> list[str]:
        return [n for value in request.query.get(name, []) for n in value.split(",") if n]

    def _read_options(self, request: Request, obj: str) -> tuple[list[str], list[str], list[str]]:
        """The `properties`, `propertiesWithHistory` and `associations` of a GET; 414 if the URL is too long."""
        asked = sum(len(v) for name in ("properties", "propertiesWithHistory") for v in request.query.get(name, []))
        if asked > MAX_PROPERTIES_QUERY:
            raise HttpError(Response.json(414, _body("URI Too Long", category="URI_TOO_LONG")))
        names = self._names(request, "properties") or list(DEFAULT_PROPERTIES[obj])
        return names, self._names(request, "propertiesWithHistory"), self._names(request, "associations")

    def _list(self, request: Request, obj: str) -> Response:
        limit = int_arg(request, "limit", 10, _invalid)
        if not 1 <= limit <= LIST_MAX_LIMIT:
            raise _invalid(f"limit must be between 1 and {LIST_MAX_LIMIT}, got {limit}")
        after = int_arg(request, "after", 0, _invalid)
        archived = request.arg("archived", "false") == "true"
        names, with_history, associations = self._read_options(request, obj)
        listed = self._listed(obj, archived)
        start = bisect.bisect_right(listed, after, key=lambda r: int(r["id"]))
        page = [self._view(obj, r, names, with_history, associations) for r in listed[start:start + limit]]
        body: dict = {"results": page}
        if len(listed) - start > limit:
            cursor = page[-1]["id"]
            body["paging"] = {"next": {"after": cursor, "link": f"{request.root_url}/{NAME}{request.path}"
                                                                 f"?after={cursor}&limit={limit}"}}
        return Response.json(200, body)

    @functools.cached_property
    def _views(self) -> dict[tuple, tuple]:
        """Views of the records, built on first use and let go when a write puts new tables in place."""
        return {}

    def _listed(self, obj: str, archived: bool) -> Table:
        """The records the list endpoint serves (archived or not), in id order."""
        key = ("list", obj, archived)
        if key not in self._views:
            self._views[key] = self.records[obj].view(f"{ARCHIVED} = ?", (int(archived),))
        return self._views[key]

    def _get(self, obj: str, object_id: str) -> Row | None:
        found = self.records[obj].where("id = ?", (object_id,))
        return found[0] if found else None

    def _by_email(self, email: str) -> Row | None:
        """The listed contact with this email (normalized), if any."""
        found = self.records["contacts"].where(f"{EMAIL_INDEX['contacts'][0]} = ? AND {ARCHIVED} = 0",
                                               (normalize_email(email),))
        return found[0] if found else None

    def _one(self, request: Request, obj: str, object_id: str) -> Response:
        names, with_history, associations = self._read_options(request, obj)
        if obj == "contacts" and request.arg("idProperty") == "email":
            record = self._by_email(object_id)
        else:
            record = self._get(obj, object_id)
        if record is None or record["archived"] != (request.arg("archived", "false") == "true"):
            raise _error(404, "resource not found", "OBJECT_NOT_FOUND")
        return Response.json(200, self._view(obj, record, names, with_history, associations))

    def _batch_read(self, request: Request, obj: str) -> Response:
        """`POST /crm/v3/objects/{obj}/batch/read`: records by id (or `idProperty`), at most BATCH_MAX_INPUTS a
        request, BATCH_HISTORY_MAX_INPUTS when history is asked; ids not found come back as errors (207)."""
        try:
            body = request.json()
        except ValueError:
            raise _invalid("Invalid input JSON on line 1") from None
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and "id" in i for i in inputs):
            raise _invalid("inputs must be a list of objects with an id")
        with_history = list(body.get("propertiesWithHistory") or [])
        if with_history and len(inputs) > BATCH_HISTORY_MAX_INPUTS:
            raise _invalid(f"The maximum number of inputs supported in a batch request for property histories "
                           f"is {BATCH_HISTORY_MAX_INPUTS}. Please reduce the number of items and try again")
        if len(inputs) > BATCH_MAX_INPUTS:
            raise _invalid(f"The maximum number of inputs supported in a batch request is {BATCH_MAX_INPUTS}")
        by_email = obj == "contacts" and body.get("idProperty") == "email"
        archived = request.arg("archived", "false") == "true"
        names = list(body.get("properties") or DEFAULT_PROPERTIES[obj])
        found, missing = [], []
        for item in inputs:
            key = _string(item["id"])
            record = self._by_email(key) if by_email else self._get(obj, key)
            if record is None or record["archived"] != archived:
                missing.append(key)
            else:
                found.append(self._view(obj, record, names, with_history))
        stamp = request.now.isoformat().replace("+00:00", "Z")
        out: dict = {"status": "COMPLETE", "results": found, "startedAt": stamp, "completedAt": stamp}
        if missing:
            out |= {"numErrors": 1, "errors": [{
                "status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": missing},
                "message": f"Could not get some {obj.upper().rstrip('S')} objects, they may be deleted or not "
                           f"exist. Check that ids are valid."}]}
        return Response.json(207 if missing else 200, out)

    # --- search --------------------------------------------------------------------------------
    def _search(self, request: Request, obj: str) -> Response:
        if self.search_bucket is not None:
            wait, _ = self.search_bucket.take()
            if wait:
                return Response.json(429, _body("You have reached your secondly limit.", errorType="RATE_LIMIT",
                                                policyName="SECONDLY"),
                                     {"Retry-After": str(max(1, math.ceil(wait)))})
        try:
            body = request.json()
        except ValueError:
            raise _invalid("Invalid input JSON on line 1") from None
        if not isinstance(body, dict):
            raise _invalid("The search request must be a JSON object")
        limit, after = body.get("limit", 10), _string(body.get("after") or "0")
        if not isinstance(limit, int) or not 1 <= limit <= SEARCH_MAX_LIMIT or not after.isdigit():
            raise _invalid(f"limit must be 1 to {SEARCH_MAX_LIMIT} and after an offset, got {limit!r}, {after!r}")
        if int(after) + limit > SEARCH_CAP:
            raise _invalid(f"Paging past {SEARCH_CAP} results is not supported: after + limit = "
                           f"{int(after) + limit} (the maximum number of results a search can page through)")
        groups = body.get("filterGroups") or []
        self._check_filters(groups)
        now = request.now
        start = int(after)
        names = list(body.get("properties") or DEFAULT_PROPERTIES[obj])
        fast = self._search_by_range(obj, groups, body.get("sorts") or [], now, start, limit)
        if fast is not None:
            total, rows = fast
            out: dict = {"total": total, "results": [self._view(obj, r, names) for r in rows]}
            if start + limit < total:
                out["paging"] = {"next": {"after": str(start + limit),
                                          "link": f"{request.root_url}/{NAME}{request.path}?after={start + limit}"}}
            return Response.json(200, out)
        rows = [r for r in map(whole, self.records[obj])  # the scan: each record read whole, once
                if not r["archived"] and not (obj == "contacts" and now < self.indexed_at.get(r["id"], now))
                and (not groups or any(all(self._matches(r, f) for f in g.get("filters") or []) for g in groups))]
        rows.sort(key=lambda r: int(r["id"]))
        for sort in reversed(body.get("sorts") or []):
            name = sort.get("propertyName", "") if isinstance(sort, dict) else str(sort)
            rows.sort(key=lambda r, name=name: self._sort_key(r, name),
                      reverse=isinstance(sort, dict) and sort.get("direction") == "DESCENDING")
        out: dict = {"total": len(rows), "results": [self._view(obj, r, names) for r in rows[start:start + limit]]}
        if start + limit < len(rows):
            out["paging"] = {"next": {"after": str(start + limit),
                                      "link": f"{request.root_url}/{NAME}{request.path}?after={start + limit}"}}
        return Response.json(200, out)

    # Search by bisection: when the results are sorted ascending by a date property (then by id) and every filter
    # group bounds that property (and, at one value of it, the id), each group keeps one slice of the records sorted
    # that way, so `total` and the page come from bisection, not from a scan. This is how our source pages
    # (pipelines/sources/hubspot/helpers.py); any other search is answered by the scan below it.
    def _search_by_range(self, obj: str, groups: list[dict], sorts: list, now: datetime, start: int,
                         limit: int) -> tuple[int, list[dict]] | None:
        """(total, the page's records), or None when the search is not of that shape."""
        name = self._range_sort(sorts)
        if name is None:
            return None
        view, present = self._search_view(obj, name)
        slices = []
        for group in groups or [{}]:
            bounds = self._group_slice(view, present, name, group.get("filters") or [])
            if bounds is None:
                return None
            slices.append(bounds)
        merged: list[list[int]] = []
        for lo, hi in sorted(s for s in slices if s[0] < s[1]):
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        hidden = self._unindexed_positions(obj, name, view, present, now)
        count_hidden = lambda lo, hi: bisect.bisect_left(hidden, hi) - bisect.bisect_left(hidden, lo)  # noqa: E731
        total = sum(hi - lo - count_hidden(lo, hi) for lo, hi in merged)
        rows: list[dict] = []
        skip = start
        for lo, hi in merged:
            visible = hi - lo - count_hidden(lo, hi)
            if skip >= visible:
                skip -= visible
                continue
            position = lo + skip  # the skip-th visible position of the slice: step past the hidden ones before it
            while (moved := lo + skip + count_hidden(lo, position + 1)) != position:
                position = moved
            skip = 0
            for i in range(position, hi):
                if len(rows) == limit:
                    break
                if not hidden or count_hidden(i, i + 1) == 0:
                    rows.append(view[i])
            if len(rows) == limit:
                break
        return total, rows

    @staticmethod
    def _range_sort(sorts: list) -> str | None:
        """The date property of sorts `[P ascending]` or `[P ascending, hs_object_id ascending]`, else None."""
        names = []
        for sort in sorts:
            if isinstance(sort, dict):
                if sort.get("direction") == "DESCENDING":
                    return None
                names.append(sort.get("propertyName", ""))
            else:
                names.append(str(sort))
        if names and names[0] in DATE_PROPERTIES and names[1:] in ([], ["hs_object_id"]):
            return names[0]
        return None

    def _search_view(self, obj: str, name: str) -> tuple[Table, int]:
        """Search's records (never archived) sorted as `sorts` on `name` then id sort them: those with a value
        ascending by (value, id), then those without one by id; and how many have one."""
        key = ("search", obj, name)
        if key not in self._views:
            value = PROPERTY.format(name)  # `name` is a date property's (`_range_sort`)
            lacks = f"({value} IS NULL OR {value} = '')"
            order = f"{lacks}, CASE WHEN NOT {lacks} THEN date_ms({value}) END, CAST(id AS INTEGER)"
            records = self.records[obj]
            self._views[key] = (records.view(f"{ARCHIVED} = 0", (), order),
                                records.count(f"{ARCHIVED} = 0 AND NOT {lacks}"))
        return self._views[key]

    @staticmethod
    def _group_slice(view: list[dict], present: int, name: str, filters: list[dict]) -> tuple[int, int] | None:
        """The slice [lo, hi) of `view` that one filter group keeps, or None when it is no range of it."""
        if not filters:
            return 0, len(view)
        low, high, ids = None, None, []
        for f in filters:
            op, prop = f.get("operator", "EQ"), f["propertyName"]
            if prop == "hs_object_id" and op in ("EQ", "GT", "GTE", "LT", "LTE"):
                ids.append((op, _key(prop, f.get("value"))))
                continue
            if prop != name or op not in ("EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"):
                return None
            value = _key(name, f.get("value"))  # dates compare as whole epoch milliseconds
            lower = {"EQ": value, "GT": value + 1, "GTE": value, "BETWEEN": value}.get(op)
            upper = {"EQ": value, "LT": value - 1, "LTE": value}.get(op)
            if op == "BETWEEN":
                upper = _key(name, f.get("highValue"))
            low = lower if low is None or (lower is not None and lower > low) else low
            high = upper if high is None or (upper is not None and upper < high) else high
        if ids and (low is None or low != high):
            return None  # ids bound a slice only at one value of the date
        at = lambda r: (_key(name, r["properties"][name]), int(r["id"]))  # noqa: E731
        lo = 0 if low is None else bisect.bisect_left(view, (low,), 0, present, key=at)
        hi = present if high is None else bisect.bisect_left(view, (high + 1,), 0, present, key=at)
        for op, value in ids:
            if op in ("GT", "GTE", "EQ"):
                side = bisect.bisect_right if op == "GT" else bisect.bisect_left
                lo = max(lo, side(view, (low, value), 0, present, key=at))
            if op in ("LT", "LTE", "EQ"):
                side = bisect.bisect_left if op == "LT" else bisect.bisect_right
                hi = min(hi, side(view, (low, value), 0, present, key=at))
        return lo, max(lo, hi)

    def _unindexed_positions(self, obj: str, name: str, view: Table, present: int, now: datetime) -> list[int]:
        """Where in `view` the contacts stand whose late update the search index has not seen by `now`, ascending."""
        if obj != "contacts" or not self.indexed_at:
            return []
        key = ("unindexed", obj, name, now)
        if key not in self._views:
            unseen = [contact_id for contact_id, indexed in list(self.indexed_at.items()) if now < indexed]
            self._views[key] = view.positions("t.id IN (SELECT value FROM json_each(?))", (json.dumps(unseen),))
        return self._views[key]

    @staticmethod
    def _check_filters(groups: object) -> None:
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise _invalid("filterGroups must be a list of objects with filters")
        counts = [len(g.get("filters") or []) for g in groups]
        if len(groups) > MAX_GROUPS or any(n > MAX_GROUP_FILTERS for n in counts) or sum(counts) > MAX_FILTERS:
            raise _invalid(f"At most {MAX_GROUPS} filterGroups, {MAX_GROUP_FILTERS} filters in a group and "
                           f"{MAX_FILTERS} filters in all are allowed")
        for f in (f for g in groups for f in g.get("filters") or []):
            if not isinstance(f, dict) or not f.get("propertyName") or f.get("operator", "EQ") not in OPERATORS:
                raise _invalid(f"Invalid filter {f!r}: operators are {', '.join(sorted(OPERATORS))}")

    @staticmethod
    def _matches(record: dict, f: dict) -> bool:
        name, op = f["propertyName"], f.get("operator", "EQ")
        value = record["properties"].get(name)
        present = value not in (None, "")
        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            return present == (op == "HAS_PROPERTY")
        if not present:
            return op in ("NEQ", "NOT_IN")
        key = _key(name, value)
        if op in ("IN", "NOT_IN"):
            return (key in {_key(name, v) for v in f.get("values") or []}) == (op == "IN")
        if op == "BETWEEN":
            return _key(name, f.get("value")) <= key <= _key(name, f.get("highValue"))
        return COMPARE[op](key, _key(name, f.get("value")))

    @staticmethod
    def _sort_key(record: dict, name: str) -> tuple:
        value = record["properties"].get(name)
        return (1, "") if value in (None, "") else (0, _key(name, value))

    # --- writes --------------------------------------------------------------------------------
    def _upsert(self, request: Request) -> Response:
        """`POST /crm/v3/objects/contacts/batch/upsert`: create or update contacts by email."""
        try:
            body = request.json()
        except ValueError:
            raise _invalid("Invalid input JSON on line 1") from None
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= BATCH_MAX:
            raise _invalid(f"inputs must be a list of 1 to {BATCH_MAX} objects")
        for item in inputs:
            if not (isinstance(item, dict) and item.get("idProperty") == "email"
                    and "@" in _string(item.get("id")) and isinstance(item.get("properties") or {}, dict)):
                raise _invalid(f"Property values were not valid: each input needs idProperty 'email', an email "
                               f"id and properties, got {item!r}")
        results, changed, added = [], {}, {}  # position -> record; email -> a new record
        with self._lock:
            now, contacts = request.now, self.records["contacts"]
            for item in inputs:
                self._received.append(copy.deepcopy(item))
                email = normalize_email(_string(item["id"]))
                properties = {k: _string(v) for k, v in (item.get("properties") or {}).items()}
                existing = added.get(email)
                position = None
                if existing is None:
                    found = self._by_email(email)
                    position = None if found is None else contacts.position("id = ?", (found["id"],))
                    existing = changed.get(position) or (None if found is None else whole(found))
                if existing:
                    properties = {**existing["properties"], **properties, "lastmodifieddate": iso_ms(now)}
                    record = {**existing, "properties": properties, "updatedAt": iso_ms(now)}
                else:
                    contact_id, self._next_id = str(self._next_id), self._next_id + 1
                    properties = {"createdate": iso_ms(now), **properties, "email": email,
                                  "hs_object_id": contact_id, "lastmodifieddate": iso_ms(now)}
                    record = _record(contact_id, properties, now, now)
                if position is None:
                    added[email] = record  # new ids are the highest: appended, the table stays in id order
                else:
                    changed[position] = record
                results.append({**record, "new": not existing})
            self.records["contacts"] = contacts.edit(changed, added.values())
            self._views.clear()  # views of the table it replaced
        started = iso_ms(now)
        return Response.json(200, {"status": "COMPLETE", "results": results, "startedAt": started,
                                   "completedAt": started})
