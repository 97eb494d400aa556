"""WeChat's server API for the mini-program, through wechatpy, kept off the event loop.

wechatpy is synchronous (requests), so every call runs in a worker thread. The client is built per call from
the settings, with every base URL (and the access-token URL, which wechatpy hard-codes) under
WECHAT_API_BASE_URL, so tests can point it at a local stand-in of WeChat. The access token is shared by all
processes through Redis: fetched once when missing, kept until shortly before it expires, and replaced when
WeChat says it is no longer valid (wechatpy then fetches a new one and retries the call once).

WeChat's failures become DomainErrors with codes clients can act on; a network failure, a timeout, an HTTP
error or an answer that is not JSON is WECHAT_UNAVAILABLE, never an unexpected exception.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any
from urllib.parse import quote

import orjson
import requests
from wechatpy import WeChatClient
from wechatpy.client.api import WeChatWxa
from wechatpy.client.api.base import BaseWeChatAPI
from wechatpy.crypto import WeChatWxaCrypto
from wechatpy.exceptions import InvalidAppIdException, WeChatClientException

from infra.blocking_io import ThreadLane
from infra.http_client import HTTPClient, HTTPClientError, proxied
from infra.redis import REDIS_ERRORS, get_redis
from infra.settings import Settings, get_settings
from services.errors import DomainError, ErrorCode

log = logging.getLogger("lianmall.wechat")

# Seconds to wait for WeChat (connect and each read); read at call time so tests can shorten it.
TIMEOUT_SECONDS = 5.0
# A cached access token is dropped this long before WeChat's expiry, so no call starts with a dying token.
TOKEN_EARLY_SECONDS = 300

_WECHAT_HOST = "https://api.weixin.qq.com/"

# WeChat's error codes this module gives a meaning of their own (others mean "unavailable").
SYSTEM_BUSY = -1
INVALID_CODE = 40029
CODE_USED = 40163
API_MINUTE_QUOTA = 45011
API_FREQ_LIMIT = 45009
RISKY_CONTENT = 87014
# These mean our own configuration is wrong (appid, secret, IP whitelist): the operator must act.
_CONFIG_ERRORS = {40001, 40002, 40013, 40125, 40164, 41002, 41004, 48001, 61024}


@dataclass(frozen=True)
class WeChatSession:
    """What code2session answers: who the shopper is to this mini-program, and the key of the session."""

    openid: str
    session_key: str
    unionid: str | None


@dataclass(frozen=True)
class WeChatPhone:
    phone_number: str
    pure_phone_number: str
    country_code: str


class Suggest(StrEnum):
    """WeChat content security's verdict (msg_sec_check and media_check_async, version 2)."""

    PASS = "pass"
    REVIEW = "review"
    RISKY = "risky"


class Scene(IntEnum):
    """Where the checked content appears; WeChat tunes its verdict per scene."""

    PROFILE = 1
    COMMENT = 2
    FORUM = 3
    SOCIAL_LOG = 4


class MediaType(IntEnum):
    AUDIO = 1
    IMAGE = 2


@dataclass(frozen=True)
class Verdict:
    """A content-security answer: `suggest`, WeChat's `label` (100 normal, 20001 politics, 20002 porn, 20003
    abuse, 20006 crime, 20008 fraud, 20012 vulgar, 20013 copyright, 21000 other) and its `trace_id`."""

    suggest: Suggest
    label: int
    trace_id: str = ""

    @classmethod
    def from_result(cls, answer: dict[str, Any]) -> Verdict:
        """Read `result.suggest` / `result.label` of a v2 answer or `wxa_media_check` event.

        An unknown or missing suggest counts as `review`: nothing is shown on an answer we cannot read.
        """
        result = answer.get("result")
        result = result if isinstance(result, dict) else {}
        try:
            suggest = Suggest(str(result.get("suggest", "")).lower())
        except ValueError:
            log.error("WeChat content security answered an unknown suggest: %r", result.get("suggest"))
            suggest = Suggest.REVIEW
        try:
            label = int(result.get("label", 0))
        except (TypeError, ValueError):
            label = 0
        return cls(suggest, label, str(answer.get("trace_id") or ""))


# --- wechatpy, pointed at WECHAT_API_BASE_URL --------------------------------------------------------------


