"""Member levels by growth value, their benefits, and the price context a level gives.

The level table is read on every member request and changes rarely, so each process keeps it for a few
seconds. A staff write drops it at once in this process and, through the event bus, in every other one;
it also drops every cached catalog answer, because prices under a level's scope may have changed. While the bus
is disconnected (or without one) nothing is kept: the table is read on every request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra.kept_copy import KeptCopy
from infra.runtime import current_runtime
from models import Member, MemberLevel
from services.catalog.events import taxonomy_changed
from services.catalog.prices import PriceContext
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.members import viewer

log = logging.getLogger("lianmall.levels")

LEVELS_CHANNEL = "levels.changed"
NAME_MAX = 32
MAX_GROWTH = 2_000_000_000
MAX_BIRTHDAY_POINTS = 1_000_000
MAX_PRIORITY_MINUTES = 24 * 60

# The level table is read on every member request; each process keeps it (infra/kept_copy.py).
_levels: KeptCopy[list[MemberLevel]] = KeptCopy(LEVELS_CHANNEL, seconds=5.0)

T = TypeVar("T")


@dataclass(frozen=True)
class LevelDraft:
    name: str
    min_growth: int
    discount_percent: int = 100
    free_shipping: bool = False
    birthday_points: int = 0
    priority_minutes: int = 0


class Unchanged(Enum):
    """Marks an update field the caller left out."""

    UNCHANGED = "UNCHANGED"


UNCHANGED = Unchanged.UNCHANGED


@dataclass(frozen=True)
class LevelChanges:
    name: str | Unchanged = UNCHANGED
    min_growth: int | Unchanged = UNCHANGED
    discount_percent: int | Unchanged = UNCHANGED
    free_shipping: bool | Unchanged = UNCHANGED
    birthday_points: int | Unchanged = UNCHANGED
    priority_minutes: int | Unchanged = UNCHANGED


DEFAULT_LEVELS: tuple[LevelDraft, ...] = (
    LevelDraft("普通会员", 0, 100, birthday_points=0),
    LevelDraft("银卡会员", 500, 98, birthday_points=50),
    LevelDraft("金卡会员", 2000, 95, free_shipping=True, birthday_points=200),
    LevelDraft("钻石会员", 10000, 90, free_shipping=True, birthday_points=500, priority_minutes=30),
)


# --- Reading -----------------------------------------------------------------------------------------------


def invalidate_levels() -> None:
    """Forget this process's copy of the level table; the next read loads it again."""
    _levels.forget()


async def _read_levels() -> list[MemberLevel]:
    return list(await MemberLevel.all().order_by("min_growth"))


async def member_levels() -> list[MemberLevel]:
    """Every level, lowest threshold first (the shared in-process copy: do not modify the rows)."""
    return await _levels.get(_read_levels)


async def level_for_growth(growth: int) -> MemberLevel | None:
    """The highest level whose threshold `growth` reaches, or None when no level is configured for it."""
    reached = None
    for level in await member_levels():
        if growth < level.min_growth:
            break
        reached = level
    return reached


def price_context(level: MemberLevel | None) -> PriceContext:
    """How a member of `level` is priced; members of one level share cached answers."""
    if level is None:
        return PriceContext(scope="member", is_member=True)
    return PriceContext(
        scope=f"level:{level.id}", is_member=True, level_percent=level.discount_percent, level_id=level.id
    )


async def price_context_for_growth(growth: int) -> PriceContext:
    """How a member with `growth` is priced: by the level that growth reaches."""
    return price_context(await level_for_growth(growth))


viewer.set_member_pricing(price_context_for_growth)


# --- Staff writes ------------------------------------------------------------------------------------------


def _problems(values: LevelDraft) -> list[DomainError]:
    problems: list[DomainError] = []
    if not 1 <= len(values.name) <= NAME_MAX:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, f"Name must be 1 to {NAME_MAX} characters", "input.name")
        )
    if not 0 <= values.min_growth <= MAX_GROWTH:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, f"Must be 0 to {MAX_GROWTH}", "input.minGrowth")
        )
    if not 1 <= values.discount_percent <= 100:
        problems.append(
            DomainError(
                ErrorCode.BAD_USER_INPUT,
                "Percent of the list price paid: 1 to 100 (100 is no discount)",
                "input.discountPercent",
            )
        )
    if not 0 <= values.birthday_points <= MAX_BIRTHDAY_POINTS:
        problems.append(
            DomainError(
                ErrorCode.BAD_USER_INPUT, f"Must be 0 to {MAX_BIRTHDAY_POINTS}", "input.birthdayPoints"
            )
        )
    if not 0 <= values.priority_minutes <= MAX_PRIORITY_MINUTES:
        problems.append(
            DomainError(
                ErrorCode.BAD_USER_INPUT, f"Must be 0 to {MAX_PRIORITY_MINUTES}", "input.priorityMinutes"
            )
        )
    return problems


async def _conflicts(values: LevelDraft, exclude_id: int | None) -> list[DomainError]:
    others = MemberLevel.exclude(id=exclude_id) if exclude_id is not None else MemberLevel.all()
    problems: list[DomainError] = []
    if await others.filter(name=values.name).exists():
        problems.append(DomainError(ErrorCode.CONFLICT, "Another level has this name", "input.name"))
    if await others.filter(min_growth=values.min_growth).exists():
        problems.append(
            DomainError(ErrorCode.CONFLICT, "Another level starts at this growth value", "input.minGrowth")
        )
    return problems


