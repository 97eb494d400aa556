"""Cache of whole GraphQL responses for hot catalog queries, in two tiers.

L1 is a small in-process map, so a hit costs no I/O at all; L2 is Redis, shared by every process.
Entries carry tags ("p:42", "listing", "*"). `invalidate(tags)` deletes the tagged L2 entries and
publishes the tags on the event bus, so every process drops its L1 copies at once. Guards per tag keep a
response computed before a write from being stored after the write's invalidation, without refusing answers
that no write touched (one global guard refused every answer computed while anything anywhere was written,
so during a sale nothing was stored at all):
- L2: a sequence number (`rc:gen`) read before executing; every invalidation takes the next number and stamps
  each of its tags with it (`rc:i:<tag>`); the store refuses, atomically, if a tag of the answer (or "*") was
  stamped after the answer's number.
- L1: the same with a local sequence and the tags this process saw dropped.
L1 entries also expire after `l1_ttl` seconds, and the bus clears L1 when it had to reconnect
(it may have missed invalidations), which bounds staleness even if pub/sub misbehaves. While the bus is
disconnected (Redis down or hung, the subscription lost) L1 is neither read nor filled: another process's
invalidation could not reach this one, so its copies would outlive the writes of every other process.

One computation per key per process at a time (`flight`): concurrent misses on a key wait for the first one's
answer instead of all computing it (a hot page whose entry was dropped used to be computed by every waiting
connection at once). A waiter takes the answer only if it is one the cache would keep; otherwise it computes
its own.

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

import asyncio
import hashlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from infra.bus import EventBus
from infra.clock import now
from infra.redis import REDIS_ERRORS
from infra.volatile import Hole, VolatileTable, encode

log = logging.getLogger("lianmall.cache")

INVALIDATE_CHANNEL = "cache.invalidate"
ALL = "*"

_GENERATION_KEY = "rc:gen"
_ENTRY_PREFIX = "rc:e:"
_TAG_PREFIX = "rc:t:"
_STAMP_PREFIX = "rc:i:"

# How often a pending invalidation is tried again while Redis does not take it.
PENDING_RETRY_SECONDS = 1.0

# KEYS: entry, the stamps of its tags and of "*" (ARGV[4] of them), then its tag sets; ARGV: the sequence number
# read before computing, value, ttl, number of stamps.
_STORE_LUA = """
local start = tonumber(ARGV[1])
local stamps = tonumber(ARGV[4])
for i = 2, stamps + 1 do
  local stamp = redis.call('GET', KEYS[i])
  if stamp and tonumber(stamp) > start then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
for i = stamps + 2, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
return 1
"""

# KEYS: sequence, the stamps of the tags (ARGV[1] of them), then their tag sets; ARGV: number of stamps, ttl.
# Takes the next sequence number, stamps the tags with it, deletes every entry named in the tag sets.
_INVALIDATE_LUA = """
local seq = redis.call('INCR', KEYS[1])
local stamps = tonumber(ARGV[1])
for i = 2, stamps + 1 do redis.call('SET', KEYS[i], seq, 'EX', ARGV[2]) end
for i = stamps + 2, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  for _, key in ipairs(members) do redis.call('DEL', key) end
  redis.call('DEL', KEYS[i])
