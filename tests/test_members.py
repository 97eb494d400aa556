"""Members' identity through the GraphQL endpoint, with wechatpy talking to a local stand-in of WeChat.

A shopper logs in with a `wx.login()` code (and is created on first sight), refreshes, logs out; WeChat's
errors, a dead network and a slow one become coded payload errors; login attempts are limited per IP and per
code; phones are bound both ways and shown masked to everyone but the member and customer service; profile
edits pass WeChat's content check; the H5 WebSocket authenticates at `connection_init`; and no member's `me`
is ever answered from the response cache.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from infra import wechat as wechat_service
from infra.clock import now
from infra.redis import get_redis
from infra.settings import Settings, get_settings
from models import Address, AuditLog, Member, StaffRole
from schema.cache_policy import CACHEABLE_ROOT_FIELDS
from schema.node import decode_id, encode_id
from services.access import permissions
from services.access.permissions import Permission
from services.access.staff import create_staff
from services.loyalty import levels
from services.members import phone
from services.members import profile as members
from tests.graphql_client import gql
from tests.in_loop_server import in_loop_server
from tests.server_process import child_env, running_server
from tests.wechat_standin import (
    GET_PHONE_NUMBER,
    JSCODE2SESSION,
    MSG_SEC_CHECK,
    TOKEN,
    LoginCode,
    WeChatStandIn,
    encrypt_user_data,
)

ERRORS = "errors { field message code }"
LOGIN = f"""
mutation($code: String!) {{
  loginWithWechat(code: $code) {{ accessToken refreshToken expiresIn member {{ id nickname }} {ERRORS} }}
}}"""
REFRESH = f"""
mutation($token: String!) {{
  refreshToken(token: $token) {{ accessToken refreshToken expiresIn member {{ id nickname }} {ERRORS} }}
}}"""
LOGOUT = f"mutation {{ logout {{ ok {ERRORS} }} }}"
BIND_PHONE = f"""
mutation($code: String!) {{ bindPhone(code: $code) {{ member {{ id phoneMasked phone }} {ERRORS} }} }}"""
BIND_PHONE_ENCRYPTED = f"""
mutation($data: String!, $iv: String!) {{
  bindPhoneEncrypted(encryptedData: $data, iv: $iv) {{ member {{ id phoneMasked phone }} {ERRORS} }}
}}"""
UPDATE_PROFILE = f"""
mutation($input: UpdateProfileInput!) {{
  updateProfile(input: $input) {{ member {{ id nickname avatarUrl birthday }} {ERRORS} }}
}}"""
ME = """
{ me { id nickname avatarUrl phoneMasked phone level { name discountPercent } growth points
       addresses { id name } inviteCode } }"""
STAFF_MEMBER = "query($id: ID!) { member(id: $id) { id nickname phoneMasked phone } }"
STAFF_MEMBER_MASKED = "query($id: ID!) { member(id: $id) { id nickname phoneMasked } }"

PHONE = "13812341234"
MASKED = "138****1234"

# Every client gets its own address: the per-IP login limit must not couple the tests.
_ips = itertools.count(secrets.randbelow(1 << 20))


def next_ip() -> str:
    n = next(_ips)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@pytest.fixture
async def shoppers(app: object) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """Makes test clients, each calling from an IP address of its own (or the one given)."""
    made: list[httpx.AsyncClient] = []

    def make(ip: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip or next_ip(), 40000))  # type: ignore[arg-type]
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def shopper(shoppers: Callable[..., httpx.AsyncClient]) -> httpx.AsyncClient:
    return shoppers()


async def field_of(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None
) -> Any:
    """The single root field's payload."""
    (result,) = (await gql(client, query, variables, token=token))["data"].values()
    return result


async def login(client: httpx.AsyncClient, code: str) -> dict[str, Any]:
    return await field_of(client, LOGIN, {"code": code}, None)


async def logged_in(
    client: httpx.AsyncClient, wechat: WeChatStandIn, **who: Any
) -> tuple[dict[str, Any], LoginCode]:
    code = wechat.new_login(**who)
    result = await login(client, code.code)
    assert result["errors"] == [], result["errors"]
    return result, code


def codes(result: dict[str, Any]) -> list[str]:
    return [e["code"] for e in result["errors"]]


async def staff_token(role: StaffRole) -> str:
    _, token = await create_staff(f"members-{uuid.uuid4().hex[:10]}", role)
    return token


# --- login, refresh, logout --------------------------------------------------------------------------------


