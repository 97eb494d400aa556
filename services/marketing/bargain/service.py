"""Bargains (砍价): staff set up an activity; a member starts a bargain, friends open the shared link and each
cuts once; the starter buys at the price reached, within the bargain's time, through checkout's campaign lines.

A cut is one transaction: the helper's daily count (a guarded update, BARGAIN_HELPS_PER_DAY), a `BargainHelp`
row (unique per helper and bargain) and a compare-and-set of the bargain's `cuts_done`, so concurrent helpers
each get a cut of their own computed from the state before theirs, and the N-th one lands exactly on the floor.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from infra.clock import SHOP_TZ, now
from infra.settings import get_settings
from infra.transactions import retry_when_busy
from models import (
    Bargain,
    BargainActivity,
    BargainActivityStatus,
    BargainHelp,
    BargainHelpDay,
    BargainStatus,
    Sku,
)
from services.catalog.checks import Problems, checked_text
from services.catalog.lookups import default_shop_id
from services.errors import DomainError, ErrorCode
from services.marketing.bargain.cuts import next_cut

TITLE_MAX = 60
MAX_HELPERS = 100
MAX_HOURS = 24 * 30
_CAS_ATTEMPTS = 20

# Tests make the cuts reproducible; production draws from the system's randomness.
rng: random.Random | None = None


@dataclass(frozen=True)
class ActivityDraft:
    title: str
    sku_id: int
    start_price: int
    floor_price: int
    helpers_needed: int
    hours_to_finish: int
    starts_at: datetime
    ends_at: datetime
    stock: int


async def create_activity(draft: ActivityDraft) -> BargainActivity:
    """Raises ValidationErrors naming each bad field: a floor at or above the start price, fewer fen between them
    than helpers (every cut is at least 1 fen), a start price above the shelf price, stock above the SKU's, ..."""
    problems = Problems()
    title = checked_text(problems, "input.title", draft.title, "The title", TITLE_MAX)
    sku = await Sku.get_or_none(id=draft.sku_id)
    if sku is None:
        problems.add("input.skuId", "No SKU has this ID", ErrorCode.NOT_FOUND)
    elif draft.start_price > sku.price:
        problems.add("input.startPrice", f"The start price is above the shelf price ({sku.price} fen)")
    if draft.start_price <= 0:
        problems.add("input.startPrice", "The start price must be at least 1 fen")
    if draft.floor_price < 0:
        problems.add("input.floorPrice", "The floor price must not be negative")
    elif draft.floor_price >= draft.start_price:
        problems.add("input.floorPrice", "The floor price must be below the start price")
    if not 1 <= draft.helpers_needed <= MAX_HELPERS:
        problems.add("input.helpersNeeded", f"1 to {MAX_HELPERS} helpers")
    elif draft.start_price - draft.floor_price < draft.helpers_needed:
        problems.add("input.helpersNeeded", "Each helper cuts at least 1 fen: more helpers than fen to cut")
    if not 1 <= draft.hours_to_finish <= MAX_HOURS:
        problems.add("input.hoursToFinish", f"1 to {MAX_HOURS} hours")
    if draft.ends_at <= draft.starts_at:
        problems.add("input.endsAt", "The activity must end after it starts")
    elif draft.ends_at <= now():
        problems.add("input.endsAt", "The activity would be over before it starts")
    if draft.stock <= 0:
        problems.add("input.stock", "At least one unit")
    elif sku is not None and draft.stock > sku.stock:
        problems.add("input.stock", f"The stock is above the SKU's stock ({sku.stock})")
    problems.raise_any()
    assert sku is not None
    return await BargainActivity.create(
        shop_id=await default_shop_id(),
        title=title,
        sku_id=sku.id,
        product_id=sku.product_id,  # type: ignore[attr-defined]
        start_price=draft.start_price,
        floor_price=draft.floor_price,
        helpers_needed=draft.helpers_needed,
        hours_to_finish=draft.hours_to_finish,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        stock=draft.stock,
    )


async def stop_activity(activity_id: int) -> BargainActivity:
    """No new bargains and no more cuts; bargains already reached may still be bought."""
    activity = await _activity(activity_id, "id")
    await BargainActivity.filter(id=activity_id).update(status=BargainActivityStatus.STOPPED)
    activity.status = BargainActivityStatus.STOPPED
    return activity


async def _activity(activity_id: int, field: str) -> BargainActivity:
    activity = await BargainActivity.get_or_none(id=activity_id)
    if activity is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No bargain activity has this ID", field)
    return activity


def running(activity: BargainActivity) -> bool:
    return (
        activity.status == BargainActivityStatus.SCHEDULED and activity.starts_at <= now() < activity.ends_at
    )


async def start_bargain(member_id: int, activity_id: int) -> Bargain:
    """The member's bargain on the activity at the start price; their open one if they already have it.

    CONFLICT when the activity is not running; INSUFFICIENT_STOCK when it is sold out.
    """
    activity = await _activity(activity_id, "activityId")
    if not running(activity):
        raise DomainError(ErrorCode.CONFLICT, "This bargain activity is not running", "activityId")
    if activity.sold >= activity.stock:
        raise DomainError(ErrorCode.INSUFFICIENT_STOCK, "Sold out", "activityId")

    async def attempt() -> Bargain:
        async with in_transaction():
            # One open bargain per member and activity: the activity row's lock (PostgreSQL) serializes starts.
            await BargainActivity.filter(id=activity_id).select_for_update().first()
            open_one = await Bargain.filter(
                activity_id=activity_id,
                member_id=member_id,
                status__in=[BargainStatus.ONGOING, BargainStatus.SUCCEEDED],
                expires_at__gt=now(),
            ).first()
            if open_one is not None:
                return open_one
            bargain = await Bargain.create(
                activity_id=activity_id,
                member_id=member_id,
                current_price=activity.start_price,
                expires_at=min(activity.ends_at, now() + timedelta(hours=activity.hours_to_finish)),
            )
            await BargainActivity.filter(id=activity_id).update(started_count=F("started_count") + 1)
            return bargain

    return await retry_when_busy(attempt)


