"""Redeem codes (兑换码): staff generate one-time codes of a coupon; a shopper redeems one for the coupon.

A code is taken with a guarded update (`member_id IS NULL`) in the same transaction as the grant, so a code
gives at most one coupon, and a grant refused (sold out, per-member limit) leaves the code unused. Attempts are
rate-limited per member, so codes cannot be guessed by trying.
"""

from __future__ import annotations

import secrets

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra.clock import now
from infra.transactions import retry_when_busy
from models import CouponCode, CouponSource, MemberCoupon
from services import rate_limit
from services.errors import DomainError, ErrorCode
from services.marketing.coupons.templates import get_coupon
from services.marketing.coupons.wallet import grant_in_transaction

# No 0/O, 1/I/L: codes are read off posters and typed on phones.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
CODE_MAX = 20
MAX_CODES_PER_CALL = 1000
REDEEM_LIMIT, REDEEM_WINDOW_SECONDS = 10, 600


def _new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


async def generate_codes(coupon_id: int, count: int) -> list[str]:
    """`count` new one-time codes of the coupon (staff). A code redeemed counts against the coupon's total."""
    await get_coupon(coupon_id, "couponId")
    if not 1 <= count <= MAX_CODES_PER_CALL:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"1 to {MAX_CODES_PER_CALL} codes at a time", "count")
    codes = list(dict.fromkeys(_new_code() for _ in range(count)))
    while len(codes) < count:  # 31^12 codes: a clash within one call is all but impossible
        codes = list(dict.fromkeys([*codes, _new_code()]))
    await CouponCode.bulk_create([CouponCode(coupon_id=coupon_id, code=code) for code in codes])
    return codes


def normalize(code: str) -> str:
    return code.strip().upper().replace("-", "").replace(" ", "")


async def redeem_code(member_id: int, code: str) -> MemberCoupon:
    """The member redeems a code for its coupon. NOT_FOUND for an unknown code, CONFLICT for one already
    used, RATE_LIMITED after too many attempts, and the grant's refusals (SOLD_OUT, LIMIT_EXCEEDED)."""
    if not 1 <= len(code) <= CODE_MAX:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"A code is 1 to {CODE_MAX} characters", "code")
    if not await rate_limit.hit(f"coupon-code:{member_id}", REDEEM_LIMIT, REDEEM_WINDOW_SECONDS):
        raise DomainError(ErrorCode.RATE_LIMITED, "Too many codes tried; wait a few minutes", "code")
    wanted = normalize(code)
    row = await CouponCode.get_or_none(code=wanted)
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No coupon has this code", "code")

    async def attempt() -> MemberCoupon:
        async with in_transaction():
            taken = await CouponCode.filter(id=row.id, member_id__isnull=True).update(
                member_id=member_id, redeemed_at=now()
            )
            if not taken:
                raise DomainError(ErrorCode.CONFLICT, "This code was already used", "code")
            held = await grant_in_transaction(member_id, row.coupon_id, CouponSource.CODE, "code")  # type: ignore[attr-defined]
            await CouponCode.filter(id=row.id).update(member_coupon_id=held.id)
            return held

    try:
        return await retry_when_busy(attempt)
    except IntegrityError:
        raise DomainError(
            ErrorCode.LIMIT_EXCEEDED, "You already hold the most of this coupon one member may", "code"
        ) from None