async def test_login_creates_the_member_once_and_finds_it_again(
    wechat: WeChatStandIn, shopper: httpx.AsyncClient
) -> None:
    first, code = await logged_in(shopper, wechat, unionid="u_" + secrets.token_hex(6))
    assert first["expiresIn"] == 7200 and first["accessToken"] and first["refreshToken"].startswith("rt_")
    member = await Member.get(openid=code.openid)
    assert first["member"] == {"id": encode_id("Member", member.id), "nickname": ""}
    assert member.unionid == code.unionid and member.last_login_at is not None
    assert len(member.invite_code) == 8
    # The session key is stored, but never as it came.
    assert code.session_key not in member.session_key_encrypted
    assert phone.decrypt_session_key(member.session_key_encrypted) == code.session_key

    # wechatpy sent our credentials and the code, and fetched no access token for it.
    (call,) = wechat.calls(JSCODE2SESSION)
    assert call.params == {
        "appid": wechat.appid,
        "secret": wechat.secret,
        "js_code": code.code,
        "grant_type": "authorization_code",
    }
    assert wechat.calls(TOKEN) == []

    second, again = await logged_in(shopper, wechat, openid=code.openid)
    assert second["member"]["id"] == first["member"]["id"]
    assert await Member.filter(openid=code.openid).count() == 1
    refreshed = await Member.get(id=member.id)
    assert phone.decrypt_session_key(refreshed.session_key_encrypted) == again.session_key
    assert refreshed.invite_code == member.invite_code

    for result in (first, second):
        me = (await gql(shopper, "{ me { id inviteCode } }", token=result["accessToken"]))["data"]["me"]
        assert me == {"id": first["member"]["id"], "inviteCode": member.invite_code}


async def test_concurrent_first_logins_of_one_shopper_make_one_member(
    wechat: WeChatStandIn, shoppers: Callable[..., httpx.AsyncClient]
) -> None:
    openid = "o_race_" + secrets.token_hex(6)
    logins = [wechat.new_login(openid=openid) for _ in range(4)]
    results = await asyncio.gather(*(login(shoppers(), c.code) for c in logins))
    assert all(r["errors"] == [] for r in results), results
    assert len({r["member"]["id"] for r in results}) == 1
    assert await Member.filter(openid=openid).count() == 1


async def test_refresh_rotates_and_logout_revokes(wechat: WeChatStandIn, shopper: httpx.AsyncClient) -> None:
    first, _ = await logged_in(shopper, wechat)
    second = await field_of(shopper, REFRESH, {"token": first["refreshToken"]}, None)
    assert second["errors"] == []
    assert second["member"] == first["member"]
    assert second["refreshToken"] != first["refreshToken"]
    me = (await gql(shopper, "{ me { id } }", token=second["accessToken"]))["data"]["me"]
    assert me["id"] == first["member"]["id"]

    out = await field_of(shopper, LOGOUT, {}, second["accessToken"])
    assert out == {"ok": True, "errors": []}
    for token in (first["accessToken"], second["accessToken"]):
        response = await shopper.post(
            "/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    after = await field_of(shopper, REFRESH, {"token": second["refreshToken"]}, None)
    assert codes(after) == ["UNAUTHENTICATED"]


async def test_a_reused_refresh_token_ends_the_whole_session(
    wechat: WeChatStandIn, shopper: httpx.AsyncClient
) -> None:
    first, _ = await logged_in(shopper, wechat)
    second = await field_of(shopper, REFRESH, {"token": first["refreshToken"]}, None)
    assert second["errors"] == []
    assert (await gql(shopper, "{ me { id } }", token=second["accessToken"]))["data"]["me"] is not None

    # The first refresh token again: someone else holds this session too. Both lose it.
    reused = await field_of(shopper, REFRESH, {"token": first["refreshToken"]}, None)
    assert codes(reused) == ["UNAUTHENTICATED"] and reused["accessToken"] is None
    assert "already used" in reused["errors"][0]["message"]
    response = await shopper.post(
        "/graphql",
        json={"query": "{ me { id } }"},
        headers={"Authorization": f"Bearer {second['accessToken']}"},
    )
    assert response.status_code == 401
    assert codes(await field_of(shopper, REFRESH, {"token": second["refreshToken"]}, None)) == [
        "UNAUTHENTICATED"
    ]
    # A new login is a new session and works.
    again, _ = await logged_in(shopper, wechat)
    assert (await gql(shopper, "{ me { id } }", token=again["accessToken"]))["data"]["me"] is not None


async def test_logout_and_member_mutations_need_a_member(
    wechat: WeChatStandIn, shopper: httpx.AsyncClient
) -> None:
    assert codes(await field_of(shopper, LOGOUT, {}, None)) == ["UNAUTHENTICATED"]
    operator = await staff_token(StaffRole.OPERATOR)
    assert codes(await field_of(shopper, LOGOUT, {}, operator)) == ["FORBIDDEN"]
    code = wechat.new_phone_code()
    assert codes(await field_of(shopper, BIND_PHONE, {"code": code}, None)) == ["UNAUTHENTICATED"]
    assert wechat.calls(GET_PHONE_NUMBER) == []
    assert (await gql(shopper, "{ me { id } }"))["data"]["me"] is None
    assert (await gql(shopper, "{ me { id } }", token=operator))["data"]["me"] is None


# --- WeChat's errors and failures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("unknown code", "WECHAT_CODE_INVALID"),
        ("used code", "WECHAT_CODE_INVALID"),
        ("errcode 40029", "WECHAT_CODE_INVALID"),
        ("errcode 45011", "WECHAT_RATE_LIMITED"),
        ("errcode -1", "WECHAT_UNAVAILABLE"),
        ("http 502", "WECHAT_UNAVAILABLE"),
    ],
)
async def test_wechat_errors_become_clear_codes(
    wechat: WeChatStandIn, shoppers: Callable[..., httpx.AsyncClient], script: str, expected: str
) -> None:
    code = wechat.new_login()
    if script == "unknown code":
        code = LoginCode("never-issued-" + secrets.token_hex(4), code.openid, None, code.session_key)
    elif script == "used code":
        assert (await login(shoppers(), code.code))["errors"] == []
    elif script.startswith("errcode"):
        wechat.fail(JSCODE2SESSION, int(script.split()[1]))
    else:
        wechat.fail_http(JSCODE2SESSION, 502)
    members_before = await Member.filter(openid=code.openid).count()
    result = await login(shoppers(), code.code)
    assert codes(result) == [expected], result
    assert result["accessToken"] is None and result["member"] is None
    if expected == "WECHAT_CODE_INVALID":
        assert result["errors"][0]["field"] == "code"
    assert await Member.filter(openid=code.openid).count() == members_before


