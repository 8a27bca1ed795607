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

import copy
import functools
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo

from sandbox.http import HttpError, Request, Response, int_arg
from sandbox.limits import Budget
from sandbox.store import Builder, Store, Table, whole
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
SELECTIONS_KEPT = 8  # selections kept as views, so the pages of one listing do not filter the list again
# each list's columns (sandbox/store.py): what its selections filter, order and look up on
COLUMNS = {"contacts": ("id", "email", "udate"), "deals": ("id", "mdate"), "ecomOrders": ("id",),
           "ecomCustomers": ("id",)}


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


class Activecampaign:
    name = NAME
    rate_limit = Budget(size=5, leak_per_second=5.0)

    def __init__(self, world: World, store: Store | None = None, *, deferred: bool = False):
        self.world = world
        self.store = store or Store()
        self.store.function("normalized_email", normalize_email)
        self.token = stable_token(world.seed, "activecampaign", length=40).lower()
        self._lock = threading.Lock()
        self._received: list[dict] = []
        self._field_values: dict[str, dict[str, str]] = {}  # contact id -> field -> value, from syncs
        # rendered once, a person at a time (`add`), into tables on disk (sandbox/store.py); every write puts a new
        # table in its list's place
        self._building = {name: Builder(self.store, columns) for name, columns in COLUMNS.items()}
        self._next_id = 1  # deleted contacts' ids are never given again
        if not deferred:
            for p in world.people:
                self.add(p)
            self.finish()

    def add(self, p: Person) -> None:
        """Render a person's records (sandbox/vendors/__init__.py, `built`): their contact and deals, and what the
        shop connection synced of them: their orders (numbered as the shop numbers them, deleted ones kept: ids
        never shift) and, if they bought, their ecommerce customer (numbered in the order buyers first bought)."""
        building = self._building
        if p.activecampaign_contact_id:
            building["contacts"].append(self._contact(p))
        building["deals"].extend(self._deal(d) for d in p.deals if d.vendor == NAME)
        customer_id = str(p.buyer_number)
        building["ecomOrders"].extend(self._order((o.number - 1000, o, customer_id)) for o in p.orders)
        if p.orders:
            building["ecomCustomers"].append(self._customer((customer_id, p)))
        taken = [int(r.contact_id) for r in p.crm_records if r.vendor == NAME]
        self._next_id = max(self._next_id, int(p.activecampaign_contact_id or 0) + 1, *(i + 1 for i in taken))

    def finish(self) -> None:
        """Every person added: the lists, each in id order."""
        self.lists: dict[str, Table] = {name: building.table("CAST(id AS INTEGER)")
                                        for name, building in self._building.items()}
        del self._building

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
            selected = self._shift(request, resource, moved=selected[offset - 1])
        page = selected[offset:offset + limit]
        return Response.json(200, {"scoreValues": [], resource: page, "meta": {
            "total": str(len(selected)), "page_input": {"limit": limit, "offset": offset}}})

    def _shift(self, request: Request, resource: str, moved: Mapping) -> Sequence[Mapping]:
        """The last record already served is updated now and moves to the end of the listing, for good:
        the first record not yet served slides back into the served range, so a naive offset pager skips
        it, and meets the moved one again on its last page. No record changes its content, so the request
        selects from the list as it is now what it selected before, the moved record last."""
        with self._lock:
            records = self.lists[resource]
            self.lists[resource] = records.move_to_end(records.position("id = ?", (moved["id"],)))
        return self._select(request, resource)

    @staticmethod
    def _offset(request: Request) -> int:
        return int_arg(request, "offset", 0, _invalid)

    def _select(self, request: Request, resource: str) -> Sequence[Mapping]:
        """The records a list request selects, in the order it pages them. Contacts and deals are selected in
        SQL (sandbox/store.py): the updated filter, `id_greater` and `orders[id]` give a view of the list, kept
        for the last few selections asked, so a page costs about the same at any offset. `ids` and `email` are
        answered by a scan."""
        records = self.lists[resource]
        field = UPDATED.get(resource)
        if field is None:  # ecommerce: no updated filter, unknown filters ignored
            return records
        where, params = [], []
        for name, compare in (("filters[updated_after]", ">="), ("filters[updated_before]", "<=")):
            raw = request.arg(name)
            if raw:
                try:
                    day = date.fromisoformat(raw[:10])
                except ValueError:
                    raise _invalid(f"{name} is not a date: {raw}") from None
                where.append(f"substr({field}, 1, 10) {compare} ?")  # the record's own (local) date
                params.append(day.isoformat())
        if resource == "contacts" and (request.query.get("ids") or request.query.get("ids[]") or request.arg("email")):
            return self._scan(request, resource, records)
        id_greater = int_arg(request, "id_greater", 0, _invalid) if resource == "contacts" else 0
        if id_greater:
            where.append("CAST(id AS INTEGER) > ?")
            params.append(id_greater)
        direction = (request.arg("orders[id]") or "").upper() if resource == "contacts" else ""
        order = {"ASC": "CAST(id AS INTEGER)", "DESC": "CAST(id AS INTEGER) DESC"}.get(direction, "pos")
        if not where and order == "pos":
            return records
        condition = " AND ".join(where) or "1"
        key = (records.name, len(records), condition, tuple(params), order)
        with self._lock:
            view = self._views.pop(key, None) or records.view(condition, params, order)
            self._views[key] = view  # the latest last; older ones dropped once no request reads them
            while len(self._views) > SELECTIONS_KEPT:
                self._views.pop(next(iter(self._views)), None)
        return view

    @functools.cached_property
    def _views(self) -> dict[tuple, Table]:
        return {}

    def _scan(self, request: Request, resource: str, records: Sequence[Mapping]) -> list[Mapping]:
        """Every filter applied record by record, reading the list once: for the rare requests the views do not
        answer (what they keep is few: the ids or the email asked)."""
        field = UPDATED[resource]
        for name, keep in (("filters[updated_after]", lambda d, b: d >= b), ("filters[updated_before]",
                                                                             lambda d, b: d <= b)):
            raw = request.arg(name)
            if raw:
                bound = date.fromisoformat(raw[:10])
                records = filter(lambda r, keep=keep, bound=bound: keep(datetime.fromisoformat(r[field]).date(), bound),
                                 records)
        return self._select_contacts(request, records) if resource == "contacts" else list(records)

    @staticmethod
    def _select_contacts(request: Request, records: Iterable[Mapping]) -> list[Mapping]:
        """`ids` (`ids[]=1&ids[]=2` or `ids=1,2`), `email`, `id_greater` and `orders[id]`: keyset paging."""
        ids = {i for v in request.query.get("ids", []) + request.query.get("ids[]", []) for i in v.split(",") if i}
        if ids:
            records = (r for r in records if r["id"] in ids)
        email = request.arg("email")
        if email:
            records = (r for r in records if normalize_email(r["email"]) == normalize_email(email))
        id_greater = int_arg(request, "id_greater", 0, _invalid)
        if id_greater:
            records = (r for r in records if int(r["id"]) > id_greater)
        direction = (request.arg("orders[id]") or "").upper()
        if direction in ("ASC", "DESC"):
            return sorted(records, key=lambda r: int(r["id"]), reverse=direction == "DESC")
        return list(records)

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
            contacts = self.lists["contacts"]
            existing = contacts.position("normalized_email(email) = ?", (normalize_email(email),))
            if existing is not None:
                record = {**whole(contacts[existing]), **{k: str(contact[k]) for k in SYNC_FIELDS if k in contact},
                          "udate": local(now), "updated_utc_timestamp": utc(now)}
                self.lists["contacts"] = contacts.edit(replace={existing: record})
            else:
                contact_id, self._next_id = str(self._next_id), self._next_id + 1
                names = (str(contact.get(k, "")) for k in SYNC_FIELDS)
                record = self._contact_record(contact_id, email.strip(), *names, now, now)
                self.lists["contacts"] = contacts.edit(append=[record])
            stored = self._field_values.setdefault(record["id"], {})
            stored.update(values)
            field_values = [{"contact": record["id"], "field": f, "value": v} for f, v in stored.items()]
        return Response.json(200 if existing is not None else 201, {"fieldValues": field_values, "contact": record})
