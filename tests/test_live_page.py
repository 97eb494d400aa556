"""The H5 live-sale page in headless Chromium (no internet: every host but ours is blocked) against the running
server: whatever staff do through the API shows on the page within a second: going live, pinning a product, its
live price and stock, comments, a red-packet rain with its grab button, an auction with its bid button."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from infra.clock import now
from models import Member, StaffRole
from schema.node import decode_id, encode_id
from services.access.staff import create_staff
from services.live import feed
from services.live.auctions import AuctionDraft, close_due_auctions, schedule_auction
from services.live.red_packets import RainDraft, schedule_rain, start_due_rains
from services.members.tokens import issue_tokens
from tests.js_clients import NodeProcess, client_options, live_server, node, wait_for
from tests.test_cart import new_sku
from tests.test_live_comments import POST
from tests.test_live_rooms import ADD, GO_LIVE, PIN, SCHEDULE, UPDATE, room_input

SHOWS_WITHIN = 1.0
PRODUCT_PHOTOS = "https://img.example.com/"


@pytest.fixture
async def server(app: object, seeded: None) -> AsyncIterator[str]:
    async with live_server(app) as base:
        yield base


async def api(base: str, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        response = await http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = next(iter(body["data"].values()))
    assert payload.get("errors") in (None, []), payload
    return payload


async def shows(
    page: NodeProcess, what: Callable[[dict[str, Any]], bool], within: float = SHOWS_WITHIN
) -> float:
    """Seconds until the page shows `what` (failing after `within`)."""
    started = time.monotonic()
    last: dict[str, Any] | None = None
    while True:
        try:
            message = await page.until("shown", within=max(0.05, within - (time.monotonic() - started)))
        except TimeoutError:
            raise AssertionError(f"not shown within {within} s; the page last showed {last}") from None
        last = message["shown"]
        # Only the product's own photo (the test product's is on another host) may fail: the page needs nothing
        # from anywhere but this server.
        assert all(url.startswith(PRODUCT_PHOTOS) for url in message["blocked"]), message
        assert all(e.startswith("Failed to load resource") for e in message["consoleErrors"]), message
        if what(message["shown"]):
            return time.monotonic() - started


async def member_token(nickname: str) -> str:
    member = await Member.create(
        openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper(), nickname=nickname
    )
    return (await issue_tokens(member)).access_token


async def test_a_staff_action_through_the_api_shows_on_the_page_within_a_second(
    chromium: str, server: str, wechat: Any
) -> None:
    _, staff = await create_staff(f"live-page-{secrets.token_hex(3)}", StaffRole.OPERATOR)
    room = (await api(server, SCHEDULE, {"input": room_input("今晚八点上新")}, staff))["room"]
    room_pk = decode_id(room["id"], "LiveRoom")
    sku = await new_sku(price=29900, stock=30)
    add = {"roomId": room["id"], "skuId": encode_id("Sku", sku.id), "livePrice": 19900, "allotment": 20}
    product = (await api(server, ADD, {"input": add}, staff))["roomProduct"]
    shopper = await member_token("小王")

    options = client_options(
        base=server,
        executablePath=chromium,
        timeoutMs=120000,
        path=f"/h5/live/{room['id']}?token={shopper}",
        click=["#grab", "#bid"],
    )
    async with node("browser.mjs", "live-page", options, time_limit=120) as page:
        await page.until("ready", within=30)
        first = await page.until("shown", within=10)
        assert first["shown"]["title"] == "今晚八点上新", first
        await wait_for(
            lambda: feed.room_feeds().local_viewers(room_pk) >= 1, within=10, what="the page subscribed"
        )
        timings: dict[str, float] = {}

        await api(server, GO_LIVE, {"id": room["id"]}, staff)
        timings["go live"] = await shows(page, lambda s: s["status"] == "直播中")

        await api(server, PIN, {"roomId": room["id"], "pid": product["id"]}, staff)
        timings["pin"] = await shows(page, lambda s: s["price"] == "199.00" and s["stock"] == "20")

        await api(
            server, UPDATE, {"id": product["id"], "input": {"livePrice": 17900, "allotment": 12}}, staff
        )
        timings["price and stock"] = await shows(
            page, lambda s: s["price"] == "179.00" and s["stock"] == "12"
        )

        viewer = await member_token("阿May")
        await api(server, POST, {"roomId": room["id"], "text": "这件有黑色吗?"}, viewer)
        timings["comment"] = await shows(page, lambda s: "阿May这件有黑色吗?" in s["comments"])
        # The page asks for comments in batches (CommentsPosted): two in quick succession both show.
        other = await member_token("小林")
        await asyncio.gather(
            api(server, POST, {"roomId": room["id"], "text": "M码还有吗?"}, viewer),
            api(server, POST, {"roomId": room["id"], "text": "已下单"}, other),
        )
        timings["comments"] = await shows(
            page, lambda s: "阿MayM码还有吗?" in s["comments"] and "小林已下单" in s["comments"]
        )

        rain = await schedule_rain(
            RainDraft(room_id=room_pk, total_amount=500, packet_count=5, starts_at=now(), duration_seconds=60)
        )
        await start_due_rains(now())
        timings["rain"] = await shows(page, lambda s: s["rain"] == "5")
        # The page pressed 抢红包 as soon as it showed: the prize lands in the shopper's points.
        await shows(page, lambda s: "积分" in (s["rainResult"] or ""), within=5)

        await schedule_auction(
            AuctionDraft(
                room_id=room_pk,
                sku_id=sku.id,
                start_price=10000,
                increment=500,
                starts_at=now(),
                ends_at=now() + timedelta(minutes=10),
                title="限量款",
            )
        )
        timings["auction"] = await shows(page, lambda s: s["auction"] == "100.00")
        # And 出价 at the least it may bid: the page shows the accepted bid from the room's event.
        await shows(page, lambda s: "成功" in (s["auctionResult"] or ""), within=5)
        # It closes with the page's bid the best: the offer (AuctionOffered, rank 1) tells this shopper to buy.
        await close_due_auctions(now() + timedelta(minutes=11))
        timings["offer"] = await shows(page, lambda s: "轮到你了" in (s["auctionResult"] or ""))
    assert rain.packet_count == 5
    assert all(seconds <= SHOWS_WITHIN for seconds in timings.values()), timings


async def test_the_page_of_a_room_that_does_not_exist_is_a_404(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as http:
        assert (await http.get(f"/h5/live/{encode_id('LiveRoom', 2_000_000_000)}")).status_code == 404
        assert (await http.get("/h5/live/not-an-id")).status_code == 404
        script = await http.get("/static/h5/live.js")
    assert script.status_code == 200 and "liveRoomEvents" in script.text
