"""WeChat Pay: prepay, payment and refund notifications, refunds. wechatpy runs for real against the stand-in."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
import xmltodict

from infra.clock import now
from models import (
    Member,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentNotice,
    PaymentStatus,
    Product,
    Refund,
    RefundStatus,
    Shop,
    Sku,
)
from services.orders import states as order_states
from services.payments.notifications import handle_payment_notification, handle_refund_notification
from services.payments.refunds import start_refund
from services.payments.wechat_pay import prepay
from tests.wechat_pay_standin import WeChatPayStandIn, sign


def ok(xml: str) -> bool:
    return xmltodict.parse(xml)["xml"]["return_code"] == "SUCCESS"


async def make_order(points_used: int = 0, quantities: tuple[int, ...] = (2,)) -> Order:
    """A pending order for a new member, its stock already taken from demo SKUs."""
    member = await Member.create(
        openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper(), points=0
    )
    shop = await Shop.first()
    assert shop is not None
    skus = await Sku.filter(stock__gte=50).order_by("id").limit(len(quantities))
    total = sum(sku.price * q for sku, q in zip(skus, quantities, strict=True))
    points_discount = points_used // 10
    order = await Order.create(
        number="T" + secrets.token_hex(8).upper(),
        shop=shop,
        member=member,
        items_total=total,
        points_used=points_used,
        points_discount=points_discount,
        payable=total - points_discount,
        idempotency_key=secrets.token_hex(8),
        pay_deadline=now() + timedelta(minutes=30),
    )
    for sku, quantity in zip(skus, quantities, strict=True):
        await Sku.filter(id=sku.id).update(stock=sku.stock - quantity)
        product = await Product.get(id=sku.product_id)  # type: ignore[attr-defined]
        # As checkout does: the product's denormalised total follows its SKUs.
        await Product.filter(id=product.id).update(total_stock=product.total_stock - quantity)
        await OrderLine.create(
            order=order,
            product_id=product.id,
            sku_id=sku.id,
            title=product.title,
            unit_price=sku.price,
            quantity=quantity,
            line_total=sku.price * quantity,
        )
    return order


async def paid_order(pay: WeChatPayStandIn, **kwargs: object) -> tuple[Order, Payment]:
    order = await make_order(**kwargs)  # type: ignore[arg-type]
    member = await Member.get(id=order.member_id)  # type: ignore[attr-defined]
    await prepay(order, member.openid)
    payment = await Payment.get(order_id=order.id)
    assert ok(await handle_payment_notification(pay.payment_notification(payment.out_trade_no)))
    return await Order.get(id=order.id), payment


async def test_prepay_returns_signed_jsapi_params_and_reuses_open_prepay(
    seeded: None, wechat_pay: WeChatPayStandIn
) -> None:
    order = await make_order()
    params = await prepay(order, "openid-1")
    signed = {
        "appId": params.app_id,
        "timeStamp": params.time_stamp,
        "nonceStr": params.nonce_str,
        "package": params.package,
        "signType": params.sign_type,
    }
    assert params.app_id == wechat_pay.appid and params.sign_type == "MD5"
    assert params.pay_sign == sign(signed, wechat_pay.api_key)
    payment = await Payment.get(order_id=order.id)
    assert params.package == f"prepay_id={payment.prepay_id}"
    call = wechat_pay.calls("unifiedorder")[0]
    assert call["total_fee"] == str(order.payable) and call["openid"] == "openid-1"
    assert call["notify_url"].endswith("/payments/wechat/notify")
    assert call["out_trade_no"] == payment.out_trade_no
    again = await prepay(order, "openid-1")
    assert again.package == params.package
    assert len(wechat_pay.calls("unifiedorder")) == 1
    assert await Payment.filter(order_id=order.id).count() == 1


async def test_prepay_failure_is_payment_unavailable(seeded: None, wechat_pay: WeChatPayStandIn) -> None:
    from services.errors import DomainError, ErrorCode

    order = await make_order()
    wechat_pay.fail("unifiedorder", "SYSTEMERROR")
    with pytest.raises(DomainError) as caught:
        await prepay(order, "openid-1")
    assert caught.value.code == ErrorCode.PAYMENT_UNAVAILABLE
    # Nothing payable is left behind: no payment row (its prepay_id never reached anyone).
    assert not await Payment.filter(order_id=order.id).exists()
    params = await prepay(order, "openid-1")
    payment = await Payment.get(order_id=order.id)
    assert payment.status == PaymentStatus.PENDING and params.package == f"prepay_id={payment.prepay_id}"
    assert [c["out_trade_no"] for c in wechat_pay.calls("unifiedorder")][-1] == payment.out_trade_no


async def test_notification_ten_times_pays_once(seeded: None, wechat_pay: WeChatPayStandIn) -> None:
    order = await make_order()
    await prepay(order, "openid-1")
    payment = await Payment.get(order_id=order.id)
    body = wechat_pay.payment_notification(payment.out_trade_no)
    answers = [await handle_payment_notification(body) for _ in range(10)]
    assert all(ok(a) for a in answers)
    order = await Order.get(id=order.id)
    assert order.status == OrderStatus.PAID and order.paid_amount == order.payable
    assert order.transaction_id == wechat_pay.trade(payment.out_trade_no).transaction_id
    assert await OrderEvent.filter(order_id=order.id, to_status="PAID").count() == 1
    outcomes = await PaymentNotice.filter(out_trade_no=payment.out_trade_no).values_list("outcome", flat=True)
    assert sorted(outcomes) == ["accepted"] + ["duplicate"] * 9


@pytest.mark.parametrize("variant", ["forged", "wrong_amount", "wrong_appid", "wrong_mch_id", "unknown"])
async def test_bad_notifications_change_nothing(
    seeded: None, wechat_pay: WeChatPayStandIn, variant: str
) -> None:
    order = await make_order()
    await prepay(order, "openid-1")
    payment = await Payment.get(order_id=order.id)
    body = {
        "forged": lambda: wechat_pay.payment_notification(payment.out_trade_no, key=secrets.token_hex(16)),
        "wrong_amount": lambda: wechat_pay.payment_notification(payment.out_trade_no, total_fee=1),
        "wrong_appid": lambda: wechat_pay.payment_notification(
            payment.out_trade_no, appid="wx0000000000000000"
        ),
        "wrong_mch_id": lambda: wechat_pay.payment_notification(payment.out_trade_no, mch_id="1900000109"),
        "unknown": lambda: wechat_pay.payment_notification(payment.out_trade_no).replace(
            b"<out_trade_no><![CDATA[P", b"<out_trade_no><![CDATA[X"
        ),
    }[variant]()
    assert not ok(await handle_payment_notification(body))
    order = await Order.get(id=order.id)
    assert order.status == OrderStatus.PENDING_PAYMENT and order.paid_amount == 0
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.PENDING
    expected = {"forged": "forged", "unknown": "forged"}.get(variant, "mismatched")
    notices = await PaymentNotice.filter(outcome=expected).order_by("-id").first()
    assert notices is not None and notices.kind == "payment"
    # A genuine notification afterwards still pays the order.
    assert ok(await handle_payment_notification(wechat_pay.payment_notification(payment.out_trade_no)))
    assert (await Order.get(id=order.id)).status == OrderStatus.PAID


async def test_payment_for_cancelled_order_is_refunded(seeded: None, wechat_pay: WeChatPayStandIn) -> None:
    order = await make_order()
    await prepay(order, "openid-1")
    payment = await Payment.get(order_id=order.id)
    await order_states.transition(order.id, OrderStatus.CANCELLED, actor=order_states.ActorKind.SYSTEM)
    body = wechat_pay.payment_notification(payment.out_trade_no)
    assert ok(await handle_payment_notification(body))
    assert ok(await handle_payment_notification(body))
    order = await Order.get(id=order.id)
    assert order.status == OrderStatus.CANCELLED and order.paid_amount == 0
    refunds = await Refund.filter(order_id=order.id)
    assert len(refunds) == 1 and refunds[0].amount == payment.amount
    assert len(wechat_pay.calls("refund")) == 2  # asked again on the repeat; WeChat refunds it once
    assert ok(await handle_refund_notification(wechat_pay.refund_notification(refunds[0].out_refund_no)))
    refund = await Refund.get(id=refunds[0].id)
    assert refund.status == RefundStatus.SUCCEEDED
    assert (await Order.get(id=order.id)).refunded_amount == 0  # the order itself was never paid


async def test_full_refund_returns_points_and_stock_once(seeded: None, wechat_pay: WeChatPayStandIn) -> None:
    order, payment = await paid_order(wechat_pay, points_used=100, quantities=(2, 1))
    member_id = order.member_id  # type: ignore[attr-defined]
    points_before = (await Member.get(id=member_id)).points
    lines = await OrderLine.filter(order_id=order.id).order_by("id")
    stock_before = {line.sku_id: (await Sku.get(id=line.sku_id)).stock for line in lines}

    refund = await start_refund(order.id, order.paid_amount, [], "buyer changed mind", key="staff-1")
    again = await start_refund(order.id, order.paid_amount, [], "buyer changed mind", key="staff-1")
    assert again.id == refund.id and refund.status == RefundStatus.PENDING
    call = wechat_pay.calls("refund")[0]
    assert call["out_trade_no"] == payment.out_trade_no and call["refund_fee"] == str(order.paid_amount)

    body = wechat_pay.refund_notification(refund.out_refund_no)
    assert all([ok(await handle_refund_notification(body)) for _ in range(10)])
    order = await Order.get(id=order.id)
    assert order.refunded_amount == order.paid_amount
    assert order.status == OrderStatus.CANCELLED
    # The 100 points spent at checkout come back; the purchase points paying earned go (issue 4, point 9).
    assert (await Member.get(id=member_id)).points == points_before + 100 - order.paid_amount // 100
    for line in lines:
        assert (await Sku.get(id=line.sku_id)).stock == stock_before[line.sku_id] + line.quantity
        assert (await OrderLine.get(id=line.id)).refunded_quantity == line.quantity
    assert (await Refund.get(id=refund.id)).status == RefundStatus.SUCCEEDED
    outcomes = await PaymentNotice.filter(out_trade_no=refund.out_refund_no).values_list("outcome", flat=True)
    assert sorted(outcomes) == ["accepted"] + ["duplicate"] * 9


async def test_partial_refund_by_line(seeded: None, wechat_pay: WeChatPayStandIn) -> None:
    from services.errors import DomainError, ErrorCode

    order, _ = await paid_order(wechat_pay, points_used=100, quantities=(2, 1))
    member_id = order.member_id  # type: ignore[attr-defined]
    points_before = (await Member.get(id=member_id)).points
    first, second = await OrderLine.filter(order_id=order.id).order_by("id")
    stock_before = (await Sku.get(id=first.sku_id)).stock
    amount = first.unit_price
    refund = await start_refund(
        order.id, amount, [{"line_id": first.id, "quantity": 1}], "one broken", key="k1"
    )
    assert ok(await handle_refund_notification(wechat_pay.refund_notification(refund.out_refund_no)))
    order = await Order.get(id=order.id)
    assert order.status == OrderStatus.PAID and order.refunded_amount == amount
    assert (await OrderLine.get(id=first.id)).refunded_quantity == 1
    assert (await OrderLine.get(id=second.id)).refunded_quantity == 0
    assert (await Sku.get(id=first.sku_id)).stock == stock_before + 1
    earned = order.paid_amount // 100
    assert (await Member.get(id=member_id)).points == (
        points_before + 100 * amount // order.paid_amount - earned * amount // order.paid_amount
    )

    with pytest.raises(DomainError) as caught:
        await start_refund(order.id, order.paid_amount, [], "too much", key="k2")
    assert caught.value.code == ErrorCode.REFUND_EXCEEDS_PAID
    with pytest.raises(DomainError):
        await start_refund(order.id, 1, [{"line_id": second.id, "quantity": 2}], "too many", key="k3")


async def test_forged_refund_notification_changes_nothing(seeded: None, wechat_pay: WeChatPayStandIn) -> None:
    order, _ = await paid_order(wechat_pay)
    refund = await start_refund(order.id, 1, [], "partial", key="x")
    forged = wechat_pay.refund_notification(refund.out_refund_no, key=secrets.token_hex(16))
    assert not ok(await handle_refund_notification(forged))
    wrong_fee = wechat_pay.refund_notification(refund.out_refund_no, refund_fee=2)
    assert not ok(await handle_refund_notification(wrong_fee))
    wrong_mch = wechat_pay.refund_notification(refund.out_refund_no, mch_id="1900000109")
    assert not ok(await handle_refund_notification(wrong_mch))
    assert (await Refund.get(id=refund.id)).status == RefundStatus.PENDING
    assert (await Order.get(id=order.id)).refunded_amount == 0


async def test_notify_endpoint_answers_xml(
    seeded: None, wechat_pay: WeChatPayStandIn, client: object
) -> None:
    order = await make_order()
    await prepay(order, "openid-1")
    payment = await Payment.get(order_id=order.id)
    response = await client.post(  # type: ignore[attr-defined]
        "/payments/wechat/notify", content=wechat_pay.payment_notification(payment.out_trade_no)
    )
    assert response.status_code == 200 and ok(response.text)
    assert (await Order.get(id=order.id)).status == OrderStatus.PAID
    bad = await client.post("/payments/wechat/refund-notify", content=b"<xml>nope</xml>")  # type: ignore[attr-defined]
    assert bad.status_code == 200 and not ok(bad.text)