class _Wxa(WeChatWxa):
    def code_to_session(self, js_code: str) -> Any:
        # jscode2session authenticates with appid and secret. wechatpy adds an access token to every request
        # that names none, which would make each login with a cold token cache fetch one first; an explicit
        # None keeps it out (requests drops None-valued parameters).
        return self._get(
            "sns/jscode2session",
            params={
                "appid": self.appid,
                "secret": self.secret,
                "js_code": js_code,
                "grant_type": "authorization_code",
                "access_token": None,
            },
        )

    def get_phone_number(self, code: str) -> Any:
        # Not in wechatpy 1.8.18: the button's code for the shopper's phone number (getuserphonenumber).
        return self._post("wxa/business/getuserphonenumber", data={"code": code})

    def msg_sec_check_v2(self, openid: str, scene: int, content: str) -> Any:
        # wechatpy's check_text_security is version 1 (content only), which WeChat stopped updating in 2021.
        body = {"version": 2, "openid": openid, "scene": scene, "content": content}
        return self._post("wxa/msg_sec_check", data=body)

    def media_check_async(self, openid: str, scene: int, media_url: str, media_type: int) -> Any:
        body = {
            "version": 2,
            "openid": openid,
            "scene": scene,
            "media_url": media_url,
            "media_type": media_type,
        }
        return self._post("wxa/media_check_async", data=body)


class LianmallWeChatClient(WeChatClient):
    """wechatpy's client with every WeChat URL under `base_url`, a timeout, and a record of fetched tokens."""

    wxa = _Wxa()

    def __init__(self, appid: str, secret: str, base_url: str, access_token: str | None = None) -> None:
        super().__init__(appid, secret, access_token=access_token)
        self._http = WECHAT_LANE.session
        base = base_url if base_url.endswith("/") else base_url + "/"
        self.API_BASE_URL = base + "cgi-bin/"
        # API objects with a base URL of their own (wxa, marketing, ...) move to the same host. (Read from the
        # instance dict: inspect.getmembers would evaluate the `access_token` property, i.e. fetch a token.)
        for api in list(vars(self).values()):
            if not isinstance(api, BaseWeChatAPI):
                continue
            own = getattr(type(api), "API_BASE_URL", "")
            if own.startswith(_WECHAT_HOST):
                api.API_BASE_URL = base + own[len(_WECHAT_HOST) :]
        self.fetched: tuple[str, int] | None = None

    def fetch_access_token(self) -> Any:
        # wechatpy fetches again and retries on every "invalid token" answer, without end: one fetch per call.
        if self.fetched is not None:
            raise WeChatClientException(40001, "a freshly fetched access token was refused", client=self)
        result = self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )
        self.fetched = (str(result["access_token"]), int(result.get("expires_in", 7200)))
        return result


# --- calls -------------------------------------------------------------------------------------------------


def _configured() -> Settings:
    settings = get_settings()
    if not settings.wechat_appid or not settings.wechat_secret:
        log.error("WECHAT_APPID and WECHAT_SECRET are not set: WeChat calls are impossible")
        raise DomainError(ErrorCode.WECHAT_UNAVAILABLE, "WeChat login is not configured on this server")
    return settings


def _client(settings: Settings, access_token: str | None = None) -> LianmallWeChatClient:
    return LianmallWeChatClient(
        settings.wechat_appid, settings.wechat_secret, settings.wechat_api_base_url, access_token
    )


def _token_key(appid: str) -> str:
    return f"wechat:access_token:{appid}"


# Per event loop (the test session and each server process run their own): a lock so that concurrent callers
# of this process wait for one token fetch, and a thread limit so that a slow WeChat ties up at most this many
# worker threads instead of anyio's whole default pool, which the rest of the server shares.
WECHAT_THREADS = 16
_token_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
WECHAT_LANE = ThreadLane(threads=WECHAT_THREADS, timeout=TIMEOUT_SECONDS)


def _token_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _token_locks.get(loop)
    if lock is None:
        lock = _token_locks[loop] = asyncio.Lock()
    return lock


def _unavailable(message: str = "WeChat is not answering right now; try again shortly") -> DomainError:
    return DomainError(ErrorCode.WECHAT_UNAVAILABLE, message)


