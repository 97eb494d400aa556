"""Staff refunds over GraphQL: `refundOrder` (REFUND_APPROVE, audited) and `orderRefunds` (ORDER_READ).

`refundOrder` is a thin translation to services.payments.refunds.start_refund, keyed by the caller's idempotency key: the
same key for the same order finds the same refund (and asks WeChat Pay again while it is pending), so a retried
click never refunds twice. Money goes back when WeChat's refund notification arrives
(services.payments.notifications), which also returns stock and points and takes back what paying earned.
"""

from __future__ import annotations

import re

import strawberry
from strawberry.types import Info

from models import Order, OrderLine, RefundStatus
from models import Payment as PaymentModel
from models import Refund as RefundModel
from resolvers.access import staff_mutation
from resolvers.node import node_type
from resolvers.orders import member_id_of
from resolvers.payloads import payload_mutation
from schema.catalog_inputs import user_errors
from schema.context import Context
from schema.node import decode_id
from schema.orders import Order as OrderType
from schema.payments import Payment, Refund, RefundOrderInput, RefundOrderPayload, SandboxPayPayload
from services.access.permissions import Permission, holds, require_permission
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.payments.refunds import (
    EXTRA_PAYMENT_PREFIX,
    line_refund,
    refund_number,
    refund_total,
    start_refund,
)
from services.payments.sandbox import sandbox_pay

PaymentInfo = Info[Context, None]

KEY_MAX = 64
REASON_MAX = 200
_LINE_FIELD = re.compile(r"^lines\.(\d+)$")


def _staff_key(idempotency_key: str) -> str:
    key = idempotency_key.strip()
    if not 1 <= len(key) <= KEY_MAX:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"The idempotency key is 1 to {KEY_MAX} characters", "idempotencyKey"
        )
    return f"staff:{key}"


def _wanted_lines(input: RefundOrderInput) -> list[dict[str, int]]:
    problems: list[DomainError] = []
    wanted: list[dict[str, int]] = []
    seen: set[int] = set()
    for i, row in enumerate(input.lines):
        try:
            line_id = decode_id(row.line_id, "OrderLine", f"input.lines[{i}].lineId")
        except DomainError as exc:
            problems.append(exc)
            continue
        if line_id in seen:
            problems.append(
                DomainError(ErrorCode.BAD_USER_INPUT, "This line is listed twice", f"input.lines[{i}].lineId")
            )
        elif row.quantity <= 0:
            problems.append(
                DomainError(
                    ErrorCode.BAD_USER_INPUT,
                    "A refunded quantity is at least 1",
                    f"input.lines[{i}].quantity",
                )
            )
        seen.add(line_id)
        wanted.append({"line_id": line_id, "quantity": row.quantity})
    if problems:
        raise ValidationErrors(problems)
    return wanted


async def _amount(order: Order, amount: int | None, wanted: list[dict[str, int]], number: str) -> int:
    """The fen to refund: as given, else the lines' share of what was paid, else all not yet refunded."""
    existing = await RefundModel.get_or_none(out_refund_no=number)
    if existing is not None and amount is None:
        return await refund_total(existing)  # the same request again: the same refund (its parts included)
    if amount is not None:
        if amount <= 0:
            raise DomainError(ErrorCode.BAD_USER_INPUT, "A refund is at least 1 fen", "input.amount")
        return amount
    paid = order.paid_amount
    if paid <= 0:
        raise DomainError(ErrorCode.REFUND_NOT_ALLOWED, "This order is not paid", "orderId")
    pending = await RefundModel.filter(order_id=order.id, status=RefundStatus.PENDING).exclude(
        reason__startswith=EXTRA_PAYMENT_PREFIX
    )
    left = paid - order.refunded_amount - sum(r.amount for r in pending)
    if wanted:
        rows = {line.id: line for line in await OrderLine.filter(order_id=order.id)}
        share = sum(
            line_refund(order, rows[w["line_id"]], w["quantity"]) for w in wanted if w["line_id"] in rows
        )
        left = min(left, share)
    if left <= 0:
        raise DomainError(ErrorCode.REFUND_EXCEEDS_PAID, "Nothing is left to refund", "input.amount")
    return left


def _in_input(error: DomainError, wanted: list[dict[str, int]]) -> DomainError:
    """A service error's field as a path in this mutation's arguments (the service sorts lines by id)."""
    field = error.field
    if field == "amount":
        field = "input.amount"
    elif field == "lines":
        field = "input.lines"
    elif field is not None and (match := _LINE_FIELD.match(field)):
        ordered = sorted(w["line_id"] for w in wanted)
        index = int(match.group(1))
        if index < len(ordered):
            position = next(i for i, w in enumerate(wanted) if w["line_id"] == ordered[index])
            field = f"input.lines[{position}]"
    return DomainError(error.code, error.message, field)


