"""A local stand-in for WeChat's server API, speaking its real wire format, for tests.

Our WeChat code runs unchanged against it: wechatpy sends real HTTP requests to WECHAT_API_BASE_URL, which the
`wechat` fixture points here. Like WeChat it checks the appid, secret and access token it is given and answers
with WeChat's own error codes (40013 invalid appid, 40125 invalid appsecret, 40001 invalid access token, 42001
expired, 41001 missing, 40029 invalid code, 40163 code used, 45011 minute quota, -1 system busy, 87014 risky
content). Tests say which codes are valid, which texts are risky, and which calls fail and how
(`fail`, `fail_http`, `delay`); `calls` records what arrived.

Content security speaks both versions of msg_sec_check (v1: errcode 87014; v2: `result.suggest` risky / review /
pass with a label) and media_check_async, whose verdicts the stand-in sends later, as WeChat does, as signed
`wxa_media_check` event messages (plain or AES-encrypted, JSON or XML) to the server's message endpoint:
`media_messages` builds them for a test to post, `push_media_verdicts` posts them over HTTP.

Served by uvicorn on a free 127.0.0.1 port in a background thread (a Starlette app: WeChat Pay's XML API will be
added as more routes).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from wechatpy.crypto import PrpCrypto

from infra.settings import Settings
from tests.threaded_server import ThreadedServer

TOKEN_LIFETIME = 7200

# Endpoint names for `fail`, `fail_http`, `delay` and `calls`.
TOKEN = "token"
JSCODE2SESSION = "jscode2session"
GET_PHONE_NUMBER = "getuserphonenumber"
MSG_SEC_CHECK = "msg_sec_check"
MEDIA_CHECK_ASYNC = "media_check_async"
SUBSCRIBE_SEND = "subscribe_send"
GET_LIVE_INFO = "getliveinfo"
UPLOAD_SHIPPING_INFO = "upload_shipping_info"


def _rid() -> str:
    # WeChat appends a request id to every error message.
    return f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"


def _json(body: dict[str, Any]) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False).encode(), media_type="application/json; encoding=utf-8"
    )


def _error(errcode: int, errmsg: str) -> Response:
    return _json({"errcode": errcode, "errmsg": f"{errmsg} rid: {_rid()}"})


def encrypt_user_data(session_key: str, data: dict[str, Any]) -> tuple[str, str]:
    """`encryptedData` and `iv` as the mini-program gets them: AES-128-CBC under the session key, PKCS#7,
    base64 (what WeChat does for `getPhoneNumber`'s legacy answer and other open data)."""
    iv = secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(data, ensure_ascii=False).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(session_key)), modes.CBC(iv)).encryptor()
    cipher = encryptor.update(plain) + encryptor.finalize()
    return base64.b64encode(cipher).decode(), base64.b64encode(iv).decode()


@dataclass(frozen=True)
class LoginCode:
    """A `wx.login()` code and who it stands for."""

    code: str
    openid: str
    unionid: str | None
    session_key: str


@dataclass(frozen=True)
class Call:
    endpoint: str
    params: dict[str, str]
    body: dict[str, Any] | None


@dataclass(frozen=True)
class MediaJob:
    """An image WeChat was asked to check; its verdict is sent later as an event message."""

    trace_id: str
    openid: str
    scene: int
    media_url: str
    media_type: int


@dataclass(frozen=True)
class SignedMessage:
    """An event message as WeChat posts it: query parameters and body."""

    params: dict[str, str]
    body: bytes
    content_type: str


# Labels WeChat gives: 100 normal, 20002 porn, 20006 crime, 21000 other.
LABELS = {"pass": 100, "review": 21000, "risky": 20006}


