"""ActiveCampaign API v3: contacts, deals, the Shopify connection's ecommerce customers and orders, and
contact upserts (`POST /contact/sync`).

Contract (api-contracts.md section 1): `Api-Token` header; `limit` (default 20, capped at 100) and a
zero-based `offset` on every list; `meta.total` is a string; ids and most numbers are strings; timestamps
carry the account's local UTC offset; `filters[updated_after]` / `filters[updated_before]` are dates,
inclusive, on contacts' `udate` and deals' `mdate`; ecommerce lists have no updated filter (unknown
filters are ignored, as clients see); ecommerce amounts and deal values are integer cents. A deleted
contact is simply no longer listed. Rate limit (section 1.4): 5 requests per second per account, over it
429 with `Retry-After`.
"""

from __future__ import annotations

import bisect
import copy
import functools
import math
import re
import threading
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from sandbox.drawn import Drawn, whole
from sandbox.http import HttpError, Request, Response, int_arg
from sandbox.limits import Budget
from sandbox.world import Deal, Order, Person, World, stable_token

NAME = "activecampaign"
ACCOUNT_TZ = ZoneInfo("America/Chicago")
MAX_LIMIT = 100
ROUTES = {"/api/3/contacts": "contacts", "/api/3/deals": "deals", "/api/3/ecomOrders": "ecomOrders",
          "/api/3/ecomCustomers": "ecomCustomers"}  # list path -> resource
UPDATED = {"contacts": "udate", "deals": "mdate"}  # resources with updated filters -> the field they filter
DEAL_STATUS = {"open": "0", "won": "1", "lost": "2"}
DEAL_STAGE = {"open": "2", "won": "3", "lost": "3"}  # "In Contact", "Closed" of the default pipeline
CONNECTION_ID = "1"  # the Shopify connection
SYNC_LAG = timedelta(minutes=3)  # how long after a shop change the connection syncs it
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
INVALID_EMAIL = {"title": "Contact Email Address is not valid.", "detail": "", "code": "email_invalid",
                 "error": "must_be_valid_email_address", "source": {"pointer": "/data/attributes/email"}}
SYNC_FIELDS = ("firstName", "lastName", "phone")
DATED_KEPT = 8  # selections by updated date kept, so the pages of one listing do not filter the list again


def local(moment: datetime) -> str:
    return moment.astimezone(ACCOUNT_TZ).isoformat(timespec="seconds")


def utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_EVEN))


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _error(status: int, message: str) -> HttpError:
    return HttpError(Response.json(status, {"message": message}))


def _invalid(message: str) -> HttpError:
    return _error(422, message)


class _Rows(Sequence):
    """The records at `positions` (a range or a list of indices) of `records`, read-only; back to front if
    `reverse`. Only what a page slices out of it is materialized."""

    def __init__(self, records: list[dict], positions: Sequence[int], reverse: bool = False):
        self.records, self.positions, self.reverse = records, positions, reverse

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i):  # noqa: ANN001, ANN204 (an int or a slice, as a list takes)
        n = len(self.positions)
        if isinstance(i, slice):
            return [self[j] for j in range(n)[i]]
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self.records[self.positions[n - 1 - i if self.reverse else i]]


