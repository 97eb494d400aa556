"""Refunds through WeChat Pay's refund API (v2), exact and idempotent.

`start_refund` writes a PENDING `Refund` in a transaction that locks the order and checks that the refunds of
the payment never exceed what was paid, then asks WeChat Pay after the commit. WeChat's refund notification
(services.payments.notifications) makes it SUCCEEDED and returns money, points and stock on our side.

Idempotency: the refund number is derived from (order, key) — an after-sale's refund is keyed by the
after-sale, a staff refund by the caller's key — so the same request again finds the same refund (and asks
WeChat again while it is pending: WeChat refunds one `out_refund_no` once).

An order paid in two payments (a presale's deposit, then its balance) has its money in both. A refund takes from
the paying payment (the balance) first and what it needs beyond what is left of it from the earlier one (the
deposit): one WeChat refund per payment, each its own `Refund` row with its own refund number. The first row
carries the lines, the after-sale and the caller's key; the others are its `parts` and return money only (the
first returns the units and the stock). Each row's money comes back to the order when WeChat says it
succeeded; the after-sale is done, and a wholly refunded order cancelled, once every row has.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra.transactions import retry_when_busy
from models import Order, OrderLine, OrderStatus, Payment, PaymentStatus, Refund, RefundStatus
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.payments import plans
from services.payments.wechat_pay import REFUND_NOTIFY_PATH, call_pay, notify_url

log = logging.getLogger("lianmall.refunds")

_REASON_MAX = 80  # WeChat's refund_desc


def refund_number(order_id: int, key: str) -> str:
    """The out_refund_no for (order, key): 32 characters, letters and digits."""
    return "R" + hashlib.sha256(f"{order_id}:{key}".encode()).hexdigest()[:31].upper()


def _lines(raw: list[dict[str, Any]] | None) -> list[dict[str, int]]:
    result: dict[int, int] = {}
    for item in raw or []:
        line_id, quantity = int(item["line_id"]), int(item["quantity"])
        if quantity <= 0:
            raise DomainError(ErrorCode.BAD_USER_INPUT, "A refunded quantity is at least 1", "lines")
        result[line_id] = result.get(line_id, 0) + quantity
    return [{"line_id": k, "quantity": v} for k, v in sorted(result.items())]


def line_cash(order: Order, line: OrderLine) -> int:
    """The cash `line`'s goods were paid: what checkout snapshot (after its share of the promotions, coupons
    and points), or for an order written before lines kept their share, its part of the goods' cash."""
    if line.paid_total is not None:
        return line.paid_total
    goods_paid = max(order.paid_amount - order.shipping_fee, 0)
    return line.line_total * goods_paid // order.items_total if order.items_total else 0


def line_refund(order: Order, line: OrderLine, quantity: int, done: int | None = None) -> int:
    """The cash `quantity` more units of `line` paid, after `done` units (default: those already refunded).

    Counted cumulatively (cash of done+quantity units minus cash of done units, each rounded down), so the
    units of a line refunded one by one give back exactly the line's cash, never a fen more or less."""
    if line.quantity <= 0 or quantity <= 0:
        return 0
    before = line.refunded_quantity if done is None else done
    after = min(before + quantity, line.quantity)
    cash = line_cash(order, line)
    return cash * after // line.quantity - cash * before // line.quantity


async def order_payment(order: Order) -> Payment | None:
    """The payment that paid `order` (the one whose transaction the order records)."""
    if order.transaction_id:
        return await Payment.get_or_none(transaction_id=order.transaction_id)
    return None


async def paying_payments(order: Order) -> list[Payment]:
    """The succeeded payments whose money is the order's, in the order refunds take from them: the paying one
    first, then those the payment plans name (a presale's deposit once the balance is paid)."""
    paying = await order_payment(order)
    found = [paying] if paying is not None and paying.status == PaymentStatus.SUCCEEDED else []
    earlier = [i for i in await plans.earlier_payments(order) if paying is None or i != paying.id]
    if earlier:
        rows = {
            p.id: p
            for p in await Payment.filter(id__in=earlier, order_id=order.id, status=PaymentStatus.SUCCEEDED)
        }
        found.extend(rows[i] for i in earlier if i in rows)
    return found


async def refund_rows(refund: Refund) -> list[Refund]:
    """The WeChat refunds one refund is made of: itself, then its parts (see the module docstring)."""
    return [refund, *await Refund.filter(part_of_id=refund.id).order_by("id")]


async def refund_total(refund: Refund) -> int:
    """What a refund returns in all, its parts included."""
    return sum(row.amount for row in await refund_rows(refund))


