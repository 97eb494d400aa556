"""Following a room from this process: one bus handler per watched room, however many subscribers it has.

The handler decodes each bus message once and hands the envelope to every local listener of the room.
`room_events` turns that into what one subscriber needs: the events it missed (from the room's history, when it
comes back with the last sequence number it saw), then the live ones, in order, with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from infra.bus import EventBus
from infra.runtime import current_runtime
from services.live.events import Envelope, current_seq, decode_envelope, history_since, room_channel

# Live events one subscriber may fall behind by before it loses the oldest (then read back from the history).
QUEUE_SIZE = 256


class Listener(Protocol):
    def deliver(self, envelope: Envelope) -> None: ...


class RoomFeeds:
    """This process's listeners per room, fed by one bus handler per room while it has any."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._rooms: dict[int, set[Listener]] = {}
        self._handlers: dict[int, Callable[[dict[str, Any]], None]] = {}

    def attach(self, room_id: int, listener: Listener) -> None:
        listeners = self._rooms.get(room_id)
        if listeners is None:
            listeners = self._rooms[room_id] = set()
            handler = functools.partial(self._dispatch, room_id)
            self._handlers[room_id] = handler
            self._bus.add_handler(room_channel(room_id), handler)
        listeners.add(listener)

    def detach(self, room_id: int, listener: Listener) -> None:
        listeners = self._rooms.get(room_id)
        if listeners is None:
            return
        listeners.discard(listener)
        if not listeners:
            del self._rooms[room_id]
            self._bus.remove_handler(room_channel(room_id), self._handlers.pop(room_id))

    def local_viewers(self, room_id: int) -> int:
        """Subscribers of the room on this process."""
        return len(self._rooms.get(room_id, ()))

    def rooms(self) -> list[int]:
        return list(self._rooms)

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


async def room_events(room_id: int, after_seq: int | None) -> AsyncIterator[Envelope]:
    """The room's events for one subscriber: missed ones after `after_seq` first, then live ones, in order."""
    feeds = room_feeds()
    listener = QueueListener()
    feeds.attach(room_id, listener)
    try:
        sequencer, missed = await Sequencer.start(room_id, after_seq)
        for envelope in missed:
            yield envelope
        while True:
            arrived = await listener.queue.get()
            for envelope in await sequencer.admit(arrived):
                yield envelope
    finally:
        feeds.detach(room_id, listener)


@contextlib.asynccontextmanager
async def watching(room_id: int) -> AsyncIterator[QueueListener]:
    """A raw listener on the room, for tests and tools."""
    feeds = room_feeds()
    listener = QueueListener()
    feeds.attach(room_id, listener)
    try:
        yield listener
    finally:
        feeds.detach(room_id, listener)