class Activecampaign:
    name = NAME
    rate_limit = Budget(size=5, leak_per_second=5.0)

    def __init__(self, world: World):
        self.world = world
        self.token = stable_token(world.seed, "activecampaign", length=40).lower()
        self._lock = threading.Lock()
        self._received: list[dict] = []
        self._field_values: dict[str, dict[str, str]] = {}  # contact id -> field -> value, from syncs
        members = sorted((p for p in world.people if p.activecampaign_contact_id),
                         key=lambda p: int(p.activecampaign_contact_id))
        deals = sorted((d for p in world.people for d in p.deals if d.vendor == NAME), key=lambda d: int(d.deal_id))
        orders = world.orders(deleted=True)  # the shop connection keeps what it synced: ids never shift
        buyers = list(dict.fromkeys(o.person_id for o in orders))  # in order of their first order
        customer_ids = {pid: str(n) for n, pid in enumerate(buyers, start=1)}
        # drawn when served (sandbox/drawn.py), keeping what listings and writes look records up by
        self.lists = {
            "contacts": [Drawn({"id": p.activecampaign_contact_id, "email": p.activecampaign_email,
                                "udate": local(p.activecampaign_updated_at)}, self._contact, p) for p in members],
            "deals": [Drawn({"id": d.deal_id, "mdate": local(d.updated_at)}, self._deal, d) for d in deals],
            "ecomOrders": [Drawn({"id": str(n)}, self._order, (n, o, customer_ids[o.person_id]))
                           for n, o in enumerate(orders, 1)],
            "ecomCustomers": [Drawn({"id": customer_ids[pid]}, self._customer, (customer_ids[pid], world.person(pid)))
                              for pid in buyers]}
        self._emails = {normalize_email(c["email"]): c["id"] for c in self.lists["contacts"]}
        taken = [int(p.activecampaign_contact_id) for p in members] + [
            int(r.contact_id) for r in world.crm_records() if r.vendor == NAME]
        self._next_id = 1 + max(taken, default=0)  # deleted contacts' ids are never given again

    def index(self, root: str) -> dict:
        return {"base_url": f"{root}/{NAME}/api/3", "credentials": {"api_token": self.token}}

    # --- the world's records in ActiveCampaign's shape -----------------------------------------
    @staticmethod
    def _contact_record(contact_id: str, email: str, first: str, last: str, phone: str, created: datetime,
                        updated: datetime) -> dict:
        return {"id": contact_id, "email": email, "firstName": first, "lastName": last, "phone": phone,
                "orgid": "0", "cdate": local(created), "udate": local(updated),
                "created_utc_timestamp": utc(created), "updated_utc_timestamp": utc(updated), "deleted": "0",
                "deleted_at": "0000-00-00 00:00:00", "bounced_date": "0000-00-00", "adate": None,
                "edate": None, "anonymized": "0", "gravatar": "1", "organization": None}

    def _contact(self, p: Person) -> dict:
        return self._contact_record(p.activecampaign_contact_id, p.activecampaign_email, p.first_name.title(),
                                    p.last_name.title(), "", p.created_at, p.activecampaign_updated_at)

    def _deal(self, d: Deal) -> dict:
        p = self.world.person(d.person_id)
        return {"id": d.deal_id, "owner": "1", "contact": p.activecampaign_contact_id, "organization": None,
                "group": "1", "stage": DEAL_STAGE[d.stage], "title": d.name, "percent": "0",
                "value": str(cents(d.amount)), "currency": "usd", "status": DEAL_STATUS[d.stage],
                "cdate": local(d.created_at), "mdate": local(d.updated_at),
                "edate": local(d.closed_at) if d.closed_at else None, "isDisabled": False}

    @staticmethod
    def _order(synced: tuple[int, Order, str]) -> dict:
        """A Shopify order as the connection synced it (its number, the order, its ecom customer's id): cents,
        the email the shop stored, shop times in the account's offset; pending and authorized-only orders are
        state 0 (Pending)."""
        number, o, customer_id = synced
        return {"id": str(number), "externalid": str(o.order_id), "source": "1", "email": o.email,
                "currency": "USD", "connectionid": CONNECTION_ID, "customerid": customer_id,
                "orderUrl": f"https://sandbox-shop.myshopify.com/admin/orders/{o.order_id}",
                "shippingMethod": "Standard", "totalPrice": cents(o.total), "shippingAmount": cents(o.shipping),
                "taxAmount": cents(o.tax), "discountAmount": cents(o.discount),
                "externalCreatedDate": local(o.created_at), "orderDate": local(o.created_at),
                "totalProducts": sum(li.quantity for li in o.line_items),
                "createdDate": local(o.created_at + SYNC_LAG), "updatedDate": local(o.updated_at + SYNC_LAG),
                "tstamp": local(o.updated_at + SYNC_LAG),
                "state": 0 if o.financial_status in ("pending", "authorized") else 1,
                "connection": CONNECTION_ID, "customer": customer_id, "orderNumber": str(o.number)}

    @staticmethod
    def _customer(customer: tuple[str, Person]) -> dict:
        """One shop customer (its id, the person) per person, guests included (keyed by the connection on
        email; a guest's `externalid` is "0"); revenue is what the shop charged, refunds not taken off."""
        customer_id, p = customer
        revenue = sum(cents(o.total) for o in p.orders)
        average = (Decimal(revenue) / len(p.orders)).to_integral_value(rounding=ROUND_HALF_EVEN)
        return {"id": customer_id, "connectionid": CONNECTION_ID,
                "externalid": str(p.shopify_customer_id or 0),
                "email": p.shopify_email if p.has_shopify_account else p.orders[0].email,
                "totalRevenue": str(revenue), "totalOrders": str(len(p.orders)),
                "totalProducts": str(sum(li.quantity for o in p.orders for li in o.line_items)),
                "avgRevenuePerOrder": str(average), "avgProductCategory": "Apparel",
                "tstamp": local(max(o.updated_at for o in p.orders) + SYNC_LAG), "connection": CONNECTION_ID}

    # --- what clients wrote and what the listings serve (the truth reads these) ------------------
    def received(self) -> dict[str, list[dict]]:
        """Every `contact` object synced, as sent, and per email (normalized) the contact they leave: the
        later sync winning field by field, field values merged by field."""
        with self._lock:
            raw = copy.deepcopy(self._received)
        latest: dict[str, dict] = {}
        for contact in raw:
            email = normalize_email(contact["email"])
            merged = latest.setdefault(email, {"email": email, "fieldValues": {}})
            merged.update({k: v for k, v in contact.items() if k not in ("email", "fieldValues")})
            values = contact.get("fieldValues") or []
            merged["fieldValues"].update({str(f.get("field")): f.get("value") for f in values})
        deduplicated = [{**c, "fieldValues": [{"field": f, "value": v} for f, v in c["fieldValues"].items()]}
                        for c in latest.values()]
        return {"raw": raw, "deduplicated": deduplicated}

    def served_counts(self) -> dict[str, int]:
        """How many records each list endpoint serves."""
        return {resource: len(records) for resource, records in self.lists.items()}

    # --- rate limit and faults (every vendor has these) ----------------------------------------
    def rate_limited(self, retry_after: float) -> Response:
        """The 429 over the 5 requests per second; `Retry-After` in whole seconds."""
        return Response.json(429, {"message": "Too Many Requests"},
                             {"Retry-After": str(max(1, math.ceil(retry_after)))})

    def usage_headers(self, used: int) -> dict[str, str]:
        """The budget headers the docs' examples show (api-contracts.md section 1.4)."""
        return {"RateLimit-Limit": str(self.rate_limit.size),
                "RateLimit-Remaining": str(max(0, self.rate_limit.size - used))}

    def shiftable(self, request: Request) -> bool:
        """Offset paging in the listing's own order is what a reorder breaks: any follow-up page inside an
        authorized listing that is not explicitly ordered."""
        resource = ROUTES.get(request.path) if request.method == "GET" else None
        if resource is None or request.headers.get("api-token") != self.token or "orders[id]" in request.query:
            return False
        try:
            return 0 < self._offset(request) < len(self._select(request, resource))
        except HttpError:
            return False

    # --- HTTP ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.headers.get("api-token") != self.token:
            raise _error(403, "You are not authorized to access this resource")
        if request.method == "POST" and request.path == "/api/3/contact/sync":
            return self._sync(request)
        resource = ROUTES.get(request.path) if request.method == "GET" else None
        if resource is None:
            raise _error(404, f"No Result found for route {request.path}")
        return self._list(request, resource)

    def _list(self, request: Request, resource: str) -> Response:
        limit = min(int_arg(request, "limit", 20, _invalid), MAX_LIMIT)
        offset = self._offset(request)
        selected = self._select(request, resource)
        if request.shift and 0 < offset < len(selected):
            selected = self._shift(resource, moved=selected[offset - 1], selected=selected)
        page = selected[offset:offset + limit]
        return Response.json(200, {"scoreValues": [], resource: page, "meta": {
            "total": str(len(selected)), "page_input": {"limit": limit, "offset": offset}}})

    def _shift(self, resource: str, moved: dict, selected: list[dict]) -> list[dict]:
        """The last record already served is updated now and moves to the end of the listing, for good:
        the first record not yet served slides back into the served range, so a naive offset pager skips
        it, and meets the moved one again on its last page. No record changes its content."""
        with self._lock:
            self.lists[resource] = [r for r in self.lists[resource] if r is not moved] + [moved]  # one atomic swap
        return [r for r in selected if r is not moved] + [moved]

    @staticmethod
    def _offset(request: Request) -> int:
        return int_arg(request, "offset", 0, _invalid)

    def _select(self, request: Request, resource: str) -> Sequence[dict]:
        """The records a list request selects, in the order it pages them. Contacts and deals come from views
        built once per list (id order, each record's updated date): the updated filter keeps a list of positions
        (kept for the last few filters asked), `id_greater` is a bisection, so a page costs about the same at
        any offset. `ids` and `email` are answered by a scan."""
        records = self.lists[resource]
        field = UPDATED.get(resource)
        if field is None:  # ecommerce: no updated filter, unknown filters ignored
            return records
        bounds = []
        for name in ("filters[updated_after]", "filters[updated_before]"):
            raw = request.arg(name)
            if raw:
                try:
                    bounds.append(date.fromisoformat(raw[:10]).toordinal())
                except ValueError:
                    raise _invalid(f"{name} is not a date: {raw}") from None
            else:
                bounds.append(None)
        if resource == "contacts" and (request.query.get("ids") or request.query.get("ids[]") or request.arg("email")):
            return self._scan(request, resource, records)
        id_greater = int_arg(request, "id_greater", 0, _invalid) if resource == "contacts" else 0
        direction = (request.arg("orders[id]") or "").upper() if resource == "contacts" else ""
        by_id = direction in ("ASC", "DESC")
        view, days, in_id_order = self._ordered(resource, records, by_id)
        positions: Sequence[int] = range(len(view))
        if bounds != [None, None]:
            positions = self._dated(view, days, *bounds)
        if id_greater:
            if not in_id_order:  # a shift fault moved a record out of id order
                return self._scan(request, resource, records)
            start = bisect.bisect_right(positions, id_greater, key=lambda i: int(view[i]["id"]))
            positions = positions[start:]
        return _Rows(view, positions, reverse=direction == "DESC")

    @functools.cached_property
    def _views(self) -> dict:
        return {}

    def _ordered(self, resource: str, records: list[dict], by_id: bool) -> tuple[list[dict], list[int], bool]:
        """`records` (in id order if `by_id`), each one's updated date (as an ordinal), and whether the view is in
        id order; kept while the list is the same (every write and shift puts a new list in its place)."""
        cached = self._views.get((resource, by_id))
        if cached is None or cached[0] is not records or cached[1] != len(records):
            ids = [int(r["id"]) for r in records]
            in_order = all(a < b for a, b in zip(ids, ids[1:], strict=False))
            view = sorted(records, key=lambda r: int(r["id"])) if by_id and not in_order else records
            days = [datetime.fromisoformat(r[UPDATED[resource]]).date().toordinal() for r in view]
            cached = (records, len(records), view, days, in_order or by_id)
            self._views[(resource, by_id)] = cached
        return cached[2], cached[3], cached[4]

    def _dated(self, view: list[dict], days: list[int], after: int | None, before: int | None) -> list[int]:
        """Positions in `view` updated within [after, before] (dates, inclusive); the last few asked are kept."""
        key = ("dated", id(view), after, before)
        cached = self._views.get(key)
        if cached is not None and cached[0] is view:
            return cached[1]
        low, high = after if after is not None else -1, before if before is not None else 10 ** 9
        positions = [i for i, day in enumerate(days) if low <= day <= high]
        dated = [k for k in list(self._views) if k[0] == "dated"]
        for old in dated[:max(0, len(dated) - DATED_KEPT + 1)]:
            self._views.pop(old, None)
        self._views[key] = (view, positions)
        return positions

    def _scan(self, request: Request, resource: str, records: list[dict]) -> list[dict]:
        """Every filter applied record by record: for the rare requests the views do not answer."""
        field = UPDATED[resource]
        for name, keep in (("filters[updated_after]", lambda d, b: d >= b), ("filters[updated_before]",
                                                                             lambda d, b: d <= b)):
            raw = request.arg(name)
            if raw:
                bound = date.fromisoformat(raw[:10])
                records = [r for r in records if keep(datetime.fromisoformat(r[field]).date(), bound)]
        if resource == "contacts":
            records = self._select_contacts(request, records)
        return records

    @staticmethod
    def _select_contacts(request: Request, records: list[dict]) -> list[dict]:
        """`ids` (`ids[]=1&ids[]=2` or `ids=1,2`), `email`, `id_greater` and `orders[id]`: keyset paging."""
        ids = {i for v in request.query.get("ids", []) + request.query.get("ids[]", []) for i in v.split(",") if i}
        if ids:
            records = [r for r in records if r["id"] in ids]
        email = request.arg("email")
        if email:
            records = [r for r in records if normalize_email(r["email"]) == normalize_email(email)]
        id_greater = int_arg(request, "id_greater", 0, _invalid)
        if id_greater:
            records = [r for r in records if int(r["id"]) > id_greater]
        direction = (request.arg("orders[id]") or "").upper()
        if direction in ("ASC", "DESC"):
            records = sorted(records, key=lambda r: int(r["id"]), reverse=direction == "DESC")
        return records

    # --- writes --------------------------------------------------------------------------------
    def _sync(self, request: Request) -> Response:
        """`POST /contact/sync`: create (201) or update (200) the contact with this email."""
        try:
            body = request.json()
        except ValueError:
            raise _invalid("The request body is not valid JSON") from None
        contact = body.get("contact") if isinstance(body, dict) else None
        email = contact.get("email") if isinstance(contact, dict) else None
        if not isinstance(email, str) or not EMAIL.match(email.strip()):
            raise HttpError(Response.json(422, {"errors": [INVALID_EMAIL]}))
        values = {str(f.get("field")): str(f.get("value", "")) for f in contact.get("fieldValues") or []
                  if isinstance(f, dict)}
        with self._lock:
            self._received.append(copy.deepcopy(contact))
            now = request.now
            existing_id = self._emails.get(normalize_email(email))
            existing = next((c for c in self.lists["contacts"] if c["id"] == existing_id), None)
            if existing:
                record = {**whole(existing), **{k: str(contact[k]) for k in SYNC_FIELDS if k in contact},
                          "udate": local(now), "updated_utc_timestamp": utc(now)}
                self.lists["contacts"] = [record if c is existing else c for c in self.lists["contacts"]]
            else:
                contact_id, self._next_id = str(self._next_id), self._next_id + 1
                names = (str(contact.get(k, "")) for k in SYNC_FIELDS)
                record = self._contact_record(contact_id, email.strip(), *names, now, now)
                self.lists["contacts"] = self.lists["contacts"] + [record]
                self._emails[normalize_email(email)] = contact_id
            stored = self._field_values.setdefault(record["id"], {})
            stored.update(values)
            field_values = [{"contact": record["id"], "field": f, "value": v} for f, v in stored.items()]
        return Response.json(200 if existing else 201, {"fieldValues": field_values, "contact": record})
