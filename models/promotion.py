"""Promotions: rules built from registered conditions and actions (services.marketing.promotions)."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class PromotionKind(StrEnum):
    LIMITED_TIME = "LIMITED_TIME"  # 限时折扣: a per-product price, shown on the product page
    THRESHOLD = "THRESHOLD"  # 满减 / 满折: money off an order that reaches a threshold
    MEMBER_DAY = "MEMBER_DAY"  # 会员日: an order promotion for members on given days
    FIRST_ORDER = "FIRST_ORDER"  # 新人首单


class PromotionStatus(StrEnum):
    DRAFT = "DRAFT"  # being prepared: never applies
    ACTIVE = "ACTIVE"  # applies between starts_at and ends_at
    INACTIVE = "INACTIVE"  # stopped by staff


# Conditions and actions are lists of {"type": ..., "args": {...}}, each type a registered class with typed
# arguments (ids are primary keys). Stacking: `combines_with_promotions` false keeps its lines for itself,
# `combines_with_coupons` false keeps coupons off its lines, `applies_to_campaign_lines` lets it discount lines
# bought at a campaign's price (default no).
class Promotion(Model):
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=60)
    description = fields.CharField(max_length=200, default="")
    kind = fields.CharEnumField(PromotionKind, max_length=12)
    status = fields.CharEnumField(PromotionStatus, max_length=10, default=PromotionStatus.DRAFT)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField(null=True)
    conditions: list = fields.JSONField(default=list)
    actions: list = fields.JSONField(default=list)
    combines_with_promotions = fields.BooleanField(default=True)
    combines_with_coupons = fields.BooleanField(default=True)
    applies_to_campaign_lines = fields.BooleanField(default=False)
    # Higher first within a stage; ties by id.
    priority = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "promotions"
        indexes = (("status", "starts_at"), ("status", "ends_at"), ("kind", "status"))
