"""Rate limits fit real networks: many shoppers behind one carrier NAT can all log in, limits count per code,
device and account first, and the address a limit counts by is the one trusted proxies report, never one a
client writes into X-Forwarded-For itself."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from infra.client_ip import network_key
from infra.settings import Settings
from main import create_app, uvicorn_options
from models import MemberSession
from schema.node import decode_id
from tests.in_loop_server import in_loop_server
from tests.wechat_standin import JSCODE2SESSION, WeChatStandIn

pytestmark = pytest.mark.usefixtures("runtime")

LOGIN = """mutation($code: String!) { loginWithWechat(code: $code) {
  accessToken member { id } errors { field code message } } }"""
NAT = "100.64.0.1"  # carrier-grade NAT space


@pytest.fixture
def clients() -> Callable[..., AsyncIterator[httpx.AsyncClient]]:
    @asynccontextmanager
    async def make(
        app: Any, ip: str, headers: dict[str, str] | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers or {}
        ) as client:
            yield client

    return make


async def login(
    client: httpx.AsyncClient, code: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": LOGIN, "variables": {"code": code}}, headers=headers
    )
    payload: dict[str, Any] = response.json()["data"]["loginWithWechat"]
    return payload


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def session_ip(payload: dict[str, Any]) -> str:
    member_id = decode_id(payload["member"]["id"], "Member")
    session = await MemberSession.filter(member_id=member_id).order_by("-id").first()
    assert session is not None
    return session.ip


def device() -> dict[str, str]:
    return {"X-Device-Id": secrets.token_hex(16)}


# --- the address -------------------------------------------------------------------------------------------


async def test_only_trusted_proxies_set_the_client_address(
    app: Any, wechat: WeChatStandIn, settings: Settings, clients: Callable[..., Any]
) -> None:
    # Straight from an untrusted host: its own X-Forwarded-For is ignored.
    async with clients(app, "203.0.113.9") as direct:
        spoofed = await login(direct, wechat.new_login().code, {"X-Forwarded-For": "198.51.100.1"})
        assert await session_ip(spoofed) == "203.0.113.9"
    # Through the trusted local proxy: the address it saw, not what the client prepended.
    async with clients(app, "127.0.0.1") as proxied:
        forwarded = await login(
            proxied, wechat.new_login().code, {"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
        )
        assert await session_ip(forwarded) == "198.51.100.7"
    # FORWARDED_ALLOW_IPS names the proxies: a load balancer network.
    behind_lb = create_app(
        settings.model_copy(update={"forwarded_allow_ips": "10.0.0.0/8"}), manage_resources=False
    )
    async with clients(behind_lb, "10.1.2.3") as balanced:
        assert await session_ip(
            await login(balanced, wechat.new_login().code, {"X-Forwarded-For": "198.51.100.8"})
        ) == ("198.51.100.8")
    async with clients(behind_lb, "127.0.0.1") as local:  # no longer trusted there
        assert await session_ip(
            await login(local, wechat.new_login().code, {"X-Forwarded-For": "198.51.100.9"})
        ) == ("127.0.0.1")


async def test_a_client_cannot_escape_the_network_limit_by_forging_forwarded_for(
    app: Any,
    wechat: WeChatStandIn,
    settings: Settings,
    clients: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "login_ip_limit", 4)
    async with clients(app, "203.0.113.77") as attacker:
        answers = [
            await login(attacker, wechat.new_login().code, {"X-Forwarded-For": f"198.51.100.{i}", **device()})
            for i in range(6)
        ]
    assert [codes(a) for a in answers] == [[]] * 4 + [["RATE_LIMITED"]] * 2


@asynccontextmanager
async def served(app: Any, settings: Settings) -> AsyncIterator[str]:
    """`app` on a real socket, run by uvicorn exactly as `serve` runs it (uvicorn_options)."""
    async with in_loop_server(app, **uvicorn_options(settings)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(("trusted", "expected"), [("127.0.0.1", "198.51.100.20"), ("10.9.9.9", "127.0.0.1")])
async def test_uvicorn_trusts_the_same_proxies_as_the_app(
    wechat: WeChatStandIn, settings: Settings, trusted: str, expected: str
) -> None:
    """Over a real socket: were uvicorn left at its own default (127.0.0.1), it would rewrite the address
    before the app's check and the second case would see the forged one."""
    configured = settings.model_copy(update={"forwarded_allow_ips": trusted})
    async with served(create_app(configured, manage_resources=False), configured) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            payload = await login(client, wechat.new_login().code, {"X-Forwarded-For": "198.51.100.20"})
    assert await session_ip(payload) == expected


def test_ipv6_clients_are_counted_by_their_64() -> None:
    assert network_key("2001:db8:1:2:aaaa::1") == network_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert network_key("2001:db8:1:3::1") != network_key("2001:db8:1:2::1")
    assert network_key("198.51.100.1") == "198.51.100.1"


# --- many shoppers, one address ----------------------------------------------------------------------------


async def test_many_shoppers_behind_one_carrier_address_all_log_in(
    app: Any, wechat: WeChatStandIn, clients: Callable[..., Any]
) -> None:
    """Sixty shoppers behind one NAT address within a minute: the old per-IP limit (10) refused 50 of them."""
    async with clients(app, NAT) as nat:
        answers = await asyncio.gather(*(login(nat, wechat.new_login().code, device()) for _ in range(60)))
    assert all(codes(a) == [] for a in answers), [codes(a) for a in answers if codes(a)]
    assert len({a["member"]["id"] for a in answers}) == 60


async def test_one_device_is_limited_before_its_network(
    app: Any, wechat: WeChatStandIn, settings: Settings, clients: Callable[..., Any]
) -> None:
    noisy = device()
    async with clients(app, NAT) as nat:
        for _ in range(settings.login_device_limit):
            assert codes(await login(nat, "bad-" + secrets.token_hex(4), noisy)) == ["WECHAT_CODE_INVALID"]
        calls = len(wechat.calls(JSCODE2SESSION))
        assert codes(await login(nat, wechat.new_login().code, noisy)) == ["RATE_LIMITED"]
        assert len(wechat.calls(JSCODE2SESSION)) == calls  # refused before asking WeChat
        # Its neighbours behind the same address are not affected.
        assert codes(await login(nat, wechat.new_login().code, device())) == []


async def test_one_account_opens_a_bounded_number_of_sessions(
    app: Any,
    wechat: WeChatStandIn,
    settings: Settings,
    clients: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "login_openid_limit", 3)
    openid = "o" + secrets.token_hex(10)
    async with clients(app, NAT) as nat:
        answers = [await login(nat, wechat.new_login(openid=openid).code, device()) for _ in range(4)]
        assert [codes(a) for a in answers] == [[], [], [], ["RATE_LIMITED"]]
        assert codes(await login(nat, wechat.new_login().code, device())) == []  # another shopper


async def test_a_malformed_device_id_is_ignored_not_refused(
    app: Any, wechat: WeChatStandIn, clients: Callable[..., Any]
) -> None:
    async with clients(app, NAT) as nat:
        for header in ("", "short", "x" * 65, "spaces are not allowed", "semi;colons;x"):
            assert codes(await login(nat, wechat.new_login().code, {"X-Device-Id": header})) == []
