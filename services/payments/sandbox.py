"""Paying in the built-in WeChat sandbox (embedded default only): the shopper's side of `wx.requestPayment`.

`sandbox_pay` does what the shopper and WeChat do in earnest: it takes the order's open prepay (making one,
through the production prepay, if there is none) and has the sandbox post WeChat Pay's signed payment
notification to our notify URL. Everything after that is production code: the notification is verified and
settled exactly as WeChat's would be.
"""

from __future__ import annotations

from infra.settings import get_settings
from infra.wechat_sandbox.pay import NotifyFailed, UnknownTrade
from infra.wechat_sandbox.routes import pay_sandbox
from models import Member, Order, Payment, PaymentStatus
from services.errors import DomainError, ErrorCode
from services.payments import plans
from services.payments.wechat_pay import prepay


async def _open_payment(order: Order, openid: str) -> Payment:
    await prepay(order, openid)
    due = await plans.amount_due(order)
    payment = (
        await Payment.filter(
            order_id=order.id, status=PaymentStatus.PENDING, amount=due.amount, stage=due.stage
        )
        .exclude(prepay_id="")
        .order_by("-id")
        .first()
    )
    if payment is None:
        raise DomainError(ErrorCode.PAYMENT_UNAVAILABLE, "The sandbox made no payment to confirm")
    return payment


async def sandbox_pay(member_id: int, order_id: int) -> Order:
    """Pay the member's pending order in the WeChat sandbox; returns the order as the notification left it.

    Raises FORBIDDEN when the sandbox is off, NOT_FOUND (field `orderId`), ORDER_ALREADY_PAID,
    ORDER_NOT_PAYABLE, or PAYMENT_UNAVAILABLE when the sandbox could not reach PUBLIC_BASE_URL.
    """
    sandbox = pay_sandbox()
    if not get_settings().wechat_sandbox or sandbox is None:
        raise DomainError(
            ErrorCode.FORBIDDEN, "sandboxPay works only with the built-in WeChat sandbox (embedded default)"
        )
    order = await Order.get_or_none(id=order_id, member_id=member_id)
    if order is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No order has this ID", "orderId")
    openid = str(await Member.filter(id=member_id).first().values_list("openid", flat=True) or "")
    payment = await _open_payment(order, openid)
    try:
        try:
            await sandbox.confirm_payment(payment.out_trade_no)
        except UnknownTrade:
            # A prepay from before a restart: the sandbox forgot it, so it can never be paid. A new one can.
            await Payment.filter(id=payment.id, status=PaymentStatus.PENDING).update(
                status=PaymentStatus.CLOSED
            )
            payment = await _open_payment(order, openid)
            await sandbox.confirm_payment(payment.out_trade_no)
    except NotifyFailed as exc:
        raise DomainError(
            ErrorCode.PAYMENT_UNAVAILABLE,
            f"The sandbox could not deliver the payment to PUBLIC_BASE_URL ({exc}); is it this server's URL?",
        ) from None
    return await Order.get(id=order.id)
