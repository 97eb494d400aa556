"""Red-packet rain types: the rain staff schedule, a member's grab, their inputs and payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import RainStatus as RainStatusModel
from models import RedPacketPrize as RedPacketPrizeModel
from models import RedPacketRain as RedPacketRainModel
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.node import Node, encode_id
from services.live.red_packets import RainNumbers

RainStatus = strawberry.enum(
    RainStatusModel,
    description="SCHEDULED until its start, LIVE while it falls, ENDED after (or when stopped), CANCELLED if "
    "stopped before it fell.",
)
RedPacketPrize = strawberry.enum(RedPacketPrizeModel, description="What a red packet holds.")


@strawberry.type(name="RedPacketRain", description="A red-packet rain (红包雨) in a live room.")
class RedPacketRainType(Node):
    room_id: strawberry.ID = strawberry.field(description="The live room it falls in.")
    title: str
    prize: RedPacketPrize
    coupon_id: strawberry.ID | None = strawberry.field(description="A COUPON rain's coupon.")
    total_amount: int = strawberry.field(description="What all packets hold together (points, or coupons).")
    min_amount: int = strawberry.field(description="The least a packet holds.")
    packet_count: int
    starts_at: datetime
    ends_at: datetime
    status: RainStatus
    grabbed_count: int = strawberry.field(description="Packets grabbed and credited so far.")
    grabbed_amount: int = strawberry.field(description="What the grabbed packets held together.")
    left_count: int = strawberry.field(description="Packets not yet credited to anyone.")

    @classmethod
    def from_model(cls, m: RedPacketRainModel, numbers: RainNumbers) -> RedPacketRainType:
        return cls(
            id=encode_id("RedPacketRain", m.id),
            room_id=encode_id("LiveRoom", m.room_id),
            title=m.title,
            prize=m.prize,
            coupon_id=encode_id("Coupon", m.coupon_id) if m.coupon_id else None,
            total_amount=m.total_amount,
            min_amount=m.min_amount,
            packet_count=m.packet_count,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            status=m.status,
            grabbed_count=numbers.grabbed_count,
            grabbed_amount=numbers.grabbed_amount,
            left_count=numbers.left_count,
        )


@strawberry.type
class RedPacketRainConnection:
    edges: list[Edge[RedPacketRainType]]
    page_info: PageInfo
    total_count: int


@strawberry.type(description="The packet a member grabbed.")
class RedPacketGrab:
    rain_id: strawberry.ID
    prize: RedPacketPrize
    amount: int = strawberry.field(description="Points the packet holds (a coupon packet: 1 coupon).")
    coupon_id: strawberry.ID | None = strawberry.field(
        default=None, description="The coupon a COUPON packet put in the member's wallet (myCoupons)."
    )
    repeated: bool = strawberry.field(
        description="True when the member had already grabbed this packet (a rain gives one per member)."
    )
    credited: bool = strawberry.field(
        description="False when the points are still on their way (credited within a minute)."
    )


# --- Inputs ------------------------------------------------------------------------------------------------


@strawberry.input(description="A rain to schedule. Its packets are split at random, each above the minimum.")
class RedPacketRainInput:
    room_id: strawberry.ID
    total_amount: int | None = strawberry.field(
        default=None,
        description="Points shared out by all packets, 1 to 10,000,000 (a coupon rain: leave it out, each packet "
        "holds one coupon).",
    )
    packet_count: int = strawberry.field(description="1 to 10,000, at most one per point of the total.")
    starts_at: datetime = strawberry.field(description="When it starts to fall (a past time: at once).")
    duration_seconds: int = strawberry.field(description="How long it falls, 1 to 7,200 seconds.")
    min_amount: int = strawberry.field(default=1, description="The least a packet holds (at least 1).")
    title: str = strawberry.field(default="", description="At most 64 characters.")
    prize: RedPacketPrize = RedPacketPrizeModel.POINTS
    coupon_id: strawberry.ID | None = strawberry.field(
        default=None, description="A COUPON rain's coupon: each packet hands out one (as many must be left)."
    )


# --- Payloads ----------------------------------------------------------------------------------------------


@strawberry.type
class RedPacketRainPayload:
    rain: RedPacketRainType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RedPacketGrabPayload:
    packet: RedPacketGrab | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
