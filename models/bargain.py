"""Bargains (砍价): an activity sells one SKU from a start price down to a floor, cut by the starter's friends.

Each started bargain carries its own cut plan state (`cuts_done`, `current_price`); a cut is one guarded update
of that row (compare-and-set on `cuts_done`) plus a `BargainHelp` row, unique per helper and bargain, in one
transaction. `BargainHelpDay` counts a helper's cuts per shop day with a guarded update (the daily cap).
"""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class BargainActivityStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    STOPPED = "STOPPED"


class BargainStatus(StrEnum):
    ONGOING = "ONGOING"
    SUCCEEDED = "SUCCEEDED"  # reached the floor
    ORDERED = "ORDERED"  # the starter bought at the reached price
    EXPIRED = "EXPIRED"


class BargainActivity(Model):
    id = fields.IntField(primary_key=True)
    shop = fields.ForeignKeyField("models.Shop", related_name="bargain_activities", on_delete=fields.RESTRICT)
    title = fields.CharField(max_length=60)
    sku_id = fields.IntField()
    product_id = fields.IntField()
    start_price = fields.IntField()
    floor_price = fields.IntField()
    helpers_needed = fields.IntField()
    # How long a started bargain may be cut and bought, in hours.
    hours_to_finish = fields.IntField()
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    stock = fields.IntField()
    sold = fields.IntField(default=0)
    started_count = fields.IntField(default=0)
    succeeded_count = fields.IntField(default=0)
    status = fields.CharEnumField(
        BargainActivityStatus, max_length=12, default=BargainActivityStatus.SCHEDULED
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "bargain_activities"
        indexes = (("shop_id", "status", "ends_at"),)


class Bargain(Model):
    id = fields.IntField(primary_key=True)
    activity = fields.ForeignKeyField(
        "models.BargainActivity", related_name="bargains", on_delete=fields.CASCADE
    )
    member_id = fields.IntField()
    current_price = fields.IntField()
    cuts_done = fields.IntField(default=0)
    status = fields.CharEnumField(BargainStatus, max_length=12, default=BargainStatus.ONGOING)
    expires_at = fields.DatetimeField()
    order_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "bargains"
        indexes = (("activity_id", "member_id"), ("member_id", "created_at"), ("status", "expires_at"))


class BargainHelp(Model):
    id = fields.IntField(primary_key=True)
    bargain = fields.ForeignKeyField("models.Bargain", related_name="helps", on_delete=fields.CASCADE)
    helper_id = fields.IntField()
    amount = fields.IntField()
    price_after = fields.IntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "bargain_helps"
        unique_together = (("bargain", "helper_id"),)


class BargainHelpDay(Model):
    id = fields.IntField(primary_key=True)
    helper_id = fields.IntField()
    day = fields.DateField()
    count = fields.IntField(default=0)

    class Meta:
        table = "bargain_help_days"
        unique_together = (("helper_id", "day"),)
