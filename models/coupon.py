"""Coupons: the templates staff define, the coupons members hold, and redeem codes."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class CouponKind(StrEnum):
    CASH = "CASH"  # 无门槛: a fixed amount off, no minimum
    THRESHOLD = "THRESHOLD"  # 满减: a fixed amount off from a minimum spend
    DISCOUNT = "DISCOUNT"  # 折扣: a percentage off, capped, optionally from a minimum spend


class CouponScope(StrEnum):
    ALL = "ALL"
    CATEGORIES = "CATEGORIES"
    PRODUCTS = "PRODUCTS"
    BRANDS = "BRANDS"


class CouponStatus(StrEnum):
    ACTIVE = "ACTIVE"
    STOPPED = "STOPPED"  # no more claims or issues; coupons already held stay usable


class HeldCouponStatus(StrEnum):
    UNUSED = "UNUSED"
    USED = "USED"


class CouponSource(StrEnum):
    CENTER = "CENTER"  # claimed in the coupon center
    ISSUED = "ISSUED"  # given by staff (to members or a member level)
    CODE = "CODE"  # a redeem code
    POINTS_MALL = "POINTS_MALL"  # bought with points
    RED_PACKET = "RED_PACKET"  # grabbed in a live room's red-packet rain


# A coupon template. `issued` counts the coupons handed out; a guarded update (`issued < total_quantity`) takes
# each one, so the total can never be exceeded by concurrent claims.
class Coupon(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64)
    description = fields.CharField(max_length=200, default="")
    kind = fields.CharEnumField(CouponKind, max_length=10)
    # Fen off (CASH, THRESHOLD); for DISCOUNT the percent paid (85 = 8.5折) and the cap in fen.
    amount_off = fields.IntField(default=0)
    discount_percent = fields.SmallIntField(default=100)
    max_discount = fields.IntField(default=0)
    # The in-scope goods must reach this (fen) before the coupon applies; 0 for CASH.
    min_amount = fields.IntField(default=0)
    scope = fields.CharEnumField(CouponScope, max_length=12, default=CouponScope.ALL)
    scope_ids: list = fields.JSONField(default=list)
    # Validity: a fixed window, or `valid_days` days from the moment a member gets it.
    valid_from = fields.DatetimeField(null=True)
    valid_until = fields.DatetimeField(null=True)
    valid_days = fields.IntField(null=True)
    # When shoppers may claim it in the coupon center (null: from now / without end).
    claim_starts_at = fields.DatetimeField(null=True)
    claim_ends_at = fields.DatetimeField(null=True)
    public = fields.BooleanField(
        default=True
    )  # shown in the coupon center; otherwise issued or redeemed only
    total_quantity = fields.IntField()
    issued = fields.IntField(default=0)
    used = fields.IntField(default=0)
    per_member_limit = fields.IntField(default=1)
    stackable = fields.BooleanField(default=False)  # may be used together with other stackable coupons
    return_on_refund = fields.BooleanField(default=False)  # a fully refunded order gives it back
    status = fields.CharEnumField(CouponStatus, max_length=10, default=CouponStatus.ACTIVE)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "coupons"
        indexes = (("status", "public", "claim_ends_at"),)


# A coupon a member holds. `seq` numbers a member's coupons of one template from 1 to the per-member limit, and
# (coupon, member, seq) is unique: two concurrent claims cannot both take the last allowed number.
class MemberCoupon(Model):
    id = fields.IntField(primary_key=True)
    coupon = fields.ForeignKeyField("models.Coupon", related_name="held", on_delete=fields.RESTRICT)
    member = fields.ForeignKeyField("models.Member", related_name="coupons", on_delete=fields.CASCADE)
    seq = fields.IntField()
    source = fields.CharEnumField(CouponSource, max_length=12)
    status = fields.CharEnumField(HeldCouponStatus, max_length=8, default=HeldCouponStatus.UNUSED)
    valid_from = fields.DatetimeField()
    valid_until = fields.DatetimeField()
    order_id = fields.IntField(null=True)
    used_at = fields.DatetimeField(null=True)
    claimed_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "member_coupons"
        unique_together = (("coupon", "member", "seq"),)
        indexes = (("member_id", "status", "valid_until"), ("order_id",))


# A one-time redeem code of a coupon; taken by one member with a guarded update (`member_id IS NULL`).
class CouponCode(Model):
    id = fields.IntField(primary_key=True)
    coupon = fields.ForeignKeyField("models.Coupon", related_name="codes", on_delete=fields.CASCADE)
    code = fields.CharField(max_length=20, unique=True)
    member_id = fields.IntField(null=True)
    member_coupon_id = fields.IntField(null=True)
    redeemed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "coupon_codes"
        indexes = (("coupon_id", "id"),)
