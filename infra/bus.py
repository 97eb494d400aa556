"""Cross-process events over Redis pub/sub, fanned out to local subscribers.

One listener task per process holds a single pattern subscription. It runs under a supervising loop: if the
connection drops (Redis restart, network blip) it re-subscribes with backoff and tells `on_reconnect` hooks,
because messages published while it was away are lost and caches built on them must be dropped.

`connected` says whether events from other processes can reach this one now, so process-local memories kept
fresh by them (infra/bus_follower.py, the response cache's L1) trust what they hold only while it is True:
- it turns True once Redis answered on the subscription's own connection (a PING sent after the PSUBSCRIBE;
  a connection that was accepted is not a subscription: a hung Redis accepts connections too), and after a
  loss only once the reconnect hooks have dropped what may have gone stale;
- it turns False as soon as the listener sees the connection fail, and when Redis leaves a heartbeat PING
  unanswered for ANSWER_SECONDS: a hung Redis or a silent network loss breaks no socket, so
  without it the listener would wait for messages forever and the memories would trust a dead bus.
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
from redis.asyncio.client import PubSub

log = logging.getLogger("lianmall.bus")

Handler = Callable[[dict[str, Any]], None]
ChannelHandler = Callable[[str, dict[str, Any]], None]
ReconnectHook = Callable[[], Awaitable[None] | None]

QUEUE_SIZE = 256
# A PING on the subscription after this long without hearing anything from Redis on it.
HEARTBEAT_SECONDS = 1.0
# The subscription counts as lost when a PING is not answered within this. Generous: a false loss empties the
# shared response cache (the reconnect hooks); a broken socket is noticed at once anyway, only a hung Redis (or
# a silent network) waits this long, and the memories that trust the bus expire on their own meanwhile (within
# a second; the level table and the running promotions within five).
ANSWER_SECONDS = 3.0
_PING = "lianmall-bus"
# Stopping: cancel the listener, wait this long for it to end, again up to this many times.
STOP_WAIT_SECONDS = 0.5
STOP_ATTEMPTS = 10


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
        # Subscriptions confirmed so far: a memory that saw another number may have missed events since.
        self.subscriptions = 0
        # Whether events from other processes reach this one now (see the module docstring; /healthz reports it).
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
        """Stop listening. The listener is cancelled again until it ends: redis-py's read can swallow a
        cancellation that arrives as the read's own timeout ends (the listener then waited on its next read
        forever, and so did whoever stopped it: seen as a test session that never finished)."""
        task, self._task = self._task, None
        self.connected = False
        if task is None:
            return
        for _ in range(STOP_ATTEMPTS):
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=STOP_WAIT_SECONDS)
            if done:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("event bus listener ended with %r", task.exception())
                return
        log.warning("event bus listener did not stop after %d cancellations; left behind", STOP_ATTEMPTS)

    async def _supervise(self) -> None:
        delay = 0.05
        quiet = False  # the loss of this outage was said; its retries go to the debug log
        while True:
            pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self._prefix + "*")
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the listener must outlive any Redis failure
                if self.connected:
                    delay, quiet = 0.05, False
                self.connected = False
                level = logging.DEBUG if quiet else logging.WARNING
                quiet = True
                log.log(level, "event bus listener lost its subscription (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _listen(self, pubsub: PubSub) -> None:
        """Dispatch what arrives on `pubsub` until its connection fails or Redis stops answering on it."""
        loop = asyncio.get_running_loop()
        # Redis answers commands on a connection in order: the PING's answer comes after the subscription's.
        await pubsub.ping(_PING)
        asked_at = heard_at = loop.time()
        asking, overdue = True, False
        while True:
            due = asked_at + ANSWER_SECONDS if asking else heard_at + HEARTBEAT_SECONDS
            message = await pubsub.get_message(timeout=max(due - loop.time(), 0.01))
            now = loop.time()
            if message is not None:
                # Anything that arrives (a message, the PING's answer) shows the subscription alive.
                heard_at, asking = now, False
                if not self.connected:
                    await self._confirmed()
                if message.get("type") != "pong":
                    self._dispatch(message)
            elif asking and now >= due:
                # Read once more before giving up: an event loop that was itself late (a long GC, a busy
                # process) lets a read time out with the answer already waiting in the socket.
                if overdue:
                    raise ConnectionError(f"Redis did not answer a PING within {ANSWER_SECONDS:.1f}s")
                overdue = True
            elif not asking and now >= due:
                await pubsub.ping(_PING)
                asked_at, asking, overdue = now, True, False

    async def _confirmed(self) -> None:
        """The subscription answered: after a loss, drop what may have gone stale first, then trust the bus."""
        self.subscriptions += 1
        if self.subscriptions > 1:
            self.reconnects += 1
            await self._run_reconnect_hooks()
        self.connected = True
        self._subscribed.set()

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
