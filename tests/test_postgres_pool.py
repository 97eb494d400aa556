"""PostgreSQL connections are handed out in the order they were asked for (infra/postgres_pool.py): a request
waiting for a connection gets the next one released, never a request that asked after it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tortoise import Tortoise

from infra.postgres_pool import HandOffHolderQueue, HandOffQueue, ReleasingPool
from infra.settings import Settings
from tests.task_counter import tasks_made


async def settle() -> None:
    """Let every task that can run, run (a few passes of the event loop)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_released_item_goes_to_the_waiter_not_back_to_the_releaser() -> None:
    queue: HandOffQueue[str] = HandOffQueue()
    queue.put_nowait("connection")
    served: list[str] = []

    async def wait_for_it() -> None:
        item = await queue.get()
        served.append("waiter")
        queue.put_nowait(item)

    item = await queue.get()
    waiter = asyncio.create_task(wait_for_it())
    await settle()
    # The holder releases and asks again without yielding: asyncio.Queue would give the item straight back.
    queue.put_nowait(item)
    item = await queue.get()
    served.append("releaser")
    queue.put_nowait(item)
    await waiter
    assert served == ["waiter", "releaser"]


async def test_waiters_are_served_in_the_order_they_asked() -> None:
    queue: HandOffQueue[int] = HandOffQueue()
    served: list[int] = []

    async def take(number: int) -> None:
        served.append(await queue.get())
        assert number == served[-1]

    takers = []
    for number in range(5):
        takers.append(asyncio.create_task(take(number)))
        await settle()
    for number in range(5):
        queue.put_nowait(number)
    await asyncio.gather(*takers)
    assert served == [0, 1, 2, 3, 4]
    assert queue.empty()


async def test_a_cancelled_waiter_passes_on_what_it_was_handed() -> None:
    queue: HandOffQueue[str] = HandOffQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await settle()
    queue.put_nowait("connection")  # handed to `first`, which is cancelled before it runs (a pool timeout)
    first.cancel()
    assert await second == "connection"
    assert first.cancelled()


async def test_a_cancelled_waiter_leaves_the_line() -> None:
    queue: HandOffQueue[str] = HandOffQueue()
    gone = asyncio.create_task(queue.get())
    await settle()
    gone.cancel()
    await settle()
    queue.put_nowait("connection")
    assert queue.qsize() == 1
    assert await queue.get() == "connection"


@pytest.mark.realservices
async def test_the_pool_serves_a_waiting_request_before_a_newcomer(
    database: None, settings: Settings
) -> None:
    client = Tortoise.get_connection("default")
    await client.execute_query("SELECT 1")  # the pool is made on first use
    pool = client._pool  # type: ignore[attr-defined]
    assert isinstance(pool._queue, HandOffHolderQueue)
    held = [await pool.acquire() for _ in range(settings.db_pool_max)]
    served: list[str] = []

    async def acquire_as(name: str) -> None:
        connection = await pool.acquire()
        served.append(name)
        await connection.fetchval("SELECT 1")
        await pool.release(connection)

    def later(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        tasks.append(asyncio.ensure_future(make()))

    tasks: list[asyncio.Future[None]] = [asyncio.create_task(acquire_as("waiter"))]
    await settle()
    # Released in a task; a newcomer asks while the release is under way, as a busy server's other requests
    # do: with asyncpg's own queue it takes the connection before the woken waiter runs.
    tasks.append(asyncio.create_task(pool.release(held.pop())))
    asyncio.get_running_loop().call_soon(later, lambda: acquire_as("newcomer"))
    await settle()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    for connection in held:
        await pool.release(connection)
    assert served == ["waiter", "newcomer"]


@pytest.mark.realservices
async def test_a_released_connection_goes_back_at_once_without_a_task(database: None) -> None:
    client = Tortoise.get_connection("default")
    await client.execute_query("SELECT 1")
    pool = client._pool  # type: ignore[attr-defined]
    assert isinstance(pool, ReleasingPool)
    connection = await pool.acquire()
    await connection.fetchval("SELECT 1")
    free = pool._queue.qsize()
    with tasks_made() as made:
        await pool.release(connection)
    # asyncpg's own release runs in a task (asyncio.shield) and takes two more passes of the event loop.
    assert made == []
    assert pool._queue.qsize() == free + 1


@pytest.mark.realservices
async def test_a_connection_left_in_a_transaction_is_rolled_back_on_release(
    database: None, caplog: pytest.LogCaptureFixture
) -> None:
    client = Tortoise.get_connection("default")
    await client.execute_query("SELECT 1")
    pool = client._pool  # type: ignore[attr-defined]
    connection = await pool.acquire()
    await connection.execute("BEGIN")
    backend = await connection.fetchval("SELECT pg_backend_pid()")
    assert connection.is_in_transaction()
    await pool.release(connection)
    # asyncpg's own release took it (and says so): it rolls the transaction back.
    assert "Resetting connection with an active transaction" in caplog.text
    # The pool hands out the connection released last first: the same one, its transaction rolled back.
    again = await pool.acquire()
    try:
        assert await again.fetchval("SELECT pg_backend_pid()") == backend
        assert not again.is_in_transaction()
    finally:
        await pool.release(again)
