"""Group buys (拼团): the staff's rules, the groups shoppers open and join, their seats and per-member quotas."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class GroupBuyStatus(StrEnum):
    OPENING = "OPENING"  # the leader's order is placed, not yet paid: nobody can join yet
    OPEN = "OPEN"  # the leader paid: joinable until expires_at
    SUCCEEDED = "SUCCEEDED"  # every seat paid (or completed by virtual members at expiry): orders ship
    FAILED = "FAILED"  # expired short of members: every paid member is refunded
    CANCELLED = "CANCELLED"  # the leader never paid: the group never opened


class GroupBuyRule(Model):
    """What staff set up: one SKU at a group price for groups of `group_size`, filled within `hours_to_fill`."""

    id = fields.IntField(primary_key=True)
    shop = fields.ForeignKeyField("models.Shop", related_name="group_buy_rules", on_delete=fields.RESTRICT)
    product_id = fields.IntField()
    sku = fields.ForeignKeyField("models.Sku", related_name="group_buy_rules", on_delete=fields.RESTRICT)
    title = fields.CharField(max_length=60)
    group_price = fields.IntField()
    group_size = fields.IntField()
    hours_to_fill = fields.IntField()
    # Units one member may buy through this rule, over all its groups.
    per_member_limit = fields.IntField()
    # 虚拟成团: at expiry, a group short of at most this many members succeeds with that many virtual ones.
    virtual_members = fields.IntField(default=0)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    stopped_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "group_buy_rules"
        indexes = (("sku_id",), ("shop_id", "ends_at"))


class GroupBuy(Model):
    """One group: its leader, its seats (taken by placed orders, `seats_taken`) and how many of them are paid."""

    id = fields.IntField(primary_key=True)
    rule = fields.ForeignKeyField("models.GroupBuyRule", related_name="groups", on_delete=fields.RESTRICT)
    leader_member_id = fields.IntField()
    status = fields.CharEnumField(GroupBuyStatus, max_length=12, default=GroupBuyStatus.OPENING)
    size = fields.IntField()
    # Seats held by orders placed and not cancelled (paid or within their unpaid timeout); never above size.
    seats_taken = fields.IntField(default=1)
    paid_count = fields.IntField(default=0)
    virtual_count = fields.IntField(default=0)
    opened_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    succeeded_at = fields.DatetimeField(null=True)
    failed_at = fields.DatetimeField(null=True)
    # A failed group is settled once every member's order is cancelled (refunded or never paid).
    settled_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "group_buys"
        indexes = (("status", "expires_at"), ("rule_id", "status"), ("status", "settled_at"))


class GroupBuySeat(Model):
    """A member's place in a group, held by their order, deleted when that order is cancelled unpaid."""

    id = fields.IntField(primary_key=True)
    group = fields.ForeignKeyField("models.GroupBuy", related_name="seats", on_delete=fields.CASCADE)
    member_id = fields.IntField()
    order_id = fields.IntField(unique=True)
    quantity = fields.IntField()
    leader = fields.BooleanField(default=False)
    paid = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "group_buy_seats"
        unique_together = (("group", "member_id"),)


class GroupBuyQuota(Model):
    """Units a member holds through a rule (placed and not cancelled), against its per-member limit."""

    id = fields.IntField(primary_key=True)
    rule = fields.ForeignKeyField("models.GroupBuyRule", related_name="quotas", on_delete=fields.CASCADE)
    member_id = fields.IntField()
    units = fields.IntField(default=0)

    class Meta:
        table = "group_buy_quotas"
        unique_together = (("rule", "member_id"),)
