from tortoise import fields
from tortoise.models import Model


class CartItem(Model):
    id = fields.IntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="cart_items", on_delete=fields.CASCADE)
    sku = fields.ForeignKeyField("models.Sku", related_name="cart_items", on_delete=fields.CASCADE)
    quantity = fields.IntField()
    selected = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "cart_items"
        unique_together = (("member", "sku"),)
