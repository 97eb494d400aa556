"""Reading orders: a member's own (a request for another member's order is answered NOT_FOUND, exactly as for
an order that does not exist), their lines and events, counts by status."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.functions import Count

from models import (
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
)
from services.errors import DomainError, ErrorCode


@dataclass(frozen=True)
class OrderDetail:
    order: Order
    lines: list[OrderLine]
    events: list[OrderEvent]


# --- Reading -------------------------------------------------------------------------------------------------


async def owned_order(member_id: int, order_id: int) -> Order:
    order = await Order.get_or_none(id=order_id, member_id=member_id)
    if order is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such order", "id")
    return order


async def order_detail(order_id: int, member_id: int | None = None) -> OrderDetail | None:
    """An order with its lines and timeline; with `member_id`, only if it is that member's."""
    query = Order.filter(id=order_id)
    if member_id is not None:
        query = query.filter(member_id=member_id)
    order = await query.first()
    if order is None:
        return None
    lines = list(await OrderLine.filter(order_id=order_id).order_by("id"))
    events = list(await OrderEvent.filter(order_id=order_id).order_by("id"))
    return OrderDetail(order, lines, events)


async def with_lines(orders: list[Order]) -> dict[int, list[OrderLine]]:
    """The lines of a page of orders, in one query."""
    by_order: dict[int, list[OrderLine]] = {o.id: [] for o in orders}
    if orders:
        for line in await OrderLine.filter(order_id__in=list(by_order)).order_by("order_id", "id"):
            by_order[line.order_id].append(line)  # type: ignore[attr-defined]
    return by_order


async def my_orders(
    member_id: int, status: OrderStatus | None, offset: int, limit: int
) -> tuple[list[Order], bool]:
    """One page of a member's orders, newest first, and whether more follow."""
    query = Order.filter(member_id=member_id)
    if status is not None:
        query = query.filter(status=status)
    rows = list(await query.order_by("-created_at", "-id").offset(offset).limit(limit + 1))
    return rows[:limit], len(rows) > limit


async def count_orders(member_id: int, status: OrderStatus | None) -> int:
    query = Order.filter(member_id=member_id)
    if status is not None:
        query = query.filter(status=status)
    return await query.count()


async def status_counts(member_id: int) -> dict[str, int]:
    """How many of the member's orders are in each status (one grouped query), for the tab badges."""
    rows = (
        await Order.filter(member_id=member_id)
        .annotate(n=Count("id"))
        .group_by("status")
        .values_list("status", "n")
    )
    counts = {s.value: 0 for s in OrderStatus}
    for status, n in rows:
        counts[str(status)] = int(n)
    return counts
