"""`liveRoomEvents` over WebSockets: each event executed and encoded once per process for every
subscriber holding the same operation, and written to all their sockets as the same text frame.

strawberry runs a subscription's selection for every subscriber and every event (about 0.3 ms each, see
/work/shared/STACK.md): a room of 10,000 viewers would spend seconds per event. Here a subscription that is
exactly one `liveRoomEvents` field (any selection, fragments, aliases, as long as no selected field depends on
who asks: see `_VIEWER_FIELDS`) joins the process's `Broadcast` for (room, operation, variables but
`afterSeq`). The broadcast follows the room once (services.live.feed: one bus handler per room, events in order,
holes filled from the room's history), executes and encodes each event once, and hands the bytes to each
subscriber's socket behind that subscriber's own `{"id":..,"type":"next","payload":` prefix. Under `main.py
serve` a socket takes them straight onto its transport (infra.websocket_frames: no per-socket task, no ASGI
call chain); under any other server through ASGI `send`, one small drain task per socket. A pass builds the
frames around the prefix once per prefix length (SharedTexts): a subscriber standing where the pass starts
(nearly all of them) costs one `join` and one write, whatever the pass carries (a comment batch flushed ahead
of a stock change goes in the same write).

Each subscriber keeps its own place in the room's numbering (a `Sequencer`): it starts with what it missed
(history after its `afterSeq`), and whenever it cannot take the next event in line (a hole, or a socket that
is behind by more than BEHIND_BYTES) it leaves the shared path, catches up from the history on its own, and
rejoins once the broadcast's recent events continue exactly where it stands. So a reconnect with `afterSeq`
replays what was missed, and no subscriber ever sees an event twice or out of order.

With `batchComments: true` the broadcast gathers CommentPosted events for up to COMMENT_WINDOW and sends them
as one CommentsPosted (any other event sends the comments before it first).

The legacy graphql-ws protocol is served the same way (its frames differ only in `"type":"data"`; it keeps a
small task per subscription to answer `stop` with `complete`). Anything else (another field, directives on the
operation, a document that does not validate, SSE and multipart over HTTP) goes through strawberry and
services.live.feed.room_events, so errors read the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    execute,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.language import Visitor, visit
from starlette.websockets import WebSocketDisconnect
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation

from infra.redis import REDIS_ERRORS
from infra.websocket_frames import SharedTexts, frame_writer
from schema.context import Context
from schema.live_events import event_object, event_types
from schema.node import decode_id
from services.errors import DomainError, ErrorCode
from services.live import feed, rooms
from services.live.events import CommentPosted, Envelope, comment_batch, current_seq, first_seq

log = logging.getLogger("lianmall.live.fanout")

FIELD = "liveRoomEvents"
SHAPES_KEPT = 256
PAYLOADS_KEPT = 2048
# Events a broadcast remembers (encoded) for subscribers rejoining after a catch-up.
RECENT_KEPT = 64
# How long one slice of a broadcast writes to sockets before it yields to the event loop, and how many sockets
# it writes between two looks at the clock. Every await of a request the process serves meanwhile (each SQL
# statement, Redis command, WeChat call) waits for the slice running when its answer arrives: at 1,000 sockets
# a slice (~8 ms on the loopback) a staff or comment call with ten awaits waited ~80 ms per broadcast it met.
SLICE_SECONDS = 0.002
CLOCK_EVERY = 64
# Frames an ASGI-sent socket may have queued before it counts as behind.
QUEUED_FRAMES = 256
# Catch-ups in a row after which a subscriber accepts a hole the history no longer covers.
CATCH_UP_ROUNDS = 5


def _viewer_fields() -> frozenset[str]:
    """Names of event fields computed by a resolver (which could look at the viewer): a document selecting any
    of them is executed per subscriber by strawberry. Today every event field is plain data."""
    names = set()
    for cls in event_types():
        for field in cls.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            if field.base_resolver is not None:
                names.add(field.graphql_name or field.python_name)
    return frozenset(names)


_VIEWER_FIELDS = _viewer_fields()


@dataclass(frozen=True)
class Shape:
    """A document that is one liveRoomEvents subscription whose result is the same for every viewer."""

    query: str
    document: DocumentNode
    operation: OperationDefinitionNode
    field: FieldNode


_shapes: OrderedDict[tuple[str, str | None], Shape | None] = OrderedDict()


def shape_of(graphql_schema: Any, query: str, operation_name: str | None) -> Shape | None:
    key = (query, operation_name)
    if key in _shapes:
        _shapes.move_to_end(key)
        return _shapes[key]
    shape = _find_shape(graphql_schema, query, operation_name)
    _shapes[key] = shape
    while len(_shapes) > SHAPES_KEPT:
        _shapes.popitem(last=False)
    return shape


class _FieldNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        self.names.add(node.name.value)


def _find_shape(graphql_schema: Any, query: str, operation_name: str | None) -> Shape | None:
    if len(query) > 20_000:
        return None
    try:
        document = parse(query, max_tokens=2000)
    except GraphQLError:
        return None
    if validate(graphql_schema, document):
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    operation = operations[0]
    selections = operation.selection_set.selections
    if operation.operation != OperationType.SUBSCRIPTION or operation.directives or len(selections) != 1:
        return None
    field = selections[0]
    if not isinstance(field, FieldNode) or field.name.value != FIELD or field.directives:
        return None
    names = _FieldNames()
    visit(document, names)
    if names.names & _VIEWER_FIELDS:
        return None
    return Shape(query, document, operation, field)


class _PayloadCache:
    """Each event's `next` payload as JSON bytes (with the message's closing brace), per (operation, variables
    that shape it, event): made once, shared by every broadcast and catch-up in the process."""

    def __init__(self) -> None:
        self._payloads: OrderedDict[tuple[int, str, str, int, int], bytes] = OrderedDict()
        self.executions = 0

    async def tail(
        self, graphql_schema: Any, shape: Shape, variables: dict[str, Any], shared: str, envelope: Envelope
    ) -> bytes:
        key = (id(shape.document), shared, envelope.epoch, first_seq(envelope), envelope.seq)
        found = self._payloads.get(key)
        if found is not None:
            return found
        self.executions += 1
        result = execute(
            graphql_schema,
            shape.document,
            root_value=event_object(envelope),
            context_value=Context(),
            variable_values=variables,
            operation_name=shape.operation.name.value if shape.operation.name else None,
        )
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        body: dict[str, Any] = {"data": result.data}  # type: ignore[union-attr]
        if result.errors:  # type: ignore[union-attr]
            body["errors"] = [e.formatted for e in result.errors]  # type: ignore[union-attr]
        text = orjson.dumps(body) + b"}"
        self._payloads[key] = text
        while len(self._payloads) > PAYLOADS_KEPT:
            self._payloads.popitem(last=False)
        return text


_cache = _PayloadCache()


def executions() -> int:
    """How many event payloads this process executed so far (for tests and benchmarks)."""
    return _cache.executions


# --- sockets ------------------------------------------------------------------------------------------------------


class Sink(Protocol):
    """Where one subscriber's frames go (infra.websocket_frames.FrameWriter on our served protocol)."""

    @property
    def closed(self) -> bool: ...

    def push(self, texts: SharedTexts, prefix: bytes) -> bool:
        """Queue every message of `texts` with `prefix`, in one write; False: none taken (closed, or too far
        behind)."""

    async def drained(self) -> None:
        """Return once the socket can take more (or closed)."""


