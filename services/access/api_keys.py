"""Partner API keys: issued and revoked by admins, sent by partners as `Authorization: Bearer pk_...`.

Only a SHA-256 digest of a key is stored, with its first characters so people can tell keys apart; the plaintext
is shown once, when the key is made. A key carries scopes from `SCOPES`. Any valid key may introspect the schema
(the schema is the contract partners build against), so introspection needs no scope of its own.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from infra.clock import now
from models import ApiKey
from services.access.staff import StaffIdentity
from services.errors import DomainError, ErrorCode, ValidationErrors

KEY_PREFIX = "pk_"
# What the key list shows of a key: "pk_" and 9 random characters, enough to tell keys apart, useless to guess.
SHOWN_CHARS = 12
# `last_used_at` is a hint for admins ("is this key still in use?"), not an access log: write it at most this
# often per key, so a busy partner does not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)

SCOPES: dict[str, str] = {
    "catalog:read": "Read products, SKUs, stock and the category tree.",
    "orders:read": "Read orders and their shipping state.",
    "members:read": "Read member profiles (phone numbers masked).",
}


@dataclass(frozen=True)
class PartnerIdentity:
    id: int
    name: str
    scopes: frozenset[str]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _check(name: str, scopes: list[str]) -> list[DomainError]:
    problems: list[DomainError] = []
    if not name or len(name) > 64:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, "Name must be 1 to 64 characters", "input.name")
        )
    if not scopes:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, "A key needs at least one scope", "input.scopes")
        )
    problems.extend(
        DomainError(
            ErrorCode.BAD_USER_INPUT,
            f"Unknown scope '{scope[:64]}'; scopes are {', '.join(SCOPES)}",
            f"input.scopes[{i}]",
        )
        for i, scope in enumerate(scopes)
        if scope not in SCOPES
    )
    return problems


async def create_api_key(
    name: str, scopes: list[str], created_by: StaffIdentity | None
) -> tuple[ApiKey, str]:
    """Issue a key named `name` with `scopes`; returns the row and the plaintext key, which is never stored."""
    name = name.strip()
    problems = _check(name, scopes)
    if problems:
        raise ValidationErrors(problems)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = await ApiKey.create(
        name=name,
        key_prefix=key[:SHOWN_CHARS],
        key_hash=_digest(key),
        scopes=sorted(set(scopes)),
        created_by_id=created_by.id if created_by else None,
    )
    return row, key


async def list_api_keys(offset: int, limit: int) -> list[ApiKey]:
    """Keys newest first, revoked ones included (they say when they were revoked)."""
    return await ApiKey.all().order_by("-id").offset(offset).limit(limit)


async def count_api_keys() -> int:
    return await ApiKey.all().count()


async def revoke_api_key(key_id: int) -> ApiKey:
    """Revoke a key at once; revoking a revoked key changes nothing."""
    await ApiKey.filter(id=key_id, revoked_at__isnull=True).update(revoked_at=now())
    row = await ApiKey.get_or_none(id=key_id)
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such API key", "id")
    return row


async def authenticate_api_key(key: str) -> PartnerIdentity | None:
    """The partner a key belongs to, or None for an unknown or revoked key."""
    if not key.startswith(KEY_PREFIX):
        return None
    row = await ApiKey.get_or_none(key_hash=_digest(key), revoked_at__isnull=True)
    if row is None:
        return None
    moment = now()
    if row.last_used_at is None or moment - row.last_used_at >= LAST_USED_RESOLUTION:
        await ApiKey.filter(id=row.id).update(last_used_at=moment)
    return PartnerIdentity(id=row.id, name=row.name, scopes=frozenset(row.scopes))