async def start_refund(
    order_id: int,
    amount: int,
    lines: list[dict[str, Any]] | None,
    reason: str,
    after_sale_id: int | None = None,
    *,
    key: str | None = None,
    payment_id: int | None = None,
) -> Refund:
    """Refund `amount` fen of order `order_id` (for `lines`, [{"line_id", "quantity"}], or none) via WeChat.

    Idempotent per (order, after-sale) or per (order, `key`); without either every call is a new refund.
    `payment_id` refunds that payment (a payment that arrived for a cancelled order, or twice) instead of the
    order's. Returns the Refund (PENDING until WeChat's notification). Raises BAD_USER_INPUT, NOT_FOUND,
    REFUND_NOT_ALLOWED (nothing paid), REFUND_EXCEEDS_PAID, CONFLICT (key reused for another refund),
    REFUND_FAILED (WeChat refused) or PAYMENT_UNAVAILABLE (try again with the same key).
    """
    if amount <= 0:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "A refund is at least 1 fen", "amount")
    wanted = _lines(lines)
    if key is None:
        key = f"after-sale:{after_sale_id}" if after_sale_id is not None else secrets.token_hex(16)
    number = refund_number(order_id, key)

    existing = await Refund.get_or_none(out_refund_no=number)
    if existing is None:
        try:
            existing = await retry_when_busy(
                lambda: _create(order_id, amount, wanted, reason, after_sale_id, key, payment_id)
            )
        except IntegrityError:
            existing = await Refund.get_or_none(out_refund_no=number)
            if existing is None:
                raise
    rows = await refund_rows(existing)
    if sum(row.amount for row in rows) != amount or existing.order_id != order_id:  # type: ignore[attr-defined]
        raise DomainError(
            ErrorCode.CONFLICT, "This refund was already requested with another amount", "amount"
        )
    failure: DomainError | None = None
    for row in rows:
        if row.status != RefundStatus.PENDING:
            continue
        try:
            await apply(row)
        except DomainError as exc:  # the other payments' refunds are still asked for
            failure = failure or exc
    if failure is not None:
        raise failure
    return existing


async def _create(
    order_id: int,
    amount: int,
    wanted: list[dict[str, int]],
    reason: str,
    after_sale_id: int | None,
    key: str,
    payment_id: int | None,
) -> Refund:
    async with in_transaction():
        # Locks the order (PostgreSQL) so concurrent refunds of it check the total one after another.
        order = await Order.filter(id=order_id).select_for_update().first()
        if order is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such order", "orderId")
        if payment_id is not None:
            payment = await Payment.get_or_none(id=payment_id, order_id=order_id)
            sources = [payment] if payment is not None and payment.status == PaymentStatus.SUCCEEDED else []
        else:
            sources = await paying_payments(order)
        if not sources:
            raise DomainError(ErrorCode.REFUND_NOT_ALLOWED, "Nothing was paid for this order", "orderId")
        if payment_id is None and order.status == OrderStatus.PENDING_PAYMENT:
            raise DomainError(ErrorCode.REFUND_NOT_ALLOWED, "This order is not paid", "orderId")
        problems = await _check_lines(order_id, wanted)
        if problems:
            raise ValidationErrors(problems)
        # Each payment gives what is left of it, the paying one first, until the amount is reached.
        takes: list[tuple[Payment, int]] = []
        need = amount
        for source in sources:
            take = min(source.amount - await _refunded_of(source), need)
            if take > 0:
                takes.append((source, take))
                need -= take
        if need > 0:
            raise DomainError(
                ErrorCode.REFUND_EXCEEDS_PAID,
                f"At most {amount - need} fen can still be refunded",
                "amount",
            )
        if len(takes) > 1 and not wanted and await _takes_everything(order, sources, amount):
            # The whole order, in several WeChat refunds: name its units, so that the first row returns them
            # and every row's money is shared among them (a refund without lines names them only when it is
            # the one that leaves nothing paid).
            wanted = await _units_left(order_id)
        head = await Refund.create(
            order_id=order_id,
            after_sale_id=after_sale_id,
            out_refund_no=refund_number(order_id, key),
            amount=takes[0][1],
            reason=reason[:200],
            lines=wanted,
            payment_id=takes[0][0].id,
        )
        for source, take in takes[1:]:
            await Refund.create(
                order_id=order_id,
                out_refund_no=refund_number(order_id, f"{key}:payment:{source.id}"),
                amount=take,
                reason=reason[:200],
                lines=wanted,
                payment_id=source.id,
                part_of_id=head.id,
            )
        return head


async def _takes_everything(order: Order, sources: list[Payment], amount: int) -> bool:
    left = 0
    for source in sources:
        left += source.amount - await _refunded_of(source)
    return amount >= left


async def _units_left(order_id: int) -> list[dict[str, int]]:
    """Every line's units not yet refunded nor being refunded."""
    in_flight = await _in_flight(order_id)
    return [
        {"line_id": line.id, "quantity": left}
        for line in await OrderLine.filter(order_id=order_id).order_by("id")
        if (left := line.quantity - line.refunded_quantity - in_flight.get(line.id, 0)) > 0
    ]


