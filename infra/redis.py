"""The Redis client: the real server when REDIS_URL is set, an in-process stand-in otherwise.

Redis holds caches, counters and the event bus, never the record: PostgreSQL is. So every Redis call is bounded
and may fail, and its caller degrades (see the README, "When Redis or PostgreSQL is down"):
- each socket operation waits at most REDIS_TIMEOUT_SECONDS (connect, read, write);
- a command is retried once, without delay, on a broken connection (a pooled socket left over from before a
  Redis restart) but never on a timeout, so one command never waits much longer than the timeout;
- the client's `RedisHealth` trips when a connect fails or a command times out: for `PROBE_INTERVAL` seconds
  after that every connect and command fails at once instead of waiting, then a single one probes again.
  Without it, redis-py's default nested retries (a retried command whose every attempt retries its connect,
  each with backoff) kept the first request after an outage waiting 15-30 s, and with Redis hung (not dead)
  every command on every pooled socket would wait its own timeout;
- a socket operation that fails with anything but redis-py's own errors raises redis-py's ConnectionError:
  on uvloop (which uvicorn serves on) writing to a connection whose transport a reset from a dying Redis has
  closed raises RuntimeError ("the handler is closed"), where asyncio raises an OSError that redis-py turns into
  its ConnectionError. Passed on as it is, it escaped every caller that degrades on REDIS_ERRORS.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra.settings import Settings

log = logging.getLogger("lianmall.redis")

_client: Redis | None = None

# How long the breaker stays open after a failure before one connect probes Redis again.
PROBE_INTERVAL = 1.0
# What a caller that degrades catches: redis-py's errors (the breaker raises its ConnectionError too).
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError, asyncio.TimeoutError)


class RedisHealth:
    """A circuit breaker over one client's connections, and what /healthz reports about Redis.

    Closed (Redis up): everything goes through. It opens when a connect fails or a read or write times out
    (a broken socket alone does not: its command is retried on a new connection, whose connect decides). Open:
    every connect and every command fails at once, except one probe per `probe_interval`, whose first answer
    from Redis closes the breaker again.
    """

    def __init__(self, probe_interval: float = PROBE_INTERVAL) -> None:
        self.probe_interval = probe_interval
        self.down_since: float | None = None
        self.last_error = ""
        self._retry_at = 0.0
        self._probe: object | None = None  # the connection probing, while one does

    @property
    def up(self) -> bool:
        return self.down_since is None

    def before_use(self, connection: object) -> None:
        """Raise at once while Redis is known to be away, unless `connection` is (or becomes) the probe."""
        if self.down_since is None or self._probe is connection:
            return
        if self._probe is not None or time.monotonic() < self._retry_at:
            raise RedisConnectionError(f"Redis is unreachable ({self.last_error}); not waiting for it")
        self._probe = connection

    def failed(self, exc: BaseException) -> None:
        self._probe = None
        self._retry_at = time.monotonic() + self.probe_interval
        self.last_error = f"{type(exc).__name__}: {exc}"[:200]
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("Redis is unreachable (%s): degrading until it answers again", self.last_error)

    def failed_on_socket(self, exc: BaseException) -> None:
        if isinstance(exc, RedisTimeoutError) or self.down_since is not None:
            self.failed(exc)

    def answered(self) -> None:
        if self.down_since is None:
            return
        self._probe = None
        log.warning("Redis answers again after %.1fs", time.monotonic() - self.down_since)
        self.down_since = None

    def abandoned(self, connection: object) -> None:
        if self._probe is connection:
            self._probe = None


class _Guarded:
    """Connection mixin: consult and feed the pool's RedisHealth on connect, send and read."""

    def __init__(self, *args: Any, redis_health: RedisHealth, **kwargs: Any) -> None:
        self.redis_health = redis_health
        super().__init__(*args, **kwargs)

    async def _connect(self) -> None:
        self.redis_health.before_use(self)
        try:
            await super()._connect()  # type: ignore[misc]
        except asyncio.CancelledError:
            self.redis_health.abandoned(self)
            raise
        except BaseException as exc:
            self.redis_health.failed(exc)
            raise
        # Connected is not answered: a hung Redis still accepts connections (the kernel does). The first
        # answer read on this socket closes the breaker.

    async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        self.redis_health.before_use(self)
        try:
            await super().send_packed_command(*args, **kwargs)  # type: ignore[misc]
        except (RedisTimeoutError, RedisConnectionError) as exc:
            self.redis_health.failed_on_socket(exc)
            raise
        except Exception as exc:
            if isinstance(exc, RedisError):
                self.redis_health.abandoned(self)
                raise
            # The transport's own failure (see the module docstring); redis-py has disconnected.
            raise self._broken_socket(exc) from exc
        except BaseException:
            self.redis_health.abandoned(self)
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            response = await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except (RedisTimeoutError, RedisConnectionError) as exc:
            # A timeout means Redis (or the way to it) hangs: waiting for it again would only double the wait.
            self.redis_health.failed_on_socket(exc)
            raise
        except asyncio.CancelledError:
            self.redis_health.abandoned(self)
            raise
        except RedisError:
            self.redis_health.answered()  # an error reply is an answer too
            raise
        except Exception as exc:  # the transport's own failure (see the module docstring)
            raise self._broken_socket(exc) from exc
        except BaseException:
            self.redis_health.abandoned(self)
            raise
        self.redis_health.answered()
        return response

    def _broken_socket(self, exc: Exception) -> RedisConnectionError:
        """The transport's own failure as redis-py's ConnectionError, counted against Redis's health."""
        broken = RedisConnectionError(f"Redis connection broken: {type(exc).__name__}: {exc}")
        self.redis_health.failed_on_socket(broken)
        return broken


