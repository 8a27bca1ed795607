"""One synthetic world: people who appear in several vendors' systems, with the ground truth kept.

Every person is generated from their own random stream (`seed/person_id`), so a person's records do
not depend on how many others exist, and the same seed always gives the same world. Vendor records
are built in each vendor's own shape (see `sandbox/vendors/`), while the truth is kept in plain
Python values and exported by `sandbox.truth`, following DESIGN.md's metric definitions.

Only ids are numbered across people (`Numbering`, in SQL over a few facts per person), so a world served by
the sandbox need not keep anyone: built `streamed`, it draws each person again when read (`Redrawn`), and
what it holds does not grow with its size (benchmarks/README.md, "Sandbox serving").
"""

from __future__ import annotations

import functools
import hashlib
import random
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sandbox.store import Store

CENT = Decimal("0.01")
SHOP_CURRENCY = "USD"
# Buyers pay in their country's currency (Shopify's presentment currency); the shop reports in its own.
# Rates are fixed (shop currency per unit): the world has no exchange-rate moves. Yen has no minor unit.
CURRENCY_OF = {"US": "USD", "CA": "CAD", "GB": "GBP", "DE": "EUR", "JP": "JPY"}
RATES = {"USD": Decimal("1"), "CAD": Decimal("0.73"), "GBP": Decimal("1.27"), "EUR": Decimal("1.08"),
         "JPY": Decimal("0.0067")}
MINOR_DIGITS = {"JPY": 0}  # decimal places of a currency's minor unit where not 2
JAPAN_SHARE = 0.03  # buyers in Japan, drawn apart (from the `currency` stream) so no earlier draw moved

# Shopify financial statuses that make an order count as revenue (DESIGN.md, "Counted order").
COUNTED_STATUSES = frozenset({"paid", "partially_paid", "partially_refunded", "refunded"})

FIRST_NAMES = ["ada", "ben", "cleo", "dev", "eva", "finn", "gia", "hugo", "iris", "jon", "kai", "lena",
               "milo", "nora", "omar", "pia", "quinn", "rosa", "sam", "tara", "uma", "vic", "wren", "yara"]
LAST_NAMES = ["nguyen", "smith", "garcia", "muller", "rossi", "tanaka", "okafor", "silva", "kowalski",
              "haddad", "larsen", "dubois", "novak", "reyes", "kim", "patel"]
DOMAINS = ["example.com", "mail.example.org", "example.net"]
PRODUCTS = [("TEE-BLK", "Black tee", Decimal("24.00")), ("HOOD-GRY", "Grey hoodie", Decimal("59.00")),
            ("CAP-NVY", "Navy cap", Decimal("19.50")), ("MUG-WHT", "White mug", Decimal("12.00")),
            ("BAG-CNV", "Canvas bag", Decimal("34.90")), ("SOCK-3P", "Socks 3-pack", Decimal("15.75"))]
COUNTRIES = ["US", "US", "US", "CA", "GB", "DE"]
# marketing touches: (utm source, utm medium) -> HubSpot's original-source category
CHANNELS = {("google", "organic"): "ORGANIC_SEARCH", ("google", "cpc"): "PAID_SEARCH",
            ("instagram", "social"): "SOCIAL_MEDIA", ("newsletter", "email"): "EMAIL_MARKETING",
            ("(direct)", "(none)"): "DIRECT_TRAFFIC", ("partner-blog.example", "referral"): "REFERRALS"}
CAMPAIGNS = ["spring_sale", "summer_drop", "black_friday", "welcome_series", "restock"]
CONVERTING_SHARE = 0.6  # orders whose session came from a tracked touch (Shopify's `landing_site` records it)
RESEARCH_VISITS = [0, 1, 1, 2, 3]  # touches in the two weeks before an order, one drawn per order
DEAL_NAMES = ["Wholesale order", "Gift cards", "Team merch", "Event kit", "Subscription box"]
# How the world moves on after its start, when the sandbox's clock is advanced (see World.build)
ARRIVALS_PER_DAY = 0.002  # new people per day, as a share of the world's size
NEXT_ORDER_MEAN_DAYS = 150  # a buyer orders again after this many days on average
CRM_EDIT_MEAN_DAYS = 120  # someone edits a CRM contact after this many days on average
LATE_REFUND_SHARE = 0.08  # paid orders of the 30 days before the start that are refunded after it
REFUND_WINDOW = timedelta(days=30)  # refunds come within this long after the order
# Deletions (see _deletions)
STRIPE_DELETED_SHARE = 0.03  # Stripe customers deleted before the start
STRIPE_DELETION_MEAN_DAYS = 2000  # after the start, a Stripe customer is deleted after this long on average
VOIDED_DELETED_SHARE = 0.8  # voided orders the shop deletes, 1 hour to 20 days after voiding them
# A bulk edit (an import that touched a quarter of HubSpot's contacts within one hour, ten days before the
# start, out of an incremental run's lookback): in a world of 100,000 people, more than 10,000 search hits in
# one hour, past search's result cap, which a backfill over that day meets
BULK_EDIT_SHARE = 0.25
BULK_EDIT_BEFORE = timedelta(days=10)
# first id of CRM contact records no default listing serves (merged, archived, deleted), apart from listed ones
UNLISTED_IDS = {"hubspot": 90_000_000, "activecampaign": 90_000_000}


def start_clock(seed: int) -> datetime:
    """The sandbox's clock when it starts: fixed per seed, never the wall clock."""
    return datetime(2026, 3, 2, 12, 0, tzinfo=UTC) + timedelta(days=seed % 28)


