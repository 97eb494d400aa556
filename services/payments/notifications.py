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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction
from wechatpy.exceptions import InvalidSignatureException

from infra.clock import now
from infra.settings import get_settings
from infra.transactions import retry_when_busy
from models import (
    Order,
    Payment,
    PaymentNotice,
    PaymentStage,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from services.catalog.events import StockChange, stock_changed
from services.errors import DomainError
from services.members import viewer
from services.payments.notice_xml import UnreadableNotice, read_notice
from services.payments.refunds import refund_payment, returns_order_money
from services.payments.wechat_pay import pay_client

log = logging.getLogger("lianmall.payment_notices")

# WeChat's notifications are 1-3 KB; a body past this is read no further and answered FAIL.
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Settlement:
    """What settled money means for its order; the orders domain registers one (`services.orders.settlement`).

    `payment_succeeded(payment_id)` runs after the payment is recorded, again on every repeated notification
    (idempotent). `refund_succeeded(order, refund, stock)` runs once, inside the transaction that marks the refund
    SUCCEEDED, with the order locked, appending any returned stock. `refund_completed(refund_id)` runs after the
    commit, on every repeated notification (idempotent).
    """

    payment_succeeded: Callable[[int], Awaitable[None]]
    refund_succeeded: Callable[[Order, Refund, list[StockChange]], Awaitable[None]]
    refund_completed: Callable[[int], Awaitable[None]]


_registered: Settlement | None = None


def register_settlement(settlement: Settlement) -> None:
    global _registered
    _registered = settlement


def _settlement() -> Settlement:
    if _registered is None:
        raise RuntimeError("no settlement is registered: import services.orders before taking notifications")
    return _registered


def answer(ok: bool, message: str = "OK") -> str:
    code = "SUCCESS" if ok else "FAIL"
    return (
        f"<xml><return_code><![CDATA[{code}]]></return_code>"
        f"<return_msg><![CDATA[{message}]]></return_msg></xml>"
    )


async def refuse_unreadable(kind: str, body: bytes, reason: str) -> str:
    """Record a body that is no notification at all (`unreadable`, or `too_large` past MAX_BODY) and answer FAIL.

    For a body over MAX_BODY, `body` is the part that was read: its digest identifies it well enough.
    """
    outcome = "too_large" if len(body) > MAX_BODY else "unreadable"
    await _notice(kind, body, outcome, detail=reason)
    return answer(False, "too large" if outcome == "too_large" else "unreadable")


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
        read_notice(body)  # only a flat <xml> reaches wechatpy (see notice_xml)
    except UnreadableNotice as exc:
        return await refuse_unreadable(kind, body, str(exc))
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
    settled, message = await settle_paid_trade(kind, body, payment, transaction_id, total_fee)
    return answer(settled, message)


async def settle_paid_trade(
    kind: str, evidence: bytes, payment: Payment, transaction_id: str, total_fee: int
) -> tuple[bool, str]:
    """Record `payment` as paid by WeChat's `transaction_id` and settle its order.

    Shared by the payment notification and the sweeper's order query (`services.payments.reconcile`), so
    either of them, in any order, any number of times, on any process, settles a payment once. Checks the
    amount, records a PaymentNotice of `kind` with `evidence` and returns (settled, what to tell WeChat).
    """
    out_trade_no = payment.out_trade_no
    order = await Order.get(id=payment.order_id)  # type: ignore[attr-defined]
    # A stage payment (deposit, balance) is for the amount its plan set; a FULL one pays the whole order.
    if total_fee != payment.amount or (payment.stage == PaymentStage.FULL and total_fee != order.payable):
        await _notice(
            kind, evidence, "mismatched", out_trade_no, f"total_fee {total_fee}, expected {payment.amount}"
        )
        return False, "wrong amount"

    outcome = await retry_when_busy(lambda: _record_payment(payment.id, transaction_id))
    if outcome != "accepted" and outcome != "duplicate":
        await _notice(kind, evidence, outcome, out_trade_no, f"transaction_id {transaction_id}")
        return False, "conflicting transaction"
    try:
        await _settlement().payment_succeeded(payment.id)
    except DomainError as exc:
        # Recorded as paid; WeChat will send the notification again (or the sweeper asks) and this runs again.
        await _notice(kind, evidence, "settle_failed", out_trade_no, f"{exc.code}: {exc.message}")
        return False, "try again"
    await _notice(kind, evidence, outcome, out_trade_no, f"transaction_id {transaction_id}")
    return True, "OK"


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


# --- refunds -----------------------------------------------------------------------------------------------


async def handle_refund_notification(body: bytes) -> str:
    """WeChat Pay's refund notification (XML with encrypted `req_info`) → WeChat's XML answer."""
    kind = "refund"
    try:
        read_notice(body)
    except UnreadableNotice as exc:
        return await refuse_unreadable(kind, body, str(exc))
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
    settled, message = await settle_refund_result(kind, body, refund, data)
    return answer(settled, message)


async def settle_refund_result(
    kind: str, evidence: bytes, refund: Refund, data: Mapping[str, Any]
) -> tuple[bool, str]:
    """Apply WeChat's word on `refund` (`data`: out_trade_no, total_fee, refund_fee, refund_status, refund_id).

    Shared by the refund notification and the sweeper's refund query (`services.payments.reconcile`): the
    money, points and stock come back once however often and from wherever WeChat's word arrives. A status
    other than SUCCESS fails the refund. Records a PaymentNotice of `kind` with `evidence`; returns
    (settled, what to tell WeChat).
    """
    out_refund_no = refund.out_refund_no
    payment = await refund_payment(refund)
    if (
        payment is None
        or data.get("out_trade_no") != payment.out_trade_no
        or data.get("refund_fee") != refund.amount
        or data.get("total_fee") != payment.amount
    ):
        await _notice(kind, evidence, "mismatched", out_refund_no, f"refund_fee {data.get('refund_fee')}")
        return False, "mismatched"
    if data.get("refund_status") != "SUCCESS":
        changed = await Refund.filter(id=refund.id, status=RefundStatus.PENDING).update(
            status=RefundStatus.FAILED
        )
        await _notice(
            kind,
            evidence,
            "refund_failed" if changed else "duplicate",
            out_refund_no,
            str(data.get("refund_status")),
        )
        return True, "OK"

    refund_id = str(data.get("refund_id") or "") or None
    stock: list[StockChange] = []
    outcome = await retry_when_busy(lambda: _record_refund(refund.id, refund_id, payment.id, stock))
    if outcome == "conflict":
        await _notice(kind, evidence, "mismatched", out_refund_no, "refund already failed")
        return False, "mismatched"
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
            await stock_changed(stock)
        except Exception:
            log.exception("announcing returned stock failed")
    try:
        await _settlement().refund_completed(refund.id)
    except DomainError as exc:
        await _notice(kind, evidence, "settle_failed", out_refund_no, f"{exc.code}: {exc.message}")
        return False, "try again"
    await _notice(kind, evidence, outcome, out_refund_no, f"refund_id {refund_id}")
    return True, "OK"


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
        if not await returns_order_money(order, payment_id):
            return "accepted"  # money of an extra payment went back: the order itself is untouched
        await _settlement().refund_succeeded(order, refund, stock)
        return "accepted"
