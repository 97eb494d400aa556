"""Coupon limits under a real rush: two server processes on the shared PostgreSQL and Redis, 500 claims at once
for a coupon with 100 left. Exactly 100 succeed and no member holds more than the per-member limit. Likewise one coupon spent by ten
racing orders pays for one order, and points-mall stock and per-member limits hold.

The same race in one process runs on both backends in tests/test_coupons.py; this one proves the guard is the
database, not anything a process keeps to itself.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from models import (
    CouponSource,
    Member,
    Order,
    PointsMallExchange,
    PointsMallItem,
    PointsMallItemKind,
    Sku,
)
from schema.node import encode_id
from services.marketing import points_mall
from services.marketing.coupons import wallet
from services.members.tokens import issue_tokens
from tests.server_process import ServerProcess, child_env, running_server
from tests.test_cart import new_address, new_member, new_sku
from tests.test_coupon_checkout import PLACE
from tests.test_coupons import CLAIM, assert_claims_consistent, new_coupon
from tests.test_points_mall import EXCHANGE

pytestmark = pytest.mark.realservices

MEASURED: dict[str, str] = {}


@pytest.fixture
async def fresh_http() -> AsyncIterator[httpx.AsyncClient]:
    """A client of this test alone: the servers' shared client keeps connections from earlier requests, idle
    longer than uvicorn's keep-alive while the test sets up, and the server may close one just as the rush
    reuses it (the mutation would fail unanswered, and a mutation cannot simply be sent again)."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        yield http


async def send(
    http: httpx.AsyncClient, server: ServerProcess, query: str, variables: dict[str, Any], token: str
) -> dict[str, Any]:
    response = await http.post(
        server.url,
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, (response.status_code, body)
    data: dict[str, Any] = body["data"]
    return data


@pytest.fixture(scope="module")
async def servers(
    settings: Settings, database: None, redis: object, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    assert settings.database_url and settings.redis_url, "the real pass sets DATABASE_URL and REDIS_URL"
    env = child_env(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "DATA_DIR": str(tmp_path_factory.mktemp("coupon-races")),
            "SECRET_KEY": settings.resolved_secret_key,
            "DB_POOL_MAX": "4",
        }
    )
    async with running_server(env) as a, running_server(env) as b:
        yield a, b
    if MEASURED:
        print("\n" + "\n".join(f"  {name}: {value}" for name, value in MEASURED.items()))


async def test_500_claims_across_two_processes_give_exactly_100(
    servers: tuple[ServerProcess, ServerProcess], fresh_http: httpx.AsyncClient
) -> None:
    a, b = servers
    coupon = await new_coupon(name="双进程抢券", total_quantity=100, per_member_limit=2)
    members = [
        await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper())
        for _ in range(125)
    ]
    tokens = [(await issue_tokens(m)).access_token for m in members]
    gid = encode_id("Coupon", coupon.id)

    async def claim(n: int) -> str:
        server = (a, b)[n % 2]
        data = await send(fresh_http, server, CLAIM, {"id": gid}, tokens[n % len(tokens)])
        payload: dict[str, Any] = data["couponClaim"]
        return payload["errors"][0]["code"] if payload["errors"] else "OK"

    started = time.monotonic()
    outcomes = await asyncio.gather(*(claim(n) for n in range(500)))
    MEASURED["500 claims, 2 processes"] = f"{time.monotonic() - started:.2f} s"
    assert outcomes.count("OK") == 100
    assert set(outcomes) <= {"OK", "SOLD_OUT", "LIMIT_EXCEEDED"}
    await assert_claims_consistent(coupon.id, expected=100, per_member=2)


async def test_one_coupon_spent_by_racing_orders_on_two_processes_pays_for_one(
    servers: tuple[ServerProcess, ServerProcess], fresh_http: httpx.AsyncClient
) -> None:
    a, b = servers
    member, token = await new_member()
    address = encode_id("Address", await new_address(member))
    sku = await new_sku(price=5000, stock=20)
    held = await wallet.grant(member.id, (await new_coupon(amount_off=1000)).id, CouponSource.ISSUED)
    order_input = {
        "addressId": address,
        "items": [{"skuId": encode_id("Sku", sku.id), "quantity": 1}],
        "couponIds": [encode_id("MemberCoupon", held.id)],
    }

    async def place(n: int) -> str:
        data = await send(fresh_http, (a, b)[n % 2], PLACE, {"input": order_input, "key": f"race-{n}"}, token)
        payload: dict[str, Any] = data["placeOrder"]
        # An order that was written may still lack payParams (no WeChat Pay here): it counts as placed.
        return "PLACED" if payload["order"] else payload["errors"][0]["code"]

    outcomes = await asyncio.gather(*(place(n) for n in range(10)))
    assert outcomes.count("PLACED") == 1 and set(outcomes) == {"PLACED", "COUPON_NOT_APPLICABLE"}
    assert await Order.filter(member_id=member.id).count() == 1
    assert (await Sku.get(id=sku.id)).stock == 19


async def test_points_mall_exchanges_on_two_processes_never_oversell(
    servers: tuple[ServerProcess, ServerProcess], fresh_http: httpx.AsyncClient
) -> None:
    a, b = servers
    coupon = await new_coupon(name="双进程积分兑换", public=False, total_quantity=1000)
    item = await points_mall.create_item(
        points_mall.ItemDraft("抢兑", PointsMallItemKind.COUPON, points=100, stock=20, coupon_id=coupon.id)
    )
    members = [
        await Member.create(
            openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper(), points=300
        )
        for _ in range(40)
    ]
    tokens = [(await issue_tokens(m)).access_token for m in members]
    gid = encode_id("PointsMallItem", item.id)

    async def exchange(n: int) -> str:
        data = await send(fresh_http, (a, b)[n % 2], EXCHANGE, {"id": gid}, tokens[n % len(tokens)])
        payload: dict[str, Any] = data["pointsMallExchange"]
        return payload["errors"][0]["code"] if payload["errors"] else "OK"

    outcomes = await asyncio.gather(*(exchange(n) for n in range(80)))
    assert outcomes.count("OK") == 20
    assert (await PointsMallItem.get(id=item.id)).stock == 0
    rows = await PointsMallExchange.filter(item_id=item.id).values_list("member_id", flat=True)
    assert len(rows) == 20 and len(set(rows)) == 20
    for member in members:
        assert (await Member.get(id=member.id)).points == 300 - 100 * rows.count(member.id)