def money(value: Decimal, currency: str = SHOP_CURRENCY) -> Decimal:
    """An amount rounded half-even to its currency's minor unit."""
    return value.quantize(Decimal(1).scaleb(-MINOR_DIGITS.get(currency, 2)), rounding=ROUND_HALF_EVEN)


BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE62_PAIRS = [low + high for high in BASE62 for low in BASE62]  # two digits at a time, the lower one first


@functools.lru_cache(maxsize=8192)  # a record drawn again names the same ids (a charge, its intent, its balance)
def stable_token(*parts: object, length: int = 14) -> str:
    """A deterministic base-62 token, for vendor ids that are strings (Stripe's `cus_...`): the digits of the
    SHA-256 of `parts`, least significant first."""
    digest = int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest(), "big")
    out = []
    for _ in range(length // 2):
        digest, rem = divmod(digest, 3844)
        out.append(BASE62_PAIRS[rem])
    if length % 2:
        out.append(BASE62[digest % 62])
    return "".join(out)


def email_variant(rng: random.Random, email: str) -> str:
    """The same address as another system stores it: sometimes capitalised or padded with spaces."""
    roll = rng.random()
    if roll < 0.12:
        return email.upper()
    if roll < 0.24:
        local, domain = email.split("@")
        return f"{local.capitalize()}@{domain.capitalize()}"
    if roll < 0.34:
        return f"  {email} "
    return email


@dataclass(slots=True)
class Refund:
    refund_id: int
    processed_at: datetime
    amount: Decimal  # in the shop's currency: the presentment amount at the order's own rate (DESIGN.md)
    succeeded: bool
    presentment_amount: Decimal | None = None  # in the order's currency, as the buyer was refunded


@dataclass(slots=True)
class LineItem:
    line_item_id: int
    sku: str
    title: str
    price: Decimal
    quantity: int


@dataclass(slots=True)
class Order:
    person_id: int
    created_at: datetime
    email: str
    financial_status: str
    cancelled_at: datetime | None
    country: str
    line_items: list[LineItem]
    shipping: Decimal
    tax: Decimal
    discount: Decimal
    refunds: list[Refund]
    paid_by_stripe: bool
    failed_attempt_first: bool
    order_id: int = 0
    number: int = 0
    deleted_at: datetime | None = None  # the shop deleted it (voided orders only): Shopify lists it no more
    currency: str = SHOP_CURRENCY  # presentment: what the buyer paid in
    session: Touch | None = None  # the touch of its converting session, if a tracked touch brought it
    deletion_number: int = 0  # deleted: its place in the order the shop deleted orders (1, 2, ...)

    def presentment(self, amount: Decimal) -> Decimal:
        """A shop-currency amount of this order in its presentment currency, at the world's fixed rate."""
        return money(amount / RATES[self.currency], self.currency)

    @property
    def presentment_total(self) -> Decimal:
        return self.presentment(self.total)

    @property
    def subtotal(self) -> Decimal:
        return sum((li.price * li.quantity for li in self.line_items), Decimal("0"))

    @property
    def total(self) -> Decimal:
        return money(self.subtotal - self.discount + self.shipping + self.tax)

    @property
    def counted(self) -> bool:
        return self.financial_status in COUNTED_STATUSES

    @property
    def refunded(self) -> Decimal:
        return sum((r.amount for r in self.refunds if r.succeeded), Decimal("0"))

    @property
    def updated_at(self) -> datetime:
        times = [self.created_at] + [r.processed_at for r in self.refunds]
        if self.cancelled_at:
            times.append(self.cancelled_at)
        return max(times)


@dataclass(slots=True)
class Touch:
    """A marketing touch (a visit with its UTM parameters) before or around a person's orders."""

    person_id: int
    touched_at: datetime
    source: str
    medium: str
    campaign: str

    @property
    def channel(self) -> str:
        """HubSpot's original-source category for this touch (`hs_analytics_source`)."""
        return CHANNELS[(self.source, self.medium)]


@dataclass(slots=True)
class CrmRecord:
    """A CRM contact record of a person that the vendor's default listing does not serve.

    `merged` (HubSpot): a duplicate merged into the person's listed contact, its id then in the survivor's
    `hs_merged_object_ids`; `archived` (HubSpot) and `deleted` (ActiveCampaign): the person's only record
    in that vendor, deleted (the person is then not `in_hubspot` / `in_activecampaign`)."""

    person_id: int
    vendor: str  # "hubspot" | "activecampaign"
    kind: str  # "merged" | "archived" | "deleted"
    email: str
    created_at: datetime
    removed_at: datetime
    contact_id: str = ""


@dataclass(slots=True)
class Deal:
    """A CRM deal of a person: context, never revenue (DESIGN.md, "System of record")."""

    person_id: int
    vendor: str  # "hubspot" | "activecampaign"
    name: str
    amount: Decimal
    created_at: datetime
    updated_at: datetime
    stage: str  # "open" | "won" | "lost"; each vendor spells it its own way
    closed_at: datetime | None
    archived_at: datetime | None = None  # HubSpot only: a deleted deal
    deal_id: str = ""


@dataclass(slots=True)
class Person:
    person_id: int
    email: str
    first_name: str
    last_name: str
    created_at: datetime
    in_activecampaign: bool
    in_hubspot: bool
    has_shopify_account: bool
    stripe_payer: bool
    stripe_email_missing: bool
    accepts_marketing: bool
    buyer: bool = False  # places orders (some people never do)
    # the address as each system stores it
    activecampaign_email: str = ""
    hubspot_email: str = ""
    shopify_email: str = ""
    stripe_email: str | None = None
    orders: list[Order] = field(default_factory=list)
    # vendor ids, assigned once all people exist
    activecampaign_contact_id: str = ""
    hubspot_contact_id: str = ""
    shopify_customer_id: int | None = None
    stripe_customer_id: str = ""
    stripe_deleted_at: datetime | None = None  # their Stripe customer was deleted (its charges stay)
    # CRM facts and marketing touches, drawn from the person's own `crm` and `touches` streams (see _crm)
    touches: list[Touch] = field(default_factory=list)
    lifecycle: list[tuple[str, datetime]] = field(default_factory=list)  # HubSpot stage history, oldest first
    hubspot_updated_at: datetime | None = None  # the listed contact's lastmodifieddate
    hubspot_indexed_at: datetime | None = None  # late update: search sees the contact only from then on
    activecampaign_updated_at: datetime | None = None  # the listed contact's udate
    crm_records: list[CrmRecord] = field(default_factory=list)  # unlisted records: merged, archived, deleted
    deals: list[Deal] = field(default_factory=list)
    buyer_number: int = 0  # a buyer's place among buyers by their first order (1, 2, ...); 0 if they never ordered

    @property
    def sessions(self) -> dict[int, Touch]:
        """Order id -> the touch of its converting session."""
        return {o.order_id: o.session for o in self.orders if o.session}

    @property
    def counted_orders(self) -> list[Order]:
        return [o for o in self.orders if o.counted]


def _person(seed: int, person_id: int, clock: datetime, arrived_at: datetime | None = None) -> Person:
    """A person of the world at its start (`clock`), with their orders until then; or, with `arrived_at`,
    one who arrives later, whose orders all come from `_future`."""
    rng = random.Random(f"{seed}/{person_id}")
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{first}.{last}.{person_id}@{rng.choice(DOMAINS)}"
    created_at = clock - timedelta(days=rng.uniform(20, 700), seconds=rng.randrange(86400))
    created_at = (arrived_at or created_at).replace(microsecond=0)
    buyer = rng.random() < 0.55
    in_ac = rng.random() < 0.65
    in_hubspot = rng.random() < 0.5
    if not (buyer or in_ac or in_hubspot):
        in_ac = True  # everyone the world knows is somewhere
    person = Person(
        person_id=person_id, email=email, first_name=first, last_name=last, created_at=created_at,
        in_activecampaign=in_ac, in_hubspot=in_hubspot,
        has_shopify_account=buyer and rng.random() < 0.7,
        stripe_payer=buyer and rng.random() < 0.85,
        stripe_email_missing=rng.random() < 0.15,
        accepts_marketing=rng.random() < 0.6, buyer=buyer,
    )
    person.activecampaign_email = email_variant(rng, email)
    person.hubspot_email = email_variant(rng, email)
    person.shopify_email = email_variant(rng, email)
    person.stripe_email = None if person.stripe_email_missing else email_variant(rng, email)
    if buyer and arrived_at is None:
        person.orders = _orders(rng, person, clock)
    return person


def _orders(rng: random.Random, person: Person, clock: datetime) -> list[Order]:
    count = rng.choices([1, 2, 3, 4, 5], weights=[50, 25, 13, 8, 4])[0]
    span = (clock - person.created_at).total_seconds()
    times = sorted(person.created_at + timedelta(seconds=rng.uniform(3600, span - 3600)) for _ in range(count))
    country = rng.choice(COUNTRIES)
    return [_order(rng, person, created_at, country, clock) for created_at in times]


def _order(rng: random.Random, person: Person, created_at: datetime, country: str, clock: datetime | None,
           ) -> Order:
    """One order as it ends up: refunds and cancellation drawn up to `clock`, or (None) for its whole life,
    to be cut at a later clock by `_as_of`."""
    items = [LineItem(0, *rng.choice(PRODUCTS), quantity=rng.choice([1, 1, 1, 2, 3]))
             for _ in range(rng.choice([1, 1, 2, 3]))]
    subtotal = sum((li.price * li.quantity for li in items), Decimal("0"))
    discount = money(subtotal * Decimal("0.10")) if rng.random() < 0.2 else Decimal("0.00")
    shipping = Decimal("0.00") if subtotal >= 50 else Decimal("4.95")
    tax = money((subtotal - discount) * Decimal("0.0825"))
    status = rng.choices(
        ["paid", "partially_refunded", "refunded", "pending", "authorized", "voided", "partially_paid"],
        weights=[68, 9, 8, 5, 4, 3, 3])[0]
    order = Order(
        person_id=person.person_id, created_at=created_at.replace(microsecond=0),
        email=email_variant(rng, person.email), financial_status=status, cancelled_at=None,
        country=country, line_items=items, shipping=shipping, tax=tax, discount=discount, refunds=[],
        paid_by_stripe=person.stripe_payer and status in COUNTED_STATUSES,
        failed_attempt_first=rng.random() < 0.12,
    )
    _add_refunds(rng, order, clock)
    if status == "voided" or (status == "refunded" and rng.random() < 0.5):
        order.cancelled_at = order.created_at + timedelta(hours=rng.uniform(1, 48))
    return order


def _add_refunds(rng: random.Random, order: Order, clock: datetime | None) -> None:
    def refund_time() -> datetime:
        window_end = order.created_at + REFUND_WINDOW
        latest = (min(clock, window_end) if clock else window_end) - order.created_at
        return (order.created_at + rng.uniform(0.05, 1.0) * latest).replace(microsecond=0)

    total = order.total
    if order.financial_status == "partially_refunded":
        share = Decimal(rng.randint(10, 60)) / 100
        order.refunds.append(Refund(0, refund_time(), money(total * share), True))
    elif order.financial_status == "refunded":
        if rng.random() < 0.3:  # refunded in two steps
            first = money(total * Decimal("0.4"))
            order.refunds += [Refund(0, refund_time(), first, True), Refund(0, refund_time(), total - first, True)]
        else:
            order.refunds.append(Refund(0, refund_time(), total, True))
    if order.refunds and rng.random() < 0.15:  # a refund attempt that failed: never counted
        order.refunds.append(Refund(0, refund_time(), money(total * Decimal("0.2")), False))
    order.refunds.sort(key=lambda r: r.processed_at)


@dataclass(slots=True)
class World:
    """The whole world for a seed and size, with vendor ids assigned in creation order. Its people are kept in a
    list, or (`streamed`) drawn again whenever they are read: `Redrawn`."""

    seed: int
    size: int  # people at the start; more arrive as the clock moves on
    start: datetime  # the clock of a fresh sandbox
    clock: datetime  # the world's "now": the start plus the days it has been advanced
    people: Sequence[Person]

    @classmethod
    def build(cls, seed: int, people: int, days: float = 0, streamed: bool = False) -> World:
        """The world `days` after its start. Everything before the start is drawn once; what happens after
        it (arrivals, orders, refunds, CRM edits) comes from streams of its own, drawn in time order and cut
        at the clock, so the world after 2 days continues the world after 1 day and never rewrites it.

        Each person is drawn from their own streams alone (`_drawn`); only ids are numbered across people
        (`Numbering`), which needs every person drawn once first. A `streamed` world holds none of them: it
        numbers them in one pass and draws each again when read, so what it holds does not grow with its size."""
        if people < 1:
            raise ValueError(f"a world needs at least one person, got people={people}")
        if not days >= 0:
            raise ValueError(f"a world moves only forward from its start, got days={days}")
        start = start_clock(seed)
        clock = start + timedelta(days=days)
        arrivals = _arrival_times(seed, people, start, clock)
        numbering = Numbering(start)
        if streamed:
            for pid in range(1, people + len(arrivals) + 1):
                numbering.add(_drawn(seed, pid, people, start, clock, arrivals))
            numbering.finish()
            return cls(seed, people, start, clock, Redrawn(seed, people, start, clock, arrivals, numbering))
        persons = [_drawn(seed, pid, people, start, clock, arrivals) for pid in range(1, people + len(arrivals) + 1)]
        for p in persons:
            numbering.add(p)
        numbering.finish()
        for p in persons:
            numbering.apply(p)
        numbering.close()
        return cls(seed, people, start, clock, persons)

    def orders(self, deleted: bool = False) -> list[Order]:
        """Every order the shop still has (with `deleted`, those it deleted too), in creation order (ties by
        person)."""
        return sorted((o for p in self.people for o in p.orders if deleted or not o.deleted_at),
                      key=lambda o: (o.created_at, o.person_id))

    def deleted_orders(self) -> list[Order]:
        """The orders the shop deleted, in the order it deleted them."""
        return sorted((o for p in self.people for o in p.orders if o.deleted_at),
                      key=lambda o: (o.deleted_at, o.order_id))

    def person(self, person_id: int) -> Person:
        return self.people[person_id - 1]  # arrivals are numbered on from the start's people

    def touches(self) -> list[Touch]:
        """Every marketing touch, in time order (ties by person): the rows of the truth's `touches.csv`."""
        return sorted((t for p in self.people for t in p.touches), key=lambda t: (t.touched_at, t.person_id))

    def crm_records(self) -> list[CrmRecord]:
        """Every CRM contact record the vendors' default listings do not serve (merged, archived, deleted)."""
        return sorted((r for p in self.people for r in p.crm_records), key=lambda r: (r.vendor, int(r.contact_id)))

    def deals(self) -> list[Deal]:
        return sorted((d for p in self.people for d in p.deals), key=lambda d: (d.vendor, int(d.deal_id)))


def touch_rows(world: World) -> list[dict]:
    """The truth's `touches.csv`: one row per marketing touch."""
    return [{"person_id": t.person_id, "touched_at": t.touched_at.isoformat(), "source": t.source,
             "medium": t.medium, "campaign": t.campaign} for t in world.touches()]


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return (start + (end - start) * rng.random()).replace(microsecond=0) if end > start else start


def _touch(rng: random.Random, person_id: int, at: datetime) -> Touch:
    source, medium = rng.choice(list(CHANNELS))
    campaign = rng.choice(CAMPAIGNS) if medium in ("cpc", "email", "social") else ""
    return Touch(person_id, at.replace(microsecond=0), source, medium, campaign)


def _order_touches(rng: random.Random, p: Person, orders: list[Order], clock: datetime,
                   not_before: datetime | None = None) -> None:
    """Touches around each of `orders`, from a stream of their own (`rng`), so the `crm` stream's later draws
    (lifecycle, merges, deals) stay what they were: research visits in the two weeks before it, and for
    CONVERTING_SHARE of orders the session that converted, 1 to 30 minutes before it (`p.sessions`). A
    person's touches stay in time order, never after the clock nor before `not_before`, and never two at the
    same second (HubSpot keys history by time); a touch that would come before `not_before` is left out."""
    taken = {t.touched_at for t in p.touches}

    def add(at: datetime) -> Touch | None:
        at = min(at.replace(microsecond=0), clock)
        while at in taken:
            at -= timedelta(seconds=1)
        touch = _touch(rng, p.person_id, at)  # drawn even when left out, so later draws stay the same
        if not_before and at < not_before:
            return None
        taken.add(at)
        p.touches.append(touch)
        return touch

    for order in orders:
        for _ in range(rng.choice(RESEARCH_VISITS)):
            before = timedelta(seconds=rng.uniform(3600, 14 * 86400))
            add(max(p.created_at + timedelta(minutes=1), order.created_at - before))
        if rng.random() < CONVERTING_SHARE:
            session = add(order.created_at - timedelta(seconds=rng.uniform(61, 1800)))
            if session:
                order.session = session
    p.touches.sort(key=lambda t: t.touched_at)


def _arrival_times(seed: int, size: int, start: datetime, clock: datetime) -> list[datetime]:
    """When people arrive after the start, until `clock`: ARRIVALS_PER_DAY of the world's size a day, at times
    drawn in order from a stream of their own; they are numbered on from the start's people."""
    rng = random.Random(f"{seed}/{size}/arrivals")
    times, at = [], start
    while True:
        at += timedelta(days=rng.expovariate(size * ARRIVALS_PER_DAY))
        if at > clock:
            return times
        times.append(at)


def _drawn(seed: int, pid: int, size: int, start: datetime, clock: datetime, arrivals: list[datetime]) -> Person:
    """Person `pid` as the world has them at `clock`, drawn from their own streams alone, without the ids that
    are numbered across people (`Numbering`) but the Stripe customer id, which is theirs alone."""
    p = _person(seed, pid, start, arrived_at=arrivals[pid - size - 1] if pid > size else None)
    _future_orders(seed, p, start, clock)
    _currencies(seed, p)
    if p.stripe_payer and p.orders:  # made at their first checkout
        p.stripe_customer_id = "cus_" + stable_token(seed, "customer", pid)
    _crm(seed, p, max(start, p.created_at))
    _future_crm(seed, p, start, clock)
    _deletions(seed, p, start, clock)
    return p


def _as_of(order: Order, clock: datetime) -> Order:
    """An order drawn for its whole life (`_order` without a clock), as it stands at `clock`: refunds and a
    cancellation still to come left out, its financial status the one they leave."""
    final = order.financial_status
    order.refunds = [r for r in order.refunds if r.processed_at <= clock]
    if order.cancelled_at and order.cancelled_at > clock:
        order.cancelled_at = None
    if final == "voided" and order.cancelled_at is None:
        order.financial_status = "authorized"
    elif final in ("refunded", "partially_refunded"):
        refunded = order.refunded
        order.financial_status = ("paid" if not refunded else
                                  "refunded" if refunded >= order.total else "partially_refunded")
    return order


def _future_orders(seed: int, p: Person, start: datetime, clock: datetime) -> None:
    """A person's orders after the start, until `clock`, and refunds after the start of their paid orders
    of the 30 days before it. Drawn in time order from a stream of their own; the number of draws before
    any order never depends on the clock."""
    rng = random.Random(f"{seed}/{p.person_id}/future_orders")
    for order in p.orders:
        if order.financial_status != "paid" or order.created_at <= start - REFUND_WINDOW:
            continue
        late = rng.random() < LATE_REFUND_SHARE
        at = _between(rng, start, order.created_at + REFUND_WINDOW)
        full = rng.random() < 0.5
        if late and start < at <= clock:
            order.refunds.append(Refund(0, at, order.total if full else money(order.total / 2), True))
            order.financial_status = "refunded" if full else "partially_refunded"
    if not p.buyer:
        return
    if p.orders:
        country, at = p.orders[0].country, start + timedelta(days=rng.expovariate(1 / NEXT_ORDER_MEAN_DAYS))
    else:  # arrived after the start: a first order soon after
        country, at = rng.choice(COUNTRIES), p.created_at + timedelta(hours=rng.uniform(1, 240))
    while at <= clock:
        p.orders.append(_as_of(_order(rng, p, at, country, None), clock))
        at += timedelta(days=rng.expovariate(1 / NEXT_ORDER_MEAN_DAYS))


def _currencies(seed: int, p: Person) -> None:
    """Each order's presentment currency, from its country (some buyers are in Japan, drawn from a stream of
    their own), and its refunds as a buyer abroad gets them: in that currency, a full refund the whole
    presentment total, then converted back at the order's own rate (shop total / presentment total) and
    rounded half-even to the cent, as DESIGN.md converts them."""
    if random.Random(f"{seed}/{p.person_id}/currency").random() < JAPAN_SHARE:
        for order in p.orders:
            order.country = "JP"
    for order in p.orders:
        order.currency = CURRENCY_OF[order.country]
        paid = order.presentment_total
        given = Decimal(0)
        succeeded = [r for r in order.refunds if r.succeeded]
        for refund in order.refunds:
            rest = order.financial_status == "refunded" and refund is succeeded[-1]  # the one that completes it
            refund.presentment_amount = paid - given if rest else order.presentment(refund.amount)
            if refund.succeeded:
                given += refund.presentment_amount
            if order.currency != SHOP_CURRENCY:
                refund.amount = money(refund.presentment_amount * order.total / paid)


def _deletions(seed: int, p: Person, start: datetime, clock: datetime) -> None:
    """What gets deleted, until `clock`: some Stripe customers (before the start, or later at a steady rate;
    their charges stay) and VOIDED_DELETED_SHARE of voided orders (the converting session an order recorded
    goes with it, unless HubSpot saw the visit too). Drawn from a stream of their own, a fixed number of
    draws per person and per order, so a later clock never redraws one."""
    rng = random.Random(f"{seed}/{p.person_id}/deletions")
    before, when = rng.random() < STRIPE_DELETED_SHARE, rng.random()
    later = start + timedelta(days=rng.expovariate(1 / STRIPE_DELETION_MEAN_DAYS))
    if p.stripe_customer_id:
        first = p.orders[0].created_at  # the customer was made at the first checkout
        at = (first + (start - first) * when).replace(microsecond=0) if before and first < start else later
        if first < at <= clock:
            p.stripe_deleted_at = at.replace(microsecond=0)
    for order in p.orders:
        deleted, lag = rng.random() < VOIDED_DELETED_SHARE, timedelta(hours=rng.uniform(1, 480))
        if deleted and order.financial_status == "voided" and order.cancelled_at and order.cancelled_at + lag <= clock:
            order.deleted_at = (order.cancelled_at + lag).replace(microsecond=0)


def _future_crm(seed: int, p: Person, start: datetime, clock: datetime) -> None:
    """A person's CRM after the start, until `clock`: touches around their new orders (in HubSpot's source
    history), the customer stage at a first order, edits to their contacts, and the contacts' update times
    all of this moves."""
    new_orders = [o for o in p.orders if o.created_at > start]
    _order_touches(random.Random(f"{seed}/{p.person_id}/future_touches"), p, new_orders, clock,
                   not_before=max(start, p.created_at) + timedelta(seconds=1))
    hubspot = [t.touched_at for t in p.touches if t.touched_at > start]
    if new_orders and all(stage != "customer" for stage, _ in p.lifecycle):
        p.lifecycle.append(("customer", new_orders[0].created_at))
        hubspot.append(new_orders[0].created_at)
    activecampaign = [o.updated_at for o in p.orders if start < o.updated_at <= clock]
    rng = random.Random(f"{seed}/{p.person_id}/future_crm")
    at = max(start, p.created_at)
    while True:
        at += timedelta(days=rng.expovariate(1 / CRM_EDIT_MEAN_DAYS))
        if at > clock:
            break
        (hubspot if rng.random() < 0.5 else activecampaign).append(at.replace(microsecond=0))
    if p.in_hubspot:
        p.hubspot_updated_at = max([p.hubspot_updated_at, *hubspot])
    if p.in_activecampaign:
        p.activecampaign_updated_at = max([p.activecampaign_updated_at, *activecampaign])


def _crm(seed: int, p: Person, clock: datetime) -> None:
    """The person's CRM facts and marketing touches, from a stream of their own apart from the one that
    drew their orders, so adding these changed no earlier draw."""
    rng = random.Random(f"{seed}/{p.person_id}/crm")
    orders = [o for o in p.orders if o.created_at <= clock]  # later ones are `_future_crm`'s
    first_order = min((o.created_at for o in orders), default=None)
    # marketing touches: the first one brought them in, the others come before orders or in between
    first = (p.created_at - timedelta(seconds=rng.uniform(0, 3 * 86400))).replace(microsecond=0)
    times = [first]
    for _ in range(rng.randint(0, 5)):
        if orders and rng.random() < 0.6:
            order = rng.choice(orders)
            times.append((order.created_at - timedelta(seconds=rng.uniform(600, 2 * 86400))).replace(microsecond=0))
        else:
            times.append(_between(rng, p.created_at, clock))
    channels = list(CHANNELS)
    taken: set[datetime] = set()
    for at in sorted(times):
        source, medium = rng.choice(channels)
        campaign = rng.choice(CAMPAIGNS) if medium in ("cpc", "email", "social") else ""
        while at in taken:  # never two at the same second (HubSpot keys history by time), e.g. an arrival's
            at -= timedelta(seconds=1)  # touches, all drawn at their arrival
        taken.add(at)
        p.touches.append(Touch(p.person_id, at, source, medium, campaign))
    p.touches.sort(key=lambda t: t.touched_at)
    _order_touches(random.Random(f"{seed}/{p.person_id}/touches"), p, orders, clock)

    # HubSpot: a subscriber who becomes a lead soon after (or a lead from a form at once), a customer at
    # the first order
    lead_by = min(first_order or clock, p.created_at + timedelta(days=30))
    if rng.random() < 0.5:
        p.lifecycle = [("lead", p.created_at)]
    else:
        # never at the same second as the subscription (HubSpot keys history by time), e.g. for an arrival,
        # whose CRM facts are drawn at their arrival
        lead_at = max(_between(rng, p.created_at, lead_by), p.created_at + timedelta(seconds=1))
        p.lifecycle = [("subscriber", p.created_at), ("lead", lead_at)]
    if first_order:
        p.lifecycle.append(("customer", first_order))
    updates = [at for _, at in p.lifecycle]
    if rng.random() < 0.3:  # edited later by someone, for no reason the world tracks
        updates.append(_between(rng, p.created_at, clock))
    if p.in_hubspot and rng.random() < 0.06:  # a duplicate contact, merged into this one
        created = _between(rng, p.created_at, min(clock, p.created_at + timedelta(days=60)))
        merged = _between(rng, created, min(clock, created + timedelta(days=30)))
        p.crm_records.append(CrmRecord(p.person_id, "hubspot", "merged", email_variant(rng, p.email), created, merged))
        updates.append(merged)
    bulk = random.Random(f"{seed}/{p.person_id}/bulk_edit")  # apart, so no earlier draw moved
    if clock > p.created_at + BULK_EDIT_BEFORE and bulk.random() < BULK_EDIT_SHARE:
        updates.append((clock - BULK_EDIT_BEFORE + timedelta(seconds=bulk.uniform(0, 3600))).replace(microsecond=0))
    p.hubspot_updated_at = max(updates)
    if p.in_hubspot and rng.random() < 0.04:  # a late update: the search index sees it only later
        late = (clock - timedelta(seconds=rng.uniform(86400, 3 * 86400))).replace(microsecond=0)
        p.hubspot_updated_at = max(p.hubspot_updated_at, late)
        p.hubspot_indexed_at = (clock + timedelta(seconds=rng.uniform(3600, 86400))).replace(microsecond=0)
    if not p.in_hubspot and rng.random() < 0.08:  # their contact was deleted: only `archived=true` lists it
        created = _between(rng, p.created_at - timedelta(days=10), p.created_at)
        p.crm_records.append(CrmRecord(p.person_id, "hubspot", "archived", email_variant(rng, p.email), created,
                                       _between(rng, created, clock)))
    if not p.in_activecampaign and rng.random() < 0.08:  # deleted: no longer listed at all
        created = _between(rng, p.created_at - timedelta(days=10), p.created_at)
        p.crm_records.append(CrmRecord(p.person_id, "activecampaign", "deleted", email_variant(rng, p.email),
                                       created, _between(rng, created, clock)))

    # ActiveCampaign: the Shopify connection touches the contact when they buy
    p.activecampaign_updated_at = max([p.created_at] + [o.updated_at for o in orders if o.updated_at <= clock])
    if rng.random() < 0.25:
        p.activecampaign_updated_at = max(p.activecampaign_updated_at, _between(rng, p.created_at, clock))

    # deals: a buyer's won deal near their first order; others open or lost
    for vendor, member in (("hubspot", p.in_hubspot), ("activecampaign", p.in_activecampaign)):
        if not member or rng.random() >= 0.3:
            continue
        created = _between(rng, p.created_at, first_order or clock)
        amount = money(Decimal(rng.randint(2_000, 250_000)) / 100)
        if first_order and rng.random() < 0.7:
            stage, closed = "won", max(created, first_order)
        elif rng.random() < 0.4:
            stage, closed = "lost", _between(rng, created, clock)
        else:
            stage, closed = "open", None
        updated = _between(rng, closed or created, clock) if rng.random() < 0.3 else (closed or created)
        archived = _between(rng, updated, clock) if vendor == "hubspot" and rng.random() < 0.1 else None
        p.deals.append(Deal(p.person_id, vendor, f"{rng.choice(DEAL_NAMES)} - {p.last_name.title()}", amount,
                            created, updated, stage, closed, archived))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(moment: datetime | None) -> int | None:
    """A moment as whole microseconds since the epoch, exactly (SQL sorts these as Python sorts datetimes)."""
    return None if moment is None else (moment - EPOCH) // timedelta(microseconds=1)


class Numbering:
    """The ids numbered across people, in creation order so that none served at an earlier clock changes at a
    later one: CRM contacts and Shopify customers by when the person was created, orders (and their line items)
    by when they were placed, refunds by when they were processed; unlisted CRM records and deals by when their
    person arrived, then by when they were created, apart per vendor. Also each buyer's place among buyers by
    first order, and each deleted order's in the order the shop deleted them. `add` each person once (as
    `_drawn` draws them, without these), `finish`, then `apply` to a person drawn again: the few facts this
    needs are kept in SQL (sandbox/store.py) and numbered there, so no person need be kept meanwhile."""

    TABLES = {"people": "pid INTEGER PRIMARY KEY, created INTEGER, ac INTEGER, hs INTEGER, shop INTEGER",
              "orders": "pid INTEGER, idx INTEGER, created INTEGER, lines INTEGER, deleted INTEGER",
              "refunds": "pid INTEGER, oidx INTEGER, idx INTEGER, processed INTEGER",
              "unlisted": "pid INTEGER, idx INTEGER, vendor TEXT, arrival INTEGER, created INTEGER",
              "deals": "pid INTEGER, idx INTEGER, vendor TEXT, arrival INTEGER, created INTEGER"}
    BATCH = 5000

    def __init__(self, start: datetime):
        self.start = start
        self.store = Store()
        for name, columns in self.TABLES.items():
            self.store.execute(f"CREATE TABLE {name} ({columns})")
        self._rows: dict[str, list[tuple]] = {name: [] for name in self.TABLES}

    def add(self, p: Person) -> None:
        rows = self._rows
        rows["people"].append((p.person_id, _us(p.created_at), p.in_activecampaign, p.in_hubspot,
                               p.has_shopify_account))
        for i, o in enumerate(p.orders):
            rows["orders"].append((p.person_id, i, _us(o.created_at), len(o.line_items), _us(o.deleted_at)))
            rows["refunds"] += [(p.person_id, i, j, _us(r.processed_at)) for j, r in enumerate(o.refunds)]
        arrival = _us(max(p.created_at, self.start))
        for name, records in (("unlisted", p.crm_records), ("deals", p.deals)):
            rows[name] += [(p.person_id, i, r.vendor, arrival, _us(r.created_at)) for i, r in enumerate(records)]
        if len(rows["people"]) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        for name, rows in self._rows.items():
            marks = ", ".join("?" * len(self.TABLES[name].split(",")))
            self.store.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
            rows.clear()

    def finish(self) -> None:
        self._flush()
        for sql in (
            """CREATE TABLE person_ids AS SELECT pid, CASE WHEN ac THEN sum(ac) OVER w END AS ac,
                   CASE WHEN hs THEN sum(hs) OVER w END AS hs, CASE WHEN shop THEN sum(shop) OVER w END AS shop
               FROM people WINDOW w AS (ORDER BY created, pid ROWS UNBOUNDED PRECEDING)""",
            """CREATE TABLE order_ids AS SELECT pid, idx, row_number() OVER w AS n, sum(lines) OVER w - lines AS before,
                   deleted FROM orders WINDOW w AS (ORDER BY created, pid, idx ROWS UNBOUNDED PRECEDING)""",
            """CREATE TABLE deletions AS SELECT pid, idx, row_number() OVER (ORDER BY deleted, n) AS n
               FROM order_ids WHERE deleted IS NOT NULL""",
            "CREATE TABLE buyers AS SELECT pid, row_number() OVER (ORDER BY min(n)) AS n FROM order_ids GROUP BY pid",
            """CREATE TABLE refund_ids AS SELECT r.pid, r.oidx, r.idx,
                   row_number() OVER (ORDER BY r.processed, o.n, r.idx) AS n
               FROM refunds r JOIN order_ids o ON o.pid = r.pid AND o.idx = r.oidx""",
            """CREATE TABLE unlisted_ids AS SELECT pid, idx, vendor,
                   row_number() OVER (PARTITION BY vendor ORDER BY arrival, created, pid, idx) AS n FROM unlisted""",
            """CREATE TABLE deal_ids AS SELECT pid, idx, vendor,
                   row_number() OVER (PARTITION BY vendor ORDER BY arrival, created, pid, idx) AS n FROM deals""",
        ):
            self.store.execute(sql)
        for name in ("person_ids", "order_ids", "deletions", "buyers", "refund_ids", "unlisted_ids", "deal_ids"):
            self.store.execute(f"CREATE INDEX {name}_pid ON {name} (pid)")
        for name in self.TABLES:
            self.store.execute(f"DROP TABLE {name}")

    def apply(self, p: Person) -> None:
        """Give person `p` (drawn again as `add` had them) their ids."""
        query = self.store.execute
        pid = (p.person_id,)
        ((ac, hs, shop),) = query("SELECT ac, hs, shop FROM person_ids WHERE pid = ?", pid)
        p.activecampaign_contact_id = str(ac) if ac else ""
        p.hubspot_contact_id = str(1000 + hs) if hs else ""
        p.shopify_customer_id = 6_100_000_000 + shop if shop else None
        p.buyer_number = next(iter(query("SELECT n FROM buyers WHERE pid = ?", pid)), (0,))[0]
        for idx, n, before, deleted in query("SELECT o.idx, o.n, o.before, d.n FROM order_ids o LEFT JOIN deletions d "
                                             "ON d.pid = o.pid AND d.idx = o.idx WHERE o.pid = ?", pid):
            order = p.orders[idx]
            order.order_id, order.number, order.deletion_number = 5_200_000_000 + n, 1000 + n, deleted or 0
            for k, li in enumerate(order.line_items, start=1):
                li.line_item_id = 13_300_000_000 + before + k
        for oidx, idx, n in query("SELECT oidx, idx, n FROM refund_ids WHERE pid = ?", pid):
            p.orders[oidx].refunds[idx].refund_id = 890_000_000 + n
        for idx, vendor, n in query("SELECT idx, vendor, n FROM unlisted_ids WHERE pid = ?", pid):
            p.crm_records[idx].contact_id = str(UNLISTED_IDS[vendor] + n)
        for idx, vendor, n in query("SELECT idx, vendor, n FROM deal_ids WHERE pid = ?", pid):
            p.deals[idx].deal_id = str(n + (30_000 if vendor == "hubspot" else 0))

    def close(self) -> None:
        self.store.close()


class Redrawn(Sequence):
    """A streamed world's people (`World.build(streamed=True)`): each drawn again and numbered when read, the
    last few kept (a vendor rendering a person's records reads them again by id)."""

    KEPT = 64

    def __init__(self, seed: int, size: int, start: datetime, clock: datetime, arrivals: list[datetime],
                 numbering: Numbering):
        self.seed, self.size, self.start, self.clock, self.arrivals = seed, size, start, clock, arrivals
        self.numbering = numbering
        self._kept: OrderedDict[int, Person] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.size + len(self.arrivals)

    def __getitem__(self, i: int | slice) -> Person | list[Person]:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"person {i + 1} of a world of {len(self)}")
        pid = i + 1
        with self._lock:
            person = self._kept.get(pid)
            if person is not None:
                self._kept.move_to_end(pid)
                return person
        person = _drawn(self.seed, pid, self.size, self.start, self.clock, self.arrivals)
        self.numbering.apply(person)
        with self._lock:
            self._kept[pid] = person
            while len(self._kept) > self.KEPT:
                self._kept.popitem(last=False)
        return person

    def __iter__(self) -> Iterator[Person]:
        return (self[i] for i in range(len(self)))
