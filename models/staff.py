from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class StaffRole(StrEnum):
    ADMIN = "ADMIN"
    OPERATOR = "OPERATOR"
    CUSTOMER_SERVICE = "CUSTOMER_SERVICE"
    WAREHOUSE = "WAREHOUSE"


class Staff(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    role = fields.CharEnumField(StaffRole, max_length=24, default=StaffRole.ADMIN)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "staff"


# Opaque bearer tokens: only a SHA-256 digest is stored. (No docstring: Tortoise turns model docstrings
# into table comments, and its SQLite schema editor splits statements on semicolons.)
class StaffToken(Model):
    id = fields.IntField(primary_key=True)
    staff = fields.ForeignKeyField("models.Staff", related_name="tokens", on_delete=fields.CASCADE)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "staff_tokens"
