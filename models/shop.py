from tortoise import fields
from tortoise.models import Model

DEFAULT_SHOP_CODE = "default"


class Shop(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "shops"
