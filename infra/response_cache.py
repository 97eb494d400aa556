"""Cache of whole GraphQL responses for hot catalog queries, in two tiers.

L1 is a small in-process map, so a hit costs no I/O at all; L2 is Redis, shared by every process.
Entries carry tags ("p:42", "listing", "*"). `invalidate(tags)` deletes the tagged L2 entries and
publishes the tags on the event bus, so every process drops its L1 copies at once. Two guards keep a
response computed before a write from being stored after the write's invalidation:
- L2: a global generation counter, read before executing and compared atomically when storing.
- L1: a local epoch bumped by every invalidation this process hears of.
L1 entries also expire after `l1_ttl` seconds, and the bus clears L1 when it had to reconnect
(it may have missed invalidations), which bounds staleness even if pub/sub misbehaves.

Redis faults degrade to "no cache", never to an error or a stale answer of this process's own writes:
- a read or a generation mark that Redis cannot give is a miss, and nothing is stored for that request;
- an invalidation that cannot reach Redis drops this process's L1 copies and is kept as pending: until it
  gets through (retried at most once a second, from requests and when the bus reconnects), this process
  bypasses the cache altogether, and entries other processes hold in L2 are deleted as soon as it does;
- when the bus had to reconnect (a Redis restart or network loss), every process also empties L2 and bumps
  the generation: writes made while Redis was away may have left entries behind (a Redis that kept its data,
  a writer that died before its retry got through).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from infra.bus import EventBus
from infra.redis import REDIS_ERRORS

log = logging.getLogger("lianmall.cache")

INVALIDATE_CHANNEL = "cache.invalidate"
ALL = "*"

_GENERATION_KEY = "rc:gen"
_ENTRY_PREFIX = "rc:e:"
_TAG_PREFIX = "rc:t:"

# How often a pending invalidation is tried again while Redis does not take it.
PENDING_RETRY_SECONDS = 1.0

# KEYS: generation, entry, tag sets...; ARGV: expected generation, value, ttl.
_STORE_LUA = """
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[2])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
return 1
"""

# KEYS: generation, tag sets...; deletes every entry named in the tag sets, then the sets.
_INVALIDATE_LUA = """
redis.call('INCR', KEYS[1])
for i = 2, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  for _, key in ipairs(members) do redis.call('DEL', key) end
  redis.call('DEL', KEYS[i])
