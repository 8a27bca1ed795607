"""Stripe API v1: customers, charges, payment intents, refunds, balance transactions, events, account.

Contract (api-contracts.md section 3): Basic auth with the secret key as user name, or Bearer; lists
newest first with `limit` 1-100 (default 10), `starting_after` / `ending_before` (never both) and
`created[gte|gt|lte|lt]`; envelope `{object: "list", url, has_more, data}` whose `url` is relative to
the API base; amounts in the currency's minor unit; any `Stripe-Version` header accepted. Rate limit
(section 3.4): 25 requests per second in test mode, over it 429 `rate_limit` with `Stripe-Should-Retry`.

Everything is built from the world's Stripe-paid orders: one payment intent per order, its charges (a
failed attempt first for some), one refund per successful Shopify refund (against the succeeded charge),
one balance transaction per succeeded charge and per refund, and the events of all of these. `/v1/events`
serves only the last EVENT_RETENTION before the sandbox's clock; a balance transaction is `available`
once its `available_on` has passed on that clock.

Not every payment links the two systems the same way (`payment_setup`), so reconciliation has every case
real shops have: most orders are paid through the Stripe app (the Shopify transaction names the charge and
the intent), some through a newer app that names only the intent, some through an older checkout app that
names neither and makes bare charges (no intent, no metadata; only email, amount and time tie them), and
some in another Stripe account this one cannot see. Some charges carry no `metadata.shopify_order_id`, and
some customers are charged outside the shop (wholesale invoices, manual charges in the dashboard), paying
no order at all. `order_of_charge` keeps the truth: the order each charge really pays.
"""

from __future__ import annotations

import base64
import bisect
import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandbox.http import HttpError, Request, Response
from sandbox.limits import Budget
from sandbox.store import Builder, Lookup, Store, Table, whole
from sandbox.world import SHOP_CURRENCY, Order, Person, World, stable_token

NAME = "stripe"
API_VERSION = "2022-11-15"  # the account's version, which events are rendered in
MINOR_UNITS = {"usd": 100, "eur": 100, "gbp": 100, "cad": 100, "jpy": 1}
SETTLEMENT = SHOP_CURRENCY.lower()  # the account's settlement currency: its balance is kept in it
RANGE = re.compile(r"^created\[(gte|gt|lte|lt)\]$")


def _newest_first_key(record: dict) -> int:
    """The ascending sort key of a list kept newest first, for bisection."""
    return -record["created"]
FEE_RATE = Decimal("0.029")  # Stripe's standard card pricing: 2.9% + 30 cents per succeeded charge
FEE_FIXED_MINOR = 30
AVAILABLE_AFTER = timedelta(days=7)  # funds of a balance transaction become available this long after it
EVENT_RETENTION = timedelta(days=30)  # "List events, going back up to 30 days"
MAX_EVENT_TYPES = 20
NEWEST_FIRST = "created DESC, id DESC"  # every list's order, as SQL over its columns
KEPT_VIEWS = 32  # filtered lists kept for their next pages
# Each list's equality filters besides `created` (api-contracts.md section 3.2), all record fields.
FILTERS = {"customers": ("email",), "charges": ("customer", "payment_intent"), "payment_intents": ("customer",),
           "refunds": ("charge", "payment_intent"), "balance_transactions": ("currency", "source", "type"),
           "events": ()}
# each list's columns (sandbox/store.py): paging, filters, balances' status, the truth
COLUMNS = {name: ("id", "created", *fields, *{"events": ("type",), "balance_transactions": ("available_on",),
                                                "charges": ("status", "amount", "currency")}.get(name, ()))
             for name, fields in FILTERS.items()}


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> HttpError:
    body = {"type": "invalid_request_error", "message": message}
    if param:
        body["param"] = param
    if code:
        body["code"] = code
    return HttpError(Response.json(status, {"error": body}))


def minor(amount: Decimal, currency: str) -> int:
    return int(amount * MINOR_UNITS[currency])


