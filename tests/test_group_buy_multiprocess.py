"""Group buys across two real server processes on the shared PostgreSQL and Redis, paying through the WeChat Pay
stand-in: 50 members racing for the last seat of a group of 5 through both processes get exactly one seat; an
expired group refunds every paid member exactly once, also when both processes are killed (SIGKILL) in the
middle of the refunds and a new one takes over."""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from infra.clock import now
from infra.settings import Settings
from models import (
    GroupBuy,
    GroupBuySeat,
    GroupBuyStatus,
    Member,
    Order,
    OrderStatus,
    Payment,
    Refund,
    Sku,
)
from schema.node import decode_id, encode_id
from services.marketing.group_buy import rules
from services.marketing.group_buy.groups import refund_key
from services.members.tokens import issue_tokens
from services.payments.refunds import refund_number
from tests.server_process import ServerProcess, _signal_group, child_env, running_server
from tests.test_cart import new_address, new_sku
from tests.test_checkout import PLACE
from tests.wechat_pay_standin import WeChatPayStandIn

pytestmark = pytest.mark.realservices

POLL = 0.05


@pytest.fixture(scope="module")
def env(
    settings: Settings, wechat_pay_server: WeChatPayStandIn, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    assert settings.database_url and settings.redis_url, "the real pass sets DATABASE_URL and REDIS_URL"
    return child_env(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "DATA_DIR": str(tmp_path_factory.mktemp("groupbuy")),
            "SECRET_KEY": settings.resolved_secret_key,
            "DB_POOL_MAX": "4",
            "SWEEP_INTERVAL_SECONDS": "0.3",
            "WECHAT_APPID": wechat_pay_server.appid,
            "WECHAT_MCH_ID": wechat_pay_server.mch_id,
            "WECHAT_PAY_API_KEY": wechat_pay_server.api_key,
            "WECHAT_PAY_API_BASE_URL": wechat_pay_server.base_url,
        }
    )


