"""Staff side of flash sales: daily slots, activities with their SKUs, stopping, and the live numbers.

Every write checks its whole input first and raises one ValidationErrors naming each bad field (a floor price
above the shelf price, an allotment above the SKU's stock, overlapping slots, ...); nothing is written then.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from tortoise.transactions import in_transaction

from infra.clock import now
from models import FlashSale, FlashSaleItem, FlashSaleSession, FlashSaleStatus, OrderLine, Sku
from services.catalog.checks import Problems, checked_text
from services.catalog.lookups import default_shop_id
from services.errors import DomainError, ErrorCode
from services.marketing.flash_sale import stock
from services.orders.campaigns import CampaignKind
from services.orders.cart import purchase_limit

NAME_MAX = 32
TITLE_MAX = 60
MAX_ITEMS = 50
MAX_DAYS = 366
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class ItemDraft:
    session_id: int
    sku_id: int
    flash_price: int
    allotment: int
    per_member_limit: int


def _minutes(problems: Problems, field: str, text: str, allow_midnight: bool = False) -> int | None:
    if allow_midnight and text == "24:00":
        return 24 * 60
    found = _CLOCK.match(text)
    if not found:
        problems.add(field, "Give a time of day as HH:MM, e.g. 10:00")
        return None
    return int(found.group(1)) * 60 + int(found.group(2))


async def create_session(name: str, starts_at: str, ends_at: str) -> FlashSaleSession:
    """A daily slot from `starts_at` to `ends_at` (HH:MM, shop time; `24:00` ends at midnight).

    Raises ValidationErrors: BAD_USER_INPUT for a bad name or time, or an end not after the start; CONFLICT when it
    overlaps an enabled slot.
    """
    problems = Problems()
    name = checked_text(problems, "input.name", name, "The name", NAME_MAX)
    start = _minutes(problems, "input.startsAt", starts_at)
    end = _minutes(problems, "input.endsAt", ends_at, allow_midnight=True)
    if start is not None and end is not None and end <= start:
        problems.add("input.endsAt", "The slot must end after it starts (slots do not cross midnight)")
    problems.raise_any()
    assert start is not None and end is not None
    shop_id = await default_shop_id()
    clash = await FlashSaleSession.filter(
        shop_id=shop_id, enabled=True, starts_minute__lt=end, ends_minute__gt=start
    ).first()
    if clash is not None:
        problems.add(
            "input.startsAt",
            f"Overlaps the slot {clash.name} ({_clock(clash.starts_minute)}-{_clock(clash.ends_minute)})",
            ErrorCode.CONFLICT,
        )
        problems.raise_any()
    return await FlashSaleSession.create(shop_id=shop_id, name=name, starts_minute=start, ends_minute=end)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


async def disable_session(session_id: int) -> FlashSaleSession:
    """Take a slot out of use: its items stop selling and it no longer counts for overlaps."""
    session = await FlashSaleSession.get_or_none(id=session_id)
    if session is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No flash-sale slot has this ID", "id")
    if session.enabled:
        await FlashSaleSession.filter(id=session_id).update(enabled=False)
        await stock.forget(
            list(await FlashSaleItem.filter(session_id=session_id).values_list("id", flat=True))
        )
        session.enabled = False
    return session


async def create_flash_sale(
    title: str, starts_on: date, ends_on: date, items: Sequence[ItemDraft]
) -> FlashSale:
    """An activity selling `items` in their slots on every day from `starts_on` to `ends_on`.

    Raises ValidationErrors: BAD_USER_INPUT (dates, prices, allotment above the SKU's stock, a limit above the
    allotment, the same SKU twice in one slot), NOT_FOUND (slot, SKU), CONFLICT (the SKU already sells in that slot
    in an overlapping activity).
    """
    problems = Problems()
    title = checked_text(problems, "input.title", title, "The title", TITLE_MAX)
    if ends_on < starts_on:
        problems.add("input.endsOn", "The activity must end on or after its first day")
    elif (ends_on - starts_on).days >= MAX_DAYS:
        problems.add("input.endsOn", f"An activity runs at most {MAX_DAYS} days")
    if ends_on < now().date():
        problems.add("input.endsOn", "The activity would be over before it starts")
    if not 1 <= len(items) <= MAX_ITEMS:
        problems.add("input.items", f"An activity sells 1 to {MAX_ITEMS} SKUs")
        problems.raise_any()
    sessions = {
        s.id: s for s in await FlashSaleSession.filter(id__in=[i.session_id for i in items], enabled=True)
    }
    skus = {s.id: s for s in await Sku.filter(id__in=[i.sku_id for i in items]).select_related("product")}
    seen: set[tuple[int, int]] = set()
    limit_cap = purchase_limit()
    for n, item in enumerate(items):
        at = f"input.items[{n}]"
        if item.session_id not in sessions:
            problems.add(f"{at}.sessionId", "No enabled flash-sale slot has this ID", ErrorCode.NOT_FOUND)
        sku = skus.get(item.sku_id)
        if sku is None:
            problems.add(f"{at}.skuId", "No SKU has this ID", ErrorCode.NOT_FOUND)
            continue
        if (item.session_id, item.sku_id) in seen:
            problems.add(f"{at}.skuId", "This SKU is already in this slot of the activity")
        seen.add((item.session_id, item.sku_id))
        if item.flash_price <= 0:
            problems.add(f"{at}.flashPrice", "The flash price must be at least 1 fen")
        elif item.flash_price >= sku.price:
            problems.add(
                f"{at}.flashPrice", f"The flash price must be below the shelf price ({sku.price} fen)"
            )
        if item.allotment <= 0:
            problems.add(f"{at}.allotment", "Allot at least one unit")
        elif item.allotment > sku.stock:
            problems.add(f"{at}.allotment", f"The allotment is above the SKU's stock ({sku.stock})")
        if not 1 <= item.per_member_limit <= limit_cap:
            problems.add(f"{at}.perMemberLimit", f"The limit per member is 1 to {limit_cap} units")
        elif item.allotment > 0 and item.per_member_limit > item.allotment:
            problems.add(f"{at}.perMemberLimit", "The limit per member is above the allotment")
    problems.raise_any()
    clashes = await FlashSaleItem.filter(
        session_id__in=list(sessions),
        sku_id__in=list(skus),
        flash_sale__status=FlashSaleStatus.SCHEDULED,
        flash_sale__starts_on__lte=ends_on,
        flash_sale__ends_on__gte=starts_on,
    ).values_list("session_id", "sku_id")
    taken = {(int(s), int(k)) for s, k in clashes}
    for n, item in enumerate(items):
        if (item.session_id, item.sku_id) in taken:
            problems.add(
                f"input.items[{n}].skuId",
                "This SKU already sells in this slot in an overlapping flash sale",
                ErrorCode.CONFLICT,
            )
    problems.raise_any()
    shop_id = await default_shop_id()
    async with in_transaction():
        sale = await FlashSale.create(shop_id=shop_id, title=title, starts_on=starts_on, ends_on=ends_on)
        for n, item in enumerate(items):
            await FlashSaleItem.create(
                flash_sale_id=sale.id,
                session_id=item.session_id,
                sku_id=item.sku_id,
                product_id=skus[item.sku_id].product.id,
                flash_price=item.flash_price,
                allotment=item.allotment,
                per_member_limit=item.per_member_limit,
                sort=n,
            )
    return sale


async def stop_flash_sale(sale_id: int) -> FlashSale:
    """Stop selling at once; orders already placed stay. Stopping twice is harmless."""
    sale = await FlashSale.get_or_none(id=sale_id)
    if sale is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No flash sale has this ID", "id")
    if sale.status != FlashSaleStatus.STOPPED:
        await FlashSale.filter(id=sale_id).update(status=FlashSaleStatus.STOPPED, stopped_at=now())
        await stock.forget(
            list(await FlashSaleItem.filter(flash_sale_id=sale_id).values_list("id", flat=True))
        )
        sale = await FlashSale.get(id=sale_id)
    return sale


@dataclass(frozen=True)
class ItemNumbers:
    sold: int
    orders: int
    paid_orders: int


async def item_numbers(item_ids: Sequence[int]) -> dict[int, ItemNumbers]:
    """Live numbers per item for staff: units in orders not cancelled, and orders (placed, paid) with it."""
    if not item_ids:
        return {}
    sold = dict(await FlashSaleItem.filter(id__in=list(item_ids)).values_list("id", "sold"))
    rows = await OrderLine.filter(
        campaign_kind=CampaignKind.FLASH_SALE.value, campaign_id__in=list(item_ids)
    ).values_list("campaign_id", "order__status", "order__paid_at")
    orders: dict[int, int] = {}
    paid: dict[int, int] = {}
    for item_id, status, paid_at in rows:
        if status == "CANCELLED":
            continue
        orders[item_id] = orders.get(item_id, 0) + 1
        if paid_at is not None:
            paid[item_id] = paid.get(item_id, 0) + 1
    return {i: ItemNumbers(int(sold.get(i, 0)), orders.get(i, 0), paid.get(i, 0)) for i in item_ids}
