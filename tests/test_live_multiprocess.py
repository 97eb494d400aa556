"""A live room across two server processes on the shared PostgreSQL and Redis: what staff do through B reaches
viewers subscribed on A, in order; a viewer who reconnects to the other process with the last sequence number
she saw gets exactly what she missed; viewers on both processes are counted together."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

import tests.test_multiprocess as multiprocess
from infra.clock import now
from models import Product, ProductStatus, Sku
from schema.node import encode_id
from tests.server_process import ServerProcess
from tests.test_live_rooms import ADD, GO_LIVE, PIN, SCHEDULE, UPDATE

pytestmark = pytest.mark.realservices

# The two server processes and the staff token of tests/test_multiprocess.py.
servers = multiprocess.servers
staff_token = multiprocess.staff_token

EVENTS = """subscription($roomId: ID!, $afterSeq: Int) { liveRoomEvents(roomId: $roomId, afterSeq: $afterSeq) {
  __typename ... on LiveEvent { seq }
  ... on ProductPinned { roomProductId livePrice stock }
  ... on PriceChanged { livePrice }
  ... on ViewerCount { count }
} }"""
DEADLINE = 2.0


async def watch(server: ServerProcess, room_gid: str, after_seq: int | None = None) -> ClientConnection:
    ws = await connect(server.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=5.0)
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    payload = {"query": EVENTS, "variables": {"roomId": room_gid, "afterSeq": after_seq}}
    await ws.send(json.dumps({"id": "room", "type": "subscribe", "payload": payload}))
    return ws


async def next_event(
    ws: ClientConnection, within: float = DEADLINE, skip_viewers: bool = True
) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] != "next":
                assert message["type"] in ("ping", "pong"), message
                continue
            event: dict[str, Any] = message["payload"]["data"]["liveRoomEvents"]
            if skip_viewers and event["__typename"] == "ViewerCount":
                continue
            return event


async def subscribed(server: ServerProcess, room_gid: str) -> None:
    """The subscription is in place once the room's viewer count includes it (each process writes its count
    every 2 s), or, sooner, once an event published now reaches it; here: wait for the count."""
    query = "query($id: ID!) { liveRoom(id: $id) { viewerCount } }"
    async with asyncio.timeout(10):
        while (await server.gql(query, {"id": room_gid}))["liveRoom"]["viewerCount"] < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.1)


@pytest.fixture
async def on_air(
    servers: tuple[ServerProcess, ServerProcess], staff_token: str
) -> AsyncIterator[dict[str, Any]]:
    _, b = servers
    start = now()
    room_input = {
        "title": "双进程直播",
        "anchorName": "小林",
        "scheduledStart": start.isoformat(),
        "scheduledEnd": (start + timedelta(hours=1)).isoformat(),
    }
    room = (await b.gql(SCHEDULE, {"input": room_input}, staff_token))["liveRoomSchedule"]["room"]
    await b.gql(GO_LIVE, {"id": room["id"]}, staff_token)
    sku = await Sku.filter(product__status=ProductStatus.ON_SALE, stock__gte=5).order_by("-id").first()
    assert sku is not None and await Product.exists(id=sku.product_id)
    add = {"roomId": room["id"], "skuId": encode_id("Sku", sku.id), "livePrice": 990, "allotment": 5}
    added = (await b.gql(ADD, {"input": add}, staff_token))["liveRoomProductAdd"]
    assert added["errors"] == [], added
    yield {"id": room["id"], "product": added["roomProduct"]["id"]}


async def test_staff_on_b_reach_viewers_on_a_in_order_and_a_reconnect_to_b_gets_what_was_missed(
    servers: tuple[ServerProcess, ServerProcess],
    staff_token: str,
    on_air: dict[str, Any],
) -> None:
    a, b = servers
    viewer = await watch(a, on_air["id"])
    await subscribed(a, on_air["id"])

    started = time.monotonic()
    await b.gql(PIN, {"roomId": on_air["id"], "pid": on_air["product"]}, staff_token)
    pinned = await next_event(viewer)
    pin_latency = time.monotonic() - started
    assert (pinned["__typename"], pinned["roomProductId"], pinned["livePrice"]) == (
        "ProductPinned",
        on_air["product"],
        990,
    )
    for price in (890, 790):
        await b.gql(UPDATE, {"id": on_air["product"], "input": {"livePrice": price}}, staff_token)
    changes = [await next_event(viewer), await next_event(viewer)]
    assert [(e["__typename"], e["livePrice"]) for e in changes] == [
        ("PriceChanged", 890),
        ("PriceChanged", 790),
    ]
    assert [e["seq"] for e in changes] == [pinned["seq"] + 1, pinned["seq"] + 2]
    multiprocess.MEASURED["live pin B→A"] = f"{pin_latency * 1000:.0f} ms"

    # Her phone drops the connection; two more changes happen; she comes back through the other process.
    last_seen = changes[-1]["seq"]
    await viewer.close()
    for price in (690, 590):
        await b.gql(UPDATE, {"id": on_air["product"], "input": {"livePrice": price}}, staff_token)
    back = await watch(b, on_air["id"], after_seq=last_seen)
    missed = [await next_event(back), await next_event(back)]
    assert [(e["seq"], e["livePrice"]) for e in missed] == [(last_seen + 1, 690), (last_seen + 2, 590)]
    await a.gql(UPDATE, {"id": on_air["product"], "input": {"livePrice": 490}}, staff_token)
    live = await next_event(back)  # (a ViewerCount may come between: she is a viewer again)
    assert live["livePrice"] == 490 and live["seq"] > last_seen + 2
    await back.close()


async def test_viewers_on_both_processes_are_counted_together(
    servers: tuple[ServerProcess, ServerProcess],
    on_air: dict[str, Any],
) -> None:
    a, b = servers
    on_a, on_b = await watch(a, on_air["id"]), await watch(b, on_air["id"])
    async with asyncio.timeout(10):
        while (await next_event(on_a, within=10, skip_viewers=False)).get("count") != 2:
            pass
    query = "query($id: ID!) { liveRoom(id: $id) { viewerCount } }"
    assert (await a.gql(query, {"id": on_air["id"]}))["liveRoom"]["viewerCount"] == 2
    await on_b.close()
    async with asyncio.timeout(10):
        while (await next_event(on_a, within=10, skip_viewers=False)).get("count") != 1:
            pass
    await on_a.close()


async def test_every_viewer_on_either_process_gets_the_same_text_frame_with_her_own_id(
    servers: tuple[ServerProcess, ServerProcess],
    staff_token: str,
    on_air: dict[str, Any],
) -> None:
    a, b = servers
    query = EVENTS.replace("afterSeq: $afterSeq)", "afterSeq: $afterSeq, batchComments: true)")
    viewers = []
    for i, server in enumerate([a, b] * 3):
        ws = await connect(
            server.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=5.0
        )
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": query, "variables": {"roomId": on_air["id"]}}
        await ws.send(json.dumps({"id": f"viewer-{i}", "type": "subscribe", "payload": payload}))
        viewers.append(ws)
    count = "query($id: ID!) { liveRoom(id: $id) { viewerCount } }"
    async with asyncio.timeout(10):
        while (await a.gql(count, {"id": on_air["id"]}))["liveRoom"]["viewerCount"] < 6:  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    await a.gql(UPDATE, {"id": on_air["product"], "input": {"livePrice": 870}}, staff_token)
    frames = set()
    for i, ws in enumerate(viewers):
        async with asyncio.timeout(DEADLINE):
            while True:
                raw = await ws.recv()
                assert isinstance(raw, str), "text frames only"
                message = json.loads(raw)
                if message["type"] == "next" and message["payload"]["data"]["liveRoomEvents"].get(
                    "livePrice"
                ):
                    break
        assert message["id"] == f"viewer-{i}"
        assert message["payload"]["data"]["liveRoomEvents"]["livePrice"] == 870
        frames.add(raw.replace(f'"viewer-{i}"', '"ID"'))
    assert len(frames) == 1, "viewers on A and on B got the same bytes but for their id"
    for ws in viewers:
        await ws.close()
