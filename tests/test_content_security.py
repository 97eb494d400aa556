"""WeChat content security on what members write and upload: the policy matrix, the verdict callback and its
signatures (plain and safe mode, JSON and XML), failing closed, and asking again when WeChat was not reached."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from infra import wechat as wechat_service
from infra.clock import now
from infra.wechat import Suggest
from models import Moderation, Upload
from schema.node import decode_id
from services.content import security
from services.content.security import ContentKind
from services.errors import DomainError, ErrorCode
from services.orders.sweeper import sweep_once
from tests.content_support import deliver_verdicts, new_member, png_image, upload
from tests.wechat_standin import MEDIA_CHECK_ASYNC, MSG_SEC_CHECK, TOKEN, WeChatStandIn

pytestmark = pytest.mark.usefixtures("seeded")

TEXT_MATRIX = {
    (ContentKind.REVIEW, "pass"): Moderation.PASSED,
    (ContentKind.REVIEW, "review"): Moderation.HELD,
    (ContentKind.REVIEW, "risky"): ErrorCode.CONTENT_REJECTED,
    (ContentKind.ARTICLE, "pass"): Moderation.PASSED,
    (ContentKind.ARTICLE, "review"): Moderation.HELD,
    (ContentKind.ARTICLE, "risky"): ErrorCode.CONTENT_REJECTED,
    (ContentKind.LIVE_COMMENT, "pass"): Moderation.PASSED,
    (ContentKind.LIVE_COMMENT, "review"): Moderation.HELD,
    (ContentKind.LIVE_COMMENT, "risky"): ErrorCode.CONTENT_REJECTED,
}
WORDS = {"pass": "好看的衣服", "review": "可疑的话", "risky": "违规的话"}


@pytest.mark.parametrize(("kind", "suggest"), list(TEXT_MATRIX), ids=lambda v: str(v))
async def test_text_policy_matrix(
    wechat: WeChatStandIn, redis: object, kind: ContentKind, suggest: str
) -> None:
    wechat.add_review_words("可疑")
    wechat.add_risky_words("违规")
    expected = TEXT_MATRIX[(kind, suggest)]
    try:
        outcome: Moderation | ErrorCode = await security.check_text(
            kind, "o_writer", WORDS[suggest], "input.content"
        )
    except DomainError as exc:
        assert exc.field == "input.content"
        outcome = exc.code
    assert outcome == expected
    (call,) = wechat.calls(MSG_SEC_CHECK)
    scene = security.POLICIES[kind].scene
    assert call.body == {"version": 2, "openid": "o_writer", "scene": int(scene), "content": WORDS[suggest]}


async def test_long_text_is_checked_in_parts_and_the_worst_part_counts(
    wechat: WeChatStandIn, redis: object
) -> None:
    wechat.add_review_words("可疑")
    text = "好" * 2600 + "可疑"
    assert await security.check_text(ContentKind.ARTICLE, "o_writer", text) is Moderation.HELD
    assert [len(c.body["content"]) for c in wechat.calls(MSG_SEC_CHECK)] == [2500, 102]  # type: ignore[index]
    assert await security.check_text(ContentKind.REVIEW, "o_writer", "   ") is Moderation.PASSED
    assert len(wechat.calls(MSG_SEC_CHECK)) == 2, "empty text needs no check"


async def test_text_is_never_let_through_unchecked(wechat: WeChatStandIn, redis: object) -> None:
    wechat.fail(MSG_SEC_CHECK, -1)
    with pytest.raises(DomainError) as down:
        await security.check_text(ContentKind.REVIEW, "o_writer", "好看")
    assert down.value.code is ErrorCode.WECHAT_UNAVAILABLE
    wechat.fail(MSG_SEC_CHECK, 45011)
    with pytest.raises(DomainError) as limited:
        await security.check_text(ContentKind.REVIEW, "o_writer", "好看")
    assert limited.value.code is ErrorCode.WECHAT_RATE_LIMITED


async def _member_upload(client: httpx.AsyncClient, url_part: str = "") -> Upload:
    _, token = await new_member()
    response = await upload(client, token, png_image())
    assert response.status_code == 201, response.text
    return await Upload.get(id=decode_id(response.json()["id"], "Upload"))


@pytest.mark.parametrize(
    ("suggest", "expected"),
    [("pass", Moderation.PASSED), ("review", Moderation.HELD), ("risky", Moderation.REJECTED)],
)
@pytest.mark.parametrize(
    ("fmt", "encrypted"), [("json", False), ("json", True), ("xml", False), ("xml", True)]
)
async def test_image_verdicts_arrive_signed_at_the_message_endpoint(
    client: httpx.AsyncClient,
    wechat: WeChatStandIn,
    suggest: str,
    expected: Moderation,
    fmt: str,
    encrypted: bool,
) -> None:
    wechat.message_format, wechat.encrypt_messages = fmt, encrypted
    row = await _member_upload(client)
    wechat.media_verdict(row.url, suggest)
    assert await deliver_verdicts(client, wechat) == [200]
    await row.refresh_from_db()
    assert row.moderation is expected and row.checked_at is not None
    assert row.label == {"pass": 100, "review": 21000, "risky": 20006}[suggest]


async def test_forged_and_replayed_messages_change_nothing(
    client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    row = await _member_upload(client)
    wechat.media_verdict(row.url, "pass")
    (message,) = wechat.media_messages()

    forged = {**message.params, "signature": "0" * 40}
    refused = await client.post("/wechat/message", params=forged, content=message.body)
    assert refused.status_code == 403
    unsigned = await client.post("/wechat/message", content=message.body)
    assert unsigned.status_code == 403
    await row.refresh_from_db()
    assert row.moderation is Moderation.PENDING

    # The plain signature does not cover the body: a captured one replayed with another body is ignored
    # (one push per timestamp and nonce), and an old one is refused.
    assert (
        await client.post("/wechat/message", params=message.params, content=message.body)
    ).text == "success"
    await row.refresh_from_db()
    assert row.moderation is Moderation.PASSED
    wechat_row = await _member_upload(client)
    swapped = message.body.replace(row.trace_id.encode(), wechat_row.trace_id.encode())  # type: ignore[union-attr]
    assert (await client.post("/wechat/message", params=message.params, content=swapped)).text == "success"
    await wechat_row.refresh_from_db()
    assert wechat_row.moderation is Moderation.PENDING
    stale = wechat.event_message({"Event": "ping"}, timestamp=int(time.time()) - 3600)
    assert (await client.post("/wechat/message", params=stale.params, content=stale.body)).status_code == 403

    # In safe mode the signature covers the ciphertext: a verdict cannot be swapped at all.
    row = wechat_row
    wechat.encrypt_messages = True
    event = {
        "Event": "wxa_media_check",
        "trace_id": row.trace_id,
        "result": {"suggest": "pass", "label": 100},
    }
    sealed = wechat.event_message(event)
    tampered = {**sealed.params, "msg_signature": "f" * 40}
    assert (await client.post("/wechat/message", params=tampered, content=sealed.body)).status_code == 403
    await row.refresh_from_db()
    assert row.moderation is Moderation.PENDING

    assert (await client.post("/wechat/message", params=sealed.params, content=sealed.body)).text == "success"
    await row.refresh_from_db()
    assert row.moderation is Moderation.PASSED
    # WeChat repeats pushes it thinks were lost; a later contrary verdict for a decided image changes nothing.
    risky = {**event, "result": {"suggest": "risky", "label": 20006}}
    again = wechat.event_message(risky)
    assert (await client.post("/wechat/message", params=again.params, content=again.body)).status_code == 200
    await row.refresh_from_db()
    assert row.moderation is Moderation.PASSED
    # A verdict for a trace we never asked about is acknowledged and ignored.
    stray = wechat.event_message({**event, "trace_id": "no-such-trace"})
    assert (await client.post("/wechat/message", params=stray.params, content=stray.body)).status_code == 200


async def test_the_url_check_answers_the_echo_only_when_signed(
    client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    message = wechat.event_message({"Event": "ping"})
    params = {k: message.params[k] for k in ("signature", "timestamp", "nonce")}
    ok = await client.get("/wechat/message", params={**params, "echostr": "hello-123"})
    assert (ok.status_code, ok.text) == (200, "hello-123")
    bad = await client.get("/wechat/message", params={**params, "signature": "x", "echostr": "hello-123"})
    assert bad.status_code == 403 and "hello" not in bad.text


async def test_a_media_check_wechat_did_not_take_is_asked_again_by_the_sweeper(
    client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    wechat.fail(MEDIA_CHECK_ASYNC, -1)
    row = await _member_upload(client)
    assert row.moderation is Moderation.PENDING and row.trace_id is None and row.check_attempts == 1
    assert row.next_check_at is not None and row.next_check_at > now()

    # Not yet due: nothing is asked.
    await sweep_once(now())
    assert wechat.media_jobs() == []
    report = await sweep_once(now() + timedelta(minutes=3))
    assert report.jobs.get("media checks", 0) >= 1
    await row.refresh_from_db()
    (job,) = [j for j in wechat.media_jobs() if j.media_url == row.url]
    assert row.trace_id == job.trace_id and row.check_attempts == 2

    # The verdict then lands as usual; a second sweep asks nothing more for a decided image.
    assert await deliver_verdicts(client, wechat) == [200]
    await row.refresh_from_db()
    assert row.moderation is Moderation.PASSED and row.next_check_at is None
    await sweep_once(now() + timedelta(hours=3))
    assert all(j.media_url != row.url for j in wechat.media_jobs())


def test_media_policy() -> None:
    assert security.media_moderation(Suggest.PASS) is Moderation.PASSED
    assert security.media_moderation(Suggest.REVIEW) is Moderation.HELD
    assert security.media_moderation(Suggest.RISKY) is Moderation.REJECTED


async def test_a_check_with_an_expired_token_is_retried_with_a_new_one(
    wechat: WeChatStandIn, redis: object
) -> None:
    assert await security.check_text(ContentKind.LIVE_COMMENT, "o_writer", "好看") is Moderation.PASSED
    wechat.expire_tokens()
    fetched = len(wechat.calls(TOKEN))
    assert await security.check_text(ContentKind.LIVE_COMMENT, "o_writer", "还是好看") is Moderation.PASSED
    assert len(wechat.calls(TOKEN)) == fetched + 1
    refused, retried = wechat.calls(MSG_SEC_CHECK)[-2:]
    assert refused.params["access_token"] != retried.params["access_token"]
    assert retried.body == {"version": 2, "openid": "o_writer", "scene": 2, "content": "还是好看"}


async def test_a_check_answered_with_an_http_error_or_not_at_all_fails_closed(
    wechat: WeChatStandIn, redis: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    wechat.fail_http(MSG_SEC_CHECK, 502)
    with pytest.raises(DomainError) as broken:
        await security.check_text(ContentKind.LIVE_COMMENT, "o_writer", "好看")
    assert broken.value.code is ErrorCode.WECHAT_UNAVAILABLE
    monkeypatch.setattr(wechat_service, "TIMEOUT_SECONDS", 0.2)
    wechat.delay(MSG_SEC_CHECK, 1.0)
    with pytest.raises(DomainError) as silent:
        await security.check_text(ContentKind.LIVE_COMMENT, "o_writer", "好看")
    assert silent.value.code is ErrorCode.WECHAT_UNAVAILABLE
