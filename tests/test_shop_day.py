"""A shop's day, end to end through the public API: a shopper logs in with WeChat, fills the cart, checks
out, pays (WeChat Pay notifies the server), the warehouse ships, the shopper confirms receipt, asks for a
refund, customer service approves it, WeChat Pay refunds and notifies. Every step is the real code path:
GraphQL, the notification endpoints, wechatpy against the WeChat stand-ins."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from models import Order, OrderStatus, Payment, PointsEntry, Refund, StaffRole
from services.access.staff import create_staff
from tests.graphql_client import gql
from tests.wechat_pay_standin import WeChatPayStandIn
from tests.wechat_standin import WeChatStandIn

ERRORS = "errors { field message code }"


async def ok(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None) -> Any:
    """The single root field's payload, which must carry no errors."""
    (payload,) = (await gql(client, query, variables, token=token))["data"].values()
    assert not payload.get("errors"), payload
    return payload


@pytest.fixture
def same_app(wechat: WeChatStandIn, wechat_pay: WeChatPayStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    # One mini-program: WeChat Pay must know the appid the shopper logged in with.
    monkeypatch.setattr(wechat_pay, "appid", wechat.appid)
    from infra.settings import get_settings

    monkeypatch.setattr(get_settings(), "wechat_appid", wechat.appid)


async def test_a_shoppers_day(
    seeded: None,
    client: httpx.AsyncClient,
    wechat: WeChatStandIn,
    wechat_pay: WeChatPayStandIn,
    same_app: None,
) -> None:
    # Morning: a new shopper opens the mini-program and logs in.
    login = await ok(
        client,
        f"mutation($c: String!) {{ loginWithWechat(code: $c) {{ accessToken member {{ id }} {ERRORS} }} }}",
        {"c": wechat.new_login().code},
        None,
    )
    token = login["accessToken"]
    address = await ok(
        client,
        f"""mutation($i: AddressInput!) {{ addressCreate(input: $i) {{ address {{ id }} {ERRORS} }} }}""",
        {
            "i": {
                "name": "林晓",
                "phone": "13800138000",
                "province": "广东省",
                "city": "深圳市",
                "district": "南山区",
                "detail": "科技园南路 88 号",
                "isDefault": True,
            }
        },
        token,
    )
    address_id = address["address"]["id"]

    # She finds a dress and puts two in the cart.
    listing = await gql(
        client,
        '{ products(first: 1, filter: {keyword: "连衣裙", inStock: true}) '
        "{ edges { node { id skus { id stock price } } } } }",
        token=token,
    )
    node = listing["data"]["products"]["edges"][0]["node"]
    sku_gid = next(s["id"] for s in node["skus"] if s["stock"] >= 2)
    await ok(
        client,
        f"mutation($s: ID!) {{ cartAddItem(skuId: $s, quantity: 2) {{ {ERRORS} }} }}",
        {"s": sku_gid},
        token,
    )
    checkout = {"addressId": address_id, "fromCart": True, "delivery": "EXPRESS", "note": "工作日送"}
    preview = await ok(
        client,
        f"query($i: CheckoutInput!) {{ checkoutPreview(input: $i) {{ preview {{ payable itemsTotal shippingFee }} {ERRORS} }} }}",
        {"i": checkout},
        token,
    )

    # She places the order; a retry with the same key gives the same order.
    place = f"""mutation($i: CheckoutInput!, $k: String!) {{ placeOrder(input: $i, idempotencyKey: $k) {{
        order {{ id number status payable }} payParams {{ package paySign }} {ERRORS} }} }}"""
    key = secrets.token_hex(8)
    placed = await ok(client, place, {"i": checkout, "k": key}, token)
    order_gid = placed["order"]["id"]
    assert placed["order"]["status"] == "PENDING_PAYMENT"
    assert placed["order"]["payable"] == preview["preview"]["payable"]
    assert placed["payParams"]["package"].startswith("prepay_id=")
    order = await Order.get(number=placed["order"]["number"])
    cart = await gql(client, "{ cart { lines { quantity } } }", token=token)
    assert cart["data"]["cart"]["lines"] == [], "bought lines leave the cart"

    # WeChat Pay tells the server she paid.
    payment = await Payment.get(order_id=order.id)
    answer = await client.post(
        "/payments/wechat/notify", content=wechat_pay.payment_notification(payment.out_trade_no)
    )
    assert b"SUCCESS" in answer.content
    await order.refresh_from_db()
    assert order.status is OrderStatus.PAID and order.paid_amount == order.payable

    # The warehouse ships it; she gets a subscribe message... and confirms receipt.
    _, warehouse = await create_staff(f"warehouse-{secrets.token_hex(3)}", StaffRole.WAREHOUSE)
    await ok(
        client,
        f'mutation($id: ID!) {{ orderShip(id: $id, carrier: "SF", trackingNumber: "SF1234567890") {{ order {{ status }} {ERRORS} }} }}',
        {"id": order_gid},
        warehouse,
    )
    await ok(
        client,
        f"mutation($id: ID!) {{ orderConfirmReceipt(id: $id) {{ order {{ status }} {ERRORS} }} }}",
        {"id": order_gid},
        token,
    )

    # One dress does not fit: a refund for one of the two, approved by customer service.
    detail = (
        await gql(
            client,
            "query($id: ID!) { order(id: $id) { lines { id quantity } timeline { toStatus } } }",
            {"id": order_gid},
            token=token,
        )
    )["data"]["order"]
    assert [e["toStatus"] for e in detail["timeline"]][:4] == [
        "PENDING_PAYMENT",
        "PAID",
        "SHIPPED",
        "RECEIVED",
    ]
    request = await ok(
        client,
        f"""mutation($i: AfterSaleRequestInput!) {{ afterSaleRequest(input: $i) {{ afterSale {{ id status }} {ERRORS} }} }}""",
        {
            "i": {
                "orderId": order_gid,
                "kind": "REFUND_ONLY",
                "reason": "尺码不合适",
                "lines": [{"lineId": detail["lines"][0]["id"], "quantity": 1}],
            }
        },
        token,
    )
    _, service = await create_staff(f"service-{secrets.token_hex(3)}", StaffRole.CUSTOMER_SERVICE)
    approved = await ok(
        client,
        f"mutation($id: ID!) {{ afterSaleApprove(id: $id) {{ afterSale {{ status }} {ERRORS} }} }}",
        {"id": request["afterSale"]["id"]},
        service,
    )
    assert approved["afterSale"]["status"] == "REFUNDING"

    # WeChat Pay refunds and says so, twice (it retries): one refund, once.
    refund = await Refund.get(order_id=order.id)
    for _ in range(2):
        answer = await client.post(
            "/payments/wechat/refund-notify", content=wechat_pay.refund_notification(refund.out_refund_no)
        )
        assert b"SUCCESS" in answer.content
    await order.refresh_from_db()
    await refund.refresh_from_db()
    assert refund.status.value == "SUCCEEDED"
    assert order.refunded_amount == refund.amount > 0
    after = (
        await gql(
            client, "query($id: ID!) { order(id: $id) { refundedAmount } }", {"id": order_gid}, token=token
        )
    )["data"]["order"]
    assert after["refundedAmount"] == refund.amount
    purchase = await PointsEntry.filter(member_id=order.member_id, reason="PURCHASE").count()
    assert purchase == 1, "paying earned purchase points exactly once"
    taken_back = await PointsEntry.filter(member_id=order.member_id, reason="REFUND").count()
    assert taken_back >= 1, "the refund took back its share of the purchase points"
