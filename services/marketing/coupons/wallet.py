"""The coupons members hold: claiming in the coupon center, staff issuing, and the wallet (`myCoupons`).

Every coupon handed out goes through `grant`, inside a transaction:
1. a guarded update takes one from the template (`issued < total_quantity`, status ACTIVE); on PostgreSQL it
   locks the template's row until commit, so grants of one coupon queue there;
2. the member's next number `seq` is counted, refused past the per-member limit, and the row inserted; the
   unique (coupon, member, seq) makes a second holder of the same number impossible, whatever the backend.
A refusal at step 2 rolls back step 1. Nothing is checked first and acted on later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from infra.clock import now
from infra.transactions import retry_when_busy
from models import (
    Coupon,
    CouponSource,
    CouponStatus,
    HeldCouponStatus,
    Member,
    MemberCoupon,
    MemberLevel,
)
from services.errors import DomainError, ErrorCode
from services.marketing.coupons.templates import claim_window_open, claimable_filter, get_coupon

log = logging.getLogger("lianmall.coupons")

_GRANT_ATTEMPTS = 3
ISSUE_MAX_MEMBERS = 1000


class WalletStatus(StrEnum):
    USABLE = "USABLE"
    USED = "USED"
    EXPIRED = "EXPIRED"


def validity(coupon: Coupon, at: datetime) -> tuple[datetime, datetime]:
    """When a coupon handed out at `at` may be used: the fixed window, or `valid_days` from `at`."""
    if coupon.valid_days is not None:
        return at, at + timedelta(days=coupon.valid_days)
    assert coupon.valid_until is not None
    return coupon.valid_from or at, coupon.valid_until


async def grant_in_transaction(
    member_id: int, coupon_id: int, source: CouponSource, field_name: str
) -> MemberCoupon:
    """`grant` inside the caller's transaction (a redeem code, the points mall): its rollback undoes this too.

    A concurrent grant of the same number fails the transaction with IntegrityError.
    """
    async with in_transaction():
        taken = await Coupon.filter(
            id=coupon_id, status=CouponStatus.ACTIVE, issued__lt=F("total_quantity")
        ).update(issued=F("issued") + 1)
        if not taken:
            coupon = await Coupon.get_or_none(id=coupon_id)
            if coupon is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No coupon has this ID", field_name)
            if coupon.status != CouponStatus.ACTIVE:
                raise DomainError(ErrorCode.CONFLICT, "This coupon is no longer handed out", field_name)
            raise DomainError(ErrorCode.SOLD_OUT, "This coupon is all gone (已抢光)", field_name)
        coupon = await Coupon.get(id=coupon_id)
        at = now()
        starts, ends = validity(coupon, at)
        if ends <= at:
            raise DomainError(ErrorCode.CONFLICT, "This coupon has expired", field_name)
        held = await MemberCoupon.filter(coupon_id=coupon_id, member_id=member_id).count()
        if held >= coupon.per_member_limit:
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED,
                f"You already hold the most of this coupon one member may ({coupon.per_member_limit})",
                field_name,
            )
        return await MemberCoupon.create(
            coupon_id=coupon_id,
            member_id=member_id,
            seq=held + 1,
            source=source,
            valid_from=starts,
            valid_until=ends,
        )


async def grant(
    member_id: int, coupon_id: int, source: CouponSource, field_name: str = "couponId"
) -> MemberCoupon:
    """Hand one coupon of `coupon_id` to the member (see the module docstring), all or nothing.

    Raises NOT_FOUND, SOLD_OUT (the total is handed out), LIMIT_EXCEEDED (the member holds the per-member
    limit), CONFLICT (stopped or expired).
    """
    for attempt in range(_GRANT_ATTEMPTS):
        try:
            return await retry_when_busy(
                lambda: grant_in_transaction(member_id, coupon_id, source, field_name)
            )
        except IntegrityError:
            # A concurrent grant to the same member took the same number (ours rolled back); count again.
            if attempt == _GRANT_ATTEMPTS - 1:
                raise DomainError(
                    ErrorCode.LIMIT_EXCEEDED,
                    "You already hold the most of this coupon one member may",
                    field_name,
                ) from None
    raise AssertionError("unreachable")


async def claim(member_id: int, coupon_id: int) -> MemberCoupon:
    """The member claims a coupon in the coupon center: public, ACTIVE, within its claim window."""
    coupon = await get_coupon(coupon_id, "couponId")
    if not coupon.public or coupon.status != CouponStatus.ACTIVE:
        raise DomainError(ErrorCode.CONFLICT, "This coupon cannot be claimed", "couponId")
    if not claim_window_open(coupon):
        raise DomainError(ErrorCode.CONFLICT, "This coupon cannot be claimed now", "couponId")
    return await grant(member_id, coupon_id, CouponSource.CENTER)


# --- Staff issuing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssueResult:
    issued: int
    skipped: int  # members who already hold the limit, or unknown members
    sold_out: bool


async def issue(coupon_id: int, member_ids: Sequence[int]) -> IssueResult:
    """Give one coupon to each member (staff), as far as the total and the per-member limit allow."""
    await get_coupon(coupon_id)
    wanted = list(dict.fromkeys(member_ids))
    if len(wanted) > ISSUE_MAX_MEMBERS:
        raise DomainError(
            ErrorCode.LIMIT_EXCEEDED, f"At most {ISSUE_MAX_MEMBERS} members at a time", "memberIds"
        )
    known = set(await Member.filter(id__in=wanted).values_list("id", flat=True))
    issued = skipped = 0
    for member_id in wanted:
        if member_id not in known:
            skipped += 1
            continue
        try:
            await grant(member_id, coupon_id, CouponSource.ISSUED, "id")
            issued += 1
        except DomainError as exc:
            if exc.code == ErrorCode.SOLD_OUT:
                return IssueResult(issued, len(wanted) - issued, True)
            if exc.code != ErrorCode.LIMIT_EXCEEDED:
                raise
            skipped += 1
    return IssueResult(issued, skipped, False)


async def level_member_ids(level_id: int) -> list[int]:
    """The members whose growth puts them at this level now (from its threshold to the next one's)."""
    level = await MemberLevel.get_or_none(id=level_id)
    if level is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No member level has this ID", "levelId")
    higher = await MemberLevel.filter(min_growth__gt=level.min_growth).order_by("min_growth").first()
    query = Member.filter(growth__gte=level.min_growth)
    if higher is not None:
        query = query.filter(growth__lt=higher.min_growth)
    return list(await query.order_by("id").values_list("id", flat=True))


async def issue_to_level(coupon_id: int, level_id: int) -> IssueResult:
    """Give one coupon to every member of a level, in pages of ISSUE_MAX_MEMBERS."""
    member_ids = await level_member_ids(level_id)
    issued = skipped = 0
    for start in range(0, len(member_ids), ISSUE_MAX_MEMBERS):
        result = await issue(coupon_id, member_ids[start : start + ISSUE_MAX_MEMBERS])
        issued, skipped = issued + result.issued, skipped + result.skipped
        if result.sold_out:
            return IssueResult(issued, len(member_ids) - issued, True)
    return IssueResult(issued, skipped, False)


# --- Reading -------------------------------------------------------------------------------------------------


def _wallet_query(member_id: int, status: WalletStatus, at: datetime):  # type: ignore[no-untyped-def]
    rows = MemberCoupon.filter(member_id=member_id)
    if status == WalletStatus.USED:
        return rows.filter(status=HeldCouponStatus.USED).order_by("-used_at", "-id")
    if status == WalletStatus.EXPIRED:
        return rows.filter(status=HeldCouponStatus.UNUSED, valid_until__lte=at).order_by(
            "-valid_until", "-id"
        )
    # Soonest to expire first: the ones to use next.
    return rows.filter(status=HeldCouponStatus.UNUSED, valid_until__gt=at).order_by("valid_until", "id")


async def my_coupons(
    member_id: int, status: WalletStatus, offset: int, limit: int
) -> tuple[list[MemberCoupon], bool]:
    """One page of the member's coupons in `status`, and whether more follow."""
    rows = list(await _wallet_query(member_id, status, now()).offset(offset).limit(limit + 1))
    return rows[:limit], len(rows) > limit


async def count_my_coupons(member_id: int, status: WalletStatus) -> int:
    return await _wallet_query(member_id, status, now()).count()


def wallet_status(held: MemberCoupon, at: datetime | None = None) -> WalletStatus:
    if held.status == HeldCouponStatus.USED:
        return WalletStatus.USED
    return WalletStatus.EXPIRED if held.valid_until <= (at or now()) else WalletStatus.USABLE


async def coupon_center(offset: int, limit: int) -> tuple[list[Coupon], bool]:
    """Coupons shoppers can claim now, soonest-closing first, and whether more follow."""
    query = Coupon.filter(claimable_filter(now())).filter(issued__lt=F("total_quantity"))
    rows = list(await query.order_by("claim_ends_at", "-id").offset(offset).limit(limit + 1))
    return rows[:limit], len(rows) > limit


async def count_coupon_center() -> int:
    return await Coupon.filter(claimable_filter(now())).filter(issued__lt=F("total_quantity")).count()
