"""Each process keeps the running promotions in memory: a shopper's checkouts read none from the database while
nothing changed, yet every staff change is priced by the very next checkout (made in this process, or in
another one, which tells this one on the bus), and a promotion starts and stops at its exact moment with no
write at all. While the bus is away nothing is kept (tests/test_bus_memories.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from infra.clock import SHOP_TZ, set_clock
from infra.query_counter import QueryCount, count_queries
from infra.runtime import Runtime
from models import Promotion, PromotionKind, PromotionStatus, Sku
from services.marketing.promotions import admin
from services.marketing.promotions.engine import (
    PROMOTIONS_CHANNEL,
    forget_running_promotions,
    running_promotions,
)
from services.orders import checkout
from services.orders.checkout import CheckoutRequest, ItemRequest
from services.orders.pipeline import DiscountSource
from tests.test_bus_memories import BACK_WITHIN, until
from tests.test_cart import new_address, new_member, new_sku

# Saturday 2026-11-28 12:00 shop time.
NOON = datetime(2026, 11, 28, 12, 0, tzinfo=SHOP_TZ)
BUS_WITHIN = 2.0


@pytest.fixture
def clock() -> Iterator[list[datetime]]:
    moments = [NOON]
    set_clock(lambda: moments[-1])
    yield moments
    set_clock(None)


@pytest.fixture(autouse=True)
async def followed(runtime: Runtime) -> AsyncIterator[Runtime]:
    """The runtime with its bus subscribed (only then is anything kept); no promotion outlives its test."""
    await until(lambda: runtime.bus.connected, BACK_WITHIN, "the bus subscribed")
    yield runtime
    await Promotion.all().delete()
    forget_running_promotions()  # deleted behind the admin's back: it would have dropped the copy


class Shopper:
    """A member buying one unit of a fresh SKU, and what each checkout of theirs costs."""

    def __init__(self, member_id: int, request: CheckoutRequest, sku: Sku) -> None:
        self.member_id = member_id
        self.request = request
        self.sku = sku
        self.reads = 0  # promotions statements of the last checkout

    @classmethod
    async def new(cls) -> Shopper:
        member, _ = await new_member()
        sku = await new_sku(price=10000, stock=50)
        request = CheckoutRequest(address_id=await new_address(member), items=(ItemRequest(sku.id, 1),))
        return cls(member.id, request, sku)

    async def promotion_discount(self) -> int:
        """The fen promotions take off a checkout preview now."""
        with count_queries() as counter:
            preview = await checkout.checkout_preview(self.member_id, self.request)
        self.reads = promotion_reads(counter)
        return sum(d.amount for d in preview.quote.discounts if d.source == DiscountSource.PROMOTION)

    async def promotion_discount_within(self, expected: int, seconds: float) -> int:
        """The discount once it is `expected` (another process's change arrives on the bus), or the last one."""
        deadline = time.monotonic() + seconds
        for _ in range(1000):
            fen = await self.promotion_discount()
            if fen == expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        return fen


def promotion_reads(counter: QueryCount) -> int:
    return sum("FROM promotions" in statement for statement in counter.statements)


async def amount_off(
    sku: Sku, fen: int, starts_at: datetime = NOON - timedelta(days=1), ends_at: datetime | None = None
) -> int:
    """An active 立减 on the SKU's product (no other test's basket holds it)."""
    made = await admin.create_promotion(
        admin.PromotionDraft(
            title=f"立减{fen // 100}元",
            kind=PromotionKind.THRESHOLD,
            starts_at=starts_at,
            ends_at=ends_at,
            conditions=[{"type": "PRODUCTS", "args": {"ids": [sku.product_id]}}],  # type: ignore[attr-defined]
            actions=[{"type": "AMOUNT_OFF", "args": {"amount": fen}}],
        )
    )
    await admin.set_status(made.id, PromotionStatus.ACTIVE)
    return made.id


async def test_checkouts_read_no_promotions_while_none_changed(clock: list[datetime]) -> None:
    shopper = await Shopper.new()
    await amount_off(shopper.sku, 500)
    assert await shopper.promotion_discount() == 500 and shopper.reads == 1
    assert await shopper.promotion_discount() == 500 and shopper.reads == 0
    with count_queries() as counter:
        order = await checkout.place_order(shopper.member_id, shopper.request, "kept-promotions")
    assert order.discount == 500 and promotion_reads(counter) == 0


async def test_staff_changes_price_the_next_checkout_in_their_process(clock: list[datetime]) -> None:
    shopper = await Shopper.new()
    promotion = await amount_off(shopper.sku, 500)
    assert await shopper.promotion_discount() == 500

    await admin.update_promotion(
        promotion, admin.PromotionChanges(actions=[{"type": "AMOUNT_OFF", "args": {"amount": 700}}])
    )
    assert await shopper.promotion_discount() == 700
    await admin.set_status(promotion, PromotionStatus.INACTIVE)
    assert await shopper.promotion_discount() == 0
    await admin.set_status(promotion, PromotionStatus.ACTIVE)
    assert await shopper.promotion_discount() == 700
    await admin.update_promotion(promotion, admin.PromotionChanges(ends_at=NOON))  # ended a moment ago
    assert await shopper.promotion_discount() == 0
    await admin.update_promotion(promotion, admin.PromotionChanges(ends_at=None))
    assert await shopper.promotion_discount() == 700 and shopper.reads == 1
    await admin.delete_promotion(promotion)
    assert await shopper.promotion_discount() == 0
    assert await shopper.promotion_discount() == 0 and shopper.reads == 0


async def test_another_processs_change_arrives_on_the_bus(clock: list[datetime], followed: Runtime) -> None:
    shopper = await Shopper.new()
    promotion = await amount_off(shopper.sku, 500)
    assert await shopper.promotion_discount() == 500

    # Another process deactivates it: this one prices from its copy until the bus tells it.
    await Promotion.filter(id=promotion).update(status=PromotionStatus.INACTIVE)
    assert await shopper.promotion_discount() == 500 and shopper.reads == 0
    await followed.bus.publish(PROMOTIONS_CHANNEL, {})
    assert await shopper.promotion_discount_within(0, BUS_WITHIN) == 0
    # And changes its amount and activates it again (a change stamps updated_at, as update_promotion does).
    await Promotion.filter(id=promotion).update(
        status=PromotionStatus.ACTIVE,
        actions=[{"type": "AMOUNT_OFF", "args": {"amount": 900}}],
        updated_at=datetime.now(UTC),
    )
    assert await shopper.promotion_discount() == 0 and shopper.reads == 0
    await followed.bus.publish(PROMOTIONS_CHANNEL, {})
    assert await shopper.promotion_discount_within(900, BUS_WITHIN) == 900


async def test_a_promotion_starts_and_ends_at_its_moment_without_a_write(clock: list[datetime]) -> None:
    shopper = await Shopper.new()
    one = NOON + timedelta(hours=1)
    morning = await amount_off(shopper.sku, 500, starts_at=NOON - timedelta(hours=1), ends_at=one)
    afternoon = await amount_off(shopper.sku, 700, starts_at=one, ends_at=one + timedelta(hours=1))
    assert await shopper.promotion_discount() == 500 and shopper.reads == 1
    with count_queries() as counter:
        running, upcoming = await running_promotions(NOON)
    assert morning in {p.id for p in running} and afternoon not in {p.id for p in running}
    assert upcoming == one and promotion_reads(counter) == 0

    clock.append(one - timedelta(microseconds=1))
    assert await shopper.promotion_discount() == 500 and shopper.reads == 0
    clock.append(one)  # the morning's ends_at is the afternoon's starts_at: one applies, never both
    assert await shopper.promotion_discount() == 700 and shopper.reads == 0
    with count_queries() as counter:
        running, upcoming = await running_promotions(one)
    assert afternoon in {p.id for p in running} and morning not in {p.id for p in running}
    assert upcoming is None and promotion_reads(counter) == 0
    clock.append(one + timedelta(hours=1))
    assert await shopper.promotion_discount() == 0 and shopper.reads == 0

    # A moment before the copy was read (a clock set back): the copy may lack what ended meanwhile, so read.
    clock.append(NOON - timedelta(minutes=30))
    assert await shopper.promotion_discount() == 500 and shopper.reads == 1
