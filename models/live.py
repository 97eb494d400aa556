"""Live sale: rooms, the products sold in them at a live price, comments and muted members."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.content import Moderation


class LiveRoomStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    LIVE = "LIVE"
    PAUSED = "PAUSED"
    ENDED = "ENDED"


# A live session. Staff schedule it, go live, pause and end it. When the shop runs WeChat's own live rooms
# (小程序直播), `wechat_room_id` ties it to one and the sweeper copies WeChat's status (101-107) over.
class LiveRoom(Model):
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=60)
    cover_url = fields.CharField(max_length=500, default="")
    anchor_name = fields.CharField(max_length=30)
    scheduled_start = fields.DatetimeField()
    scheduled_end = fields.DatetimeField()
    status = fields.CharEnumField(LiveRoomStatus, max_length=10, default=LiveRoomStatus.SCHEDULED)
    started_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    # The room product being presented now (讲解中), at most one.
    pinned_id = fields.IntField(null=True)
    wechat_room_id = fields.IntField(null=True, unique=True)
    wechat_status = fields.IntField(null=True)
    wechat_synced_at = fields.DatetimeField(null=True)
    # WeChat's goods list of the room as getliveinfo last gave it ([{name, coverUrl, url, price}]).
    wechat_goods = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "live_rooms"
        indexes = (("status", "scheduled_start"),)


# A SKU sold in a room at its live price, out of an allotment. `sold` counts what orders placed from the room
# took (given back when such an order is cancelled).
class LiveRoomProduct(Model):
    id = fields.IntField(primary_key=True)
    room = fields.ForeignKeyField("models.LiveRoom", related_name="products", on_delete=fields.CASCADE)
    product_id = fields.IntField()
    sku_id = fields.IntField()
    live_price = fields.IntField()
    allotment = fields.IntField()
    sold = fields.IntField(default=0)
    position = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "live_room_products"
        unique_together = (("room_id", "sku_id"),)


# A viewer's comment. Shown once WeChat's content check passed it (or staff approved a held one), unless
# staff removed it.
class LiveComment(Model):
    id = fields.IntField(primary_key=True)
    room = fields.ForeignKeyField("models.LiveRoom", related_name="comments", on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("models.Member", related_name="live_comments", on_delete=fields.CASCADE)
    text = fields.CharField(max_length=200)
    moderation = fields.CharEnumField(Moderation, max_length=10, default=Moderation.PASSED)
    label = fields.IntField(default=0)
    removed = fields.BooleanField(default=False)
    removed_by = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "live_comments"
        indexes = (("room_id", "id"), ("moderation", "id"))


# A member staff silenced in a room, until `until` (null: for the rest of the room).
class LiveMute(Model):
    id = fields.IntField(primary_key=True)
    room = fields.ForeignKeyField("models.LiveRoom", related_name="mutes", on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("models.Member", related_name="live_mutes", on_delete=fields.CASCADE)
    until = fields.DatetimeField(null=True)
    staff_id = fields.IntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "live_mutes"
        unique_together = (("room_id", "member_id"),)
