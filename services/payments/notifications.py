"""WeChat Pay's payment and refund notifications: verified, checked, idempotent, every one recorded.

A payment notification is WeChat's word only if its MD5 signature verifies with our API key (wechatpy's
`parse_payment_result`); a refund notification only if its `req_info` decrypts with md5(API key) (wechatpy's
`parse_refund_notify_result`). A correctly signed one can still name another appid or merchant, or another
amount: those checks are here. Every notification is stored in `PaymentNotice` with its outcome; forged,
mismatched and unknown ones change nothing and are answered FAIL.

Settling a payment is repeatable: the Payment row becomes SUCCEEDED once (its transaction_id is unique), and
every later identical notification re-runs the idempotent follow-ups (order → PAID, or the refund of a payment
that arrived for a cancelled order) before answering SUCCESS, so a crash between the steps heals on WeChat's
next retry. Refund notifications likewise: the refund, the order's refunded amounts, points and stock change
in one transaction, once; the order's cancellation and the after-sale's completion are idempotent follow-ups.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction
from wechatpy.exceptions import InvalidSignatureException

from infra.clock import now
from infra.settings import get_settings
from models import (
    ActorKind,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentNotice,
    PaymentStatus,
    PointsReason,
    Product,
    Refund,
    RefundStatus,
    Sku,
)
from services.catalog.events import StockChange, products_changed
from services.errors import DomainError
from services.loyalty import levels
from services.loyalty.points import apply_points_change, points_entry, retry_when_busy
from services.members import viewer
from services.orders import states as order_states
from services.payments.refunds import EXTRA_PAYMENT_PREFIX, refund_payment, start_refund
from services.payments.wechat_pay import pay_client

log = logging.getLogger("lianmall.payment_notices")

MAX_BODY = 64 * 1024


def answer(ok: bool, message: str = "OK") -> str:
    code = "SUCCESS" if ok else "FAIL"
    return (
        f"<xml><return_code><![CDATA[{code}]]></return_code>"
        f"<return_msg><![CDATA[{message}]]></return_msg></xml>"
    )


async def _notice(kind: str, body: bytes, outcome: str, out_trade_no: str = "", detail: str = "") -> None:
    level = (
        logging.INFO if outcome in ("accepted", "duplicate", "refund_failed", "not_paid") else logging.WARNING
    )
    log.log(level, "%s notification %s: %s %s", kind, outcome, out_trade_no, detail)
    await PaymentNotice.create(
        kind=kind,
        out_trade_no=str(out_trade_no)[:32],
        outcome=outcome[:24],
        detail=detail[:200],
        body_sha256=hashlib.sha256(body).hexdigest(),
    )


# --- payments ----------------------------------------------------------------------------------------------


async def handle_payment_notification(body: bytes) -> str:
    """WeChat Pay's payment notification (XML) → WeChat's XML answer (SUCCESS: do not send it again)."""
    kind = "payment"
    settings = get_settings()
    try:
        data = pay_client().parse_payment_result(body)
    except DomainError:
        await _notice(kind, body, "unconfigured", detail="WeChat Pay is not configured")
        return answer(False, "not configured")
    except InvalidSignatureException:
        await _notice(kind, body, "forged", detail="signature does not verify")
        return answer(False, "invalid signature")
    except (ValueError, TypeError):
        await _notice(kind, body, "forged", detail="unreadable")
        return answer(False, "invalid signature")

    out_trade_no = str(data.get("out_trade_no") or "")
    if data.get("appid") != settings.wechat_appid or data.get("mch_id") != settings.wechat_mch_id:
        await _notice(
            kind, body, "mismatched", out_trade_no, f"appid {data.get('appid')} mch_id {data.get('mch_id')}"
        )
        return answer(False, "wrong merchant")
    if data.get("return_code") != "SUCCESS" or data.get("result_code") != "SUCCESS":
        await _notice(
            kind, body, "not_paid", out_trade_no, str(data.get("err_code") or data.get("return_msg"))
        )
        return answer(True)
    transaction_id = str(data.get("transaction_id") or "")
    total_fee = data.get("total_fee")
    if not transaction_id or not isinstance(total_fee, int):
        await _notice(kind, body, "mismatched", out_trade_no, "no transaction_id or total_fee")
        return answer(False, "incomplete")
    payment = await Payment.get_or_none(out_trade_no=out_trade_no) if out_trade_no else None
    if payment is None:
        await _notice(kind, body, "unknown_order", out_trade_no)
        return answer(False, "unknown out_trade_no")
    order = await Order.get(id=payment.order_id)  # type: ignore[attr-defined]
    if total_fee != payment.amount or total_fee != order.payable:
        await _notice(
            kind, body, "mismatched", out_trade_no, f"total_fee {total_fee}, expected {payment.amount}"
        )
        return answer(False, "wrong amount")

    outcome = await retry_when_busy(lambda: _record_payment(payment.id, transaction_id))
    if outcome != "accepted" and outcome != "duplicate":
        await _notice(kind, body, outcome, out_trade_no, f"transaction_id {transaction_id}")
        return answer(False, "conflicting transaction")
    try:
        await _settle(payment.id)
    except DomainError as exc:
        # Recorded as paid; WeChat will send the notification again and the follow-up runs again.
        await _notice(kind, body, "settle_failed", out_trade_no, f"{exc.code}: {exc.message}")
        return answer(False, "try again")
    await _notice(kind, body, outcome, out_trade_no, f"transaction_id {transaction_id}")
    return answer(True)


async def _record_payment(payment_id: int, transaction_id: str) -> str:
    async with in_transaction():
        payment = await Payment.filter(id=payment_id).select_for_update().first()
        assert payment is not None
        if payment.status == PaymentStatus.SUCCEEDED:
            return "duplicate" if payment.transaction_id == transaction_id else "mismatched"
        if await Payment.exists(transaction_id=transaction_id):
            return "replayed"
        # A CLOSED payment (its prepay call failed on our side) that WeChat took anyway is money received too.
        await Payment.filter(id=payment_id).update(
            status=PaymentStatus.SUCCEEDED, transaction_id=transaction_id, paid_at=now()
        )
        return "accepted"


async def _settle(payment_id: int) -> None:
    """The order of a succeeded payment is paid by it; money that cannot pay the order goes back."""
    payment = await Payment.get(id=payment_id)
    order = await Order.get(id=payment.order_id)  # type: ignore[attr-defined]
    if order.status == OrderStatus.PENDING_PAYMENT:
        try:
            order = await order_states.transition(
                order.id,
                OrderStatus.PAID,
                actor=ActorKind.WECHAT,
                reason=f"WeChat Pay {payment.transaction_id}",
                paid_amount=payment.amount,
                transaction_id=payment.transaction_id,
            )
        except DomainError:
            order = await Order.get(id=order.id)  # cancelled meanwhile: refunded below
    if order.transaction_id == payment.transaction_id:
        return
    # Paid after the order was cancelled, or a second payment of an order already paid: refund it in full.
    await start_refund(
        order.id,
        payment.amount,
        [],
        f"{EXTRA_PAYMENT_PREFIX}{payment.out_trade_no} paid for a {order.status.value.lower()} order",
        key=f"payment:{payment.out_trade_no}",
        payment_id=payment.id,
    )


# --- refunds -----------------------------------------------------------------------------------------------


async def handle_refund_notification(body: bytes) -> str:
    """WeChat Pay's refund notification (XML with encrypted `req_info`) → WeChat's XML answer."""
    kind = "refund"
    try:
        data: dict[str, Any] = pay_client().parse_refund_notify_result(body)
    except DomainError:
        await _notice(kind, body, "unconfigured", detail="WeChat Pay is not configured")
        return answer(False, "not configured")
    except Exception as exc:  # wrong appid / mch_id, undecryptable or unreadable: not WeChat's word
        outcome = (
            "mismatched"
            if type(exc).__name__ in ("InvalidAppIdException", "InvalidMchIdException")
            else "forged"
        )
        await _notice(kind, body, outcome, detail=type(exc).__name__)
        return answer(False, "invalid notification")
    if not isinstance(data, dict):
        await _notice(kind, body, "forged", detail="req_info holds no object")
        return answer(False, "invalid notification")

    out_refund_no = str(data.get("out_refund_no") or "")
    refund = await Refund.get_or_none(out_refund_no=out_refund_no) if out_refund_no else None
    if refund is None:
        await _notice(kind, body, "unknown_order", out_refund_no)
        return answer(False, "unknown out_refund_no")
    payment = await refund_payment(refund)
    if (
        payment is None
        or data.get("out_trade_no") != payment.out_trade_no
        or data.get("refund_fee") != refund.amount
        or data.get("total_fee") != payment.amount
    ):
        await _notice(kind, body, "mismatched", out_refund_no, f"refund_fee {data.get('refund_fee')}")
        return answer(False, "mismatched")
    if data.get("refund_status") != "SUCCESS":
        changed = await Refund.filter(id=refund.id, status=RefundStatus.PENDING).update(
            status=RefundStatus.FAILED
        )
        await _notice(
            kind,
            body,
            "refund_failed" if changed else "duplicate",
            out_refund_no,
            str(data.get("refund_status")),
        )
        return answer(True)

    refund_id = str(data.get("refund_id") or "") or None
    stock: list[StockChange] = []
    outcome = await retry_when_busy(lambda: _record_refund(refund.id, refund_id, payment.id, stock))
    if outcome == "conflict":
        await _notice(kind, body, "mismatched", out_refund_no, "refund already failed")
        return answer(False, "mismatched")
    if outcome == "accepted":
        # add_growth forgot the member's cached snapshot inside the transaction; forget it again after the
        # commit so no request re-cached the growth from before it.
        try:
            order_row = await Order.get(id=refund.order_id)  # type: ignore[attr-defined]
            await viewer.forget_member_snapshot(order_row.member_id)  # type: ignore[attr-defined]
        except Exception:
            log.exception("forgetting the member's snapshot after a refund failed")
    if stock:
        try:
            await products_changed({c.product_id for c in stock}, stock, text_changed=False)
        except Exception:
            log.exception("announcing returned stock failed")
    try:
        await _after_refund(refund.id)
    except DomainError as exc:
        await _notice(kind, body, "settle_failed", out_refund_no, f"{exc.code}: {exc.message}")
        return answer(False, "try again")
    await _notice(kind, body, outcome, out_refund_no, f"refund_id {refund_id}")
    return answer(True)


async def _record_refund(
    refund_id: int, wechat_refund_id: str | None, payment_id: int, stock: list[StockChange]
) -> str:
    stock.clear()
    async with in_transaction():
        refund = await Refund.filter(id=refund_id).select_for_update().first()
        assert refund is not None
        if refund.status == RefundStatus.SUCCEEDED:
            return "duplicate"
        if refund.status == RefundStatus.FAILED:
            return "conflict"
        await Refund.filter(id=refund_id).update(
            status=RefundStatus.SUCCEEDED, succeeded_at=now(), refund_id=refund.refund_id or wechat_refund_id
        )
        order = await Order.filter(id=refund.order_id).select_for_update().first()  # type: ignore[attr-defined]
        assert order is not None
        if (
            order.transaction_id is None
            or (await Payment.get(id=payment_id)).transaction_id != order.transaction_id
        ):
            return "accepted"  # money of an extra payment went back: the order itself is untouched
        await _return_to_order(order, refund, stock)
        return "accepted"


async def _return_to_order(order: Order, refund: Refund, stock: list[StockChange]) -> None:
    before = order.refunded_amount
    after = before + refund.amount
    paid = order.paid_amount or order.payable
    full = after >= paid
    await Order.filter(id=order.id).update(refunded_amount=F("refunded_amount") + refund.amount)

    lines = {line.id: line for line in await OrderLine.filter(order_id=order.id).order_by("id")}
    items = [(lines[i["line_id"]], int(i["quantity"])) for i in refund.lines or [] if i["line_id"] in lines]
    if not items and full:
        items = [(line, line.quantity - line.refunded_quantity) for line in lines.values()]
        items = [(line, q) for line, q in items if q > 0]
    weights = [line.unit_price * q for line, q in items]
    total_weight = sum(weights) or 1
    shared = 0
    for index, ((line, quantity), weight) in enumerate(zip(items, weights, strict=True)):
        share = refund.amount - shared if index == len(items) - 1 else refund.amount * weight // total_weight
        shared += share
        await OrderLine.filter(id=line.id).update(
            refunded_quantity=F("refunded_quantity") + quantity, refunded_amount=F("refunded_amount") + share
        )

    # Stock goes back only while nothing has left the warehouse.
    if order.shipped_at is None and order.status in (OrderStatus.PAID, OrderStatus.CANCELLED):
        for line, quantity in items:
            await Sku.filter(id=line.sku_id).update(stock=F("stock") + quantity)
            await Product.filter(id=line.product_id).update(total_stock=F("total_stock") + quantity)
        levels = dict(await Sku.filter(id__in=[line.sku_id for line, _ in items]).values_list("id", "stock"))
        stock.extend(
            StockChange(line.product_id, line.sku_id, int(levels.get(line.sku_id, 0))) for line, _ in items
        )

    # Points spent at checkout come back in proportion to the money refunded, all of them with the last fen.
    if order.points_used > 0 and paid > 0:
        returned_before = order.points_used * before // paid
        returned_after = order.points_used if full else order.points_used * after // paid
        delta = returned_after - returned_before
        if delta > 0:
            await apply_points_change(
                order.member_id,  # type: ignore[attr-defined]
                delta,
                PointsReason.REFUND,
                f"refund:{refund.out_refund_no}",
                note=f"订单 {order.number} 退款",
            )

    await _take_back_rewards(order, refund, paid, before, after, full)


async def _take_back_rewards(
    order: Order, refund: Refund, paid: int, before: int, after: int, full: bool
) -> None:
    """What paying earned (order_states._reward: growth and purchase points, one each per whole yuan paid) goes
    back in proportion to the money refunded, all of it with the last fen. Runs once per refund, inside the
    transaction that makes the refund SUCCEEDED. Points the member already spent cannot come back: the ledger
    takes what the balance allows and its note records the shortfall; the refund itself never fails for it."""
    earned = paid // 100
    if earned <= 0:
        return
    taken_before = earned * before // paid
    taken_after = earned if full else earned * after // paid
    delta = taken_after - taken_before
    if delta <= 0:
        return
    member_id: int = order.member_id  # type: ignore[attr-defined]
    await levels.add_growth(member_id, -delta)
    key = f"refund:{refund.out_refund_no}:purchase"
    if await points_entry(member_id, key) is not None:
        return
    member = await Member.filter(id=member_id).select_for_update().only("id", "points").first()
    balance = member.points if member is not None else 0
    take = min(delta, balance)
    shortfall = delta - take
    note = f"订单 {order.number} 退款扣回购物积分"
    if shortfall:
        note += f"，余额不足，少扣 {shortfall}"
    if take > 0:
        await apply_points_change(member_id, -take, PointsReason.REFUND, key, note=note)
    if shortfall:
        log.warning(
            "refund %s: member %s had spent %d of the %d purchase points to take back",
            refund.out_refund_no,
            member_id,
            shortfall,
            delta,
        )


async def _after_refund(refund_id: int) -> None:
    """Idempotent follow-ups of a succeeded refund: the after-sale is done; a wholly refunded order that was
    not shipped is cancelled."""
    refund = await Refund.get(id=refund_id)
    order = await Order.get(id=refund.order_id)  # type: ignore[attr-defined]
    if refund.after_sale_id is not None:  # type: ignore[attr-defined]
        from services.orders import after_sales

        await after_sales.mark_refunded(refund.after_sale_id)  # type: ignore[attr-defined]
    payment = await refund_payment(refund)
    if (
        payment is not None
        and payment.transaction_id == order.transaction_id
        and order.status == OrderStatus.PAID
        and order.refunded_amount >= (order.paid_amount or order.payable)
    ):
        await order_states.transition(
            order.id,
            OrderStatus.CANCELLED,
            actor=ActorKind.WECHAT,
            reason=f"refunded in full ({refund.out_refund_no})",
        )
