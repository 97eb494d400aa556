"""The points ledger: every earn and spend is a row with its reason and idempotency key.

`Member.points` is the ledger's balance. It changes only here, by a guarded update that never lets it go
below zero, in the same transaction as the ledger row that records the change and the balance after it.
A retried change (same member, same idempotency key) returns the first change's row and changes nothing.

Concurrency: on PostgreSQL the guarded update locks the member's row, so concurrent changes of one member
queue on it and each sees the balance the previous one left. On SQLite Tortoise serialises the process's
transactions on its one connection; another process writing the same file can still make a transaction fail
with "database is locked", and `infra.transactions.retry_when_busy` runs the whole transaction again.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from infra.transactions import retry_when_busy
from models import Member, PointsEntry, PointsReason
from services.errors import DomainError, ErrorCode

log = logging.getLogger("lianmall.points")

T = TypeVar("T")

MAX_DELTA = 10_000_000
# A balance stays a 32-bit Int (GraphQL's and PostgreSQL's): earning past this is refused.
MAX_BALANCE = 2_000_000_000
KEY_MAX = 96
NOTE_MAX = 200


def _check(delta: int, idempotency_key: str, note: str) -> None:
    if delta == 0 or abs(delta) > MAX_DELTA:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"A change is 1 to {MAX_DELTA} points either way", "delta"
        )
    if not 1 <= len(idempotency_key) <= KEY_MAX:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"The idempotency key is 1 to {KEY_MAX} characters", "idempotencyKey"
        )
    if len(note) > NOTE_MAX:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"The note is at most {NOTE_MAX} characters", "note")


def _replayed(entry: PointsEntry, delta: int, reason: PointsReason) -> PointsEntry:
    if entry.delta != delta or entry.reason != reason:
        raise DomainError(
            ErrorCode.CONFLICT,
            f"The idempotency key '{entry.idempotency_key}' was already used for another change",
            "idempotencyKey",
        )
    return entry


async def apply_points_change(
    member_id: int, delta: int, reason: PointsReason, idempotency_key: str, note: str = ""
) -> PointsEntry:
    """`change_points` inside the caller's transaction (checkout deducting points with the order, sign-in).

    The caller commits or rolls back; on a unique violation of the idempotency key (a concurrent retry) it
    gets IntegrityError and should roll back and read the first change with `points_entry`.
    """
    _check(delta, idempotency_key, note)
    existing = await PointsEntry.get_or_none(member_id=member_id, idempotency_key=idempotency_key)
    if existing is not None:
        return _replayed(existing, delta, reason)
    guard = {"points__gte": -delta} if delta < 0 else {"points__lte": MAX_BALANCE - delta}
    changed = await Member.filter(id=member_id, **guard).update(points=F("points") + delta)
    if not changed:
        if not await Member.exists(id=member_id):
            raise DomainError(ErrorCode.NOT_FOUND, "No such member", "memberId")
        if delta > 0:
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED, f"A balance holds at most {MAX_BALANCE} points", "delta"
            )
        raise DomainError(ErrorCode.INSUFFICIENT_POINTS, f"Not enough points to spend {-delta}", "delta")
    # The row stays locked by our update until commit, so this reads exactly the balance we left.
    balance = await Member.filter(id=member_id).first().values_list("points", flat=True)
    return await PointsEntry.create(
        member_id=member_id,
        delta=delta,
        balance_after=balance,
        reason=reason,
        idempotency_key=idempotency_key,
        note=note,
    )


async def change_points(
    member_id: int, delta: int, reason: PointsReason, idempotency_key: str, note: str = ""
) -> PointsEntry:
    """Earn (`delta` > 0) or spend (`delta` < 0) points, recorded as one ledger row.

    Idempotent per (member, `idempotency_key`): a repeat returns the first row and changes nothing; reusing a
    key for a different change is CONFLICT. Raises INSUFFICIENT_POINTS when the balance would go negative,
    NOT_FOUND for an unknown member, BAD_USER_INPUT for a zero or oversized change.
    """
    _check(delta, idempotency_key, note)

    async def attempt() -> PointsEntry:
        async with in_transaction():
            return await apply_points_change(member_id, delta, reason, idempotency_key, note)

    try:
        return await retry_when_busy(attempt)
    except IntegrityError:
        # A concurrent call with the same key committed first; ours rolled back and changed nothing.
        existing = await points_entry(member_id, idempotency_key)
        if existing is None:
            raise
        return _replayed(existing, delta, reason)


async def points_entry(member_id: int, idempotency_key: str) -> PointsEntry | None:
    """The ledger row a change with this key made, if any."""
    return await PointsEntry.get_or_none(member_id=member_id, idempotency_key=idempotency_key)


async def points_balance(member_id: int) -> int:
    """A member's current balance (0 for an unknown member)."""
    balance = await Member.filter(id=member_id).first().values_list("points", flat=True)
    return int(balance or 0)


async def points_history(member_id: int, offset: int, limit: int) -> tuple[list[PointsEntry], bool]:
    """One page of a member's ledger, newest first, and whether more follow."""
    rows = list(await PointsEntry.filter(member_id=member_id).order_by("-id").offset(offset).limit(limit + 1))
    return rows[:limit], len(rows) > limit


async def count_points_entries(member_id: int) -> int:
    return await PointsEntry.filter(member_id=member_id).count()
