"""ActiveCampaign API v3: contacts.

Contract (api-contracts.md section 1): `Api-Token` header; `limit` (default 20, capped at 100) and a
zero-based `offset`; `meta.total` is a string; ids and most numbers are strings; timestamps carry the
account's local UTC offset; `filters[updated_after]` is a date, inclusive. Rate limit (section 1.4): 5
requests per second per account, over it 429 with `Retry-After`.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sandbox.http import HttpError, Request, Response, int_arg
from sandbox.limits import Budget
from sandbox.world import Person, World, stable_token

NAME = "activecampaign"
ACCOUNT_TZ = ZoneInfo("America/Chicago")
MAX_LIMIT = 100
ROUTES = {"/api/3/contacts": "contacts"}  # list path -> resource


def local(moment: datetime) -> str:
    return moment.astimezone(ACCOUNT_TZ).isoformat(timespec="seconds")


def _error(status: int, message: str) -> HttpError:
    return HttpError(Response.json(status, {"message": message}))


def _invalid(message: str) -> HttpError:
    return _error(422, message)


class Activecampaign:
    name = NAME
    rate_limit = Budget(size=5, leak_per_second=5.0)

    def __init__(self, world: World):
        self.world = world
        self.token = stable_token(world.seed, "activecampaign", length=40).lower()
        members = sorted((p for p in world.people if p.activecampaign_contact_id),
                         key=lambda p: int(p.activecampaign_contact_id))
        self.lists = {"contacts": [self._contact(p) for p in members]}

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
        """Offset paging is what a reorder breaks: any follow-up page inside an authorized listing."""
        resource = ROUTES.get(request.path) if request.method == "GET" else None
        if resource is None or request.headers.get("api-token") != self.token:
            return False
        try:
            return 0 < self._offset(request) < len(self._select(request, self.lists[resource]))
        except HttpError:
            return False

    # --- HTTP ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.headers.get("api-token") != self.token:
            raise _error(403, "You are not authorized to access this resource")
        resource = ROUTES.get(request.path) if request.method == "GET" else None
        if resource is None:
            raise _error(404, f"No Result found for route {request.path}")
        return self._list(request, resource)

    def _list(self, request: Request, resource: str) -> Response:
        limit = min(int_arg(request, "limit", 20, _invalid), MAX_LIMIT)
        offset = self._offset(request)
        selected = self._select(request, self.lists[resource])
        if request.shift and 0 < offset < len(selected):
            selected = self._shift(resource, moved=selected[offset - 1], selected=selected)
        page = selected[offset:offset + limit]
        return Response.json(200, {"scoreValues": [], resource: page, "meta": {
            "total": str(len(selected)), "page_input": {"limit": limit, "offset": offset}}})

    def _shift(self, resource: str, moved: dict, selected: list[dict]) -> list[dict]:
        """The last record already served is updated now and moves to the end of the listing, for good:
        the first record not yet served slides back into the served range, so a naive offset pager skips
        it, and meets the moved one again on its last page. No record changes its content."""
        self.lists[resource] = [r for r in self.lists[resource] if r is not moved] + [moved]  # one atomic swap
        return [r for r in selected if r is not moved] + [moved]

    @staticmethod
    def _offset(request: Request) -> int:
        return int_arg(request, "offset", 0, _invalid)

    @staticmethod
    def _select(request: Request, records: list[dict]) -> list[dict]:
        updated_after = request.arg("filters[updated_after]")
        if not updated_after:
            return records
        try:
            bound = date.fromisoformat(updated_after[:10])
        except ValueError:
            raise _invalid(f"filters[updated_after] is not a date: {updated_after}") from None
        return [r for r in records if datetime.fromisoformat(r["udate"]).date() >= bound]
