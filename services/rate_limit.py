"""Fixed-window rate limits in Redis, shared by every process."""

from __future__ import annotations

import hashlib

from infra.redis import get_redis

_PREFIX = "ratelimit:"


def opaque(value: str) -> str:
    """A short digest to put in a key instead of a secret-ish value (a login code, a token)."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


async def hit(key: str, limit: int, window_seconds: int) -> bool:
    """Count one attempt against `key`; True while at most `limit` attempts fell in the current window.

    The window starts with the first attempt and lasts `window_seconds`. The counter is created with its
    expiry and incremented in one MULTI/EXEC, so two processes can neither both see "first attempt" nor
    leave a counter behind that never expires (INCR keeps the TTL that SET gave it).
    """
    if limit < 1 or window_seconds < 1:
        raise ValueError("limit and window_seconds must be positive")
    name = _PREFIX + key
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.set(name, 0, ex=window_seconds, nx=True)
        pipe.incr(name)
        _, count = await pipe.execute()
    return int(count) <= limit


async def reset(key: str) -> None:
    """Forget the attempts counted against `key`."""
    await get_redis().delete(_PREFIX + key)
