"""Red-packet rain and auctions across two real server processes on PostgreSQL + Redis.

A thousand members grab a hundred packets through two processes at once: exactly a hundred prizes, the sums
exact, nobody twice. A process killed (SIGKILL) between a grab and its credit leaves the grab in Redis's
journal; the servers' sweepers credit it, once. Forty members bid the same amount at once through both
processes: one bid is accepted per amount. A bid in the last seconds moves the end, and the sweepers close the
auction only after the moved end.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from infra.clock import now
from infra.settings import PROJECT_ROOT, Settings
from models import (
    Auction,
    AuctionBid,
    AuctionStatus,
    Member,
    MemberSession,
    PointsEntry,
    PointsReason,
    ProductStatus,
    RedPacket,
    Sku,
    StaffRole,
)
from schema.node import decode_id, encode_id
from services.access.staff import create_staff
from services.members.tokens import _access_token
from tests.server_process import ServerProcess, child_env, running_server
from tests.test_red_packets import new_room

pytestmark = pytest.mark.realservices

GRAB = """mutation($rainId: ID!) {
  redPacketGrab(rainId: $rainId) { packet { amount repeated credited } errors { field message code } } }"""
SCHEDULE = """mutation($input: RedPacketRainInput!) {
  redPacketRainSchedule(input: $input) { rain { id status } errors { field message code } } }"""
RAIN = "query($id: ID!) { redPacketRain(id: $id) { grabbedCount grabbedAmount leftCount } }"


@pytest.fixture(scope="module")
async def servers(
    settings: Settings, seeded: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    assert settings.database_url and settings.redis_url, "the real pass sets DATABASE_URL and REDIS_URL"
    env = child_env(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "DATA_DIR": str(tmp_path_factory.mktemp("liveplays")),
            "SECRET_KEY": settings.resolved_secret_key,
            "DB_POOL_MAX": "6",
            # The sweepers pick up grabs left behind within about a second.
            "SWEEP_INTERVAL_SECONDS": "1",
        }
    )
    async with contextlib.AsyncExitStack() as stack:
        # Started side by side: each takes a while to import and connect on a busy machine.
        a, b = await asyncio.gather(*(stack.enter_async_context(running_server(env)) for _ in range(2)))
        yield a, b


@pytest.fixture(scope="module")
async def staff_token(seeded: None) -> str:
    _, token = await create_staff(f"liveplays-{secrets.token_hex(4)}", StaffRole.OPERATOR)
    return token


async def members(count: int) -> list[tuple[int, str]]:
    """`count` new members, each signed in (a session and an access token), written in a few statements."""
    tag = secrets.token_hex(4)
    await Member.bulk_create(
        [Member(openid=f"o_{tag}_{i}", invite_code=secrets.token_hex(5).upper()) for i in range(count)]
    )
    ids = await Member.filter(openid__startswith=f"o_{tag}_").order_by("id").values_list("id", flat=True)
    await MemberSession.bulk_create(
        [
            MemberSession(
                member_id=i, refresh_hash=secrets.token_hex(32), expires_at=now() + timedelta(days=1)
            )
            for i in ids
        ]
    )
    sessions = await MemberSession.filter(member_id__in=list(ids)).values_list("member_id", "id")
    return [(member_id, _access_token(member_id, session_id)) for member_id, session_id in sorted(sessions)]


async def schedule_rain(server: ServerProcess, token: str, total: int, count: int) -> str:
    data = await server.gql(
        SCHEDULE,
        {
            "input": {
                "roomId": encode_id("LiveRoom", await new_room()),
                "totalAmount": total,
                "packetCount": count,
                "startsAt": now().isoformat(),
                "durationSeconds": 300,
            }
        },
        token=token,
    )
    payload = data["redPacketRainSchedule"]
    assert payload["errors"] == [] and payload["rain"]["status"] == "LIVE", payload
    return str(payload["rain"]["id"])


async def test_a_thousand_members_grab_a_hundred_packets_across_two_processes(
    servers: tuple[ServerProcess, ServerProcess], staff_token: str
) -> None:
    a, b = servers
    rain_gid = await schedule_rain(a, staff_token, total=100_000, count=100)
    rain_id = decode_id(rain_gid, "RedPacketRain")
    crowd = await members(1000)
    gate = asyncio.Semaphore(64)

    async def grab(i: int, token: str) -> dict[str, Any]:
        async with gate:
            server = a if i % 2 else b
            try:
                response = await server.post(GRAB, {"rainId": rain_gid}, token)
            except httpx.TransportError:
                # A kept-alive connection the server closed just then: ask again, as a page would (a grab
                # is idempotent: a repeat answers the same packet).
                response = await server.post(GRAB, {"rainId": rain_gid}, token)
            assert response.status_code == 200, response.text
            payload: dict[str, Any] = response.json()["data"]["redPacketGrab"]
            return payload

    started = time.monotonic()
    answers = await asyncio.gather(*(grab(i, token) for i, (_, token) in enumerate(crowd)))
    elapsed = time.monotonic() - started
    won = {member_id: a["packet"] for (member_id, _), a in zip(crowd, answers, strict=True) if a["packet"]}
    refused = {a["errors"][0]["code"] for a in answers if not a["packet"]}
    assert len(won) == 100 and refused == {"RAIN_EMPTY"}, (len(won), refused)
    assert sum(p["amount"] for p in won.values()) == 100_000
    assert all(p["credited"] for p in won.values())
    # The record: a hundred packets, a hundred different members, each credited exactly its packet.
    packets = await RedPacket.filter(rain_id=rain_id).values("member_id", "amount", "credited_at")
    assert {p["member_id"] for p in packets} == set(won)
    assert all(p["credited_at"] is not None for p in packets)
    entries = await PointsEntry.filter(
        reason=PointsReason.RED_PACKET, idempotency_key__startswith=f"red-packet:{rain_id}:"
    ).values("member_id", "delta")
    assert len(entries) == 100
    assert {e["member_id"]: e["delta"] for e in entries} == {m: p["amount"] for m, p in won.items()}
    numbers = (await b.gql(RAIN, {"id": rain_gid}))["redPacketRain"]
    assert numbers == {"grabbedCount": 100, "grabbedAmount": 100_000, "leftCount": 0}
    print(f"\n  1,000 grabs of 100 packets over two processes: {elapsed:.2f} s")


GRAB_AND_HANG = """
import asyncio, sys
from infra.db import init_db
from infra.redis import create_redis, set_redis
from infra.settings import get_settings
from services.live import red_packets

