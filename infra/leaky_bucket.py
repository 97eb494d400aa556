"""Leaky buckets in Redis, shared by every process: a caller may spend up to `size` points at once, and the
bucket refills at `rate` points per second (Shopify's query-cost throttle works this way).

One Lua script reads, refills and spends atomically, so two processes can never both spend the same points.
It takes the time from Redis (`TIME`), so hosts whose clocks disagree still agree on every bucket.

The embedded default (one process by construction, see infra/runtime.py) keeps the same buckets in process
memory instead (`LocalBuckets`): its Redis stand-in builds a Lua interpreter for every script call (~1 ms).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

_PREFIX = "bucket:"

# KEYS: bucket; ARGV: size, rate (points/s), cost. Returns {1 when spent else 0, points left (as text)}.
_SPEND_LUA = """
local size = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'left', 'at')
local left = size
if state[1] then
  left = math.min(size, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end
local spent = 0
if cost <= left then
  left = left - cost
  spent = 1
end
redis.call('HSET', KEYS[1], 'left', tostring(left), 'at', tostring(now))
-- A full bucket needs no key: it expires once it would have refilled.
redis.call('EXPIRE', KEYS[1], math.ceil((size - left) / rate) + 1)
return {spent, tostring(left)}
"""


@dataclass(frozen=True)
class BucketState:
    allowed: bool
    available: float
    size: int
    rate: float
    cost: int

    @property
    def retry_after(self) -> float:
        """Seconds until the bucket holds `cost` points again (0 when the spend went through)."""
        return 0.0 if self.allowed else max(0.0, (self.cost - self.available) / self.rate)


class LeakyBuckets:
    def __init__(self, redis: Redis) -> None:
        self._spend = redis.register_script(_SPEND_LUA)

    async def spend(self, key: str, cost: int, *, size: int, rate: float) -> BucketState:
        """Take `cost` points from the bucket `key` if it holds them; nothing is taken otherwise."""
        spent, left = await self._spend(keys=[_PREFIX + key], args=[size, rate, cost])
        return BucketState(allowed=bool(spent), available=float(left), size=size, rate=rate, cost=cost)


class LocalBuckets:
    """`LeakyBuckets` for a single process, with the same arithmetic, in a dict."""

    PRUNE_ABOVE = 10_000

    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}  # key -> (points left, when)

    async def spend(self, key: str, cost: int, *, size: int, rate: float) -> BucketState:
        now = time.monotonic()
        left, at = self._state.get(key, (float(size), now))
        left = min(float(size), left + max(0.0, now - at) * rate)
        allowed = cost <= left
        if allowed:
            left -= cost
        self._state[key] = (left, now)
        if len(self._state) > self.PRUNE_ABOVE:
            # Buckets that have refilled since are the same as no bucket.
            self._state = {k: (v, t) for k, (v, t) in self._state.items() if v + (now - t) * rate < size}
        return BucketState(allowed=allowed, available=left, size=size, rate=rate, cost=cost)


class Buckets(Protocol):
    async def spend(self, key: str, cost: int, *, size: int, rate: float) -> BucketState: ...
