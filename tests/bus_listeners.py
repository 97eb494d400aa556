"""Cutting the event bus's subscription of chosen processes, as a Redis restart cuts everyone's.

The Redis on 6379 is shared by every test run on the machine: `CLIENT KILL TYPE pubsub` there dropped the
listeners of every other run's processes too (their events lost mid-test, their caches emptied). Each process's
listener is named for its pid (infra.redis.listener_name), so only the processes a test owns are cut.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from infra.redis import listener_name


async def kill_bus_listeners(redis_url: str, pids: Iterable[int]) -> int:
    """Close the pub/sub connections of the bus listeners of `pids`; how many were closed."""
    names = {listener_name(pid) for pid in pids}
    admin = Redis.from_url(redis_url, socket_timeout=5.0)
    try:
        clients = await admin.client_list(_type="pubsub")
        killed = 0
        for client in clients:
            if client.get("name") in names:
                killed += await admin.client_kill_filter(_id=client["id"])
        return killed
    finally:
        await admin.aclose()