async def test_wrong_credentials_are_refused_by_wechat_and_reported_as_unavailable(
    wechat: WeChatStandIn,
    shoppers: Callable[..., httpx.AsyncClient],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "wechat_secret", "not-the-secret")
    assert codes(await login(shoppers(), wechat.new_login().code)) == ["WECHAT_UNAVAILABLE"]
    monkeypatch.setattr(settings, "wechat_secret", wechat.secret)
    monkeypatch.setattr(settings, "wechat_appid", "wx0000000000000000")
    assert codes(await login(shoppers(), wechat.new_login().code)) == ["WECHAT_UNAVAILABLE"]
    monkeypatch.setattr(settings, "wechat_appid", "")
    assert codes(await login(shoppers(), wechat.new_login().code)) == ["WECHAT_UNAVAILABLE"]
    # The stand-in saw (and refused) the first two; the unconfigured server did not even call.
    assert len(wechat.calls(JSCODE2SESSION)) == 2


async def test_an_unreachable_or_slow_wechat_is_unavailable_not_a_crash(
    wechat: WeChatStandIn,
    shoppers: Callable[..., httpx.AsyncClient],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped = WeChatStandIn()
    stopped.start()
    stopped.stop()
    monkeypatch.setattr(settings, "wechat_api_base_url", stopped.base_url)
    response = await shoppers().post("/graphql", json={"query": LOGIN, "variables": {"code": "c0de"}})
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    assert codes(body["data"]["loginWithWechat"]) == ["WECHAT_UNAVAILABLE"]

    monkeypatch.setattr(settings, "wechat_api_base_url", wechat.base_url)
    monkeypatch.setattr(wechat_service.WECHAT_LANE.session, "default_timeout", 0.3)
    wechat.delay(JSCODE2SESSION, 1.5)
    assert codes(await login(shoppers(), wechat.new_login().code)) == ["WECHAT_UNAVAILABLE"]


# --- rate limits -------------------------------------------------------------------------------------------


async def test_login_attempts_are_limited_per_ip(
    wechat: WeChatStandIn,
    shoppers: Callable[..., httpx.AsyncClient],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "login_ip_limit", 5)
    crowded = shoppers()
    for _ in range(settings.login_ip_limit):
        assert codes(await login(crowded, "bad-" + secrets.token_hex(4))) == ["WECHAT_CODE_INVALID"]
    good = wechat.new_login()
    limited = await login(crowded, good.code)
    assert codes(limited) == ["RATE_LIMITED"]
    # Refused before asking WeChat: the code is still good, from another network.
    assert len(wechat.calls(JSCODE2SESSION)) == settings.login_ip_limit
    assert (await login(shoppers(), good.code))["errors"] == []


async def test_one_code_is_tried_at_most_three_times(
    wechat: WeChatStandIn, shoppers: Callable[..., httpx.AsyncClient], settings: Settings
) -> None:
    code = wechat.new_login().code
    assert (await login(shoppers(), code))["errors"] == []
    for _ in range(settings.login_code_limit - 1):
        assert codes(await login(shoppers(), code)) == ["WECHAT_CODE_INVALID"]  # 40163 code been used
    limited = await login(shoppers(), code)
    assert codes(limited) == ["RATE_LIMITED"] and limited["errors"][0]["field"] == "code"
    assert len(wechat.calls(JSCODE2SESSION)) == settings.login_code_limit


async def test_the_rate_limiter_counts_atomically_in_a_fixed_window(redis: object) -> None:
    from services import rate_limit

    key = "test:" + secrets.token_hex(4)
    allowed = await asyncio.gather(*(rate_limit.hit(key, 5, 60) for _ in range(20)))
    assert sum(allowed) == 5
    ttl = await get_redis().ttl("ratelimit:" + key)
    assert 0 < ttl <= 60
    await rate_limit.reset(key)
    assert await rate_limit.hit(key, 5, 60)


# --- phone binding -----------------------------------------------------------------------------------------


async def test_bind_phone_with_a_code_stores_it_protected(
    wechat: WeChatStandIn, shopper: httpx.AsyncClient
) -> None:
    session, login_code = await logged_in(shopper, wechat)
    token = session["accessToken"]
    await get_redis().delete(f"wechat:access_token:{wechat.appid}")
    bound = await field_of(shopper, BIND_PHONE, {"code": wechat.new_phone_code(PHONE)}, token)
    assert bound["errors"] == []
    assert bound["member"]["phoneMasked"] == MASKED and bound["member"]["phone"] == PHONE

    member = await Member.get(openid=login_code.openid)
    assert PHONE not in member.phone_encrypted and member.phone_masked == MASKED
    assert member.phone_hash == phone.phone_hash(PHONE) and PHONE not in (member.phone_hash or "")
    assert [m.id for m in await members.find_by_phone(PHONE)][-1] == member.id

    (call,) = wechat.calls(GET_PHONE_NUMBER)
    assert call.body is not None and set(call.body) == {"code"}
    # One access token, fetched once and shared through Redis: the next call reuses it.
    assert len(wechat.calls(TOKEN)) == 1
    assert (
        await get_redis().get(f"wechat:access_token:{wechat.appid}") == call.params["access_token"].encode()
    )
    again = await field_of(shopper, BIND_PHONE, {"code": wechat.new_phone_code("13900001111")}, token)
    assert again["member"]["phoneMasked"] == "139****1111"
    assert len(wechat.calls(TOKEN)) == 1

    me = (await gql(shopper, "{ me { phoneMasked phone } }", token=token))["data"]["me"]
    assert me == {"phoneMasked": "139****1111", "phone": "13900001111"}


async def test_an_expired_access_token_is_replaced_and_the_call_retried(
    wechat: WeChatStandIn, shopper: httpx.AsyncClient
) -> None:
    session, _ = await logged_in(shopper, wechat)
    token = session["accessToken"]
    assert (await field_of(shopper, BIND_PHONE, {"code": wechat.new_phone_code()}, token))["errors"] == []
    fetches = len(wechat.calls(TOKEN))
    old = await get_redis().get(f"wechat:access_token:{wechat.appid}")
    wechat.expire_tokens()
    assert (await field_of(shopper, BIND_PHONE, {"code": wechat.new_phone_code()}, token))["errors"] == []
    assert len(wechat.calls(TOKEN)) == fetches + 1
    new = await get_redis().get(f"wechat:access_token:{wechat.appid}")
    assert new and new != old
    first, retried = wechat.calls(GET_PHONE_NUMBER)[-2:]
    assert first.params["access_token"].encode() == old and retried.params["access_token"].encode() == new


async def test_concurrent_calls_with_no_token_fetch_one(wechat: WeChatStandIn, redis: object) -> None:
    await get_redis().delete(f"wechat:access_token:{wechat.appid}")
    await asyncio.gather(
        *(wechat_service.msg_sec_check("o_x", wechat_service.Scene.COMMENT, f"你好 {i}") for i in range(8))
    )
    assert len(wechat.calls(TOKEN)) == 1
    tokens = {c.params["access_token"] for c in wechat.calls(MSG_SEC_CHECK)}
    assert len(tokens) == 1 and len(wechat.calls(MSG_SEC_CHECK)) == 8


async def test_bind_phone_errors(wechat: WeChatStandIn, shopper: httpx.AsyncClient) -> None:
    session, login_code = await logged_in(shopper, wechat)
    token = session["accessToken"]
    invalid = await field_of(shopper, BIND_PHONE, {"code": "no-such-code"}, token)
    assert codes(invalid) == ["WECHAT_CODE_INVALID"] and invalid["errors"][0]["field"] == "code"
    wechat.fail(GET_PHONE_NUMBER, 45011)
    assert codes(await field_of(shopper, BIND_PHONE, {"code": wechat.new_phone_code()}, token)) == [
        "WECHAT_RATE_LIMITED"
    ]
    wechat.fail(GET_PHONE_NUMBER, -1)
    assert codes(await field_of(shopper, BIND_PHONE, {"code": wechat.new_phone_code()}, token)) == [
        "WECHAT_UNAVAILABLE"
    ]
    member = await Member.get(openid=login_code.openid)
    assert member.phone_encrypted == "" and member.phone_masked == "" and member.phone_hash is None
    # getuserphonenumber is billed per call: a member gets a few attempts per window.
    for _ in range(get_settings().phone_bind_limit - 3):
        await field_of(shopper, BIND_PHONE, {"code": "no-such-code"}, token)
    limited = await field_of(shopper, BIND_PHONE, {"code": wechat.new_phone_code()}, token)
    assert codes(limited) == ["RATE_LIMITED"]


async def test_bind_phone_from_encrypted_data(
    wechat: WeChatStandIn, shoppers: Callable[..., httpx.AsyncClient]
) -> None:
    client = shoppers()
    session, login_code = await logged_in(client, wechat)
    token = session["accessToken"]

    def phone_data(number: str, appid: str) -> dict[str, Any]:
        return {
            "phoneNumber": number,
            "purePhoneNumber": number,
            "countryCode": "86",
            "watermark": {"timestamp": int(now().timestamp()), "appid": appid},
        }

    data, iv = encrypt_user_data(login_code.session_key, phone_data(PHONE, wechat.appid))
    bound = await field_of(client, BIND_PHONE_ENCRYPTED, {"data": data, "iv": iv}, token)
    assert bound["errors"] == []
    assert bound["member"]["phoneMasked"] == MASKED and bound["member"]["phone"] == PHONE
    stored = await Member.get(openid=login_code.openid)

    other_app, other_iv = encrypt_user_data(login_code.session_key, phone_data("13700000000", "wx_other"))
    # After another wx.login the old session key is gone: data encrypted under it no longer decrypts.
    await logged_in(shoppers(), wechat, openid=login_code.openid)
    stale, stale_iv = encrypt_user_data(login_code.session_key, phone_data("13600000000", wechat.appid))
    for variables in (
        {"data": other_app, "iv": other_iv},
        {"data": stale, "iv": stale_iv},
        {"data": "bm90IGVuY3J5cHRlZA==", "iv": iv},
        {"data": data, "iv": "short"},
    ):
        refused = await field_of(client, BIND_PHONE_ENCRYPTED, variables, token)
        assert codes(refused) == ["WECHAT_DATA_INVALID"], (variables, refused)
    unchanged = await Member.get(openid=login_code.openid)
    assert (unchanged.phone_encrypted, unchanged.phone_masked) == (stored.phone_encrypted, MASKED)


def test_masks_hide_the_middle_and_hashes_are_keyed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert phone.mask_phone(PHONE) == MASKED
    assert phone.mask_phone("+85291234567") == "+85*****4567"
    assert phone.mask_phone("91234567") == "****4567"
    assert phone.normalize_phone("91234567", "852") == "+85291234567"
    digest = phone.phone_hash(PHONE)
    monkeypatch.setattr(settings, "secret_key", "another-secret")
    assert phone.phone_hash(PHONE) != digest
    encrypted = phone.encrypt_phone(PHONE)
    assert phone.decrypt_phone(encrypted) == PHONE
    monkeypatch.setattr(settings, "secret_key", "yet-another-secret")
    with pytest.raises(phone.UnreadableSecret):
        phone.decrypt_phone(encrypted)


# --- who sees the phone --------------------------------------------------------------------------------------


async def test_phone_numbers_are_masked_for_everyone_but_the_member_and_customer_service(
    wechat: WeChatStandIn, shoppers: Callable[..., httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = shoppers()
    alice, _ = await logged_in(client, wechat)
    bob, _ = await logged_in(shoppers(), wechat)
    await field_of(client, BIND_PHONE, {"code": wechat.new_phone_code(PHONE)}, alice["accessToken"])
    alice_id = alice["member"]["id"]

    # Logging in again shows the mask only.
    openid = (await Member.get(id=decode_id(alice_id, "Member"))).openid
    relogin = await gql(
        shoppers(),
        "mutation($code: String!) { loginWithWechat(code: $code) { member { id phoneMasked } } }",
        {"code": wechat.new_login(openid=openid).code},
    )
    assert relogin["data"]["loginWithWechat"]["member"] == {"id": alice_id, "phoneMasked": MASKED}

    service = await staff_token(StaffRole.CUSTOMER_SERVICE)
    reads_before = await AuditLog.filter(action="memberPhoneRead", target=alice_id).count()
    seen = (await gql(client, STAFF_MEMBER, {"id": alice_id}, token=service))["data"]["member"]
    assert seen["phoneMasked"] == MASKED and seen["phone"] == PHONE
    # Staff reading a whole phone number leaves a trace in the audit log.
    assert await AuditLog.filter(action="memberPhoneRead", target=alice_id).count() == reads_before + 1

    # A member never reaches another member, nor staff without MEMBER_READ.
    for token, code in (
        (bob["accessToken"], "FORBIDDEN"),
        (await staff_token(StaffRole.OPERATOR), "FORBIDDEN"),
    ):
        body = await gql(client, STAFF_MEMBER_MASKED, {"id": alice_id}, token=token, expect_errors=True)
        assert body["data"] is None or body["data"]["member"] is None
        assert body["errors"][0]["extensions"]["code"] == code

    # Staff who may look members up but not read phones see only the mask.
    table = dict(permissions.ROLE_PERMISSIONS)
    table[StaffRole.WAREHOUSE] = frozenset({Permission.MEMBER_READ})
    monkeypatch.setattr(permissions, "ROLE_PERMISSIONS", table)
    warehouse = await staff_token(StaffRole.WAREHOUSE)
    masked = (await gql(client, STAFF_MEMBER_MASKED, {"id": alice_id}, token=warehouse))["data"]["member"]
    assert masked["phoneMasked"] == MASKED
    body = await gql(client, STAFF_MEMBER, {"id": alice_id}, token=warehouse, expect_errors=True)
    assert body["data"]["member"]["phone"] is None and PHONE not in json.dumps(body)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["path"] == ["member", "phone"]


async def test_member_node_answers_only_the_member_and_member_readers(
    wechat: WeChatStandIn, shoppers: Callable[..., httpx.AsyncClient]
) -> None:
    from resolvers.members import member_node
    from schema.context import make_context
    from services.members.viewer import viewer_for_token

    alice, _ = await logged_in(shoppers(), wechat)
    bob, _ = await logged_in(shoppers(), wechat)
    pk = decode_id(alice["member"]["id"], "Member")

    async def seen_by(token: str | None) -> Any:
        viewer = await viewer_for_token(token) if token else make_context().viewer
        node = await member_node(make_context(viewer), pk)
        return node.id if node else None

    assert await seen_by(alice["accessToken"]) == alice["member"]["id"]
    assert await seen_by(await staff_token(StaffRole.CUSTOMER_SERVICE)) == alice["member"]["id"]
    for stranger in (bob["accessToken"], await staff_token(StaffRole.OPERATOR), None):
        assert await seen_by(stranger) is None


# --- me and the profile --------------------------------------------------------------------------------------


async def test_me_shows_the_members_own_profile(wechat: WeChatStandIn, shopper: httpx.AsyncClient) -> None:
    await levels.ensure_default_levels()
    session, login_code = await logged_in(shopper, wechat)
    token = session["accessToken"]
    member = await Member.get(openid=login_code.openid)
    await Member.filter(id=member.id).update(growth=600, points=120)
    await Address.create(
        member=member,
        name="林晓",
        phone="13800138000",
        province="广东省",
        city="深圳市",
        district="南山区",
        detail="科技园 1 号",
        is_default=True,
    )
    me = (await gql(shopper, ME, token=token))["data"]["me"]
    level = await levels.level_for_growth(600)
    assert level is not None
    assert me["id"] == encode_id("Member", member.id)
    assert me["level"] == {"name": level.name, "discountPercent": level.discount_percent}
    assert (me["growth"], me["points"], me["inviteCode"]) == (600, 120, member.invite_code)
    assert (me["phoneMasked"], me["phone"]) == (None, None)
    assert [a["name"] for a in me["addresses"]] == ["林晓"]

    # Staff with MEMBER_READ see the member, but not their addresses (recipients' phones are in them).
    service = await staff_token(StaffRole.CUSTOMER_SERVICE)
    body = await gql(
        shopper,
        "query($id: ID!) { member(id: $id) { addresses { id } } }",
        {"id": me["id"]},
        token=service,
        expect_errors=True,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_update_profile_checks_the_nickname_with_wechat(
    wechat: WeChatStandIn, shopper: httpx.AsyncClient
) -> None:
    session, login_code = await logged_in(shopper, wechat)
    token = session["accessToken"]
    changes = {"nickname": " 小林 ", "avatarUrl": "https://img.example.com/a.png", "birthday": "1990-05-01"}
    updated = await field_of(shopper, UPDATE_PROFILE, {"input": changes}, token)
    assert updated["errors"] == []
    assert updated["member"] | {"id": None} == {
        "id": None,
        "nickname": "小林",
        "avatarUrl": "https://img.example.com/a.png",
        "birthday": "1990-05-01",
    }
    (check,) = wechat.calls(MSG_SEC_CHECK)
    assert check.body == {"version": 2, "openid": login_code.openid, "scene": 1, "content": "小林"}

    wechat.add_risky_words("违规")
    before = await Member.get(openid=login_code.openid).values()
    risky = {"nickname": "违规昵称", "avatarUrl": "https://img.example.com/b.png"}
    refused = await field_of(shopper, UPDATE_PROFILE, {"input": risky}, token)
    assert codes(refused) == ["CONTENT_REJECTED"] and refused["errors"][0]["field"] == "input.nickname"
    assert refused["member"] is None
    assert await Member.get(openid=login_code.openid).values() == before

    # "review" is refused too: a nickname shows at once and has no moderation queue.
    wechat.add_review_words("可疑")
    held = await field_of(shopper, UPDATE_PROFILE, {"input": {"nickname": "可疑昵称"}}, token)
    assert codes(held) == ["CONTENT_REJECTED"]
    assert await Member.get(openid=login_code.openid).values() == before

    # When WeChat cannot check, the nickname is not changed either.
    wechat.fail(MSG_SEC_CHECK, -1)
    down = await field_of(shopper, UPDATE_PROFILE, {"input": {"nickname": "阿林"}}, token)
    assert codes(down) == ["WECHAT_UNAVAILABLE"]
    assert await Member.get(openid=login_code.openid).values() == before

    # An unchanged nickname is not sent to WeChat again; other fields change without a check.
    checks = len(wechat.calls(MSG_SEC_CHECK))
    same = await field_of(shopper, UPDATE_PROFILE, {"input": {"nickname": "小林", "avatarUrl": ""}}, token)
    assert same["errors"] == [] and same["member"]["avatarUrl"] == ""
    assert len(wechat.calls(MSG_SEC_CHECK)) == checks


async def test_update_profile_refuses_bad_input_field_by_field(
    wechat: WeChatStandIn, shopper: httpx.AsyncClient
) -> None:
    session, login_code = await logged_in(shopper, wechat)
    token = session["accessToken"]
    bad = {
        "nickname": "x" * 65,
        "avatarUrl": "javascript:alert(1)",
        "birthday": (now().date() + timedelta(days=1)).isoformat(),
    }
    refused = await field_of(shopper, UPDATE_PROFILE, {"input": bad}, token)
    assert sorted((e["field"], e["code"]) for e in refused["errors"]) == [
        ("input.avatarUrl", "BAD_USER_INPUT"),
        ("input.birthday", "BAD_USER_INPUT"),
        ("input.nickname", "BAD_USER_INPUT"),
    ]
    assert codes(await field_of(shopper, UPDATE_PROFILE, {"input": {"nickname": "a\u0000b"}}, token)) == [
        "BAD_USER_INPUT"
    ]
    assert wechat.calls(MSG_SEC_CHECK) == []

    set_once = await field_of(shopper, UPDATE_PROFILE, {"input": {"birthday": "1995-02-03"}}, token)
    assert set_once["errors"] == []
    again = await field_of(shopper, UPDATE_PROFILE, {"input": {"birthday": "1995-03-02"}}, token)
    assert codes(again) == ["CONFLICT"]
    assert (await Member.get(openid=login_code.openid)).birthday == date(1995, 2, 3)


async def test_me_is_never_answered_from_the_response_cache(
    wechat: WeChatStandIn, shoppers: Callable[..., httpx.AsyncClient]
) -> None:
    assert "me" not in CACHEABLE_ROOT_FIELDS
    client = shoppers()
    alice, _ = await logged_in(client, wechat)
    bob, _ = await logged_in(shoppers(), wechat)
    # Same level (growth 0), so the same cache scope; identical request bytes.
    for query in ("{ me { id nickname } }", "{ me { id } categories { id } }"):
        for _ in range(2):
            for who in (alice, bob):
                me = (await gql(client, query, token=who["accessToken"]))["data"]["me"]
                assert me["id"] == who["member"]["id"]


# --- the WebSocket -----------------------------------------------------------------------------------------


@asynccontextmanager
async def serving(app: object) -> AsyncIterator[str]:
    """The app on a real socket in this event loop (and this process's database), for WebSocket clients."""
    async with in_loop_server(app, log_level="warning") as port:
        yield f"ws://127.0.0.1:{port}/graphql"


@pytest.fixture
async def ws_url(app: object) -> AsyncIterator[str]:
    async with serving(app) as url:
        yield url


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        return json.loads(await ws.recv())


async def ws_me(url: str, payload: dict[str, Any] | None) -> Any:
    """`connection_init` with `payload`, then `{ me { id } }` over graphql-transport-ws."""
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        assert (await _recv(ws))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ me { id } }"}}))
        message = await _recv(ws)
        assert message["type"] == "next", message
        return message["payload"]["data"]["me"]


async def ws_refused(url: str, payload: dict[str, Any]) -> int:
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            await _recv(ws)
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code


async def test_the_websocket_authenticates_at_connection_init(
    wechat: WeChatStandIn, shopper: httpx.AsyncClient, ws_url: str
) -> None:
    session, _ = await logged_in(shopper, wechat)
    token, own = session["accessToken"], session["member"]
    assert await ws_me(ws_url, {"accessToken": token}) == {"id": own["id"]}
    assert await ws_me(ws_url, {"Authorization": f"Bearer {token}"}) == {"id": own["id"]}
    assert await ws_me(ws_url, None) is None  # a guest: public subscriptions need no token

    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(
        {**claims, "sub": "1"}, "not-the-server-secret-but-long-enough-for-hs256", algorithm="HS256"
    )
    for payload in (
        {"accessToken": forged},
        {"accessToken": token[:-3] + "abc"},
        {"Authorization": "Basic abc"},
        {"accessToken": 42},
    ):
        assert await ws_refused(ws_url, payload) == 4403, payload

    await field_of(shopper, LOGOUT, {}, token)
    assert await ws_refused(ws_url, {"accessToken": token}) == 4403


async def test_the_legacy_websocket_protocol_reports_the_refusal(
    wechat: WeChatStandIn, shopper: httpx.AsyncClient, ws_url: str
) -> None:
    async with connect(ws_url, subprotocols=[Subprotocol("graphql-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"accessToken": "a.b.c"}}))
        message = await _recv(ws)
        assert message["type"] == "connection_error"
        assert message["payload"]["code"] == "UNAUTHENTICATED"


# --- across processes --------------------------------------------------------------------------------------


@pytest.fixture
def child_settings(settings: Settings, wechat: WeChatStandIn, tmp_path: Path) -> dict[str, str]:
    """A server process on the session's database and Redis, with its secret key and the stand-in."""
    assert settings.database_url and settings.redis_url
    return child_env(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "DATA_DIR": str(tmp_path),
            "SECRET_KEY": settings.resolved_secret_key,
            "WECHAT_APPID": wechat.appid,
            "WECHAT_SECRET": wechat.secret,
            "WECHAT_API_BASE_URL": wechat.base_url,
            "DB_POOL_MAX": "2",
        }
    )


@pytest.mark.realservices
async def test_a_login_on_one_process_is_revoked_on_every_process(
    wechat: WeChatStandIn, shopper: httpx.AsyncClient, child_settings: dict[str, str]
) -> None:
    async with running_server(child_settings) as other:
        code = wechat.new_login()
        response = await other.post(LOGIN, {"code": code.code})
        session = response.json()["data"]["loginWithWechat"]
        assert session["errors"] == [], session
        own = session["member"]["id"]
        assert (await other.gql("{ me { id } }", token=session["accessToken"]))["me"]["id"] == own
        assert (await gql(shopper, "{ me { id } }", token=session["accessToken"]))["data"]["me"]["id"] == own
        assert await ws_me(other.ws_url, {"accessToken": session["accessToken"]}) == {"id": own}

        # Logged out here, refused there: over HTTP and at the WebSocket's connection_init.
        assert (await field_of(shopper, LOGOUT, {}, session["accessToken"]))["ok"] is True
        refused = await other.post("{ me { id } }", token=session["accessToken"])
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert await ws_refused(other.ws_url, {"accessToken": session["accessToken"]}) == 4403