def _wechat_error(errcode: int | None, errmsg: object, field: str | None) -> DomainError:
    if errcode in (INVALID_CODE, CODE_USED):
        return DomainError(
            ErrorCode.WECHAT_CODE_INVALID,
            "The WeChat code is invalid, expired or already used; get a new one and try again",
            field,
        )
    if errcode in (API_MINUTE_QUOTA, API_FREQ_LIMIT):
        return DomainError(
            ErrorCode.WECHAT_RATE_LIMITED, "WeChat is limiting requests; try again in a minute"
        )
    if errcode == RISKY_CONTENT:
        return DomainError(ErrorCode.CONTENT_REJECTED, "WeChat's content check rejected this text", field)
    if errcode is None:
        log.warning("WeChat answered with an HTTP error")
    elif errcode == SYSTEM_BUSY:
        log.warning("WeChat is busy (errcode -1)")
    elif errcode in _CONFIG_ERRORS:
        log.error("WeChat refused our credentials or configuration: errcode %s, %s", errcode, errmsg)
    else:
        log.error("Unexpected WeChat error: errcode %s, %s", errcode, errmsg)
    return _unavailable()


async def _in_thread(call: Callable[[], Any], field: str | None = None) -> dict[str, Any]:
    try:
        result = await WECHAT_LANE.run(call)
    except WeChatClientException as exc:
        raise _wechat_error(exc.errcode, exc.errmsg, field) from None
    except requests.RequestException as exc:
        log.warning("WeChat is unreachable: %s", type(exc).__name__)
        raise _unavailable() from None
    except (KeyError, ValueError, TypeError):
        # wechatpy reading an answer of an unexpected shape (e.g. a token answer without access_token).
        log.exception("WeChat answered in an unexpected shape")
        raise _unavailable() from None
    if not isinstance(result, dict):
        log.warning("WeChat answered something that is not JSON")
        raise _unavailable()
    return result


# This process's copy of the token, used only while Redis does not answer: key -> (token, monotonic expiry).
_local_tokens: dict[str, tuple[str, float]] = {}


async def _remember(client: LianmallWeChatClient) -> None:
    """Share a token the client fetched with every process (also when the call itself then failed)."""
    if client.fetched is None:
        return
    token, expires_in = client.fetched
    ttl = max(expires_in - TOKEN_EARLY_SECONDS, 60)
    key = _token_key(client.appid)
    _local_tokens[key] = (token, time.monotonic() + ttl)
    try:
        await get_redis().set(key, token.encode(), ex=ttl)
    except REDIS_ERRORS as exc:
        log.warning("WeChat access token not shared through Redis: %s", exc)


async def _cached_token(key: str) -> str | None:
    try:
        cached = await get_redis().get(key)
    except REDIS_ERRORS:
        # Redis away: this process's own copy (WeChat keeps a replaced token valid for 5 more minutes).
        local = _local_tokens.get(key)
        return local[0] if local and local[1] > time.monotonic() else None
    if cached:
        return cached.decode() if isinstance(cached, bytes) else str(cached)
    return None


async def _access_token(settings: Settings) -> str:
    key = _token_key(settings.wechat_appid)
    cached = await _cached_token(key)
    if cached:
        return cached
    # Each fetch replaces WeChat's previous token: callers of this process wait for one fetch.
    async with _token_lock():
        cached = await _cached_token(key)
        if cached:
            return cached
        client = _client(settings)
        await _in_thread(client.fetch_access_token)
        await _remember(client)
        assert client.fetched is not None
        return client.fetched[0]


async def _call(
    call: Callable[[LianmallWeChatClient], Any], *, needs_token: bool, field: str | None = None
) -> dict[str, Any]:
    settings = _configured()
    token = await _access_token(settings) if needs_token else None
    client = _client(settings, token)
    try:
        return await _in_thread(lambda: call(client), field)
    finally:
        await _remember(client)


# --- the mini-program APIs we use --------------------------------------------------------------------------


async def code_to_session(code: str) -> WeChatSession:
    """Trade a `wx.login()` code for the shopper's openid, unionid and session key (code2session).

    Raises DomainError WECHAT_CODE_INVALID (field `code`), WECHAT_RATE_LIMITED or WECHAT_UNAVAILABLE.
    """
    result = await _call(lambda client: client.wxa.code_to_session(code), needs_token=False, field="code")
    openid, session_key = result.get("openid"), result.get("session_key")
    if not isinstance(openid, str) or not openid or not isinstance(session_key, str) or not session_key:
        log.error("code2session answered without openid or session_key")
        raise _unavailable()
    unionid = result.get("unionid")
    return WeChatSession(openid, session_key, unionid if isinstance(unionid, str) and unionid else None)