async def main():
    settings = get_settings()
    await init_db(settings)
    set_redis(create_redis(settings))
    index, amount, new = await red_packets.take_packet(int(sys.argv[1]), int(sys.argv[2]))
    print(f"GRABBED {index} {amount} {new}", flush=True)
    await asyncio.sleep(3600)  # killed here: after the grab, before the credit

asyncio.run(main())
"""


async def test_a_process_killed_between_grab_and_credit_is_credited_once(
    servers: tuple[ServerProcess, ServerProcess], staff_token: str, settings: Settings
) -> None:
    a, b = servers
    rain_gid = await schedule_rain(a, staff_token, total=900, count=3)
    rain_id = decode_id(rain_gid, "RedPacketRain")
    [(member_id, token)] = await members(1)
    env = child_env(
        {
            "DATABASE_URL": settings.database_url or "",
            "REDIS_URL": settings.redis_url or "",
            "DATA_DIR": str(PROJECT_ROOT / "data"),
            "SECRET_KEY": settings.resolved_secret_key,
        }
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        GRAB_AND_HANG,
        str(rain_id),
        str(member_id),
        env=env,
        cwd=str(PROJECT_ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(60):
            line = (await child.stdout.readline()).decode()  # type: ignore[union-attr]
        assert line.startswith("GRABBED"), line + (await child.stdout.read()).decode()  # type: ignore[union-attr]
        _, index, amount, _ = line.split()
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    assert (await Member.get(id=member_id)).points == 0  # the dead process never credited it
    # The servers' sweepers credit it (within a couple of seconds), exactly once.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if (await Member.get(id=member_id)).points:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.5)  # more sweeps on both processes: still once
    assert (await Member.get(id=member_id)).points == int(amount)
    assert await PointsEntry.filter(member_id=member_id).count() == 1
    packet = await RedPacket.get(rain_id=rain_id, index=int(index))
    assert packet.member_id == member_id
    # The member asks again on the other process: the same packet, credited, nothing more.
    again = (await b.gql(GRAB, {"rainId": rain_gid}, token=token))["redPacketGrab"]
    assert again["packet"] == {"amount": int(amount), "repeated": True, "credited": True}
    assert await PointsEntry.filter(member_id=member_id).count() == 1


BID = """mutation($auctionId: ID!, $amount: Int!) {
  auctionBid(auctionId: $auctionId, amount: $amount) {
    bid { amount extended } auction { endsAt extensions } errors { field message code } } }"""
SCHEDULE_AUCTION = """mutation($input: AuctionInput!) {
  auctionSchedule(input: $input) { auction { id status endsAt } errors { field message code } } }"""


async def schedule_auction(server: ServerProcess, token: str, ends_in: timedelta, snipe: int = 30) -> str:
    sku_id = (
        await Sku.filter(product__status=ProductStatus.ON_SALE)
        .order_by("id")
        .first()
        .values_list("id", flat=True)
    )
    data = await server.gql(
        SCHEDULE_AUCTION,
        {
            "input": {
                "roomId": encode_id("LiveRoom", await new_room()),
                "skuId": encode_id("Sku", sku_id),
                "startPrice": 10000,
                "increment": 100,
                "startsAt": now().isoformat(),
                "endsAt": (now() + ends_in).isoformat(),
                "snipeSeconds": snipe,
                "extendSeconds": snipe,
            }
        },
        token=token,
    )
    payload = data["auctionSchedule"]
    assert payload["errors"] == [] and payload["auction"]["status"] == "LIVE", payload
    return str(payload["auction"]["id"])


async def test_equal_bids_on_two_processes_one_is_accepted(
    servers: tuple[ServerProcess, ServerProcess], staff_token: str
) -> None:
    a, b = servers
    auction_gid = await schedule_auction(a, staff_token, timedelta(minutes=10))
    auction_id = decode_id(auction_gid, "Auction")
    bidders = await members(40)
    for amount in (10000, 10100, 10200):  # three rounds, every member bidding the same amount at once
        answers = await asyncio.gather(
            *(
                (a if i % 2 else b).gql(BID, {"auctionId": auction_gid, "amount": amount}, token=token)
                for i, (_, token) in enumerate(bidders)
            )
        )
        payloads = [x["auctionBid"] for x in answers]
        assert sum(1 for p in payloads if p["bid"]) == 1, amount
        assert {p["errors"][0]["code"] for p in payloads if not p["bid"]} == {"BID_TOO_LOW"}
    # Below the last bid plus the increment: refused on either process.
    low = (await a.gql(BID, {"auctionId": auction_gid, "amount": 10299}, token=bidders[0][1]))["auctionBid"]
    assert low["errors"][0]["code"] == "BID_TOO_LOW"
    rows = await AuctionBid.filter(auction_id=auction_id).order_by("amount").values_list("amount", flat=True)
    assert list(rows) == [10000, 10100, 10200]
    auction = await Auction.get(id=auction_id)
    assert (auction.current_price, auction.next_min, auction.bid_count) == (10200, 10300, 3)


async def test_a_late_bid_extends_the_auction_and_the_sweepers_close_it_after_the_new_end(
    servers: tuple[ServerProcess, ServerProcess], staff_token: str
) -> None:
    a, b = servers
    # Ends in 8 s with a 3 s window: a bid now is outside it, a bid 1.5 s before the end is inside.
    [(_, alice_token), (bob, bob_token)] = await members(2)
    auction_gid = await schedule_auction(a, staff_token, timedelta(seconds=8), snipe=3)
    auction_id = decode_id(auction_gid, "Auction")
    early = (await a.gql(BID, {"auctionId": auction_gid, "amount": 10000}, token=alice_token))["auctionBid"]
    assert early["bid"] == {"amount": 10000, "extended": False}
    scheduled_end = (await Auction.get(id=auction_id)).ends_at
    await asyncio.sleep(max(0.0, (scheduled_end - now()).total_seconds() - 1.5))
    late = (await b.gql(BID, {"auctionId": auction_gid, "amount": 10100}, token=bob_token))["auctionBid"]
    assert late["bid"] == {"amount": 10100, "extended": True}, late
    moved = datetime.fromisoformat(late["auction"]["endsAt"])
    assert moved > scheduled_end and late["auction"]["extensions"] == 1
    # Past the old end the auction is still open on both processes; past the new one the sweepers close it.
    await asyncio.sleep(max(0.0, (scheduled_end - now()).total_seconds() + 0.2))
    assert (await Auction.get(id=auction_id)).status == AuctionStatus.LIVE
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        closed = await Auction.get(id=auction_id)
        if closed.status != AuctionStatus.LIVE:
            break
        await asyncio.sleep(0.2)
    assert (closed.status, closed.offer_member_id, closed.offer_price) == (  # type: ignore[attr-defined]
        AuctionStatus.OFFERED,
        bob,
        10100,
    )
    assert closed.ended_at is not None and closed.ended_at >= moved
