"""The sandbox's mini-program API (api.weixin.qq.com): access tokens, code2session, phone numbers, content
security, subscribe messages and shipping uploads, answering in WeChat's JSON with WeChat's error codes."""

from __future__ import annotations

import base64
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

from infra.settings import get_settings
from infra.wechat_sandbox import RISKY_WORDS

log = logging.getLogger("lianmall.wechat_sandbox")

TOKEN_LIFETIME = 7200
_SALT = "lianmall-wechat-sandbox"


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, ensure_ascii=False).encode(), media_type="application/json")


def _error(errcode: int, errmsg: str) -> Response:
    return _json({"errcode": errcode, "errmsg": f"{errmsg} rid: sandbox-{secrets.token_hex(4)}"})


def _digest(*parts: str) -> bytes:
    return hashlib.sha256(":".join((_SALT, *parts)).encode()).digest()


def openid_for(code: str) -> str:
    """The shopper a login code stands for: the same code is always the same shopper."""
    return "o" + base64.urlsafe_b64encode(_digest("openid", code)).decode()[:27]


def phone_for(code: str) -> str:
    """The phone number a `getPhoneNumber` code stands for: an 11-digit code (1xxxxxxxxxx) is that number."""
    if len(code) == 11 and code.isdigit() and code.startswith("1"):
        return code
    return "138" + str(int.from_bytes(_digest("phone", code)[:8], "big"))[-8:].zfill(8)


class MiniProgramSandbox:
    def __init__(self) -> None:
        self._tokens: dict[str, float] = {}
        self.app = Starlette(
            routes=[
                Route("/cgi-bin/token", self._token, methods=["GET"]),
                Route("/sns/jscode2session", self._jscode2session, methods=["GET"]),
                Route("/wxa/business/getuserphonenumber", self._phone_number, methods=["POST"]),
                Route("/wxa/msg_sec_check", self._msg_sec_check, methods=["POST"]),
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
        if any(word in content for word in RISKY_WORDS):
            return _error(87014, "risky content")
        return _json({"errcode": 0, "errmsg": "ok"})

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
