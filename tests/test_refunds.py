"""Staff refunds (`refundOrder`), what a refund takes back (purchase points, growth), and the sweeper asking
WeChat Pay again for a refund it never accepted. wechatpy runs for real against the stand-in."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest

from infra.clock import now
from models import (
    ActorKind,
    AuditLog,
    Coupon,
    CouponSource,
    HeldCouponStatus,
    Member,
    MemberCoupon,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PointsEntry,
    PointsReason,
    PromotionKind,
    PromotionStatus,
    Refund,
    RefundStatus,
    Shop,
    StaffRole,
)
from schema.node import encode_id
from services.access.staff import create_staff
from services.loyalty.points import change_points
from services.marketing.coupons import checkout as coupon_checkout
from services.marketing.coupons import wallet
from services.marketing.promotions import admin as promotion_admin
from services.orders import checkout
from services.orders import states as order_states
from services.orders.checkout import CheckoutRequest, ItemRequest
from services.orders.sweeper import sweep_once
from services.payments.notifications import handle_payment_notification, handle_refund_notification
from services.payments.refunds import line_refund, start_refund
from services.payments.wechat_pay import prepay
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku
from tests.test_coupons import new_coupon
from tests.test_payments import make_order, ok, paid_order
from tests.wechat_pay_standin import WeChatPayStandIn

REFUND_ORDER = """
mutation($orderId: ID!, $input: RefundOrderInput!, $key: String!) {
  refundOrder(orderId: $orderId, input: $input, idempotencyKey: $key) {
    refund { id outRefundNo amount status reason lines { lineId quantity } }
    errors { field message code }
  }
}
"""

ORDER_REFUNDS = "query($id: ID!) { orderRefunds(orderId: $id) { outRefundNo amount status } }"


async def staff_token(role: StaffRole) -> str:
    _, token = await create_staff(f"refunds-{role.value.lower()}-{secrets.token_hex(3)}", role)
    return token


async def refund_order(
    client: httpx.AsyncClient, token: str, order: Order, key: str, **input: Any
) -> dict[str, Any]:
    variables = {"orderId": encode_id("Order", order.id), "input": {"reason": "坏了", **input}, "key": key}
    return (await gql(client, REFUND_ORDER, variables, token=token))["data"]["refundOrder"]


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def test_refund_order_by_staff_once_per_key_and_audited(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient
) -> None:
    order, payment = await paid_order(wechat_pay, quantities=(2, 1))
    first, _ = await OrderLine.filter(order_id=order.id).order_by("id")
    service = await staff_token(StaffRole.CUSTOMER_SERVICE)
    warehouse = await staff_token(StaffRole.WAREHOUSE)
    line = {"lineId": encode_id("OrderLine", first.id), "quantity": 1}

    refused = await refund_order(client, warehouse, order, "click-1", amount=100, lines=[line])
    assert codes(refused) == ["FORBIDDEN"] and refused["refund"] is None
    assert not await Refund.filter(order_id=order.id).exists()

    key = "click-" + secrets.token_hex(4)
    made = await refund_order(client, service, order, key, amount=first.unit_price, lines=[line])
    assert made["errors"] == [], made
    again = await refund_order(client, service, order, key, amount=first.unit_price, lines=[line])
    assert again["errors"] == [] and again["refund"]["id"] == made["refund"]["id"]
    refund = made["refund"]
    assert refund["status"] == "PENDING" and refund["amount"] == first.unit_price
    assert refund["lines"] == [line] and refund["reason"] == "坏了"
    assert await Refund.filter(order_id=order.id).count() == 1
    # Asked again while pending; WeChat refunds one out_refund_no once.
    assert {c["out_refund_no"] for c in wechat_pay.calls("refund")} == {refund["outRefundNo"]}
    assert wechat_pay.refund(refund["outRefundNo"]).refund_fee == first.unit_price

    over = await refund_order(client, service, order, "click-other", amount=payment.amount)
    assert codes(over) == ["REFUND_EXCEEDS_PAID"] and over["errors"][0]["field"] == "input.amount"
    assert over["refund"] is None
    assert await Refund.filter(order_id=order.id).count() == 1

    rows = await AuditLog.filter(action="refundOrder", target=refund["id"]).values_list(
        "succeeded", flat=True
    )
    assert rows == [True, True]
    assert await AuditLog.filter(action="refundOrder", succeeded=False).count() >= 2  # FORBIDDEN, too much
    listed = await gql(client, ORDER_REFUNDS, {"id": encode_id("Order", order.id)}, token=service)
    assert listed["data"]["orderRefunds"] == [
        {"outRefundNo": refund["outRefundNo"], "amount": first.unit_price, "status": "PENDING"}
    ]


async def test_refund_order_validation(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient
) -> None:
    order, payment = await paid_order(wechat_pay, quantities=(2, 1))
    other, _ = await paid_order(wechat_pay)
    first, second = await OrderLine.filter(order_id=order.id).order_by("id")
    foreign = await OrderLine.filter(order_id=other.id).first()
    assert foreign is not None
    token = await staff_token(StaffRole.CUSTOMER_SERVICE)

    def line(row: OrderLine, quantity: int) -> dict[str, Any]:
        return {"lineId": encode_id("OrderLine", row.id), "quantity": quantity}

    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({"amount": 0}, "BAD_USER_INPUT", "input.amount"),
        ({"amount": 1, "reason": "  "}, "BAD_USER_INPUT", "input.reason"),
        ({"amount": 1, "lines": [line(foreign, 1)]}, "NOT_FOUND", "input.lines[0]"),
        ({"amount": 1, "lines": [line(first, 1), line(second, 2)]}, "REFUND_EXCEEDS_PAID", "input.lines[1]"),
        ({"amount": 1, "lines": [line(first, 0)]}, "BAD_USER_INPUT", "input.lines[0].quantity"),
        ({"amount": payment.amount + 1}, "REFUND_EXCEEDS_PAID", "input.amount"),
    ]
    for i, (input, code, field) in enumerate(cases):
        payload = await refund_order(client, token, order, f"bad-{i}", **input)
        assert codes(payload) == [code], (input, payload)
        assert payload["errors"][0]["field"] == field and payload["refund"] is None
    empty_key = await refund_order(client, token, order, " ", amount=1)
    assert codes(empty_key) == ["BAD_USER_INPUT"]
    unpaid = await make_order()
    assert codes(await refund_order(client, token, unpaid, "unpaid", amount=1)) == ["REFUND_NOT_ALLOWED"]
    missing = await refund_order(client, token, Order(id=10_000_000), "missing", amount=1)
    assert codes(missing) == ["NOT_FOUND"]
    assert not await Refund.filter(order_id=order.id).exists()

    # Without an amount: the lines' share of what was paid; then without lines everything left.
    share = await refund_order(client, token, order, "share", lines=[line(second, 1)])
    assert share["errors"] == [] and share["refund"]["amount"] == payment.amount * second.unit_price // (
        first.line_total + second.line_total
    )
    rest = await refund_order(client, token, order, "rest")
    assert rest["errors"] == [] and rest["refund"]["amount"] == payment.amount - share["refund"]["amount"]
    repeat = await refund_order(client, token, order, "rest")
    assert repeat["refund"]["id"] == rest["refund"]["id"]
    assert codes(await refund_order(client, token, order, "more")) == ["REFUND_EXCEEDS_PAID"]


async def test_refund_takes_back_purchase_points_and_growth(
    seeded: None, wechat_pay: WeChatPayStandIn
) -> None:
    order, payment = await paid_order(wechat_pay, quantities=(2, 1))
    member_id = order.member_id  # type: ignore[attr-defined]
    earned = payment.amount // 100
    member = await Member.get(id=member_id)
    assert member.points == earned and member.growth == earned

    part = payment.amount // 3
    refund = await start_refund(order.id, part, [], "partial", key="part")
    body = wechat_pay.refund_notification(refund.out_refund_no)
    for _ in range(3):
        assert ok(await handle_refund_notification(body))
    taken = earned * part // payment.amount
    member = await Member.get(id=member_id)
    assert member.points == earned - taken and member.growth == earned - taken
    entry = await PointsEntry.get(
        member_id=member_id, idempotency_key=f"refund:{refund.out_refund_no}:purchase"
    )
    assert entry.delta == -taken and entry.reason == PointsReason.REFUND

    rest = await start_refund(order.id, payment.amount - part, [], "the rest", key="rest")
    assert ok(await handle_refund_notification(wechat_pay.refund_notification(rest.out_refund_no)))
    member = await Member.get(id=member_id)
    assert member.points == 0 and member.growth == 0  # everything paying gave, with the last fen


async def test_refund_takes_what_is_left_of_spent_points(seeded: None, wechat_pay: WeChatPayStandIn) -> None:
    order, payment = await paid_order(wechat_pay)
    member_id = order.member_id  # type: ignore[attr-defined]
    earned = payment.amount // 100
    assert earned > 3
    await change_points(member_id, -(earned - 3), PointsReason.POINTS_MALL, "spent-" + secrets.token_hex(4))

    refund = await start_refund(order.id, payment.amount, [], "all", key="all")
    assert ok(await handle_refund_notification(wechat_pay.refund_notification(refund.out_refund_no)))
    assert (await Refund.get(id=refund.id)).status == RefundStatus.SUCCEEDED
    assert (await Order.get(id=order.id)).refunded_amount == payment.amount
    member = await Member.get(id=member_id)
    assert member.points == 0 and member.growth == 0
    entry = await PointsEntry.get(
        member_id=member_id, idempotency_key=f"refund:{refund.out_refund_no}:purchase"
    )
    assert entry.delta == -3 and entry.balance_after == 0
    assert f"少扣 {earned - 3}" in entry.note


async def test_sweeper_asks_again_for_a_refund_wechat_never_accepted(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient
) -> None:
    order, payment = await paid_order(wechat_pay)
    token = await staff_token(StaffRole.CUSTOMER_SERVICE)
    wechat_pay.fail("refund", "SYSTEMERROR", times=1)
    payload = await refund_order(client, token, order, "flaky", amount=payment.amount)
    assert codes(payload) == ["PAYMENT_UNAVAILABLE"]
    assert payload["refund"]["status"] == "PENDING"  # kept: the same key, or the sweeper, asks again
    number = payload["refund"]["outRefundNo"]
    refund = await Refund.get(out_refund_no=number)
    assert refund.refund_id is None and len(wechat_pay.calls("refund")) == 1

    assert refund.id not in (await sweep_once(now())).refunds_retried  # too young yet
    later = now() + timedelta(minutes=6)
    reports = await asyncio.gather(*(sweep_once(later) for _ in range(3)))  # every process at once
    assert any(refund.id in r.refunds_retried for r in reports)
    refund = await Refund.get(id=refund.id)
    assert refund.status == RefundStatus.PENDING and refund.refund_id == wechat_pay.refund(number).refund_id
    assert wechat_pay.refund(number).refund_fee == payment.amount
    assert refund.id not in (await sweep_once(later)).refunds_retried  # accepted: not asked again

    assert ok(await handle_refund_notification(wechat_pay.refund_notification(number)))
    assert (await Refund.get(id=refund.id)).status == RefundStatus.SUCCEEDED
    assert (await Order.get(id=order.id)).refunded_amount == payment.amount


@pytest.mark.parametrize(("returnable", "shipped"), [(True, True), (False, True), (True, False)])
async def test_a_coupon_comes_back_when_its_order_is_refunded_in_full_line_by_line(
    runtime: object, wechat_pay: WeChatPayStandIn, returnable: bool, shipped: bool
) -> None:
    """The coupon's rule (`returnOnRefund`: a fully refunded order gives it back), whether the order is refunded
    in one go or line by line, shipped or not: a partial refund keeps the coupon spent, the refund that leaves
    every line refunded gives it back (once: the count of used ones drops by one)."""
    coupon_checkout.install()
    member, _ = await new_member()
    shop = await Shop.create(code=f"rf-{secrets.token_hex(3)}", name="退款店")
    coat, scarf = await new_sku(price=5000, shop=shop), await new_sku(price=2990, shop=shop)
    template = await new_coupon(amount_off=1000, return_on_refund=returnable)
    held = await wallet.grant(member.id, template.id, CouponSource.ISSUED)
    request = CheckoutRequest(
        address_id=await new_address(member), items=(ItemRequest(coat.id, 2), ItemRequest(scarf.id, 1))
    )
    order = await checkout.place_order(member.id, request, "coupon-refund")
    assert order.discount == 1000
    await prepay(order, member.openid)
    payment = await Payment.get(order_id=order.id)
    assert ok(await handle_payment_notification(wechat_pay.payment_notification(payment.out_trade_no)))
    if shipped:
        await order_states.transition(order.id, OrderStatus.SHIPPED, actor=ActorKind.SYSTEM)
    assert (await Coupon.get(id=template.id)).used == 1

    async def refund(key: str, *lines: tuple[OrderLine, int]) -> None:
        paid = await Order.get(id=order.id)
        done: dict[int, int] = {}
        amount = 0
        for line, quantity in lines:
            fresh = await OrderLine.get(id=line.id)
            amount += line_refund(paid, fresh, quantity)
            done[line.id] = quantity
        made = await start_refund(
            order.id, amount, [{"line_id": i, "quantity": q} for i, q in done.items()], "退货", key=key
        )
        assert ok(await handle_refund_notification(wechat_pay.refund_notification(made.out_refund_no)))

    coats, scarves = await OrderLine.filter(order_id=order.id).order_by("id")
    await refund("one-coat", (coats, 1))
    assert (await MemberCoupon.get(id=held.id)).status == HeldCouponStatus.USED, "a partial refund"
    await refund("the-rest", (coats, 1), (scarves, 1))
    after = await MemberCoupon.get(id=held.id)
    if returnable:
        assert (after.status, after.order_id) == (HeldCouponStatus.UNUSED, None)
        assert (await Coupon.get(id=template.id)).used == 0
    else:
        assert (after.status, after.order_id) == (HeldCouponStatus.USED, order.id)
        assert (await Coupon.get(id=template.id)).used == 1
    status = (await Order.get(id=order.id)).status
    assert status == (OrderStatus.SHIPPED if shipped else status), "a shipped order stays shipped"


async def test_a_gift_kept_does_not_keep_the_coupon(runtime: object, wechat_pay: WeChatPayStandIn) -> None:
    """Refunded in full means every line that cost something: the free gift a promotion added may stay with
    the shopper, and the coupon still comes back."""
    coupon_checkout.install()
    member, _ = await new_member()
    shop = await Shop.create(code=f"rg-{secrets.token_hex(3)}", name="赠品退款店")
    coat, scarf = await new_sku(price=5000, shop=shop), await new_sku(price=990, shop=shop)
    gift = await promotion_admin.create_promotion(
        promotion_admin.PromotionDraft(
            title="买大衣送围巾",
            kind=PromotionKind.THRESHOLD,
            starts_at=now() - timedelta(hours=1),
            ends_at=now() + timedelta(hours=1),
            conditions=[{"type": "PRODUCTS", "args": {"ids": [coat.product_id]}}],  # type: ignore[attr-defined]
            actions=[{"type": "GIFT_SKU", "args": {"sku_id": scarf.id, "quantity": 1}}],
        )
    )
    await promotion_admin.set_status(gift.id, PromotionStatus.ACTIVE)
    try:
        template = await new_coupon(amount_off=1000, return_on_refund=True)
        held = await wallet.grant(member.id, template.id, CouponSource.ISSUED)
        request = CheckoutRequest(address_id=await new_address(member), items=(ItemRequest(coat.id, 1),))
        order = await checkout.place_order(member.id, request, "gift-refund")
    finally:
        await promotion_admin.delete_promotion(gift.id)
    await prepay(order, member.openid)
    payment = await Payment.get(order_id=order.id)
    assert ok(await handle_payment_notification(wechat_pay.payment_notification(payment.out_trade_no)))
    await order_states.transition(order.id, OrderStatus.SHIPPED, actor=ActorKind.SYSTEM)
    coats, gifts = await OrderLine.filter(order_id=order.id).order_by("id")
    assert (gifts.sku_id, gifts.line_total) == (scarf.id, 0)
    amount = line_refund(await Order.get(id=order.id), coats, 1)
    made = await start_refund(order.id, amount, [{"line_id": coats.id, "quantity": 1}], "退货", key="coat")
    assert ok(await handle_refund_notification(wechat_pay.refund_notification(made.out_refund_no)))
    assert (await MemberCoupon.get(id=held.id)).status == HeldCouponStatus.UNUSED
