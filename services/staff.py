"""Staff accounts and their bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from models import Staff, StaffRole, StaffToken
from services.errors import DomainError, ErrorCode

TOKEN_PREFIX = "stf_"


@dataclass(frozen=True)
class StaffIdentity:
    id: int
    name: str
    role: StaffRole


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_staff(name: str, role: StaffRole = StaffRole.ADMIN) -> tuple[Staff, str]:
    """Create a staff account (or reuse an existing one of that name) and issue it a new token."""
    name = name.strip()
    if not name or len(name) > 64:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "Staff name must be 1 to 64 characters", "name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with in_transaction():
        staff, _ = await Staff.get_or_create(name=name, defaults={"role": role})
        await StaffToken.create(staff=staff, token_hash=_digest(token))
    return staff, token


async def authenticate_staff(token: str) -> StaffIdentity | None:
    """The active staff member a token belongs to, or None for an unknown or revoked token."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = (
        await StaffToken.filter(token_hash=_digest(token), revoked_at__isnull=True, staff__active=True)
        .select_related("staff")
        .first()
    )
    if row is None:
        return None
    return StaffIdentity(id=row.staff.id, name=row.staff.name, role=row.staff.role)
