"""Shoppers: the WeChat identity, profile, growth and points balance, invitation, login sessions."""

from tortoise import fields
from tortoise.models import Model


class Member(Model):
    id = fields.IntField(primary_key=True)
    openid = fields.CharField(max_length=64, unique=True)
    unionid = fields.CharField(max_length=64, null=True, db_index=True)
    nickname = fields.CharField(max_length=64, default="")
    avatar_url = fields.CharField(max_length=500, default="")
    # The phone number is kept encrypted (services.members.phone); the masked form and a keyed hash serve display and lookup.
    phone_encrypted = fields.TextField(default="")
    phone_masked = fields.CharField(max_length=16, default="")
    phone_hash = fields.CharField(max_length=64, null=True, db_index=True)
    # WeChat's session key from the last code2session, encrypted: the legacy phone flow decrypts with it.
    session_key_encrypted = fields.TextField(default="")
    growth = fields.IntField(default=0)
    # Balance of the points ledger; only services.loyalty.points changes it, with a guarded update.
    points = fields.IntField(default=0)
    invite_code = fields.CharField(max_length=16, unique=True)
    inviter = fields.ForeignKeyField(
        "models.Member", related_name="invitees", null=True, on_delete=fields.SET_NULL
    )
    invited_at = fields.DatetimeField(null=True)
    birthday = fields.DateField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "members"


# One login: the refresh token (stored as a digest) rotates on every refresh; revoking ends the session.
class MemberSession(Model):
    id = fields.IntField(primary_key=True)
    member = fields.ForeignKeyField("models.Member", related_name="sessions", on_delete=fields.CASCADE)
    refresh_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    user_agent = fields.CharField(max_length=200, default="")
    ip = fields.CharField(max_length=64, default="")

    class Meta:
        table = "member_sessions"
        indexes = (("member_id", "revoked_at"),)


# A refresh token that was traded in (stored as a digest): presented again, it means two holders of one
# session, so the whole session ends (reuse detection). Kept for as long as a refresh token lives.
class RetiredRefreshToken(Model):
    id = fields.IntField(primary_key=True)
    session = fields.ForeignKeyField(
        "models.MemberSession", related_name="retired_tokens", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    retired_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "retired_refresh_tokens"
