"""A flash-sale item as a campaign line of checkout, and what a cancelled flash order gives back.

Per attempt: `turn_away` answers a sold-out crowd from Redis alone (before checkout's first query), `reserve`
takes the units in Redis with one script, `price` (inside the order's transaction) gives the flash price, and
`attach` records the sale in the database with guarded updates, so the database never passes the allotment or a
member's limit even if Redis was rebuilt or wrong. An order that is not written gives its reservation back
(`unreserve`); a flash order that is cancelled (unpaid timeout, the shopper, a full refund) gives its units back
to the allotment and to the member's limit through the CANCELLED entry hook.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tortoise.expressions import F

from infra.clock import SHOP_TZ, now
from infra.redis import REDIS_ERRORS
from models import (
    FlashSale,
    FlashSaleItem,
    FlashSalePurchase,
    FlashSaleSession,
    FlashSaleStatus,
    Order,
    OrderLine,
    OrderStatus,
    Sku,
)
from services.catalog.prices import PriceContext
from services.errors import DomainError, ErrorCode
from services.marketing.flash_sale import sold_out, stock
from services.marketing.flash_sale.events import publish_remaining
from services.orders import states
from services.orders.campaigns import CampaignKind, CampaignPrice, CampaignRef, register_campaign
from services.orders.sweeper import register_sweep_job

log = logging.getLogger("lianmall.flash_sale")

NODE = "FlashSaleItem"
# Reservations remembered per process for `unreserve`; an order's fate is known within seconds.
_EPOCHS_KEPT = 20_000
FIELD = "input.items"


def is_open(sale: FlashSale, session: FlashSaleSession) -> bool:
    """Whether the item of `sale` in `session` sells at this moment (shop time)."""
    moment = now().astimezone(SHOP_TZ)
    minute = moment.hour * 60 + moment.minute
    return (
        sale.status == FlashSaleStatus.SCHEDULED
        and session.enabled
        and sale.starts_on <= moment.date() <= sale.ends_on
        and session.starts_minute <= minute < session.ends_minute
    )


def _sold_out() -> DomainError:
    return DomainError(ErrorCode.INSUFFICIENT_STOCK, "Sold out", FIELD)


def _check_node(ref: CampaignRef) -> None:
    if ref.node != NODE:
        raise DomainError(ErrorCode.NOT_FOUND, "A flash-sale purchase names a FlashSaleItem", FIELD)


class FlashSaleCampaign:
    kind = CampaignKind.FLASH_SALE

    def __init__(self) -> None:
        # Per attempt (member, item, idempotency key): the epoch its units were taken in, for `unreserve`.
        self._epochs: dict[tuple[int, int, str], str] = {}
        # Items whose database refused what Redis allowed: rebuild their counters instead of giving back.
        self._resync: set[int] = set()

    async def turn_away(self, member_id: int, ref: CampaignRef, quantity: int) -> None:
        """Refuse a sold-out attempt before any query: from what this process knows (services.marketing.
        flash_sale.sold_out), else from Redis. Members holding units are let through: theirs may be a repeated
        request whose order exists (same idempotency key, same order)."""
        if self.turn_away_from_memory(member_id, ref, quantity):
            return
        generation = sold_out.generation(ref.id)
        try:
            seen = await stock.sold_out_view(ref.id, member_id, quantity)
        except REDIS_ERRORS:
            return
        if seen is None:
            return
        left, held, holders = seen
        if holders is not None:
            sold_out.learn(ref.id, generation, left, holders)
        if left < quantity and held == 0:
            raise _sold_out()

    def turn_away_from_memory(self, member_id: int, ref: CampaignRef, quantity: int) -> bool:
        """`turn_away` as far as this process decides it alone: raises the refusal, True when the attempt goes
        on, False when Redis must be asked. Never waits, so an edge can answer a sold-out crowd before it
        builds a GraphQL execution (schema/sold_out_lane.py)."""
        if ref.node != NODE:
            return True
        refused = sold_out.refuses(ref.id, member_id, quantity)
        if refused is None:
            return False
        if refused:
            raise _sold_out()
        return True

    async def price(
        self, member_id: int, ref: CampaignRef, sku: Sku, quantity: int, ctx: PriceContext
    ) -> CampaignPrice:
        _check_node(ref)
        item = await FlashSaleItem.get_or_none(id=ref.id).select_related("flash_sale", "session")
        if item is None or item.sku_id != sku.id:
            raise DomainError(ErrorCode.NOT_FOUND, "No flash sale of this SKU has this ID", FIELD)
        if not is_open(item.flash_sale, item.session):
            raise DomainError(ErrorCode.CONFLICT, "This flash sale is not on now", FIELD)
        if quantity > item.per_member_limit:
            raise DomainError(ErrorCode.LIMIT_EXCEEDED, f"At most {item.per_member_limit} per member", FIELD)
        return CampaignPrice(
            item.flash_price,
            {
                "flashSaleId": item.flash_sale.id,
                "title": item.flash_sale.title,
                "sessionId": item.session.id,
                "session": item.session.name,
                "itemId": item.id,
                "flashPrice": item.flash_price,
                "listPrice": sku.price,
            },
        )

    async def reserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        _check_node(ref)
        try:
            taken = await stock.reserve(ref.id, member_id, quantity)
        except REDIS_ERRORS as exc:
            # Redis away: the database's guarded updates alone decide (exact, just without the fast path); a
            # sold-out item is refused by one indexed read instead of a whole order transaction.
            log.warning("flash item %s: Redis unavailable (%s); the database decides alone", ref.id, exc)
            if not await FlashSaleItem.filter(id=ref.id, sold__lte=F("allotment") - quantity).exists():
                raise DomainError(ErrorCode.INSUFFICIENT_STOCK, "Sold out", FIELD) from None
            return
        if taken.outcome == stock.TAKEN:
            self._epochs[(member_id, ref.id, key)] = taken.epoch
            while len(self._epochs) > _EPOCHS_KEPT:  # winners' entries are never popped: keep the newest
                del self._epochs[next(iter(self._epochs))]
            await publish_remaining(ref.id, taken.left)
            return
        if taken.outcome == stock.SOLD_OUT:
            raise DomainError(ErrorCode.INSUFFICIENT_STOCK, "Sold out", FIELD)
        if taken.outcome == stock.OVER_LIMIT:
            raise DomainError(ErrorCode.LIMIT_EXCEEDED, "You already hold as many as one member may", FIELD)
        if taken.outcome == stock.CLOSED:
            raise DomainError(ErrorCode.CONFLICT, "This flash sale is not on now", FIELD)
        raise DomainError(ErrorCode.NOT_FOUND, "No flash sale has this ID", FIELD)

    async def unreserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        epoch = self._epochs.pop((member_id, ref.id, key), None)
        try:
            if ref.id in self._resync:
                self._resync.discard(ref.id)
                await stock.rebuild(ref.id)
                return
            if epoch is not None:
                await publish_remaining(ref.id, await stock.give_back(ref.id, member_id, quantity, epoch))
        except REDIS_ERRORS as exc:
            # Expected while Redis is away, and not lost: counters a give-back or rebuild left wrong disagree
            # with the database, and the sweeper rebuilds them (stock.reconcile). One line, not a traceback
            # per attempt: during an outage those buried whatever else the log had to say.
            log.warning(
                "flash item %s: counters not corrected (Redis unavailable: %s); the sweeper will", ref.id, exc
            )

    async def attach(self, order: Order, line_id: int, ref: CampaignRef, quantity: int) -> None:
        item = await FlashSaleItem.get(id=ref.id)
        sold = await FlashSaleItem.filter(id=item.id, sold__lte=item.allotment - quantity).update(
            sold=F("sold") + quantity
        )
        if not sold:
            self._resync.add(item.id)
            raise DomainError(ErrorCode.INSUFFICIENT_STOCK, "Sold out", FIELD)
        member_id: int = order.member_id  # type: ignore[attr-defined]
        held = await FlashSalePurchase.filter(
            item_id=item.id, member_id=member_id, quantity__lte=item.per_member_limit - quantity
        ).update(quantity=F("quantity") + quantity)
        if not held:
            if await FlashSalePurchase.filter(item_id=item.id, member_id=member_id).exists():
                self._resync.add(item.id)
                raise DomainError(
                    ErrorCode.LIMIT_EXCEEDED, "You already hold as many as one member may", FIELD
                )
            # A concurrent first purchase of the same member makes this insert fail; checkout retries.
            await FlashSalePurchase.create(item_id=item.id, member_id=member_id, quantity=quantity)


async def give_back_on_cancel(order: Order, from_status: OrderStatus, news: states.Announcements) -> None:
    """A cancelled flash order (unpaid timeout, the shopper, staff, a full refund) frees its units: in the
    database now, inside the transition; in Redis once the transition has committed."""
    lines = await OrderLine.filter(
        order_id=order.id, campaign_kind=CampaignKind.FLASH_SALE.value
    ).values_list("campaign_id", "quantity")
    member_id: int = order.member_id  # type: ignore[attr-defined]
    for item_id, quantity in lines:
        if item_id is None:
            continue
        await FlashSaleItem.filter(id=item_id, sold__gte=quantity).update(sold=F("sold") - quantity)
        await FlashSalePurchase.filter(item_id=item_id, member_id=member_id, quantity__gte=quantity).update(
            quantity=F("quantity") - quantity
        )
        news.after_commit.append(_redis_give_back(int(item_id), member_id, int(quantity)))


def _redis_give_back(item_id: int, member_id: int, quantity: int) -> Callable[[], Awaitable[None]]:
    async def work() -> None:
        try:
            left = await stock.give_back(item_id, member_id, quantity)
        except REDIS_ERRORS as exc:
            # Redis away: when it comes back empty the counters are rebuilt from the database, which has it.
            log.warning("flash item %s: units not given back in Redis: %s", item_id, exc)
            return
        await publish_remaining(item_id, left)

    return work


campaign = FlashSaleCampaign()
register_campaign(campaign)
states.register_entry_hook(OrderStatus.CANCELLED, give_back_on_cancel)
register_sweep_job("flash-sale counters", stock.reconcile)
