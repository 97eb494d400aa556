"""Red-packet rain root fields: staff schedule and stop rains and see their numbers; members grab. Thin: decode
arguments, call services.live.red_packets, wrap the result."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from models import RedPacketPrize
from models import RedPacketRain as RedPacketRainModel
from resolvers.access import staff_mutation
from resolvers.node import node_type
from resolvers.payloads import payload_mutation
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.node import decode_id, encode_id
from schema.red_packets import (
    RedPacketGrab,
    RedPacketGrabPayload,
    RedPacketRainConnection,
    RedPacketRainInput,
    RedPacketRainPayload,
    RedPacketRainType,
)
from services.access.permissions import Permission
from services.catalog.listing import check_page_size
from services.errors import DomainError, ErrorCode
from services.live import red_packets

RainInfo = Info[Context, None]

# Rains are run from the live room's console: the permission that runs live rooms.
RAIN_PERMISSION = Permission.CONTENT_WRITE


async def _typed(rain: RedPacketRainModel) -> RedPacketRainType:
    numbers = await red_packets.rain_numbers([rain.id])
    return RedPacketRainType.from_model(rain, numbers[rain.id])


# --- Queries -----------------------------------------------------------------------------------------------


async def red_packet_rain(info: RainInfo, id: strawberry.ID) -> RedPacketRainType | None:
    rain = await RedPacketRainModel.get_or_none(id=decode_id(id, "RedPacketRain"))
    return await _typed(rain) if rain else None


async def red_packet_rains(
    info: RainInfo, room_id: strawberry.ID, first: int | None = 20, after: str | None = None
) -> RedPacketRainConnection:
    """A room's rains, latest start first, with their numbers (two queries for the whole page)."""
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    room = decode_id(room_id, "LiveRoom", "roomId")
    query = RedPacketRainModel.filter(room_id=room)
    rows = list(await query.order_by("-starts_at", "-id").offset(offset).limit(limit + 1))
    numbers = await red_packets.rain_numbers([r.id for r in rows[:limit]])
    edges, page_info = build_edges(
        [RedPacketRainType.from_model(r, numbers[r.id]) for r in rows[:limit]], offset
    )
    page_info.has_next_page = len(rows) > limit
    return RedPacketRainConnection(edges=edges, page_info=page_info, total_count=await query.count())


@node_type("RedPacketRain")
async def rain_node(context: Context, pk: int) -> RedPacketRainType | None:
    rain = await context.rows(RedPacketRainModel).load(pk)
    return await _typed(rain) if rain else None


# --- Mutations ---------------------------------------------------------------------------------------------


@payload_mutation
async def red_packet_grab(info: RainInfo, rain_id: strawberry.ID) -> RedPacketGrabPayload:
    member = info.context.viewer.member
    if member is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in as a member to grab red packets")
    grab = await red_packets.grab_packet(decode_id(rain_id, "RedPacketRain", "rainId"), member.id)
    rain = await red_packets.get_rain(grab.rain_id, "rainId")
    return RedPacketGrabPayload(
        packet=RedPacketGrab(
            rain_id=encode_id("RedPacketRain", grab.rain_id),
            prize=rain.prize,
            coupon_id=encode_id("Coupon", rain.coupon_id) if rain.coupon_id else None,
            amount=grab.amount,
            repeated=not grab.new,
            credited=grab.credited,
        )
    )


@staff_mutation(RAIN_PERMISSION, action="redPacketRainSchedule")
async def red_packet_rain_schedule(info: RainInfo, input: RedPacketRainInput) -> RedPacketRainPayload:
    staff = info.context.viewer.staff
    coupons = input.prize == RedPacketPrize.COUPON
    rain = await red_packets.schedule_rain(
        red_packets.RainDraft(
            room_id=decode_id(input.room_id, "LiveRoom", "input.roomId"),
            # A coupon rain: one coupon in each packet; a points rain without a total fails the checks.
            total_amount=input.packet_count if coupons else (input.total_amount or 0),
            packet_count=input.packet_count,
            starts_at=input.starts_at,
            duration_seconds=input.duration_seconds,
            min_amount=1 if coupons else input.min_amount,
            title=input.title,
            prize=input.prize,
            coupon_id=decode_id(input.coupon_id, "Coupon", "input.couponId") if input.coupon_id else None,
        ),
        staff_id=staff.id if staff else None,
    )
    return RedPacketRainPayload(rain=await _typed(rain))


@staff_mutation(RAIN_PERMISSION, action="redPacketRainStop")
async def red_packet_rain_stop(info: RainInfo, id: strawberry.ID) -> RedPacketRainPayload:
    rain = await red_packets.stop_rain(decode_id(id, "RedPacketRain"))
    return RedPacketRainPayload(rain=await _typed(rain))


# --- Root fields -------------------------------------------------------------------------------------------


@strawberry.type
class RedPacketQuery:
    red_packet_rain: RedPacketRainType | None = strawberry.field(
        resolver=red_packet_rain, description="One red-packet rain, with its numbers."
    )
    red_packet_rains: RedPacketRainConnection = strawberry.field(
        resolver=red_packet_rains, description="A live room's red-packet rains, latest first."
    )


@strawberry.type
class RedPacketMutation:
    red_packet_grab: RedPacketGrabPayload = strawberry.mutation(
        resolver=red_packet_grab,
        description="Grab a packet of a falling rain: one per member per rain (a repeat answers the same "
        "packet); its points are credited once.",
    )
    red_packet_rain_schedule: RedPacketRainPayload = strawberry.mutation(
        resolver=red_packet_rain_schedule,
        description="Schedule a red-packet rain in a live room (staff, CONTENT_WRITE).",
    )
    red_packet_rain_stop: RedPacketRainPayload = strawberry.mutation(
        resolver=red_packet_rain_stop,
        description="Stop a rain now: a scheduled one is cancelled, a falling one ends (staff, CONTENT_WRITE).",
    )
