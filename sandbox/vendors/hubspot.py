"""HubSpot CRM v3: contacts and account details.

Contract (api-contracts.md section 4): `Authorization: Bearer <private-app token>`; list `limit` at most
100 with an `after` cursor in `paging.next`; property values are all strings; archived records only with
`archived=true`; timestamps ISO-8601 in UTC with milliseconds. Rate limit (section 4.4): 100 requests per
10 seconds (Free/Starter private app), over it 429 `RATE_LIMIT` / `TEN_SECONDLY_ROLLING`, with
`Retry-After` only sometimes.
"""

from __future__ import annotations

import math
import random
from datetime import datetime

from sandbox.http import HttpError, Request, Response, int_arg
from sandbox.limits import Budget
from sandbox.world import Person, World, stable_token

NAME = "hubspot"
PORTAL_ID = 40_000_000
DEFAULT_PROPERTIES = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _body(message: str, **fields: str) -> dict:
    return {"status": "error", "message": message, **fields,
            "correlationId": "00000000-0000-4000-8000-" + stable_token(message, length=12).lower()}


def _error(status: int, message: str, category: str) -> HttpError:
    return HttpError(Response.json(status, _body(message, category=category)))


class Hubspot:
    name = NAME
    rate_limit = Budget(size=100, leak_per_second=10.0)

    def __init__(self, world: World):
        self.world = world
        self._retry_after_rng = random.Random(f"{world.seed}/hubspot/retry-after")
        self.token = "pat-na1-sandbox-" + stable_token(world.seed, "hubspot", length=20)
        members = sorted((p for p in world.people if p.hubspot_contact_id), key=lambda p: int(p.hubspot_contact_id))
        self.contacts = [self._contact(p) for p in members]

    def index(self, root: str) -> dict:
        return {"base_url": f"{root}/{NAME}", "credentials": {"access_token": self.token}}

    def _contact(self, p: Person) -> dict:
        created = iso_ms(p.created_at)
        properties = {"createdate": created, "email": p.hubspot_email, "firstname": p.first_name.title(),
                      "lastname": p.last_name.title(), "hs_object_id": p.hubspot_contact_id,
                      "lastmodifieddate": created, "lifecyclestage": "customer" if p.orders else "lead",
                      "hs_email_optout": "false" if p.accepts_marketing else "true"}
        return {"id": p.hubspot_contact_id, "properties": properties, "createdAt": created,
                "updatedAt": created, "archived": False}

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
        """Never: `after` is a contact id in an order by id, which no reorder can make skip or repeat."""
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
        if request.method == "GET" and request.path == "/crm/v3/objects/contacts":
            return self._list(request, self.contacts)
        raise _error(404, f"Unable to route {request.method} {request.path}", "OBJECT_NOT_FOUND")

    def _list(self, request: Request, records: list[dict]) -> Response:
        invalid = lambda message: _error(400, message, "VALIDATION_ERROR")  # noqa: E731
        limit = int_arg(request, "limit", 10, invalid)
        if not 1 <= limit <= 100:
            raise invalid(f"limit must be between 1 and 100, got {limit}")
        after = int_arg(request, "after", 0, invalid)
        archived = request.arg("archived", "false") == "true"
        wanted = request.arg("properties")
        names = [n for n in wanted.split(",") if n] if wanted else list(DEFAULT_PROPERTIES)
        selected = [r for r in records if r["archived"] == archived and int(r["id"]) > after]
        page = [{**r, "properties": {n: r["properties"].get(n) for n in names}} for r in selected[:limit]]
        body: dict = {"results": page}
        if len(selected) > limit:
            cursor = page[-1]["id"]
            body["paging"] = {"next": {"after": cursor, "link": f"{request.root_url}/{NAME}{request.path}"
                                                                 f"?after={cursor}&limit={limit}"}}
        return Response.json(200, body)