end
return seq
"""

# Tags this process remembers having dropped from L1 (per-tag guard); past that it forgets them all and
# refuses every computation that began before (as the one global guard did).
_DROPPED_MEMORY = 10_000


@dataclass
class CachedResponse:
    """A stored answer. With `holes`, `body` is a template: its parts joined by a NUL byte, one hole between
    each two parts, filled from the volatile table when served (see infra/volatile.py)."""

    body: bytes
    tags: frozenset[str]
    search_terms: tuple[str, ...] = ()
    holes: tuple[Hole, ...] = ()
    # When the answer stops being true by time alone (a scheduled promotion starting or ending), in Unix seconds
    # of the server's clock (infra.clock, which tests move); None: only invalidations end it.
    expires_at: float | None = None
    parts: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    # The holes last filled: (the volatile table's version, until when (monotonic), the bytes), see `render`.
    rendered: tuple[int, float, bytes] | None = field(default=None, init=False, repr=False, compare=False)

    def expired(self) -> bool:
        return self.expires_at is not None and now().timestamp() >= self.expires_at

    def __post_init__(self) -> None:
        self.parts = tuple(self.body.split(b"\x00")) if self.holes else (self.body,)


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


class _RecentKeys:
    """The last `size` keys marked, oldest forgotten first."""

    __slots__ = ("_keys", "_size")

    def __init__(self, size: int) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def add(self, key: str) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)

    def discard(self, key: str) -> None:
        self._keys.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._keys


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
        # Local guard: every L1 drop takes the next number; the tags dropped remember theirs.
        self._seq = 0
        self._dropped: dict[str, int] = {}
        self._dropped_floor = 0
        # Keys being computed in this process now, and keys whose last answer was not fit to store (their
        # callers need not wait for one another: each would compute anyway).
        self._flights: dict[str, asyncio.Event] = {}
        self._unfit = _RecentKeys(self._l1_size)
        # Keys whose answers can never be stored (the request body alone decides it): not even looked up.
        self._never = _RecentKeys(self._l1_size)
        # Tags whose L2 entries could not be deleted (Redis away); the cache is bypassed until they are.
        self.pending: set[str] = set()
        self._pending_retry_at = 0.0
        self._store_script = redis.register_script(_STORE_LUA)
        self._invalidate_script = redis.register_script(_INVALIDATE_LUA)
        self.stats = CacheStats()
        self.volatile = VolatileTable(bus)
        bus.add_handler(INVALIDATE_CHANNEL, self._on_invalidate)
        bus.on_reconnect(self._after_bus_reconnect)

    # -- reading -------------------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.pending

    def get_local(self, key: str) -> CachedResponse | None:
        if self.pending or not self._bus.connected:
            return None
        entry = self._l1.get(key)
        if entry is None:
            return None
        if entry.expires_at < time.monotonic() or entry.response.expired():
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
        seq = self._seq
        try:
            raw = await self._redis.get(_ENTRY_PREFIX + key)
        except REDIS_ERRORS:
            self.stats.redis_errors += 1
            return None
        if raw is None:
            self.stats.misses += 1
            return None
        response = _decode(raw)
        if response.expired():
            self.stats.misses += 1
            return None
        self.stats.l2_hits += 1
        if self._untouched_since(seq, response.tags):
            self._put_local(key, response)
        return response

    async def render(self, response: CachedResponse) -> bytes | None:
        """The bytes to send for a stored answer: its holes filled with current values; None when some value is
        not to be had (the answer is then computed)."""
        holes = response.holes
        if not holes:
            return response.body
        # The page being sold is asked for thousands of times between two changes of its numbers: the bytes
        # filled last are sent again while the table has not changed and none of their values is due for a
        # check or too old (what `current` would say, without asking per hole).
        table = self.volatile
        rendered = response.rendered
        if rendered is not None and rendered[0] == table.version and time.monotonic() < rendered[1]:
            return rendered[2]
        version = table.version
        keys = [hole[0] for hole in holes]
        known = table.current_until(keys)
        values = known[0] if known is not None else await table.values(keys)
        if values is None:
            return None
        parts = response.parts
        out = [parts[0]]
        for (key, form, argument), part in zip(holes, parts[1:], strict=True):
            out.append(encode(form, argument, values[key]))
            out.append(part)
        body = b"".join(out)
        if known is not None:
            response.rendered = (version, known[1], body)
        return body

    # -- single flight -------------------------------------------------------------------------------------

    def flight(self, key: str) -> asyncio.Event | None:
        """The computation of `key` under way in this process, if any: wait for it, then look in L1 again."""
        return self._flights.get(key)

    def take_off(self, key: str) -> bool:
        """Announce that this caller computes `key`; False when another one already does (or when answers to
        `key` were lately not fit to store, so that nobody waits for nothing)."""
        if key in self._flights or key in self._unfit:
            return False
        self._flights[key] = asyncio.Event()
        return True

    def land(self, key: str) -> None:
        """The computation announced by `take_off` ended (stored or not): wake whoever waits for it."""
        flight = self._flights.pop(key, None)
        if flight is not None:
            flight.set()

    def unfit(self, key: str) -> None:
        """The answer to `key` was not one to store (private, failed, uncacheable): do not single-flight it."""
        self._unfit.add(key)

    def never_fit(self, key: str) -> None:
        """The answer to `key` can never be stored, whatever the data (it reads more than what every caller of
        the scope may see): later requests for it skip the cache, and its two Redis round trips, altogether."""
        self._never.add(key)

    def never_fits(self, key: str) -> bool:
        return key in self._never

    # -- writing -------------------------------------------------------------------------------------------

    async def begin(self) -> tuple[int, bytes] | None:
        """Take the marks to pass to `store` once the response is computed; None: do not store."""
        if self.pending:
            return None
        seq = self._seq
        try:
            generation = await self._redis.get(_GENERATION_KEY)
        except REDIS_ERRORS:
            self.stats.redis_errors += 1
            return None
        return seq, generation or b"0"

    async def store(self, key: str, response: CachedResponse, marks: tuple[int, bytes]) -> bool:
        seq, generation = marks
        if self.pending:
            return False
        ttl = self._ttl
        if response.expires_at is not None:
            left = math.ceil(response.expires_at - now().timestamp())
            if left <= 0:
                return False
            ttl = min(ttl, left)
        tags = sorted(response.tags)
        stamps = [_STAMP_PREFIX + t for t in (*tags, ALL)]
        keys = [_ENTRY_PREFIX + key, *stamps, *(_TAG_PREFIX + t for t in tags)]
        try:
            stored = await self._store_script(
                keys=keys, args=[generation, _encode(response), ttl, len(stamps)]
            )
        except REDIS_ERRORS:
            self.stats.redis_errors += 1
            return False
        if not stored:
            self.stats.stale_stores_skipped += 1
            return False
        self.stats.stores += 1
        self._unfit.discard(key)
        if self._untouched_since(seq, response.tags):
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
        self._drop_local({ALL})

    # -- internals -----------------------------------------------------------------------------------------

    async def _invalidate_l2(self, tags: set[str]) -> None:
        if ALL in tags:
            await self._invalidate_script(keys=[_GENERATION_KEY, _STAMP_PREFIX + ALL], args=[1, self._ttl])
            await self._delete_all()
        else:
            ordered = sorted(tags)
            keys = [
                _GENERATION_KEY,
                *(_STAMP_PREFIX + t for t in ordered),
                *(_TAG_PREFIX + t for t in ordered),
            ]
            await self._invalidate_script(keys=keys, args=[len(ordered), self._ttl])

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
        self._seq += 1
        self.stats.invalidations += 1
        if ALL in tags or len(self._dropped) + len(tags) > _DROPPED_MEMORY:
            self._dropped_floor = self._seq
            self._dropped.clear()
            self._l1.clear()
            return
        for tag in tags:
            self._dropped[tag] = self._seq
        doomed = [key for key, entry in self._l1.items() if entry.response.tags & tags]
        for key in doomed:
            del self._l1[key]

    def _untouched_since(self, seq: int, tags: frozenset[str]) -> bool:
        """Whether no tag of `tags` was dropped from L1 after the local number `seq` was current."""
        if self._dropped_floor > seq:
            return False
        dropped = self._dropped
        return not any(dropped.get(tag, 0) > seq for tag in tags)

    def _put_local(self, key: str, response: CachedResponse) -> None:
        if not self._bus.connected:
            return
        self._l1[key] = _L1Entry(response, time.monotonic() + self._l1_ttl)
        self._l1.move_to_end(key)
        while len(self._l1) > self._l1_size:
            self._l1.popitem(last=False)


def _encode(response: CachedResponse) -> bytes:
    # orjson escapes newlines inside strings, so the first raw newline ends the header.
    meta: dict[str, Any] = {"t": sorted(response.tags), "s": list(response.search_terms)}
    if response.holes:
        meta["h"] = response.holes
    if response.expires_at is not None:
        meta["x"] = response.expires_at
    return orjson.dumps(meta) + b"\n" + response.body


def _decode(raw: bytes) -> CachedResponse:
    header, _, body = raw.partition(b"\n")
    meta = orjson.loads(header)
    holes = tuple((str(k), str(f), int(a)) for k, f, a in meta.get("h", ()))
    return CachedResponse(
        body=body,
        tags=frozenset(meta["t"]),
        search_terms=tuple(meta["s"]),
        holes=holes,
        expires_at=meta.get("x"),
    )
