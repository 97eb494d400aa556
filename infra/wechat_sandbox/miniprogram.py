"""The sandbox's mini-program API (api.weixin.qq.com): access tokens, code2session, phone numbers, content
security (msg_sec_check v1 and v2, media_check_async with its verdict pushed later as WeChat's signed,
encrypted event message), subscribe messages and shipping uploads, in WeChat's JSON with WeChat's error codes."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import logging
import secrets
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from wechatpy.crypto import PrpCrypto

from infra.blocking_io import ThreadLane
from infra.settings import get_settings
from infra.wechat_sandbox import MESSAGE_PUSH_PATH, REVIEW_WORDS, RISKY_WORDS

log = logging.getLogger("lianmall.wechat_sandbox")

TOKEN_LIFETIME = 7200
_SALT = "lianmall-wechat-sandbox"
# Seconds before a media check's verdict is pushed, and between attempts until our server takes it.
MEDIA_VERDICT_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
LABELS = {"pass": 100, "review": 21000, "risky": 20006}
PUSH_LANE = ThreadLane(threads=2, timeout=10.0)


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, ensure_ascii=False).encode(), media_type="application/json")


def _error(errcode: int, errmsg: str) -> Response:
    return _json({"errcode": errcode, "errmsg": f"{errmsg} rid: sandbox-{secrets.token_hex(4)}"})


def _digest(*parts: str) -> bytes:
    return hashlib.sha256(":".join((_SALT, *parts)).encode()).digest()


def openid_for(code: str) -> str:
    """The shopper a login code stands for: the same code is always the same shopper."""
    return "o" + base64.urlsafe_b64encode(_digest("openid", code)).decode()[:27]


def suggest_for(text: str) -> str:
    if any(word in text for word in RISKY_WORDS):
        return "risky"
    return "review" if any(word in text for word in REVIEW_WORDS) else "pass"


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def encrypted_push(event: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """`event` as WeChat pushes it in safe mode (JSON): query parameters and body, encrypted under
    WECHAT_MESSAGE_AES_KEY and signed with WECHAT_MESSAGE_TOKEN."""
    settings = get_settings()
    stamp, nonce = str(int(time.time())), secrets.token_hex(5)
    key = base64.b64decode(settings.wechat_message_aes_key + "=")
    encrypt = PrpCrypto(key).encrypt(json.dumps(event, ensure_ascii=False), settings.wechat_appid).decode()
    params = {
        "signature": _sha1(settings.wechat_message_token, stamp, nonce),
        "timestamp": stamp,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": _sha1(settings.wechat_message_token, stamp, nonce, encrypt),
    }
    return params, json.dumps({"ToUserName": "gh_sandbox", "Encrypt": encrypt}).encode()


def _post_json(url: str, params: dict[str, str], body: bytes) -> Any:
    return PUSH_LANE.session.post(url, params=params, data=body, headers={"Content-Type": "application/json"})


def phone_for(code: str) -> str:
    """The phone number a `getPhoneNumber` code stands for: an 11-digit code (1xxxxxxxxxx) is that number."""
    if len(code) == 11 and code.isdigit() and code.startswith("1"):
        return code
    return "138" + str(int.from_bytes(_digest("phone", code)[:8], "big"))[-8:].zfill(8)


class MiniProgramSandbox:
    def __init__(self) -> None:
        self._tokens: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.app = Starlette(
            routes=[
                Route("/cgi-bin/token", self._token, methods=["GET"]),
                Route("/sns/jscode2session", self._jscode2session, methods=["GET"]),
                Route("/wxa/business/getuserphonenumber", self._phone_number, methods=["POST"]),
                Route("/wxa/msg_sec_check", self._msg_sec_check, methods=["POST"]),
                Route("/wxa/media_check_async", self._media_check_async, methods=["POST"]),
                Route("/cgi-bin/message/subscribe/send", self._accept, methods=["POST"]),
                Route("/wxa/sec/order/upload_shipping_info", self._accept, methods=["POST"]),
            ]
        )

    def _credential_error(self, params: Any) -> Response | None:
        settings = get_settings()
        if params.get("appid") != settings.wechat_appid:
            return _error(40013, "invalid appid")
        if params.get("secret") != settings.wechat_secret:
            return _error(40125, "invalid appsecret")
        return None

    def _token_error(self, request: Request) -> Response | None:
        expires = self._tokens.get(request.query_params.get("access_token") or "")
        if expires is None:
            return _error(40001, "invalid credential, access_token is invalid or not latest")
        if expires <= time.time():
            return _error(42001, "access_token expired")
        return None

    async def _body(self, request: Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _token(self, request: Request) -> Response:
        refused = self._credential_error(request.query_params)
        if refused:
            return refused
        token = secrets.token_urlsafe(48)
        self._tokens[token] = time.time() + TOKEN_LIFETIME
        return _json({"access_token": token, "expires_in": TOKEN_LIFETIME})

    async def _jscode2session(self, request: Request) -> Response:
        refused = self._credential_error(request.query_params)
        if refused:
            return refused
        code = request.query_params.get("js_code")
        if not code:
            return _error(41008, "missing code")
        session_key = base64.b64encode(_digest("session", code)[:16]).decode()
        return _json({"openid": openid_for(code), "session_key": session_key})

    async def _phone_number(self, request: Request) -> Response:
        refused = self._token_error(request)
        body = await self._body(request)
        if refused or body is None:
            return refused or _error(47001, "data format error")
        code = body.get("code")
        if not isinstance(code, str) or not code:
            return _error(40029, "invalid code")
        phone = phone_for(code)
        info = {
            "phoneNumber": phone,
            "purePhoneNumber": phone,
            "countryCode": "86",
            "watermark": {"timestamp": int(time.time()), "appid": get_settings().wechat_appid},
        }
        return _json({"errcode": 0, "errmsg": "ok", "phone_info": info})

    async def _msg_sec_check(self, request: Request) -> Response:
        refused = self._token_error(request)
        body = await self._body(request)
        if refused or body is None:
            return refused or _error(47001, "data format error")
        content = body.get("content")
        if not isinstance(content, str):
            return _error(47001, "data format error")
        suggest = suggest_for(content)
        if body.get("version") != 2:
            return (
                _error(87014, "risky content")
                if suggest == "risky"
                else _json({"errcode": 0, "errmsg": "ok"})
            )
        if not isinstance(body.get("openid"), str) or not body["openid"]:
            return _error(40003, "invalid openid")
        if body.get("scene") not in (1, 2, 3, 4):
            return _error(40003, "invalid scene")
        if len(content) > 2500:
            return _error(87016, "content too long")
        verdict = {"suggest": suggest, "label": LABELS[suggest]}
        return _json(
            {
                "errcode": 0,
                "errmsg": "ok",
                "result": verdict,
                "detail": [{"strategy": "content_model", "errcode": 0, **verdict, "prob": 90}],
                "trace_id": secrets.token_hex(12),
            }
        )

    async def _media_check_async(self, request: Request) -> Response:
        refused = self._token_error(request)
        body = await self._body(request)
        if refused or body is None:
            return refused or _error(47001, "data format error")
        url = body.get("media_url")
        if body.get("version") != 2 or not isinstance(body.get("openid"), str) or not body["openid"]:
            return _error(40003, "invalid openid")
        if body.get("scene") not in (1, 2, 3, 4) or body.get("media_type") not in (1, 2):
            return _error(47001, "data format error")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _error(47001, "data format error media_url")
        trace_id = secrets.token_hex(12)
        task = asyncio.get_running_loop().create_task(self._push_verdict(trace_id, body["openid"], url))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _json({"errcode": 0, "errmsg": "ok", "trace_id": trace_id})

    async def _push_verdict(self, trace_id: str, openid: str, media_url: str) -> None:
        settings = get_settings()
        verdict = {"suggest": suggest_for(media_url), "label": LABELS[suggest_for(media_url)]}
        event = {
            "ToUserName": "gh_sandbox",
            "FromUserName": openid,
            "CreateTime": int(time.time()),
            "MsgType": "event",
            "Event": "wxa_media_check",
            "appid": settings.wechat_appid,
            "trace_id": trace_id,
            "version": 2,
            "detail": [{"strategy": "content_model", "errcode": 0, **verdict, "prob": 90}],
            "errcode": 0,
            "errmsg": "ok",
            "result": verdict,
        }
        url = settings.public_base_url.rstrip("/") + MESSAGE_PUSH_PATH
        for delay in MEDIA_VERDICT_DELAYS:
            await asyncio.sleep(delay)
            params, body = encrypted_push(event)  # signed afresh: our server refuses a repeated nonce
            try:
                answer = await PUSH_LANE.run(functools.partial(_post_json, url, params, body))
            except Exception as exc:
                log.warning("WeChat sandbox could not reach %s: %s", url, type(exc).__name__)
                continue
            if answer.status_code == 200 and answer.text == "success":
                return
        log.warning("WeChat sandbox gave up pushing the verdict of media check %s", trace_id)

    async def _accept(self, request: Request) -> Response:
        # Subscribe messages and shipping uploads: nobody receives them, the log says what was sent.
        refused = self._token_error(request)
        body = await self._body(request)
        if refused or body is None:
            return refused or _error(47001, "data format error")
        log.info(
            "WeChat sandbox received %s: %s", request.url.path, json.dumps(body, ensure_ascii=False)[:300]
        )
        return _json({"errcode": 0, "errmsg": "ok"})
