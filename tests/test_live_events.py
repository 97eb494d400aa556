"""A room's event stream: numbered per room, a bounded history in Redis, and a viewer whose phone lost the
network for a moment gets exactly what she missed when she comes back with the last number she saw."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from infra.clock import now
from infra.runtime import Runtime
from infra.websocket_frames import SharedTexts, uvicorn_websocket_options
from models import LiveRoom
from schema.node import encode_id
from services.live import events as ev
from services.live import feed
from tests.in_loop_server import in_loop_server
from tests.test_members import serving

EVENTS = """
subscription($roomId: ID!, $afterSeq: Int) {
  liveRoomEvents(roomId: $roomId, afterSeq: $afterSeq) {
    __typename
    ... on LiveEvent { seq roomId }
    ... on LiveStockChanged { skuId stock }
    ... on CommentPosted { commentId nickname text }
    ... on ProductPinned { roomProductId title livePrice stock }
    ... on ViewerCount { count }
  }
}"""


async def new_room(title: str = "春季新品直播") -> LiveRoom:
    start = now()
    return await LiveRoom.create(
        title=title, anchor_name="小林", scheduled_start=start, scheduled_end=start + timedelta(hours=2)
    )


def stock(units: int) -> ev.StockChanged:
    return ev.StockChanged(room_product_id=1, product_id=2, sku_id=3, stock=units)


@pytest.fixture(autouse=True)
def no_viewer_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Viewer counts are written when a test says so, not every few seconds into the numbered streams."""
    monkeypatch.setattr(feed, "VIEWER_TICK", 3600.0)


@asynccontextmanager
async def serving_frames(app: object) -> AsyncIterator[str]:
    """The app on a real socket, with uvicorn's WebSocket settings of `main.py serve` (our frame writer)."""
    async with in_loop_server(app, log_level="warning", **uvicorn_websocket_options()) as port:
        yield f"ws://127.0.0.1:{port}/graphql"


