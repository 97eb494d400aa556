"""Comments in a live room: every text goes through WeChat's msg_sec_check v2 with the writer's openid and the
comment scene; risky text is refused, text WeChat wants reviewed waits for staff, clean text shows at once in
every viewer's stream. Staff approve, remove and mute; a member cannot flood the room."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import Any

import pytest

from infra.clock import now
from models import LiveComment, LiveMute, Member, StaffRole
from schema.node import decode_id, encode_id
from services.access.staff import create_staff
from services.live import feed
from services.live.comments import COMMENT_LIMIT
from services.live.events import Envelope
from tests.graphql_client import gql
from tests.test_cart import new_member
from tests.test_live_rooms import GO_LIVE, ok, schedule
from tests.wechat_standin import MSG_SEC_CHECK, WeChatStandIn

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
POST = f"""mutation($roomId: ID!, $text: String!) {{ liveCommentPost(roomId: $roomId, text: $text) {{
  comment {{ id text nickname status }} {ERRORS} }} }}"""
APPROVE = f"mutation($id: ID!) {{ liveCommentApprove(id: $id) {{ comment {{ id status }} {ERRORS} }} }}"
REMOVE = f"mutation($id: ID!) {{ liveCommentRemove(id: $id) {{ comment {{ id removed }} {ERRORS} }} }}"
MUTE = f"""mutation($roomId: ID!, $memberId: ID!, $minutes: Int) {{
  liveMemberMute(roomId: $roomId, memberId: $memberId, minutes: $minutes) {{ mutedUntil {ERRORS} }} }}"""
SHOWN = "query($id: ID!) { liveRoom(id: $id) { comments { id text nickname } } }"
HELD = "query($id: ID!) { liveHeldComments(roomId: $id) { id text status } }"


@pytest.fixture
async def operator() -> str:
    _, token = await create_staff(f"live-mod-{secrets.token_hex(3)}", StaffRole.OPERATOR)
    return token


@pytest.fixture
async def on_air(client: Any, operator: str) -> dict[str, Any]:
    room = await schedule(client, operator, "评论直播间")
    await ok(client, GO_LIVE, {"id": room["id"]}, operator, "liveRoomGoLive")
    return room


async def viewer(nickname: str) -> tuple[Member, str]:
    member, token = await new_member()
    member.nickname = nickname
    await member.save()
    return member, token


async def post(client: Any, token: str | None, room: dict[str, Any], text: str) -> dict[str, Any]:
    return (await gql(client, POST, {"roomId": room["id"], "text": text}, token))["data"]["liveCommentPost"]  # type: ignore[no-any-return]


async def next_envelope(listener: feed.QueueListener) -> Envelope:
    async with asyncio.timeout(5):
        return await listener.queue.get()


async def test_clean_comments_show_at_once_risky_ones_are_refused_and_reviewed_ones_wait_for_staff(
    client: Any, operator: str, on_air: dict[str, Any], wechat: WeChatStandIn
) -> None:
    wechat.add_risky_words("违禁")
    wechat.add_review_words("待审")
    member, token = await viewer("阿May")
    room_pk = decode_id(on_air["id"], "LiveRoom")

    async with feed.watching(room_pk) as listener:
        shown = await post(client, token, on_air, "  这件好看吗?  ")
        assert shown["errors"] == [] and shown["comment"]["status"] == "PASSED"
        assert (shown["comment"]["text"], shown["comment"]["nickname"]) == ("这件好看吗?", "阿May")
        posted = await next_envelope(listener)
        assert posted.event.KIND == "CommentPosted"
        assert (posted.event.nickname, posted.event.text) == ("阿May", "这件好看吗?")  # type: ignore[attr-defined]

        # WeChat was asked with version 2, the writer's openid and the comment scene.
        [call] = wechat.calls(MSG_SEC_CHECK)
        assert call.body == {"version": 2, "openid": member.openid, "scene": 2, "content": "这件好看吗?"}

        risky = await post(client, token, on_air, "卖违禁品")
        assert [(e["code"], e["field"]) for e in risky["errors"]] == [("CONTENT_REJECTED", "text")]
        assert risky["comment"] is None

        held = await post(client, token, on_air, "这个待审一下")
        assert held["errors"] == [] and held["comment"]["status"] == "HELD"
        assert listener.queue.empty()  # nothing shown of either

        waiting = (await gql(client, HELD, {"id": on_air["id"]}, operator))["data"]["liveHeldComments"]
        assert [c["text"] for c in waiting] == ["这个待审一下"]
        refused = await gql(client, HELD, {"id": on_air["id"]}, token, expect_errors=True)
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

        approved = await ok(client, APPROVE, {"id": held["comment"]["id"]}, operator, "liveCommentApprove")
        assert approved["comment"]["status"] == "PASSED"
        assert (await next_envelope(listener)).event.text == "这个待审一下"  # type: ignore[attr-defined]

        await ok(client, REMOVE, {"id": shown["comment"]["id"]}, operator, "liveCommentRemove")
        removed = await next_envelope(listener)
        assert (removed.event.KIND, removed.event.comment_id) == (  # type: ignore[attr-defined]
            "CommentRemoved",
            decode_id(shown["comment"]["id"], "LiveComment"),
        )

    page = (await gql(client, SHOWN, {"id": on_air["id"]}))["data"]["liveRoom"]["comments"]
    assert [(c["text"], c["nickname"]) for c in page] == [("这个待审一下", "阿May")]
    assert await LiveComment.filter(room_id=room_pk).count() == 2  # the risky one was never kept


async def test_a_member_cannot_flood_the_room_and_a_muted_one_cannot_comment(
    client: Any, operator: str, on_air: dict[str, Any], wechat: WeChatStandIn
) -> None:
    _, token = await viewer("刷屏的人")
    for i in range(COMMENT_LIMIT):
        assert (await post(client, token, on_air, f"第{i}条"))["errors"] == []
    flooded = await post(client, token, on_air, "再来一条")
    assert [e["code"] for e in flooded["errors"]] == ["RATE_LIMITED"]

    other, other_token = await viewer("捣乱的人")
    variables = {"roomId": on_air["id"], "memberId": encode_id("Member", other.id), "minutes": 10}
    assert (await ok(client, MUTE, variables, operator, "liveMemberMute"))["mutedUntil"]
    assert [e["code"] for e in (await post(client, other_token, on_air, "我还在"))["errors"]] == ["FORBIDDEN"]
    await ok(client, MUTE, {**variables, "minutes": 0}, operator, "liveMemberMute")
    assert (await post(client, other_token, on_air, "我回来了"))["errors"] == []

    refused = await gql(client, MUTE, variables, token)
    assert [e["code"] for e in refused["data"]["liveMemberMute"]["errors"]] == ["FORBIDDEN"]


async def test_comments_need_a_member_a_room_on_air_and_a_short_text(
    client: Any, operator: str, wechat: WeChatStandIn
) -> None:
    room = await schedule(client, operator, "还没开播")
    _, token = await viewer("早到的人")
    assert [e["code"] for e in (await post(client, token, room, "来了"))["errors"]] == ["CONFLICT"]
    assert [e["code"] for e in (await post(client, None, room, "来了"))["errors"]] == ["UNAUTHENTICATED"]
    await ok(client, GO_LIVE, {"id": room["id"]}, operator, "liveRoomGoLive")
    too_long = await post(client, token, room, "好" * 101)
    assert [(e["code"], e["field"]) for e in too_long["errors"]] == [("BAD_USER_INPUT", "text")]
    assert [e["code"] for e in (await post(client, token, room, "   "))["errors"]] == ["BAD_USER_INPUT"]
    assert wechat.calls(MSG_SEC_CHECK) == []  # nothing reached WeChat


async def test_a_mute_holds_until_its_end_and_an_unknown_room_is_not_found(
    client: Any, operator: str, on_air: dict[str, Any], wechat: WeChatStandIn
) -> None:
    member, token = await viewer("被禁言的人")
    variables = {"roomId": on_air["id"], "memberId": encode_id("Member", member.id)}
    assert (await ok(client, MUTE, variables, operator, "liveMemberMute"))["mutedUntil"] is None  # for good
    assert [e["code"] for e in (await post(client, token, on_air, "放我出来"))["errors"]] == ["FORBIDDEN"]
    mute = LiveMute.filter(room_id=decode_id(on_air["id"], "LiveRoom"), member_id=member.id)
    await mute.update(until=now() + timedelta(minutes=1))
    assert [e["code"] for e in (await post(client, token, on_air, "还没到点"))["errors"]] == ["FORBIDDEN"]
    await mute.update(until=now() - timedelta(seconds=1))
    assert (await post(client, token, on_air, "到点了"))["errors"] == []
    assert len(wechat.calls(MSG_SEC_CHECK)) == 1, "a muted member's text never reaches WeChat"

    gone = {"id": encode_id("LiveRoom", 10**9)}
    assert [(e["code"], e["field"]) for e in (await post(client, token, gone, "有人吗"))["errors"]] == [
        ("NOT_FOUND", "roomId")
    ]
