"""Fixed-window rate limits in Redis, shared by every process; what each limit does while Redis is away.

Each caller says how its limit behaves when Redis does not answer (`WhenRedisDown`):
- LOCAL (fail open, bounded): count in this process instead, with the same limit and window. Across N
  processes an attacker gets at most N times the limit; shoppers keep logging in. Right for limits that guard
  against abuse of something that has its own protection (login: WeChat's codes are single-use and
  code2session is rate-limited by WeChat; phone binding: WeChat's phone codes are single-use too).
- CLOSED (fail closed): refuse while Redis is away. Right where one extra attempt costs money or stock
  (flash sales, bargains, red packets: their counters live in Redis anyway).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from enum import Enum

from infra.redis import REDIS_ERRORS, get_redis

log = logging.getLogger("lianmall.rate_limit")

_PREFIX = "ratelimit:"
# Keys the in-process fallback remembers at most (least recently used go first).
LOCAL_KEYS = 10_000


class WhenRedisDown(Enum):
    LOCAL = "local"
    CLOSED = "closed"


class _LocalWindows:
    """The same fixed windows as the Redis counters, in this process only."""

    def __init__(self, size: int = LOCAL_KEYS) -> None:
        self._size = size
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def hit(self, key: str, limit: int, window_seconds: int) -> bool:
        moment = time.monotonic()
        ends, count = self._windows.get(key, (0.0, 0))
        if ends <= moment:
            ends, count = moment + window_seconds, 0
        count += 1
        self._windows[key] = (ends, count)
        self._windows.move_to_end(key)
        while len(self._windows) > self._size:
            self._windows.popitem(last=False)
        return count <= limit

    def forget(self, key: str) -> None:
        self._windows.pop(key, None)

    def clear(self) -> None:
        self._windows.clear()


LOCAL_WINDOWS = _LocalWindows()


# The counter is created with its expiry and incremented at once (Redis runs a script as one step), so two
# processes can neither both see "first attempt" nor leave a counter behind that never expires (INCR keeps the
# TTL that SET gave it). One command: a MULTI/EXEC pipeline of the same two cost twice the client's CPU.
_HIT = """
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
return redis.call('INCR', KEYS[1])
"""


def opaque(value: str) -> str:
    """A short digest to put in a key instead of a secret-ish value (a login code, a token)."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


async def hit(
    key: str, limit: int, window_seconds: int, when_redis_down: WhenRedisDown = WhenRedisDown.LOCAL
) -> bool:
    """Count one attempt against `key`; True while at most `limit` attempts fell in the current window.

    The window starts with the first attempt and lasts `window_seconds` (see _HIT). Without Redis the
    attempt counts as `when_redis_down` says (see the module docstring).
    """
    if limit < 1 or window_seconds < 1:
        raise ValueError("limit and window_seconds must be positive")
    name = _PREFIX + key
    try:
        count = await get_redis().register_script(_HIT)(keys=[name], args=[window_seconds])
    except REDIS_ERRORS as exc:
        log.debug("rate limit %s counted without Redis (%s): %s", key, when_redis_down.value, exc)
        if when_redis_down is WhenRedisDown.CLOSED:
            return False
        return LOCAL_WINDOWS.hit(name, limit, window_seconds)
    return int(count) <= limit


async def reset(key: str) -> None:
    """Forget the attempts counted against `key`."""
    LOCAL_WINDOWS.forget(_PREFIX + key)
    try:
        await get_redis().delete(_PREFIX + key)
    except REDIS_ERRORS as exc:
        log.warning("rate limit %s not reset: %s", key, exc)
