"""What a committed catalog write tells the rest of the system: caches to drop, stock to broadcast.

Stock is special: it changes with every order, and cached answers hold no stock (they keep holes for it,
filled from the stock events: schema/volatile.py, services/catalog/stock_levels.py). So a write that changes
only stock levels (`stock_changed`) drops no page and no listing, except listings that filter on being in
stock when a product sold out or came back; any other write (`products_changed`) drops the products' pages
and every listing.

Always called after the transaction commits, never inside it: a rolled-back write must announce nothing.
Never raises either: the write happened, and a Redis that cannot hear of it must not turn the caller's answer
into an error (the response cache keeps an invalidation Redis did not take pending; a stock event that could
not be published is lost, as pub/sub loses events anyway, and the next change carries the level again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from infra.response_cache import ALL
from infra.runtime import current_runtime
from models import Product
from services.catalog import search
from services.catalog.stock_broadcast import StockLevel, broadcaster
from services.catalog.stock_levels import STOCK_CHANNEL_PREFIX

log = logging.getLogger("lianmall.catalog.events")

# Carried by answers that filter on stock (listings with `inStock`): dropped when a product sells out or
# comes back in stock.
IN_STOCK_TAG = "instock"


@dataclass(frozen=True)
class StockChange:
    product_id: int
    sku_id: int
    stock: int  # the SKU's level after the write
    # By how much the write changed it (negative: sold), when the writer knows; None: unknown.
    delta: int | None = None
    # The product's total stock after the write, when the writer read it (else `stock_changed` reads it).
    product_stock: int | None = None


def stock_channel(product_id: int) -> str:
    return f"{STOCK_CHANNEL_PREFIX}{product_id}"


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
    levels = broadcaster(runtime.bus)
    for change in stock_changes:
        # Without the product's total: the event says only that it changed (each process reads it again).
        await levels.changed(StockLevel(change.product_id, change.sku_id, change.stock))


async def stock_changed(changes: Iterable[StockChange]) -> None:
    """Only stock levels changed (an order placed, cancelled or refunded): broadcast the levels with each
    product's total (at most one event per SKU every few dozen milliseconds: services/catalog/stock_broadcast.py);
    drop the listings that filter on stock if a product may have sold out or come back."""
    changes = list(changes)
    if not changes:
        return
    runtime = current_runtime()
    product_ids = sorted({c.product_id for c in changes})
    totals = {c.product_id: c.product_stock for c in changes if c.product_stock is not None}
    if len(totals) < len(product_ids):
        try:
            totals = dict(await Product.filter(id__in=product_ids).values_list("id", "total_stock"))
        except Exception as exc:  # committed already: say what is known, conservatively
            log.warning("product totals not read after a stock change: %s", exc)
            totals = {}
    deltas: dict[int, int | None] = {}
    for change in changes:
        known = deltas.get(change.product_id, 0)
        deltas[change.product_id] = None if known is None or change.delta is None else known + change.delta
    if any(_may_have_crossed(totals.get(pid), deltas[pid]) for pid in product_ids):
        await runtime.cache.invalidate({IN_STOCK_TAG})
    levels = broadcaster(runtime.bus)
    for change in changes:
        total = totals.get(change.product_id)
        await levels.changed(
            StockLevel(change.product_id, change.sku_id, change.stock, None if total is None else int(total))
        )


def _may_have_crossed(total: int | None, delta: int | None) -> bool:
    """Whether a product's total stock may have gone from some to none or back, given its total read after
    the write (concurrent writes included) and the write's own change."""
    if total is None or delta is None:
        return True
    if delta < 0:
        return total == 0
    return delta > 0 and total <= delta


async def taxonomy_changed() -> None:
    """A category, brand or tag changed: its name can appear in any cached answer."""
    await current_runtime().cache.invalidate({ALL})
    search.invalidate_vocabulary()
