"""Partner API keys and the staff audit log."""

from tortoise import fields
from tortoise.models import Model


# Only a digest of the key is stored; the prefix lets people tell keys apart without revealing them.
class ApiKey(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64)
    key_prefix = fields.CharField(max_length=16)
    key_hash = fields.CharField(max_length=64, unique=True)
    scopes = fields.JSONField(default=list)
    created_by = fields.ForeignKeyField(
        "models.Staff", related_name="api_keys", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_keys"


class AuditLog(Model):
    id = fields.IntField(primary_key=True)
    staff = fields.ForeignKeyField(
        "models.Staff", related_name="audit_entries", null=True, on_delete=fields.SET_NULL
    )
    staff_name = fields.CharField(max_length=64, default="")
    action = fields.CharField(max_length=64)
    target = fields.CharField(max_length=128, default="")
    input_summary = fields.JSONField(default=dict)
    succeeded = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "audit_log"
        indexes = (("staff_id", "created_at"), ("action", "created_at"))