def _normalized(values: LevelDraft) -> LevelDraft:
    return LevelDraft(
        name=values.name.strip(),
        min_growth=values.min_growth,
        discount_percent=values.discount_percent,
        free_shipping=values.free_shipping,
        birthday_points=values.birthday_points,
        priority_minutes=values.priority_minutes,
    )


async def _check(values: LevelDraft, exclude_id: int | None) -> None:
    problems = _problems(values)
    if not problems:
        problems = await _conflicts(values, exclude_id)
    if problems:
        raise ValidationErrors(problems)


def _conflict_error() -> DomainError:
    # Two staff writes raced past the checks; the unique constraints decided.
    return DomainError(ErrorCode.CONFLICT, "Another level has this name or growth threshold", "input")


async def _announce() -> None:
    await _levels.changed()
    try:
        current_runtime()
    except RuntimeError:
        return  # no cache to drop (the seed, the CLI)
    await taxonomy_changed()


async def create_level(draft: LevelDraft) -> MemberLevel:
    """Add a level. Raises ValidationErrors (BAD_USER_INPUT, CONFLICT on a taken name or threshold)."""
    values = _normalized(draft)
    await _check(values, None)
    try:
        level = await MemberLevel.create(
            name=values.name,
            min_growth=values.min_growth,
            discount_percent=values.discount_percent,
            free_shipping=values.free_shipping,
            birthday_points=values.birthday_points,
            priority_minutes=values.priority_minutes,
        )
    except IntegrityError:
        raise _conflict_error() from None
    await _announce()
    return level


async def update_level(level_id: int, changes: LevelChanges) -> MemberLevel:
    """Change a level's fields given in `changes`; members' prices follow at once (caches are dropped)."""
    # The given values on their own first, before any lookup; the merged level is checked again below.
    alone = _normalized(
        LevelDraft(
            name=_pick(changes.name, "-"),
            min_growth=_pick(changes.min_growth, 0),
            discount_percent=_pick(changes.discount_percent, 100),
            free_shipping=_pick(changes.free_shipping, False),
            birthday_points=_pick(changes.birthday_points, 0),
            priority_minutes=_pick(changes.priority_minutes, 0),
        )
    )
    if problems := _problems(alone):
        raise ValidationErrors(problems)
    try:
        async with in_transaction():
            level = await MemberLevel.get_or_none(id=level_id)
            if level is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No such member level", "id")
            values = _normalized(
                LevelDraft(
                    name=_pick(changes.name, level.name),
                    min_growth=_pick(changes.min_growth, level.min_growth),
                    discount_percent=_pick(changes.discount_percent, level.discount_percent),
                    free_shipping=_pick(changes.free_shipping, level.free_shipping),
                    birthday_points=_pick(changes.birthday_points, level.birthday_points),
                    priority_minutes=_pick(changes.priority_minutes, level.priority_minutes),
                )
            )
            await _check(values, level_id)
            level.update_from_dict(
                {
                    "name": values.name,
                    "min_growth": values.min_growth,
                    "discount_percent": values.discount_percent,
                    "free_shipping": values.free_shipping,
                    "birthday_points": values.birthday_points,
                    "priority_minutes": values.priority_minutes,
                }
            )
            await level.save()
    except IntegrityError:
        raise _conflict_error() from None
    await _announce()
    return level


def _pick(change: T | Unchanged, current: T) -> T:
    return current if isinstance(change, Unchanged) else change


async def delete_level(level_id: int) -> None:
    """Remove a level; its members fall to the highest level below it (or none)."""
    deleted = await MemberLevel.filter(id=level_id).delete()
    if not deleted:
        raise DomainError(ErrorCode.NOT_FOUND, "No such member level", "id")
    await _announce()


async def ensure_default_levels() -> list[MemberLevel]:
    """Create the four default levels where neither their name nor their threshold is taken yet.

    Idempotent, and it never overwrites a level staff have edited. Returns the levels it created.
    """
    created: list[MemberLevel] = []
    existing = await MemberLevel.all().values_list("name", "min_growth")
    names = {name for name, _ in existing}
    thresholds = {growth for _, growth in existing}
    for draft in DEFAULT_LEVELS:
        if draft.name in names or draft.min_growth in thresholds:
            continue
        try:
            created.append(
                await MemberLevel.create(
                    name=draft.name,
                    min_growth=draft.min_growth,
                    discount_percent=draft.discount_percent,
                    free_shipping=draft.free_shipping,
                    birthday_points=draft.birthday_points,
                    priority_minutes=draft.priority_minutes,
                )
            )
        except IntegrityError:
            continue  # another process created it meanwhile
    if created:
        await _announce()
    return created


# --- Growth ------------------------------------------------------------------------------------------------


async def add_growth(member_id: int, amount: int) -> int:
    """Add `amount` growth (negative for a refunded order; growth never drops below 0).

    Returns the new growth. The member's next request is priced at the level it reaches.
    """
    async with in_transaction():
        member = await Member.filter(id=member_id).select_for_update().only("id", "growth").first()
        if member is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such member", "memberId")
        growth = min(max(0, member.growth + amount), MAX_GROWTH)
        await Member.filter(id=member_id).update(growth=growth)
    # The viewer keeps a short-lived snapshot of growth in Redis; the level must follow now, not later.
    await viewer.forget_member_snapshot(member_id)
    return growth
