"""The points mall (积分商城): items bought with points (a coupon) or with points plus cash (a SKU)."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class PointsMallItemKind(StrEnum):
    COUPON = "COUPON"
    SKU = "SKU"


# `stock` is what is left, taken one at a time by a guarded update (`stock >= 1`).
class PointsMallItem(Model):
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=64)
    kind = fields.CharEnumField(PointsMallItemKind, max_length=8)
    coupon = fields.ForeignKeyField(
        "models.Coupon", related_name="mall_items", null=True, on_delete=fields.RESTRICT
    )
    sku = fields.ForeignKeyField(
        "models.Sku", related_name="mall_items", null=True, on_delete=fields.RESTRICT
    )
    points = fields.IntField()
    cash = fields.IntField(default=0)  # fen paid besides the points (SKU items)
    stock = fields.IntField()
    per_member_limit = fields.IntField(default=1)
    starts_at = fields.DatetimeField(null=True)
    ends_at = fields.DatetimeField(null=True)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "points_mall_items"
        indexes = (("active", "id"),)


# One exchange of one item by a member. `seq` (1 to the item's per-member limit) is unique per (item, member)
# while the exchange stands; a returned exchange (its order cancelled) gives its number up (seq NULL).
class PointsMallExchange(Model):
    id = fields.IntField(primary_key=True)
    item = fields.ForeignKeyField(
        "models.PointsMallItem", related_name="exchanges", on_delete=fields.RESTRICT
    )
    member = fields.ForeignKeyField("models.Member", related_name="mall_exchanges", on_delete=fields.CASCADE)
    seq = fields.IntField(null=True)
    points = fields.IntField()
    cash = fields.IntField(default=0)
    order_id = fields.IntField(null=True)
    member_coupon_id = fields.IntField(null=True)
    returned_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "points_mall_exchanges"
        unique_together = (("item", "member", "seq"),)
        indexes = (("member_id", "id"), ("order_id",))
