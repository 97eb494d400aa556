"""The Redis client: the real server when REDIS_URL is set, an in-process stand-in otherwise."""

from __future__ import annotations

import fakeredis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra.settings import Settings

_client: Redis | None = None

RETRY_ON = [RedisConnectionError, RedisTimeoutError, ConnectionResetError, OSError]


def create_redis(settings: Settings) -> Redis:
    if settings.redis_url:
        # from_url has no retry by default: after a Redis restart the first command would fail.
        return Redis.from_url(
            settings.redis_url,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 6),
            retry_on_error=RETRY_ON,
            health_check_interval=15,
        )
    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())


def create_listener_redis(settings: Settings, shared: Redis) -> Redis:
    """The pub/sub listener's own client, with no retry.

    With `retry` set, redis-py silently reconnects and resubscribes inside `get_message`: the bus would never
    learn that it missed messages (and must drop caches built on them). Without it, a lost connection raises
    and the bus's supervising loop resubscribes and runs its reconnect hooks.
    """
    if settings.redis_url:
        return Redis.from_url(settings.redis_url, health_check_interval=15, socket_keepalive=True)
    return shared


def namespace(client: Redis) -> str:
    """Pub/sub channels ignore the db number, so put it in the channel prefix: two deployments (or test runs)
    sharing one Redis server on different dbs must never hear each other's events."""
    db = getattr(client, "connection_pool", None)
    number = db.connection_kwargs.get("db", 0) if db is not None else 0
    return f"lianmall:{number}:"


def set_redis(client: Redis | None) -> None:
    global _client
    _client = client


def get_redis() -> Redis:
    if _client is None:
        raise RuntimeError("Redis is not initialised: the app lifespan (or a test fixture) sets it")
    return _client
