"""Money settles without WeChat's notifications: the sweeper asks WeChat Pay (order query, refund query through
wechatpy, against the stand-in) about payments and refunds left PENDING, and settles them once, through the
same code the notifications use; a lost notification arriving late then changes nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import xmltodict

from infra import wechat_sandbox as sandbox_ids
from infra.clock import now
from infra.settings import Settings
from infra.wechat_sandbox.pay import NotifyFailed, PaySandbox
from models import (
    Member,
    Order,
    OrderEvent,
    OrderStatus,
    Payment,
    PaymentNotice,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from services.orders.sweeper import sweep_once
from services.payments.notifications import handle_payment_notification, handle_refund_notification
from services.payments.refunds import start_refund
from services.payments.wechat_pay import prepay
from tests.server_process import free_port
from tests.test_payments import make_order, paid_order
from tests.threaded_server import ThreadedServer
from tests.wechat_pay_standin import CLOSEORDER, ORDERQUERY, REFUNDQUERY, WeChatPayStandIn


def ok(xml: str) -> bool:
    return xmltodict.parse(xml)["xml"]["return_code"] == "SUCCESS"


async def prepaid(pay: WeChatPayStandIn) -> tuple[Order, Payment]:
    order = await make_order()
    member = await Member.get(id=order.member_id)  # type: ignore[attr-defined]
    await prepay(order, member.openid)
    return order, await Payment.get(order_id=order.id)


def queried(pay: WeChatPayStandIn, endpoint: str, number: str) -> int:
    key = "out_refund_no" if endpoint == REFUNDQUERY else "out_trade_no"
    return sum(1 for call in pay.calls(endpoint) if call.get(key) == number)


async def test_a_payment_whose_notification_never_came_is_settled_by_asking_once(
    seeded: None, runtime: object, wechat_pay: WeChatPayStandIn, settings: Settings
) -> None:
    order, payment = await prepaid(wechat_pay)
    wechat_pay.mark_paid(payment.out_trade_no)  # the shopper paid; WeChat's notification is lost

    assert payment.id not in (await sweep_once(now())).payments_reconciled  # too young to ask about
    assert queried(wechat_pay, ORDERQUERY, payment.out_trade_no) == 0
    later = now() + timedelta(seconds=settings.pay_query_after_seconds + 1)
    reports = await asyncio.gather(*(sweep_once(later) for _ in range(3)))  # every process at once
    assert any(payment.id in r.payments_reconciled for r in reports)

    order = await Order.get(id=order.id)
    trade = wechat_pay.trade(payment.out_trade_no)
    assert order.status == OrderStatus.PAID and order.transaction_id == trade.transaction_id
    assert order.paid_amount == payment.amount
    assert await OrderEvent.filter(order_id=order.id, to_status="PAID").count() == 1
    outcomes = await PaymentNotice.filter(kind="pay_query", out_trade_no=payment.out_trade_no).values_list(
        "outcome", flat=True
    )
    assert "accepted" in outcomes and set(outcomes) <= {"accepted", "duplicate"}

    # Settled: not asked again; and the notification, arriving after all, changes nothing.
    asked = queried(wechat_pay, ORDERQUERY, payment.out_trade_no)
    await sweep_once(later + timedelta(minutes=10))
    assert queried(wechat_pay, ORDERQUERY, payment.out_trade_no) == asked
    assert ok(await handle_payment_notification(wechat_pay.payment_notification(payment.out_trade_no)))
    assert await OrderEvent.filter(order_id=order.id, to_status="PAID").count() == 1
    assert (await Order.get(id=order.id)).paid_amount == payment.amount


async def test_an_order_paid_just_before_its_deadline_is_paid_not_cancelled(
    seeded: None, runtime: object, wechat_pay: WeChatPayStandIn
) -> None:
    order, payment = await prepaid(wechat_pay)
    wechat_pay.mark_paid(payment.out_trade_no)
    # The unpaid timeout is due: the sweeper asks first, however young the payment.
    report = await sweep_once(order.pay_deadline + timedelta(seconds=1))
    assert payment.id in report.payments_reconciled and order.id not in report.cancelled
    assert (await Order.get(id=order.id)).status == OrderStatus.PAID


async def test_an_unpaid_trade_of_a_cancelled_order_is_closed_at_wechat_then_left_alone(
    seeded: None, runtime: object, wechat_pay: WeChatPayStandIn, settings: Settings
) -> None:
    order, payment = await prepaid(wechat_pay)
    due = order.pay_deadline + timedelta(seconds=1)
    report = await sweep_once(due)
    assert order.id in report.cancelled, "asked (NOTPAY), then cancelled for the unpaid timeout"
    assert queried(wechat_pay, ORDERQUERY, payment.out_trade_no) == 1
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.PENDING

    later = due + timedelta(seconds=settings.pay_query_after_seconds + 1)
    assert payment.id in (await sweep_once(later)).payments_reconciled
    assert queried(wechat_pay, CLOSEORDER, payment.out_trade_no) == 1
    assert wechat_pay.trade(payment.out_trade_no).state == "CLOSED", "nobody can pay it any more"
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.CLOSED
    asked = queried(wechat_pay, ORDERQUERY, payment.out_trade_no)
    await sweep_once(later + timedelta(hours=1))
    assert queried(wechat_pay, ORDERQUERY, payment.out_trade_no) == asked


async def test_a_trade_wechat_never_heard_of_closes_and_one_still_unpaid_is_asked_again_later(
    seeded: None, runtime: object, wechat_pay: WeChatPayStandIn, settings: Settings
) -> None:
    _, unpaid = await prepaid(wechat_pay)
    orphan_order = await make_order()
    # A payment row whose prepay call never reached WeChat (the process died before it).
    orphan = await Payment.create(order=orphan_order, out_trade_no="P" + orphan_order.number[1:], amount=1)
    step = timedelta(seconds=settings.pay_query_after_seconds + 1)
    first = now() + step
    await sweep_once(first)
    assert (await Payment.get(id=orphan.id)).status == PaymentStatus.CLOSED
    assert (await Payment.get(id=unpaid.id)).status == PaymentStatus.PENDING
    asked = queried(wechat_pay, ORDERQUERY, unpaid.out_trade_no)
    await sweep_once(first + timedelta(seconds=1))  # asked just now: not again yet
    assert queried(wechat_pay, ORDERQUERY, unpaid.out_trade_no) == asked
    await sweep_once(first + step)
    assert queried(wechat_pay, ORDERQUERY, unpaid.out_trade_no) == asked + 1


async def test_a_refund_whose_notification_never_came_is_settled_by_asking_once(
    seeded: None, runtime: object, wechat_pay: WeChatPayStandIn, settings: Settings
) -> None:
    order, payment = await paid_order(wechat_pay)
    refund = await start_refund(order.id, payment.amount, [], "不想要了", key="reconcile")
    assert refund.status == RefundStatus.PENDING and refund.refund_id  # WeChat accepted it
    later = now() + timedelta(seconds=settings.pay_query_after_seconds + 1)

    await sweep_once(later)  # WeChat is still processing it
    assert queried(wechat_pay, REFUNDQUERY, refund.out_refund_no) == 1
    assert (await Refund.get(id=refund.id)).status == RefundStatus.PENDING

    wechat_pay.finish_refund(refund.out_refund_no)  # done at WeChat; the notification is lost
    reports = await asyncio.gather(*(sweep_once(later + timedelta(minutes=5)) for _ in range(3)))
    assert any(refund.id in r.refunds_reconciled for r in reports)
    settled = await Refund.get(id=refund.id)
    assert settled.status == RefundStatus.SUCCEEDED
    order = await Order.get(id=order.id)
    assert order.refunded_amount == payment.amount and order.status == OrderStatus.CANCELLED
    assert ok(await handle_refund_notification(wechat_pay.refund_notification(refund.out_refund_no)))
    assert (await Order.get(id=order.id)).refunded_amount == payment.amount, "returned once"
    outcomes = await PaymentNotice.filter(out_trade_no=refund.out_refund_no).values_list("kind", "outcome")
    assert ("refund_query", "accepted") in outcomes and ("refund", "duplicate") in outcomes


async def test_a_refund_wechat_closed_fails(
    seeded: None, runtime: object, wechat_pay: WeChatPayStandIn, settings: Settings
) -> None:
    order, _ = await paid_order(wechat_pay)
    refund = await start_refund(order.id, 100, [], "部分退款", key="closed")
    wechat_pay.finish_refund(refund.out_refund_no, "REFUNDCLOSE")
    await sweep_once(now() + timedelta(seconds=settings.pay_query_after_seconds + 1))
    assert (await Refund.get(id=refund.id)).status == RefundStatus.FAILED
    assert (await Order.get(id=order.id)).refunded_amount == 0


class PaySandboxServer(ThreadedServer):
    thread_name = "pay-sandbox"

    def __init__(self) -> None:
        self.sandbox = PaySandbox()
        self.app = self.sandbox.app


async def test_the_built_in_sandbox_answers_the_sweepers_questions_too(
    seeded: None, runtime: object, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = PaySandboxServer()
    server.start()
    try:
        monkeypatch.setattr(settings, "wechat_pay_api_base_url", f"http://127.0.0.1:{server.port}/")
        monkeypatch.setattr(settings, "wechat_appid", sandbox_ids.APPID)
        monkeypatch.setattr(settings, "wechat_mch_id", sandbox_ids.MCH_ID)
        monkeypatch.setattr(settings, "wechat_pay_api_key", "k" * 32)
        # Notifications go nowhere: every one of them is lost.
        monkeypatch.setattr(settings, "public_base_url", f"http://127.0.0.1:{free_port()}")
        order = await make_order()
        await prepay(order, "o-sandbox")
        payment = await Payment.get(order_id=order.id)
        with pytest.raises(NotifyFailed):
            await server.sandbox.confirm_payment(payment.out_trade_no)
        later = now() + timedelta(seconds=settings.pay_query_after_seconds + 1)
        assert payment.id in (await sweep_once(later)).payments_reconciled
        assert (await Order.get(id=order.id)).status == OrderStatus.PAID

        refund = await start_refund(order.id, payment.amount, [], "sandbox", key="sandbox")
        report = await sweep_once(later + timedelta(seconds=settings.pay_query_after_seconds + 1))
        assert refund.id in report.refunds_reconciled
        assert (await Refund.get(id=refund.id)).status == RefundStatus.SUCCEEDED
    finally:
        server.stop()
