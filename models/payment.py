"""WeChat Pay records: payments, refunds, after-sales and every notification received."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    CLOSED = "CLOSED"


class PaymentStage(StrEnum):
    FULL = "FULL"  # the whole order at once
    DEPOSIT = "DEPOSIT"  # the first of two payments of an order (a presale's deposit)
    BALANCE = "BALANCE"  # the second: what is left after the deposit


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class AfterSaleKind(StrEnum):
    REFUND_ONLY = "REFUND_ONLY"
    RETURN_REFUND = "RETURN_REFUND"


class AfterSaleStatus(StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    RETURNING = "RETURNING"
    REFUNDING = "REFUNDING"
    REFUNDED = "REFUNDED"
    REJECTED = "REJECTED"
    CLOSED = "CLOSED"


class Payment(Model):
    id = fields.IntField(primary_key=True)
    order = fields.ForeignKeyField("models.Order", related_name="payments", on_delete=fields.CASCADE)
    out_trade_no = fields.CharField(max_length=32, unique=True)
    amount = fields.IntField()
    status = fields.CharEnumField(PaymentStatus, max_length=12, default=PaymentStatus.PENDING)
    prepay_id = fields.CharField(max_length=64, default="")
    transaction_id = fields.CharField(max_length=64, null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    paid_at = fields.DatetimeField(null=True)
    # Made while the built-in WeChat sandbox stood in for WeChat Pay: no money ever moved.
    sandbox = fields.BooleanField(default=False)
    # When the sweeper last asked WeChat Pay about it (order query), while no notification settled it.
    checked_at = fields.DatetimeField(null=True)
    # Which part of the order it pays (services.payments.plans): FULL, or a presale's DEPOSIT then BALANCE.
    stage = fields.CharEnumField(PaymentStage, max_length=8, default=PaymentStage.FULL)

    class Meta:
        table = "payments"
        indexes = (("status", "created_at"),)


class AfterSale(Model):
    id = fields.IntField(primary_key=True)
    order = fields.ForeignKeyField("models.Order", related_name="after_sales", on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("models.Member", related_name="after_sales", on_delete=fields.CASCADE)
    kind = fields.CharEnumField(AfterSaleKind, max_length=16)
    status = fields.CharEnumField(AfterSaleStatus, max_length=12, default=AfterSaleStatus.REQUESTED)
    reason = fields.CharField(max_length=200, default="")
    # [{"line_id": 1, "quantity": 2}]: what is returned or refunded.
    lines = fields.JSONField(default=list)
    amount = fields.IntField()
    return_carrier = fields.CharField(max_length=32, default="")
    return_tracking_number = fields.CharField(max_length=64, default="")
    staff_note = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "after_sales"
        indexes = (("order_id", "status"), ("status", "created_at"))


class Refund(Model):
    id = fields.IntField(primary_key=True)
    order = fields.ForeignKeyField("models.Order", related_name="refunds", on_delete=fields.CASCADE)
    after_sale = fields.ForeignKeyField(
        "models.AfterSale", related_name="refunds", null=True, on_delete=fields.SET_NULL
    )
    out_refund_no = fields.CharField(max_length=32, unique=True)
    amount = fields.IntField()
    status = fields.CharEnumField(RefundStatus, max_length=12, default=RefundStatus.PENDING)
    refund_id = fields.CharField(max_length=64, null=True, unique=True)
    reason = fields.CharField(max_length=200, default="")
    # [{"line_id": 1, "quantity": 1}] for partial refunds by line; empty for a whole-order refund.
    lines = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    succeeded_at = fields.DatetimeField(null=True)
    # When the sweeper last asked WeChat Pay about it (refund query), while no notification settled it.
    checked_at = fields.DatetimeField(null=True)
    # The payment it takes money from (null on rows from before this column: the order's paying payment, or the
    # extra payment its reason names).
    payment = fields.ForeignKeyField(
        "models.Payment", related_name="refunds", null=True, on_delete=fields.CASCADE
    )
    # A refund of an order paid in two payments (a presale's deposit and balance) that needs money from both is
    # one WeChat refund per payment: the first row carries the lines and the idempotency key, the others are
    # its parts (they return money only; services.payments.refunds).
    part_of = fields.ForeignKeyField(
        "models.Refund", related_name="parts", null=True, on_delete=fields.CASCADE
    )

    class Meta:
        table = "refunds"
        indexes = (("order_id", "status"), ("status", "created_at"))


# Every payment or refund notification received, accepted or not: forged and mismatched ones are evidence.
class PaymentNotice(Model):
    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=12)  # "payment" | "refund"
    out_trade_no = fields.CharField(max_length=32, default="")
    outcome = fields.CharField(
        max_length=24
    )  # accepted | duplicate | forged | mismatched | unknown_order | …
    detail = fields.CharField(max_length=200, default="")
    body_sha256 = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "payment_notices"
        indexes = (("out_trade_no", "created_at"),)