@dataclass
class _State:
    login_codes: dict[str, LoginCode] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    phone_codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    risky_words: set[str] = field(default_factory=set)
    review_words: set[str] = field(default_factory=set)
    media_rules: list[tuple[str, str]] = field(default_factory=list)
    media_jobs: list[MediaJob] = field(default_factory=list)
    failures: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    http_failures: dict[str, list[int]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    live_rooms: list[dict[str, Any]] = field(default_factory=list)


class WeChatStandIn(ThreadedServer):
    thread_name = "wechat-standin"

    """WeChat's API for one mini-program (`appid`, `secret`), served at `base_url`."""

    def __init__(self) -> None:
        self.appid = "wx" + secrets.token_hex(8)
        self.secret = secrets.token_hex(16)
        self._lock = threading.Lock()
        self._state = _State()
        # Tokens outlive `reset`, as at WeChat: a token is valid until it expires or is replaced.
        self._tokens: dict[str, float] = {}
        self.port = 0
        # The message push configuration (消息推送) of the mini-program: token, EncodingAESKey, format.
        self.message_token = secrets.token_urlsafe(16)
        self.encoding_aes_key = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        self.encrypt_messages = False
        self.message_format = "json"
        self.app = Starlette(
            routes=[
                Route("/cgi-bin/token", self._token, methods=["GET"]),
                Route("/sns/jscode2session", self._jscode2session, methods=["GET"]),
                Route("/wxa/business/getuserphonenumber", self._get_phone_number, methods=["POST"]),
                Route("/wxa/msg_sec_check", self._msg_sec_check, methods=["POST"]),
                Route("/wxa/media_check_async", self._media_check_async, methods=["POST"]),
                Route("/cgi-bin/message/subscribe/send", self._subscribe_send, methods=["POST"]),
                Route("/wxa/sec/order/upload_shipping_info", self._upload_shipping_info, methods=["POST"]),
                Route("/wxa/business/getliveinfo", self._get_live_info, methods=["POST"]),
            ]
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    # --- what tests set up ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget codes, scripted failures and recorded calls (issued access tokens stay valid)."""
        with self._lock:
            self._state = _State()
        self.encrypt_messages = False
        self.message_format = "json"

    def new_login(self, openid: str | None = None, unionid: str | None = None) -> LoginCode:
        """A fresh, valid `wx.login()` code for `openid` (a new shopper unless given), with a new session key."""
        login = LoginCode(
            code=secrets.token_urlsafe(24),
            openid=openid or "o" + secrets.token_urlsafe(20),
            unionid=unionid,
            session_key=base64.b64encode(secrets.token_bytes(16)).decode(),
        )
        with self._lock:
            self._state.login_codes[login.code] = login
        return login

    def new_phone_code(self, phone: str = "13812341234", country_code: str = "86") -> str:
        """A valid code of a `getPhoneNumber` button for `phone` (the pure number, without country code)."""
        code = secrets.token_hex(16)
        with self._lock:
            self._state.phone_codes[code] = (phone, country_code)
        return code

    def add_risky_words(self, *words: str) -> None:
        """Text containing any of these fails msg_sec_check with 87014."""
        with self._lock:
            self._state.risky_words.update(words)

    def add_review_words(self, *words: str) -> None:
        """Text containing any of these gets `suggest: review` from msg_sec_check v2 (risky words win)."""
        with self._lock:
            self._state.review_words.update(words)

    def media_verdict(self, url_part: str, suggest: str) -> None:
        """Images whose URL contains `url_part` get `suggest` (pass / review / risky); others pass."""
        with self._lock:
            self._state.media_rules.append((url_part, suggest))

    def media_jobs(self) -> list[MediaJob]:
        """Checks asked for whose verdict was not sent yet."""
        with self._lock:
            return list(self._state.media_jobs)

    def media_messages(self) -> list[SignedMessage]:
        """The verdicts of every pending media check, as signed event messages; the checks are done."""
        with self._lock:
            jobs, self._state.media_jobs = self._state.media_jobs, []
            rules = list(self._state.media_rules)
        messages = []
        for job in jobs:
            suggest = next((verdict for part, verdict in rules if part in job.media_url), "pass")
            messages.append(self.event_message(self._media_event(job, suggest)))
        return messages

    def push_media_verdicts(self, url: str) -> list[int]:
        """Post every pending verdict to the server's message endpoint at `url`; the HTTP statuses."""
        statuses = []
        with httpx.Client(timeout=10) as http:
            for message in self.media_messages():
                response = http.post(
                    url,
                    params=message.params,
                    content=message.body,
                    headers={"content-type": message.content_type},
                )
                statuses.append(response.status_code)
        return statuses

    def _media_event(self, job: MediaJob, suggest: str) -> dict[str, Any]:
        verdict = {"suggest": suggest, "label": LABELS[suggest]}
        return {
            "ToUserName": "gh_" + self.appid[2:14],
            "FromUserName": job.openid,
            "CreateTime": int(time.time()),
            "MsgType": "event",
            "Event": "wxa_media_check",
            "appid": self.appid,
            "trace_id": job.trace_id,
            "version": 2,
            "detail": [{"strategy": "content_model", "errcode": 0, **verdict, "prob": 90}],
            "errcode": 0,
            "errmsg": "ok",
            "result": verdict,
        }

    def event_message(self, event: dict[str, Any], timestamp: int | None = None) -> SignedMessage:
        """`event` as WeChat would post it with this push configuration (signed; encrypted if configured)."""
        stamp, nonce = str(timestamp or int(time.time())), secrets.token_hex(5)
        params = {"signature": _sha1(self.message_token, stamp, nonce), "timestamp": stamp, "nonce": nonce}
        xml = self.message_format == "xml"
        text = _to_xml(event) if xml else json.dumps(event, ensure_ascii=False)
        if self.encrypt_messages:
            key = base64.b64decode(self.encoding_aes_key + "=")
            encrypt = PrpCrypto(key).encrypt(text, self.appid).decode()
            params |= {
                "encrypt_type": "aes",
                "msg_signature": _sha1(self.message_token, stamp, nonce, encrypt),
            }
            envelope = {"ToUserName": event.get("ToUserName", "gh_shop"), "Encrypt": encrypt}
            text = _to_xml(envelope) if xml else json.dumps(envelope)
        content_type = "text/xml" if xml else "application/json"
        return SignedMessage(params, text.encode(), content_type)

    def fail(self, endpoint: str, errcode: int, errmsg: str = "", times: int = 1) -> None:
        """The next `times` calls of `endpoint` answer WeChat error `errcode` (e.g. -1 system busy)."""
        default = {-1: "system error", 45011: "api minute-quota reach limit mustslower retry next minute"}
        with self._lock:
            self._state.failures.setdefault(endpoint, []).extend(
                [(errcode, errmsg or default.get(errcode, "error"))] * times
            )

    def fail_http(self, endpoint: str, status: int = 502, times: int = 1) -> None:
        """The next `times` calls of `endpoint` get an HTTP error with an HTML body, as from a broken proxy."""
        with self._lock:
            self._state.http_failures.setdefault(endpoint, []).extend([status] * times)

    def delay(self, endpoint: str, seconds: float) -> None:
        """Answer `endpoint` only after `seconds` (to test timeouts)."""
        with self._lock:
            self._state.delays[endpoint] = seconds

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now (WeChat then answers 42001)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def set_live_rooms(self, rooms: list[dict[str, Any]]) -> None:
        """The mini-program's live rooms (小程序直播) as getliveinfo's `room_info` lists them."""
        with self._lock:
            self._state.live_rooms = [dict(r) for r in rooms]

    def calls(self, endpoint: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._state.calls if endpoint is None or c.endpoint == endpoint]

    # --- the API -------------------------------------------------------------------------------------------

    async def _begin(self, endpoint: str, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        """Record the call and apply scripted delays and failures; the parsed JSON body for POSTs."""
        body: dict[str, Any] | None = None
        raw = await request.body()
        if request.method == "POST":
            try:
                parsed = json.loads(raw or b"null")
                body = parsed if isinstance(parsed, dict) else None
            except ValueError:
                body = None
        with self._lock:
            self._state.calls.append(Call(endpoint, dict(request.query_params), body))
            delay = self._state.delays.get(endpoint, 0.0)
            http_failures = self._state.http_failures.get(endpoint)
            status = http_failures.pop(0) if http_failures else None
            failures = self._state.failures.get(endpoint)
            failure = failures.pop(0) if failures else None
        if delay:
            await asyncio.sleep(delay)
        if status is not None:
            return None, PlainTextResponse(f"<html><body>{status}</body></html>", status_code=status)
        if failure is not None:
            return None, _error(*failure)
        if request.method == "POST" and body is None:
            return None, _error(47001, "data format error hint")
        return body, None

    def _check_credential(self, params: Any) -> Response | None:
        if params.get("appid") != self.appid:
            return _error(40013, "invalid appid")
        if params.get("secret") != self.secret:
            return _error(40125, "invalid appsecret")
        return None

    def _check_access_token(self, params: Any) -> Response | None:
        token = params.get("access_token")
        if not token:
            return _error(41001, "access_token missing")
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None:
            return _error(40001, "invalid credential, access_token is invalid or not latest")
        if expires <= time.time():
            return _error(42001, "access_token expired")
        return None

    async def _token(self, request: Request) -> Response:
        _, failure = await self._begin(TOKEN, request)
        if failure:
            return failure
        params = request.query_params
        if params.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        refused = self._check_credential(params)
        if refused:
            return refused
        token = secrets.token_urlsafe(96)
        with self._lock:
            self._tokens[token] = time.time() + TOKEN_LIFETIME
        return _json({"access_token": token, "expires_in": TOKEN_LIFETIME})

    async def _jscode2session(self, request: Request) -> Response:
        _, failure = await self._begin(JSCODE2SESSION, request)
        if failure:
            return failure
        params = request.query_params
        refused = self._check_credential(params)
        if refused:
            return refused
        if params.get("grant_type") != "authorization_code":
            return _error(40002, "invalid grant_type")
        code = params.get("js_code")
        if not code:
            return _error(41008, "missing code")
        with self._lock:
            login = self._state.login_codes.get(code)
            used = code in self._state.used_codes
            self._state.used_codes.add(code)
        if used:
            return _error(40163, "code been used")
        if login is None:
            return _error(40029, "invalid code")
        answer = {"session_key": login.session_key, "openid": login.openid}
        if login.unionid:
            answer["unionid"] = login.unionid
        return _json(answer)

    async def _get_phone_number(self, request: Request) -> Response:
        body, failure = await self._begin(GET_PHONE_NUMBER, request)
        if failure:
            return failure
        refused = self._check_access_token(request.query_params)
        if refused:
            return refused
        code = (body or {}).get("code")
        with self._lock:
            phone = self._state.phone_codes.pop(code, None) if isinstance(code, str) else None
        if phone is None:
            return _error(40029, "invalid code")
        number, country_code = phone
        return _json(
            {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": number if country_code == "86" else f"+{country_code} {number}",
                    "purePhoneNumber": number,
                    "countryCode": country_code,
                    "watermark": {"timestamp": int(time.time()), "appid": self.appid},
                },
            }
        )

    async def _msg_sec_check(self, request: Request) -> Response:
        body, failure = await self._begin(MSG_SEC_CHECK, request)
        if failure:
            return failure
        refused = self._check_access_token(request.query_params)
        if refused:
            return refused
        body = body or {}
        content = body.get("content")
        if not isinstance(content, str):
            return _error(47001, "data format error hint")
        with self._lock:
            risky = any(word in content for word in self._state.risky_words)
            review = any(word in content for word in self._state.review_words)
        if body.get("version") != 2:
            return _error(87014, "risky content") if risky else _json({"errcode": 0, "errmsg": "ok"})
        if not isinstance(body.get("openid"), str) or not body["openid"]:
            return _error(40003, "invalid openid")
        if body.get("scene") not in (1, 2, 3, 4):
            return _error(40003, "invalid scene")
        if len(content) > 2500:
            return _error(87016, "content too long")
        suggest = "risky" if risky else "review" if review else "pass"
        verdict = {"suggest": suggest, "label": LABELS[suggest]}
        return _json(
            {
                "errcode": 0,
                "errmsg": "ok",
                "result": verdict,
                "detail": [{"strategy": "content_model", "errcode": 0, **verdict, "prob": 90}],
                "trace_id": _rid(),
            }
        )

    async def _media_check_async(self, request: Request) -> Response:
        body, failure = await self._begin(MEDIA_CHECK_ASYNC, request)
        if failure:
            return failure
        refused = self._check_access_token(request.query_params)
        if refused:
            return refused
        body = body or {}
        url = body.get("media_url")
        if body.get("version") != 2 or not isinstance(body.get("openid"), str) or not body["openid"]:
            return _error(40003, "invalid openid")
        if body.get("scene") not in (1, 2, 3, 4) or body.get("media_type") not in (1, 2):
            return _error(47001, "data format error hint")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _error(47001, "data format error hint media_url")
        job = MediaJob(_rid(), body["openid"], body["scene"], url, body["media_type"])
        with self._lock:
            self._state.media_jobs.append(job)
        return _json({"errcode": 0, "errmsg": "ok", "trace_id": job.trace_id})

    async def _subscribe_send(self, request: Request) -> Response:
        body, failure = await self._begin(SUBSCRIBE_SEND, request)
        if failure:
            return failure
        refused = self._check_access_token(request.query_params)
        if refused:
            return refused
        body = body or {}
        if not body.get("touser") or not isinstance(body.get("template_id"), str):
            return _error(47003, "argument invalid! data.touser or template_id")
        if not isinstance(body.get("data"), dict):
            return _error(47003, "argument invalid! data")
        return _json({"errcode": 0, "errmsg": "ok", "msgid": secrets.randbelow(10**12)})

    async def _upload_shipping_info(self, request: Request) -> Response:
        body, failure = await self._begin(UPLOAD_SHIPPING_INFO, request)
        if failure:
            return failure
        refused = self._check_access_token(request.query_params)
        if refused:
            return refused
        body = body or {}
        order_key = body.get("order_key")
        shipping = body.get("shipping_list")
        if not isinstance(order_key, dict) or order_key.get("order_number_type") not in (1, 2):
            return _error(268485216, "order_key is invalid")
        if body.get("logistics_type") not in (1, 2, 3, 4) or not isinstance(shipping, list) or not shipping:
            return _error(268485216, "shipping info is invalid")
        if not isinstance(body.get("payer"), dict) or not body["payer"].get("openid"):
            return _error(268485216, "payer openid is missing")
        return _json({"errcode": 0, "errmsg": "ok"})

    async def _get_live_info(self, request: Request) -> Response:
        body, failure = await self._begin(GET_LIVE_INFO, request)
        if failure:
            return failure
        refused = self._check_access_token(request.query_params)
        if refused:
            return refused
        body = body or {}
        start, limit = body.get("start"), body.get("limit")
        if not isinstance(start, int) or not isinstance(limit, int) or start < 0 or not 0 < limit <= 100:
            return _error(47001, "data format error hint")
        with self._lock:
            rooms = list(self._state.live_rooms)
        if not rooms:
            return _error(9410000, "直播间列表为空")
        return _json(
            {"errcode": 0, "errmsg": "ok", "room_info": rooms[start : start + limit], "total": len(rooms)}
        )


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _to_xml(data: dict[str, Any]) -> str:
    def element(name: str, value: Any) -> str:
        if isinstance(value, dict):
            return f"<{name}>" + "".join(element(k, v) for k, v in value.items()) + f"</{name}>"
        if isinstance(value, list):
            return "".join(element(name, item) for item in value)
        if isinstance(value, int):
            return f"<{name}>{value}</{name}>"
        return f"<{name}><![CDATA[{value}]]></{name}>"

    return "<xml>" + "".join(element(k, v) for k, v in data.items()) + "</xml>"


@pytest.fixture(scope="session")
def wechat_server() -> Iterator[WeChatStandIn]:
    """The stand-in, serving for the whole test session."""
    standin = WeChatStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def wechat(
    wechat_server: WeChatStandIn, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WeChatStandIn]:
    """The stand-in, reset, with the settings pointing at it (WECHAT_API_BASE_URL, WECHAT_APPID,
    WECHAT_SECRET, WECHAT_MESSAGE_TOKEN, WECHAT_MESSAGE_AES_KEY) for this test; the settings are restored afterwards."""
    wechat_server.reset()
    monkeypatch.setattr(settings, "wechat_api_base_url", wechat_server.base_url)
    monkeypatch.setattr(settings, "wechat_appid", wechat_server.appid)
    monkeypatch.setattr(settings, "wechat_secret", wechat_server.secret)
    monkeypatch.setattr(settings, "wechat_message_token", wechat_server.message_token)
    monkeypatch.setattr(settings, "wechat_message_aes_key", wechat_server.encoding_aes_key)
    yield wechat_server
    wechat_server.reset()
