"""Flash sales (秒杀): daily time slots, activities over a date range, and the SKUs each sells in a slot.

The database is the record of what was sold: `FlashSaleItem.sold` and `FlashSalePurchase.quantity` change inside
the order's transaction with guarded updates, so they never pass the allotment or a member's limit whatever
Redis says. Redis (services.marketing.flash_sale.stock) only turns away the crowd before it reaches them.
"""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class FlashSaleStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    STOPPED = "STOPPED"


# A daily time slot (场次), e.g. 10:00-12:00, as minutes after midnight shop time. Disabled slots keep their
# history but take no new items and no longer count for overlaps.
class FlashSaleSession(Model):
    id = fields.IntField(primary_key=True)
    shop = fields.ForeignKeyField("models.Shop", related_name="flash_sessions", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=32)
    starts_minute = fields.SmallIntField()
    ends_minute = fields.SmallIntField()
    enabled = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "flash_sale_sessions"
        indexes = (("shop_id", "enabled", "starts_minute"),)


# An activity runs its items in their slots on every day from starts_on to ends_on (inclusive).
class FlashSale(Model):
    id = fields.IntField(primary_key=True)
    shop = fields.ForeignKeyField("models.Shop", related_name="flash_sales", on_delete=fields.RESTRICT)
    title = fields.CharField(max_length=60)
    starts_on = fields.DateField()
    ends_on = fields.DateField()
    status = fields.CharEnumField(FlashSaleStatus, max_length=12, default=FlashSaleStatus.SCHEDULED)
    stopped_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "flash_sales"
        indexes = (("shop_id", "status", "ends_on"),)


# One SKU sold in one slot of one activity: its price, its allotment (taken from the SKU's stock at checkout)
# and how many units one member may hold at once (cancelled orders give theirs back).
class FlashSaleItem(Model):
    id = fields.IntField(primary_key=True)
    flash_sale = fields.ForeignKeyField("models.FlashSale", related_name="items", on_delete=fields.CASCADE)
    session = fields.ForeignKeyField(
        "models.FlashSaleSession", related_name="items", on_delete=fields.RESTRICT
    )
    sku_id = fields.IntField()
    product_id = fields.IntField()
    flash_price = fields.IntField()
    allotment = fields.IntField()
    per_member_limit = fields.IntField()
    sold = fields.IntField(default=0)
    sort = fields.IntField(default=0)

    class Meta:
        table = "flash_sale_items"
        unique_together = (("flash_sale", "session", "sku_id"),)
        indexes = (("session_id", "flash_sale_id"), ("sku_id",))


# What one member holds of one item (units in orders not cancelled): the database side of the member limit.
class FlashSalePurchase(Model):
    id = fields.IntField(primary_key=True)
    item = fields.ForeignKeyField("models.FlashSaleItem", related_name="purchases", on_delete=fields.CASCADE)
    member_id = fields.IntField()
    quantity = fields.IntField(default=0)

    class Meta:
        table = "flash_sale_purchases"
        unique_together = (("item", "member_id"),)