@pytest.fixture(scope="module")
async def servers(
    env: dict[str, str], seeded: None, wechat_pay_server: WeChatPayStandIn
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    wechat_pay_server.reset()
    async with running_server(env) as a, running_server(env) as b:
        yield a, b
    wechat_pay_server.reset()


async def shopper() -> tuple[Member, str, int]:
    member = await Member.create(
        openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper(), nickname="拼友"
    )
    return member, (await issue_tokens(member)).access_token, await new_address(member)


async def new_rule(sku: Sku, size: int) -> int:
    draft = rules.RuleDraft(
        sku_id=sku.id,
        title="多进程拼团",
        group_price=3000,
        group_size=size,
        hours_to_fill=24,
        per_member_limit=1,
        starts_at=now() - timedelta(minutes=1),
        ends_at=now() + timedelta(days=1),
    )
    return (await rules.create_rule(draft)).id


async def place(server: ServerProcess, token: str, address: int, sku: Sku, campaign: str) -> dict[str, Any]:
    item = {
        "skuId": encode_id("Sku", sku.id),
        "quantity": 1,
        "campaign": {"kind": "GROUP_BUY", "id": campaign},
    }
    variables = {
        "input": {"addressId": encode_id("Address", address), "items": [item]},
        "key": secrets.token_hex(6),
    }
    response = await server.post(PLACE, variables, token)
    return dict(response.json()["data"]["placeOrder"])


async def pay(server: ServerProcess, standin: WeChatPayStandIn, order_gid: str) -> Order:
    """The shopper pays in WeChat: WeChat Pay posts its signed notification to the server."""
    order_id = decode_id(order_gid, "Order")
    payment = await Payment.get(order_id=order_id)
    answer = await server.http.post(
        f"http://127.0.0.1:{server.port}/payments/wechat/notify",
        content=standin.payment_notification(payment.out_trade_no),
    )
    assert b"SUCCESS" in answer.content, answer.text
    return await Order.get(id=order_id)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"not within {seconds}s: {what}"
        await asyncio.sleep(POLL)


async def test_fifty_members_race_for_the_last_seat_through_two_processes_and_one_wins(
    servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = servers
    sku = await new_sku(price=5000, stock=100)
    rule_id = await new_rule(sku, size=5)
    # Four of five seats are paid for already.
    group = await GroupBuy.create(
        rule_id=rule_id,
        leader_member_id=0,
        size=5,
        status=GroupBuyStatus.OPEN,
        seats_taken=4,
        paid_count=4,
        opened_at=now(),
        expires_at=now() + timedelta(hours=1),
    )
    racers = [await shopper() for _ in range(50)]
    gid = encode_id("GroupBuy", group.id)
    answers = await asyncio.gather(
        *(place(a if i % 2 else b, token, address, sku, gid) for i, (_, token, address) in enumerate(racers))
    )
    # The winner's order is placed (its payment may still have to be asked for again); the others are refused.
    winners = [x for x in answers if x["order"] is not None]
    assert len(winners) == 1, ([x["errors"] for x in answers][:3], a.log()[-2000:], b.log()[-2000:])
    losers = [e["code"] for x in answers if x["order"] is None for e in x["errors"]]
    assert losers == ["GROUP_FULL"] * 49
    group = await GroupBuy.get(id=group.id)
    assert group.seats_taken == 5
    assert await GroupBuySeat.filter(group_id=group.id).count() == 1
    assert await Order.filter(member_id__in=[m.id for m, _, _ in racers]).count() == 1
    assert (await Sku.get(id=sku.id)).stock == 99


async def test_an_expired_group_refunds_each_member_once_across_a_kill_mid_sweep(
    servers: tuple[ServerProcess, ServerProcess], env: dict[str, str], wechat_pay_server: WeChatPayStandIn
) -> None:
    a, b = servers
    standin = wechat_pay_server
    sku = await new_sku(price=5000, stock=100)
    rule_id = await new_rule(sku, size=5)
    _, token, address = await shopper()
    placed = await place(a, token, address, sku, encode_id("GroupBuyRule", rule_id))
    assert placed["errors"] == [], (placed, a.log()[-3000:])
    leader = await pay(a, standin, placed["order"]["id"])
    group_id = (await GroupBuySeat.get(order_id=leader.id)).group_id  # type: ignore[attr-defined]
    orders = [leader]
    for i in range(3):
        _, token, address = await shopper()
        server = (a, b)[i % 2]
        joined = await place(server, token, address, sku, encode_id("GroupBuy", group_id))
        assert joined["errors"] == [], joined
        orders.append(await pay(server, standin, joined["order"]["id"]))
    assert (await GroupBuy.get(id=group_id)).paid_count == 4

    # WeChat Pay answers refunds slowly, the group expires, and both processes die in the middle of refunding.
    # (The processes sweep the whole shared database: other tests' refunds may be asked about too.)
    key = refund_key(group_id)
    wanted = {refund_number(order.id, key) for order in orders}
    standin.slow_down("refund", 1.5)
    await GroupBuy.filter(id=group_id).update(expires_at=now() - timedelta(seconds=1))
    await eventually(lambda: _refund_calls(standin, wanted), 20, "the first refund call")
    for server in (a, b):
        _signal_group(server.process, signal.SIGKILL)
        await server.process.wait()
    asked_before_kill = {c["out_refund_no"] for c in standin.calls("refund")} & wanted
    assert 1 <= len(asked_before_kill) < 4, "killed in the middle of the refunds"
    standin.slow_down("refund", 0.0)

    async with running_server(env) as c:

        async def all_accepted() -> bool:
            rows = await Refund.filter(order_id__in=[o.id for o in orders])
            return {r.out_refund_no for r in rows} == wanted and all(r.refund_id for r in rows)

        await eventually(all_accepted, 30, "every member's refund accepted by WeChat Pay")
        # Exactly once: one refund per order here, one per trade at WeChat Pay, each the whole amount paid.
        assert await Refund.filter(order_id__in=[o.id for o in orders]).count() == 4
        for order in orders:
            payment = await Payment.get(order_id=order.id)
            [record] = [r for r in _standin_refunds(standin) if r.out_trade_no == payment.out_trade_no]
            assert record.refund_fee == order.paid_amount == standin.trade(payment.out_trade_no).total_fee

        # WeChat's refund notifications settle the orders; the group is settled.
        for number in wanted:
            answer = await c.http.post(
                f"http://127.0.0.1:{c.port}/payments/wechat/refund-notify",
                content=standin.refund_notification(number),
            )
            assert b"SUCCESS" in answer.content, answer.text

        async def settled() -> bool:
            group = await GroupBuy.get(id=group_id)
            return group.settled_at is not None

        await eventually(settled, 20, "the failed group settled")
        statuses = {o.status for o in await Order.filter(id__in=[o.id for o in orders])}
        assert statuses == {OrderStatus.CANCELLED}
        assert (await GroupBuy.get(id=group_id)).status == GroupBuyStatus.FAILED


async def _refund_calls(standin: WeChatPayStandIn, numbers: set[str]) -> bool:
    return any(c["out_refund_no"] in numbers for c in standin.calls("refund"))


def _standin_refunds(standin: WeChatPayStandIn) -> list[Any]:
    with standin._lock:
        return list(standin._state.refunds.values())
