"""Cross-process events over Redis pub/sub, fanned out to local subscribers.

One listener task per process holds a single pattern subscription. It runs under a supervising loop: if the
connection drops (Redis restart, network blip) it re-subscribes with backoff and tells `on_reconnect` hooks,
because messages published while it was away are lost and caches built on them must be dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from redis.asyncio import Redis

log = logging.getLogger("lianmall.bus")

Handler = Callable[[dict[str, Any]], None]
ChannelHandler = Callable[[str, dict[str, Any]], None]
ReconnectHook = Callable[[], Awaitable[None] | None]

QUEUE_SIZE = 256


class EventBus:
    def __init__(self, redis: Redis, prefix: str = "lianmall:", listener: Redis | None = None) -> None:
        self._redis = redis
        self._listener = listener or redis
        self._prefix = prefix
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._prefix_handlers: list[tuple[str, ChannelHandler]] = []
        self._reconnect_hooks: list[ReconnectHook] = []
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.reconnects = 0
        # Whether the listener holds its subscription now (what /healthz reports as the event bus).
        self.connected = False

    @property
    def subscriber_count(self) -> int:
        """Local subscribers (one queue per open subscription) across every channel."""
        return sum(len(queues) for queues in self._queues.values())

    async def publish(self, channel: str, payload: dict[str, Any]) -> None:
        await self._redis.publish(self._prefix + channel, orjson.dumps(payload))

    def channel_name(self, channel: str) -> str:
        """The Redis channel `channel` is published on (for a Lua script that publishes itself)."""
        return self._prefix + channel

    def add_handler(self, channel: str, handler: Handler) -> None:
        """Run `handler` synchronously in this process for every event on `channel`."""
        self._handlers[channel].append(handler)

    def remove_handler(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel)
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[channel]

    def add_prefix_handler(self, prefix: str, handler: ChannelHandler) -> None:
        """Run `handler(channel, payload)` synchronously in this process for every event on a channel starting
        with `prefix` ("" for all)."""
        self._prefix_handlers.append((prefix, handler))

    def listeners(self, channel: str) -> int:
        """How many local subscribers `channel` has now (for tests and metrics)."""
        return len(self._queues.get(channel, ()))

    def on_reconnect(self, hook: ReconnectHook) -> None:
        self._reconnect_hooks.append(hook)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Events on `channel` from every process, for as long as the context is open."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._queues[channel].add(queue)

        async def events() -> AsyncIterator[dict[str, Any]]:
            while True:
                yield await queue.get()

        try:
            yield events()
        finally:
            self._queues[channel].discard(queue)
            if not self._queues[channel]:
                del self._queues[channel]

    async def start(self, wait: float = 5.0) -> None:
        """Start listening; wait up to `wait` seconds for the subscription. A process that starts while Redis is
        away serves anyway (degraded, see the README) and subscribes as soon as Redis answers."""
        self._task = asyncio.create_task(self._supervise(), name="event-bus-listener")
        try:
            async with asyncio.timeout(wait):
                await self._subscribed.wait()
        except TimeoutError:
            log.warning("event bus not subscribed after %.1fs; serving without it until Redis answers", wait)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _supervise(self) -> None:
        delay = 0.05
        first = True
        while True:
            pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self._prefix + "*")
                self.connected = True
                if not first:
                    self.reconnects += 1
                    await self._run_reconnect_hooks()
                first = False
                delay = 0.05
                self._subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is not None:
                        self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the listener must outlive any Redis failure
                # Said once per outage; the retries every couple of seconds only at debug level.
                level = logging.WARNING if self.connected or first else logging.DEBUG
                self.connected = False
                log.log(level, "event bus listener lost its subscription (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _run_reconnect_hooks(self) -> None:
        for hook in self._reconnect_hooks:
            try:
                result = hook()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("a bus reconnect hook failed")

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") not in {"pmessage", "message"}:
            return
        channel = message["channel"]
        if isinstance(channel, bytes):
            channel = channel.decode()
        channel = channel.removeprefix(self._prefix)
        try:
            payload = orjson.loads(message["data"])
        except orjson.JSONDecodeError:
            log.warning("dropping a malformed event on %s", channel)
            return
        for handler in self._handlers.get(channel, ()):
            try:
                handler(payload)
            except Exception:
                log.exception("event handler for %s failed", channel)
        for prefix, channel_handler in self._prefix_handlers:
            if channel.startswith(prefix):
                try:
                    channel_handler(channel, payload)
                except Exception:
                    log.exception("event handler for %s* failed on %s", prefix, channel)
        for queue in self._queues.get(channel, ()):
            if queue.full():
                # A slow subscriber loses its oldest event rather than stalling everyone else.
                queue.get_nowait()
            queue.put_nowait(payload)
