"""Shopify Admin REST (legacy REST, pinned `YYYY-MM` version): orders, customers, events, shop, access scopes.

Contract (api-contracts.md section 2): `X-Shopify-Access-Token` auth; `Link`-header cursor paging with
an opaque `page_info` that may not be combined with filters; `limit` default 50, max 250; the default
`status=open` hides closed and cancelled orders; decimal strings with `*_set` money bags; timestamps in
the shop's own UTC offset. Rate limit (section 2.6): a leaky bucket of 40 leaking 2 per second (Standard
plan), shown on every response as `X-Shopify-Shop-Api-Call-Limit: n/40`; over it 429 with `Retry-After`.

Orders created more than ORDER_WINDOW before the sandbox's clock are absent (not an error) unless the token
has the `read_all_orders` scope: the index's token has every scope, `token_without_read_all_orders` (not in
the index) lacks that one. Each order carries its payment `transactions`, whose Stripe sales name the
Stripe charge (`authorization`) and payment intent (`receipt`). A deleted order is listed no more; its
`destroy` event is served by `events.json?filter=Order&verb=destroy`.
"""

from __future__ import annotations

import base64
import bisect
import functools
import json
import math
import re
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from sandbox.http import HttpError, Request, Response, int_arg
from sandbox.limits import Budget
from sandbox.store import Builder, Store, Table
from sandbox.vendors.stripe import charge_attempts, refund_id, transaction_references
from sandbox.world import SHOP_CURRENCY, Order, Person, Touch, World, stable_token

NAME = "shopify"
API_VERSION = "2025-01"
SHOP_DOMAIN = "journey-sandbox.myshopify.com"
SHOP_TZ = ZoneInfo("America/New_York")
MAX_LIMIT = 250
# Filters Shopify refuses next to page_info (the link URL may carry only page_info, limit and fields).
FILTERS = ("status", "updated_at_min", "updated_at_max", "created_at_min", "created_at_max", "since_id",
           "financial_status", "order", "ids", "filter", "verb")
PATH = re.compile(r"^/admin/api/(\d{4}-\d{2})/(\w+)\.json$")
ACCESS_SCOPES_PATH = "/admin/oauth/access_scopes.json"
SCOPES = frozenset({"read_orders", "read_all_orders", "read_customers"})
ORDER_WINDOW = timedelta(days=60)  # how far back orders are visible without `read_all_orders`
TRANSACTION_ID_BASE = 9_000_000_000  # order transactions: base + order number * TRANSACTIONS_PER_ORDER + n
TRANSACTIONS_PER_ORDER = 4
# each list's columns (sandbox/store.py): what its listings sort, bound and filter on
COLUMNS = {"orders": ("id", "created_at", "updated_at", "cancelled_at", "closed_at"),
           "customers": ("id", "created_at", "updated_at"), "events": ("id", "created_at", "subject_type", "verb")}
# `status` as SQL over the orders' columns (`_has_status` says it of one record)
STATUS_WHERE = {"open": "cancelled_at IS NULL AND closed_at IS NULL", "closed": "closed_at IS NOT NULL",
                "cancelled": "cancelled_at IS NOT NULL", "any": "1"}
REFERRERS = {"google": "https://www.google.com/", "instagram": "https://l.instagram.com/",
             "partner-blog.example": "https://partner-blog.example/"}


def local(moment: datetime | None) -> str | None:
    return moment.astimezone(SHOP_TZ).isoformat(timespec="seconds") if moment else None


def money_bag(o: Order, amount: Decimal) -> dict:
    """A `*_set`: the amount in the shop's currency and in the order's presentment currency."""
    return {"shop_money": {"amount": str(amount), "currency_code": SHOP_CURRENCY},
            "presentment_money": {"amount": str(o.presentment(amount)), "currency_code": o.currency}}


def landing(session: Touch | None) -> dict[str, str]:
    """`landing_site` and `referring_site` of an order: the UTM parameters of the session that converted
    (utm_campaign left out when it has none) and the site that referred it (empty for email and direct
    visits, which send no referrer); "/" and no referrer when no tracked touch brought the session.
    Values are percent-encoded where needed; the world's are all query-safe already (parentheses are
    allowed in a query), so the warehouse reads them back without decoding."""
    if session is None:
        return {"landing_site": "/", "referring_site": ""}
    utm = {"utm_source": session.source, "utm_medium": session.medium, "utm_campaign": session.campaign}
    query = urlencode({k: v for k, v in utm.items() if v}, quote_via=quote, safe="()")
    return {"landing_site": f"/?{query}", "referring_site": REFERRERS.get(session.source, "")}