class AsgiSink:
    """Frames through ASGI `send`, by one drain task while there is anything to send."""

    __slots__ = ("_closed", "_queue", "_send_text", "_task")

    def __init__(self, send_text: Any) -> None:
        self._send_text = send_text
        self._queue: deque[bytes] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def push(self, texts: SharedTexts, prefix: bytes) -> bool:
        if self._closed or len(self._queue) >= QUEUED_FRAMES:
            return False
        self._queue.extend(texts.messages(prefix))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return True

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._send_text(self._queue.popleft().decode())
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._closed = True
            self._queue.clear()
        finally:
            self._task = None

    async def drained(self) -> None:
        while self._queue and not self._closed:  # noqa: ASYNC110 (a rare path: polling is enough)
            await asyncio.sleep(0.05)


# --- broadcasts ---------------------------------------------------------------------------------------------------


class Subscriber:
    __slots__ = ("catching_up", "prefix", "recovery", "sequencer", "sink")

    def __init__(self, prefix: bytes, sink: Sink, sequencer: feed.Sequencer) -> None:
        self.prefix = prefix
        self.sink = sink
        self.sequencer = sequencer
        self.catching_up = True
        self.recovery: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class _Sent:
    first: int
    last: int
    epoch: str
    tail: bytes


def _admit(sub: Subscriber, sents: list[_Sent]) -> bool | None:
    """Hand a subscriber the events it is in line for, all in one write: True all sent (or already had), False
    one was not in line or the socket did not take them, None closed."""
    sequencer = sub.sequencer
    last, epoch = sequencer.last, sequencer.epoch
    tails = []
    in_line = True
    for sent in sents:
        if epoch is not None and sent.epoch != epoch:
            last = 0  # Redis lost the room's counter: numbers start again
        epoch = sent.epoch
        if sent.last <= last:
            continue
        if sent.first != last + 1:
            in_line = False
            break
        tails.append(sent.tail)
        last = sent.last
    if tails and not sub.sink.push(SharedTexts(tails), sub.prefix):
        return None if sub.sink.closed else False
    sequencer.last, sequencer.epoch = last, epoch
    return in_line


