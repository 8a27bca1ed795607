"""ActiveCampaign API v3: contacts.

Contract (api-contracts.md section 1): `Api-Token` header; `limit` (default 20, capped at 100) and a
zero-based `offset`; `meta.total` is a string; ids and most numbers are strings; timestamps carry the
account's local UTC offset; `filters[updated_after]` is a date, inclusive.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sandbox.http import HttpError, Request, Response, int_arg
from sandbox.world import Person, World, stable_token

NAME = "activecampaign"
ACCOUNT_TZ = ZoneInfo("America/Chicago")
MAX_LIMIT = 100


def local(moment: datetime) -> str:
    return moment.astimezone(ACCOUNT_TZ).isoformat(timespec="seconds")


def _error(status: int, message: str) -> HttpError:
    return HttpError(Response.json(status, {"message": message}))


class Activecampaign:
    name = NAME

    def __init__(self, world: World):
        self.world = world
        self.token = stable_token(world.seed, "activecampaign", length=40).lower()
        members = sorted((p for p in world.people if p.activecampaign_contact_id),
                         key=lambda p: int(p.activecampaign_contact_id))
        self.contacts = [self._contact(p) for p in members]

    def index(self, root: str) -> dict:
        return {"base_url": f"{root}/{NAME}/api/3", "credentials": {"api_token": self.token}}

    def _contact(self, p: Person) -> dict:
        utc = p.created_at.strftime("%Y-%m-%d %H:%M:%S")
        return {"id": p.activecampaign_contact_id, "email": p.activecampaign_email,
                "firstName": p.first_name.title(), "lastName": p.last_name.title(), "phone": "",
                "orgid": "0", "cdate": local(p.created_at), "udate": local(p.created_at),
                "created_utc_timestamp": utc, "updated_utc_timestamp": utc, "deleted": "0",
                "deleted_at": "0000-00-00 00:00:00", "bounced_date": "0000-00-00", "adate": None,
                "edate": None, "anonymized": "0", "gravatar": "1", "organization": None}

    def handle(self, request: Request) -> Response:
        if request.headers.get("api-token") != self.token:
            raise _error(403, "You are not authorized to access this resource")
        if request.method == "GET" and request.path == "/api/3/contacts":
            return self._list(request, "contacts", self.contacts)
        raise _error(404, f"No Result found for route {request.path}")

    def _list(self, request: Request, resource: str, records: list[dict]) -> Response:
        invalid = lambda message: _error(422, message)  # noqa: E731
        limit = min(int_arg(request, "limit", 20, invalid), MAX_LIMIT)
        offset = int_arg(request, "offset", 0, invalid)
        selected = records
        updated_after = request.arg("filters[updated_after]")
        if updated_after:
            try:
                bound = date.fromisoformat(updated_after[:10])
            except ValueError:
                raise invalid(f"filters[updated_after] is not a date: {updated_after}") from None
            selected = [r for r in records if datetime.fromisoformat(r["udate"]).date() >= bound]
        page = selected[offset:offset + limit]
        return Response.json(200, {"scoreValues": [], resource: page, "meta": {
            "total": str(len(selected)), "page_input": {"limit": limit, "offset": offset}}})
