"""Red-packet rain in a live room: staff schedule a rain, members grab its packets, every prize lands once.

The split is checked as a property (hypothesis); the grab's guarantees (each packet once, each member once,
exact sums, a grab left behind by a dying process credited once) are checked here in one process on either
backend, and across two server processes on PostgreSQL + Redis in tests/test_live_plays_multiprocess.py.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.clock import now, set_clock
from models import (
    AuditLog,
    LiveRoom,
    Member,
    PointsEntry,
    PointsReason,
    RainStatus,
    RedPacket,
    RedPacketRain,
    StaffRole,
)
from schema.node import encode_id
from services.access.staff import create_staff
from services.errors import DomainError, ErrorCode
from services.live import red_packets
from services.live.events import history_since
from tests.graphql_client import gql
from tests.test_cart import new_member

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
RAIN_FIELDS = (
    "id status totalAmount packetCount minAmount grabbedCount grabbedAmount leftCount startsAt endsAt"
)
SCHEDULE = f"""mutation($input: RedPacketRainInput!) {{
  redPacketRainSchedule(input: $input) {{ rain {{ {RAIN_FIELDS} }} {ERRORS} }} }}"""
STOP = f"mutation($id: ID!) {{ redPacketRainStop(id: $id) {{ rain {{ {RAIN_FIELDS} }} {ERRORS} }} }}"
GRAB = f"""mutation($rainId: ID!) {{
  redPacketGrab(rainId: $rainId) {{ packet {{ amount repeated credited }} {ERRORS} }} }}"""
RAIN = f"query($id: ID!) {{ redPacketRain(id: $id) {{ {RAIN_FIELDS} }} }}"
RAINS = f"""query($roomId: ID!) {{ redPacketRains(roomId: $roomId, first: 10) {{
  totalCount edges {{ node {{ {RAIN_FIELDS} }} }} }} }}"""


# --- the split ---------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=1, max_value=2_000).flatmap(
        lambda count: st.tuples(
            st.just(count),
            st.integers(min_value=1, max_value=50).flatmap(
                lambda minimum: st.tuples(
                    st.just(minimum),
                    st.integers(min_value=count * minimum, max_value=count * minimum + 10**6),
                )
            ),
        )
    ),
    st.integers(min_value=0, max_value=2**32),
)
def test_a_split_sums_to_the_total_and_keeps_every_minimum(
    setup: tuple[int, tuple[int, int]], seed: int
) -> None:
    count, (minimum, total) = setup
    packets = red_packets.split_packets(total, count, minimum, random.Random(seed))
    assert len(packets) == count
    assert sum(packets) == total
    assert min(packets) >= minimum


def test_a_split_is_random_and_fair() -> None:
    rng = random.Random(7)
    # 10 packets of 1,000 points: over many rains each position averages the same share.
    sums = [0] * 10
    for _ in range(2000):
        for i, amount in enumerate(red_packets.split_packets(1000, 10, 1, rng)):
            sums[i] += amount
    means = [s / 2000 for s in sums]
    assert all(90 < m < 110 for m in means), means
    assert len(set(red_packets.split_packets(1000, 10, 1, rng))) > 1
    with pytest.raises(ValueError):
        red_packets.split_packets(10, 11, 1)
    assert red_packets.split_packets(10, 10, 1) == [1] * 10


# --- helpers -----------------------------------------------------------------------------------------------


@pytest.fixture
async def staff_token() -> str:
    _, token = await create_staff(f"rain-{secrets.token_hex(4)}", StaffRole.OPERATOR)
    return token


@pytest.fixture
async def clock() -> AsyncIterator[list[datetime]]:
    """A clock the test moves: `clock[0]` is now."""
    moment = [now()]
    set_clock(lambda: moment[0])
    yield moment
    set_clock(None)


async def new_room() -> int:
    room = await LiveRoom.create(
        title="今晚好物", anchor_name="小林", scheduled_start=now(), scheduled_end=now() + timedelta(hours=2)
    )
    return int(room.id)


async def room_gid() -> str:
    return encode_id("LiveRoom", await new_room())


async def schedule(
    client: httpx.AsyncClient, token: str, *, expect_errors: bool = False, **overrides: Any
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "roomId": await room_gid(),
        "totalAmount": 1000,
        "packetCount": 10,
        "startsAt": now().isoformat(),
        "durationSeconds": 60,
        "title": "开播红包雨",
    }
    fields.update(overrides)
    payload: dict[str, Any] = (await gql(client, SCHEDULE, {"input": fields}, token))["data"][
        "redPacketRainSchedule"
    ]
    if not expect_errors:
        assert payload["errors"] == [], payload
    return payload


async def grab(client: httpx.AsyncClient, token: str, rain_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await gql(client, GRAB, {"rainId": rain_id}, token))["data"]["redPacketGrab"]
    return payload


def pk(gid: str) -> int:
    from schema.node import decode_id

    return decode_id(gid, "RedPacketRain")


# --- staff -------------------------------------------------------------------------------------------------


async def test_bad_setups_are_refused_field_by_field_and_audited(
    client: httpx.AsyncClient, staff_token: str
) -> None:
    cases = [
        ({"packetCount": 11, "totalAmount": 10}, "input.packetCount"),
        ({"packetCount": 10, "totalAmount": 100, "minAmount": 11}, "input.minAmount"),
        ({"minAmount": 0}, "input.minAmount"),
        ({"durationSeconds": 0}, "input.durationSeconds"),
        ({"startsAt": (now() - timedelta(hours=1)).isoformat(), "durationSeconds": 60}, "input.startsAt"),
        ({"totalAmount": 0}, "input.totalAmount"),
        ({"packetCount": 10_001, "totalAmount": 10**6}, "input.packetCount"),
    ]
    before = await RedPacketRain.all().count()
    for overrides, field in cases:
        payload = await schedule(client, staff_token, expect_errors=True, **overrides)
        assert payload["rain"] is None
        assert [(e["field"], e["code"]) for e in payload["errors"]] == [(field, "BAD_USER_INPUT")], overrides
    assert await RedPacketRain.all().count() == before  # nothing half-written
    refused = await AuditLog.filter(action="redPacketRainSchedule", succeeded=False).count()
    assert refused >= len(cases)
    # Members may not schedule rains.
    _, member_token = await new_member()
    payload = await schedule(client, member_token, expect_errors=True)
    assert payload["errors"][0]["code"] == "FORBIDDEN"


async def test_a_rain_falls_every_member_grabs_once_and_every_point_lands(
    client: httpx.AsyncClient, staff_token: str
) -> None:
    room = await room_gid()
    rain = (await schedule(client, staff_token, roomId=room, totalAmount=500, packetCount=5, minAmount=20))[
        "rain"
    ]
    assert rain["status"] == "LIVE" and rain["leftCount"] == 5  # it starts now
    assert await AuditLog.filter(action="redPacketRainSchedule", succeeded=True, target__contains="").exists()
    members = [await new_member() for _ in range(7)]
    answers = [await grab(client, token, rain["id"]) for _, token in members]
    won = [a["packet"] for a in answers if a["packet"]]
    assert len(won) == 5 and all(p["credited"] and not p["repeated"] and p["amount"] >= 20 for p in won)
    assert sum(p["amount"] for p in won) == 500
    assert [a["errors"][0]["code"] for a in answers if not a["packet"]] == ["RAIN_EMPTY", "RAIN_EMPTY"]
    for (member, _), answer in zip(members, answers, strict=True):
        entries = await PointsEntry.filter(member_id=member.id, reason=PointsReason.RED_PACKET)
        assert [e.delta for e in entries] == ([answer["packet"]["amount"]] if answer["packet"] else [])
        assert (await Member.get(id=member.id)).points == (answer["packet"] or {"amount": 0})["amount"]
    # A second grab answers the member's packet again and credits nothing more.
    again = await grab(client, members[0][1], rain["id"])
    assert again["packet"] == {**answers[0]["packet"], "repeated": True}
    assert await PointsEntry.filter(member_id=members[0][0].id).count() == 1
    numbers = (await gql(client, RAIN, {"id": rain["id"]}))["data"]["redPacketRain"]
    assert (numbers["grabbedCount"], numbers["grabbedAmount"], numbers["leftCount"]) == (5, 500, 0)
    listed = (await gql(client, RAINS, {"roomId": room}))["data"]["redPacketRains"]
    assert listed["totalCount"] == 1 and listed["edges"][0]["node"]["grabbedAmount"] == 500


async def test_a_rain_refuses_grabs_before_it_starts_and_after_it_ends(
    client: httpx.AsyncClient, staff_token: str, clock: list[datetime]
) -> None:
    start = now() + timedelta(minutes=10)
    rain = (await schedule(client, staff_token, startsAt=start.isoformat(), durationSeconds=30))["rain"]
    _, token = await new_member()
    _, late_token = await new_member()  # tokens are issued now: a token from the future is refused
    early = await grab(client, token, rain["id"])
    assert early["errors"][0]["code"] == "RAIN_NOT_STARTED"
    # At its time it falls: the first winner (or the sweeper, whichever comes first) starts it.
    clock[0] = start + timedelta(seconds=1)
    assert (await grab(client, token, rain["id"]))["packet"]["credited"]
    assert (await RedPacketRain.get(id=pk(rain["id"]))).status == RainStatus.LIVE
    await red_packets.sweep_rains(clock[0])  # nothing left for the sweeper to start: announced once
    room_id = (await RedPacketRain.get(id=pk(rain["id"]))).room_id
    assert [type(e.event).__name__ for e in await history_since(room_id, 0)] == ["RedPacketRainStarted"]
    clock[0] = start + timedelta(seconds=31)
    assert (await grab(client, late_token, rain["id"]))["errors"][0]["code"] == "RAIN_OVER"
    await red_packets.sweep_rains(clock[0])
    assert (await RedPacketRain.get(id=pk(rain["id"]))).status == RainStatus.ENDED
    ended = (await history_since(room_id, 0))[-1].event
    assert type(ended).__name__ == "RedPacketRainEnded" and ended.packets_grabbed == 1  # type: ignore[attr-defined]
    # Stopping a rain that ended is a conflict; stopping a scheduled one cancels it.
    stopped = (await gql(client, STOP, {"id": rain["id"]}, staff_token))["data"]["redPacketRainStop"]
    assert stopped["errors"][0]["code"] == "CONFLICT"
    later = (await schedule(client, staff_token, startsAt=(clock[0] + timedelta(hours=1)).isoformat()))[
        "rain"
    ]
    stopped = (await gql(client, STOP, {"id": later["id"]}, staff_token))["data"]["redPacketRainStop"]
    assert stopped["rain"]["status"] == "CANCELLED"
    assert (await grab(client, token, later["id"]))["errors"][0]["code"] == "RAIN_OVER"


async def test_stopping_a_falling_rain_stops_grabs_at_once(
    client: httpx.AsyncClient, staff_token: str
) -> None:
    rain = (await schedule(client, staff_token, durationSeconds=600))["rain"]
    _, first = await new_member()
    assert (await grab(client, first, rain["id"]))["packet"]
    stopped = (await gql(client, STOP, {"id": rain["id"]}, staff_token))["data"]["redPacketRainStop"]
    assert stopped["rain"]["status"] == "ENDED" and stopped["rain"]["grabbedCount"] == 1
    _, second = await new_member()
    assert (await grab(client, second, rain["id"]))["errors"][0]["code"] == "RAIN_OVER"
    # The room heard both: the rain started (when it was scheduled to start now) and ended.
    room_id = (await RedPacketRain.get(id=pk(rain["id"]))).room_id
    heard = [e.event for e in await history_since(room_id, 0)]
    assert [type(e).__name__ for e in heard] == ["RedPacketRainStarted", "RedPacketRainEnded"]
    assert heard[0].rain_id == pk(rain["id"]) and heard[0].packet_count == 10
    assert (heard[1].packet_count, heard[1].packets_grabbed) == (10, 1)


async def test_a_rain_needs_a_room(client: httpx.AsyncClient, staff_token: str) -> None:
    payload = await schedule(client, staff_token, expect_errors=True, roomId=encode_id("LiveRoom", 10**9))
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("input.roomId", "NOT_FOUND")]


async def test_many_members_at_once_get_each_packet_once(client: httpx.AsyncClient, staff_token: str) -> None:
    rain = (await schedule(client, staff_token, totalAmount=2000, packetCount=20))["rain"]
    members = [await new_member() for _ in range(60)]
    answers = await asyncio.gather(*(grab(client, token, rain["id"]) for _, token in members))
    won = [a["packet"]["amount"] for a in answers if a["packet"]]
    assert len(won) == 20 and sum(won) == 2000
    packets = await RedPacket.filter(rain_id=pk(rain["id"])).values("member_id", "credited_at")
    assert len({p["member_id"] for p in packets}) == 20 and all(p["credited_at"] for p in packets)
    entries = await PointsEntry.filter(
        reason=PointsReason.RED_PACKET, idempotency_key__startswith=f"red-packet:{pk(rain['id'])}:"
    )
    assert len(entries) == 20 and sum(e.delta for e in entries) == 2000


async def test_a_grab_whose_process_died_before_the_credit_is_credited_once_by_the_sweeper(
    client: httpx.AsyncClient, staff_token: str, clock: list[datetime]
) -> None:
    rain = (await schedule(client, staff_token, totalAmount=300, packetCount=3))["rain"]
    rain_id = pk(rain["id"])
    member, _ = await new_member()
    # The Redis half of a grab, then nothing: what a process killed between grab and credit leaves behind.
    index, amount, new = await red_packets.take_packet(rain_id, member.id)
    assert new and (await Member.get(id=member.id)).points == 0
    # Too fresh for the sweeper: its own request may still be crediting it.
    assert await red_packets.credit_stranded_grabs(clock[0]) == 0
    clock[0] += red_packets.STRANDED_AFTER + timedelta(seconds=1)
    # Two sweepers (two processes) at once: one credits it.
    credited = await asyncio.gather(*(red_packets.credit_stranded_grabs(clock[0]) for _ in range(2)))
    assert sum(credited) >= 1
    assert (await Member.get(id=member.id)).points == amount
    assert await PointsEntry.filter(member_id=member.id).count() == 1
    assert await red_packets.credit_stranded_grabs(clock[0]) == 0  # the journal is empty now
    packet = await RedPacket.get(rain_id=rain_id, index=index)
    assert packet.member_id == member.id and packet.credited_at is not None
    # The member's retried grab answers the same packet, credited.
    with pytest.raises(DomainError) as refused:
        await red_packets.take_packet(rain_id + 10**6, member.id)
    assert refused.value.code == ErrorCode.NOT_FOUND
    retried = await red_packets.grab_packet(rain_id, member.id)
    assert (retried.index, retried.amount, retried.new, retried.credited) == (index, amount, False, True)
    assert await PointsEntry.filter(member_id=member.id).count() == 1


async def test_redis_forgetting_a_rain_gives_no_member_a_second_packet(
    client: httpx.AsyncClient, staff_token: str
) -> None:
    from infra.redis import get_redis

    rain = (await schedule(client, staff_token, totalAmount=40, packetCount=4))["rain"]
    rain_id = pk(rain["id"])
    _, token = await new_member()
    first = (await grab(client, token, rain["id"]))["packet"]
    # Redis restarted empty: the next grab loads the rain again from the rows, packets held staying held.
    await get_redis().delete(*red_packets._keys(rain_id).all)
    again = (await grab(client, token, rain["id"]))["packet"]
    assert again == {**first, "repeated": True}
    others = [await new_member() for _ in range(4)]
    answers = [await grab(client, t, rain["id"]) for _, t in others]
    assert sum(1 for a in answers if a["packet"]) == 3
    assert sum(p.amount for p in await RedPacket.filter(rain_id=rain_id, member_id__isnull=False)) == 40


async def test_a_coupon_rain_puts_one_coupon_in_each_winners_wallet(
    client: httpx.AsyncClient, staff_token: str
) -> None:
    from models import MemberCoupon
    from tests.test_coupons import new_coupon

    coupon = await new_coupon(total_quantity=5, per_member_limit=1)
    coupon_gid = encode_id("Coupon", coupon.id)
    # More packets than coupons left is refused; so is a coupon rain without its coupon.
    too_many = await schedule(
        client, staff_token, expect_errors=True, prize="COUPON", couponId=coupon_gid, packetCount=6
    )
    assert [(e["field"], e["code"]) for e in too_many["errors"]] == [("input.packetCount", "BAD_USER_INPUT")]
    bare = await schedule(client, staff_token, expect_errors=True, prize="COUPON", packetCount=3)
    assert [e["field"] for e in bare["errors"]] == ["input.couponId"]
    rain = (
        await schedule(
            client, staff_token, prize="COUPON", couponId=coupon_gid, packetCount=3, totalAmount=None
        )
    )["rain"]
    members = [await new_member() for _ in range(4)]
    # One member already holds the most of this coupon one may: their packet goes back to the rain.
    (holder, holder_token), *others = members
    await MemberCoupon.create(
        coupon_id=coupon.id,
        member_id=holder.id,
        seq=1,
        source="CENTER",
        valid_from=now(),
        valid_until=now() + timedelta(days=7),
    )
    refused = await grab(client, holder_token, rain["id"])
    assert refused["errors"][0]["code"] == "LIMIT_EXCEEDED"
    answers = [await grab(client, token, rain["id"]) for _, token in others]
    assert all(a["packet"] and a["packet"]["credited"] for a in answers), answers
    for member, _ in others:
        held = await MemberCoupon.filter(member_id=member.id, coupon_id=coupon.id).values_list(
            "source", flat=True
        )
        assert list(held) == ["RED_PACKET"]
    numbers = (await gql(client, RAIN, {"id": rain["id"]}))["data"]["redPacketRain"]
    assert (numbers["grabbedCount"], numbers["leftCount"]) == (3, 0)
    assert await PointsEntry.filter(member_id__in=[m.id for m, _ in others]).count() == 0