class _Run:
    """The events a broadcast is handing out, in order, and the frames from each place in them: a subscriber
    standing just before any of them (nearly all stand before the first, or where the rotation left them
    before newer events joined) takes the rest in one write without looking at each event."""

    __slots__ = ("after", "epoch", "from_place", "sents")

    def __init__(self, sents: list[_Sent]) -> None:
        self.sents: list[_Sent] = []
        self.from_place: dict[int, SharedTexts] = {}
        self.after = 0
        self.epoch = ""
        self.extend(sents)

    def extend(self, sents: list[_Sent]) -> None:
        self.sents.extend(sents)
        self._index()

    def drop(self, count: int) -> None:
        """Forget the first `count` events (every subscriber has them)."""
        del self.sents[:count]
        self._index()

    def _index(self) -> None:
        sents = self.sents
        self.after, self.epoch = sents[-1].last, sents[-1].epoch
        # Only places from which the rest is one run of numbers take the shared frames; anyone standing
        # before a break (Redis lost the counter, a hole the history did not fill) is checked event by event.
        start = len(sents) - 1
        while (
            start and sents[start - 1].last + 1 == sents[start].first and sents[start - 1].epoch == self.epoch
        ):
            start -= 1
        tails = [sent.tail for sent in sents]
        self.from_place = {sents[i].first - 1: SharedTexts(tails[i:]) for i in range(start, len(sents))}


