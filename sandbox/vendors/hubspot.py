"""HubSpot CRM v3: contacts and account details.

Contract (api-contracts.md section 4): `Authorization: Bearer <private-app token>`; list `limit` at most
100 with an `after` cursor in `paging.next`; property values are all strings; archived records only with
`archived=true`; timestamps ISO-8601 in UTC with milliseconds.
"""

from __future__ import annotations

from datetime import datetime

from sandbox.http import HttpError, Request, Response, int_arg
from sandbox.world import Person, World, stable_token

NAME = "hubspot"
PORTAL_ID = 40_000_000
DEFAULT_PROPERTIES = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _error(status: int, message: str, category: str) -> HttpError:
    return HttpError(Response.json(status, {
        "status": "error", "message": message, "category": category,
        "correlationId": "00000000-0000-4000-8000-" + stable_token(message, length=12).lower()}))


class Hubspot:
    name = NAME

    def __init__(self, world: World):
        self.world = world
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
