"""Flash sales over GraphQL: thin translations to services.marketing.flash_sale. Buying is placeOrder with a
campaign item (kind FLASH_SALE, id a FlashSaleItem ID); everything here is reading, staff setup and the live
remaining-stock subscription."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from infra.clock import now
from infra.runtime import current_runtime
from models import FlashSale as FlashSaleModel
from models import FlashSaleItem as FlashSaleItemModel
from models import FlashSaleSession as FlashSaleSessionModel
from resolvers.access import staff_mutation
from resolvers.node import node_type
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.flash_sale import (
    FlashSale,
    FlashSaleCreateInput,
    FlashSaleItem,
    FlashSaleItemConnection,
    FlashSalePayload,
    FlashSaleSchedule,
    FlashSaleSession,
    FlashSaleSessionInput,
    FlashSaleSessionPayload,
    FlashSaleSlot,
    FlashSaleStockChanged,
)
from schema.node import decode_id, encode_id
from services.access.permissions import Permission, holds, require_permission
from services.catalog.listing import check_page_size
from services.errors import DomainError, ErrorCode
from services.marketing.flash_sale import schedule, setup
from services.marketing.flash_sale.events import session_channel

FlashInfo = Info[Context, None]


@node_type("FlashSaleSession")
async def session_node(context: Context, pk: int) -> FlashSaleSession | None:
    row = await context.rows(FlashSaleSessionModel).load(pk)
    return FlashSaleSession.from_model(row) if row else None


@node_type("FlashSaleItem")
async def item_node(context: Context, pk: int) -> FlashSaleItem | None:
    row = await context.rows(FlashSaleItemModel).load(pk)
    return FlashSaleItem.from_view((await schedule.with_remaining([row]))[0]) if row else None


@node_type("FlashSale")
async def sale_node(context: Context, pk: int) -> FlashSale | None:
    return await _sale(pk) if holds(context.viewer, Permission.MARKETING_WRITE) else None


async def flash_sale_sessions(
    info: FlashInfo, date: dt.date | None = None, with_empty: bool = False
) -> FlashSaleSchedule:
    day = date or schedule.today()
    slots = await schedule.slots_on(day, with_empty=with_empty)
    return FlashSaleSchedule(
        server_time=now(), date=day, sessions=[FlashSaleSlot.from_slot(s) for s in slots]
    )


async def flash_sale_products(
    info: FlashInfo,
    session_id: strawberry.ID,
    date: dt.date | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> FlashSaleItemConnection:
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    views, has_next = await schedule.items_in_slot(
        decode_id(session_id, "FlashSaleSession", "sessionId"), date or schedule.today(), offset, limit
    )
    edges, page_info = build_edges([FlashSaleItem.from_view(v) for v in views], offset)
    page_info.has_next_page = has_next
    return FlashSaleItemConnection(edges=edges, page_info=page_info)


async def _sale(pk: int) -> FlashSale | None:
    sale = await FlashSaleModel.get_or_none(id=pk)
    if sale is None:
        return None
    items = await FlashSaleItemModel.filter(flash_sale_id=pk).order_by("sort", "id")
    # Only staff reach an activity: its items' numbers are read for all of them at once.
    numbers = await setup.item_numbers([i.id for i in items])
    return FlashSale.from_model(sale, await schedule.with_remaining(items), numbers)


async def flash_sale(info: FlashInfo, id: strawberry.ID) -> FlashSale | None:
    require_permission(info.context.viewer, Permission.MARKETING_WRITE)
    return await _sale(decode_id(id, "FlashSale"))


@staff_mutation(Permission.MARKETING_WRITE, action="flashSaleSessionCreate")
async def flash_sale_session_create(info: FlashInfo, input: FlashSaleSessionInput) -> FlashSaleSessionPayload:
    row = await setup.create_session(input.name, input.starts_at, input.ends_at)
    return FlashSaleSessionPayload(session=FlashSaleSession.from_model(row))


@staff_mutation(Permission.MARKETING_WRITE, action="flashSaleSessionDisable")
async def flash_sale_session_disable(info: FlashInfo, id: strawberry.ID) -> FlashSaleSessionPayload:
    row = await setup.disable_session(decode_id(id, "FlashSaleSession"))
    return FlashSaleSessionPayload(session=FlashSaleSession.from_model(row))


@staff_mutation(Permission.MARKETING_WRITE, action="flashSaleCreate")
async def flash_sale_create(info: FlashInfo, input: FlashSaleCreateInput) -> FlashSalePayload:
    drafts = [
        setup.ItemDraft(
            session_id=decode_id(item.session_id, "FlashSaleSession", f"input.items[{n}].sessionId"),
            sku_id=decode_id(item.sku_id, "Sku", f"input.items[{n}].skuId"),
            flash_price=item.flash_price,
            allotment=item.allotment,
            per_member_limit=item.per_member_limit,
        )
        for n, item in enumerate(input.items)
    ]
    row = await setup.create_flash_sale(input.title, input.starts_on, input.ends_on, drafts)
    return FlashSalePayload(flash_sale=await _sale(row.id))


@staff_mutation(Permission.MARKETING_WRITE, action="flashSaleStop")
async def flash_sale_stop(info: FlashInfo, id: strawberry.ID) -> FlashSalePayload:
    row = await setup.stop_flash_sale(decode_id(id, "FlashSale"))
    return FlashSalePayload(flash_sale=await _sale(row.id))


async def flash_sale_stock_changed(
    info: FlashInfo, session_id: strawberry.ID
) -> AsyncGenerator[FlashSaleStockChanged, None]:
    pk = decode_id(session_id, "FlashSaleSession", "sessionId")
    if not await FlashSaleSessionModel.filter(id=pk).exists():
        raise DomainError(ErrorCode.NOT_FOUND, "No flash-sale slot has this ID", "sessionId")
    async with current_runtime().bus.subscribe(session_channel(pk)) as events:
        async for event in events:
            yield FlashSaleStockChanged(
                session_id=session_id,
                item_id=encode_id("FlashSaleItem", event["itemId"]),
                remaining=event["remaining"],
            )


@strawberry.type
class FlashSaleQuery:
    flash_sale_sessions: FlashSaleSchedule = strawberry.field(
        resolver=flash_sale_sessions,
        description="The slots selling on `date` (default today, shop time) with the server's time and countdowns; "
        "`withEmpty` adds the enabled slots selling nothing that day (what staff pick from).",
    )
    flash_sale_products: FlashSaleItemConnection = strawberry.field(
        resolver=flash_sale_products, description="What a slot sells on `date` (default today)."
    )
    flash_sale: FlashSale | None = strawberry.field(
        resolver=flash_sale, description="Staff with MARKETING_WRITE."
    )


@strawberry.type
class FlashSaleMutation:
    flash_sale_session_create: FlashSaleSessionPayload = strawberry.mutation(
        resolver=flash_sale_session_create
    )
    flash_sale_session_disable: FlashSaleSessionPayload = strawberry.mutation(
        resolver=flash_sale_session_disable
    )
    flash_sale_create: FlashSalePayload = strawberry.mutation(resolver=flash_sale_create)
    flash_sale_stop: FlashSalePayload = strawberry.mutation(resolver=flash_sale_stop)


@strawberry.type
class FlashSaleSubscription:
    flash_sale_stock_changed: FlashSaleStockChanged = strawberry.subscription(
        resolver=flash_sale_stock_changed,
        description="What is left of each item of the slot, as units are won or given back on any process.",
    )