async def get_phone_number(code: str) -> WeChatPhone:
    """The phone number a `getPhoneNumber` button's code stands for (getuserphonenumber).

    Raises DomainError WECHAT_CODE_INVALID (field `code`), WECHAT_RATE_LIMITED or WECHAT_UNAVAILABLE.
    """
    result = await _call(lambda client: client.wxa.get_phone_number(code), needs_token=True, field="code")
    info = result.get("phone_info")
    if not isinstance(info, dict) or not info.get("purePhoneNumber"):
        log.error("getuserphonenumber answered without phone_info")
        raise _unavailable()
    watermark = info.get("watermark")
    if isinstance(watermark, dict) and watermark.get("appid") not in (None, get_settings().wechat_appid):
        log.error("getuserphonenumber answered for another appid")
        raise _unavailable()
    return WeChatPhone(
        phone_number=str(info.get("phoneNumber") or info["purePhoneNumber"]),
        pure_phone_number=str(info["purePhoneNumber"]),
        country_code=str(info.get("countryCode") or "86"),
    )


# msg_sec_check takes at most this many characters per call; longer text is checked in parts by callers.
TEXT_CHECK_MAX = 2500


async def msg_sec_check(openid: str, scene: Scene, content: str, field: str | None = None) -> Verdict:
    """WeChat's verdict on text a member wrote (msg_sec_check version 2).

    `openid` is the writer's (WeChat requires that they opened the mini-program within 2 hours); `content` is
    at most TEXT_CHECK_MAX characters. The caller's policy decides what `risky` and `review` mean.
    Raises DomainError WECHAT_RATE_LIMITED or WECHAT_UNAVAILABLE when the check cannot run: text is never let
    through unchecked.
    """
    settings = _configured()
    url = _api_url(settings, "wxa/msg_sec_check")
    if proxied(url):  # requests honours the proxy
        result = await _call(
            lambda client: client.wxa.msg_sec_check_v2(openid, int(scene), content),
            needs_token=True,
            field=field,
        )
    else:
        body = {"version": 2, "openid": openid, "scene": int(scene), "content": content}
        result = await _post_on_loop(settings, url, body, field)
    if not isinstance(result.get("result"), dict):
        log.error("msg_sec_check answered without a result")
        raise _unavailable()
    return Verdict.from_result(result)


# --- calls on the event loop ------------------------------------------------------------------------------
# Every comment is checked (50 a second in a busy live room): through wechatpy each check cost ~1 ms of CPU in a
# worker thread (requests, a client built per call) plus the hop there and back. A JSON POST of our own on the
# event loop (infra.http_client) costs a fraction of that and reads WeChat's answer the same way: the same
# errors, and an access token WeChat calls invalid or expired replaced once and the call retried, as wechatpy
# does.

HTTP = HTTPClient()
# WeChat's answers meaning "this access token is not (or no longer) valid": fetch another, try once more.
_TOKEN_REFUSED = {40001, 40014, 42001}


def _api_url(settings: Settings, path: str) -> str:
    base = settings.wechat_api_base_url
    return (base if base.endswith("/") else base + "/") + path


async def _post_on_loop(
    settings: Settings, url: str, body: dict[str, Any], field: str | None
) -> dict[str, Any]:
    data = orjson.dumps(body)
    token = await _access_token(settings)
    for attempt in range(2):
        try:
            answer = await HTTP.post(
                f"{url}?access_token={quote(token)}",
                data,
                content_type="application/json",
                seconds=TIMEOUT_SECONDS,
            )
        except HTTPClientError as exc:
            log.warning("WeChat is unreachable: %s", exc)
            raise _unavailable() from None
        if answer.status != 200:
            raise _wechat_error(None, answer.status, field)
        try:
            result = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            result = None
        if not isinstance(result, dict):
            log.warning("WeChat answered something that is not JSON")
            raise _unavailable()
        try:
            errcode = int(result.get("errcode") or 0)
        except (TypeError, ValueError):
            log.error("WeChat answered in an unexpected shape")
            raise _unavailable() from None
        if errcode in _TOKEN_REFUSED and attempt == 0:
            log.info("WeChat refused the access token (errcode %s): fetching a new one", errcode)
            token = await _replace_token(settings, token)
            continue
        if errcode:
            raise _wechat_error(errcode, result.get("errmsg"), field)
        return result
    raise AssertionError("unreachable")  # pragma: no cover