@dataclass(frozen=True)
class Cut:
    bargain: Bargain
    amount: int


class _Lost(Exception):
    """Another helper's cut committed between our read and our compare-and-set: read again."""


async def help_bargain(helper_id: int, bargain_id: int) -> Cut:
    """The helper cuts the bargain once. Raises FORBIDDEN (one's own bargain), CONFLICT (already helped, the
    bargain reached the floor, expired or was bought, the activity stopped), LIMIT_EXCEEDED (the daily cap)."""
    bargain = await Bargain.get_or_none(id=bargain_id)
    if bargain is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No bargain has this ID", "bargainId")
    if bargain.member_id == helper_id:
        raise DomainError(
            ErrorCode.FORBIDDEN, "Share the link: friends cut your bargain, you cannot", "bargainId"
        )
    activity = await BargainActivity.get(id=bargain.activity_id)  # type: ignore[attr-defined]
    cap = get_settings().bargain_helps_per_day
    today = now().astimezone(SHOP_TZ).date()

    async def attempt() -> Cut:
        async with in_transaction():
            current = await Bargain.filter(id=bargain_id).select_for_update().first()
            assert current is not None
            if activity.status != BargainActivityStatus.SCHEDULED:
                raise DomainError(ErrorCode.CONFLICT, "This bargain activity has stopped", "bargainId")
            if current.status != BargainStatus.ONGOING or current.expires_at <= now():
                raise DomainError(ErrorCode.CONFLICT, "This bargain takes no more cuts", "bargainId")
            if await BargainHelp.filter(bargain_id=bargain_id, helper_id=helper_id).exists():
                raise DomainError(ErrorCode.CONFLICT, "You already helped this bargain", "bargainId")
            counted = await BargainHelpDay.filter(helper_id=helper_id, day=today, count__lt=cap).update(
                count=F("count") + 1
            )
            if not counted:
                if await BargainHelpDay.filter(helper_id=helper_id, day=today).exists():
                    raise DomainError(
                        ErrorCode.LIMIT_EXCEEDED, f"You may help {cap} bargains a day", "bargainId"
                    )
                await BargainHelpDay.create(helper_id=helper_id, day=today, count=1)
            left = activity.helpers_needed - current.cuts_done
            amount = next_cut(current.current_price - activity.floor_price, left, rng)
            reached = left == 1
            price = current.current_price - amount
            moved = await Bargain.filter(
                id=bargain_id, cuts_done=current.cuts_done, status=BargainStatus.ONGOING
            ).update(
                cuts_done=current.cuts_done + 1,
                current_price=price,
                status=BargainStatus.SUCCEEDED if reached else BargainStatus.ONGOING,
            )
            if not moved:
                raise _Lost
            await BargainHelp.create(
                bargain_id=bargain_id, helper_id=helper_id, amount=amount, price_after=price
            )
            if reached:
                await BargainActivity.filter(id=activity.id).update(succeeded_count=F("succeeded_count") + 1)
            return Cut(await Bargain.get(id=bargain_id), amount)

    for _ in range(_CAS_ATTEMPTS):
        try:
            return await retry_when_busy(attempt)
        except (_Lost, IntegrityError):
            # SQLite has no row locks: a concurrent helper won the compare-and-set (or the same helper's other
            # request inserted first); everything rolled back, so read the bargain again.
            continue
    raise DomainError(ErrorCode.CONFLICT, "Too many friends are cutting at once; try again", "bargainId")


async def bargain_of(bargain_id: int) -> Bargain | None:
    return await Bargain.get_or_none(id=bargain_id)


async def helps_of(bargain_ids: Sequence[int]) -> dict[int, list[BargainHelp]]:
    rows = await BargainHelp.filter(bargain_id__in=list(bargain_ids)).order_by("id")
    found: dict[int, list[BargainHelp]] = {i: [] for i in bargain_ids}
    for row in rows:
        found[row.bargain_id].append(row)  # type: ignore[attr-defined]
    return found


async def running_activities(offset: int, limit: int) -> tuple[list[BargainActivity], bool]:
    moment = now()
    rows = (
        await BargainActivity.filter(
            status=BargainActivityStatus.SCHEDULED, starts_at__lte=moment, ends_at__gt=moment
        )
        .order_by("ends_at", "id")
        .offset(offset)
        .limit(limit + 1)
    )
    return rows[:limit], len(rows) > limit


async def expire_bargains(at: datetime) -> int:
    """Sweep job: bargains past their time that were not bought become EXPIRED (guarded, idempotent)."""
    return await Bargain.filter(
        status__in=[BargainStatus.ONGOING, BargainStatus.SUCCEEDED], expires_at__lte=at, order_id=None
    ).update(status=BargainStatus.EXPIRED)
