"""Shopper side of flash sales: the day's slots with the server's clock and countdowns, and each slot's items
with what is left of them (Redis' count while the counters exist, the database's otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from infra.clock import SHOP_TZ, now
from models import FlashSaleItem, FlashSaleSession, FlashSaleStatus
from services.errors import DomainError, ErrorCode
from services.marketing.flash_sale import stock


class SlotState(StrEnum):
    UPCOMING = "UPCOMING"
    ONGOING = "ONGOING"
    ENDED = "ENDED"


@dataclass(frozen=True)
class Slot:
    session: FlashSaleSession
    starts_at: datetime
    ends_at: datetime
    state: SlotState
    seconds_to_start: int
    seconds_to_end: int


def today() -> date:
    return now().astimezone(SHOP_TZ).date()


def _running_on(day: date) -> dict[str, object]:
    return {
        "flash_sale__status": FlashSaleStatus.SCHEDULED,
        "flash_sale__starts_on__lte": day,
        "flash_sale__ends_on__gte": day,
    }


async def slots_on(day: date, with_empty: bool = False) -> list[Slot]:
    """The enabled slots that sell something on `day` (`with_empty`: every enabled slot), in time order, as
    seen now."""
    if with_empty:
        sessions = await FlashSaleSession.filter(enabled=True).order_by("starts_minute")
    else:
        session_ids = set(
            await FlashSaleItem.filter(**_running_on(day), session__enabled=True).values_list(
                "session_id", flat=True
            )
        )
        sessions = await FlashSaleSession.filter(id__in=list(session_ids)).order_by("starts_minute")
    moment = now()
    slots = []
    for session in sessions:
        start, end = stock.slot_bounds(day, session)
        state = (
            SlotState.UPCOMING if moment < start else SlotState.ONGOING if moment < end else SlotState.ENDED
        )
        slots.append(Slot(session, start, end, state, stock.seconds_until(start), stock.seconds_until(end)))
    return slots


@dataclass(frozen=True)
class ItemView:
    item: FlashSaleItem
    remaining: int


async def items_in_slot(session_id: int, day: date, offset: int, limit: int) -> tuple[list[ItemView], bool]:
    """The items selling in slot `session_id` on `day`, in the staff's order; and whether more follow."""
    if not await FlashSaleSession.filter(id=session_id).exists():
        raise DomainError(ErrorCode.NOT_FOUND, "No flash-sale slot has this ID", "sessionId")
    rows = (
        await FlashSaleItem.filter(session_id=session_id, **_running_on(day))
        .order_by("flash_sale_id", "sort", "id")
        .offset(offset)
        .limit(limit + 1)
    )
    return await with_remaining(rows[:limit]), len(rows) > limit


async def with_remaining(items: list[FlashSaleItem]) -> list[ItemView]:
    counted = await stock.remaining([i.id for i in items])
    return [ItemView(i, counted.get(i.id, max(0, i.allotment - i.sold))) for i in items]
