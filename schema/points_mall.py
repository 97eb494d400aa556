"""Points mall types: items, inputs and payloads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

from models import PointsMallItem as PointsMallItemModel
from models import PointsMallItemKind as PointsMallItemKindModel
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.coupons import Coupon, MemberCoupon
from schema.node import Node, encode_id

PointsMallItemKind = strawberry.enum(
    PointsMallItemKindModel,
    description="COUPON: exchanged at once with pointsMallExchange. SKU: points plus cash, bought at checkout "
    "with `campaign: {kind: POINTS_MALL, id: <item ID>}`.",
)


@strawberry.type(description="Something in the points mall (积分商城).")
class PointsMallItem(Node):
    title: str
    kind: PointsMallItemKind
    points: int = strawberry.field(description="Points it costs.")
    cash: int = strawberry.field(description="Fen paid besides the points (SKU items).")
    stock: int
    per_member_limit: int
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool
    sku_id: strawberry.ID | None
    _coupon: strawberry.Private[Callable[[], Awaitable[Coupon | None]]]

    @strawberry.field(description="The coupon it gives (COUPON items).")
    async def coupon(self) -> Coupon | None:
        return await self._coupon()

    @classmethod
    def from_model(
        cls, m: PointsMallItemModel, coupon: Callable[[], Awaitable[Coupon | None]]
    ) -> PointsMallItem:
        return cls(
            id=encode_id("PointsMallItem", m.id),
            title=m.title,
            kind=m.kind,
            points=m.points,
            cash=m.cash,
            stock=m.stock,
            per_member_limit=m.per_member_limit,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            active=m.active,
            sku_id=encode_id("Sku", m.sku_id) if m.sku_id else None,  # type: ignore[attr-defined]
            _coupon=coupon,
        )


@strawberry.type
class PointsMallItemConnection:
    edges: list[Edge[PointsMallItem]]
    page_info: PageInfo
    _total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="All of them, not just this page (costs a count).")
    async def total_count(self) -> int:
        return await self._total()


@strawberry.input(
    description="A new points mall item: a coupon (couponId) or a SKU (skuId, points plus cash)."
)
class PointsMallItemCreateInput:
    title: str = strawberry.field(description="1 to 64 characters.")
    kind: PointsMallItemKind
    points: int
    stock: int
    coupon_id: strawberry.ID | None = None
    sku_id: strawberry.ID | None = None
    cash: int = 0
    per_member_limit: int = 1
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@strawberry.type
class PointsMallItemPayload:
    item: PointsMallItem | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PointsMallExchangePayload:
    member_coupon: MemberCoupon | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