@pytest.fixture(params=["frames", "asgi"])
async def ws_url(app: object, runtime: Runtime, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """Served as `main.py serve` does (frames straight onto the transport), and by a plain uvicorn (ASGI send)."""
    async with serving_frames(app) if request.param == "frames" else serving(app) as url:
        yield url


async def open_room(
    url: str, room: LiveRoom, after_seq: int | None = None, op_id: str = "1"
) -> ClientConnection:
    ws = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")])
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    variables = {"roomId": encode_id("LiveRoom", room.id), "afterSeq": after_seq}
    await ws.send(
        json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": EVENTS, "variables": variables}})
    )
    return ws


async def next_event(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    while True:
        async with asyncio.timeout(within):
            message = json.loads(await ws.recv())
        if message["type"] == "next":
            assert "errors" not in message["payload"], message
            return message["payload"]["data"]["liveRoomEvents"]  # type: ignore[no-any-return]
        if message["type"] not in ("ping", "pong"):
            raise AssertionError(message)


async def nothing_more(ws: ClientConnection, within: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        await next_event(ws, within)


async def subscribed(room: LiveRoom, count: int = 1) -> None:
    """The server holds `count` subscribers of the room (so nothing published next can be missed)."""
    async with asyncio.timeout(5):
        while feed.room_feeds().local_viewers(room.id) < count:  # noqa: ASYNC110 (server-side state)
            await asyncio.sleep(0.01)


async def test_each_room_numbers_its_own_events_and_keeps_only_the_latest(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    morning, evening = await new_room("早场"), await new_room("晚场")
    monkeypatch.setattr(ev, "HISTORY_SIZE", 3)
    seqs = [await ev.publish_room_event(morning.id, stock(units)) for units in (50, 49, 48, 47, 46)]
    assert seqs == [1, 2, 3, 4, 5]
    assert await ev.publish_room_event(evening.id, stock(10)) == 1
    assert await ev.current_seq(morning.id) == 5

    kept = await ev.history_since(morning.id, 0)
    assert [e.seq for e in kept] == [3, 4, 5]
    assert [e.event for e in kept] == [stock(48), stock(47), stock(46)]
    assert {e.room_id for e in kept} == {morning.id}
    assert [e.seq for e in await ev.history_since(morning.id, 4)] == [5]


async def test_a_viewer_who_reconnects_with_the_last_seq_gets_what_she_missed_then_live_events(
    ws_url: str,
) -> None:
    room = await new_room()
    ws = await open_room(ws_url, room)
    await subscribed(room)
    for units in (30, 29, 28):
        await ev.publish_room_event(room.id, stock(units))
    seen = [await next_event(ws) for _ in range(3)]
    assert [(e["seq"], e["stock"]) for e in seen] == [(1, 30), (2, 29), (3, 28)]
    assert seen[0]["__typename"] == "LiveStockChanged"
    assert seen[0]["roomId"] == encode_id("LiveRoom", room.id)
    assert seen[0]["skuId"] == encode_id("Sku", 3)
    await ws.close()

    # Her phone switches networks; meanwhile two people buy and someone comments.
    await ev.publish_room_event(room.id, stock(27))
    posted = ev.CommentPosted(comment_id=7, nickname="阿May", avatar_url="", text="好看!", posted_at=now())
    await ev.publish_room_event(room.id, posted)
    await ev.publish_room_event(room.id, stock(26))

    ws = await open_room(ws_url, room, after_seq=seen[-1]["seq"])
    missed = [await next_event(ws) for _ in range(3)]
    assert [e["seq"] for e in missed] == [4, 5, 6]
    assert missed[1] == {
        "__typename": "CommentPosted",
        "seq": 5,
        "roomId": encode_id("LiveRoom", room.id),
        "commentId": encode_id("LiveComment", 7),
        "nickname": "阿May",
        "text": "好看!",
    }
    await subscribed(room)
    await ev.publish_room_event(room.id, stock(25))
    assert (await next_event(ws))["seq"] == 7
    await nothing_more(ws)
    await ws.close()


async def test_without_after_seq_a_viewer_gets_only_what_happens_from_now_on(ws_url: str) -> None:
    room = await new_room()
    await ev.publish_room_event(room.id, stock(9))
    ws = await open_room(ws_url, room)
    await subscribed(room)
    await ev.publish_room_event(room.id, stock(8))
    assert (await next_event(ws))["seq"] == 2
    await nothing_more(ws)
    await ws.close()


async def test_an_event_the_bus_lost_is_read_back_from_the_history_and_none_comes_twice(
    runtime: Runtime,
) -> None:
    room = await new_room()
    sequencer, missed = await feed.Sequencer.start(room.id, None)
    assert missed == []
    for units in (5, 4, 3):
        await ev.publish_room_event(room.id, stock(units))
    first, second, third = await ev.history_since(room.id, 0)

    assert await sequencer.admit(first) == [first]
    # The second never arrived live (pub/sub dropped it): the third brings it along from the history.
    assert await sequencer.admit(third) == [second, third]
    assert await sequencer.admit(second) == []
    assert await sequencer.admit(third) == []


async def test_when_redis_lost_the_room_numbering_starts_again_and_viewers_follow(runtime: Runtime) -> None:
    room = await new_room()
    for units in (5, 4):
        await ev.publish_room_event(room.id, stock(units))
    sequencer, _ = await feed.Sequencer.start(room.id, 2)
    await ev.publish_room_event(room.id, stock(3))
    (third,) = await ev.history_since(room.id, 2)
    assert await sequencer.admit(third) == [third]

    await runtime.redis.delete(*(f"live:room:{room.id}:{k}" for k in ("seq", "events", "epoch")))
    await ev.publish_room_event(room.id, stock(2))
    (restarted,) = await ev.history_since(room.id, 0)
    assert restarted.seq == 1 and restarted.epoch != third.epoch
    assert await sequencer.admit(restarted) == [restarted]
    # A page that comes back with a number from before the loss gets everything the room kept since.
    assert [e.seq for e in await ev.history_since(room.id, 3)] == [1]


async def test_an_unknown_room_or_a_negative_seq_is_refused_with_a_code(ws_url: str) -> None:
    room = await new_room()
    await room.delete()
    ws = await open_room(ws_url, room)
    async with asyncio.timeout(5):
        message = json.loads(await ws.recv())
    assert message["type"] in ("next", "error")
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    await ws.close()

    live = await new_room()
    ws = await open_room(ws_url, live, after_seq=-1)
    async with asyncio.timeout(5):
        message = json.loads(await ws.recv())
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    await ws.close()


async def test_viewers_are_counted_and_a_change_of_the_count_is_announced_once(ws_url: str) -> None:
    room = await new_room()
    first, second = await open_room(ws_url, room), await open_room(ws_url, room)
    await subscribed(room, 2)
    feeds = feed.room_feeds()
    await feeds.count_viewers_once([room.id])
    assert await feed.viewer_count(room.id) == 2
    counted = await next_event(first)
    assert (counted["__typename"], counted["seq"]) == ("ViewerCount", 1)
    await feeds.count_viewers_once([room.id])  # the same count: nothing new to say
    await nothing_more(first)
    await second.close()
    async with asyncio.timeout(5):
        while feeds.local_viewers(room.id) != 1:  # noqa: ASYNC110 (server-side state)
            await asyncio.sleep(0.01)
    await feeds.count_viewers_once([room.id])
    assert await feed.viewer_count(room.id) == 1
    await first.close()


async def test_an_event_is_executed_once_per_process_and_every_viewer_gets_the_same_text_frame_with_her_id(
    ws_url: str,
) -> None:
    from schema import live_fanout

    room = await new_room()
    viewers = [await open_room(ws_url, room, op_id=f"viewer-{i}") for i in range(12)]
    await subscribed(room, 12)
    before = live_fanout.executions()
    await ev.publish_room_event(room.id, stock(12))
    frames = []
    for i, ws in enumerate(viewers):
        async with asyncio.timeout(5):
            raw = await ws.recv()
        assert isinstance(raw, str), "a text frame (browsers' graphql-ws client refuses binary ones)"
        message = json.loads(raw)
        assert (message["id"], message["type"]) == (f"viewer-{i}", "next")
        assert message["payload"]["data"]["liveRoomEvents"]["stock"] == 12
        frames.append(raw.replace(f'"viewer-{i}"', '"ID"'))
    assert len(set(frames)) == 1, "the same bytes for everyone but the id"
    assert live_fanout.executions() == before + 1
    # Coming back after seq 0 replays the same event from the history: still the one execution.
    late = await open_room(ws_url, room, after_seq=0)
    assert (await next_event(late))["seq"] == 1
    assert live_fanout.executions() == before + 1
    for ws in [*viewers, late]:
        await ws.close()


BATCHED = """
subscription($roomId: ID!, $afterSeq: Int) {
  liveRoomEvents(roomId: $roomId, afterSeq: $afterSeq, batchComments: true) {
    __typename
    ... on LiveEvent { seq }
    ... on LiveStockChanged { stock }
    ... on CommentsPosted { comments { seq commentId text } }
  }
}"""


async def open_batched(url: str, room: LiveRoom, after_seq: int | None = None) -> ClientConnection:
    ws = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")])
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    variables = {"roomId": encode_id("LiveRoom", room.id), "afterSeq": after_seq}
    await ws.send(
        json.dumps({"id": "b", "type": "subscribe", "payload": {"query": BATCHED, "variables": variables}})
    )
    return ws


def comment(comment_id: int) -> ev.CommentPosted:
    return ev.CommentPosted(
        comment_id=comment_id, nickname="阿May", avatar_url="", text=f"第{comment_id}条", posted_at=now()
    )


async def test_a_page_that_asks_for_batches_gets_comments_together_and_nothing_out_of_order(
    ws_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        feed, "COMMENT_WINDOW", 1.0
    )  # wide enough that a busy test machine keeps them together
    room = await new_room()
    batched, single = await open_batched(ws_url, room), await open_room(ws_url, room)
    await subscribed(room, 2)
    for comment_id in (1, 2):
        await ev.publish_room_event(room.id, comment(comment_id))
    await ev.publish_room_event(room.id, stock(40))  # sends the comments before it at once
    for comment_id in (3, 4, 5):
        await ev.publish_room_event(room.id, comment(comment_id))

    first = await next_event(batched)
    assert first["__typename"] == "CommentsPosted"
    assert (first["seq"], [c["seq"] for c in first["comments"]]) == (2, [1, 2])
    assert first["comments"][0]["commentId"] == encode_id("LiveComment", 1)
    assert await next_event(batched) == {"__typename": "LiveStockChanged", "seq": 3, "stock": 40}
    # The last three have no event after them: they go when the window closes.
    last = await next_event(batched, within=3.0)
    assert (last["seq"], [c["text"] for c in last["comments"]]) == (6, ["第3条", "第4条", "第5条"])
    await nothing_more(batched)
    # A page that did not ask still gets one CommentPosted each.
    assert [(await next_event(single))["__typename"] for _ in range(6)] == ["CommentPosted"] * 2 + [
        "LiveStockChanged"
    ] + ["CommentPosted"] * 3
    await batched.close()

    # Back after seq 3: the missed comments come from the history, batched too, then live events.
    again = await open_batched(ws_url, room, after_seq=3)
    replayed = await next_event(again)
    assert (replayed["__typename"], replayed["seq"], len(replayed["comments"])) == ("CommentsPosted", 6, 3)
    await subscribed(room, 2)
    await ev.publish_room_event(room.id, stock(39))
    assert (await next_event(again))["seq"] == 7
    await nothing_more(again)
    for ws in (again, single):
        await ws.close()


async def test_an_event_the_bus_lost_reaches_every_viewer_in_order_from_the_history(
    ws_url: str, runtime: Runtime
) -> None:
    room = await new_room()
    viewers = [await open_room(ws_url, room, op_id=str(i)) for i in range(3)]
    await subscribed(room, 3)
    await ev.publish_room_event(room.id, stock(20))
    # Numbered and kept, but pub/sub never carried it (what a dropped message looks like to a process).
    seq = await runtime.redis.incr(f"live:room:{room.id}:seq")
    epoch = (await runtime.redis.get(f"live:room:{room.id}:epoch")).decode()
    lost = {"seq": seq, "epoch": epoch, "type": "StockChanged", "roomId": room.id, "at": now().isoformat()}
    lost["data"] = stock(19).data()
    await runtime.redis.rpush(f"live:room:{room.id}:events", json.dumps(lost))
    await ev.publish_room_event(room.id, stock(18))
    for ws in viewers:
        assert [(e["seq"], e["stock"]) for e in [await next_event(ws) for _ in range(3)]] == [
            (1, 20),
            (2, 19),
            (3, 18),
        ]
        await nothing_more(ws)
        await ws.close()


async def test_a_viewer_who_leaves_is_forgotten_and_the_room_stops_being_followed(ws_url: str) -> None:
    from schema import live_fanout

    room = await new_room()
    before = len(live_fanout.broadcasts())
    first, second = await open_room(ws_url, room, op_id="a"), await open_room(ws_url, room, op_id="b")
    await subscribed(room, 2)
    await first.send(json.dumps({"id": "a", "type": "complete"}))
    await ev.publish_room_event(room.id, stock(1))
    assert (await next_event(second))["stock"] == 1
    await nothing_more(first)
    await first.close()
    await second.close()
    async with asyncio.timeout(5):
        while feed.room_feeds().local_viewers(room.id) or len(live_fanout.broadcasts()) != before:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_the_legacy_protocol_shares_the_same_execution_and_answers_stop_with_complete(
    ws_url: str,
) -> None:
    from schema import live_fanout

    room = await new_room()
    modern = await open_room(ws_url, room, op_id="m")
    legacy = []
    for i in range(3):
        ws = await connect(ws_url, subprotocols=[Subprotocol("graphql-ws")])
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        variables = {"roomId": encode_id("LiveRoom", room.id)}
        await ws.send(
            json.dumps(
                {"id": f"old-{i}", "type": "start", "payload": {"query": EVENTS, "variables": variables}}
            )
        )
        legacy.append(ws)
    await subscribed(room, 4)
    before = live_fanout.executions()
    await ev.publish_room_event(room.id, stock(7))
    assert (await next_event(modern))["stock"] == 7
    frames = set()
    for i, ws in enumerate(legacy):
        while True:
            async with asyncio.timeout(5):
                raw = await ws.recv()
            assert isinstance(raw, str)
            message = json.loads(raw)
            if message["type"] != "ka":
                break
        assert (message["type"], message["id"]) == ("data", f"old-{i}")
        assert message["payload"]["data"]["liveRoomEvents"]["stock"] == 7
        frames.add(raw.replace(f'"old-{i}"', '"ID"'))
    assert len(frames) == 1
    assert live_fanout.executions() == before + 1, "one execution for both protocols"

    await legacy[0].send(json.dumps({"id": "old-0", "type": "stop"}))
    while True:
        async with asyncio.timeout(5):
            message = json.loads(await legacy[0].recv())
        if message["type"] != "ka":
            break
    assert message == {"type": "complete", "id": "old-0"}
    async with asyncio.timeout(5):
        while feed.room_feeds().local_viewers(room.id) != 3:  # noqa: ASYNC110 (server-side state)
            await asyncio.sleep(0.01)
    for ws in [modern, *legacy]:
        await ws.close()


async def test_a_subscription_strawberry_runs_batches_comments_the_same_way(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path of SSE, multipart and any other shape of operation: services.live.feed.room_events."""
    monkeypatch.setattr(feed, "COMMENT_WINDOW", 1.0)
    room = await new_room()
    stream = feed.room_events(room.id, None, batch_comments=True)
    first = asyncio.ensure_future(anext(stream))
    await subscribed(room)
    await ev.publish_room_event(room.id, comment(1))
    await ev.publish_room_event(room.id, comment(2))
    await ev.publish_room_event(room.id, stock(5))
    await ev.publish_room_event(room.id, comment(3))
    async with asyncio.timeout(5):
        batch = await first
        after = await anext(stream)
        last = await anext(stream)
    assert isinstance(batch.event, ev.CommentsPosted) and batch.seq == 2
    assert [e.seq for e in batch.event.comments] == [1, 2]
    assert (after.seq, after.event) == (3, stock(5))
    assert isinstance(last.event, ev.CommentsPosted) and [e.seq for e in last.event.comments] == [4]
    await stream.aclose()


class FullSocket:
    """A socket (the Sink a broadcast writes to) whose send buffer is full while `full` is set."""

    def __init__(self) -> None:
        self.full = False
        self.closed = False
        self.received: list[dict[str, Any]] = []

    def push(self, texts: SharedTexts, prefix: bytes) -> bool:
        if self.full:
            return False
        self.received.extend(json.loads(m) for m in texts.messages(prefix))
        return True

    async def drained(self) -> None:
        while self.full:  # noqa: ASYNC110 (a test's socket)
            await asyncio.sleep(0.01)


def broadcast_args(label: str, room: LiveRoom) -> dict[str, Any]:
    """What a room's broadcast of EVENTS (one execution for every viewer) is opened with."""
    from schema import live_fanout
    from schema.root import schema

    shape = live_fanout.shape_of(schema._schema, EVENTS, None)
    assert shape is not None
    variables = {"roomId": encode_id("LiveRoom", room.id)}
    return {
        "key": (label, room.id),
        "room_id": room.id,
        "graphql_schema": schema._schema,
        "shape": shape,
        "variables": variables,
        "shared": json.dumps(variables),
        "batch_comments": False,
    }


async def test_a_viewer_whose_socket_falls_behind_catches_up_from_the_history_in_order(
    runtime: Runtime,
) -> None:
    from schema import live_fanout

    room = await new_room()
    args = broadcast_args("test", room)
    registry = live_fanout.broadcasts()
    slow, steady = FullSocket(), FullSocket()
    subs = [
        live_fanout.Subscriber(b'{"id":"' + name + b'","payload":', sink, feed.Sequencer(room.id, 0))
        for name, sink in ((b"slow", slow), (b"steady", steady))
    ]
    broadcast = registry.join(args, subs[0])
    registry.join(args, subs[1])
    for sub in subs:
        await broadcast.catch_up(sub, [])

    async def published(count: int) -> None:
        for _ in range(count):
            await ev.publish_room_event(room.id, stock(await ev.current_seq(room.id)))
        async with asyncio.timeout(5):
            while len(steady.received) < await ev.current_seq(room.id):  # noqa: ASYNC110 (the steady socket)
                await asyncio.sleep(0.01)

    await published(3)
    slow.full = True  # her phone's network stalls: three events find the socket full
    await published(3)
    assert [sub.catching_up for sub in subs] == [True, False]
    slow.full = False  # it drains: she gets what she missed from the history, then rejoins the shared path
    async with asyncio.timeout(5):
        while subs[0].catching_up:  # noqa: ASYNC110 (the broadcast's state)
            await asyncio.sleep(0.01)
    await published(2)
    for sink in (slow, steady):
        seqs = [m["payload"]["data"]["liveRoomEvents"]["seq"] for m in sink.received]
        assert seqs == list(range(1, 9)), "every event once, in order"
    for sub in subs:
        registry.leave(broadcast, sub)


class RecordingSocket:
    """A socket that keeps each write's sequence numbers, and can run something on its first write."""

    closed = False

    def __init__(self, on_first_write: Any = None) -> None:
        self.writes: list[list[int]] = []
        self.on_first_write = on_first_write

    def push(self, texts: SharedTexts, prefix: bytes) -> bool:
        self.writes.append(
            [json.loads(m)["payload"]["data"]["liveRoomEvents"]["seq"] for m in texts.messages(prefix)]
        )
        if self.on_first_write is not None:
            self.on_first_write, run = None, self.on_first_write
            run()
        return True

    async def drained(self) -> None:
        return None


async def test_an_event_arriving_while_a_big_room_is_written_joins_the_round_in_progress(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The viewers the round has not reached yet take the new event in the same write as the one before; the
    viewers it had passed get it in a second round; every viewer gets each event once, in order."""
    from schema import live_fanout

    monkeypatch.setattr(live_fanout, "SLICE_SECONDS", 0.0)  # a yield to the loop between any two viewers
    monkeypatch.setattr(live_fanout, "CLOCK_EVERY", 1)
    room = await new_room()
    args = broadcast_args("rounds", room)

    def envelope(seq: int) -> ev.Envelope:
        return ev.Envelope(seq=seq, epoch="e1", room_id=room.id, at=now(), event=stock(seq))

    registry = live_fanout.broadcasts()
    sockets = [RecordingSocket(), RecordingSocket(), RecordingSocket()]
    subs = [
        live_fanout.Subscriber(b'{"id":"%d","payload":' % i, sink, feed.Sequencer(room.id, 0))
        for i, sink in enumerate(sockets)
    ]
    broadcast = registry.join(args, subs[0])
    for sub in subs[1:]:
        registry.join(args, sub)
    for sub in subs:
        await broadcast.catch_up(sub, [])
    sockets[0].on_first_write = lambda: broadcast.deliver(envelope(2))  # staff act while the room is written
    broadcast.deliver(envelope(1))
    async with asyncio.timeout(5):
        while [sum(len(w) for w in s.writes) for s in sockets] != [2, 2, 2]:  # noqa: ASYNC110 (test sockets)
            await asyncio.sleep(0.01)
    assert [s.writes for s in sockets] == [[[1], [2]], [[1, 2]], [[1, 2]]]
    for sub in subs:
        registry.leave(broadcast, sub)
