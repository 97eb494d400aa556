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
with `get()` and given back with `put_nowait()`; asyncpg 0.32).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Generic, TypeVar

import asyncpg
from asyncpg.pool import _PoolConnectionHolderQueue
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


class PostgresClient(AsyncpgDBClient):  # type: ignore[misc]
    """Tortoise's asyncpg client, its pool handing connections out in order."""

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        # Nothing can use the pool before it is returned: no one waits in the queue being replaced.
        pool = await super().create_pool(**kwargs)
        hand_out_in_order(pool)
        return pool


# Tortoise loads a connection's `engine` module and takes its `client_class` (infra/db.py names this module).
client_class = PostgresClient
