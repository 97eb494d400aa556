"""A live session run through the API: staff schedule a room, add products at live prices, go live, pin one
(讲解中), change its price, pause and end; shoppers list and open rooms and buy at the live price only while
the room is live, never past the room's allotment; a cancelled order gives its quantity back; WeChat's own
live rooms are copied over when the shop syncs them. Every step reaches the room's event stream."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import Any

import pytest

from infra.clock import now
from infra.runtime import current_runtime
from models import ActorKind, LiveRoom, LiveRoomProduct, Order, OrderLine, OrderStatus, StaffRole
from schema.node import decode_id, encode_id
from services.access.staff import create_staff
from services.live import feed, products, rooms
from services.live.events import Envelope
from services.orders import states
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku
from tests.test_checkout import PLACE
from tests.wechat_standin import WeChatStandIn

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
ROOM_FIELDS = """id title anchorName status coverUrl startedAt endedAt eventSeq
  pinnedProduct { id livePrice stock }
  products { id livePrice originalPrice allotment sold stock pinned sku { id } product { title } }"""
SCHEDULE = f"""mutation($input: LiveRoomInput!) {{ liveRoomSchedule(input: $input) {{ room {{ {ROOM_FIELDS} }} {ERRORS} }} }}"""
GO_LIVE = f"mutation($id: ID!) {{ liveRoomGoLive(id: $id) {{ room {{ status startedAt }} {ERRORS} }} }}"
PAUSE = f"mutation($id: ID!) {{ liveRoomPause(id: $id) {{ room {{ status }} {ERRORS} }} }}"
END = f"mutation($id: ID!) {{ liveRoomEnd(id: $id) {{ room {{ status endedAt }} {ERRORS} }} }}"
ADD = f"""mutation($input: LiveRoomProductInput!) {{ liveRoomProductAdd(input: $input) {{
  roomProduct {{ id livePrice allotment stock }} {ERRORS} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: LiveRoomProductUpdateInput!) {{ liveRoomProductUpdate(id: $id, input: $input) {{
  roomProduct {{ id livePrice allotment stock }} {ERRORS} }} }}"""
PIN = f"""mutation($roomId: ID!, $pid: ID) {{ liveRoomPin(roomId: $roomId, roomProductId: $pid) {{
  room {{ pinnedProduct {{ id }} }} {ERRORS} }} }}"""
ROOM = f"query($id: ID!) {{ liveRoom(id: $id) {{ {ROOM_FIELDS} }} }}"
ROOMS = """query($status: LiveRoomStatus) { liveRooms(status: $status, first: 50) {
  totalCount edges { node { id title status } } pageInfo { hasNextPage } } }"""


@pytest.fixture
async def operator() -> str:
    _, token = await create_staff(f"live-op-{secrets.token_hex(3)}", StaffRole.OPERATOR)
    return token


def room_input(title: str = "春装上新直播") -> dict[str, Any]:
    start = now() + timedelta(minutes=5)
    return {
        "title": title,
        "anchorName": "小林",
        "coverUrl": "https://img.example.com/cover.jpg",
        "scheduledStart": start.isoformat(),
        "scheduledEnd": (start + timedelta(hours=2)).isoformat(),
    }


async def schedule(client: Any, token: str, title: str = "春装上新直播") -> dict[str, Any]:
    answer = (await gql(client, SCHEDULE, {"input": room_input(title)}, token))["data"]["liveRoomSchedule"]
    assert answer["errors"] == [], answer
    return answer["room"]  # type: ignore[no-any-return]


async def ok(client: Any, query: str, variables: dict[str, Any], token: str, name: str) -> dict[str, Any]:
    answer = (await gql(client, query, variables, token))["data"][name]
    assert answer["errors"] == [], answer
    return answer  # type: ignore[no-any-return]


async def place(client: Any, token: str, variables: dict[str, Any]) -> dict[str, Any]:
    """placeOrder; without WeChat Pay configured the order is written and only its pay parameters are missing."""
    answer = (await gql(client, PLACE, variables, token))["data"]["placeOrder"]
    await products.settle()
    return answer  # type: ignore[no-any-return]


def codes(answer: dict[str, Any]) -> list[str]:
    return [e["code"] for e in answer["errors"] if e["code"] != "PAYMENT_UNAVAILABLE"]


async def drain(listener: feed.QueueListener, count: int) -> list[Envelope]:
    async with asyncio.timeout(5):
        return [await listener.queue.get() for _ in range(count)]


def buy_input(address_id: int, sku_id: int, room_product_gid: str, quantity: int = 1) -> dict[str, Any]:
    item = {
        "skuId": encode_id("Sku", sku_id),
        "quantity": quantity,
        "campaign": {"kind": "LIVE_ROOM", "id": room_product_gid},
    }
    return {"addressId": encode_id("Address", address_id), "items": [item]}


async def test_staff_run_a_session_and_every_step_reaches_the_room(client: Any, operator: str) -> None:
    room = await schedule(client, operator)
    assert room["status"] == "SCHEDULED" and room["products"] == [] and room["eventSeq"] == 0
    room_pk = decode_id(room["id"], "LiveRoom")
    dress = await new_sku(price=29900, stock=50)
    scarf = await new_sku(price=9900, stock=3)

    async with feed.watching(room_pk) as listener:
        added = await ok(
            client,
            ADD,
            {
                "input": {
                    "roomId": room["id"],
                    "skuId": encode_id("Sku", dress.id),
                    "livePrice": 19900,
                    "allotment": 20,
                }
            },
            operator,
            "liveRoomProductAdd",
        )
        assert added["roomProduct"]["stock"] == 20
        scarf_added = await ok(
            client,
            ADD,
            {
                "input": {
                    "roomId": room["id"],
                    "skuId": encode_id("Sku", scarf.id),
                    "livePrice": 5900,
                    "allotment": 10,
                }
            },
            operator,
            "liveRoomProductAdd",
        )
        assert scarf_added["roomProduct"]["stock"] == 3  # never more than the SKU has
        dress_gid = added["roomProduct"]["id"]

        assert (await ok(client, GO_LIVE, {"id": room["id"]}, operator, "liveRoomGoLive"))["room"][
            "status"
        ] == "LIVE"
        pinned = await ok(client, PIN, {"roomId": room["id"], "pid": dress_gid}, operator, "liveRoomPin")
        assert pinned["room"]["pinnedProduct"] == {"id": dress_gid}
        await ok(
            client,
            UPDATE,
            {"id": dress_gid, "input": {"livePrice": 17900}},
            operator,
            "liveRoomProductUpdate",
        )
        await ok(client, PAUSE, {"id": room["id"]}, operator, "liveRoomPause")

        status, pinned, price, paused = await drain(listener, 4)
    assert (status.seq, status.event.KIND, status.event.status) == (1, "RoomStatusChanged", "LIVE")  # type: ignore[attr-defined]
    assert pinned.event.KIND == "ProductPinned"
    assert (pinned.event.live_price, pinned.event.original_price, pinned.event.stock) == (19900, 29900, 20)  # type: ignore[attr-defined]
    assert (price.event.KIND, price.event.live_price) == ("PriceChanged", 17900)  # type: ignore[attr-defined]
    assert (paused.seq, paused.event.status) == (4, "PAUSED")  # type: ignore[attr-defined]

    shown = (await gql(client, ROOM, {"id": room["id"]}))["data"]["liveRoom"]
    assert shown["status"] == "PAUSED" and shown["eventSeq"] == 4
    assert shown["pinnedProduct"] == {"id": dress_gid, "livePrice": 17900, "stock": 20}
    assert [(p["livePrice"], p["originalPrice"], p["pinned"]) for p in shown["products"]] == [
        (17900, 29900, True),
        (5900, 9900, False),
    ]

    assert (await ok(client, END, {"id": room["id"]}, operator, "liveRoomEnd"))["room"]["endedAt"]
    again = (await gql(client, END, {"id": room["id"]}, operator))["data"]["liveRoomEnd"]
    assert [e["code"] for e in again["errors"]] == ["CONFLICT"]
    ended = (await gql(client, ROOM, {"id": room["id"]}))["data"]["liveRoom"]
    assert ended["status"] == "ENDED" and ended["pinnedProduct"] is None

    listed = (await gql(client, ROOMS, {"status": "ENDED"}))["data"]["liveRooms"]
    assert room["id"] in [e["node"]["id"] for e in listed["edges"]]
    assert listed["totalCount"] >= 1


async def test_only_staff_with_content_rights_run_rooms_and_bad_input_is_refused(
    client: Any, operator: str
) -> None:
    _, member_token = await new_member()
    refused = (await gql(client, SCHEDULE, {"input": room_input()}, member_token))["data"]["liveRoomSchedule"]
    assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    _, warehouse = await create_staff(f"live-wh-{secrets.token_hex(3)}", StaffRole.WAREHOUSE)
    refused = (await gql(client, SCHEDULE, {"input": room_input()}, warehouse))["data"]["liveRoomSchedule"]
    assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]

    backwards = room_input()
    backwards["scheduledEnd"] = backwards["scheduledStart"]
    answer = (await gql(client, SCHEDULE, {"input": {**backwards, "title": " "}}, operator))["data"]
    assert {(e["field"], e["code"]) for e in answer["liveRoomSchedule"]["errors"]} == {
        ("input.title", "BAD_USER_INPUT"),
        ("input.scheduledEnd", "BAD_USER_INPUT"),
    }
    room = await schedule(client, operator)
    sku = await new_sku(price=1000, stock=5)
    variables = {
        "input": {"roomId": room["id"], "skuId": encode_id("Sku", sku.id), "livePrice": 0, "allotment": 1}
    }
    answer = (await gql(client, ADD, variables, operator))["data"]["liveRoomProductAdd"]
    assert [(e["field"], e["code"]) for e in answer["errors"]] == [("input.livePrice", "BAD_USER_INPUT")]


async def test_a_viewer_pays_the_live_price_only_while_the_room_is_live_and_never_past_the_allotment(
    client: Any, operator: str
) -> None:
    room = await schedule(client, operator)
    sku = await new_sku(price=29900, stock=50)
    added = await ok(
        client,
        ADD,
        {
            "input": {
                "roomId": room["id"],
                "skuId": encode_id("Sku", sku.id),
                "livePrice": 19900,
                "allotment": 3,
            }
        },
        operator,
        "liveRoomProductAdd",
    )
    room_product = added["roomProduct"]["id"]
    member, token = await new_member()
    address_id = await new_address(member)

    buy = buy_input(address_id, sku.id, room_product)
    before = await place(client, token, {"input": buy, "key": "l0"})
    assert [(e["code"], e["field"]) for e in before["errors"]] == [("CONFLICT", "input.items")]

    await ok(client, GO_LIVE, {"id": room["id"]}, operator, "liveRoomGoLive")
    placed = await place(
        client, token, {"input": buy_input(address_id, sku.id, room_product, 2), "key": "l1"}
    )
    assert codes(placed) == [], placed
    order = await Order.get(number=placed["order"]["number"])
    [line] = await OrderLine.filter(order_id=order.id)
    room_product_pk = decode_id(room_product, "LiveRoomProduct")
    assert (line.unit_price, line.campaign_kind, line.campaign_id) == (19900, "LIVE_ROOM", room_product_pk)
    assert line.campaign["roomId"] == decode_id(room["id"], "LiveRoom")

    # One left in the room's allotment: two more are refused, one is sold.
    over = await place(client, token, {"input": buy_input(address_id, sku.id, room_product, 2), "key": "l2"})
    assert codes(over) == ["INSUFFICIENT_STOCK"]
    assert codes(await place(client, token, {"input": buy, "key": "l3"})) == []
    assert (await LiveRoomProduct.get(id=room_product_pk)).sold == 3

    # The first order is cancelled unpaid: its two go back to the room, and the room hears it.
    async with feed.watching(decode_id(room["id"], "LiveRoom")) as listener:
        await states.transition(order.id, OrderStatus.CANCELLED, actor=ActorKind.SYSTEM)
        await products.settle()
        [stock] = await drain(listener, 1)
    assert (stock.event.KIND, stock.event.stock) == ("StockChanged", 2)  # type: ignore[attr-defined]

    await ok(client, PAUSE, {"id": room["id"]}, operator, "liveRoomPause")
    assert codes(await place(client, token, {"input": buy, "key": "l4"})) == ["CONFLICT"]


async def test_the_rooms_of_wechat_live_are_copied_over_when_the_shop_syncs_them(
    wechat: WeChatStandIn, settings: Any, monkeypatch: pytest.MonkeyPatch, client: Any
) -> None:
    monkeypatch.setattr(settings, "live_wechat_sync", True)
    start = int((now() + timedelta(hours=1)).timestamp())
    wechat_id = 900000 + secrets.randbelow(99999)
    goods = [
        {"name": "真丝围巾", "cover_img": "https://mmbiz.qpic.cn/1.jpg", "url": "pages/p?id=1", "price": 9900}
    ]
    info = {
        "name": "微信直播间",
        "roomid": wechat_id,
        "cover_img": "https://mmbiz.qpic.cn/c.jpg",
        "live_status": 102,
        "start_time": start,
        "end_time": start + 3600,
        "anchor_name": "主播小美",
        "goods": goods,
    }
    wechat.set_live_rooms([info])
    assert await rooms.sync_wechat_rooms() == 1
    room = await LiveRoom.get(wechat_room_id=wechat_id)
    assert (room.title, room.status, room.wechat_status) == ("微信直播间", "SCHEDULED", 102)
    assert room.wechat_goods == [
        {"name": "真丝围巾", "coverUrl": "https://mmbiz.qpic.cn/1.jpg", "url": "pages/p?id=1", "price": 9900}
    ]

    # WeChat says it is live now (101): ours goes live too, once, even if two sweeps run.
    wechat.set_live_rooms([{**info, "live_status": 101}])
    await current_runtime().redis.delete(rooms.WECHAT_SYNC_LOCK)  # the next sweep interval
    assert await rooms.sync_wechat_rooms() == 1
    assert (await LiveRoom.get(id=room.id)).status == "LIVE"
    shown = await gql(
        client,
        f'query {{ liveRoom(id: "{encode_id("LiveRoom", room.id)}") {{ wechatRoomId wechatStatus wechatGoods {{ name price }} }} }}',
    )
    assert shown["data"]["liveRoom"] == {
        "wechatRoomId": wechat_id,
        "wechatStatus": 101,
        "wechatGoods": [{"name": "真丝围巾", "price": 9900}],
    }
    # Another process sweeping within the same interval leaves WeChat alone.
    assert await rooms.sync_wechat_rooms() == 0


async def test_staff_change_a_room_products_allotment_and_price_within_what_was_sold(
    client: Any, operator: str
) -> None:
    room = await schedule(client, operator, "改库存直播间")
    room_pk = decode_id(room["id"], "LiveRoom")
    sku = await new_sku(price=29900, stock=8)
    added = {"roomId": room["id"], "skuId": encode_id("Sku", sku.id), "livePrice": 19900, "allotment": 20}
    item = (await ok(client, ADD, {"input": added}, operator, "liveRoomProductAdd"))["roomProduct"]
    await ok(client, GO_LIVE, {"id": room["id"]}, operator, "liveRoomGoLive")
    await ok(client, PIN, {"roomId": room["id"], "pid": item["id"]}, operator, "liveRoomPin")
    await LiveRoomProduct.filter(id=decode_id(item["id"], "LiveRoomProduct")).update(sold=4)
    pinned_answer = f"""mutation($id: ID!, $input: LiveRoomProductUpdateInput!) {{
      liveRoomProductUpdate(id: $id, input: $input) {{ roomProduct {{ livePrice allotment sold stock pinned }}
      {ERRORS} }} }}"""

    async with feed.watching(room_pk) as listener:
        smaller = await ok(
            client,
            pinned_answer,
            {"id": item["id"], "input": {"allotment": 6}},
            operator,
            "liveRoomProductUpdate",
        )
        assert smaller["roomProduct"] == {
            "livePrice": 19900,
            "allotment": 6,
            "sold": 4,
            "stock": 2,
            "pinned": True,
        }
        both = {"id": item["id"], "input": {"allotment": 30, "livePrice": 15900}}
        larger = await ok(client, pinned_answer, both, operator, "liveRoomProductUpdate")
        assert larger["roomProduct"]["stock"] == 8  # the rest of the allotment, never more than the SKU has
        stock, price, stock_again = await drain(listener, 3)
    assert (stock.event.KIND, stock.event.stock) == ("StockChanged", 2)  # type: ignore[attr-defined]
    assert (price.event.KIND, price.event.live_price, price.event.original_price) == (
        "PriceChanged",
        15900,
        29900,
    )  # type: ignore[attr-defined]
    assert (stock_again.event.KIND, stock_again.event.stock) == ("StockChanged", 8)  # type: ignore[attr-defined]

    below = (await gql(client, UPDATE, {"id": item["id"], "input": {"allotment": 3}}, operator))["data"]
    assert [(e["field"], e["code"]) for e in below["liveRoomProductUpdate"]["errors"]] == [
        ("input.allotment", "BAD_USER_INPUT")
    ]
    unknown = {"id": encode_id("LiveRoomProduct", 10**9), "input": {"allotment": 5}}
    missing = (await gql(client, UPDATE, unknown, operator))["data"]["liveRoomProductUpdate"]
    assert [e["code"] for e in missing["errors"]] == ["NOT_FOUND"]
    other = await schedule(client, operator, "隔壁直播间")
    elsewhere = (await gql(client, PIN, {"roomId": other["id"], "pid": item["id"]}, operator))["data"]
    assert [(e["field"], e["code"]) for e in elsewhere["liveRoomPin"]["errors"]] == [
        ("roomProductId", "BAD_USER_INPUT")
    ]
    nowhere = {"roomId": room["id"], "pid": encode_id("LiveRoomProduct", 10**9)}
    assert [
        e["code"] for e in (await gql(client, PIN, nowhere, operator))["data"]["liveRoomPin"]["errors"]
    ] == ["NOT_FOUND"]
    await ok(client, END, {"id": room["id"]}, operator, "liveRoomEnd")
    ended = (await gql(client, UPDATE, {"id": item["id"], "input": {"livePrice": 100}}, operator))["data"]
    assert [e["code"] for e in ended["liveRoomProductUpdate"]["errors"]] == ["CONFLICT"]
    kept = await LiveRoomProduct.get(id=decode_id(item["id"], "LiveRoomProduct"))
    assert (kept.allotment, kept.live_price, kept.sold) == (30, 15900, 4)
