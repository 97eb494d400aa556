"""Following a room from this process: one bus handler per watched room, however many subscribers it has, and
the room's viewer count across processes.

The handler decodes each bus message once and hands the envelope to every local listener of the room.
`room_events` turns that into what one subscriber needs: the events it missed (from the room's history, when it
comes back with the last sequence number it saw), then the live ones, in order, with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from infra.bus import EventBus
from infra.redis import REDIS_ERRORS
from infra.runtime import current_runtime
from services.live.events import (
    CommentPosted,
    Envelope,
    ViewerCount,
    comment_batch,
    current_seq,
    decode_envelope,
    history_since,
    publish_room_event,
    room_channel,
)

log = logging.getLogger("lianmall.live.feed")

# How long comments are gathered into one CommentsPosted for a subscriber that asked for batches: at 50
# comments a second one event instead of ten, and no later than a page needs to show them.
COMMENT_WINDOW = 0.2

# Live events one subscriber may fall behind by before it loses the oldest (then read back from the history).
QUEUE_SIZE = 256


class Listener(Protocol):
    def deliver(self, envelope: Envelope) -> None: ...


# Viewer counts: each process writes how many subscribers each room has on it every VIEWER_TICK seconds; a
# process's figure counts for VIEWER_STALE seconds (a dead process drops out by itself).
VIEWER_TICK = 2.0
VIEWER_STALE = 6.0

# KEYS: the room's viewer hash (process token -> "count:unix time"), the last count announced.
# ARGV: this process's token, its count, now (unix seconds), VIEWER_STALE. Returns {total, changed}.
_VIEWERS = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
redis.call('EXPIRE', KEYS[1], 60)
local total = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local count, at = string.match(entries[i + 1], '^(%d+):([%d.]+)$')
  if count == nil or tonumber(ARGV[3]) - tonumber(at) > tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[1], entries[i])
  else
    total = total + tonumber(count)
  end
end
local last = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], total, 'EX', 60)
if last == tostring(total) then return {total, 0} end
return {total, 1}
"""


def _viewer_keys(room_id: int) -> list[str]:
    return [f"live:room:{room_id}:viewers", f"live:room:{room_id}:viewers:announced"]


async def viewer_count(room_id: int) -> int:
    """People watching the room across every process (as of the last few seconds)."""
    try:
        entries = await current_runtime().redis.hgetall(_viewer_keys(room_id)[0])
    except REDIS_ERRORS:
        return room_feeds().local_viewers(room_id)
    moment = time.time()
    total = 0
    for value in entries.values():
        count, _, at = (value.decode() if isinstance(value, bytes) else str(value)).partition(":")
        if count.isdigit() and moment - float(at or 0) <= VIEWER_STALE:
            total += int(count)
    return total