def _errors(exc: DomainError, wanted: list[dict[str, int]]) -> list[DomainError]:
    problems = exc.errors if isinstance(exc, ValidationErrors) else [exc]
    return [_in_input(p, wanted) for p in problems]


@staff_mutation(Permission.REFUND_APPROVE, action="refundOrder")
async def refund_order(
    info: PaymentInfo, order_id: strawberry.ID, input: RefundOrderInput, idempotency_key: str
) -> RefundOrderPayload:
    wanted: list[dict[str, int]] = []
    number = ""
    try:
        pk = decode_id(order_id, "Order", "orderId")
        key = _staff_key(idempotency_key)
        reason = input.reason.strip()
        if not reason or len(reason) > REASON_MAX:
            raise DomainError(
                ErrorCode.BAD_USER_INPUT, f"The reason is 1 to {REASON_MAX} characters", "input.reason"
            )
        wanted = _wanted_lines(input)
        order = await Order.get_or_none(id=pk)
        if order is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such order", "orderId")
        number = refund_number(pk, key)
        amount = await _amount(order, input.amount, wanted, number)
        row = await start_refund(pk, amount, wanted, reason, key=key)
    except DomainError as exc:
        errors = user_errors(ValidationErrors(_errors(exc, wanted)))
        # WeChat Pay did not answer (the refund stays pending: the same key, or the sweeper, asks again) or
        # refused it: the refund exists, so say which one.
        made = await RefundModel.get_or_none(out_refund_no=number) if number else None
        shown = made if made is not None and exc.code != ErrorCode.CONFLICT else None
        return RefundOrderPayload(refund=Refund.from_model(shown) if shown else None, errors=errors)
    return RefundOrderPayload(refund=Refund.from_model(row))


@payload_mutation
async def sandbox_pay_order(info: PaymentInfo, order_id: strawberry.ID) -> SandboxPayPayload:
    member_id = member_id_of(info.context.viewer)
    order = await sandbox_pay(member_id, decode_id(order_id, "Order", "orderId"))
    return SandboxPayPayload(order=OrderType.from_model(order))


async def order_refunds(info: PaymentInfo, order_id: strawberry.ID) -> list[Refund]:
    """An order's refunds, oldest first. Needs ORDER_READ."""
    require_permission(info.context.viewer, Permission.ORDER_READ)
    pk = decode_id(order_id, "Order", "orderId")
    return [Refund.from_model(r) for r in await RefundModel.filter(order_id=pk).order_by("id")]


async def order_payments(info: PaymentInfo, order_id: strawberry.ID) -> list[Payment]:
    """An order's payment attempts, oldest first (sandbox ones flagged). Needs ORDER_READ."""
    require_permission(info.context.viewer, Permission.ORDER_READ)
    pk = decode_id(order_id, "Order", "orderId")
    return [Payment.from_model(p) for p in await PaymentModel.filter(order_id=pk).order_by("id")]


# Money records are for staff with ORDER_READ, as in `orderRefunds` and `orderPayments`.
@node_type("Refund")
async def refund_node(context: Context, pk: int) -> Refund | None:
    if not holds(context.viewer, Permission.ORDER_READ):
        return None
    row = await context.rows(RefundModel).load(pk)
    return Refund.from_model(row) if row else None


@node_type("Payment")
async def payment_node(context: Context, pk: int) -> Payment | None:
    if not holds(context.viewer, Permission.ORDER_READ):
        return None
    row = await context.rows(PaymentModel).load(pk)
    return Payment.from_model(row) if row else None


@strawberry.type
class PaymentQuery:
    order_refunds: list[Refund] = strawberry.field(
        resolver=order_refunds, description="An order's refunds, oldest first. Needs ORDER_READ."
    )
    order_payments: list[Payment] = strawberry.field(
        resolver=order_payments,
        description="An order's payment attempts, oldest first; `sandbox` marks those made with the built-in "
        "WeChat sandbox. Needs ORDER_READ.",
    )


@strawberry.type
class PaymentMutation:
    refund_order: RefundOrderPayload = strawberry.mutation(
        resolver=refund_order,
        description="Refund a paid order, in part (by amount and/or lines) or in full, through WeChat Pay. "
        "The same idempotencyKey for the same order never refunds twice. Needs REFUND_APPROVE.",
    )
    sandbox_pay: SandboxPayPayload = strawberry.mutation(
        resolver=sandbox_pay_order,
        description="Built-in WeChat sandbox only (the embedded default without WeChat credentials): pay the "
        "signed-in member's pending order as if in WeChat. The sandbox posts WeChat Pay's signed payment "
        "notification to this server, which settles it as it would a real one. FORBIDDEN elsewhere.",
    )
