"""Process-wide services started by the app lifespan (or a test fixture): Redis, the event bus, the cache."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from typing import IO

from redis.asyncio import Redis

from infra.bus import EventBus
from infra.leaky_bucket import Buckets, LeakyBuckets, LocalBuckets
from infra.redis import create_listener_redis, create_redis, namespace, set_redis
from infra.response_cache import ResponseCache
from infra.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    bus: EventBus
    cache: ResponseCache
    listener: Redis
    buckets: Buckets


_current: Runtime | None = None


def current_runtime() -> Runtime:
    if _current is None:
        raise RuntimeError("the runtime is not started: the app lifespan (or a test fixture) starts it")
    return _current


async def start_runtime(settings: Settings, redis: Redis | None = None) -> Runtime:
    global _current
    redis = redis or create_redis(settings)
    set_redis(redis)
    listener = create_listener_redis(settings, redis)
    bus = EventBus(redis, prefix=namespace(redis), listener=listener)
    cache = ResponseCache(redis, bus)
    await bus.start()
    _current = Runtime(
        settings=settings,
        redis=redis,
        bus=bus,
        cache=cache,
        listener=listener,
        buckets=LocalBuckets() if settings.embedded_redis else LeakyBuckets(redis),
    )
    return _current


async def stop_runtime(close_redis: bool = True) -> None:
    global _current
    if _current is None:
        return
    await _current.bus.stop()
    await _current.cache.volatile.stop()
    if _current.listener is not _current.redis:
        await _current.listener.aclose()
    if close_redis:
        await _current.redis.aclose()
        set_redis(None)
    _current = None


class EmbeddedModeLocked(RuntimeError):
    pass


_held_lock: IO[str] | None = None


def lock_embedded_mode(settings: Settings) -> IO[str] | None:
    """Refuse a second server process on the embedded default.

    The in-process Redis stand-in is private to one process: a second one would keep its own cache and never
    hear the first one's invalidations or events. Production (REDIS_URL set) takes no lock.
    """
    global _held_lock
    if not settings.embedded_redis:
        return None
    if _held_lock is not None:  # `serve` took it before migrating; the app's lifespan finds it held
        return _held_lock
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(settings.data_dir / "server.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise EmbeddedModeLocked(
            "Another Lianmall server process is already running on the embedded default "
            f"(data folder {settings.data_dir}). The embedded Redis stand-in lives inside one process, so "
            "several processes need a shared Redis: set REDIS_URL (and DATABASE_URL) to run more than one."
        ) from None
    handle.write(str(os.getpid()))
    handle.flush()
    _held_lock = handle
    return handle
