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


def set_redis(client: Redis | None) -> None:
    global _client
    _client = client


def get_redis() -> Redis:
    if _client is None:
        raise RuntimeError("Redis is not initialised: the app lifespan (or a test fixture) sets it")
    return _client
