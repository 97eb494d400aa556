"""Stock events: a quiet SKU's change goes out at once; changes in quick succession go out once, with the level
the database has (services/catalog/stock_broadcast.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from infra.runtime import Runtime
from models import Sku
from services.catalog.events import StockChange, stock_changed, stock_channel
from services.catalog.stock_broadcast import HOLD_SECONDS, broadcaster
from services.orders import checkout
from services.orders.checkout import CheckoutRequest, ItemRequest
from tests.test_cart import new_address, new_member, new_sku


@contextlib.asynccontextmanager
async def _heard(runtime: Runtime, product_id: int) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """The product's stock events, in a queue (a timed-out wait must not end the subscription)."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def pump(events: AsyncIterator[dict[str, Any]]) -> None:
        async for event in events:
            queue.put_nowait(event)

    async with runtime.bus.subscribe(stock_channel(product_id)) as events:
        task = asyncio.create_task(pump(events))
        try:
            yield queue
        finally:
            task.cancel()


async def _next(events: asyncio.Queue[dict[str, Any]], seconds: float = 2.0) -> dict[str, Any]:
    return await asyncio.wait_for(events.get(), seconds)


async def _none_within(events: asyncio.Queue[dict[str, Any]], seconds: float) -> None:
    try:
        event = await asyncio.wait_for(events.get(), seconds)
    except TimeoutError:
        return
    raise AssertionError(f"an event nobody expected: {event}")


async def _quiet() -> None:
    """Past any hold time of an earlier write (a new SKU's first change goes out at once anyway)."""
    await asyncio.sleep(HOLD_SECONDS * 1.5)


async def test_a_quiet_skus_change_goes_out_at_once(runtime: Runtime) -> None:
    sku = await new_sku(stock=10)
    await _quiet()
    async with _heard(runtime, sku.product_id) as events:  # type: ignore[attr-defined]
        started = time.monotonic()
        await stock_changed([StockChange(sku.product_id, sku.id, 9, delta=-1, product_stock=9)])  # type: ignore[attr-defined]
        event = await _next(events)
        # Published before stock_changed returned: no hold for a SKU that published nothing lately.
        assert time.monotonic() - started < HOLD_SECONDS
    assert event == {"productId": sku.product_id, "skuId": sku.id, "stock": 9, "totalStock": 9}  # type: ignore[attr-defined]


async def test_changes_in_quick_succession_go_out_once_with_the_databases_level(runtime: Runtime) -> None:
    sku = await new_sku(stock=50)
    levels = broadcaster(runtime.bus)
    await _quiet()
    async with _heard(runtime, sku.product_id) as events:  # type: ignore[attr-defined]
        reads = levels.reads
        await stock_changed([StockChange(sku.product_id, sku.id, 49, delta=-1, product_stock=49)])  # type: ignore[attr-defined]
        assert (await _next(events))["stock"] == 49
        # Three more writes right after; the last one to get here says 47, but the database says 40 (as when
        # orders reach this point out of commit order): the held event carries what the database has.
        await Sku.filter(id=sku.id).update(stock=40)
        for stock in (48, 46, 47):
            await stock_changed([StockChange(sku.product_id, sku.id, stock, delta=-1, product_stock=stock)])  # type: ignore[attr-defined]
        assert levels.held == 1
        event = await _next(events)
        assert event == {"productId": sku.product_id, "skuId": sku.id, "stock": 40, "totalStock": 50}  # type: ignore[attr-defined]
        assert levels.reads == reads + 1
        await _none_within(events, HOLD_SECONDS * 3)
        # Quiet again: the next change goes out at once, as it is.
        await stock_changed([StockChange(sku.product_id, sku.id, 39, delta=-1, product_stock=39)])  # type: ignore[attr-defined]
        assert (await _next(events, HOLD_SECONDS / 2))["stock"] == 39


async def test_orders_placed_at_once_end_with_the_final_level_on_the_bus(runtime: Runtime) -> None:
    sku = await new_sku(price=1000, stock=30)
    buyers = [(await new_member())[0] for _ in range(6)]
    addresses = [await new_address(m) for m in buyers]
    await _quiet()
    async with _heard(runtime, sku.product_id) as events:  # type: ignore[attr-defined]
        await asyncio.gather(
            *(
                checkout.place_order(
                    member.id,
                    CheckoutRequest(address_id=address, items=(ItemRequest(sku.id, 1),)),
                    f"burst-{i}",
                )
                for i, (member, address) in enumerate(zip(buyers, addresses, strict=True))
            )
        )
        seen = []
        while not seen or seen[-1]["stock"] != 24:
            seen.append(await _next(events))
    # Fewer events than orders (those within the hold time went out as one), the last one the final level.
    assert 1 <= len(seen) < 6
    assert seen[-1] == {"productId": sku.product_id, "skuId": sku.id, "stock": 24, "totalStock": 24}  # type: ignore[attr-defined]
