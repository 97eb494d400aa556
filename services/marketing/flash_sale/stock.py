"""The flash-sale counters in Redis: the fast path that turns the crowd away before it reaches the database.

One hash per item (`flash:item:<id>`) holds what is left of the allotment, each member's units, the member limit,
the item's open hours and an epoch. A purchase attempt is one Lua script (`reserve`): it checks the hours, the
member's limit and the allotment and takes the units in one step, atomically across every process sharing Redis.
The database is written only for the winners, and checks again with guarded updates (services.marketing.
flash_sale.campaign): Redis may only ever be too generous by accident, never decide a sale alone.

Redis is not the record. When the hash is missing (Redis restarted empty, evicted, or never built) the first
attempt rebuilds it from the database under a per-item lock, with a new epoch:
- left = allotment - sold, members' units = their `FlashSalePurchase` rows, both committed counts;
- a reservation taken under an older epoch whose order then fails is not given back (`unreserve` compares epochs):
  the rebuild read the database without it, so giving it back would count it twice;
- a reservation of an older epoch whose order commits after the rebuild read is in neither count: Redis is then too
  generous by at most the attempts in flight at the restart, and the database's guarded updates refuse the excess
  (the refused order triggers another rebuild, which reads the now exact counts).
So a restart mid-sale neither oversells (the database refuses) nor loses a sold unit (the counts come from the
committed orders).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from redis.asyncio import Redis

from infra.clock import SHOP_TZ, now
from infra.redis import REDIS_ERRORS, get_redis
from models import FlashSale, FlashSaleItem, FlashSalePurchase, FlashSaleSession, FlashSaleStatus
from services.marketing.flash_sale import sold_out
from services.marketing.flash_sale.events import publish_rebuilt

log = logging.getLogger("lianmall.flash_sale")

KEY_PREFIX = "flash:item:"
LOCK_TTL_MS = 5000
# How long an attempt that found another process rebuilding waits for it before rebuilding itself.
REBUILD_WAIT_SECONDS = 2.0

# Answers of the reserve script.
TAKEN = 1
SOLD_OUT = 0
MISSING = -1
OVER_LIMIT = -2
CLOSED = -3

_RESERVE_LUA = """
local h = KEYS[1]
local state = redis.call('HMGET', h, 'epoch', 'left', 'limit', 'day0', 'days', 'slot_from', 'slot_to', 'stopped')
if not state[1] then return {-1, ''} end
local now, qty = tonumber(ARGV[2]), tonumber(ARGV[3])
local day0, days = tonumber(state[4]), tonumber(state[5])
local d = math.floor((now - day0) / 86400)
local sod = now - day0 - d * 86400
if state[8] == '1' or d < 0 or d >= days or sod < tonumber(state[6]) or sod >= tonumber(state[7]) then
  return {-3, state[1]}
