"""Staff accounts and their bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import raw_sql
from infra.clock import now
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


def _checked_name(name: str, field: str = "name") -> str:
    name = name.strip()
    if not name or len(name) > 64:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "Staff name must be 1 to 64 characters", field)
    return name


async def create_staff(name: str, role: StaffRole = StaffRole.ADMIN) -> tuple[Staff, str]:
    """Create a staff account (or reuse an existing one of that name) and issue it a new token."""
    name = _checked_name(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with in_transaction():
        staff, _ = await Staff.get_or_create(name=name, defaults={"role": role})
        await StaffToken.create(staff=staff, token_hash=_digest(token))
    return staff, token


# Every staff request asks the database (a revoked token or a deactivated account is refused from the very next
# request on, in every process): a fixed statement, as Tortoise's join with select_related cost a third of a
# small staff mutation's CPU.
_AUTHENTICATE_SQL = (
    "SELECT s.id, s.name, s.role FROM staff_tokens t JOIN staff s ON s.id = t.staff_id"
    " WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND s.active"
)


async def authenticate_staff(token: str) -> StaffIdentity | None:
    """The active staff member a token belongs to, or None for an unknown or revoked token."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    rows = await raw_sql.fetch(_AUTHENTICATE_SQL, [_digest(token)])
    if not rows:
        return None
    staff_id, name, role = rows[0]
    return StaffIdentity(id=int(staff_id), name=str(name), role=StaffRole(role))


async def add_staff(name: str, role: StaffRole) -> tuple[Staff, str]:
    """Create a new staff account with its first token; unlike `create_staff`, a taken name is a CONFLICT."""
    name = _checked_name(name, "input.name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        async with in_transaction():
            staff = await Staff.create(name=name, role=role)
            await StaffToken.create(staff=staff, token_hash=_digest(token))
    except IntegrityError:
        raise DomainError(
            ErrorCode.CONFLICT, f"A staff account is already called {name}", "input.name"
        ) from None
    return staff, token


async def _lock_for_admin_change(staff_id: int) -> tuple[Staff, list[int]]:
    """The staff row and the ids of the active admins, all locked (on PostgreSQL) in one order: admins first.

    Two admins demoting or deactivating each other at once then run one after the other, so the second sees
    the first's change and the shop keeps an admin, and the fixed lock order rules out deadlocks.
    """
    admins = await Staff.filter(role=StaffRole.ADMIN, active=True).order_by("id").select_for_update()
    staff = await Staff.filter(id=staff_id).select_for_update().first()
    if staff is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such staff account", "id")
    return staff, [a.id for a in admins]


def _check_not_last_admin(staff: Staff, admin_ids: list[int]) -> None:
    if admin_ids == [staff.id]:
        raise DomainError(ErrorCode.CONFLICT, "The shop needs at least one active admin", "id")


async def change_role(staff_id: int, role: StaffRole) -> Staff:
    """Give a staff member another role; it applies from their very next request on."""
    async with in_transaction():
        staff, admin_ids = await _lock_for_admin_change(staff_id)
        if role is not StaffRole.ADMIN:
            _check_not_last_admin(staff, admin_ids)
        staff.role = role
        await staff.save(update_fields=["role"])
    return staff


async def deactivate_staff(staff_id: int) -> Staff:
    """Deactivate an account and revoke its tokens: every process refuses them from the next request on."""
    async with in_transaction():
        staff, admin_ids = await _lock_for_admin_change(staff_id)
        _check_not_last_admin(staff, admin_ids)
        staff.active = False
        await staff.save(update_fields=["active"])
        await StaffToken.filter(staff_id=staff.id, revoked_at__isnull=True).update(revoked_at=now())
    return staff


async def get_staff(staff_id: int) -> Staff | None:
    return await Staff.get_or_none(id=staff_id)


async def list_staff(offset: int, limit: int) -> list[Staff]:
    """Staff accounts in the order they were made, deactivated ones included."""
    return await Staff.all().order_by("id").offset(offset).limit(limit)


async def count_staff() -> int:
    return await Staff.all().count()
