"""The order state machine: one table of allowed transitions, one table of what entering a status does.

`transition` is the only way an order's status changes. It runs its own transaction: a guarded update
(`status = <from>` in the WHERE clause) so that two processes racing for the same transition cannot both win,
an `OrderEvent` row recording who did it and why, and the entry hook of the new status. What others must hear
(the order's bus channel, stock broadcasts, the member's level cache) is announced after the commit.

A transition to the status the order is already in returns the order unchanged: callers (a payment
notification delivered twice, two sweepers) may repeat themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from infra.clock import now
from infra.runtime import current_runtime
from infra.settings import get_settings
from infra.transactions import retry_when_busy
from models import ActorKind, Order, OrderEvent, OrderLine, OrderStatus, PointsReason, Product, Sku
from services.catalog.events import StockChange, stock_changed
from services.errors import DomainError, ErrorCode
from services.loyalty import levels
from services.loyalty.points import apply_points_change
from services.members import viewer

log = logging.getLogger("lianmall.orders")

S = OrderStatus

TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.SHIPPED, S.CANCELLED}),  # PAID → CANCELLED: a full refund before shipping
    S.SHIPPED: frozenset({S.RECEIVED}),
    S.RECEIVED: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}

# The column stamped with the time an order enters each status.
STAMPS: Mapping[OrderStatus, str] = {
    S.PAID: "paid_at",
    S.SHIPPED: "shipped_at",
    S.RECEIVED: "received_at",
    S.COMPLETED: "completed_at",
    S.CANCELLED: "cancelled_at",
}

AFTER_SALE_DAYS = 7
_REASON_MAX = 200


def auto_receive_days() -> int:
    return get_settings().order_auto_receive_days


def allowed(from_status: OrderStatus, to: OrderStatus) -> bool:
    return to in TRANSITIONS.get(from_status, frozenset())


@dataclass
class Announcements:
    """What a transition tells the rest of the system once its transaction has committed."""

    stock_changes: list[StockChange] = field(default_factory=list)
    growth_member_id: int | None = None
    # Work a hook wants done only once the transition is committed (e.g. giving units back to a Redis counter:
    # done inside the transaction, a rollback would leave Redis believing in units the database never freed).
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


# --- Entering a status ---------------------------------------------------------------------------------------


def _shipped_fields(at: datetime) -> dict[str, Any]:
    return {"auto_receive_at": at + timedelta(days=auto_receive_days())}


def _received_fields(at: datetime) -> dict[str, Any]:
    return {"after_sale_deadline": at + timedelta(days=AFTER_SALE_DAYS)}


# Columns set with the status, in the guarded update itself.
ENTRY_FIELDS: Mapping[OrderStatus, Callable[[datetime], dict[str, Any]]] = {
    S.SHIPPED: _shipped_fields,
    S.RECEIVED: _received_fields,
}


async def _release(order: Order, from_status: OrderStatus, news: Announcements) -> None:
    """An unpaid order is cancelled: its stock goes back on sale and its points back to the member.

    A paid order is cancelled only by its full refund, which returns stock and points itself (services.payments.refunds).
    """
    if from_status != S.PENDING_PAYMENT:
        return
    lines = await OrderLine.filter(order_id=order.id).order_by("id")
    for line in lines:
        await Sku.filter(id=line.sku_id).update(stock=F("stock") + line.quantity)
        await Product.filter(id=line.product_id).update(total_stock=F("total_stock") + line.quantity)
    stocks = dict(await Sku.filter(id__in=[line.sku_id for line in lines]).values_list("id", "stock"))
    news.stock_changes.extend(
        StockChange(
            product_id=line.product_id,
            sku_id=line.sku_id,
            stock=int(stocks.get(line.sku_id, 0)),
            delta=line.quantity,
        )
        for line in lines
    )
    if order.points_used > 0:
        await apply_points_change(
            order.member_id,  # type: ignore[attr-defined]
            order.points_used,
            PointsReason.REFUND,
            f"order:{order.number}:cancel",
            note=f"订单 {order.number} 取消",
        )


async def _reward(order: Order, from_status: OrderStatus, news: Announcements) -> None:
    """A paid order earns growth and purchase points: one of each per whole yuan paid."""
    yuan = (order.paid_amount or order.payable) // 100
    if yuan <= 0:
        return
    member_id: int = order.member_id  # type: ignore[attr-defined]
    # Inside the transaction: the guarded update lets exactly one caller get here for this order.
    await levels.add_growth(member_id, yuan)
    await apply_points_change(
        member_id, yuan, PointsReason.PURCHASE, f"order:{order.number}:purchase", note=f"订单 {order.number}"
    )
    news.growth_member_id = member_id


EntryHook = Callable[[Order, OrderStatus, Announcements], Awaitable[None]]

# What entering each status does inside the transition's transaction.
ENTRY_HOOKS: Mapping[OrderStatus, EntryHook] = {
    S.CANCELLED: _release,
    S.PAID: _reward,
}

# Higher domains (coupons, campaigns) plug in here instead of being imported: hooks run after the built-in one,
# guards before the status changes; both inside the transition's transaction, so a guard's DomainError or a
# hook's failure leaves the order as it was.
TransitionGuard = Callable[[Order, OrderStatus], Awaitable[None]]
_extra_hooks: dict[OrderStatus, list[EntryHook]] = {}
_guards: dict[OrderStatus, list[TransitionGuard]] = {}


def register_entry_hook(status: OrderStatus, hook: EntryHook) -> None:
    """Run `hook(order, from_status, announcements)` whenever an order enters `status`."""
    _extra_hooks.setdefault(status, []).append(hook)


def entry_hooks(status: OrderStatus) -> tuple[EntryHook, ...]:
    """The hooks higher domains registered for entering `status`."""
    return tuple(_extra_hooks.get(status, ()))


def register_transition_guard(to: OrderStatus, guard: TransitionGuard) -> None:
    """Let `guard(order, to)` refuse (by raising DomainError) a move of an order into `to`."""
    _guards.setdefault(to, []).append(guard)


# --- The transition ----------------------------------------------------------------------------------------


def order_channel(order_id: int) -> str:
    return f"order:{order_id}"


async def transition(
    order_id: int,
    to: OrderStatus,
    *,
    actor: ActorKind,
    actor_id: int | None = None,
    reason: str = "",
    **fields: Any,
) -> Order:
    """`move` without saying whether this call made the change."""
    order, _ = await move(order_id, to, actor=actor, actor_id=actor_id, reason=reason, **fields)
    return order


async def move(
    order_id: int,
    to: OrderStatus,
    *,
    actor: ActorKind,
    actor_id: int | None = None,
    reason: str = "",
    **fields: Any,
) -> tuple[Order, bool]:
    """Move order `order_id` to `to`, recorded as done by `actor` (`actor_id`) for `reason`.

    `fields` are further columns set with the status (e.g. `paid_amount`, `transaction_id`, `carrier`).
    Returns the order as it is afterwards and whether this call moved it; an order already in `to` is
    returned unchanged (False). Raises DomainError
    NOT_FOUND for an unknown order and CONFLICT when `to` is not reachable from the order's status.
    """
    reason = reason[:_REASON_MAX]
    news = Announcements()

    async def attempt() -> tuple[Order, bool]:
        news.stock_changes.clear()
        news.growth_member_id = None
        news.after_commit.clear()
        async with in_transaction():
            current = await Order.get_or_none(id=order_id)
            if current is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No such order", "id")
            if current.status == to:
                return current, False
            if not allowed(current.status, to):
                raise _conflict(current.status, to)
            for guard in _guards.get(to, ()):
                await guard(current, to)
            at = now()
            values = {"status": to, STAMPS[to]: at, **ENTRY_FIELDS.get(to, _no_fields)(at), **fields}
            if to == S.CANCELLED and "cancel_reason" not in fields:
                values["cancel_reason"] = reason
            changed = await Order.filter(id=order_id, status=current.status).update(**values)
            if not changed:
                # Another caller moved it first (PostgreSQL: after our update waited for its commit).
                latest = await Order.get(id=order_id)
                if latest.status == to:
                    return latest, False
                raise _conflict(latest.status, to)
            await OrderEvent.create(
                order_id=order_id,
                from_status=current.status.value,
                to_status=to.value,
                actor=actor,
                actor_id=actor_id,
                reason=reason,
            )
            order = await Order.get(id=order_id)
            hook = ENTRY_HOOKS.get(to)
            if hook is not None:
                await hook(order, current.status, news)
            for extra in _extra_hooks.get(to, ()):
                await extra(order, current.status, news)
            return order, True

    order, moved = await retry_when_busy(attempt)
    if moved:
        await _announce(order, news)
    return order, moved


def _no_fields(_: datetime) -> dict[str, Any]:
    return {}


def _conflict(status: OrderStatus, to: OrderStatus) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, f"The order is {status.value}; it cannot become {to.value}", "id")


async def _announce(order: Order, news: Announcements) -> None:
    for work in news.after_commit:
        await _quietly(work())
    if news.growth_member_id is not None:
        await _quietly(viewer.forget_member_snapshot(news.growth_member_id))
    try:
        runtime = current_runtime()
    except RuntimeError:
        return  # the CLI, or a script without a runtime: nobody is listening
    await _quietly(
        runtime.bus.publish(order_channel(order.id), {"orderId": order.id, "status": order.status.value})
    )
    if news.stock_changes:
        await _quietly(stock_changed(news.stock_changes))


async def _quietly(announcement: Awaitable[None]) -> None:
    # The transition has committed; a Redis hiccup must not turn it into an error for the caller.
    try:
        await announcement
    except Exception:
        log.exception("announcing an order transition failed")
