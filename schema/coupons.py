"""Coupon types: templates (`Coupon`), the coupons members hold (`MemberCoupon`), inputs and payloads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

from models import Coupon as CouponModel
from models import CouponKind as CouponKindModel
from models import CouponScope as CouponScopeModel
from models import CouponSource as CouponSourceModel
from models import CouponStatus as CouponStatusModel
from models import MemberCoupon as MemberCouponModel
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.node import Node, encode_id
from services.marketing.coupons.choice import yuan
from services.marketing.coupons.wallet import WalletStatus, wallet_status

CouponKind = strawberry.enum(
    CouponKindModel,
    description="CASH: 无门槛, a fixed amount off. THRESHOLD: 满减, a fixed amount off from a minimum spend. "
    "DISCOUNT: 折扣, a percentage off with a cap.",
)
CouponScope = strawberry.enum(CouponScopeModel, description="Which goods a coupon applies to.")
CouponStatus = strawberry.enum(
    CouponStatusModel, description="STOPPED: handed out no more; coupons already held stay usable."
)
CouponSource = strawberry.enum(CouponSourceModel, description="How a member got a coupon.")
MemberCouponStatus = strawberry.enum(
    WalletStatus, name="MemberCouponStatus", description="Where a coupon sits in the member's wallet."
)

_SCOPE_TYPE = {
    CouponScopeModel.CATEGORIES: "Category",
    CouponScopeModel.PRODUCTS: "Product",
    CouponScopeModel.BRANDS: "Brand",
}


def summary(c: CouponModel) -> str:
    """The coupon in a few words, as shops print it: 无门槛减¥10.00, 满¥300.00减¥40.00, 8.5折 最多减¥50.00."""
    if c.kind == CouponKindModel.CASH:
        return f"无门槛减{yuan(c.amount_off)}"
    if c.kind == CouponKindModel.THRESHOLD:
        return f"满{yuan(c.min_amount)}减{yuan(c.amount_off)}"
    rate = f"{c.discount_percent // 10}.{c.discount_percent % 10}".rstrip("0").rstrip(".")
    head = f"满{yuan(c.min_amount)} " if c.min_amount else ""
    return f"{head}{rate}折 最多减{yuan(c.max_discount)}"


@strawberry.type(description="A coupon as staff define it and shoppers see it in the coupon center.")
class Coupon(Node):
    name: str
    description: str
    summary: str = strawberry.field(description="The rule in words, e.g. 满¥300.00减¥40.00.")
    kind: CouponKind
    amount_off: int = strawberry.field(description="Fen off (CASH, THRESHOLD).")
    discount_percent: int = strawberry.field(description="DISCOUNT: percent of the price paid (85 = 8.5折).")
    max_discount: int = strawberry.field(description="DISCOUNT: the most fen it takes off.")
    min_amount: int = strawberry.field(description="Fen of in-scope goods needed before it applies.")
    scope: CouponScope
    scope_ids: list[strawberry.ID] = strawberry.field(
        description="The categories, products or brands in scope."
    )
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days: int | None = strawberry.field(description="Valid this many days from the moment it is got.")
    claim_starts_at: datetime | None
    claim_ends_at: datetime | None
    public: bool = strawberry.field(description="Shown in the coupon center (else issued or redeemed only).")
    total_quantity: int
    remaining: int = strawberry.field(description="How many can still be handed out.")
    per_member_limit: int
    stackable: bool = strawberry.field(description="Can be used with other stackable coupons in one order.")
    return_on_refund: bool = strawberry.field(description="A fully refunded order gives the coupon back.")
    status: CouponStatus
    _claimed: strawberry.Private[Callable[[], Awaitable[int]] | None] = None

    @strawberry.field(description="How many of it the viewer has got (0 for a guest).")
    async def claimed(self) -> int:
        return await self._claimed() if self._claimed is not None else 0

    @classmethod
    def from_model(cls, c: CouponModel, claimed: Callable[[], Awaitable[int]] | None = None) -> Coupon:
        scope_type = _SCOPE_TYPE.get(c.scope)
        return cls(
            id=encode_id("Coupon", c.id),
            name=c.name,
            description=c.description,
            summary=summary(c),
            kind=c.kind,
            amount_off=c.amount_off,
            discount_percent=c.discount_percent,
            max_discount=c.max_discount,
            min_amount=c.min_amount,
            scope=c.scope,
            scope_ids=[encode_id(scope_type, i) for i in c.scope_ids] if scope_type else [],
            valid_from=c.valid_from,
            valid_until=c.valid_until,
            valid_days=c.valid_days,
            claim_starts_at=c.claim_starts_at,
            claim_ends_at=c.claim_ends_at,
            public=c.public,
            total_quantity=c.total_quantity,
            remaining=max(0, c.total_quantity - c.issued),
            per_member_limit=c.per_member_limit,
            stackable=c.stackable,
            return_on_refund=c.return_on_refund,
            status=c.status,
            _claimed=claimed,
        )


@strawberry.type(description="A coupon the viewer holds.")
class MemberCoupon(Node):
    status: MemberCouponStatus
    source: CouponSource
    valid_from: datetime
    valid_until: datetime
    claimed_at: datetime
    used_at: datetime | None
    order_id: strawberry.ID | None = strawberry.field(description="The order that used it.")
    # The coupon itself when the caller already holds it (checkout), else how to load it.
    _coupon: strawberry.Private[Coupon | Callable[[], Awaitable[Coupon]]]

    @strawberry.field
    def coupon(self) -> Coupon:
        # Not async: a coupon at hand costs no coroutine (30 held coupons in a checkout preview made graphql-core
        # gather 30 tasks); a loader's awaitable is awaited by graphql-core like an async resolver's.
        got = self._coupon
        return got if isinstance(got, Coupon) else got()  # type: ignore[return-value]

    @classmethod
    def from_model(
        cls, m: MemberCouponModel, coupon: Coupon | Callable[[], Awaitable[Coupon]]
    ) -> MemberCoupon:
        return cls(
            id=encode_id("MemberCoupon", m.id),
            status=wallet_status(m),
            source=m.source,
            valid_from=m.valid_from,
            valid_until=m.valid_until,
            claimed_at=m.claimed_at,
            used_at=m.used_at,
            order_id=encode_id("Order", m.order_id) if m.order_id else None,
            _coupon=coupon,
        )


@strawberry.type
class CouponConnection:
    edges: list[Edge[Coupon]]
    page_info: PageInfo
    _total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="All of them, not just this page (costs a count).")
    async def total_count(self) -> int:
        return await self._total()


@strawberry.type
class MemberCouponConnection:
    edges: list[Edge[MemberCoupon]]
    page_info: PageInfo
    _total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="All of them, not just this page (costs a count).")
    async def total_count(self) -> int:
        return await self._total()


# --- Inputs ------------------------------------------------------------------------------------------------


@strawberry.input(
    description="A new coupon. Money in fen. Give either validUntil (with validFrom) or validDays."
)
class CouponCreateInput:
    name: str = strawberry.field(description="1 to 64 characters.")
    kind: CouponKind
    total_quantity: int = strawberry.field(description="How many may be handed out in all (1 to 10,000,000).")
    amount_off: int = 0
    discount_percent: int = strawberry.field(default=100, description="DISCOUNT: 1 to 99 (85 = 8.5折).")
    max_discount: int = strawberry.field(default=0, description="DISCOUNT: required cap in fen.")
    min_amount: int = strawberry.field(default=0, description="THRESHOLD: required; DISCOUNT: optional.")
    scope: CouponScope = CouponScopeModel.ALL
    scope_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Category, Product or Brand IDs, as the scope says."
    )
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = None
    claim_starts_at: datetime | None = None
    claim_ends_at: datetime | None = None
    public: bool = True
    per_member_limit: int = strawberry.field(default=1, description="1 to 100.")
    stackable: bool = False
    return_on_refund: bool = False
    description: str = strawberry.field(default="", description="At most 200 characters.")


@strawberry.input(
    description="Only the fields given change. Once members hold the coupon its rules (kind, amounts, scope) "
    "stay; the total cannot drop below what was handed out."
)
class CouponUpdateInput:
    name: str | None = strawberry.UNSET
    kind: CouponKind | None = strawberry.UNSET
    total_quantity: int | None = strawberry.UNSET
    amount_off: int | None = strawberry.UNSET
    discount_percent: int | None = strawberry.UNSET
    max_discount: int | None = strawberry.UNSET
    min_amount: int | None = strawberry.UNSET
    scope: CouponScope | None = strawberry.UNSET
    scope_ids: list[strawberry.ID] | None = strawberry.UNSET
    valid_from: datetime | None = strawberry.UNSET
    valid_until: datetime | None = strawberry.UNSET
    valid_days: int | None = strawberry.UNSET
    claim_starts_at: datetime | None = strawberry.UNSET
    claim_ends_at: datetime | None = strawberry.UNSET
    public: bool | None = strawberry.UNSET
    per_member_limit: int | None = strawberry.UNSET
    stackable: bool | None = strawberry.UNSET
    return_on_refund: bool | None = strawberry.UNSET
    description: str | None = strawberry.UNSET


# --- Payloads ----------------------------------------------------------------------------------------------


@strawberry.type
class CouponPayload:
    coupon: Coupon | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CouponClaimPayload:
    member_coupon: MemberCoupon | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CouponIssuePayload:
    issued: int = 0
    skipped: int = strawberry.field(default=0, description="Members who already hold the limit, or unknown.")
    sold_out: bool = strawberry.field(
        default=False, description="The total ran out before every member got one."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CouponCodesPayload:
    codes: list[str] = strawberry.field(default_factory=list, description="The new one-time codes.")
    errors: list[UserError] = strawberry.field(default_factory=list)


# --- Checkout ----------------------------------------------------------------------------------------------


@strawberry.type(description="A coupon the shopper holds, as this order sees it.")
class CheckoutCoupon:
    member_coupon: MemberCoupon
    applicable: bool = strawberry.field(description="Whether it can be used on this order (on its own).")
    reason: str | None = strawberry.field(description="Why not, in words, e.g. 再买 ¥23.00 可用.")
    gap: int = strawberry.field(description="Fen more of the goods in its scope that would make it usable.")
    discount: int = strawberry.field(description="Fen it would take off on its own.")
    selected: bool = strawberry.field(description="Taken off this order (chosen, or picked as the best).")


# Checkout's coupon templates as GraphQL objects, by the template row checkout read them from: checkout keeps
# those rows per process for a while (services.marketing.coupons.checkout.templates_by_id), and a new row (read
# again) makes a new object. Shared read-only by the requests that show it; built without the viewer's count.
_template_types: dict[int, tuple[CouponModel, Coupon]] = {}


def _template_type(template: CouponModel) -> Coupon:
    hit = _template_types.get(template.id)
    if hit is not None and hit[0] is template:
        return hit[1]
    if len(_template_types) > 10_000:
        _template_types.clear()
    made = Coupon.from_model(template)
    _template_types[template.id] = (template, made)
    return made


def checkout_coupons(memo: dict[str, object]) -> list[CheckoutCoupon]:
    """The preview's coupons from what the COUPON step left in the pricing memo: applicable ones first, the
    largest discount first, then the others."""
    from services.marketing.coupons.checkout import MEMO_KEY, CouponReport

    report = memo.get(MEMO_KEY)
    if not isinstance(report, CouponReport):
        return []
    chosen = set(report.chosen)
    found = []
    for row, verdict in report.held:
        found.append(
            CheckoutCoupon(
                member_coupon=MemberCoupon.from_model(row, _template_type(row.coupon)),  # type: ignore[arg-type]  # a HeldRow reads alike
                applicable=verdict.applicable,
                reason=verdict.reason or None,
                gap=verdict.gap,
                discount=verdict.discount,
                selected=row.id in chosen,
            )
        )
    found.sort(key=lambda c: (not c.applicable, -c.discount))
    return found