def fee(amount: int) -> int:
    """Stripe's processing fee on a charge of `amount` minor units, rounded to a whole minor unit."""
    return int((amount * FEE_RATE + FEE_FIXED_MINOR).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# How a Stripe-paid order's checkout links Shopify to Stripe (see `payment_setup`).
STRIPE_APP = "stripe_app"  # transaction `authorization` = charge id, `receipt.payment_intent` = intent id
INTENT_ONLY = "intent_only"  # newer app: `authorization` empty, `receipt.payment_intent` set
LEGACY_APP = "legacy_app"  # older checkout app: neither; a bare charge (no intent, no metadata)
OTHER_ACCOUNT = "other_account"  # charged in a Stripe account not configured here: Stripe serves nothing
CHECKOUT_WEIGHTS = {STRIPE_APP: 82, INTENT_ONLY: 7, LEGACY_APP: 7, OTHER_ACCOUNT: 4}
METADATA_MISSING = 0.1  # charges whose app wrote no `metadata.shopify_order_id`
UNLINKED_CHARGE = 0.06  # a Stripe customer charged outside the shop (paying no order)
UNLINKED_CLEARANCE = timedelta(days=2)  # ... never this close to one of their orders, so it matches none


@dataclass(frozen=True)
class PaymentSetup:
    """How one Stripe-paid order's payment is recorded on each side."""

    checkout: str
    writes_metadata: bool


def payment_setup(seed: int, order: Order, payer: Person) -> PaymentSetup:
    """Drawn from the order's own `payment` stream, so no earlier draw of the world changes. The older
    checkout app is drawn only for payers whose Stripe records carry their email: without it nothing
    would tie its bare charges to the order, and the truth would claim a link no one could find."""
    rng = random.Random(f"{seed}/{order.order_id}/payment")
    checkout = rng.choices(list(CHECKOUT_WEIGHTS), weights=list(CHECKOUT_WEIGHTS.values()))[0]
    writes_metadata = rng.random() >= METADATA_MISSING
    if checkout == LEGACY_APP and not payer.stripe_email:
        checkout = STRIPE_APP
    return PaymentSetup(checkout, writes_metadata and checkout != LEGACY_APP)


# --- ids other vendors refer to (Shopify's order transactions) -------------------------------------
def charge_attempts(order: Order) -> list[str]:
    """The statuses of the charges made for a Stripe-paid order, in order: some fail once first."""
    return ["failed", "succeeded"] if order.failed_attempt_first else ["succeeded"]


def charge_id(seed: int, order: Order, attempt: int) -> str:
    return "ch_" + stable_token(seed, "charge", order.order_id, attempt, length=24)


def payment_intent_id(seed: int, order: Order) -> str:
    return "pi_" + stable_token(seed, "pi", order.order_id, length=24)


def transaction_references(seed: int, order: Order, payer: Person, attempt: int) -> dict:
    """What Shopify's transaction for a charge attempt records of Stripe, as the order's checkout app
    writes it: `authorization` (the charge id) and `receipt.payment_intent`, both, one or neither."""
    checkout = payment_setup(seed, order, payer).checkout
    names_charge = checkout in (STRIPE_APP, OTHER_ACCOUNT)
    names_intent = checkout in (STRIPE_APP, INTENT_ONLY, OTHER_ACCOUNT)
    return {"authorization": charge_id(seed, order, attempt) if names_charge else None,
            "receipt": {"payment_intent": payment_intent_id(seed, order)} if names_intent else {}}


def refund_id(seed: int, shopify_refund_id: int) -> str:
    return "re_" + stable_token(seed, "refund", shopify_refund_id, length=24)


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass(frozen=True, slots=True)
class Payment:
    """A Stripe-paid order as its checkout app paid it in this account: what each of its records is drawn from."""

    order: Order
    payer: Person
    setup: PaymentSetup


@dataclass(frozen=True, slots=True)
class Unlinked:
    """A charge made outside the shop (see `Stripe._unlinked`), as drawn from its person's own stream."""

    payer: Person
    charge_id: str
    amount: int
    created: int
    customer: str | None
    email: str | None
    description: str


# A charge: the first or second attempt of a payment, or a charge made outside the shop (attempt 0)
ChargeOf = tuple[Payment | Unlinked, int]


class Stripe:
    name = NAME
    rate_limit = Budget(size=25, leak_per_second=25.0)

    def __init__(self, world: World, store: Store | None = None, *, deferred: bool = False):
        self.world = world
        self.store = store or Store()
        self.api_key = f"sk_test_sandbox{world.seed}" + stable_token(world.seed, "key", length=16)
        self.account_id = "acct_" + stable_token(world.seed, "account", length=16)
        self.webhook_secret = "whsec_sandbox" + stable_token(world.seed, "webhook-secret", length=24)
        # Each record is rendered once (a charge as of all its refunds), into a table on disk (sandbox/store.py)
        # with the columns listings, cursors and the truth read.
        self._building = {name: Builder(self.store, COLUMNS[name]) for name in FILTERS}
        self._paid_orders = Builder(self.store, ("charge", "order"))  # the truth: the order each charge pays
        if not deferred:
            for p in world.people:
                self.add(p)
            self.finish()

    def add(self, p: Person) -> None:
        """Render a person's records (sandbox/vendors/__init__.py, `built`): their customer, the payments of
        their orders, a charge made outside the shop, and the events of these."""
        if p.stripe_customer_id:
            customer = self._keep("customers", self._customer, p, listed=not p.stripe_deleted_at)
            self._keep("events", self._customer_event, ("customer.created", customer["created"], p))
            if p.stripe_deleted_at:  # listed no more; its charges keep its id
                self._keep("events", self._customer_event, ("customer.deleted", _ts(p.stripe_deleted_at), p))
        for order in p.orders:
            if order.paid_by_stripe and not order.deleted_at:
                payment = Payment(order, p, payment_setup(self.world.seed, order, p))
                if payment.setup.checkout != OTHER_ACCOUNT:
                    self._payment(payment)
        unlinked = self._unlinked(p) if p.stripe_customer_id else None
        if unlinked:
            self._charges((unlinked, 0))

    def finish(self) -> None:
        """Every person added: each list newest first, as every list is served, with an index on what lookups
        and cursors read."""
        self.lists: dict[str, Table] = {name: records.table(NEWEST_FIRST, ("id", *FILTERS[name]))
                                        for name, records in self._building.items()}
        self._views: dict[tuple, Table] = {}  # filtered views of lists, the latest used last (`_filtered`)
        self.order_of_charge = Lookup(self._paid_orders.table(indexes=("charge",)), "charge", "order")
        del self._building, self._paid_orders

    def index(self, root: str) -> dict:
        return {"base_url": f"{root}/{NAME}", "credentials": {"api_key": self.api_key},
                "webhooks": {"signing_secret": self.webhook_secret}}

    def _keep(self, resource: str, draw: Callable[[Any], dict], source: Any, listed: bool = True) -> dict:
        """Draw a record once, keep it in its list (unless not `listed`), and return it."""
        record = draw(source)
        if listed:
            self._building[resource].append(record)
        return record

    def _payment(self, payment: Payment) -> None:
        """An order's payment intent, charges, refunds, balance transactions and events."""
        attempts = charge_attempts(payment.order)
        for n in range(len(attempts)):
            charge = self._charges((payment, n))
            self._paid_orders.append({"charge": charge["id"], "order": payment.order.order_id})
        if payment.setup.checkout != LEGACY_APP:
            self._keep("payment_intents", self._intent, payment)
        for k in range(len(self._refunds(payment))):
            self._keep("refunds", self._refund, (payment, k))
            self._keep("balance_transactions", self._refund_transaction, (payment, k))
            self._keep("events", self._refund_event, (payment, k))

    def _charges(self, of: ChargeOf) -> dict:
        """A charge, its balance transaction if it succeeded and its event, listed."""
        charge = self._keep("charges", self._charge, of)
        if charge["status"] == "succeeded":
            self._keep("balance_transactions", self._charge_transaction, of)
        self._keep("events", self._charge_event, of)
        return charge

    # --- vendor shapes, each drawn from the world ------------------------------------------------
    def _customer(self, p: Person) -> dict:
        first_order = p.orders[0].created_at
        return {"id": p.stripe_customer_id, "object": "customer", "email": p.stripe_email,
                "name": f"{p.first_name.title()} {p.last_name.title()}", "balance": 0,
                "created": _ts(first_order) - 60, "currency": "usd", "delinquent": False,
                "livemode": False, "metadata": {}}

    def _new_charge(self, of: ChargeOf) -> dict:
        """A charge as it was made (nothing refunded yet): of an order's payment in the currency the buyer paid
        in, or one made outside the shop in the settlement currency."""
        source, n = of
        if isinstance(source, Unlinked):
            return self._charge_record(source.charge_id, "succeeded", source.amount, source.created, source.customer,
                                       source.email, None, {}, source.description, SETTLEMENT)
        seed, order, payer = self.world.seed, source.order, source.payer
        currency = order.currency.lower()
        intent_id = None if source.setup.checkout == LEGACY_APP else payment_intent_id(seed, order)
        metadata = {"shopify_order_id": str(order.order_id)} if source.setup.writes_metadata else {}
        return self._charge_record(charge_id(seed, order, n), charge_attempts(order)[n],
                                   minor(order.presentment_total, currency), _ts(order.created_at) - 30 + n * 20,
                                   payer.stripe_customer_id, payer.stripe_email, intent_id, metadata,
                                   f"Shopify order #{order.number}", currency)

    def _charge_record(self, charge_id: str, status: str, amount: int, created: int, customer: str | None,
                       email: str | None, intent_id: str | None, metadata: dict, description: str,
                       currency: str) -> dict:
        succeeded = status == "succeeded"
        return {
            "id": charge_id, "object": "charge", "amount": amount,
            "amount_captured": amount if succeeded else 0, "amount_refunded": 0, "refunded": False,
            "currency": currency, "customer": customer, "created": created,
            "status": status, "paid": succeeded, "captured": succeeded,
            "failure_code": None if succeeded else "card_declined",
            "failure_message": None if succeeded else "Your card was declined.",
            "payment_intent": intent_id, "balance_transaction": self._transaction_id(charge_id) if succeeded else None,
            "billing_details": {"email": email, "name": None},
            "metadata": dict(metadata), "livemode": False, "description": description,
        }

    def _refunds(self, payment: Payment) -> list:
        """The order's succeeded Shopify refunds, each refunded against its succeeded charge, in order."""
        return [r for r in payment.order.refunds if r.succeeded]

    def _charge_as_of(self, of: ChargeOf, refunds: int | None = None) -> dict:
        """A charge after its first `refunds` refunds (None: all of them, as it is now)."""
        charge = self._new_charge(of)
        source, _ = of
        if isinstance(source, Payment) and charge["status"] == "succeeded":
            done = self._refunds(source)[:refunds]
            if done:
                charge["amount_refunded"] = sum(minor(r.presentment_amount, charge["currency"]) for r in done)
                charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        return charge

    def _charge(self, of: ChargeOf) -> dict:
        return self._charge_as_of(of)

    def _paid(self, payment: Payment) -> ChargeOf:
        """The payment's succeeded charge (every payment ends with one), which its refunds are against."""
        return payment, len(charge_attempts(payment.order)) - 1

    def _intent(self, payment: Payment) -> dict:
        order, last = payment.order, self._paid(payment)
        first = self._new_charge((payment, 0))
        return {
            "id": first["payment_intent"], "object": "payment_intent", "amount": first["amount"],
            "amount_received": first["amount"], "capture_method": "automatic",
            "confirmation_method": "automatic", "created": first["created"] - 5, "currency": first["currency"],
            "customer": payment.payer.stripe_customer_id, "latest_charge": charge_id(self.world.seed, order, last[1]),
            "livemode": False, "metadata": dict(first["metadata"]), "payment_method_types": ["card"],
            "status": "succeeded", "canceled_at": None, "description": f"Shopify order #{order.number}",
        }

    def _refund(self, of: tuple[Payment, int]) -> dict:
        payment, k = of
        r = self._refunds(payment)[k]
        charge = self._new_charge(self._paid(payment))
        refund = {"id": refund_id(self.world.seed, r.refund_id), "object": "refund",
                  "amount": minor(r.presentment_amount, charge["currency"]), "charge": charge["id"],
                  "created": _ts(r.processed_at), "currency": charge["currency"],
                  "payment_intent": charge["payment_intent"], "reason": "requested_by_customer",
                  "status": "succeeded", "balance_transaction": None,
                  "metadata": {"shopify_refund_id": str(r.refund_id)}}
        refund["balance_transaction"] = self._transaction_id(refund["id"])
        return refund

    def _transaction_id(self, source_id: str) -> str:
        return "txn_" + stable_token(self.world.seed, "txn", source_id, length=24)

    def _charge_transaction(self, of: ChargeOf) -> dict:
        charge, (source, _) = self._new_charge(of), of
        settled = minor(source.order.total, SETTLEMENT) if isinstance(source, Payment) else charge["amount"]
        return self._balance_transaction(charge, "charge", settled)

    def _refund_transaction(self, of: tuple[Payment, int]) -> dict:
        payment, k = of
        return self._balance_transaction(self._refund(of), "refund",
                                         -minor(self._refunds(payment)[k].amount, SETTLEMENT))

    def _balance_transaction(self, source: dict, kind: str, amount: int) -> dict:
        """A balance transaction of `kind` (`charge` or `refund`) for `amount` in the account's settlement
        currency, with the rate it was converted at when the charge was in another; its `status` is set when
        served."""
        charged = fee(amount) if kind == "charge" else 0
        currency = SETTLEMENT
        converted = source["currency"] != SETTLEMENT
        return {
            "id": self._transaction_id(source["id"]),
            "object": "balance_transaction", "amount": amount, "available_on": source["created"] + int(
                AVAILABLE_AFTER.total_seconds()), "created": source["created"], "currency": currency,
            "description": source.get("description"), "fee": charged, "net": amount - charged,
            "fee_details": [{"amount": charged, "currency": currency, "type": "stripe_fee",
                             "description": "Stripe processing fees", "application": None}] if charged else [],
            "reporting_category": kind, "source": source["id"], "status": "pending", "type": kind,
            "exchange_rate": round(abs(amount) / MINOR_UNITS[SETTLEMENT] / (
                abs(source["amount"]) / MINOR_UNITS[source["currency"]]), 6) if converted else None,
        }

    def _event(self, kind: str, created: int, obj: dict, previous: dict | None = None) -> dict:
        """An event whose `data.object` is `obj` as it was at the event."""
        data: dict = {"object": obj}
        if previous is not None:
            data["previous_attributes"] = previous
        return {"id": "evt_" + stable_token(self.world.seed, "event", kind, obj["id"], created, length=24),
                "object": "event", "api_version": API_VERSION, "created": created, "data": data, "livemode": False,
                "pending_webhooks": 0, "request": {"id": None, "idempotency_key": None}, "type": kind}

    def _customer_event(self, of: tuple[str, int, Person]) -> dict:
        kind, created, p = of
        return self._event(kind, created, self._customer(p))

    def _charge_event(self, of: ChargeOf) -> dict:
        charge = self._new_charge(of)
        return self._event(f"charge.{charge['status']}", charge["created"], charge)

    def _refund_event(self, of: tuple[Payment, int]) -> dict:
        """`charge.refunded` at a refund: the charge after it, and what it changed."""
        payment, k = of
        before, after = self._charge_as_of(self._paid(payment), k), self._charge_as_of(self._paid(payment), k + 1)
        previous = {"amount_refunded": before["amount_refunded"]}
        if after["amount_refunded"] >= after["amount"]:
            previous["refunded"] = before["refunded"]
        return self._event("charge.refunded", _ts(self._refunds(payment)[k].processed_at), after, previous)

    def _unlinked(self, p: Person) -> Unlinked | None:
        """For some customers, a charge made outside the shop: a wholesale invoice (on their customer) or a
        manual charge in the dashboard (no customer, sometimes no email). It pays no order, and it is at
        least UNLINKED_CLEARANCE from each of their orders, so no fair match by email, amount and time
        exists. Drawn from the person's own `stripe_unlinked` stream."""
        rng = random.Random(f"{self.world.seed}/{p.person_id}/stripe_unlinked")
        if rng.random() >= UNLINKED_CHARGE:
            return None
        invoice = rng.random() < 0.65
        amount = rng.randint(5_000, 150_000)
        orders = [o for o in p.orders if o.created_at <= self.world.start]  # the world's start: never redrawn
        if not orders:
            return None
        start = orders[0].created_at  # their customer exists from (just before) the first order
        for _ in range(20):
            at = (start + (self.world.start - start) * rng.random()).replace(microsecond=0)
            if all(abs(at - o.created_at) >= UNLINKED_CLEARANCE for o in orders):
                break
        else:
            return None
        return Unlinked(p, "ch_" + stable_token(self.world.seed, "unlinked", p.person_id, length=24), amount, _ts(at),
                        p.stripe_customer_id if invoice else None,
                        p.stripe_email if invoice or rng.random() < 0.5 else None,
                        "Invoice: wholesale order" if invoice else "Manual charge")

    def served(self, resource: str, now: datetime) -> Table | Iterator[dict]:
        """A list's records as served at `now`: events within their retention, balances' status by then."""
        records = self.lists[resource]
        if resource == "events":  # newest first: those within retention are a prefix
            return records.head(bisect.bisect_right(records, -_ts(now - EVENT_RETENTION), key=_newest_first_key))
        if resource == "balance_transactions":
            return (self._with_status(t, now) for t in records)
        return records

    @staticmethod
    def _with_status(transaction: Mapping, now: datetime) -> dict:
        return {**whole(transaction), "status": "available" if transaction["available_on"] <= _ts(now) else "pending"}

    def served_counts(self, now: datetime | None = None) -> dict[str, int]:
        now = now or self.world.clock
        # retention drops events; a balance's status changes nothing to count (and would draw every one)
        return {resource: len(self.served(resource, now)) if resource == "events" else len(self.lists[resource])
                for resource in self.lists}

    def received(self) -> dict[str, list]:
        return {"raw": [], "deduplicated": []}  # the sandbox's Stripe takes no writes

    # --- rate limit and faults (every vendor has these) ----------------------------------------
    def rate_limited(self, retry_after: float) -> Response:
        """Stripe's 429. Stripe documents no `Retry-After`; its SDKs back off when `Stripe-Should-Retry`
        says so."""
        return Response.json(429, {"error": {
            "code": "rate_limit", "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
            "message": "Request rate limit exceeded. You can learn more about rate limits here "
                       "https://stripe.com/docs/rate-limits.", "type": "invalid_request_error"}},
            {"Stripe-Should-Retry": "true"})

    def usage_headers(self, used: int) -> dict[str, str]:
        return {}  # Stripe shows no budget

    def shiftable(self, request: Request) -> bool:
        """Never: `starting_after` is an object id in an order by `created`, neither of which changes."""
        return False

    # --- HTTP ----------------------------------------------------------------------------------
    def _authorized(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        key = None
        if header.startswith("Bearer "):
            key = header[7:]
        elif header.startswith("Basic "):
            try:
                key = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except ValueError:
                key = ""
        if not key:
            raise _error(401, "You did not provide an API key. You need to provide your API key in the "
                              "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
        if key != self.api_key:
            raise _error(401, f"Invalid API Key provided: {key[:8]}{'*' * max(len(key) - 12, 0)}{key[-4:]}")

    def handle(self, request: Request) -> Response:
        self._authorized(request)
        if request.method != "GET":
            raise _error(404, f"Unrecognized request URL ({request.method}: {request.path}).")
        if request.path == "/v1/account":
            return Response.json(200, {"id": self.account_id, "object": "account", "default_currency": "usd"})
        resource = request.path.removeprefix("/v1/")
        if resource not in self.lists:
            raise _error(404, f"Unrecognized request URL (GET: {request.path}).")
        # balance transactions get their status by `now` on the served page only, not on the whole list
        records = self.lists[resource] if resource == "balance_transactions" else self.served(resource, request.now)
        return self._list(request, resource, self._filtered(request, resource, records))

    def _filtered(self, request: Request, resource: str, records: Table) -> Table:
        """The records the list's own filters keep (`created` is applied with paging), as a view of `records`
        kept for the next pages (a few of the latest filters are kept)."""
        where, params = [], []
        for name in FILTERS[resource]:
            wanted = request.arg(name)
            if wanted is not None:
                where.append(f"{name} = ?")
                params.append(wanted)
        if resource == "events":
            kind, kinds = request.arg("type"), request.query.get("types[]")
            if kind and kinds:
                raise _error(400, "You may only specify one of these parameters: type, types.", "types")
            if kinds and len(kinds) > MAX_EVENT_TYPES:
                raise _error(400, f"You may specify at most {MAX_EVENT_TYPES} types.", "types")
            patterns = kinds or ([kind] if kind else [])
            if patterns:  # a type, or a prefix ending in `*`
                where.append(" OR ".join("substr(type, 1, ?) = ?" if p.endswith("*") else "type = ?" for p in patterns))
                for p in patterns:
                    params += [len(p) - 1, p[:-1]] if p.endswith("*") else [p]
        if not where:
            return records
        condition = " AND ".join(f"({w})" for w in where)
        key = (records.name, len(records), condition, tuple(params))  # a test may give the vendor another table
        view = self._views.pop(key, None) or records.view(condition, params)
        self._views[key] = view  # the latest last
        while len(self._views) > KEPT_VIEWS:  # dropped once no request reads it any more
            self._views.pop(next(iter(self._views)), None)
        return view

    def _list(self, request: Request, resource: str, records: Table) -> Response:
        """A page of `records` (newest first, as every list is kept): `created` bounds and the cursor are found
        by bisection, so a page costs the same at the end of a million records as at the start."""
        raw_limit = request.arg("limit", "10")
        try:
            limit = int(raw_limit)
        except ValueError:
            raise _error(400, "Invalid integer: " + raw_limit, "limit", "parameter_invalid_integer") from None
        if not 1 <= limit <= 100:
            raise _error(400, "This value must be greater than or equal to 1 and less than or equal to 100.",
                         "limit", "parameter_invalid_integer")
        after, before = request.arg("starting_after"), request.arg("ending_before")
        if after and before:
            raise _error(400, "You may only specify one of these parameters: ending_before, starting_after.",
                         "ending_before")
        lo, hi = self._created_range(request, records)
        start, stop = lo, hi
        if after or before:
            cursor = after or before
            position = self._position(resource, records, cursor, lo, hi)
            if position is None:
                raise _error(400, f"No such object: '{cursor}'", "starting_after" if after else "ending_before",
                             "resource_missing")
            start, stop = (position + 1, hi) if after else (max(lo, position - limit), position)
        page = records[start:min(stop, start + limit)]
        if resource == "balance_transactions":
            page = [self._with_status(t, request.now) for t in page]
        return Response.json(200, {"object": "list", "url": f"/v1/{resource}",
                                   "has_more": stop - start > limit, "data": page})

    @staticmethod
    def _created_range(request: Request, records: Table) -> tuple[int, int]:
        """The slice [lo, hi) of `records` (newest first) that the `created` filters keep."""
        lo, hi = 0, len(records)
        for name, values in request.query.items():
            match = RANGE.match(name)
            bound_name = match.group(1) if match else ("eq" if name == "created" else None)
            if bound_name is None:
                continue
            try:
                bound = -int(values[-1])  # on the ascending key: -created
            except ValueError:
                raise _error(400, f"Invalid integer: {values[-1]}", name, "parameter_invalid_integer") from None
            if bound_name in ("gte", "gt", "eq"):  # created >= bound: key <= -bound
                side = bisect.bisect_left if bound_name == "gt" else bisect.bisect_right
                hi = min(hi, side(records, bound, key=_newest_first_key))
            if bound_name in ("lte", "lt", "eq"):
                side = bisect.bisect_right if bound_name == "lt" else bisect.bisect_left
                lo = max(lo, side(records, bound, key=_newest_first_key))
        return lo, max(lo, hi)

    def _position(self, resource: str, records: Table, cursor: str, lo: int, hi: int) -> int | None:
        """Where the object `cursor` stands in records[lo:hi], or None: found by its `created` (looked up in the
        list by id), then among the few records created in the same second."""
        found = self.lists[resource].where("id = ?", (cursor,))
        if not found:
            return None
        created = found[0]["created"]
        i = bisect.bisect_left(records, -created, lo, hi, key=_newest_first_key)
        for record in records.walk(i, hi):
            if record["created"] != created:
                break
            if record["id"] == cursor:
                return i
            i += 1
        return None
