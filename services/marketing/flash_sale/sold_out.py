"""What this process knows of sold-out flash items: a sold-out crowd is refused without a Redis round trip.

A sold-out answer from Redis (`stock.sold_out_view`: units left and the members holding units, read in one
script) is kept for at most FRESH_SECONDS. Every event on an item (a unit taken, units given back after a
cancellation or a timeout, counters rebuilt: each is published on the bus, which every process hears) drops
what this process knows of it, and so does a bus reconnect (events may have been missed while it was away);
while the bus is disconnected nothing known is used (every attempt asks Redis).
So units that come back are offered again as soon as their event arrives, and within FRESH_SECONDS even if it
was lost. Members holding units are never refused from here: theirs may be a repeated request whose order
exists (the same idempotency key answers the same order).

A generation per item guards the race of a Redis answer with an event: an answer read before an event that
arrived while it was on the way is not kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from infra.bus_follower import BusFollower
from services.marketing.flash_sale.events import CHANNEL_PREFIX

# How long a sold-out answer is trusted without hearing of the item (a lost give-back event costs at most this).
FRESH_SECONDS = 1.0


@dataclass(frozen=True)
class _SoldOut:
    left: int
    holders: frozenset[int]
    until: float


_known: dict[int, _SoldOut] = {}
_generation: dict[int, int] = {}
# Bumped when everything is forgotten: an item's generation is this plus its own count, so it changes for every
# item, also those no event ever named.
_epoch = 0


def refuses(item_id: int, member_id: int, quantity: int) -> bool | None:
    """True: sold out for this member (as Redis said less than FRESH_SECONDS ago, nothing heard since);
    False: not refused from here; None: nothing known, ask Redis."""
    if not _follow_bus():
        return None  # no bus to hear of returned units on: know nothing
    known = _known.get(item_id)
    if known is None:
        return None
    if known.until < time.monotonic():
        del _known[item_id]
        return None
    return known.left < quantity and member_id not in known.holders


def generation(item_id: int) -> int:
    """Take before asking Redis; pass to `learn` with the answer."""
    return _epoch + _generation.get(item_id, 0)


def learn(item_id: int, seen_at_generation: int, left: int, holders: frozenset[int]) -> None:
    """Keep a sold-out answer of Redis, unless an event on the item arrived while it was on the way."""
    # Follow first: a reset it makes (a new subscription) bumps the generations, and must refuse this answer.
    if not _follow_bus() or generation(item_id) != seen_at_generation:
        return
    _known[item_id] = _SoldOut(left, holders, time.monotonic() + FRESH_SECONDS)


def forget(item_id: int) -> None:
    """Something happened to the item: the next attempt asks Redis."""
    _generation[item_id] = _generation.get(item_id, 0) + 1
    _known.pop(item_id, None)


def forget_all() -> None:
    global _epoch
    _epoch += 1
    _known.clear()


def _on_event(_channel: str, payload: dict[str, object]) -> None:
    item_id = payload.get("itemId")
    if isinstance(item_id, int):
        forget(item_id)


_bus = BusFollower(lambda bus: bus.add_prefix_handler(CHANNEL_PREFIX, _on_event), forget_all)
_follow_bus = _bus.follow
