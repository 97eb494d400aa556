"""Bargains over GraphQL: thin translations to services.marketing.bargain. Buying is placeOrder with a campaign
item (kind BARGAIN, id the member's Bargain ID)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from models import Bargain as BargainModel
from models import BargainActivity as BargainActivityModel
from resolvers.access import staff_mutation
from resolvers.node import node_type
from resolvers.orders import member_id_of
from resolvers.payloads import payload_mutation
from schema.bargain import (
    Bargain,
    BargainActivity,
    BargainActivityConnection,
    BargainActivityCreateInput,
    BargainActivityPayload,
    BargainHelpPayload,
    BargainPayload,
)
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.node import decode_id
from services.access.permissions import Permission
from services.catalog.listing import check_page_size
from services.marketing.bargain import service

BargainInfo = Info[Context, None]


async def _bargain(pk: int) -> Bargain | None:
    row = await BargainModel.get_or_none(id=pk)
    if row is None:
        return None
    return Bargain.from_model(row, await BargainActivityModel.get(id=row.activity_id))  # type: ignore[attr-defined]


@node_type("Bargain")
async def bargain_node(context: Context, pk: int) -> Bargain | None:
    return await _bargain(pk)


@node_type("BargainActivity")
async def activity_node(context: Context, pk: int) -> BargainActivity | None:
    row = await context.rows(BargainActivityModel).load(pk)
    return BargainActivity.from_model(row) if row else None


async def bargain(info: BargainInfo, id: strawberry.ID) -> Bargain | None:
    return await _bargain(decode_id(id, "Bargain"))


async def bargain_activity(info: BargainInfo, id: strawberry.ID) -> BargainActivity | None:
    row = await BargainActivityModel.get_or_none(id=decode_id(id, "BargainActivity"))
    return BargainActivity.from_model(row) if row else None


async def bargain_activities(
    info: BargainInfo, first: int | None = 20, after: str | None = None
) -> BargainActivityConnection:
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows, has_next = await service.running_activities(offset, limit)
    edges, page_info = build_edges([BargainActivity.from_model(r) for r in rows], offset)
    page_info.has_next_page = has_next
    return BargainActivityConnection(edges=edges, page_info=page_info)


@payload_mutation
async def bargain_start(info: BargainInfo, activity_id: strawberry.ID) -> BargainPayload:
    row = await service.start_bargain(
        member_id_of(info.context.viewer), decode_id(activity_id, "BargainActivity", "activityId")
    )
    return BargainPayload(bargain=await _bargain(row.id))


@payload_mutation
async def bargain_help(info: BargainInfo, bargain_id: strawberry.ID) -> BargainHelpPayload:
    cut = await service.help_bargain(
        member_id_of(info.context.viewer), decode_id(bargain_id, "Bargain", "bargainId")
    )
    return BargainHelpPayload(cut=cut.amount, bargain=await _bargain(cut.bargain.id))


@staff_mutation(Permission.MARKETING_WRITE, action="bargainActivityCreate")
async def bargain_activity_create(
    info: BargainInfo, input: BargainActivityCreateInput
) -> BargainActivityPayload:
    row = await service.create_activity(
        service.ActivityDraft(
            title=input.title,
            sku_id=decode_id(input.sku_id, "Sku", "input.skuId"),
            start_price=input.start_price,
            floor_price=input.floor_price,
            helpers_needed=input.helpers_needed,
            hours_to_finish=input.hours_to_finish,
            starts_at=input.starts_at,
            ends_at=input.ends_at,
            stock=input.stock,
        )
    )
    return BargainActivityPayload(bargain_activity=BargainActivity.from_model(row))


@staff_mutation(Permission.MARKETING_WRITE, action="bargainActivityStop")
async def bargain_activity_stop(info: BargainInfo, id: strawberry.ID) -> BargainActivityPayload:
    row = await service.stop_activity(decode_id(id, "BargainActivity"))
    return BargainActivityPayload(bargain_activity=BargainActivity.from_model(row))


@strawberry.type
class BargainQuery:
    bargain: Bargain | None = strawberry.field(resolver=bargain, description="Anyone with the shared link.")
    bargain_activity: BargainActivity | None = strawberry.field(resolver=bargain_activity)
    bargain_activities: BargainActivityConnection = strawberry.field(
        resolver=bargain_activities, description="Activities running now, ending soonest first."
    )


@strawberry.type
class BargainMutation:
    bargain_start: BargainPayload = strawberry.mutation(
        resolver=bargain_start, description="Start (or get back) the viewer's bargain on an activity."
    )
    bargain_help: BargainHelpPayload = strawberry.mutation(
        resolver=bargain_help,
        description="Cut a friend's bargain: once per bargain, a daily cap, never one's own.",
    )
    bargain_activity_create: BargainActivityPayload = strawberry.mutation(resolver=bargain_activity_create)
    bargain_activity_stop: BargainActivityPayload = strawberry.mutation(resolver=bargain_activity_stop)
