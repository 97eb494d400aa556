"""What happens to a flash item, told to every process: what is left of it (`flashSaleStockChanged`
subscribers read it) and that its counters were rebuilt. Each process's sold-out knowledge (services.marketing.
flash_sale.sold_out) drops the item when it hears either."""

from __future__ import annotations

import logging

from infra.redis import REDIS_ERRORS
from infra.runtime import current_runtime
from models import FlashSaleItem

log = logging.getLogger("lianmall.flash_sale")

# Every flash-sale event's channel starts with this; each names its item (`itemId`).
CHANNEL_PREFIX = "flash-sale:"
# Counters rebuilt from the database (units may have come back): for the processes, not for subscribers.
REBUILT_CHANNEL = f"{CHANNEL_PREFIX}rebuilt"


def session_channel(session_id: int) -> str:
    return f"{CHANNEL_PREFIX}session:{session_id}"


# Item → its slot, never changed after creation: lets an event name its slot without a query per winner.
_session_of: dict[int, int] = {}


async def _session_id(item_id: int) -> int | None:
    if item_id not in _session_of:
        found = await FlashSaleItem.filter(id=item_id).values_list("session_id", flat=True)
        if not found:
            return None
        _session_of[item_id] = int(found[0])
    return _session_of[item_id]


async def publish_remaining(item_id: int, left: int | None) -> None:
    """Tell every process what is left of the item (best effort: a lost event costs each process at most
    sold_out.FRESH_SECONDS of stale knowledge)."""
    if left is None:
        return
    try:
        session_id = await _session_id(item_id)
        if session_id is None:
            return
        await current_runtime().bus.publish(
            session_channel(session_id), {"sessionId": session_id, "itemId": item_id, "remaining": left}
        )
    except (RuntimeError, *REDIS_ERRORS) as exc:
        log.warning("flash item %s: remaining not published: %s", item_id, exc)


async def publish_rebuilt(item_id: int) -> None:
    """Tell every process that the item's counters were rebuilt (best effort, as `publish_remaining`)."""
    try:
        await current_runtime().bus.publish(REBUILT_CHANNEL, {"itemId": item_id})
    except (RuntimeError, *REDIS_ERRORS) as exc:
        log.warning("flash item %s: rebuild not published: %s", item_id, exc)
