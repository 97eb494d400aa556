"""Red-packet rain in a live room: the rain staff schedule and its packets, split before the rain starts.

Redis hands packets out (one atomic script per grab); these rows are the record. A packet row's member is set
once, inside the transaction that credits its prize, so a packet is credited at most once and, by the unique
(rain, member) pair, no member holds two packets of one rain.
"""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class RedPacketPrize(StrEnum):
    POINTS = "POINTS"
    # One coupon of the rain's coupon template per packet.
    COUPON = "COUPON"


class RainStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    LIVE = "LIVE"
    ENDED = "ENDED"
    CANCELLED = "CANCELLED"


class RedPacketRain(Model):
    id = fields.IntField(primary_key=True)
    # The live room the rain falls in (services.live's rooms).
    room_id = fields.IntField()
    title = fields.CharField(max_length=64, default="")
    prize = fields.CharEnumField(RedPacketPrize, max_length=16, default=RedPacketPrize.POINTS)
    # The coupon template a COUPON rain hands out, one per packet (services.marketing.coupons).
    coupon_id = fields.IntField(null=True)
    # In the prize's unit (points; coupons: 1 per packet): what all packets hold, and the least one holds.
    total_amount = fields.IntField()
    min_amount = fields.IntField(default=1)
    packet_count = fields.IntField()
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    status = fields.CharEnumField(RainStatus, max_length=16, default=RainStatus.SCHEDULED)
    # Set once the rain is over and every grab is credited: the sweeper stops looking at it.
    settled_at = fields.DatetimeField(null=True)
    started_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    created_by = fields.ForeignKeyField(
        "models.Staff", related_name="red_packet_rains", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "red_packet_rains"
        indexes = (
            ("status", "starts_at"),
            ("status", "ends_at"),
            ("room_id", "starts_at"),
            ("settled_at", "ends_at"),
        )


class RedPacket(Model):
    id = fields.IntField(primary_key=True)
    rain = fields.ForeignKeyField("models.RedPacketRain", related_name="packets", on_delete=fields.CASCADE)
    # Position in the rain's pre-split list (0-based): what the grab script hands out.
    index = fields.IntField()
    amount = fields.IntField()
    member = fields.ForeignKeyField(
        "models.Member", related_name="red_packets", null=True, on_delete=fields.RESTRICT
    )
    grabbed_at = fields.DatetimeField(null=True)
    credited_at = fields.DatetimeField(null=True)

    class Meta:
        table = "red_packets"
        unique_together = (("rain", "index"), ("rain", "member"))
        indexes = (("member_id", "credited_at"),)
