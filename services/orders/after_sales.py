"""After-sales (售后): the member asks for a refund, or a return and refund, of some lines of an order.

Its own state machine, one table like the order's:
REQUESTED → APPROVED | REJECTED | CLOSED; APPROVED → RETURNING (return and refund: the member sends the goods
back) | REFUNDING (refund only); RETURNING → REFUNDING (staff received the goods); REFUNDING → REFUNDED (the
refund notification, through `mark_refunded`). Each change is a guarded update and is recorded on the order's
timeline. Entering REFUNDING starts the WeChat refund (services.payments.refunds) after the commit.

Requests are open from payment until the after-sale window closes (7 days after receipt); an order has at most
one open after-sale; the amount is the paid share of the chosen quantities, never more than is left unrefunded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from infra.clock import now
from infra.transactions import retry_when_busy
from models import (
    ActorKind,
    AfterSale,
    AfterSaleKind,
    AfterSaleStatus,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
)
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.payments import refunds

log = logging.getLogger("lianmall.after_sales")

A = AfterSaleStatus

TRANSITIONS: Mapping[AfterSaleStatus, frozenset[AfterSaleStatus]] = {
    A.REQUESTED: frozenset({A.APPROVED, A.REJECTED, A.CLOSED}),
    A.APPROVED: frozenset({A.RETURNING, A.REFUNDING}),
    A.RETURNING: frozenset({A.REFUNDING}),
    A.REFUNDING: frozenset({A.REFUNDED}),
    A.REFUNDED: frozenset(),
    A.REJECTED: frozenset(),
    A.CLOSED: frozenset(),
}

# Edges only one kind of after-sale may take.
KIND_OF_EDGE: Mapping[tuple[AfterSaleStatus, AfterSaleStatus], AfterSaleKind] = {
    (A.APPROVED, A.RETURNING): AfterSaleKind.RETURN_REFUND,
    (A.APPROVED, A.REFUNDING): AfterSaleKind.REFUND_ONLY,
}

OPEN = frozenset({A.REQUESTED, A.APPROVED, A.RETURNING, A.REFUNDING})
# Order statuses in which an after-sale may be asked for, by kind.
ORDER_STATUSES: Mapping[AfterSaleKind, frozenset[OrderStatus]] = {
    AfterSaleKind.REFUND_ONLY: frozenset({OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.RECEIVED}),
    AfterSaleKind.RETURN_REFUND: frozenset({OrderStatus.SHIPPED, OrderStatus.RECEIVED}),
}
REASON_MAX = 200


@dataclass(frozen=True)
class LineRequest:
    line_id: int
    quantity: int


# --- The machine -------------------------------------------------------------------------------------------


def allowed(after_sale: AfterSale, to: AfterSaleStatus) -> bool:
    if to not in TRANSITIONS.get(after_sale.status, frozenset()):
        return False
    kind = KIND_OF_EDGE.get((after_sale.status, to))
    return kind is None or kind == after_sale.kind


async def _move(
    after_sale_id: int,
    to: AfterSaleStatus,
    *,
    actor: ActorKind,
    actor_id: int | None,
    note: str = "",
    member_id: int | None = None,
    **fields: Any,
) -> tuple[AfterSale, bool]:
    async def attempt() -> tuple[AfterSale, bool]:
        async with in_transaction():
            query = AfterSale.filter(id=after_sale_id)
            if member_id is not None:
                query = query.filter(member_id=member_id)
            current = await query.first()
            if current is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No such after-sale", "id")
            if current.status == to:
                return current, False
            if not allowed(current, to):
                raise _conflict(current, to)
            changed = await AfterSale.filter(id=after_sale_id, status=current.status).update(
                status=to, **fields
            )
            if not changed:
                latest = await AfterSale.get(id=after_sale_id)
                if latest.status == to:
                    return latest, False
                raise _conflict(latest, to)
            order_status = await Order.filter(id=current.order_id).first().values_list("status", flat=True)  # type: ignore[attr-defined]
            await OrderEvent.create(
                order_id=current.order_id,  # type: ignore[attr-defined]
                from_status=str(order_status),
                to_status=str(order_status),
                actor=actor,
                actor_id=actor_id,
                reason=f"售后 {after_sale_id}: {current.status.value} → {to.value}"
                + (f" ({note})" if note else ""),
            )
            return await AfterSale.get(id=after_sale_id), True

    after_sale, moved = await retry_when_busy(attempt)
    if moved and to == A.REFUNDING:
        await _start_refund(after_sale)
    return after_sale, moved


def _conflict(after_sale: AfterSale, to: AfterSaleStatus) -> DomainError:
    return DomainError(
        ErrorCode.CONFLICT, f"The after-sale is {after_sale.status.value}; it cannot become {to.value}", "id"
    )


async def _start_refund(after_sale: AfterSale) -> None:
    """Ask WeChat Pay for the money back (services.payments.refunds); its notification calls `mark_refunded`."""
    try:
        await refunds.start_refund(
            after_sale.order_id,  # type: ignore[attr-defined]
            after_sale.amount,
            list(after_sale.lines),
            after_sale.reason or "售后退款",
            after_sale_id=after_sale.id,
        )
    except Exception:
        # The after-sale stays REFUNDING and visible to staff; the refund can be started again.
        log.exception("starting the refund of after-sale %s failed", after_sale.id)


# --- Member ------------------------------------------------------------------------------------------------


def _line_problems(requested: list[LineRequest], lines: dict[int, OrderLine]) -> list[DomainError]:
    problems: list[DomainError] = []
    if not requested:
        problems.append(DomainError(ErrorCode.BAD_USER_INPUT, "Choose at least one line", "input.lines"))
    seen: set[int] = set()
    for i, row in enumerate(requested):
        line = lines.get(row.line_id)
        if line is None or row.line_id in seen:
            problems.append(
                DomainError(
                    ErrorCode.BAD_USER_INPUT,
                    "Not a line of this order (or twice)",
                    f"input.lines[{i}].lineId",
                )
            )
            continue
        seen.add(row.line_id)
        left = line.quantity - line.refunded_quantity
        if not 1 <= row.quantity <= left:
            problems.append(
                DomainError(
                    ErrorCode.BAD_USER_INPUT, f"1 to {left} of this line", f"input.lines[{i}].quantity"
                )
            )
    return problems


def refund_amount(order: Order, requested: list[LineRequest], lines: dict[int, OrderLine]) -> int:
    """The cash the requested quantities paid (each line's snapshot share after discounts and points, without
    shipping; services.payments.refunds.line_refund), capped at what is left unrefunded."""
    amount = sum(refunds.line_refund(order, lines[row.line_id], row.quantity) for row in requested)
    return min(amount, order.paid_amount - order.refunded_amount)


async def request_after_sale(
    member_id: int, order_id: int, kind: AfterSaleKind, requested: list[LineRequest], reason: str
) -> AfterSale:
    """Ask for a refund or a return of some lines. Raises NOT_FOUND, BAD_USER_INPUT (lines, quantities,
    reason), CONFLICT (order not paid, window closed, another after-sale open, nothing left to refund)."""
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"At most {REASON_MAX} characters", "input.reason")

    async def attempt() -> AfterSale:
        async with in_transaction():
            order = await Order.filter(id=order_id, member_id=member_id).select_for_update().first()
            if order is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No such order", "input.orderId")
            if order.status not in ORDER_STATUSES[kind]:
                raise DomainError(
                    ErrorCode.CONFLICT,
                    f"An order that is {order.status.value} takes no {kind.value}",
                    "input.orderId",
                )
            if order.after_sale_deadline is not None and now() > order.after_sale_deadline:
                raise DomainError(
                    ErrorCode.CONFLICT, "The after-sale window of this order has closed", "input.orderId"
                )
            if await AfterSale.filter(order_id=order_id, status__in=list(OPEN)).exists():
                raise DomainError(
                    ErrorCode.CONFLICT, "This order already has an open after-sale", "input.orderId"
                )
            lines = {line.id: line for line in await OrderLine.filter(order_id=order_id)}
            problems = _line_problems(requested, lines)
            if problems:
                raise ValidationErrors(problems)
            amount = refund_amount(order, requested, lines)
            if amount <= 0:
                raise DomainError(
                    ErrorCode.CONFLICT, "Nothing is left to refund on this order", "input.lines"
                )
            after_sale = await AfterSale.create(
                order_id=order_id,
                member_id=member_id,
                kind=kind,
                reason=reason,
                lines=[{"line_id": r.line_id, "quantity": r.quantity} for r in requested],
                amount=amount,
            )
            await OrderEvent.create(
                order_id=order_id,
                from_status=order.status.value,
                to_status=order.status.value,
                actor=ActorKind.MEMBER,
                actor_id=member_id,
                reason=f"售后 {after_sale.id}: {kind.value} {A.REQUESTED.value}",
            )
            return after_sale

    return await retry_when_busy(attempt)


async def submit_return(member_id: int, after_sale_id: int, carrier: str, tracking_number: str) -> AfterSale:
    """The member has sent the goods back (return and refund only)."""
    carrier, tracking_number = carrier.strip(), tracking_number.strip()
    if not 1 <= len(carrier) <= 32:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "The carrier is 1 to 32 characters", "carrier")
    if not 1 <= len(tracking_number) <= 64:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, "The tracking number is 1 to 64 characters", "trackingNumber"
        )
    after_sale, _ = await _move(
        after_sale_id,
        A.RETURNING,
        actor=ActorKind.MEMBER,
        actor_id=member_id,
        member_id=member_id,
        note=f"{carrier} {tracking_number}",
        return_carrier=carrier,
        return_tracking_number=tracking_number,
    )
    return after_sale


async def cancel_after_sale(member_id: int, after_sale_id: int) -> AfterSale:
    after_sale, _ = await _move(
        after_sale_id, A.CLOSED, actor=ActorKind.MEMBER, actor_id=member_id, member_id=member_id
    )
    return after_sale


# --- Staff -------------------------------------------------------------------------------------------------


async def approve(after_sale_id: int, staff_id: int | None) -> AfterSale:
    """Approve; a refund-only after-sale goes straight on to refunding."""
    after_sale, _ = await _move(after_sale_id, A.APPROVED, actor=ActorKind.STAFF, actor_id=staff_id)
    if after_sale.kind == AfterSaleKind.REFUND_ONLY and after_sale.status == A.APPROVED:
        after_sale, _ = await _move(after_sale_id, A.REFUNDING, actor=ActorKind.STAFF, actor_id=staff_id)
    return after_sale


async def reject(after_sale_id: int, staff_id: int | None, reason: str) -> AfterSale:
    reason = reason.strip()
    if not reason:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "Say why, for the member", "reason")
    if len(reason) > REASON_MAX:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"At most {REASON_MAX} characters", "reason")
    after_sale, _ = await _move(
        after_sale_id, A.REJECTED, actor=ActorKind.STAFF, actor_id=staff_id, note=reason, staff_note=reason
    )
    return after_sale


async def confirm_return(after_sale_id: int, staff_id: int | None) -> AfterSale:
    """The returned goods arrived: refund."""
    after_sale, _ = await _move(after_sale_id, A.REFUNDING, actor=ActorKind.STAFF, actor_id=staff_id)
    return after_sale


async def mark_refunded(after_sale_id: int) -> AfterSale:
    """The refund succeeded (called by the refund notification); idempotent."""
    after_sale, _ = await _move(after_sale_id, A.REFUNDED, actor=ActorKind.WECHAT, actor_id=None)
    return after_sale


async def after_sales_of(order_id: int) -> list[AfterSale]:
    return list(await AfterSale.filter(order_id=order_id).order_by("id"))
