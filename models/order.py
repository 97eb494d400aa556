"""Orders, their line snapshots and the record of every transition."""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    RECEIVED = "RECEIVED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class DeliveryMethod(StrEnum):
    EXPRESS = "EXPRESS"
    PICKUP = "PICKUP"


class ActorKind(StrEnum):
    MEMBER = "MEMBER"
    STAFF = "STAFF"
    SYSTEM = "SYSTEM"
    WECHAT = "WECHAT"


class Order(Model):
    id = fields.IntField(primary_key=True)
    number = fields.CharField(max_length=32, unique=True)
    shop = fields.ForeignKeyField("models.Shop", related_name="orders", on_delete=fields.RESTRICT)
    member = fields.ForeignKeyField("models.Member", related_name="orders", on_delete=fields.RESTRICT)
    status = fields.CharEnumField(OrderStatus, max_length=20, default=OrderStatus.PENDING_PAYMENT)
    # Money in fen. payable = items_total - discount + shipping_fee - points_discount; each part is kept.
    items_total = fields.IntField()
    discount = fields.IntField(default=0)
    shipping_fee = fields.IntField(default=0)
    points_used = fields.IntField(default=0)
    points_discount = fields.IntField(default=0)
    payable = fields.IntField()
    # The pricing pipeline's discounts as applied (stage, source, source_id, kind, title, amount), shipping
    # waivers included; each line keeps its share.
    discounts: list = fields.JSONField(default=list)
    paid_amount = fields.IntField(default=0)
    refunded_amount = fields.IntField(default=0)
    delivery = fields.CharEnumField(DeliveryMethod, max_length=10, default=DeliveryMethod.EXPRESS)
    address = fields.JSONField(default=dict)  # snapshot of the address at checkout
    note = fields.CharField(max_length=200, default="")
    idempotency_key = fields.CharField(max_length=64)
    pay_deadline = fields.DatetimeField()
    paid_at = fields.DatetimeField(null=True)
    shipped_at = fields.DatetimeField(null=True)
    received_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    cancel_reason = fields.CharField(max_length=200, default="")
    # Time-driven transitions are found by these columns, so a sweeper on any process can pick them up.
    auto_receive_at = fields.DatetimeField(null=True)
    after_sale_deadline = fields.DatetimeField(null=True)
    carrier = fields.CharField(max_length=32, default="")
    tracking_number = fields.CharField(max_length=64, default="")
    transaction_id = fields.CharField(max_length=64, null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "orders"
        unique_together = (("member", "idempotency_key"),)
        indexes = (
            ("member_id", "status", "created_at"),
            ("status", "pay_deadline"),
            ("status", "auto_receive_at"),
            ("status", "after_sale_deadline"),
            # The campaignSales report reads orders paid in a window.
            ("paid_at",),
        )


class OrderLine(Model):
    id = fields.IntField(primary_key=True)
    order = fields.ForeignKeyField("models.Order", related_name="lines", on_delete=fields.CASCADE)
    product_id = fields.IntField()
    sku_id = fields.IntField()
    # Snapshot at checkout: later catalog edits must not change what was bought.
    title = fields.CharField(max_length=120)
    spec = fields.CharField(max_length=200, default="")
    image_url = fields.CharField(max_length=500, default="")
    unit_price = fields.IntField()
    quantity = fields.IntField()
    line_total = fields.IntField()
    refunded_quantity = fields.IntField(default=0)
    refunded_amount = fields.IntField(default=0)
    # Bought through a campaign (services.orders.campaigns): its kind, its handler's id, what it showed then.
    campaign_kind = fields.CharField(max_length=20, null=True)
    campaign_id = fields.IntField(null=True)
    campaign: dict = fields.JSONField(default=dict)
    # This line's share of the order's discounts and points (services.orders.pipeline) and the cash its goods
    # cost: line_total - discount - points_discount. Null paid_total: written before lines kept their share.
    discount = fields.IntField(default=0)
    points_discount = fields.IntField(default=0)
    paid_total = fields.IntField(null=True)
    discounts: list = fields.JSONField(default=list)

    class Meta:
        table = "order_lines"
        indexes = (("order_id", "id"), ("sku_id",), ("campaign_kind", "campaign_id"))


class OrderEvent(Model):
    id = fields.IntField(primary_key=True)
    order = fields.ForeignKeyField("models.Order", related_name="events", on_delete=fields.CASCADE)
    from_status = fields.CharField(max_length=20, null=True)
    to_status = fields.CharField(max_length=20)
    actor = fields.CharEnumField(ActorKind, max_length=10)
    actor_id = fields.IntField(null=True)
    reason = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "order_events"
        indexes = (("order_id", "id"),)
