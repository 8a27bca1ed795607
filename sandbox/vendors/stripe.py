"""Stripe API v1: customers, charges, account.

Contract (api-contracts.md section 3): Basic auth with the secret key as user name, or Bearer; lists
newest first with `limit` 1-100 (default 10), `starting_after` / `ending_before` (never both) and
`created[gte|gt|lte|lt]`; envelope `{object: "list", url, has_more, data}` whose `url` is relative to
the API base; amounts in the currency's minor unit; any `Stripe-Version` header accepted. Rate limit
(section 3.4): 25 requests per second in test mode, over it 429 `rate_limit` with `Stripe-Should-Retry`.
"""

from __future__ import annotations

import base64
import re

from sandbox.http import HttpError, Request, Response
from sandbox.limits import Budget
from sandbox.world import SHOP_CURRENCY, Person, World, stable_token

NAME = "stripe"
MINOR_UNITS = {"usd": 100, "eur": 100, "gbp": 100, "cad": 100, "jpy": 1}
RANGE = re.compile(r"^created\[(gte|gt|lte|lt)\]$")


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> HttpError:
    body = {"type": "invalid_request_error", "message": message}
    if param:
        body["param"] = param
    if code:
        body["code"] = code
    return HttpError(Response.json(status, {"error": body}))


def minor(amount, currency: str) -> int:
    return int(amount * MINOR_UNITS[currency])


class Stripe:
    name = NAME
    rate_limit = Budget(size=25, leak_per_second=25.0)

    def __init__(self, world: World):
        self.world = world
        self.api_key = f"sk_test_sandbox{world.seed}" + stable_token(world.seed, "key", length=16)
        self.account_id = "acct_" + stable_token(world.seed, "account", length=16)
        payers = [p for p in world.people if p.stripe_customer_id]
        self.lists = {
            "customers": self._newest_first([self._customer(p) for p in payers]),
            "charges": self._newest_first(self._charges()),
        }

    def index(self, root: str) -> dict:
        return {"base_url": f"{root}/{NAME}", "credentials": {"api_key": self.api_key}}

    @staticmethod
    def _newest_first(records: list[dict]) -> list[dict]:
        return sorted(records, key=lambda r: (r["created"], r["id"]), reverse=True)

    def _customer(self, p: Person) -> dict:
        first_order = p.orders[0].created_at
        return {"id": p.stripe_customer_id, "object": "customer", "email": p.stripe_email,
                "name": f"{p.first_name.title()} {p.last_name.title()}", "balance": 0,
                "created": int(first_order.timestamp()) - 60, "currency": "usd", "delinquent": False,
                "livemode": False, "metadata": {}}

    def _charges(self) -> list[dict]:
        charges = []
        currency = SHOP_CURRENCY.lower()
        for order in self.world.orders():
            if not order.paid_by_stripe:
                continue
            person = self.world.person(order.person_id)
            created = int(order.created_at.timestamp())
            attempts = ["failed", "succeeded"] if order.failed_attempt_first else ["succeeded"]
            for n, status in enumerate(attempts):
                refunded = minor(order.refunded, currency) if status == "succeeded" else 0
                charge_id = "ch_" + stable_token(self.world.seed, "charge", order.order_id, n, length=24)
                charges.append({
                    "id": charge_id, "object": "charge", "amount": minor(order.total, currency),
                    "amount_captured": minor(order.total, currency) if status == "succeeded" else 0,
                    "amount_refunded": refunded, "refunded": status == "succeeded" and refunded >= minor(
                        order.total, currency), "currency": currency, "customer": person.stripe_customer_id,
                    "created": created - 30 + n * 20, "status": status, "paid": status == "succeeded",
                    "captured": status == "succeeded",
                    "failure_code": "card_declined" if status == "failed" else None,
                    "payment_intent": "pi_" + stable_token(self.world.seed, "pi", order.order_id, length=24),
                    "billing_details": {"email": person.stripe_email, "name": None},
                    "metadata": {"shopify_order_id": str(order.order_id)}, "livemode": False,
                    "description": f"Shopify order #{order.number}",
                })
        return charges

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
        return self._list(request, resource, self.lists[resource])

    def _list(self, request: Request, resource: str, records: list[dict]) -> Response:
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
        selected = [r for r in records if self._created_matches(request, r["created"])]
        if after or before:
            ids = [r["id"] for r in selected]
            cursor = after or before
            if cursor not in ids:
                raise _error(400, f"No such object: '{cursor}'", "starting_after" if after else "ending_before",
                             "resource_missing")
            position = ids.index(cursor)
            if after:
                selected = selected[position + 1:]
            else:
                selected = selected[max(0, position - limit):position]
        page = selected[:limit]
        return Response.json(200, {"object": "list", "url": f"/v1/{resource}",
                                   "has_more": len(selected) > limit, "data": page})

    @staticmethod
    def _created_matches(request: Request, created: int) -> bool:
        for name, values in request.query.items():
            match = RANGE.match(name)
            bound_name = match.group(1) if match else ("eq" if name == "created" else None)
            if bound_name is None:
                continue
            try:
                bound = int(values[-1])
            except ValueError:
                raise _error(400, f"Invalid integer: {values[-1]}", name, "parameter_invalid_integer") from None
            ok = {"gte": created >= bound, "gt": created > bound, "lte": created <= bound,
                  "lt": created < bound, "eq": created == bound}[bound_name]
            if not ok:
                return False
        return True
