"""What settled money means for an order: a succeeded payment pays it, a succeeded refund returns money, stock
and points to it and may finish its after-sale or cancel it.

Registered with the payments domain (`notifications.register_settlement`), which verifies and records WeChat
Pay's notifications and calls in here; payments never imports orders.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tortoise.expressions import F

from models import (
    ActorKind,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStage,
    PointsReason,
    Product,
    Refund,
    Sku,
)
from services.catalog.events import StockChange
from services.errors import DomainError
from services.loyalty import levels
from services.loyalty.points import apply_points_change, points_entry
from services.orders import after_sales
from services.orders import states as order_states
from services.payments import notifications, plans
from services.payments.refunds import (
    EXTRA_PAYMENT_PREFIX,
    line_refund,
    refund_payment,
    returns_order_money,
    settled_head,
    start_refund,
)

log = logging.getLogger("lianmall.settlement")

# What higher domains do when a refund of an order succeeds: `hook(order, refund, wholly)`, inside the
# transaction that makes the refund SUCCEEDED (the order locked); `wholly` says whether the order's goods are
# now refunded in full (every unit of every line that cost something, or all the money paid).
RefundHook = Callable[[Order, Refund, bool], Awaitable[None]]
_refund_hooks: list[RefundHook] = []


def register_refund_hook(hook: RefundHook) -> None:
    """Have `hook` run for every succeeded refund of an order (once per refund; see RefundHook)."""
    if hook not in _refund_hooks:
        _refund_hooks.append(hook)


async def settle_payment(payment_id: int) -> None:
    """The order of a succeeded payment is paid by it; money that cannot pay the order goes back."""
    payment = await Payment.get(id=payment_id)
    order = await Order.get(id=payment.order_id)  # type: ignore[attr-defined]
    if payment.stage == PaymentStage.DEPOSIT:
        # The first of two payments (a presale's deposit): its plan records it; the order waits for the balance.
        if await plans.settle_deposit(order, payment):
            return
    elif order.status == OrderStatus.PENDING_PAYMENT:
        # A BALANCE payment completes what the deposit (already in paid_amount) began.
        paid = payment.amount + (order.paid_amount if payment.stage == PaymentStage.BALANCE else 0)
        try:
            order = await order_states.transition(
                order.id,
                OrderStatus.PAID,
                actor=ActorKind.WECHAT,
                reason=f"WeChat Pay {payment.transaction_id}",
                paid_amount=paid,
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


async def return_to_order(order: Order, refund: Refund, stock: list[StockChange]) -> None:
    before = order.refunded_amount
    after = before + refund.amount
    paid = order.paid_amount or order.payable
    full = after >= paid
    await Order.filter(id=order.id).update(refunded_amount=F("refunded_amount") + refund.amount)

    lines = {line.id: line for line in await OrderLine.filter(order_id=order.id).order_by("id")}
    items = [(lines[i["line_id"]], int(i["quantity"])) for i in refund.lines or [] if i["line_id"] in lines]
    # A part of a refund spanning two payments (services.payments.refunds) returns money only: its first row
    # returns the units it names.
    money_only = refund.part_of_id is not None  # type: ignore[attr-defined]
    if not items and full and not money_only:
        items = [(line, line.quantity - line.refunded_quantity) for line in lines.values()]
        items = [(line, q) for line, q in items if q > 0]
    # Each line's share of the refund follows the cash it paid (its snapshot, after discounts and points).
    weights = [line_refund(order, line, q) for line, q in items]
    if not any(weights):
        weights = [line.unit_price * q for line, q in items]
    total_weight = sum(weights) or 1
    shared = 0
    refunded = {line.id: line.refunded_quantity for line in lines.values()}
    for index, ((line, quantity), weight) in enumerate(zip(items, weights, strict=True)):
        share = refund.amount - shared if index == len(items) - 1 else refund.amount * weight // total_weight
        shared += share
        units = 0 if money_only else quantity
        refunded[line.id] += units
        await OrderLine.filter(id=line.id).update(
            refunded_quantity=F("refunded_quantity") + units, refunded_amount=F("refunded_amount") + share
        )
    # Free lines (gifts) need not come back for the goods to count as refunded in full.
    wholly = full or all(refunded[line.id] >= line.quantity for line in lines.values() if line.line_total > 0)

    # Stock goes back only while nothing has left the warehouse.
    if (
        not money_only
        and order.shipped_at is None
        and order.status in (OrderStatus.PAID, OrderStatus.CANCELLED)
    ):
        for line, quantity in items:
            await Sku.filter(id=line.sku_id).update(stock=F("stock") + quantity)
            await Product.filter(id=line.product_id).update(total_stock=F("total_stock") + quantity)
        levels = dict(await Sku.filter(id__in=[line.sku_id for line, _ in items]).values_list("id", "stock"))
        stock.extend(
            StockChange(line.product_id, line.sku_id, int(levels.get(line.sku_id, 0)), delta=quantity)
            for line, quantity in items
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
    for hook in _refund_hooks:
        await hook(order, refund, wholly)


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


async def complete_refund(refund_id: int) -> None:
    """Idempotent follow-ups of a succeeded refund: the after-sale is done; a wholly refunded order that was
    not shipped is cancelled."""
    # A refund in several WeChat refunds (one per payment) is done when the last of them is.
    refund = await settled_head(await Refund.get(id=refund_id))
    if refund is None:
        return
    order = await Order.get(id=refund.order_id)  # type: ignore[attr-defined]
    if refund.after_sale_id is not None:  # type: ignore[attr-defined]
        await after_sales.mark_refunded(refund.after_sale_id)  # type: ignore[attr-defined]
    payment = await refund_payment(refund)
    if (
        payment is not None
        and await returns_order_money(order, payment.id)
        and order.status == OrderStatus.PAID
        and order.refunded_amount >= (order.paid_amount or order.payable)
    ):
        await order_states.transition(
            order.id,
            OrderStatus.CANCELLED,
            actor=ActorKind.WECHAT,
            reason=f"refunded in full ({refund.out_refund_no})",
        )


notifications.register_settlement(
    notifications.Settlement(
        payment_succeeded=settle_payment, refund_succeeded=return_to_order, refund_completed=complete_refund
    )
)
