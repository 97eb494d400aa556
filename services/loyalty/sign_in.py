"""Daily sign-in (签到): once per shop-timezone day, points by streak from the configured bonus table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra.clock import SHOP_TZ, now
from infra.settings import get_settings
from infra.transactions import retry_when_busy
from models import Member, PointsReason, SignIn
from services.errors import DomainError, ErrorCode
from services.loyalty.points import apply_points_change


@dataclass(frozen=True)
class SignInResult:
    points: int
    streak: int
    balance: int


def shop_today() -> date:
    """Today in the shop's timezone (Asia/Shanghai): the day a sign-in counts for."""
    return now().astimezone(SHOP_TZ).date()


def points_for_streak(streak: int, table: Sequence[int]) -> int:
    """Points for the `streak`-th consecutive day; days past the end of `table` get its last value."""
    return table[min(max(streak, 1), len(table)) - 1]


def _already() -> DomainError:
    return DomainError(ErrorCode.ALREADY_SIGNED_IN, "Already signed in today; come back tomorrow")


async def sign_in(member_id: int) -> SignInResult:
    """Sign the member in for today and credit the streak's points.

    The streak continues when the member signed in yesterday, else starts at 1. Raises ALREADY_SIGNED_IN on a
    second sign-in the same day (also when two arrive at once: the (member, day) row is unique).
    """
    today = shop_today()
    table = get_settings().sign_in_points

    async def attempt() -> SignInResult:
        async with in_transaction():
            if not await Member.exists(id=member_id):
                raise DomainError(ErrorCode.NOT_FOUND, "No such member")
            if await SignIn.exists(member_id=member_id, day=today):
                raise _already()
            yesterday = await SignIn.get_or_none(member_id=member_id, day=today - timedelta(days=1))
            streak = yesterday.streak + 1 if yesterday else 1
            points = points_for_streak(streak, table)
            await SignIn.create(member_id=member_id, day=today, streak=streak, points=points)
            if points == 0:
                balance = await Member.filter(id=member_id).first().values_list("points", flat=True)
                return SignInResult(points=0, streak=streak, balance=int(balance or 0))
            entry = await apply_points_change(
                member_id,
                points,
                PointsReason.SIGN_IN,
                f"sign-in:{today.isoformat()}",
                note=f"连续签到第{streak}天",
            )
            return SignInResult(points=points, streak=streak, balance=entry.balance_after)

    try:
        return await retry_when_busy(attempt)
    except IntegrityError:
        # A concurrent sign-in of the same member committed today's row first.
        raise _already() from None
