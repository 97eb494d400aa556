"""Payment plans: what an order is paid in. Most orders are paid in one payment (FULL); a plan registered by a
higher domain (marketing's presale) can split an order into a DEPOSIT and a BALANCE, two WeChat Pay payments.

Payments asks the plans (`amount_due`) what to charge now, and prepay makes a Payment of that stage and
amount; the orders domain's settlement asks them (`settle_deposit`) to record a paid deposit; refunds ask them
(`earlier_payments`) which payments besides the paying one an order's money is in. A plan never moves an order
to PAID: the BALANCE (or FULL) payment does that through the state machine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from models import Order, Payment, PaymentStage


@dataclass(frozen=True)
class Due:
    """What to charge for an order now: the stage of the payment and its amount in fen."""

    stage: PaymentStage
    amount: int


@dataclass(frozen=True)
class PaymentPlan:
    """`due(order)` answers None for an order the plan does not split, a Due, or raises DomainError
    (ORDER_NOT_PAYABLE) when nothing can be paid now (e.g. before the balance window). `deposit_paid(order,
    payment)` records a succeeded DEPOSIT payment, idempotently; False when the order cannot take it (then the
    money goes back)."""

    due: Callable[[Order], Awaitable[Due | None]]
    deposit_paid: Callable[[Order, Payment], Awaitable[bool]]
    # The order line campaign kind (e.g. "PRESALE") an order needs for this plan to split it; None: any order.
    campaign_kind: str | None = None
    # `earlier_payments(order)`: the ids of the payments that paid the order before the one that made it PAID
    # (a presale's deposit, once the balance is paid); their money is the order's, refunded after the last one's.
    earlier_payments: Callable[[Order], Awaitable[list[int]]] | None = None


_plans: list[PaymentPlan] = []


def register_payment_plan(plan: PaymentPlan) -> None:
    _plans.append(plan)


async def amount_due(order: Order, campaign_kinds: frozenset[str] | None = None) -> Due:
    """The payment to ask for now: a plan's split, or the whole payable. `campaign_kinds`, when the caller
    knows them, are the campaign kinds of the order's lines: plans for other kinds are not asked."""
    for plan in _plans:
        if (
            campaign_kinds is not None
            and plan.campaign_kind is not None
            and plan.campaign_kind not in campaign_kinds
        ):
            continue
        due = await plan.due(order)
        if due is not None:
            return due
    return Due(PaymentStage.FULL, order.payable)


async def settle_deposit(order: Order, payment: Payment) -> bool:
    """Let the plans record a succeeded DEPOSIT payment; False when none took it."""
    for plan in _plans:
        if await plan.deposit_paid(order, payment):
            return True
    return False


async def earlier_payments(order: Order) -> list[int]:
    """Ids of the payments that paid `order` besides its paying one (see PaymentPlan.earlier_payments)."""
    found: list[int] = []
    for plan in _plans:
        if plan.earlier_payments is not None:
            found.extend(await plan.earlier_payments(order))
    return found
