"""Checkout meets WeChat Pay and faults: JSAPI parameters that verify, and a killed server leaves no half order.

The pay parameters are checked against the local WeChat Pay stand-in (tests/wechat_pay_standin.py), with the
MD5 `paySign` recomputed here as WeChat's JSAPI documentation specifies. The fault test SIGKILLs a real
`main.py serve` while placeOrder requests are in flight and then checks every invariant of the money path in
the database: each order whole (lines, points ledger), stock + sold == initial, product stock == its SKUs'.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
from typing import Any

import httpx
import pytest

from models import (
    ActorKind,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    PointsEntry,
    Product,
    Sku,
)
from schema.node import encode_id
from services.orders.states import transition
from tests.conftest import BACKEND
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku, sku_id
from tests.wechat_pay_standin import UNIFIEDORDER, WeChatPayStandIn

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
PAY_PARAMS = "payParams { appId timeStamp nonceStr package signType paySign }"
PLACE = f"""mutation($input: CheckoutInput!, $key: String!) {{ placeOrder(input: $input, idempotencyKey: $key) {{
  order {{ id number status payable }} {PAY_PARAMS} {ERRORS} }} }}"""
ORDER_PAY = (
    f"""mutation($id: ID!) {{ orderPay(orderId: $id) {{ order {{ id status }} {PAY_PARAMS} {ERRORS} }} }}"""
)
ORDER_CANCEL = f"""mutation($id: ID!) {{ orderCancel(id: $id) {{ order {{ id status }} {ERRORS} }} }}"""


def jsapi_sign(params: dict[str, str], key: str) -> str:
    """WeChat's JSAPI paySign (signType MD5): appId, nonceStr, package, signType, timeStamp sorted by name,
    `k=v` joined by `&`, then `&key=<API key>`, MD5, upper-case hex. Written out here, not taken from wechatpy."""
    fields = {k: params[k] for k in ("appId", "timeStamp", "nonceStr", "package", "signType")}
    text = "&".join(f"{k}={fields[k]}" for k in sorted(fields)) + f"&key={key}"
    return hashlib.md5(text.encode()).hexdigest().upper()


def _gid(kind: str, pk: int) -> str:
    return encode_id(kind, pk)


def _input(address_id: int, *lines: tuple[Sku, int], points: int = 0) -> dict[str, Any]:
    return {
        "addressId": _gid("Address", address_id),
        "items": [{"skuId": sku_id(sku), "quantity": quantity} for sku, quantity in lines],
        "pointsToUse": points,
    }


def _assert_pay_params(params: dict[str, str], standin: WeChatPayStandIn, prepay_id: str) -> None:
    assert params["appId"] == standin.appid
    assert params["package"] == f"prepay_id={prepay_id}"
    assert params["signType"] == "MD5"
    assert params["timeStamp"].isdigit() and params["nonceStr"]
    assert params["paySign"] == jsapi_sign(params, standin.api_key)
    assert params["paySign"] != jsapi_sign(params, standin.api_key + "x"), "the key is part of the sign"


async def test_place_order_returns_pay_params_that_verify_and_order_pay_reuses_the_prepay(
    client: Any, wechat_pay: WeChatPayStandIn
) -> None:
    member, token = await new_member()
    sku = await new_sku(price=1990, stock=5)
    address_id = await new_address(member)
    placed = (await gql(client, PLACE, {"input": _input(address_id, (sku, 2)), "key": "pay-1"}, token))[
        "data"
    ]["placeOrder"]
    assert placed["errors"] == [] and placed["order"]["status"] == "PENDING_PAYMENT"
    order = await Order.get(number=placed["order"]["number"])

    calls = wechat_pay.calls(UNIFIEDORDER)
    assert len(calls) == 1
    call = calls[0]
    trade = wechat_pay.trade(call["out_trade_no"])
    assert int(call["total_fee"]) == order.payable == placed["order"]["payable"]
    assert call["openid"] == member.openid and call["trade_type"] == "JSAPI"
    assert call["attach"] == order.number
    _assert_pay_params(placed["payParams"], wechat_pay, trade.prepay_id)

    # A second tap on "pay": the open prepay is handed out again, WeChat is not asked for a second one.
    again = (await gql(client, ORDER_PAY, {"id": placed["order"]["id"]}, token))["data"]["orderPay"]
    assert again["errors"] == [] and again["order"]["status"] == "PENDING_PAYMENT"
    _assert_pay_params(again["payParams"], wechat_pay, trade.prepay_id)
    assert len(wechat_pay.calls(UNIFIEDORDER)) == 1

    # Another member cannot ask to pay it.
    _, stranger = await new_member()
    foreign = (await gql(client, ORDER_PAY, {"id": placed["order"]["id"]}, stranger))["data"]["orderPay"]
    assert foreign["payParams"] is None and [e["code"] for e in foreign["errors"]] == ["NOT_FOUND"]


async def test_order_pay_refuses_paid_and_cancelled_orders(client: Any, wechat_pay: WeChatPayStandIn) -> None:
    member, token = await new_member()
    sku = await new_sku(price=990, stock=5)
    address_id = await new_address(member)
    ids = []
    for key in ("to-pay", "to-cancel"):
        body = await gql(client, PLACE, {"input": _input(address_id, (sku, 1)), "key": key}, token)
        ids.append(body["data"]["placeOrder"]["order"]["id"])
    paid_id, cancelled_id = ids

    paid = await Order.filter(member_id=member.id).order_by("id").first()
    assert paid is not None
    await transition(
        paid.id, OrderStatus.PAID, actor=ActorKind.SYSTEM, reason="test", paid_amount=paid.payable
    )
    cancel = (await gql(client, ORDER_CANCEL, {"id": cancelled_id}, token))["data"]["orderCancel"]
    assert cancel["errors"] == [] and cancel["order"]["status"] == "CANCELLED"
    calls_before = len(wechat_pay.calls(UNIFIEDORDER))

    for order_id, code in ((paid_id, "ORDER_ALREADY_PAID"), (cancelled_id, "ORDER_NOT_PAYABLE")):
        refused = (await gql(client, ORDER_PAY, {"id": order_id}, token))["data"]["orderPay"]
        assert refused["payParams"] is None
        assert [e["code"] for e in refused["errors"]] == [code]
    assert len(wechat_pay.calls(UNIFIEDORDER)) == calls_before, "nothing unpayable reaches WeChat"
    assert (await Sku.get(id=sku.id)).stock == 4, "the cancelled order's unit is back on sale"


# --- A server killed in the middle of checkout --------------------------------------------------------------

KILL_MEMBERS = 40
# The server is killed once this many of the orders have committed: the rest are somewhere in checkout.
KILL_AT_ORDERS = 5
MEMBER_POINTS = 1000
# Enough for every member (1 A + 2 B each): after the kill, retrying every request completes every order.
STOCK_A, STOCK_B = 50, 100


async def _token(member: Member) -> str:
    from services.members.tokens import issue_tokens

    return (await issue_tokens(member)).access_token


async def _two_sku_product() -> tuple[Sku, Sku]:
    first = await new_sku(price=3000, stock=STOCK_A)
    product_id: int = first.product_id  # type: ignore[attr-defined]
    second = await Sku.create(product_id=product_id, spec_key=f"b-{first.id}", price=1500, stock=STOCK_B)
    await Product.filter(id=product_id).update(total_stock=STOCK_A + STOCK_B)
    return first, second


def _child_env(settings: Any, standin: WeChatPayStandIn) -> dict[str, str]:
    from tests.server_process import child_env

    return child_env(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "SECRET_KEY": settings.resolved_secret_key,
            "DATA_DIR": str(settings.data_dir),
            "WECHAT_APPID": standin.appid,
            "WECHAT_MCH_ID": standin.mch_id,
            "WECHAT_PAY_API_KEY": standin.api_key,
            "WECHAT_PAY_API_BASE_URL": standin.base_url,
        }
    )


async def _assert_consistent(members: list[Member], skus: tuple[Sku, Sku]) -> list[Order]:
    """Every invariant of the money path for these members and SKUs; returns their orders."""
    initial = {skus[0].id: STOCK_A, skus[1].id: STOCK_B}
    orders = await Order.filter(member_id__in=[m.id for m in members]).order_by("id")
    sold = dict.fromkeys(initial, 0)
    for order in orders:
        lines = await OrderLine.filter(order_id=order.id).order_by("sku_id")
        assert [(line.sku_id, line.quantity) for line in lines] == [(skus[0].id, 1), (skus[1].id, 2)], (
            f"order {order.number} is not whole"
        )
        assert sum(line.line_total for line in lines) == order.items_total
        assert (
            order.payable == order.items_total - order.discount + order.shipping_fee - order.points_discount
        )
        if order.points_used > 0:
            entry = await PointsEntry.get_or_none(
                member_id=order.member_id,  # type: ignore[attr-defined]
                idempotency_key=f"order:{order.number}",
            )
            assert entry is not None and entry.delta == -order.points_used, f"order {order.number}: no ledger"
        if order.status != OrderStatus.CANCELLED:
            for line in lines:
                sold[line.sku_id] += line.quantity
    for sku_pk, stock in initial.items():
        now = (await Sku.get(id=sku_pk)).stock
        assert now >= 0
        assert now + sold[sku_pk] == stock, (sku_pk, now, sold[sku_pk], stock)
    product = await Product.get(id=skus[0].product_id)  # type: ignore[attr-defined]
    assert product.total_stock == sum([(await Sku.get(id=pk)).stock for pk in initial])
    # Points: what each member holds plus what their live orders froze is what they started with.
    for member in members:
        held = (await Member.get(id=member.id)).points
        frozen = sum(
            o.points_used
            for o in orders
            if o.member_id == member.id and o.status != OrderStatus.CANCELLED  # type: ignore[attr-defined]
        )
        assert held + frozen == MEMBER_POINTS, (member.id, held, frozen)
        entries = await PointsEntry.filter(member_id=member.id)
        assert held == MEMBER_POINTS + sum(e.delta for e in entries), "the ledger explains the balance"
    assert not await Order.filter(member_id__in=[m.id for m in members], lines=None).exists()
    return list(orders)


@pytest.mark.realservices
@pytest.mark.skipif(BACKEND != "real", reason="needs PostgreSQL + Redis")
async def test_a_server_killed_in_the_middle_of_checkout_leaves_no_half_order(
    settings: Any, wechat_pay: WeChatPayStandIn
) -> None:
    from tests.server_process import _signal_group, running_server

    skus = await _two_sku_product()
    members = [(await new_member(points=MEMBER_POINTS))[0] for _ in range(KILL_MEMBERS)]
    tokens = [await _token(m) for m in members]
    addresses = [await new_address(m) for m in members]
    env = _child_env(settings, wechat_pay)

    def variables(i: int) -> dict[str, Any]:
        # Half of them pay part in points, so a points ledger entry belongs to the order's transaction.
        lines = _input(addresses[i], (skus[0], 1), (skus[1], 2), points=500 if i % 2 else 0)
        return {"input": lines, "key": f"kill-{i}"}

    done: list[dict[str, Any]] = []
    cut: list[int] = []
    member_ids = [m.id for m in members]

    async with running_server(env) as server:
        # One connection per member: a shared keep-alive pool would queue the requests client-side.
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(httpx.AsyncClient(timeout=20.0)) for _ in range(KILL_MEMBERS)
            ]

            async def attempt(i: int) -> None:
                try:
                    response = await clients[i].post(
                        server.url,
                        json={"query": PLACE, "variables": variables(i)},
                        headers={"Authorization": f"Bearer {tokens[i]}"},
                    )
                    done.append(response.json()["data"]["placeOrder"])
                except httpx.HTTPError:
                    cut.append(i)

            tasks = [asyncio.create_task(attempt(i)) for i in range(KILL_MEMBERS)]
            # Watch the database from here and pull the plug mid-stream.
            async with asyncio.timeout(15.0):
                while True:
                    committed = await Order.filter(member_id__in=member_ids).count()
                    if committed >= KILL_AT_ORDERS:
                        break
                    await asyncio.sleep(0.002)
            _signal_group(server.process, signal.SIGKILL)
            await server.process.wait()
            await asyncio.gather(*tasks)

    assert server.process.returncode == -signal.SIGKILL
    assert len(done) + len(cut) == KILL_MEMBERS
    assert cut, "the kill must land while requests are in flight, or this proves nothing"
    orders = await _assert_consistent(members, skus)
    assert KILL_AT_ORDERS <= len(orders) < KILL_MEMBERS, "some checkouts were cut before their commit"
    answered = {r["order"]["number"] for r in done if r["order"] is not None}
    assert answered <= {o.number for o in orders}

    # A fresh server carries on. The shoppers whose request was cut retry with the same key: a committed
    # order comes back as it is, a rolled-back one is placed now; then one order is paid for, one cancelled.
    before = {o.member_id: o.number for o in orders}  # type: ignore[attr-defined]
    async with running_server(env) as fresh:
        for i in cut:
            retried = (await fresh.gql(PLACE, variables(i), tokens[i]))["placeOrder"]
            assert retried["order"] is not None, retried
            if members[i].id in before:
                assert retried["order"]["number"] == before[members[i].id], "the same key, the same order"
        orders = await _assert_consistent(members, skus)
        assert len(orders) == KILL_MEMBERS and len({o.member_id for o in orders}) == KILL_MEMBERS  # type: ignore[attr-defined]

        owner = {m.id: i for i, m in enumerate(members)}
        to_pay, to_cancel = orders[0], orders[-1]
        i = owner[to_pay.member_id]  # type: ignore[attr-defined]
        pay = (await fresh.gql(ORDER_PAY, {"id": _gid("Order", to_pay.id)}, tokens[i]))["orderPay"]
        assert pay["errors"] == [], pay
        assert pay["payParams"]["paySign"] == jsapi_sign(pay["payParams"], wechat_pay.api_key)
        j = owner[to_cancel.member_id]  # type: ignore[attr-defined]
        cancelled = (await fresh.gql(ORDER_CANCEL, {"id": _gid("Order", to_cancel.id)}, tokens[j]))[
            "orderCancel"
        ]
        assert cancelled["errors"] == [] and cancelled["order"]["status"] == "CANCELLED"
    await _assert_consistent(members, skus)