end
local member = 'm:' .. ARGV[1]
local held = tonumber(redis.call('HGET', h, member) or '0')
if held + qty > tonumber(state[3]) then return {-2, state[1]} end
if tonumber(state[2]) < qty then return {0, state[1]} end
redis.call('HINCRBY', h, 'left', -qty)
redis.call('HINCRBY', h, member, qty)
return {1, state[1], tonumber(state[2]) - qty}
"""

# Give units back: only into the epoch they were taken from (ARGV[3]; '' gives back into any epoch: a committed
# order's units, which every rebuild counted as sold).
_GIVE_BACK_LUA = """
local h = KEYS[1]
local epoch = redis.call('HGET', h, 'epoch')
if not epoch then return -1 end
if ARGV[3] ~= '' and ARGV[3] ~= epoch then return -1 end
local qty = tonumber(ARGV[2])
local member = 'm:' .. ARGV[1]
local held = tonumber(redis.call('HGET', h, member) or '0')
local back = math.min(held, qty)
if back > 0 then redis.call('HINCRBY', h, member, -back) end
local allotment = tonumber(redis.call('HGET', h, 'allotment'))
local left = tonumber(redis.call('HGET', h, 'left'))
local give = math.min(qty, allotment - left)
if give > 0 then left = redis.call('HINCRBY', h, 'left', give) end
return left
"""

_PEEK_LUA = """
local state = redis.call('HMGET', KEYS[1], 'epoch', 'left', 'm:' .. ARGV[1])
if not state[1] then return {-1, 0} end
return {tonumber(state[2]), tonumber(state[3] or '0')}
"""

# (left, the member's units) and, when fewer than ARGV[2] units are left, the members holding units.
_SOLD_OUT_VIEW_LUA = """
local h = KEYS[1]
local state = redis.call('HMGET', h, 'epoch', 'left', 'm:' .. ARGV[1])
if not state[1] then return {-1, 0} end
local left = tonumber(state[2])
local held = tonumber(state[3] or '0')
if left >= tonumber(ARGV[2]) then return {left, held} end
local holders = {}
local all = redis.call('HGETALL', h)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 'm:' and tonumber(all[i + 1]) > 0 then
    holders[#holders + 1] = tonumber(string.sub(all[i], 3))
  end
end
return {left, held, holders}
"""

_UNLOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def item_key(item_id: int) -> str:
    return f"{KEY_PREFIX}{item_id}"


def _lock_key(item_id: int) -> str:
    return f"{KEY_PREFIX}{item_id}:lock"


class _Scripts:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.reserve = redis.register_script(_RESERVE_LUA)
        self.give_back = redis.register_script(_GIVE_BACK_LUA)
        self.peek = redis.register_script(_PEEK_LUA)
        self.sold_out_view = redis.register_script(_SOLD_OUT_VIEW_LUA)
        self.unlock = redis.register_script(_UNLOCK_LUA)


_scripts: _Scripts | None = None


def _s() -> _Scripts:
    # Per client: tests and the CLI swap the Redis client; a script object is bound to the one it was made with.
    global _scripts
    redis = get_redis()
    if _scripts is None or _scripts.redis is not redis:
        _scripts = _Scripts(redis)
    return _scripts


@dataclass(frozen=True)
class Reservation:
    outcome: int
    epoch: str = ""
    left: int | None = None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def window(starts_on: date, ends_on: date, session: FlashSaleSession) -> tuple[int, int, int, int]:
    """(first day's midnight as Unix seconds, number of days, slot start, slot end in seconds after midnight)."""
    day0 = int(datetime.combine(starts_on, time(), tzinfo=SHOP_TZ).timestamp())
    days = (ends_on - starts_on).days + 1
    return day0, days, session.starts_minute * 60, session.ends_minute * 60


async def reserve(item_id: int, member_id: int, quantity: int) -> Reservation:
    """Take `quantity` units of the item's allotment for the member, within their limit and the open hours, in one
    atomic step; rebuilds the counters from the database first when Redis has none."""
    scripts = _s()
    for _ in range(3):
        answer = await scripts.reserve(
            keys=[item_key(item_id)], args=[member_id, int(now().timestamp()), quantity]
        )
        outcome = int(answer[0])
        if outcome != MISSING:
            left = int(answer[2]) if len(answer) > 2 else None
            return Reservation(outcome, _text(answer[1]), left)
        await rebuild(item_id, wait_for_others=True)
    return Reservation(MISSING)


async def give_back(item_id: int, member_id: int, quantity: int, epoch: str = "") -> int | None:
    """Return units to the allotment and the member's limit; with `epoch`, only into that epoch (see the module
    docstring). Returns what is left, or None when nothing was given back (no counters, or another epoch)."""
    left = int(await _s().give_back(keys=[item_key(item_id)], args=[member_id, quantity, epoch]))
    return None if left < 0 else left


async def peek(item_id: int, member_id: int) -> tuple[int, int] | None:
    """(units left, units the member holds) from Redis, or None when the counters are not built."""
    answer = await _s().peek(keys=[item_key(item_id)], args=[member_id])
    if int(answer[0]) < 0:
        return None
    return int(answer[0]), int(answer[1])


async def sold_out_view(
    item_id: int, member_id: int, quantity: int
) -> tuple[int, int, frozenset[int] | None] | None:
    """(units left, units the member holds, and when fewer than `quantity` are left the members holding
    units), or None when the counters are not built."""
    answer = await _s().sold_out_view(keys=[item_key(item_id)], args=[member_id, quantity])
    left = int(answer[0])
    if left < 0:
        return None
    holders = frozenset(int(m) for m in answer[2]) if len(answer) > 2 else None
    return left, int(answer[1]), holders


async def remaining(item_ids: list[int]) -> dict[int, int]:
    """Units left per item as Redis counts them; items without counters are missing from the answer."""
    if not item_ids:
        return {}
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            for item_id in item_ids:
                pipe.hget(item_key(item_id), "left")
            values = await pipe.execute()
    except REDIS_ERRORS:
        return {}
    return {i: int(v) for i, v in zip(item_ids, values, strict=True) if v is not None}


async def rebuild(item_id: int, *, wait_for_others: bool = False) -> bool:
    """Build the item's counters from the database under the item's lock, with a new epoch.

    With `wait_for_others`, a caller that finds another process rebuilding waits (bounded) for it instead.
    Returns whether this call built them.
    """
    redis = get_redis()
    token = uuid.uuid4().hex
    deadline = asyncio.get_running_loop().time() + REBUILD_WAIT_SECONDS
    while not await redis.set(_lock_key(item_id), token, nx=True, px=LOCK_TTL_MS):
        if wait_for_others and await redis.exists(item_key(item_id)):
            return False
        if asyncio.get_running_loop().time() > deadline:
            log.warning("flash item %s: rebuild lock still held after %ss; rebuilding", item_id, deadline)
            break
        await asyncio.sleep(0.02)
    try:
        if wait_for_others and await redis.exists(item_key(item_id)):
            return False  # built by the process that held the lock
        fields = await _counters_from_database(item_id)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(item_key(item_id))
            if fields:
                pipe.hset(item_key(item_id), mapping=fields)
            await pipe.execute()
    finally:
        await _s().unlock(keys=[_lock_key(item_id)], args=[token])
    # Units may have come back (taken by a process that died, given back while Redis was away): every
    # process drops what it knew of the item.
    sold_out.forget(item_id)
    await publish_rebuilt(item_id)
    return True


async def _counters_from_database(item_id: int) -> dict[str, str | int] | None:
    item = await FlashSaleItem.get_or_none(id=item_id)
    if item is None:
        return None
    sale = await FlashSale.get(id=item.flash_sale_id)  # type: ignore[attr-defined]
    session = await FlashSaleSession.get(id=item.session_id)  # type: ignore[attr-defined]
    day0, days, slot_from, slot_to = window(sale.starts_on, sale.ends_on, session)
    fields: dict[str, str | int] = {
        "epoch": uuid.uuid4().hex[:12],
        "allotment": item.allotment,
        "left": max(0, item.allotment - item.sold),
        "limit": item.per_member_limit,
        "day0": day0,
        "days": days,
        "slot_from": slot_from,
        "slot_to": slot_to,
        "stopped": 1 if sale.status == FlashSaleStatus.STOPPED or not session.enabled else 0,
    }
    for member_id, quantity in await FlashSalePurchase.filter(item_id=item_id, quantity__gt=0).values_list(
        "member_id", "quantity"
    ):
        fields[f"m:{member_id}"] = int(quantity)
    return fields


async def forget(item_ids: list[int]) -> None:
    """Drop the counters of items whose setup changed (e.g. stopped): the next attempt rebuilds them."""
    if item_ids:
        await get_redis().delete(*[item_key(i) for i in item_ids])
        for item_id in item_ids:
            sold_out.forget(item_id)


async def reconcile(at: datetime) -> int:
    """Sweep job: rebuild the counters of items whose Redis count has disagreed with the database, unchanged,
    over two sweeps. That catches what no request can: units a process took and never used because it died
    between the script and its order (they would stay taken for good), or a give-back lost while Redis was
    unreachable. An attempt in flight makes the counts differ for a moment only; a rebuild is always safe anyway
    (the database's guards decide). Returns how many items it rebuilt."""
    day = at.astimezone(SHOP_TZ).date()
    rows = await FlashSaleItem.filter(
        flash_sale__status=FlashSaleStatus.SCHEDULED,
        flash_sale__starts_on__lte=day,
        flash_sale__ends_on__gte=day,
    ).values_list("id", "allotment", "sold")
    if not rows:
        return 0
    redis = get_redis()
    async with redis.pipeline(transaction=False) as pipe:
        for item_id, _, _ in rows:
            pipe.hmget(item_key(item_id), "epoch", "left")
            pipe.get(f"{item_key(item_id)}:seen")
        found = await pipe.execute()
    rebuilt = 0
    for n, (item_id, allotment, sold) in enumerate(rows):
        (epoch, left), seen = found[2 * n], found[2 * n + 1]
        if epoch is None:
            continue  # no counters: the next attempt builds them
        if int(left) == max(0, allotment - sold):
            if seen is not None:
                await redis.delete(f"{item_key(item_id)}:seen")
            continue
        state = f"{_text(epoch)}:{int(left)}:{sold}"
        if seen is not None and _text(seen) == state:
            await rebuild(item_id)
            await redis.delete(f"{item_key(item_id)}:seen")
            rebuilt += 1
        else:
            await redis.set(f"{item_key(item_id)}:seen", state, ex=3600)
    return rebuilt


def seconds_until(moment: datetime) -> int:
    return max(0, int((moment - now()).total_seconds()))


def slot_bounds(day: date, session: FlashSaleSession) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=SHOP_TZ) + timedelta(minutes=session.starts_minute)
    return start, datetime.combine(day, time(), tzinfo=SHOP_TZ) + timedelta(minutes=session.ends_minute)