end
return 1
"""


@dataclass
class CachedResponse:
    body: bytes
    tags: frozenset[str]
    search_terms: tuple[str, ...] = ()


@dataclass
class _L1Entry:
    response: CachedResponse
    expires_at: float


@dataclass
class CacheStats:
    l1_hits: int = 0
    l2_hits: int = 0
    misses: int = 0
    stores: int = 0
    stale_stores_skipped: int = 0
    invalidations: int = 0
    redis_errors: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def cache_key(scope: str, body: bytes) -> str:
    """Same request bytes and same price scope: same answer. Different scopes never share an entry."""
    digest = hashlib.blake2b(body, digest_size=16, key=scope.encode()[:64])
    return digest.hexdigest()


class ResponseCache:
    def __init__(
        self,
        redis: Redis,
        bus: EventBus,
        *,
        ttl: int = 300,
        l1_ttl: float = 1.0,
        l1_size: int = 2048,
    ) -> None:
        self._redis = redis
        self._bus = bus
        self._ttl = ttl
        self._l1_ttl = l1_ttl
        self._l1_size = l1_size
        self._l1: OrderedDict[str, _L1Entry] = OrderedDict()
        self._epoch = 0
        # Tags whose L2 entries could not be deleted (Redis away); the cache is bypassed until they are.
        self.pending: set[str] = set()
        self._pending_retry_at = 0.0
        self._store_script = redis.register_script(_STORE_LUA)
        self._invalidate_script = redis.register_script(_INVALIDATE_LUA)
        self.stats = CacheStats()
        bus.add_handler(INVALIDATE_CHANNEL, self._on_invalidate)
        bus.on_reconnect(self._after_bus_reconnect)

    # -- reading -------------------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.pending

    def get_local(self, key: str) -> CachedResponse | None:
        if self.pending:
            return None
        entry = self._l1.get(key)
        if entry is None:
            return None
        if entry.expires_at < time.monotonic():
            del self._l1[key]
            return None
        self.stats.l1_hits += 1
        return entry.response

    async def get(self, key: str) -> CachedResponse | None:
        if self.pending and not await self.retry_pending():
            return None
        local = self.get_local(key)
        if local is not None:
            return local
        epoch = self._epoch
        try:
            raw = await self._redis.get(_ENTRY_PREFIX + key)
        except REDIS_ERRORS:
            self.stats.redis_errors += 1
            return None
        if raw is None:
            self.stats.misses += 1
            return None
        response = _decode(raw)
        self.stats.l2_hits += 1
        if epoch == self._epoch:
            self._put_local(key, response)
        return response

    # -- writing -------------------------------------------------------------------------------------------

    async def begin(self) -> tuple[int, bytes] | None:
        """Take the generation marks to pass to `store` once the response is computed; None: do not store."""
        if self.pending:
            return None
        epoch = self._epoch
        try:
            generation = await self._redis.get(_GENERATION_KEY)
        except REDIS_ERRORS:
            self.stats.redis_errors += 1
            return None
        return epoch, generation or b"0"

    async def store(self, key: str, response: CachedResponse, marks: tuple[int, bytes]) -> bool:
        epoch, generation = marks
        if self.pending:
            return False
        keys = [_GENERATION_KEY, _ENTRY_PREFIX + key, *(_TAG_PREFIX + t for t in sorted(response.tags))]
        try:
            stored = await self._store_script(keys=keys, args=[generation, _encode(response), self._ttl])
        except REDIS_ERRORS:
            self.stats.redis_errors += 1
            return False
        if not stored:
            self.stats.stale_stores_skipped += 1
            return False
        self.stats.stores += 1
        if epoch == self._epoch:
            self._put_local(key, response)
        return True

    async def invalidate(self, tags: set[str]) -> None:
        """Drop every entry carrying one of `tags` (or all entries for "*") on every process.

        Never raises: it runs after a write committed. What Redis did not take stays pending (see above).
        """
        if not tags:
            return
        try:
            await self._invalidate_l2(tags)
        except REDIS_ERRORS as exc:
            self._drop_local(tags)
            self._defer(tags, exc)
            return
        self._drop_local(tags)
        await self._announce(tags)

    async def retry_pending(self, *, force: bool = False) -> bool:
        """Try the pending invalidation again (at most once per PENDING_RETRY_SECONDS unless `force`); True when
        none is left."""
        if not self.pending:
            return True
        if not force and time.monotonic() < self._pending_retry_at:
            return False
        tags = set(self.pending)
        try:
            await self._invalidate_l2(tags)
        except REDIS_ERRORS as exc:
            self._defer(tags, exc)
            return False
        self.pending -= tags
        log.warning("pending cache invalidation of %s went through; the cache is in use again", sorted(tags))
        self._drop_local(tags)
        await self._announce(tags)
        return not self.pending

    def clear_local(self) -> None:
        self._epoch += 1
        self._l1.clear()

    # -- internals -----------------------------------------------------------------------------------------

    async def _invalidate_l2(self, tags: set[str]) -> None:
        if ALL in tags:
            await self._redis.incr(_GENERATION_KEY)
            await self._delete_all()
        else:
            keys = [_GENERATION_KEY, *(_TAG_PREFIX + t for t in sorted(tags))]
            await self._invalidate_script(keys=keys, args=[])

    async def _announce(self, tags: set[str]) -> None:
        try:
            await self._bus.publish(INVALIDATE_CHANNEL, {"tags": sorted(tags)})
        except REDIS_ERRORS as exc:
            # L2 is clean; other processes' L1 copies expire within l1_ttl.
            self.stats.redis_errors += 1
            log.warning("cache invalidation of %s not announced: %s", sorted(tags), exc)

    def _defer(self, tags: set[str], exc: BaseException) -> None:
        self.stats.redis_errors += 1
        if not self.pending:
            log.warning(
                "cache invalidation of %s could not reach Redis (%s): bypassing the cache", sorted(tags), exc
            )
        self.pending |= tags
        self._pending_retry_at = time.monotonic() + PENDING_RETRY_SECONDS

    async def _after_bus_reconnect(self) -> None:
        self.clear_local()
        # Writes made while Redis was away may have left L2 entries behind; and retry what is pending anyway.
        await self.retry_pending(force=True)
        await self.invalidate({ALL})

    async def _delete_all(self) -> None:
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match="rc:[et]:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                await self._redis.delete(*batch)
                batch = []
        if batch:
            await self._redis.delete(*batch)

    def _on_invalidate(self, payload: dict[str, Any]) -> None:
        self._drop_local(set(payload.get("tags", ())))

    def _drop_local(self, tags: set[str]) -> None:
        self._epoch += 1
        self.stats.invalidations += 1
        if ALL in tags:
            self._l1.clear()
            return
        doomed = [key for key, entry in self._l1.items() if entry.response.tags & tags]
        for key in doomed:
            del self._l1[key]

    def _put_local(self, key: str, response: CachedResponse) -> None:
        self._l1[key] = _L1Entry(response, time.monotonic() + self._l1_ttl)
        self._l1.move_to_end(key)
        while len(self._l1) > self._l1_size:
            self._l1.popitem(last=False)


def _encode(response: CachedResponse) -> bytes:
    # orjson escapes newlines inside strings, so the first raw newline ends the header.
    header = orjson.dumps({"t": sorted(response.tags), "s": list(response.search_terms)})
    return header + b"\n" + response.body


def _decode(raw: bytes) -> CachedResponse:
    header, _, body = raw.partition(b"\n")
    meta = orjson.loads(header)
    return CachedResponse(body=body, tags=frozenset(meta["t"]), search_terms=tuple(meta["s"]))
