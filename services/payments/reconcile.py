"""Money WeChat Pay never told us about: payments and refunds settled by asking WeChat Pay (order query,
refund query through wechatpy), from the sweeper.

WeChat retries a notification it got no SUCCESS for, but only for a while, and a notification can be lost on
the way. So a payment or refund still PENDING PAY_QUERY_AFTER_SECONDS after it was made (and as often again
while it stays pending) is asked about, and settled through the very code the notifications use
(`notifications.settle_paid_trade`, `notifications.settle_refund_result`): whichever of the notification and
the query comes first settles it, the other one finds it settled. Nothing stays PENDING forever:
- a paid trade (SUCCESS, or REFUND: paid, then refunded) settles the payment and its order;
- a trade WeChat closed, revoked or failed, or never heard of, closes the payment;
- an unpaid trade (NOTPAY) of an order that is no longer waiting for payment is closed at WeChat first, so it
  can never be paid afterwards, then here; one still waiting is asked again later;
- a refund WeChat finished settles (SUCCESS) or fails (REFUNDCLOSE, CHANGE); one in PROCESSING is asked again.
Every answer acted on is recorded as a PaymentNotice (kind `pay_query` / `refund_query`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import orjson

from infra.settings import get_settings
from models import Order, OrderStatus, Payment, PaymentStatus, Refund
from services.errors import DomainError, ErrorCode
from services.payments.notifications import settle_paid_trade, settle_refund_result
from services.payments.wechat_pay import call_pay

log = logging.getLogger("lianmall.reconcile")

PAY_QUERY = "pay_query"
REFUND_QUERY = "refund_query"

_PAID = {"SUCCESS", "REFUND"}
_ENDED = {"CLOSED", "REVOKED", "PAYERROR"}


def _evidence(answer: dict[str, Any]) -> bytes:
    return orjson.dumps(answer, option=orjson.OPT_SORT_KEYS)


async def _checked(model: type[Payment] | type[Refund], pk: int, at: datetime) -> None:
    await model.filter(id=pk).update(checked_at=at)


async def reconcile_payment(payment: Payment, at: datetime) -> str:
    """Ask WeChat Pay about a PENDING payment and act on the answer (see the module docstring).

    Returns what happened: `paid`, `closed`, `waiting` (asked again later) or `unsettled` (WeChat's answer could
    not settle it, e.g. another amount: recorded, asked again later). Raises PAYMENT_UNAVAILABLE when WeChat Pay
    does not answer.
    """
    try:
        answer = await call_pay(lambda c: c.order.query(out_trade_no=payment.out_trade_no))
    except DomainError as exc:
        if exc.code is not ErrorCode.NOT_FOUND:
            raise
        return await _close(payment, at, "WeChat Pay has no such trade")
    settings = get_settings()
    if answer.get("appid") != settings.wechat_appid or answer.get("mch_id") != settings.wechat_mch_id:
        log.error("order query for %s answered for another merchant", payment.out_trade_no)
        await _checked(Payment, payment.id, at)
        return "unsettled"
    state = str(answer.get("trade_state") or "")
    if state in _PAID:
        transaction_id = str(answer.get("transaction_id") or "")
        total_fee = int(answer.get("total_fee") or -1)
        settled, _ = await settle_paid_trade(PAY_QUERY, _evidence(answer), payment, transaction_id, total_fee)
        if not settled:
            await _checked(Payment, payment.id, at)
        return "paid" if settled else "unsettled"
    if state in _ENDED:
        return await _close(payment, at, f"trade {state}")
    status = await Order.filter(id=payment.order_id).first().values_list("status", flat=True)  # type: ignore[attr-defined]
    if state == "NOTPAY" and status != OrderStatus.PENDING_PAYMENT:
        # Nobody will pay this order any more: make sure nobody can (WeChat answers ORDERPAID if someone just did).
        try:
            await call_pay(lambda c: c.order.close(payment.out_trade_no))
        except DomainError as exc:
            if exc.code is ErrorCode.ORDER_ALREADY_PAID:
                await Payment.filter(id=payment.id).update(checked_at=None)  # ask again on the next sweep
                return "waiting"
            if exc.code is not ErrorCode.ORDER_NOT_PAYABLE:  # ORDERCLOSED: closed already
                raise
        return await _close(payment, at, "unpaid trade of a closed order, closed at WeChat Pay")
    await _checked(Payment, payment.id, at)
    return "waiting"


async def _close(payment: Payment, at: datetime, why: str) -> str:
    closed = await Payment.filter(id=payment.id, status=PaymentStatus.PENDING).update(
        status=PaymentStatus.CLOSED, checked_at=at
    )
    if closed:
        log.info("payment %s closed: %s", payment.out_trade_no, why)
    return "closed"


async def reconcile_refund(refund: Refund, at: datetime) -> str:
    """Ask WeChat Pay about a PENDING refund it accepted and act on the answer (see the module docstring).

    Returns `settled` (succeeded or failed, as WeChat says), `waiting` or `unsettled`; raises PAYMENT_UNAVAILABLE
    when WeChat Pay does not answer.
    """
    try:
        answer = await call_pay(lambda c: c.refund.query(out_refund_no=refund.out_refund_no))
    except DomainError as exc:
        if exc.code is not ErrorCode.NOT_FOUND:
            raise
        log.error(
            "WeChat Pay does not know refund %s it accepted as %s", refund.out_refund_no, refund.refund_id
        )
        await _checked(Refund, refund.id, at)
        return "unsettled"
    settings = get_settings()
    count = int(answer.get("refund_count") or 0)
    index = next((i for i in range(count) if answer.get(f"out_refund_no_{i}") == refund.out_refund_no), None)
    if (
        index is None
        or answer.get("appid") != settings.wechat_appid
        or answer.get("mch_id") != settings.wechat_mch_id
    ):
        log.error("refund query for %s answered about something else", refund.out_refund_no)
        await _checked(Refund, refund.id, at)
        return "unsettled"
    status = str(answer.get(f"refund_status_{index}") or "")
    if status == "PROCESSING":
        await _checked(Refund, refund.id, at)
        return "waiting"
    word = {
        "out_trade_no": answer.get("out_trade_no"),
        "total_fee": int(answer.get("total_fee") or -1),
        "refund_fee": int(answer.get(f"refund_fee_{index}") or -1),
        "refund_status": status,
        "refund_id": answer.get(f"refund_id_{index}"),
    }
    settled, _ = await settle_refund_result(REFUND_QUERY, _evidence(answer), refund, word)
    if not settled:
        await _checked(Refund, refund.id, at)
    return "settled" if settled else "unsettled"
