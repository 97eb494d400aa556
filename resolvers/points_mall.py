"""Points mall root fields: the items on offer, exchanging points for a coupon; staff add and stop items.
SKU items are bought through checkout (`campaign: {kind: POINTS_MALL, id}`)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from models import Coupon as CouponModel
from models import PointsMallItem as PointsMallItemModel
from resolvers.access import staff_mutation
from resolvers.cart import member_id
from resolvers.coupons import PERMISSION, coupon_type, member_coupon_type
from resolvers.node import node_type
from resolvers.payloads import payload_mutation
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.coupons import Coupon
from schema.node import decode_id
from schema.points_mall import (
    PointsMallExchangePayload,
    PointsMallItem,
    PointsMallItemConnection,
    PointsMallItemCreateInput,
    PointsMallItemPayload,
)
from services.catalog.listing import check_page_size
from services.marketing import points_mall

MallInfo = Info[Context, None]


def item_type(context: Context, row: PointsMallItemModel) -> PointsMallItem:
    async def coupon() -> Coupon | None:
        if row.coupon_id is None:  # type: ignore[attr-defined]
            return None
        template = await context.rows(CouponModel).load(row.coupon_id)  # type: ignore[attr-defined]
        return coupon_type(context, template) if template else None

    return PointsMallItem.from_model(row, coupon)


async def points_mall_items(
    info: MallInfo, first: int | None = 20, after: str | None = None
) -> PointsMallItemConnection:
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows, has_next = await points_mall.mall_items(offset, limit)
    edges, page_info = build_edges([item_type(info.context, row) for row in rows], offset)
    page_info.has_next_page = has_next
    return PointsMallItemConnection(edges=edges, page_info=page_info, _total=points_mall.count_mall_items)


@node_type("PointsMallItem")
async def item_node(context: Context, pk: int) -> PointsMallItem | None:
    row = await context.rows(PointsMallItemModel).load(pk)
    return item_type(context, row) if row else None


@payload_mutation
async def points_mall_exchange(info: MallInfo, item_id: strawberry.ID) -> PointsMallExchangePayload:
    held = await points_mall.exchange_for_coupon(
        member_id(info), decode_id(item_id, "PointsMallItem", "itemId")
    )
    return PointsMallExchangePayload(member_coupon=member_coupon_type(info.context, held))


@staff_mutation(PERMISSION, action="pointsMallItemCreate")
async def points_mall_item_create(info: MallInfo, input: PointsMallItemCreateInput) -> PointsMallItemPayload:
    draft = points_mall.ItemDraft(
        title=input.title,
        kind=input.kind,
        points=input.points,
        stock=input.stock,
        coupon_id=decode_id(input.coupon_id, "Coupon", "input.couponId") if input.coupon_id else None,
        sku_id=decode_id(input.sku_id, "Sku", "input.skuId") if input.sku_id else None,
        cash=input.cash,
        per_member_limit=input.per_member_limit,
        starts_at=input.starts_at,
        ends_at=input.ends_at,
    )
    return PointsMallItemPayload(item=item_type(info.context, await points_mall.create_item(draft)))


@staff_mutation(PERMISSION, action="pointsMallItemStop")
async def points_mall_item_stop(info: MallInfo, id: strawberry.ID) -> PointsMallItemPayload:
    row = await points_mall.stop_item(decode_id(id, "PointsMallItem"))
    return PointsMallItemPayload(item=item_type(info.context, row))


@strawberry.type
class PointsMallQuery:
    points_mall_items: PointsMallItemConnection = strawberry.field(
        resolver=points_mall_items, description="积分商城: the items on offer now, newest first."
    )


@strawberry.type
class PointsMallMutation:
    points_mall_exchange: PointsMallExchangePayload = strawberry.mutation(
        resolver=points_mall_exchange,
        description="Spend points on a COUPON item: the coupon lands in the wallet (stock, per-member limits and "
        "points are taken together or not at all).",
    )
    points_mall_item_create: PointsMallItemPayload = strawberry.mutation(resolver=points_mall_item_create)
    points_mall_item_stop: PointsMallItemPayload = strawberry.mutation(
        resolver=points_mall_item_stop, description="Take an item out of the mall."
    )
