"""The PostgreSQL connection pool hands connections out in the order they were asked for.

asyncpg's pool keeps its free connections in an `asyncio.Queue`, which lets a newcomer barge: a released
connection wakes the longest waiter, but until that waiter runs (the next pass of the event loop) the queue
is not empty, and any task asking in between takes the connection without waiting (on a busy loop, another
request whose callback was already queued, asking for its next statement). The woken waiter finds the queue
empty and goes to the back of the line. Tortoise acquires and releases the connection around every statement outside a transaction, so
with more requests in flight than connections (32 connections of wrk against a pool of 10) a few requests
lost that race again and again: the tail of the cold rows in bench/run.py (cold product page p50 21.9 ms,
p99 82.6 ms under c32) was requests waiting for a connection, while the collector ran not once.

Here a released connection goes straight to the longest waiter, and nobody takes one while others wait. The
work done is the same, only its order changes: the p99 of the cold rows fell to 1.2-1.6x their p50 at about
the same throughput (bench/README.md, "The p99 under c32"). tests/test_postgres_pool.py checks the order on a real pool, which also
guards the asyncpg internals this relies on (the pool's free connection holders in `Pool._queue`, taken
with `get()` and given back with `put_nowait()`; the release bookkeeping `ReleasingPool` repeats; asyncpg 0.32).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Generic, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy, _PoolConnectionHolderQueue
from tortoise.backends.asyncpg.client import AsyncpgDBClient

T = TypeVar("T")


class HandOffQueue(asyncio.LifoQueue[T], Generic[T]):
    """A queue that gives each item put into it to the longest waiting getter, if any, and lets a getter
    take an item without waiting only when no one else waits."""

    _getters: deque[asyncio.Future[T]]

    async def get(self) -> T:
        if not self._getters and not self.empty():
            return self.get_nowait()
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._getters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed over just as the getter was cancelled (a pool timeout): pass it on.
                self.put_nowait(waiter.result())
            elif waiter in self._getters:
                self._getters.remove(waiter)
            raise

    def put_nowait(self, item: T) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        super().put_nowait(item)


class HandOffHolderQueue(HandOffQueue[Any], _PoolConnectionHolderQueue):  # type: ignore[misc]
    """asyncpg's queue of connection holders (which prefers connected holders among the free ones), handing
    them over in order."""


def hand_out_in_order(pool: asyncpg.Pool) -> None:
    """Make a freshly created pool's queue of free connections a `HandOffHolderQueue` (same holders)."""
    holders = HandOffHolderQueue(maxsize=pool._maxsize)
    holders._queue.extend(pool._queue._queue)
    pool._queue = holders


class ReleasingPool(asyncpg.Pool):  # type: ignore[misc]
    """asyncpg's pool, releasing a connection without a task when nothing needs a round trip.

    asyncpg releases every connection in a task of its own (`asyncio.shield`, so that a cancelled caller cannot
    lose it) under two timeout scopes, even when releasing is pure bookkeeping: a task and two more passes of
    the event loop for every statement outside a transaction, since Tortoise releases after each (a fixed
    one-row statement took 29-37 µs of CPU through Tortoise, 20 µs with this). With our connections (no reset
    statement: infra/db.py PooledConnection), a connection that is open, not in a transaction, not being
    cancelled, of the pool's current generation and below its query limit needs no I/O to go back: that is
    done here at once, as asyncpg does it (`Pool.release`, `PoolConnectionHolder.release`, `Connection.reset`
    without a transaction to roll back). Anything else takes asyncpg's own path. Nothing here awaits, so a
    cancellation cannot interrupt it halfway.
    """

    __slots__ = ()

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 (asyncpg's signature)
        if not self._released_at_once(connection):
            await super().release(connection, timeout=timeout)

    def _released_at_once(self, proxy: Any) -> bool:
        if type(proxy) is not PoolConnectionProxy or not self._initialized or self._closed:
            return False
        holder = proxy._holder
        con = proxy._con
        if con is None or holder._pool is not self or holder._in_use is None or self._reset is not None:
            return False
        protocol = con._protocol
        if (
            con.is_closed()
            or protocol.queries_count >= holder._max_queries
            or holder._generation != self._generation
            or protocol._is_cancelling()
            or protocol.is_in_transaction()
            or con._top_xact is not None
            or con.get_reset_query()
        ):
            return False
        con._on_release()  # warns of listeners left behind
        holder._timeout = None
        con._listeners.clear()
        con._log_listeners.clear()
        holder._release()
        holder._setup_inactive_callback()
        return True


class PostgresClient(AsyncpgDBClient):  # type: ignore[misc]
    """Tortoise's asyncpg client, its pool handing connections out in order and releasing them at once."""

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        # Nothing can use the pool before it is returned: no one waits in the queue being replaced.
        pool = await super().create_pool(**kwargs)
        hand_out_in_order(pool)
        # Same slots, one method more: the pool asyncpg built, now releasing at once where it can.
        pool.__class__ = ReleasingPool
        return pool


# Tortoise loads a connection's `engine` module and takes its `client_class` (infra/db.py names this module).
client_class = PostgresClient