class RoomFeeds:
    """This process's listeners per room, fed by one bus handler per room while it has any."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._rooms: dict[int, set[Listener]] = {}
        self._handlers: dict[int, Callable[[dict[str, Any]], None]] = {}
        self._token = secrets.token_hex(8)
        self._ticker: asyncio.Task[None] | None = None
        self._viewers: Counter[int] = Counter()

    def attach(self, room_id: int, listener: Listener, viewer: bool = True) -> None:
        """Feed `listener` the room's events; a `viewer` also counts in the room's viewer count."""
        listeners = self._rooms.get(room_id)
        if listeners is None:
            listeners = self._rooms[room_id] = set()
            handler = functools.partial(self._dispatch, room_id)
            self._handlers[room_id] = handler
            self._bus.add_handler(room_channel(room_id), handler)
        listeners.add(listener)
        if viewer:
            self.viewer_joined(room_id)

    def viewer_joined(self, room_id: int) -> None:
        """Count one more viewer of the room on this process (a listener that feeds several subscribers counts
        each of them this way)."""
        self._viewers[room_id] += 1
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._count_viewers(), name="live-viewer-counts")

    def viewer_left(self, room_id: int) -> None:
        self._viewers[room_id] -= 1
        if self._viewers[room_id] <= 0:
            del self._viewers[room_id]

    def detach(self, room_id: int, listener: Listener, viewer: bool = True) -> None:
        listeners = self._rooms.get(room_id)
        if listeners is None or listener not in listeners:
            return
        listeners.discard(listener)
        if viewer:
            self.viewer_left(room_id)
        if not listeners:
            del self._rooms[room_id]
            self._bus.remove_handler(room_channel(room_id), self._handlers.pop(room_id))

    def local_viewers(self, room_id: int) -> int:
        """Subscribers of the room on this process."""
        return self._viewers.get(room_id, 0)

    def rooms(self) -> list[int]:
        """The rooms this process has viewers of."""
        return list(self._viewers)

    async def count_viewers_once(self, room_ids: list[int] | None = None) -> None:
        """Write this process's viewers of each room; the first process to see a room's total change announces
        it (ViewerCount)."""
        redis = current_runtime().redis
        script = redis.register_script(_VIEWERS)
        for room_id in self.rooms() if room_ids is None else room_ids:
            try:
                total, changed = await script(
                    keys=_viewer_keys(room_id),
                    args=[self._token, self.local_viewers(room_id), f"{time.time():.3f}", VIEWER_STALE],
                )
            except REDIS_ERRORS as exc:
                log.debug("viewer count of room %s not written: %s", room_id, exc)
                continue
            if changed:
                await publish_room_event(room_id, ViewerCount(count=int(total)))

    async def _count_viewers(self) -> None:
        """While this process has viewers of any room: count them every VIEWER_TICK seconds, and once more
        after the last one left (so its figure drops)."""
        counted: set[int] = set()
        while True:
            await asyncio.sleep(VIEWER_TICK)
            watched = self.rooms()
            await self.count_viewers_once(sorted(counted | set(watched)))
            counted = set(watched)
            if not self.rooms():  # checked with no await before the return: a new viewer starts a new ticker
                self._ticker = None
                return

    def _dispatch(self, room_id: int, message: dict[str, Any]) -> None:
        envelope = decode_envelope(message)
        if envelope is None:
            return
        for listener in list(self._rooms.get(room_id, ())):
            listener.deliver(envelope)


_feeds: weakref.WeakKeyDictionary[EventBus, RoomFeeds] = weakref.WeakKeyDictionary()


def room_feeds() -> RoomFeeds:
    """The feeds of the running process (one per event bus)."""
    bus = current_runtime().bus
    feeds = _feeds.get(bus)
    if feeds is None:
        feeds = _feeds[bus] = RoomFeeds(bus)
    return feeds


class QueueListener:
    """Buffers live envelopes for one subscriber; when it falls too far behind the oldest go (the history has
    them)."""

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Envelope] = asyncio.Queue(QUEUE_SIZE)

    def deliver(self, envelope: Envelope) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(envelope)


class Sequencer:
    """Puts one subscriber's envelopes in order: drops what it already had, fills holes from the history.

    Starts after `after_seq` (what the client saw), or after the room's current number for a client that wants
    only what happens from now on.
    """

    __slots__ = ("epoch", "last", "room_id")

    def __init__(self, room_id: int, last: int) -> None:
        self.room_id = room_id
        self.last = last
        self.epoch: str | None = None

    @classmethod
    async def start(cls, room_id: int, after_seq: int | None) -> tuple[Sequencer, list[Envelope]]:
        """The sequencer and the events the client missed. Attach the listener first, so nothing published
        meanwhile falls between the history and the live events."""
        if after_seq is None:
            return cls(room_id, await current_seq(room_id)), []
        missed = await history_since(room_id, after_seq)
        sequencer = cls(room_id, after_seq)
        if missed:
            sequencer.epoch = missed[-1].epoch
            sequencer.last = missed[-1].seq
        elif after_seq > await current_seq(room_id):
            sequencer.last = 0  # the counter started again: whatever comes next is news
        return sequencer, missed

    async def missed(self) -> list[Envelope]:
        """The kept events after this place (every kept one if the room's numbering started again since)."""
        kept = await history_since(self.room_id, self.last)
        if not kept:
            if self.last > await current_seq(self.room_id):
                self.last = 0  # the counter started again: whatever comes next is news
            return []
        if self.epoch is not None and kept[-1].epoch != self.epoch:
            return await history_since(self.room_id, 0)  # numbered afresh since: all of it is news
        return kept

    async def admit(self, envelope: Envelope) -> list[Envelope]:
        """The envelopes to send now, given one that just arrived live (none, it, or missed ones and it)."""
        if self.epoch is not None and envelope.epoch != self.epoch:
            self.last = 0  # Redis lost the room's counter: numbers start again
        self.epoch = envelope.epoch
        if envelope.seq <= self.last:
            return []
        out: list[Envelope] = []
        if envelope.seq > self.last + 1:
            out = [e for e in await history_since(self.room_id, self.last) if e.seq < envelope.seq]
        out.append(envelope)
        self.last = envelope.seq
        return out


def batched(envelopes: list[Envelope]) -> list[Envelope]:
    """The same envelopes with each run of consecutive CommentPosted ones made one CommentsPosted."""
    out: list[Envelope] = []
    run: list[Envelope] = []
    for envelope in envelopes:
        if isinstance(envelope.event, CommentPosted):
            run.append(envelope)
            continue
        if run:
            out.append(comment_batch(run))
            run = []
        out.append(envelope)
    if run:
        out.append(comment_batch(run))
    return out


async def room_events(
    room_id: int, after_seq: int | None, batch_comments: bool = False
) -> AsyncIterator[Envelope]:
    """The room's events for one subscriber: missed ones after `after_seq` first, then live ones, in order.

    With `batch_comments`, comments come as CommentsPosted batches: those arriving within COMMENT_WINDOW of the
    first go out together, and any other event first sends the comments before it (numbers stay in order, so
    a client's last `seq` always means "everything up to here").
    """
    feeds = room_feeds()
    listener = QueueListener()
    feeds.attach(room_id, listener)
    loop = asyncio.get_running_loop()
    try:
        sequencer, missed = await Sequencer.start(room_id, after_seq)
        for envelope in batched(missed) if batch_comments else missed:
            yield envelope
        held: list[Envelope] = []
        deadline = 0.0
        while True:
            if not held:
                arrived = [await listener.queue.get()]
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        arrived = [await listener.queue.get()]
                except TimeoutError:
                    arrived = []
            admitted: list[Envelope] = []
            for one in arrived:
                admitted.extend(await sequencer.admit(one))
            if not batch_comments:
                for envelope in admitted:
                    yield envelope
                continue
            for envelope in admitted:
                if isinstance(envelope.event, CommentPosted):
                    if not held:
                        deadline = loop.time() + COMMENT_WINDOW
                    held.append(envelope)
                    continue
                if held:
                    yield comment_batch(held)
                    held = []
                yield envelope
            if held and (not arrived or loop.time() >= deadline):
                yield comment_batch(held)
                held = []
    finally:
        feeds.detach(room_id, listener)


@contextlib.asynccontextmanager
async def watching(room_id: int) -> AsyncIterator[QueueListener]:
    """A raw listener on the room, for tests and tools."""
    feeds = room_feeds()
    listener = QueueListener()
    feeds.attach(room_id, listener, viewer=False)
    try:
        yield listener
    finally:
        feeds.detach(room_id, listener, viewer=False)
