"""Stock levels as volatile numbers (infra/volatile.py): the keys cached answers use for them, how each process
reads them from the database, and how the stock events every process hears update them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from infra.volatile import register_feed, register_reader
from models import Product, Sku

STOCK_CHANNEL_PREFIX = "stock:"


def sku_stock_key(sku_id: int) -> str:
    return f"s:{sku_id}"


def product_stock_key(product_id: int) -> str:
    return f"t:{product_id}"


async def _sku_stocks(ids: list[int]) -> dict[int, int]:
    return {int(i): int(s) for i, s in await Sku.filter(id__in=ids).values_list("id", "stock")}


async def _product_stocks(ids: list[int]) -> dict[int, int]:
    rows = await Product.filter(id__in=ids).values_list("id", "total_stock")
    return {int(i): int(s) for i, s in rows}


def _from_stock_event(payload: dict[str, Any]) -> Iterator[tuple[str, int | None]]:
    yield sku_stock_key(int(payload["skuId"])), int(payload["stock"])
    total = payload.get("totalStock")
    # An event without the product's total (a staff write) says only that it changed: it is read again.
    yield product_stock_key(int(payload["productId"])), None if total is None else int(total)


register_reader("s", _sku_stocks)
register_reader("t", _product_stocks)
register_feed(STOCK_CHANNEL_PREFIX, _from_stock_event)