async def _replace_token(settings: Settings, refused: str) -> str:
    """A token in place of one WeChat `refused`: another caller's replacement if there is one already, else a
    new one fetched (and shared)."""
    key = _token_key(settings.wechat_appid)
    async with _token_lock():
        cached = await _cached_token(key)
        if cached and cached != refused:
            return cached
        client = _client(settings)
        try:
            await _in_thread(client.fetch_access_token)
        finally:
            await _remember(client)
        assert client.fetched is not None
        return client.fetched[0]


async def media_check_async(
    openid: str, scene: Scene, media_url: str, media_type: MediaType = MediaType.IMAGE
) -> str:
    """Ask WeChat to check an image (or audio) at a public `media_url`; answers the check's trace_id.

    The verdict arrives later (within about 30 minutes) as a `wxa_media_check` event at the message
    callback (see infra.wechat_messages). Raises DomainError WECHAT_RATE_LIMITED or WECHAT_UNAVAILABLE.
    """
    result = await _call(
        lambda client: client.wxa.media_check_async(openid, int(scene), media_url, int(media_type)),
        needs_token=True,
    )
    trace_id = result.get("trace_id")
    if not isinstance(trace_id, str) or not trace_id:
        log.error("media_check_async answered without a trace_id")
        raise _unavailable()
    return trace_id


def decrypt_user_data(session_key: str, encrypted_data: str, iv: str) -> dict[str, Any]:
    """Decrypt a mini-program's `encryptedData` with the shopper's session key; its watermark must be ours.

    Raises DomainError WECHAT_DATA_INVALID when it does not decrypt (a stale session key: the mini-program
    called `wx.login` again since) or was made for another appid.
    """
    appid = get_settings().wechat_appid
    try:
        if len(base64.b64decode(iv, validate=True)) != 16:
            raise ValueError("iv")
        data = WeChatWxaCrypto(session_key, iv, appid).decrypt_message(encrypted_data)
    except InvalidAppIdException:
        raise DomainError(
            ErrorCode.WECHAT_DATA_INVALID, "The encrypted data was made for another mini-program"
        ) from None
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise DomainError(
            ErrorCode.WECHAT_DATA_INVALID,
            "The encrypted data does not decrypt with this login's session; log in again and retry",
        ) from None
    if not isinstance(data, dict):
        raise DomainError(ErrorCode.WECHAT_DATA_INVALID, "The encrypted data holds no object")
    return data


async def send_subscribe_message(
    openid: str, template_id: str, data: dict[str, Any], page: str | None = None
) -> None:
    """Send a subscribe message (订阅消息) the shopper agreed to receive (subscribeMessage.send).

    Raises DomainError WECHAT_RATE_LIMITED or WECHAT_UNAVAILABLE (also when the shopper has not subscribed).
    """
    await _call(
        lambda client: client.wxa.send_subscribe_message(openid, template_id, data, page=page),
        needs_token=True,
    )


async def upload_shipping_info(body: dict[str, Any]) -> None:
    """Tell WeChat a mini-program order has shipped (wxa/sec/order/upload_shipping_info; not in wechatpy).

    Raises DomainError WECHAT_RATE_LIMITED or WECHAT_UNAVAILABLE.
    """
    await _call(
        lambda client: client.post(
            "wxa/sec/order/upload_shipping_info", data=body, api_base_url=client.wxa.API_BASE_URL
        ),
        needs_token=True,
    )


async def get_live_info(start: int, limit: int) -> dict[str, Any]:
    """One page of the mini-program's live rooms (小程序直播 wxa/business/getliveinfo): `room_info` (each with
    roomid, name, cover_img, anchor_name, start_time, end_time, live_status 101-107, goods) and `total`.

    Raises DomainError WECHAT_RATE_LIMITED or WECHAT_UNAVAILABLE.
    """

    def page(client: LianmallWeChatClient) -> Any:
        try:
            return client.post(
                "wxa/business/getliveinfo",
                data={"start": start, "limit": limit},
                api_base_url=client.wxa.API_BASE_URL,
            )
        except WeChatClientException as exc:
            if exc.errcode == LIVE_ROOMS_EMPTY:  # WeChat's way of saying "no rooms", not a failure
                return {"errcode": 0, "room_info": [], "total": 0}
            raise

    return await _call(page, needs_token=True)


# getliveinfo's answer when the mini-program has no live rooms (or `start` is past the last one).
LIVE_ROOMS_EMPTY = 9410000
