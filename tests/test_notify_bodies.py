"""WeChat Pay's notify endpoints as a hostile sender sees them: whatever the body, the answer is WeChat's FAIL
XML with HTTP 200 (never a 500), nothing changes, and the notice is recorded with its outcome."""

from __future__ import annotations

import hashlib
import random
import time
import xml.etree.ElementTree as ET

import httpx
import pytest

from models import PaymentNotice
from services.payments.notifications import MAX_BODY
from tests.wechat_pay_standin import WeChatPayStandIn
from tests.wechat_standin import WeChatStandIn

ENDPOINTS = ["/payments/wechat/notify", "/payments/wechat/refund-notify"]

LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    b'<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]>'
    b"<xml><return_code>&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;</return_code></xml>"
)
EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<xml><return_code>&x;</return_code></xml>"
)
PARAMETER_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>'
    b"<xml><a>1</a></xml>"
)

# Each a body that is not a WeChat Pay notification at all: answered FAIL and recorded as `unreadable`.
UNREADABLE = {
    "empty": b"",
    "blank": b"  \r\n ",
    "self-closed root": b"<xml/>",
    "text root": b"<xml>t</xml>",
    "nested 5,000 deep": b"<xml>" + b"<a>" * 5_000 + b"x" + b"</a>" * 5_000 + b"</xml>",
    "unclosed nesting": b"<xml>" + b"<a>" * 20_000,
    "one nested field": b"<xml><a><b>1</b></a></xml>",
    "not XML": b"hello",
    "JSON": b'{"return_code": "SUCCESS"}',
    "bytes 0-255": bytes(range(256)),
    "billion laughs": LAUGHS,
    "external entity": EXTERNAL,
    "parameter entity": PARAMETER_ENTITY,
    "undeclared entity": b"<xml><a>&nope;</a></xml>",
    "attributes": b'<xml sign="x"><a>1</a></xml>',
    "repeated field": b"<xml><total_fee>1</total_fee><total_fee>2</total_fee></xml>",
    "namespaced field": b'<xml xmlns:p="urn:x"><p:a>1</p:a></xml>',
    "other root": b"<root><a>1</a></root>",
    "two roots": b"<xml><a>1</a></xml><xml><a>2</a></xml>",
    "GBK declared": '<?xml version="1.0" encoding="GBK"?><xml><a>中文</a></xml>'.encode("gbk"),
    "unknown encoding": b'<?xml version="1.0" encoding="x-nope"?><xml><a>1</a></xml>',
    "truncated": b"<xml><return_code><![CDATA[SUCC",
    "field too long": b"<xml><a>" + b"x" * 9000 + b"</a></xml>",
}


def _fail_answer(response: httpx.Response) -> str:
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(response.text)
    assert root.findtext("return_code") == "FAIL", response.text
    return root.findtext("return_msg") or ""


async def _last_notice(kind: str, body: bytes) -> PaymentNotice:
    notice = (
        await PaymentNotice.filter(kind=kind, body_sha256=hashlib.sha256(body).hexdigest())
        .order_by("-id")
        .first()
    )
    assert notice is not None, f"no {kind} notice was recorded"
    return notice


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("name", list(UNREADABLE))
async def test_unreadable_bodies_are_answered_fail_and_recorded(
    client: httpx.AsyncClient, wechat_pay: WeChatPayStandIn, database: None, endpoint: str, name: str
) -> None:
    body = UNREADABLE[name]
    started = time.process_time()
    response = await client.post(endpoint, content=body, headers={"content-type": "text/xml"})
    assert time.process_time() - started < 1.0
    assert _fail_answer(response) == "unreadable"
    notice = await _last_notice("payment" if endpoint.endswith("/notify") else "refund", body)
    assert notice.outcome == "unreadable" and notice.detail


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_bodies_over_the_limit_are_read_no_further(
    client: httpx.AsyncClient, wechat_pay: WeChatPayStandIn, database: None, endpoint: str
) -> None:
    kind = "payment" if endpoint.endswith("/notify") else "refund"
    just_right = b"<xml><a>" + b"x" * 10 + b"</a></xml>"
    over = b"<xml><a>" + b"x" * MAX_BODY + b"</a></xml>"

    def chunks() -> object:
        async def stream():  # a 5 MB body arriving in pieces: the server stops reading after MAX_BODY
            for _ in range(80):
                yield b"<a>" + b"y" * 65_536

        return stream()

    assert _fail_answer(await client.post(endpoint, content=over)) == "too large"
    recorded = await PaymentNotice.filter(kind=kind, outcome="too_large").order_by("-id").first()
    assert recorded is not None and recorded.body_sha256 == hashlib.sha256(over[: MAX_BODY + 1]).hexdigest()
    assert _fail_answer(await client.post(endpoint, content=chunks())) == "too large"  # type: ignore[arg-type]
    # Past the server's general body limit (MAX_BODY_BYTES) too: still WeChat's XML, never a JSON 413.
    huge = await client.post(endpoint, content=b"<xml>" + b"z" * 2_000_000 + b"</xml>")
    assert _fail_answer(huge) == "too large" and huge.headers["connection"] == "close"
    # Under the limit, a well-shaped body goes on to the signature check.
    assert _fail_answer(await client.post(endpoint, content=just_right)) in (
        "invalid signature",
        "invalid notification",
    )
    assert (await _last_notice(kind, just_right)).outcome == "forged"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_random_bytes_never_500(
    client: httpx.AsyncClient, wechat_pay: WeChatPayStandIn, database: None, endpoint: str
) -> None:
    rng = random.Random(14)
    pieces = [
        b"<xml>",
        b"</xml>",
        b"<a>",
        b"</a>",
        b"<![CDATA[",
        b"]]>",
        b"&amp;",
        b"<!--",
        b"-->",
        b"\x00",
        b"x",
    ]
    before = await PaymentNotice.all().count()
    for _ in range(25):
        body = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        _fail_answer(await client.post(endpoint, content=body))
    assert await PaymentNotice.all().count() == before + 25


@pytest.mark.parametrize(
    "name",
    [
        "empty",
        "self-closed root",
        "text root",
        "nested 5,000 deep",
        "billion laughs",
        "external entity",
        "bytes 0-255",
        "GBK declared",
    ],
)
async def test_the_wechat_message_push_refuses_bad_bodies_without_a_500(
    client: httpx.AsyncClient, wechat: WeChatStandIn, name: str
) -> None:
    """The message push endpoint's plain signature does not cover the body: a captured one may come with any."""
    signed = wechat.event_message({"Event": "ping"})
    response = await client.post("/wechat/message", params=signed.params, content=UNREADABLE[name])
    # Refused, or (well-formed, with no event we handle) acknowledged and ignored: never a 500.
    assert response.status_code in (200, 403), (response.status_code, response.text[:200])
