"""The event bus: fan-out to local subscribers, namespacing, and recovery from a lost connection."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from redis.asyncio import Redis

from infra.bus import EventBus
from infra.redis import namespace
from infra.response_cache import CachedResponse
from infra.runtime import Runtime
from tests.bus_listeners import kill_bus_listeners


async def _next(events: object, within: float = 2.0) -> dict:
    async with asyncio.timeout(within):
        return await anext(events)  # type: ignore[call-overload]


async def test_every_local_subscriber_gets_each_event(runtime: Runtime) -> None:
    bus = runtime.bus
    async with bus.subscribe("test:fanout") as first, bus.subscribe("test:fanout") as second:
        await bus.publish("test:fanout", {"n": 1})
        assert await _next(first) == {"n": 1}
        assert await _next(second) == {"n": 1}
    assert "test:fanout" not in bus._queues, "closed subscriptions are forgotten"


async def test_a_slow_subscriber_loses_old_events_not_new_ones(runtime: Runtime) -> None:
    bus = runtime.bus
    async with bus.subscribe("test:slow") as events:
        for n in range(300):
            await bus.publish("test:slow", {"n": n})
        deadline = time.monotonic() + 2
        last = None
        while time.monotonic() < deadline and last != 299:
            last = (await _next(events))["n"]
        assert last == 299


@pytest.mark.realservices
async def test_another_redis_db_does_not_hear_our_events(runtime: Runtime, settings: object) -> None:
    url = runtime.settings.redis_url
    assert url is not None
    other = Redis.from_url(url.rsplit("/", 1)[0] + "/3")
    assert namespace(other) != namespace(runtime.redis)
    other_bus = EventBus(other, prefix=namespace(other))
    await other_bus.start()
    try:
        async with other_bus.subscribe("test:ns") as foreign, runtime.bus.subscribe("test:ns") as ours:
            await runtime.bus.publish("test:ns", {"from": "us"})
            assert await _next(ours) == {"from": "us"}
            with pytest.raises(TimeoutError):
                await _next(foreign, within=0.3)
    finally:
        await other_bus.stop()
        await other.aclose()


@pytest.mark.realservices
async def test_a_killed_listener_reconnects_drops_local_cache_and_delivers_again(runtime: Runtime) -> None:
    bus, cache = runtime.bus, runtime.cache
    marks = await cache.begin()
    await cache.store("bus-reconnect", CachedResponse(b"1", frozenset({"p:bus"})), marks)
    assert cache.get_local("bus-reconnect") is not None
    reconnects = bus.reconnects
    async with bus.subscribe("test:after-kill") as events:
        assert await kill_bus_listeners(runtime.settings.redis_url, [os.getpid()]) == 1  # type: ignore[arg-type]
        deadline = time.monotonic() + 5
        # Polls a counter the bus keeps for observability; there is no event to await.
        while bus.reconnects == reconnects and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        assert bus.reconnects > reconnects, "the supervisor noticed the lost subscription"
        assert cache.get_local("bus-reconnect") is None, "messages may have been missed: L1 is dropped"
        await bus.publish("test:after-kill", {"ok": True})
        assert await _next(events) == {"ok": True}


async def test_stop_ends_a_listener_that_swallowed_a_cancellation(runtime: Runtime) -> None:
    # redis-py's read can swallow a cancellation arriving as its own timeout ends; the listener then waits on
    # its next read. Stopping must not wait with it forever.
    bus = EventBus(runtime.redis, prefix="lianmall-test-stop:")
    swallowed = asyncio.Event()

    async def listen(pubsub: object) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()
        await asyncio.Event().wait()  # the next read, which nothing will answer

    bus._listen = listen  # type: ignore[method-assign]
    await bus.start(wait=0.1)
    started = time.monotonic()
    await asyncio.wait_for(bus.stop(), 10)
    assert swallowed.is_set()
    assert time.monotonic() - started < 5
    assert not bus.connected