async def _refunded_of(payment: Payment) -> int:
    """What pending and succeeded refunds take from `payment` (each refund row says its payment in `lines`
    only implicitly: refunds of an order belong to its paying payment unless made for another one)."""
    refunds = await Refund.filter(
        order_id=payment.order_id,  # type: ignore[attr-defined]
        status__in=[RefundStatus.PENDING, RefundStatus.SUCCEEDED],
    )
    total = 0
    for refund in refunds:
        if await _payment_of(refund) == payment.id:
            total += refund.amount
    return total


async def _payment_of(refund: Refund) -> int | None:
    """Which payment a refund takes money from: the one it names, else (rows from before refunds named it) the
    extra payment its reason names, else the order's."""
    named: int | None = refund.payment_id  # type: ignore[attr-defined]
    if named is not None:
        return named
    if refund.reason.startswith(EXTRA_PAYMENT_PREFIX):
        trade = refund.reason[len(EXTRA_PAYMENT_PREFIX) :].split(" ", 1)[0]
        payment = await Payment.get_or_none(out_trade_no=trade)
        return payment.id if payment else None
    order = await Order.get(id=refund.order_id)  # type: ignore[attr-defined]
    payment = await order_payment(order)
    return payment.id if payment else None


# A refund of a payment other than the order's (paid after cancellation, or paid twice) says so in its reason.
EXTRA_PAYMENT_PREFIX = "payment:"


async def refund_payment(refund: Refund) -> Payment | None:
    payment_id = await _payment_of(refund)
    return await Payment.get_or_none(id=payment_id) if payment_id is not None else None


async def returns_order_money(order: Order, payment_id: int) -> bool:
    """Whether refunding payment `payment_id` gives back the order's money (its paying payment, or one the
    plans say paid it too), rather than money that never paid it (paid twice, or after a cancellation)."""
    return any(p.id == payment_id for p in await paying_payments(order))


async def settled_head(refund: Refund) -> Refund | None:
    """The first row of the refund `refund` belongs to, once every row of it has succeeded; else None."""
    part_of: int | None = refund.part_of_id  # type: ignore[attr-defined]
    head = refund if part_of is None else await Refund.get(id=part_of)
    rows = await refund_rows(head)
    return head if all(row.status == RefundStatus.SUCCEEDED for row in rows) else None


async def _in_flight(order_id: int) -> dict[int, int]:
    """Units of each line that pending refunds are returning (parts name the same units as their first row)."""
    pending = await Refund.filter(
        order_id=order_id, status=RefundStatus.PENDING, part_of_id__isnull=True
    ).values_list("lines", flat=True)
    in_flight: dict[int, int] = {}
    for items in pending:
        for item in items or []:
            in_flight[int(item["line_id"])] = in_flight.get(int(item["line_id"]), 0) + int(item["quantity"])
    return in_flight


async def _check_lines(order_id: int, wanted: list[dict[str, int]]) -> list[DomainError]:
    if not wanted:
        return []
    rows = {line.id: line for line in await OrderLine.filter(order_id=order_id)}
    in_flight = await _in_flight(order_id)
    problems = []
    for i, item in enumerate(wanted):
        line = rows.get(item["line_id"])
        if line is None:
            problems.append(DomainError(ErrorCode.NOT_FOUND, "No such line in this order", f"lines.{i}"))
            continue
        left = line.quantity - line.refunded_quantity - in_flight.get(line.id, 0)
        if item["quantity"] > left:
            problems.append(
                DomainError(
                    ErrorCode.REFUND_EXCEEDS_PAID,
                    f"At most {left} of this line can be refunded",
                    f"lines.{i}",
                )
            )
    return problems


async def apply(refund: Refund) -> None:
    """Ask WeChat Pay to refund `refund` (again, while pending: WeChat refunds one out_refund_no once)."""
    payment = await refund_payment(refund)
    if payment is None:
        raise DomainError(ErrorCode.REFUND_NOT_ALLOWED, "The refunded payment is gone", "orderId")
    try:
        result = await call_pay(
            lambda c: c.refund.apply(
                total_fee=payment.amount,
                refund_fee=refund.amount,
                out_refund_no=refund.out_refund_no,
                out_trade_no=payment.out_trade_no,
                refund_desc=refund.reason[:_REASON_MAX] or None,
                notify_url=notify_url(REFUND_NOTIFY_PATH),
            )
        )
    except DomainError as exc:
        if exc.code == ErrorCode.REFUND_FAILED:
            await Refund.filter(id=refund.id, status=RefundStatus.PENDING).update(status=RefundStatus.FAILED)
            refund.status = RefundStatus.FAILED
            log.warning("refund %s refused by WeChat Pay", refund.out_refund_no)
        raise
    refund_id = result.get("refund_id")
    if isinstance(refund_id, str) and refund_id and not refund.refund_id:
        await Refund.filter(id=refund.id, refund_id__isnull=True).update(refund_id=refund_id)
        refund.refund_id = refund_id