class Broadcast:
    """One room's events for every subscriber in this process holding the same operation and variables."""

    def __init__(
        self,
        key: tuple[Any, ...],
        room_id: int,
        graphql_schema: Any,
        shape: Shape,
        variables: dict[str, Any],
        shared: str,
        batch_comments: bool,
    ) -> None:
        self.key = key
        self.room_id = room_id
        self._schema = graphql_schema
        self._shape = shape
        self._variables = variables
        self._shared = shared
        self.batch_comments = batch_comments
        self.subscribers: dict[Subscriber, None] = {}
        self.recent: deque[_Sent] = deque(maxlen=RECENT_KEPT)
        self._queue: asyncio.Queue[Envelope | None] = asyncio.Queue()
        self._held: list[Envelope] = []
        self._sequencer: feed.Sequencer | None = None
        self._flush: asyncio.TimerHandle | None = None
        self._task = asyncio.create_task(self._run(), name=f"live-broadcast-{room_id}")

    def deliver(self, envelope: Envelope) -> None:
        self._queue.put_nowait(envelope)

    async def tail(self, envelope: Envelope) -> bytes:
        return await _cache.tail(self._schema, self._shape, self._variables, self._shared, envelope)

    async def _run(self) -> None:
        while True:
            sents = await self._arrived([await self._queue.get()])
            if sents:
                await self._rotate(sents)

    async def _arrived(self, arrivals: list[Envelope | None]) -> list[_Sent]:
        """What arrived (`arrivals`, then whatever else is queued, without waiting), put in order, comments held
        for their batch, executed and encoded; remembered in `recent`."""
        while not self._queue.empty():
            arrivals.append(self._queue.get_nowait())
        outgoing: list[Envelope] = []
        try:
            for arrived in arrivals:
                if arrived is None:  # the comment window closed
                    self._flush = None
                    self._take_held(outgoing)
                    continue
                # The numbering starts at the first event heard: a subscriber standing before it catches up
                # on its own.
                if self._sequencer is None:
                    self._sequencer = feed.Sequencer(self.room_id, arrived.seq - 1)
                for envelope in await self._sequencer.admit(arrived):
                    if self.batch_comments and isinstance(envelope.event, CommentPosted):
                        self._held.append(envelope)
                        if self._flush is None:
                            self._flush = asyncio.get_running_loop().call_later(
                                feed.COMMENT_WINDOW, self._queue.put_nowait, None
                            )
                        continue
                    self._take_held(outgoing)  # the comments before it go first, in the same write
                    outgoing.append(envelope)
        except REDIS_ERRORS as exc:  # a hole not filled now is filled by each subscriber's catch-up
            log.warning("room %s: history not read: %s", self.room_id, exc)
        sents = await self._encoded(outgoing)
        self.recent.extend(sents)
        return sents

    def _take_held(self, outgoing: list[Envelope]) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._held:
            outgoing.append(comment_batch(self._held))
            self._held = []

    async def _encoded(self, envelopes: list[Envelope]) -> list[_Sent]:
        sents = []
        for envelope in envelopes:
            try:
                tail = await self.tail(envelope)
            except Exception:  # an event that cannot be executed must not stop the room
                log.exception("room %s: event %s not sent", self.room_id, envelope.seq)
                continue
            sents.append(_Sent(first_seq(envelope), envelope.seq, envelope.epoch, tail))
        return sents

    async def _rotate(self, sents: list[_Sent]) -> None:
        """Go round the subscribers, a slice at a time, handing each everything from where it stands: events
        arriving meanwhile join the same round (the subscribers still ahead of it take them in the same write),
        and another round follows for those it had passed. So a busy room costs each socket one write per round
        however many events it carries, and an event waits at most about one round, not for the round in
        progress to end first."""
        run = _Run(sents)
        rounds = 0
        while True:
            held = len(run.sents)  # every subscriber has at least these once this round is done
            subscribers = list(self.subscribers)
            start = 0
            while start < len(subscribers):
                if start or rounds:
                    await asyncio.sleep(0)  # the loop serves what is ready, then the next slice
                    more = await self._arrived([])
                    if more:
                        run.extend(more)
                deadline = time.perf_counter() + SLICE_SECONDS
                end = start + CLOCK_EVERY
                while True:
                    self._write(subscribers[start:end], run)
                    start = end
                    if start >= len(subscribers) or time.perf_counter() >= deadline:
                        break
                    end += CLOCK_EVERY
            rounds += 1
            if len(run.sents) == held:
                return
            run.drop(held)

    def _write(self, subscribers: list[Subscriber], run: _Run) -> None:
        # The hot loop of a big room: a subscriber standing at a place of the run takes the rest in one push, one
        # already at its end is skipped; anyone else is checked event by event.
        after, epoch, from_place, sents = run.after, run.epoch, run.from_place, run.sents
        for sub in subscribers:
            if sub.catching_up:
                continue
            sequencer = sub.sequencer
            if sequencer.epoch == epoch:
                last = sequencer.last
                if last == after:
                    continue
                texts = from_place.get(last)
                if texts is not None:
                    if sub.sink.push(texts, sub.prefix):
                        sequencer.last = after
                    else:
                        self._recover(sub)
                    continue
            if not _admit(sub, sents):
                self._recover(sub)

    def _recover(self, sub: Subscriber) -> None:
        sub.catching_up = True
        if sub.sink.closed or sub not in self.subscribers:
            return  # the socket is gone: its operation's end takes it out
        sub.recovery = asyncio.create_task(self.catch_up(sub, []))

    async def catch_up(self, sub: Subscriber, missed: list[Envelope]) -> None:
        """Send `sub` what it misses until it stands where the shared path continues, then put it back on it."""
        for rounds in range(CATCH_UP_ROUNDS + 1):
            for envelope in feed.batched(missed) if self.batch_comments else missed:
                sent = _Sent(first_seq(envelope), envelope.seq, envelope.epoch, await self.tail(envelope))
                if sent.last <= sub.sequencer.last and sent.epoch == sub.sequencer.epoch:
                    continue
                if not sub.sink.push(SharedTexts((sent.tail,)), sub.prefix):
                    break
                sub.sequencer.last, sub.sequencer.epoch = sent.last, sent.epoch
            if sub.sink.closed:
                return
            # No await from here to the end of the rejoin: the broadcast cannot send anything in between.
            if self._rejoin(sub, accept_hole=rounds == CATCH_UP_ROUNDS):
                return
            await sub.sink.drained()
            if sub.sink.closed:
                return
            missed = await sub.sequencer.missed()
        self._rejoin(sub, accept_hole=True)

    def _rejoin(self, sub: Subscriber, accept_hole: bool) -> bool:
        for sent in self.recent:
            taken = _admit(sub, [sent])
            if taken is None:
                return True  # closed: nothing more to do
            if not taken:
                if not accept_hole or sub.sink.closed:
                    return False
                sub.sequencer.last = sent.first - 1  # the history lost what lies between: go on from here
                if not _admit(sub, [sent]):
                    return False
        sub.catching_up = False
        return True


