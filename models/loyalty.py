"""Member levels, the points ledger and daily sign-in."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class MemberLevel(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=32, unique=True)
    min_growth = fields.IntField(unique=True)
    # Percent of the list price this level pays (100 = no discount).
    discount_percent = fields.SmallIntField(default=100)
    free_shipping = fields.BooleanField(default=False)
    birthday_points = fields.IntField(default=0)
    # Minutes before a sale opens to everyone that this level may already buy.
    priority_minutes = fields.IntField(default=0)

    class Meta:
        table = "member_levels"


class PointsReason(StrEnum):
    SIGN_IN = "SIGN_IN"
    PURCHASE = "PURCHASE"
    REVIEW = "REVIEW"
    SHARE = "SHARE"
    CHECKOUT = "CHECKOUT"
    REFUND = "REFUND"
    POINTS_MALL = "POINTS_MALL"
    BIRTHDAY = "BIRTHDAY"
    ADJUSTMENT = "ADJUSTMENT"
    RED_PACKET = "RED_PACKET"


# Every change of a member's points balance, with the balance after it. The idempotency key makes a retried
# earn or spend a no-op instead of a second change.
class PointsEntry(Model):
    id = fields.IntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="points_entries", on_delete=fields.CASCADE)
    delta = fields.IntField()
    balance_after = fields.IntField()
    reason = fields.CharEnumField(PointsReason, max_length=16)
    idempotency_key = fields.CharField(max_length=96)
    note = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "points_entries"
        unique_together = (("member", "idempotency_key"),)
        indexes = (("member_id", "created_at"),)


class SignIn(Model):
    id = fields.IntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="sign_ins", on_delete=fields.CASCADE)
    day = fields.DateField()
    streak = fields.IntField()
    points = fields.IntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "sign_ins"
        unique_together = (("member", "day"),)
