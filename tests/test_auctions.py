"""Auctions in a live room: staff schedule one, members bid, late bids move the end, the winner buys at their bid
and, if they do not pay, the next bidder is offered it.

Equal concurrent bids across two server processes on PostgreSQL are in tests/test_live_plays_multiprocess.py.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from infra.clock import now, set_clock
from models import (
    ActorKind,
    Auction,
    AuctionBid,
    AuctionStatus,
    AuditLog,
    Member,
    Order,
    OrderStatus,
    StaffRole,
)
from schema.node import decode_id, encode_id
from services.access.staff import create_staff
from services.live import auctions
from services.live.events import history_since
from services.orders import states as order_states
from services.orders.sweeper import sweep_once
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku
from tests.test_red_packets import new_room

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
AUCTION_FIELDS = """id status currentPrice nextMinimum bidCount extensions endsAt scheduledEndsAt leader offerRank
  viewerHighestBid viewerLeading viewerOffer { price deadline rank }"""
SCHEDULE = f"""mutation($input: AuctionInput!) {{
  auctionSchedule(input: $input) {{ auction {{ {AUCTION_FIELDS} }} {ERRORS} }} }}"""
CANCEL = f"mutation($id: ID!) {{ auctionCancel(id: $id) {{ auction {{ status }} {ERRORS} }} }}"
BID = f"""mutation($auctionId: ID!, $amount: Int!) {{
  auctionBid(auctionId: $auctionId, amount: $amount) {{
    bid {{ amount extended }} auction {{ {AUCTION_FIELDS} }} {ERRORS} }} }}"""
AUCTION = f"query($id: ID!) {{ auction(id: $id) {{ {AUCTION_FIELDS} }} }}"
PLACE = f"""mutation($input: CheckoutInput!, $key: String!) {{
  placeOrder(input: $input, idempotencyKey: $key) {{ order {{ id status payable }} {ERRORS} }} }}"""


@pytest.fixture
async def staff_token() -> str:
    _, token = await create_staff(f"auction-{secrets.token_hex(4)}", StaffRole.OPERATOR)
    return token


@pytest.fixture
async def clock() -> AsyncIterator[list[datetime]]:
    moment = [now()]
    set_clock(lambda: moment[0])
    yield moment
    set_clock(None)


async def schedule(
    client: httpx.AsyncClient, token: str, *, expect_errors: bool = False, **overrides: Any
) -> dict[str, Any]:
    if "skuId" not in overrides:
        overrides["skuId"] = encode_id("Sku", (await new_sku(price=50000, stock=3)).id)
    fields: dict[str, Any] = {
        "roomId": encode_id("LiveRoom", await new_room()),
        "startPrice": 10000,
        "increment": 500,
        "startsAt": now().isoformat(),
        "endsAt": (now() + timedelta(minutes=10)).isoformat(),
        "snipeSeconds": 30,
        "extendSeconds": 30,
        "title": "翡翠手镯",
    }
    fields.update(overrides)
    payload: dict[str, Any] = (await gql(client, SCHEDULE, {"input": fields}, token))["data"][
        "auctionSchedule"
    ]
    if not expect_errors:
        assert payload["errors"] == [], payload
    return payload


async def bid(client: httpx.AsyncClient, token: str, auction_id: str, amount: int) -> dict[str, Any]:
    body = await gql(client, BID, {"auctionId": auction_id, "amount": amount}, token)
    payload: dict[str, Any] = body["data"]["auctionBid"]
    return payload


async def seen_by(client: httpx.AsyncClient, token: str, auction_id: str) -> dict[str, Any]:
    auction: dict[str, Any] = (await gql(client, AUCTION, {"id": auction_id}, token))["data"]["auction"]
    return auction


def pk(gid: str) -> int:
    return decode_id(gid, "Auction")


async def test_bad_setups_are_refused_field_by_field_and_audited(
    client: httpx.AsyncClient, staff_token: str
) -> None:
    later = (now() + timedelta(hours=1)).isoformat()
    cases = [
        ({"increment": 0}, "input.increment"),
        ({"increment": -100}, "input.increment"),
        ({"startsAt": later, "endsAt": now().isoformat()}, "input.endsAt"),
        ({"startPrice": 0}, "input.startPrice"),
        ({"snipeSeconds": 601}, "input.snipeSeconds"),
        ({"skuId": encode_id("Sku", 10**9)}, "input.skuId"),
        ({"roomId": encode_id("LiveRoom", 10**9)}, "input.roomId"),
    ]
    before = await Auction.all().count()
    for overrides, field in cases:
        payload = await schedule(client, staff_token, expect_errors=True, **overrides)
        assert payload["auction"] is None
        assert [e["field"] for e in payload["errors"]] == [field], (overrides, payload["errors"])
    assert await Auction.all().count() == before
    assert await AuditLog.filter(action="auctionSchedule", succeeded=False).count() >= len(cases)


async def test_members_bid_up_the_price_and_the_outbid_learn_it(
    client: httpx.AsyncClient, staff_token: str
) -> None:
    auction = (await schedule(client, staff_token))["auction"]
    assert auction["status"] == "LIVE" and auction["nextMinimum"] == 10000
    (alice, alice_token), (_, bob_token) = await new_member(), await new_member()
    await Member.filter(id=alice.id).update(nickname="林晓")
    low = await bid(client, alice_token, auction["id"], 9999)
    assert [(e["field"], e["code"]) for e in low["errors"]] == [("amount", "BID_TOO_LOW")]
    first = await bid(client, alice_token, auction["id"], 10000)
    assert first["bid"] == {"amount": 10000, "extended": False}
    assert first["auction"]["viewerLeading"] and first["auction"]["nextMinimum"] == 10500
    assert first["auction"]["leader"] == "林**"
    # Bob must beat her by the increment.
    assert (await bid(client, bob_token, auction["id"], 10499))["errors"][0]["code"] == "BID_TOO_LOW"
    assert (await bid(client, bob_token, auction["id"], 12000))["bid"]["amount"] == 12000
    # Alice learns she was outbid, from the auction and from the room's events.
    hers = await seen_by(client, alice_token, auction["id"])
    assert (hers["viewerLeading"], hers["viewerHighestBid"], hers["currentPrice"]) == (False, 10000, 12000)
    room_id = (await Auction.get(id=pk(auction["id"]))).room_id
    heard = [e.event for e in await history_since(room_id, 0)]
    assert [type(e).__name__ for e in heard] == ["AuctionStarted", "AuctionBid", "AuctionBid"]
    assert [(e.amount, e.next_minimum) for e in heard[1:]] == [(10000, 10500), (12000, 12500)]  # type: ignore[attr-defined]
    assert heard[1].bidder == "林**"  # type: ignore[attr-defined]
    # Called off: no more bids.
    cancelled = (await gql(client, CANCEL, {"id": auction["id"]}, staff_token))["data"]["auctionCancel"]
    assert cancelled["auction"]["status"] == "CANCELLED"
    assert (await bid(client, alice_token, auction["id"], 20000))["errors"][0]["code"] == "AUCTION_CLOSED"


async def test_a_bid_in_the_last_seconds_moves_the_end(
    client: httpx.AsyncClient, staff_token: str, clock: list[datetime]
) -> None:
    end = clock[0] + timedelta(minutes=5)
    auction = (await schedule(client, staff_token, endsAt=end.isoformat()))["auction"]
    (_, alice), (_, bob) = await new_member(), await new_member()
    assert (await bid(client, alice, auction["id"], 10000))["bid"]["extended"] is False
    # 10 s before the end: inside the 30 s window, so the end moves to 30 s after the bid.
    clock[0] = end - timedelta(seconds=10)
    sniped = await bid(client, bob, auction["id"], 10500)
    assert sniped["bid"]["extended"] is True
    moved = datetime.fromisoformat(sniped["auction"]["endsAt"])
    assert moved == clock[0] + timedelta(seconds=30) and sniped["auction"]["extensions"] == 1
    assert datetime.fromisoformat(sniped["auction"]["scheduledEndsAt"]) == end
    # At the old end the sweeper leaves it open, and Alice can still answer.
    clock[0] = end + timedelta(seconds=1)
    await sweep_once(clock[0])
    assert (await Auction.get(id=pk(auction["id"]))).status == AuctionStatus.LIVE
    assert (await bid(client, alice, auction["id"], 11000))["bid"]["extended"] is True
    room_id = (await Auction.get(id=pk(auction["id"]))).room_id
    kinds = [type(e.event).__name__ for e in await history_since(room_id, 0)]
    assert kinds.count("AuctionExtended") == 2
    # Past the moved end it closes, offered to Alice at her bid.
    clock[0] += timedelta(seconds=31)
    assert (await bid(client, bob, auction["id"], 20000))["errors"][0]["code"] == "AUCTION_CLOSED"
    await sweep_once(clock[0])
    closed = await Auction.get(id=pk(auction["id"]))
    assert (closed.status, closed.offer_price, closed.offer_rank) == (AuctionStatus.OFFERED, 11000, 1)
    ended, offered = [e.event for e in await history_since(room_id, 0)][-2:]
    assert type(ended).__name__ == "AuctionEnded" and ended.winning_amount == 11000  # type: ignore[attr-defined]
    assert (type(offered).__name__, offered.amount, offered.rank) == ("AuctionOffered", 11000, 1)  # type: ignore[attr-defined]


async def test_equal_bids_at_once_one_is_accepted(client: httpx.AsyncClient, staff_token: str) -> None:
    auction = (await schedule(client, staff_token))["auction"]
    bidders = [await new_member() for _ in range(8)]
    answers = await asyncio.gather(*(bid(client, token, auction["id"], 15000) for _, token in bidders))
    accepted = [a for a in answers if a["bid"]]
    assert len(accepted) == 1
    assert {a["errors"][0]["code"] for a in answers if not a["bid"]} == {"BID_TOO_LOW"}
    assert await AuctionBid.filter(auction_id=pk(auction["id"])).count() == 1
    row = await Auction.get(id=pk(auction["id"]))
    assert (row.current_price, row.next_min, row.bid_count) == (15000, 15500, 1)


async def test_the_winner_buys_at_the_winning_bid_or_the_next_bidder_is_offered_it(
    client: httpx.AsyncClient, staff_token: str, clock: list[datetime]
) -> None:
    sku = await new_sku(price=50000, stock=3)
    end = clock[0] + timedelta(minutes=5)
    auction = (await schedule(client, staff_token, skuId=encode_id("Sku", sku.id), endsAt=end.isoformat()))[
        "auction"
    ]
    (alice, alice_token), (bob, bob_token), (carol, carol_token) = [await new_member() for _ in range(3)]
    await bid(client, bob_token, auction["id"], 10000)
    await bid(client, carol_token, auction["id"], 11000)
    await bid(client, bob_token, auction["id"], 12000)
    await bid(client, alice_token, auction["id"], 13000)
    clock[0] = end + timedelta(seconds=1)
    await sweep_once(clock[0])

    def item(quantity: int = 1) -> dict[str, Any]:
        return {
            "skuId": encode_id("Sku", sku.id),
            "quantity": quantity,
            "campaign": {"kind": "AUCTION", "id": auction["id"]},
        }

    async def place(member: Member, token: str, quantity: int = 1) -> dict[str, Any]:
        address = await new_address(member)
        variables = {
            "input": {"addressId": encode_id("Address", address), "items": [item(quantity)]},
            "key": secrets.token_hex(8),
        }
        payload: dict[str, Any] = (await gql(client, PLACE, variables, token))["data"]["placeOrder"]
        return payload

    # Only the winner may buy, one unit, at her bid.
    assert (await place(bob, bob_token))["errors"][0]["code"] == "FORBIDDEN"
    offer = (await seen_by(client, alice_token, auction["id"]))["viewerOffer"]
    assert offer["price"] == 13000 and offer["rank"] == 1
    assert (await seen_by(client, bob_token, auction["id"]))["viewerOffer"] is None
    assert (await place(alice, alice_token, quantity=2))["errors"][0]["field"] == "input.items"
    order = (await place(alice, alice_token))["order"]
    line = (await Order.get(id=decode_id(order["id"], "Order"))).items_total
    assert line == 13000
    assert (await place(alice, alice_token))["errors"][0]["code"] == "FORBIDDEN"  # one order per offer
    # Her order must be paid within the offer's window; she does not pay, the sweeper cancels it.
    row = await Order.get(id=decode_id(order["id"], "Order"))
    assert row.pay_deadline <= datetime.fromisoformat(offer["deadline"])
    clock[0] = row.pay_deadline + timedelta(seconds=1)
    await sweep_once(clock[0])
    assert (await Order.get(id=row.id)).status == OrderStatus.CANCELLED
    # The next bidder (Bob, by his best bid 12,000) is offered it, at his own bid.
    passed = await Auction.get(id=pk(auction["id"]))
    assert (passed.status, passed.offer_member_id, passed.offer_price, passed.offer_rank) == (  # type: ignore[attr-defined]
        AuctionStatus.OFFERED,
        bob.id,
        12000,
        2,
    )
    assert (await place(alice, alice_token))["errors"][0]["code"] == "FORBIDDEN"
    # The room hears whose turn it is: Bob's page knows his 12,000.
    told = (await history_since(passed.room_id, 0))[-1].event
    assert (type(told).__name__, told.amount, told.rank) == ("AuctionOffered", 12000, 2)  # type: ignore[attr-defined]
    assert told.deadline == passed.offer_deadline  # type: ignore[attr-defined]
    # Bob places no order in time: Carol is next; she buys and pays, and the auction is sold.
    clock[0] = passed.offer_deadline + timedelta(seconds=1)  # type: ignore[operator]
    await sweep_once(clock[0])
    third = await Auction.get(id=pk(auction["id"]))
    assert (third.offer_member_id, third.offer_price, third.offer_rank) == (carol.id, 11000, 3)  # type: ignore[attr-defined]
    carols = (await place(carol, carol_token))["order"]
    assert carols["payable"] >= 11000
    paid = await Order.get(id=decode_id(carols["id"], "Order"))
    await order_states.transition(paid.id, OrderStatus.PAID, actor=ActorKind.WECHAT, paid_amount=paid.payable)
    sold = await Auction.get(id=pk(auction["id"]))
    assert sold.status == AuctionStatus.SOLD and sold.order_id == paid.id  # type: ignore[attr-defined]


async def test_an_auction_nobody_bid_on_is_unsold(
    client: httpx.AsyncClient, staff_token: str, clock: list[datetime]
) -> None:
    end = clock[0] + timedelta(minutes=1)
    auction = (await schedule(client, staff_token, endsAt=end.isoformat()))["auction"]
    clock[0] = end
    assert await auctions.sweep_auctions(clock[0]) >= 1
    assert (await Auction.get(id=pk(auction["id"]))).status == AuctionStatus.UNSOLD