class Broadcasts:
    """This process's broadcasts, by room, operation and variables."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[Any, ...], Broadcast] = {}

    def join(self, broadcast_args: dict[str, Any], sub: Subscriber) -> Broadcast:
        key = broadcast_args["key"]
        broadcast = self._by_key.get(key)
        if broadcast is None:
            broadcast = self._by_key[key] = Broadcast(**broadcast_args)
            feed.room_feeds().attach(broadcast.room_id, broadcast, viewer=False)
        broadcast.subscribers[sub] = None
        return broadcast

    def leave(self, broadcast: Broadcast, sub: Subscriber) -> None:
        if sub not in broadcast.subscribers:
            return
        del broadcast.subscribers[sub]
        if sub.recovery is not None:
            sub.recovery.cancel()
        feeds = feed.room_feeds()
        if not broadcast.subscribers and self._by_key.get(broadcast.key) is broadcast:
            del self._by_key[broadcast.key]
            feeds.detach(broadcast.room_id, broadcast, viewer=False)
            broadcast._task.cancel()

    def __len__(self) -> int:
        return len(self._by_key)


_broadcasts: weakref.WeakKeyDictionary[feed.RoomFeeds, Broadcasts] = weakref.WeakKeyDictionary()


def broadcasts() -> Broadcasts:
    """The broadcasts of the running process (one set per event bus, like the room feeds they follow)."""
    feeds = feed.room_feeds()
    found = _broadcasts.get(feeds)
    if found is None:
        found = _broadcasts[feeds] = Broadcasts()
    return found


# --- the two WebSocket protocols ---------------------------------------------------------------------------


def _error(message: str, code: ErrorCode) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code.value}}


@dataclass
class _Request:
    """A subscription this module serves, as read from its subscribe (or legacy start) message."""

    operation_id: str
    shape: Shape
    arguments: dict[str, Any]
    broadcast_args: dict[str, Any]


def _read(handler: Any, operation_id: str, payload: Any) -> _Request | None:
    if not isinstance(payload, dict):
        return None
    query, raw_variables = payload.get("query"), payload.get("variables") or {}
    if not isinstance(query, str) or not isinstance(raw_variables, dict):
        return None
    graphql_schema = handler.schema._schema
    shape = shape_of(graphql_schema, query, payload.get("operationName"))
    if shape is None:
        return None
    coerced = get_variable_values(graphql_schema, shape.operation.variable_definitions or (), raw_variables)
    if isinstance(coerced, list):
        return None  # strawberry reports the variables' errors
    definition = graphql_schema.subscription_type.fields[FIELD]
    arguments = get_argument_values(definition, shape.field, coerced)
    # The variable that carries afterSeq differs per subscriber without changing what an event looks like.
    after_node = next((a.value for a in shape.field.arguments if a.name.value == "afterSeq"), None)
    shared_variables = {
        k: v
        for k, v in coerced.coerced.items()
        if not (isinstance(after_node, VariableNode) and after_node.name.value == k)
    }
    shared = orjson.dumps(shared_variables, option=orjson.OPT_SORT_KEYS, default=str).decode()
    broadcast_args = {
        "room_id": 0,
        "graphql_schema": graphql_schema,
        "shape": shape,
        "variables": raw_variables,
        "shared": shared,
        "batch_comments": bool(arguments.get("batchComments")),
    }
    return _Request(operation_id, shape, arguments, broadcast_args)


async def start(handler: Any, message: dict[str, Any]) -> bool:
    """graphql-transport-ws: serve a `subscribe` message here if it is a plain liveRoomEvents subscription;
    False: strawberry's turn."""
    request = _read(handler, message["id"], message.get("payload") or {})
    if request is None:
        return False
    payload = message.get("payload") or {}
    # The operation's query and variables are never read again: keep nothing per subscriber of them.
    operation = Operation(
        handler, request.operation_id, request.shape.query, None, payload.get("operationName")
    )
    operation.task = asyncio.create_task(_serve(handler, request, legacy=False))
    handler.operations[request.operation_id] = operation
    return True


