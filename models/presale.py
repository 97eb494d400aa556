"""Presales (预售): a SKU sold ahead on a deposit, the balance paid in a later window."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class PresaleStage(StrEnum):
    DEPOSIT_DUE = "DEPOSIT_DUE"  # ordered, the deposit not yet paid (within the unpaid timeout)
    DEPOSIT_PAID = "DEPOSIT_PAID"  # waiting for the balance window
    BALANCE_PAID = "BALANCE_PAID"  # paid in full: the order is PAID and ships
    FORFEITED = "FORFEITED"  # the balance window closed unpaid: the deposit is kept, the stock released
    CANCELLED = "CANCELLED"  # cancelled before the deposit, or the deposit refunded by the shop


class Presale(Model):
    """What staff set up: per unit, the presale price, the deposit and what the deposit counts for (定金膨胀),
    the window to pay deposits in and the later window to pay balances in."""

    id = fields.IntField(primary_key=True)
    shop = fields.ForeignKeyField("models.Shop", related_name="presales", on_delete=fields.RESTRICT)
    product_id = fields.IntField()
    sku = fields.ForeignKeyField("models.Sku", related_name="presales", on_delete=fields.RESTRICT)
    title = fields.CharField(max_length=60)
    price = fields.IntField()
    deposit = fields.IntField()
    deposit_worth = fields.IntField()
    per_member_limit = fields.IntField()
    deposit_starts_at = fields.DatetimeField()
    deposit_ends_at = fields.DatetimeField()
    balance_starts_at = fields.DatetimeField()
    balance_ends_at = fields.DatetimeField()
    stopped_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "presales"
        indexes = (("sku_id",), ("balance_starts_at",))


class PresaleOrder(Model):
    """An order bought through a presale: its two amounts and the stage it is in."""

    id = fields.IntField(primary_key=True)
    presale = fields.ForeignKeyField("models.Presale", related_name="orders", on_delete=fields.RESTRICT)
    order_id = fields.IntField(unique=True)
    member_id = fields.IntField()
    quantity = fields.IntField()
    deposit = fields.IntField()  # paid first, for every unit
    deposit_worth = fields.IntField()  # what the deposit takes off the price
    balance = fields.IntField()  # the order's payable minus the deposit
    stage = fields.CharEnumField(PresaleStage, max_length=14, default=PresaleStage.DEPOSIT_DUE)
    deposit_payment_id = fields.IntField(null=True)
    balance_payment_id = fields.IntField(null=True)
    deposit_paid_at = fields.DatetimeField(null=True)
    balance_paid_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    # When the member was told the balance window is open (subscribe message); set once, before sending.
    reminded_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "presale_orders"
        indexes = (("presale_id", "stage"), ("stage", "reminded_at"), ("member_id", "presale_id"))


class PresaleQuota(Model):
    """Units a member holds through a presale (ordered and not cancelled), against its per-member limit."""

    id = fields.IntField(primary_key=True)
    presale = fields.ForeignKeyField("models.Presale", related_name="quotas", on_delete=fields.CASCADE)
    member_id = fields.IntField()
    units = fields.IntField(default=0)

    class Meta:
        table = "presale_quotas"
        unique_together = (("presale", "member_id"),)
