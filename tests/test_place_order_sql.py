"""A shopper buys now and pays: placeOrder's SQL stays a handful of statements, whatever the number of lines."""

from __future__ import annotations

import asyncio
from typing import Any

from infra.query_counter import count_queries
from infra.runtime import Runtime
from models import Order, OrderLine, Shop, Sku
from schema.node import encode_id
from services.catalog.stock_broadcast import HOLD_SECONDS, broadcaster
from services.loyalty.levels import invalidate_levels
from services.marketing.promotions.engine import forget_running_promotions
from tests.conftest import BACKEND
from tests.graphql_client import gql
from tests.test_bus_memories import BACK_WITHIN, until
from tests.test_cart import new_address, new_member, new_sku, sku_id
from tests.test_checkout import PLACE

# The buyer (with the order a key made, the address and whether they hold coupons) with the SKUs, then the order
# with its lines, event and stock in one statement: 2 (the running promotions are kept in the process's memory
# while none changes); the prepay's payment row, written with its prepay_id once WeChat Pay answered: 1.
POSTGRES_STATEMENTS = 3
SQLITE_STATEMENTS = 11


async def test_place_order_with_prepay_costs_the_same_few_statements_for_one_line_or_five(
    client: Any, wechat_pay: Any, runtime: Runtime
) -> None:
    # What the process keeps warm is kept only while the bus is subscribed.
    await until(lambda: runtime.bus.connected, BACK_WITHIN, "the bus subscribed")
    member, token = await new_member()
    address = encode_id("Address", await new_address(member))
    shop = await Shop.create(code="sql-count", name="计数店")
    skus = [await new_sku(price=1000 + i, stock=5, shop=shop) for i in range(5)]

    async def statements(count: int) -> tuple[int, Order]:
        items = [{"skuId": sku_id(sku), "quantity": 1} for sku in skus[:count]]
        variables = {"input": {"addressId": address, "items": items}}
        # The memories start empty: the warm-up fills them, so their expiry (every 5 s, counted from whenever an
        # earlier test filled them) cannot fall between it and the counted order.
        invalidate_levels()
        forget_running_promotions()
        warm = await gql_place(
            client, {**variables, "key": f"warm-{count}"}, token
        )  # what a process keeps warm
        assert warm["errors"] == []
        # Past the SKUs' hold time for stock events, with nothing held any more: the counted order's event goes
        # out at once, rather than a read of held levels landing inside the count (services/catalog/
        # stock_broadcast.py; a loaded machine can delay a held event's read well past the hold time).
        await until(lambda: broadcaster(runtime.bus).idle, BACK_WITHIN, "held stock events published")
        await asyncio.sleep(HOLD_SECONDS * 1.5)
        with count_queries() as counter:
            placed = await gql_place(client, {**variables, "key": f"counted-{count}"}, token)
        assert placed["errors"] == [] and placed["payParams"]["package"].startswith("prepay_id=")
        return counter.count, await Order.get(number=placed["order"]["number"])

    (one, single), (five, multi) = await statements(1), await statements(5)
    assert await OrderLine.filter(order_id=multi.id).count() == 5
    assert [s.stock for s in await Sku.filter(id__in=[s.id for s in skus]).order_by("id")] == [1, 3, 3, 3, 3]
    assert single.payable == 1000 + 1000 and multi.payable == sum(1000 + i for i in range(5)) + 1000
    if BACKEND == "real":
        assert one == five == POSTGRES_STATEMENTS, (one, five)
    else:
        # SQLite writes the order's rows one at a time and takes stock with one guarded update per SKU and
        # per product.
        assert one <= SQLITE_STATEMENTS and five - one <= 2 * (5 - 1), (one, five)


async def gql_place(client: Any, variables: dict[str, Any], token: str) -> dict[str, Any]:
    body = await gql(client, PLACE, variables, token)
    payload: dict[str, Any] = body["data"]["placeOrder"]
    return payload