async def start_legacy(handler: Any, message: dict[str, Any]) -> bool:
    """The legacy graphql-ws protocol: the same for a `start` message (frames `{"type":"data",...}`)."""
    request = _read(handler, message["id"], message.get("payload") or {})
    if request is None:
        return False
    handler.tasks[request.operation_id] = asyncio.create_task(_serve(handler, request, legacy=True))
    return True


def _sink(handler: Any) -> Sink:
    websocket = handler.websocket.ws
    writer = frame_writer(websocket.scope)
    return writer if writer is not None else AsgiSink(websocket.send_text)


async def _refuse(handler: Any, operation_id: str, exc: DomainError, legacy: bool) -> None:
    error = _error(exc.message, exc.code)
    if legacy:
        # What strawberry sends for an error the resolver raised: a data message with it, then complete.
        handler.tasks.pop(operation_id, None)
        await handler.send_message(
            {"type": "data", "id": operation_id, "payload": {"data": None, "errors": [error]}}
        )
        await handler.send_message({"type": "complete", "id": operation_id})
        return
    handler.operations.pop(operation_id, None)
    await handler.send_message({"id": operation_id, "type": "error", "payload": [error]})


async def _serve(handler: Any, request: _Request, legacy: bool) -> None:
    operation_id, arguments = request.operation_id, request.arguments
    try:
        room_id = decode_id(arguments["roomId"], "LiveRoom", "roomId")
        after_seq = arguments.get("afterSeq")
        if after_seq is not None and after_seq < 0:
            raise DomainError(
                ErrorCode.BAD_USER_INPUT, "afterSeq is a sequence number (0 or more)", "afterSeq"
            )
        if not await rooms.room_exists(room_id):
            raise DomainError(ErrorCode.NOT_FOUND, "No such live room", "roomId")
    except DomainError as exc:
        await _refuse(handler, operation_id, exc, legacy)
        return
    broadcast_args = request.broadcast_args
    request.broadcast_args = {}  # its variables are the broadcast's now (if it was made for this subscriber)
    broadcast_args["room_id"] = room_id
    broadcast_args["key"] = (room_id, id(request.shape.document), broadcast_args["shared"])
    kind = b'"type":"data"' if legacy else b'"type":"next"'
    prefix = b'{"id":' + orjson.dumps(operation_id) + b"," + kind + b',"payload":'
    # Placeholder numbering until the history is read; the subscriber is not on the shared path before that.
    sub = Subscriber(prefix, _sink(handler), feed.Sequencer(room_id, 0))
    registry, feeds = broadcasts(), feed.room_feeds()
    broadcast = registry.join(broadcast_args, sub)
    del broadcast_args, request
    try:
        if after_seq is None:
            sub.sequencer.last = await current_seq(room_id)
            missed = []
        else:
            sub.sequencer.last = after_seq
            missed = await sub.sequencer.missed()
        await broadcast.catch_up(sub, missed)
    except BaseException:
        registry.leave(broadcast, sub)
        raise
    if legacy:
        await _follow_legacy(handler, operation_id, registry, feeds, broadcast, sub)
        return
    operation = handler.operations.get(operation_id)
    if operation is None or operation.task is not asyncio.current_task():
        registry.leave(broadcast, sub)  # completed meanwhile
        return
    # Counted once it has its place in the numbering: from here on nothing published can pass it by.
    feeds.viewer_joined(room_id)
    # From here the subscription needs no task of its own (about 1 KB each): strawberry ends an operation by
    # cancelling `operation.task` (and awaits it at shutdown), which a plain future does as well.
    ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ended.add_done_callback(functools.partial(_ended, registry, feeds, broadcast, sub))
    operation.task = ended  # type: ignore[assignment]


def _ended(
    registry: Broadcasts,
    feeds: feed.RoomFeeds,
    broadcast: Broadcast,
    sub: Subscriber,
    _: asyncio.Future[None],
) -> None:
    registry.leave(broadcast, sub)
    feeds.viewer_left(broadcast.room_id)


async def _follow_legacy(
    handler: Any,
    operation_id: str,
    registry: Broadcasts,
    feeds: feed.RoomFeeds,
    broadcast: Broadcast,
    sub: Subscriber,
) -> None:
    """The legacy protocol answers `stop` with `complete`, so its subscription keeps a task that says so."""
    feeds.viewer_joined(broadcast.room_id)
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await handler.send_message({"type": "complete", "id": operation_id})
    finally:
        registry.leave(broadcast, sub)
        feeds.viewer_left(broadcast.room_id)
        if handler.tasks.get(operation_id) is asyncio.current_task():
            del handler.tasks[operation_id]
