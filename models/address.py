from tortoise import fields
from tortoise.models import Model


class Address(Model):
    id = fields.IntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="addresses", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=32)
    phone = fields.CharField(max_length=20)
    province = fields.CharField(max_length=32)
    city = fields.CharField(max_length=32)
    district = fields.CharField(max_length=32)
    detail = fields.CharField(max_length=200)
    is_default = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "addresses"
        indexes = (("member_id", "is_default"),)
