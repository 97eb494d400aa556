"""What a committed catalog write tells the rest of the system: caches to drop, stock to broadcast.

Always called after the transaction commits, never inside it: a rolled-back write must announce nothing.
Never raises either: the write happened, and a Redis that cannot hear of it must not turn the caller's answer
into an error (the response cache keeps an invalidation Redis did not take pending; a stock event that could
not be published is lost, as pub/sub loses events anyway, and the next change carries the level again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from infra.redis import REDIS_ERRORS
from infra.response_cache import ALL
from infra.runtime import current_runtime
from services.catalog import search

log = logging.getLogger("lianmall.catalog.events")


@dataclass(frozen=True)
class StockChange:
    product_id: int
    sku_id: int
    stock: int


def stock_channel(product_id: int) -> str:
    return f"stock:{product_id}"


async def products_changed(
    product_ids: Iterable[int], stock_changes: Iterable[StockChange] = (), *, text_changed: bool = True
) -> None:
    """Products (or their SKUs) changed: drop their pages and every listing, then broadcast stock.

    Pass `text_changed=False` for stock- or price-only writes (orders, restocks): the search vocabulary
    is built from titles and names, and rebuilding it on every sale would be wasted work.
    """
    runtime = current_runtime()
    tags = {f"p:{pid}" for pid in product_ids} | {"listing"}
    await runtime.cache.invalidate(tags)
    if text_changed:
        search.invalidate_vocabulary()
    for change in stock_changes:
        try:
            await runtime.bus.publish(
                stock_channel(change.product_id),
                {"productId": change.product_id, "skuId": change.sku_id, "stock": change.stock},
            )
        except REDIS_ERRORS as exc:
            log.warning("stock event for product %s not published: %s", change.product_id, exc)


async def taxonomy_changed() -> None:
    """A category, brand or tag changed: its name can appear in any cached answer."""
    await current_runtime().cache.invalidate({ALL})
    search.invalidate_vocabulary()