class GuardedConnection(_Guarded, Connection):
    pass


class GuardedSSLConnection(_Guarded, SSLConnection):
    pass


class GuardedUnixConnection(_Guarded, UnixDomainSocketConnection):
    pass


def _connection_class(url: str) -> type[Connection] | type[UnixDomainSocketConnection]:
    scheme = urlsplit(url).scheme
    if scheme == "rediss":
        return GuardedSSLConnection
    if scheme == "unix":
        return GuardedUnixConnection
    return GuardedConnection


def create_redis(settings: Settings) -> Redis:
    if settings.redis_url:
        timeout = settings.redis_timeout_seconds
        return Redis.from_url(
            settings.redis_url,
            connection_class=_connection_class(settings.redis_url),
            redis_health=RedisHealth(),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # Once, at once, and only for a broken socket (see the module docstring).
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            health_check_interval=15,
        )
    # Imported here: with a real Redis, its ~5 MB stay out of every worker.
    import fakeredis

    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())


def create_listener_redis(settings: Settings, shared: Redis) -> Redis:
    """The pub/sub listener's own client, with no retry.

    With a retry (redis-py's default is 10), redis-py silently reconnects and resubscribes inside
    `get_message`: the bus would never learn that it missed messages (and must drop caches built on them).
    Without it, a lost connection raises and the bus's supervising loop resubscribes and runs its reconnect
    hooks. Reads wait for messages as long as the bus asks; connecting waits at most REDIS_TIMEOUT_SECONDS.
    """
    if settings.redis_url:
        return Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=settings.redis_timeout_seconds,
            # Named for its process in CLIENT LIST, so an operator (or a test) can tell whose subscription it is.
            client_name=listener_name(os.getpid()),
            retry=Retry(NoBackoff(), 0),
            health_check_interval=15,
            socket_keepalive=True,
        )
    return shared


def listener_name(pid: int) -> str:
    """The Redis client name of the bus listener of process `pid`."""
    return f"lianmall-bus-{pid}"


def health_of(client: Redis) -> RedisHealth | None:
    """The breaker of a client made by `create_redis` (None for the in-process stand-in)."""
    pool = getattr(client, "connection_pool", None)
    health = pool.connection_kwargs.get("redis_health") if pool is not None else None
    return health if isinstance(health, RedisHealth) else None


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