def _error(status: int, errors: object) -> HttpError:
    return HttpError(Response.json(status, {"errors": errors}))


class Shopify:
    name = NAME
    rate_limit = Budget(size=40, leak_per_second=2.0)

    def __init__(self, world: World, store: Store | None = None, *, deferred: bool = False):
        self.world = world
        self.store = store or Store()
        self.token = "shpat_sandbox_" + str(world.seed)
        self.token_without_read_all_orders = "shpat_sandbox_recent_" + str(world.seed)
        self.webhook_secret = "shpss_sandbox_" + stable_token(world.seed, "webhook-secret", length=24)
        self.scopes = {self.token: SCOPES, self.token_without_read_all_orders: SCOPES - {"read_all_orders"}}
        # rendered once, a person at a time (`add`), into tables on disk (sandbox/store.py)
        self._building = {name: Builder(self.store, columns) for name, columns in COLUMNS.items()}
        if not deferred:
            for p in world.people:
                self.add(p)
            self.finish()

    def add(self, p: Person) -> None:
        """Render a person's records (sandbox/vendors/__init__.py, `built`)."""
        if p.shopify_customer_id:
            self._building["customers"].append(self._customer(p))
        for o in p.orders:
            if o.deleted_at:
                self._building["events"].append(self._destroy_event(o.deletion_number, o))
            else:
                self._building["orders"].append(self._order(o))

    def finish(self) -> None:
        """Every person added: the tables, each in id order."""
        tables = {name: building.table("id") for name, building in self._building.items()}
        self.customers, self.orders, self.events = tables["customers"], tables["orders"], tables["events"]
        del self._building

    def index(self, root: str) -> dict:
        return {"base_url": f"{root}/{NAME}/admin/api/{API_VERSION}", "credentials": {"access_token": self.token},
                "webhooks": {"client_secret": self.webhook_secret}}

    # --- vendor shapes -------------------------------------------------------------------------
    def _customer(self, p: Person) -> dict:
        counted = p.counted_orders
        consent_at = local(p.created_at)
        return {
            "id": p.shopify_customer_id, "email": p.shopify_email, "first_name": p.first_name.title(),
            "last_name": p.last_name.title(), "state": "enabled", "verified_email": True,
            "created_at": consent_at, "updated_at": local(max([p.created_at] + [o.created_at for o in counted])),
            "orders_count": len(p.orders), "total_spent": str(sum((o.total for o in counted), start=0)),
            "tax_exempt": False, "tags": "", "currency": SHOP_CURRENCY,
            "email_marketing_consent": {
                "state": "subscribed" if p.accepts_marketing else "not_subscribed",
                "opt_in_level": "single_opt_in", "consent_updated_at": consent_at},
        }

    @staticmethod
    def _destroy_event(number: int, o: Order) -> dict:
        """The event Shopify records when an order is deleted; numbered in the order of deletions (the order's
        `deletion_number`), so an id served once never changes."""
        return {"id": 98_000_000_000 + number, "subject_id": o.order_id, "created_at": local(o.deleted_at),
                "subject_type": "Order", "verb": "destroy", "arguments": [f"#{o.number}"], "body": None,
                "message": f"Order #{o.number} was deleted.", "author": "Shopify", "description":
                f"Order #{o.number} was deleted.", "path": f"/admin/orders/{o.order_id}"}

    def _order(self, o: Order) -> dict:
        person = self.world.person(o.person_id)
        created, total, subtotal = local(o.created_at), o.total, o.subtotal  # each drawn once per order
        closed_at = o.created_at + timedelta(days=14)  # closed two weeks on, unless cancelled
        customer = None
        if person.shopify_customer_id:
            customer = {"id": person.shopify_customer_id, "email": person.shopify_email,
                        "first_name": person.first_name.title(), "last_name": person.last_name.title()}
        transactions = self._transactions(o, created)
        sale = next((t for t in transactions if t["kind"] == "sale" and t["status"] == "success"), None)
        refunds = [{
            "id": r.refund_id, "order_id": o.order_id, "created_at": (at := local(r.processed_at)),
            "processed_at": at, "note": None,
            "transactions": [{
                "id": r.refund_id + 7_000_000_000, "order_id": o.order_id, "kind": "refund",
                "status": "success" if r.succeeded else "failure", "amount": str(r.presentment_amount),
                "currency": o.currency, "gateway": "stripe" if o.paid_by_stripe else "manual",
                "processed_at": at, "created_at": at,
                "authorization": refund_id(self.world.seed, r.refund_id) if o.paid_by_stripe and r.succeeded else None,
                "parent_id": sale["id"] if sale else None}],
        } for r in o.refunds]
        return {
            "id": o.order_id, "admin_graphql_api_id": f"gid://shopify/Order/{o.order_id}",
            "name": f"#{o.number}", "number": o.number - 1000, "order_number": o.number,
            "email": o.email, "contact_email": o.email,
            "created_at": created, "updated_at": local(o.updated_at), "processed_at": created,
            "cancelled_at": local(o.cancelled_at), "cancel_reason": "customer" if o.cancelled_at else None,
            "closed_at": local(closed_at) if o.cancelled_at is None and closed_at <= self.world.clock else None,
            "currency": SHOP_CURRENCY, "presentment_currency": o.currency,
            "financial_status": o.financial_status, "fulfillment_status": None, "test": False,
            "subtotal_price": str(subtotal), "total_discounts": str(o.discount), "total_tax": str(o.tax),
            "total_price": str(total), "total_price_set": money_bag(o, total),
            "subtotal_price_set": money_bag(o, subtotal), "total_tax_set": money_bag(o, o.tax),
            "payment_gateway_names": ["stripe"] if o.paid_by_stripe else ["manual"],
            "source_name": "web", **landing(person.sessions.get(o.order_id)),
            "billing_address": {"country_code": o.country}, "customer": customer,
            "line_items": [{"id": li.line_item_id, "sku": li.sku, "title": li.title, "quantity": li.quantity,
                            "price": str(li.price), "price_set": money_bag(o, li.price)} for li in o.line_items],
            "shipping_lines": [{"code": "Standard", "title": "Standard", "price": str(o.shipping)}],
            "refunds": refunds, "transactions": transactions,
        }

    def _transactions(self, o: Order, created: str) -> list[dict]:
        """The order's payment transactions (at `created`, the order's own time as served): Stripe sales (a
        failed attempt first for some) naming the Stripe charge and payment intent as its checkout app does
        (`payment_setup`: both, the intent only, or neither), manual sales, or an authorization (voided for
        voided orders)."""
        amount = str(o.presentment_total)

        def transaction(n: int, kind: str, status: str, gateway: str, **extra: object) -> dict:
            return {"id": TRANSACTION_ID_BASE + o.number * TRANSACTIONS_PER_ORDER + n, "order_id": o.order_id,
                    "kind": kind, "status": status, "amount": amount, "currency": o.currency,
                    "gateway": gateway, "created_at": created, "processed_at": created,
                    "test": False, "authorization": None, "receipt": {}, **extra}

        if o.paid_by_stripe:
            person = self.world.person(o.person_id)
            return [transaction(n, "sale", "success" if status == "succeeded" else "failure", "stripe",
                                **transaction_references(self.world.seed, o, person, n))
                    for n, status in enumerate(charge_attempts(o))]
        if o.counted:
            return [transaction(0, "sale", "success", "manual")]
        if o.financial_status == "authorized":
            return [transaction(0, "authorization", "success", "manual")]
        if o.financial_status == "voided":
            authorization = transaction(0, "authorization", "success", "manual")
            return [authorization, transaction(1, "void", "success", "manual", parent_id=authorization["id"])]
        return []  # pending: nothing paid yet

    # --- rate limit and faults (every vendor has these) ----------------------------------------
    def rate_limited(self, retry_after: float) -> Response:
        """The 429 of a full bucket; `Retry-After` in seconds with one decimal, like Shopify's "2.0"."""
        return Response.json(429, {"errors": f"Exceeded {self.rate_limit.leak_per_second:g} calls per second for "
                                             f"api client. Reduce request rates to resume uninterrupted service."},
                             {"Retry-After": f"{math.ceil(retry_after * 10) / 10:.1f}"})

    def usage_headers(self, used: int) -> dict[str, str]:
        return {"X-Shopify-Shop-Api-Call-Limit": f"{used}/{self.rate_limit.size}"}

    def shiftable(self, request: Request) -> bool:
        """Never: `page_info` is a keyset cursor on (sort value, id), which no reorder of unchanged records
        can make skip or repeat."""
        return False

    # --- HTTP ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        scopes = self.scopes.get(request.headers.get("x-shopify-access-token", ""))
        if scopes is None:
            raise _error(401, "[API] Invalid API key or access token (unrecognized login or wrong password)")
        if request.path == ACCESS_SCOPES_PATH and request.method == "GET":
            return Response.json(200, {"access_scopes": [{"handle": scope} for scope in sorted(scopes)]})
        match = PATH.match(request.path)
        if not match or request.method != "GET":
            raise _error(404, "Not Found")
        resource = match.group(2)
        if resource == "shop":
            return Response.json(200, {"shop": {"id": 63_000_000 + self.world.seed, "myshopify_domain": SHOP_DOMAIN,
                                                "currency": SHOP_CURRENCY, "iana_timezone": str(SHOP_TZ)}})
        if resource == "orders":
            oldest = None if "read_all_orders" in scopes else request.now - ORDER_WINDOW
            return self._list(request, "orders", self.orders, oldest)
        if resource == "customers":
            return self._list(request, "customers", self.customers)
        if resource == "events":
            return self._list(request, "events", self.events)
        raise _error(404, "Not Found")

    def visible_orders(self, now: datetime, read_all_orders: bool) -> Table:
        """The orders a token sees at `now`: all of them with `read_all_orders`, otherwise the last ORDER_WINDOW."""
        if read_all_orders:
            return self.orders
        return self.orders.view("unixepoch(created_at) >= ?", [(now - ORDER_WINDOW).timestamp()])

    def served_counts(self, now: datetime | None = None) -> dict[str, int]:
        """The default credentials' listings, the same at any `now`: orders with `status=any` (every one, since
        those credentials have `read_all_orders`), customers."""
        return {"orders": len(self.orders), "customers": len(self.customers)}

    def received(self) -> dict[str, list]:
        return {"raw": [], "deduplicated": []}  # the sandbox's Shopify takes no writes

    def _list(self, request: Request, resource: str, records: Table, oldest: datetime | None = None) -> Response:
        """A page of `records` (only those created at `oldest` or later, if given). Each (status, window, sort)
        keeps a sorted view of its records, built once per vendor object; bounds on the sort field, `since_id`
        when sorting by id, and the `page_info` cursor are found by bisection in it, and any other filter is
        applied walking from there, so a page costs about the same at the end of a long list as at its start."""
        limit = int_arg(request, "limit", 50, lambda m: _error(400, {"limit": [m]}))
        if not 1 <= limit <= MAX_LIMIT:
            raise _error(400, {"limit": [f"must be between 1 and {MAX_LIMIT}"]})
        page_info = request.arg("page_info")
        if page_info is not None:
            for name in FILTERS:
                if name in request.query:
                    raise _error(400, {"page_info": [f"{name} cannot be passed when page_info is present"]})
            try:
                state = json.loads(base64.urlsafe_b64decode(page_info.encode()))
                filters, after = state["f"], state["a"]
            except (ValueError, KeyError):
                raise _error(400, {"page_info": ["Invalid value."]}) from None
        else:
            filters = {name: request.arg(name) for name in FILTERS if request.arg(name) is not None}
            after = None
        sort_field, descending = self._sort(filters.get("order"))
        status = filters.get("status", "open") if resource == "orders" else "any"
        if status not in ("open", "closed", "cancelled", "any"):
            raise _error(400, {"status": [f"Invalid status: {status}"]})
        if sort_field not in records.columns:  # events have no updated_at to sort by
            raise _error(400, {"order": [f"Invalid order: {filters.get('order')}"]})
        view = self._view(resource, records, status, sort_field, oldest)
        lo, hi, rest = self._bounds(view, records.columns, sort_field, filters)
        if after is not None:
            key = tuple(after)
            by_key = lambda r: (self._sort_value(r, sort_field), r["id"])  # noqa: E731
            if descending:
                hi = bisect.bisect_left(view, key, lo, max(lo, hi), key=by_key)
            else:
                lo = bisect.bisect_right(view, key, lo, max(lo, hi), key=by_key)
        page, more = [], False
        for record in view.walk(lo, hi, descending):
            if rest and not all(keep(record) for keep in rest):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(record)
        headers = {}
        if more:
            last = page[-1]
            token = base64.urlsafe_b64encode(json.dumps(
                {"f": filters, "a": [self._sort_value(last, sort_field), last["id"]]}).encode()).decode()
            base = f"{request.root_url}/{NAME}{request.path}"
            headers["Link"] = f'<{base}?limit={limit}&page_info={token}>; rel="next"'
        return Response.json(200, {resource: page}, headers)

    @functools.cached_property
    def _views(self) -> dict[tuple, tuple[Table, Table]]:
        """(resource, status, sort field, oldest) -> (the table it was built from, the view)."""
        return {}

    def _view(self, resource: str, records: Table, status: str, field: str, oldest: datetime | None) -> Table:
        """`records` of `status` created at `oldest` or later, ascending by (`field`, id), as a view of positions
        (sandbox/store.py); built on first use and kept while `records` is the same table (a test may give the
        vendor another)."""
        cached = self._views.get((resource, status, field, oldest))
        if cached is not None and cached[0] is records:
            return cached[1]
        where, params = STATUS_WHERE[status] if resource == "orders" else "1", []
        if oldest is not None:
            where += " AND unixepoch(created_at) >= ?"
            params.append(oldest.timestamp())
        kept = records.view(where, params, "id" if field == "id" else f"unixepoch({field}), id")
        self._views[(resource, status, field, oldest)] = (records, kept)
        return kept

    @staticmethod
    def _has_status(record: dict, status: str) -> bool:
        if status == "open":
            return not (record["cancelled_at"] or record["closed_at"])
        if status == "closed":
            return bool(record["closed_at"])
        if status == "cancelled":
            return bool(record["cancelled_at"])
        return True

    @staticmethod
    def _bounds(view: Table, fields: tuple[str, ...], sort_field: str, filters: dict) -> tuple[int, int, list]:
        """The slice [lo, hi) of `view` that the filters on its sort field keep (inclusive time bounds, `since_id`
        exclusive), and the tests of the other filters, to apply to each record of the slice."""
        lo, hi, rest = 0, len(view), []
        for bound, field, is_min in (("updated_at_min", "updated_at", True), ("updated_at_max", "updated_at", False),
                                     ("created_at_min", "created_at", True), ("created_at_max", "created_at", False)):
            if bound not in filters or field not in fields:  # a resource without the field ignores the bound
                continue
            try:
                limit = datetime.fromisoformat(filters[bound].replace("Z", "+00:00"))
            except ValueError:
                raise _error(400, {bound: ["Invalid date"]}) from None
            if limit.tzinfo is None:
                limit = limit.replace(tzinfo=SHOP_TZ)
            moment = lambda r, field=field: datetime.fromisoformat(r[field])  # noqa: E731
            if field == sort_field and is_min:
                lo = max(lo, bisect.bisect_left(view, limit, key=moment))
            elif field == sort_field:
                hi = min(hi, bisect.bisect_right(view, limit, key=moment))
            elif is_min:
                rest.append(lambda r, moment=moment, limit=limit: moment(r) >= limit)
            else:
                rest.append(lambda r, moment=moment, limit=limit: moment(r) <= limit)
        if "since_id" in filters:
            try:
                since_id = int(filters["since_id"])
            except ValueError:
                raise _error(400, {"since_id": ["Invalid value."]}) from None
            if sort_field == "id":
                lo = max(lo, bisect.bisect_right(view, since_id, key=lambda r: r["id"]))
            else:
                rest.append(lambda r: r["id"] > since_id)
        if "filter" in filters and "subject_type" in fields:  # events
            kinds = filters["filter"].split(",")
            rest.append(lambda r: r["subject_type"] in kinds)
        if "verb" in filters and "verb" in fields:
            rest.append(lambda r: r["verb"] == filters["verb"])
        return lo, max(lo, hi), rest

    @staticmethod
    def _sort(order: str | None) -> tuple[str, bool]:
        if not order:
            return "id", False
        field, _, direction = order.partition(" ")
        if field not in ("id", "created_at", "updated_at") or direction.lower() not in ("", "asc", "desc"):
            raise _error(400, {"order": [f"Invalid order: {order}"]})
        return field, direction.lower() == "desc"

    @staticmethod
    def _sort_value(record: dict, field: str) -> object:
        value = record[field]
        return datetime.fromisoformat(value).timestamp() if field != "id" else value
