"""Who invited whom: invite codes, binding an inviter once, and the inviter chain distribution pays along."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from infra.clock import now
from infra.transactions import retry_when_busy
from models import Member
from services.errors import DomainError, ErrorCode

CHAIN_DEPTH = 3
INVITE_CODE_MAX = 16  # Member.invite_code's column; codes drawn today are 8 characters
# Key of the PostgreSQL advisory lock that serialises bindings: two members binding each other at the same
# moment would each see no cycle and together make one.
_BIND_LOCK_KEY = 0x4C4D_0001


def normalize_invite_code(code: str) -> str:
    """The code as stored: shoppers type lower case and stray spaces."""
    return code.strip().upper()


async def _inviter_of(member_id: int) -> int | None:
    inviter_id = await Member.filter(id=member_id).first().values_list("inviter_id", flat=True)
    return int(inviter_id) if inviter_id is not None else None


async def inviter_chain(member_id: int, depth: int = CHAIN_DEPTH) -> list[int]:
    """The member's inviters, nearest first: inviter, inviter's inviter, ... at most `depth` of them."""
    chain: list[int] = []
    current = await _inviter_of(member_id)
    while current is not None and len(chain) < depth and current not in chain:
        chain.append(current)
        current = await _inviter_of(current)
    return chain


async def _reaches(start_id: int, target_id: int) -> bool:
    """Whether walking up the inviter chain from `start_id` (inclusive) meets `target_id`."""
    seen: set[int] = set()
    current: int | None = start_id
    while current is not None and current not in seen:
        if current == target_id:
            return True
        seen.add(current)
        current = await _inviter_of(current)
    return False


async def bind_inviter(member_id: int, invite_code: str) -> Member:
    """Record who invited the member, by the inviter's code; returns the inviter.

    Once only (ALREADY_BOUND); an unknown code is NOT_FOUND, the member's own code BAD_USER_INPUT, and a code
    whose owner was (directly or further up) invited by this member CONFLICT, so the relation stays a tree.
    """
    code = normalize_invite_code(invite_code)
    if not code:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "Enter an invite code", "code")
    if len(code) > INVITE_CODE_MAX:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"An invite code has at most {INVITE_CODE_MAX} characters", "code"
        )

    async def attempt() -> Member:
        async with in_transaction() as connection:
            if connection.capabilities.dialect == "postgres":
                await connection.execute_query("SELECT pg_advisory_xact_lock($1)", [_BIND_LOCK_KEY])
            member = await Member.get_or_none(id=member_id)
            if member is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No such member")
            if member.inviter_id is not None:
                raise DomainError(ErrorCode.ALREADY_BOUND, "An inviter is already bound", "code")
            inviter = await Member.get_or_none(invite_code=code)
            if inviter is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No member has this invite code", "code")
            if inviter.id == member_id:
                raise DomainError(ErrorCode.BAD_USER_INPUT, "That is your own invite code", "code")
            if await _reaches(inviter.id, member_id):
                raise DomainError(
                    ErrorCode.CONFLICT,
                    "This member joined through your invitation; they cannot invite you",
                    "code",
                )
            bound = await Member.filter(id=member_id, inviter_id__isnull=True).update(
                inviter_id=inviter.id, invited_at=now()
            )
            if not bound:
                raise DomainError(ErrorCode.ALREADY_BOUND, "An inviter is already bound", "code")
            return inviter

    return await retry_when_busy(attempt)
