"""Stock events on the bus: at most one per SKU every HOLD_SECONDS from each process.

During a sale every order changes the hot SKU's level. Publishing each one cost the selling worker a Redis round
trip and every process the echo: ~0.25 ms of worker CPU per order, a tenth of a placeOrder, taken from the page
being sold. Nobody needs every intermediate level: the shopper's page and the H5 subscription need the current
one within a fraction of a second. So a SKU's change is published at once when the SKU published nothing in the
last HOLD_SECONDS (a quiet shop sees every change immediately, as before); a change within that time is held,
and when the time is up the SKU's level is published once, read again from the database: orders commit in one
order and reach this point in another (their connections answer in any order), so the last level held may not
be the newest, the database's is. At 100 orders/s on one SKU that is ~20 events a second instead of 100.

Best effort like every pub/sub event (the module docstring of services/catalog/events.py): what cannot be
read is published as last held, what cannot be published is lost, and the volatile table reads levels again
within a second anyway (infra/volatile.py). Events still held when the runtime stops are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any

from infra import raw_sql
from infra.bus import EventBus
from infra.redis import REDIS_ERRORS
from infra.runtime import current_runtime
from services.catalog.stock_levels import STOCK_CHANNEL_PREFIX

log = logging.getLogger("lianmall.catalog.stock")

# Short against what a shopper notices, long against the gap between orders at a sale (10 ms at 100/s).
HOLD_SECONDS = 0.05
# SKUs remembered as "published recently": beyond this many, the oldest are forgotten early (at worst one more
# immediate event for them).
MAX_REMEMBERED = 10_000

LEVELS_SQL = (
    "SELECT s.id, s.product_id, s.stock, p.total_stock FROM skus s JOIN products p ON p.id = s.product_id"
    " WHERE s.id {ids}"
)


@dataclass(frozen=True, slots=True)
class StockLevel:
    """A SKU's level after a committed write, and its product's total when the writer knows it."""

    product_id: int
    sku_id: int
    stock: int
    product_stock: int | None = None

    def payload(self) -> dict[str, Any]:
        total = {} if self.product_stock is None else {"totalStock": self.product_stock}
        return {"productId": self.product_id, "skuId": self.sku_id, "stock": self.stock, **total}


class StockBroadcaster:
    """One process's stock events on one bus (see the module docstring)."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._published: dict[int, float] = {}  # SKU -> when its last event went out (monotonic)
        self._held: dict[int, StockLevel] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self.reads = 0  # levels read again before publishing (for tests and the benchmark)

    async def changed(self, level: StockLevel) -> None:
        """Publish `level` now, or hold it until the SKU's HOLD_SECONDS since its last event are up."""
        now = time.monotonic()
        last = self._published.get(level.sku_id)
        if level.sku_id not in self._held and (last is None or now - last >= HOLD_SECONDS):
            self._remember(level.sku_id, now)
            await self._publish(level)
            return
        self._held[level.sku_id] = level
        if self._timer is None:
            due = HOLD_SECONDS - (now - last) if last is not None else 0.0
            self._timer = asyncio.get_running_loop().call_later(max(due, 0.0), self._flush_soon)

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def idle(self) -> bool:
        """Nothing held, and no held event being read or published."""
        return not self._held and self._timer is None and not self._flushing

    def _remember(self, sku_id: int, now: float) -> None:
        published = self._published
        if len(published) >= MAX_REMEMBERED and sku_id not in published:
            for old in [s for s, at in published.items() if now - at >= HOLD_SECONDS]:
                del published[old]
            if len(published) >= MAX_REMEMBERED:
                published.clear()
        published[sku_id] = now

    def _flush_soon(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._flush(), name="stock-broadcast")
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self) -> None:
        try:
            await self._publish_held()
        except Exception:  # a background task: nobody else would hear of it
            log.exception("held stock events not published")

    async def _publish_held(self) -> None:
        held, self._held = self._held, {}
        if not held:
            return
        now = time.monotonic()
        for sku_id in held:
            self._remember(sku_id, now)
        try:
            runtime = current_runtime()
        except RuntimeError:
            return
        if runtime.bus is not self._bus:
            return  # the runtime these were held for has stopped
        levels = await self._read_again(held)
        for level in levels:
            await self._publish(level)

    async def _read_again(self, held: dict[int, StockLevel]) -> list[StockLevel]:
        try:
            rows = await raw_sql.fetch_by_ids(LEVELS_SQL, sorted(held))
        except Exception as exc:  # the database is busy or away: the levels as last held, rather than none
            log.warning("stock levels not read again before publishing (%s): %s", type(exc).__name__, exc)
            return list(held.values())
        self.reads += 1
        return [StockLevel(int(p), int(s), int(stock), int(total)) for s, p, stock, total in rows]

    async def _publish(self, level: StockLevel) -> None:
        try:
            await self._bus.publish(f"{STOCK_CHANNEL_PREFIX}{level.product_id}", level.payload())
        except REDIS_ERRORS as exc:
            log.warning("stock event for product %s not published: %s", level.product_id, exc)


_broadcasters: weakref.WeakKeyDictionary[EventBus, StockBroadcaster] = weakref.WeakKeyDictionary()


def broadcaster(bus: EventBus) -> StockBroadcaster:
    """The stock broadcaster of `bus` (one per bus, made on first use)."""
    found = _broadcasters.get(bus)
    if found is None:
        found = _broadcasters[bus] = StockBroadcaster(bus)
    return found
