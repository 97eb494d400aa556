"""Orders and after-sales over GraphQL: thin translations to services.orders, services.orders.after_sales and the
order's bus channel. Member mutations report DomainErrors in their payload; reads raise them."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from infra.runtime import current_runtime
from models import AfterSale as AfterSaleModel
from models import Order as OrderModel
from models import OrderLine as OrderLineModel
from models import OrderStatus as OrderStatusModel
from resolvers.access import staff_mutation
from resolvers.node import node_type
from resolvers.payloads import payload_mutation
from schema.catalog_inputs import user_errors
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.node import decode_id, encode_id
from schema.orders import (
    AfterSale,
    AfterSaleKind,
    AfterSalePayload,
    AfterSaleRequestInput,
    Order,
    OrderConnection,
    OrderCounts,
    OrderLine,
    OrderPayload,
    OrderShipBatchPayload,
    OrderShipInput,
    OrderShipResult,
    OrderStatus,
    OrderStatusChanged,
    order_counts,
)
from services.access.permissions import Permission, has_permission, holds
from services.catalog.listing import check_page_size
from services.errors import DomainError, ErrorCode
from services.members import tokens as member_tokens
from services.members.viewer import Viewer
from services.orders import after_sales, fulfilment
from services.orders import queries as orders
from services.orders.states import order_channel

OrderInfo = Info[Context, None]


def member_id_of(viewer: Viewer) -> int:
    """The viewing member; UNAUTHENTICATED for a guest, FORBIDDEN for staff and partners."""
    if viewer.member is not None:
        return viewer.member.id
    if viewer.is_anonymous:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in as a member to see your orders")
    raise DomainError(ErrorCode.FORBIDDEN, "Only members have orders")


def _order_pk(id: strawberry.ID, field: str = "id") -> int:
    return decode_id(id, "Order", field)


def _after_sale_pk(id: strawberry.ID) -> int:
    return decode_id(id, "AfterSale", "id")


async def order_for_viewer(viewer: Viewer, pk: int) -> Order | None:
    """The order if the viewer owns it or is staff with ORDER_READ; otherwise None, as for a missing one."""
    if viewer.member is not None:
        detail = await orders.order_detail(pk, member_id=viewer.member.id)
    elif viewer.staff is not None and has_permission(viewer.staff.role, Permission.ORDER_READ):
        detail = await orders.order_detail(pk)
    else:
        return None
    return Order.from_model(detail.order, detail.lines, detail.events) if detail else None


def may_read_orders_of(viewer: Viewer, member_id: int) -> bool:
    """Whether `viewer` may read the orders (lines, after-sales) of member `member_id`: that member, or staff
    with ORDER_READ."""
    own = viewer.member is not None and viewer.member.id == member_id
    return own or holds(viewer, Permission.ORDER_READ)


# --- node(id:) -----------------------------------------------------------------------------------------------


@node_type("Order")
async def order_node(context: Context, pk: int) -> Order | None:
    row = await context.rows(OrderModel).load(pk)
    return Order.from_model(row) if row and may_read_orders_of(context.viewer, row.member_id) else None


@node_type("OrderLine")
async def order_line_node(context: Context, pk: int) -> OrderLine | None:
    line = await context.rows(OrderLineModel).load(pk)
    row = await context.rows(OrderModel).load(line.order_id) if line else None
    return OrderLine.from_model(line) if row and may_read_orders_of(context.viewer, row.member_id) else None


@node_type("AfterSale")
async def after_sale_node(context: Context, pk: int) -> AfterSale | None:
    row = await context.rows(AfterSaleModel).load(pk)
    return AfterSale.from_model(row) if row and may_read_orders_of(context.viewer, row.member_id) else None


# --- Reads -------------------------------------------------------------------------------------------------


async def order(info: OrderInfo, id: strawberry.ID) -> Order | None:
    return await order_for_viewer(info.context.viewer, _order_pk(id))


async def my_orders(
    info: OrderInfo, status: OrderStatus | None = None, first: int | None = 20, after: str | None = None
) -> OrderConnection:
    """The viewer's orders, newest first, optionally in one status; `counts` gives the tab badges."""
    member_id = member_id_of(info.context.viewer)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    wanted = OrderStatusModel(status) if status is not None else None
    rows, has_next = await orders.my_orders(member_id, wanted, offset, limit)
    lines = await orders.with_lines(rows)
    edges, page_info = build_edges([Order.from_model(o, lines[o.id]) for o in rows], offset)
    page_info.has_next_page = has_next
    return OrderConnection(
        edges=edges,
        page_info=page_info,
        _total=lambda: orders.count_orders(member_id, wanted),
        _counts=lambda: orders.status_counts(member_id),
    )


async def my_order_counts(info: OrderInfo) -> OrderCounts:
    return order_counts(await orders.status_counts(member_id_of(info.context.viewer)))


async def order_after_sales(info: OrderInfo, order_id: strawberry.ID) -> list[AfterSale]:
    viewer = info.context.viewer
    pk = _order_pk(order_id, "orderId")
    if await order_for_viewer(viewer, pk) is None:
        return []
    return [AfterSale.from_model(a) for a in await after_sales.after_sales_of(pk)]


# --- Member mutations ----------------------------------------------------------------------------------------


@payload_mutation
async def order_cancel(info: OrderInfo, id: strawberry.ID, reason: str = "") -> OrderPayload:
    row = await fulfilment.cancel_order(member_id_of(info.context.viewer), _order_pk(id), reason)
    return OrderPayload(order=Order.from_model(row))


@payload_mutation
async def order_confirm_receipt(info: OrderInfo, id: strawberry.ID) -> OrderPayload:
    row = await fulfilment.confirm_receipt(member_id_of(info.context.viewer), _order_pk(id))
    return OrderPayload(order=Order.from_model(row))


@payload_mutation
async def after_sale_request(info: OrderInfo, input: AfterSaleRequestInput) -> AfterSalePayload:
    requested = [
        after_sales.LineRequest(decode_id(row.line_id, "OrderLine", f"input.lines[{i}].lineId"), row.quantity)
        for i, row in enumerate(input.lines)
    ]
    row = await after_sales.request_after_sale(
        member_id_of(info.context.viewer),
        _order_pk(input.order_id, "input.orderId"),
        after_sales.AfterSaleKind(AfterSaleKind(input.kind).value),
        requested,
        input.reason,
    )
    return AfterSalePayload(after_sale=AfterSale.from_model(row))


@payload_mutation
async def after_sale_submit_return(
    info: OrderInfo, id: strawberry.ID, carrier: str, tracking_number: str
) -> AfterSalePayload:
    row = await after_sales.submit_return(
        member_id_of(info.context.viewer), _after_sale_pk(id), carrier, tracking_number
    )
    return AfterSalePayload(after_sale=AfterSale.from_model(row))


@payload_mutation
async def after_sale_cancel(info: OrderInfo, id: strawberry.ID) -> AfterSalePayload:
    row = await after_sales.cancel_after_sale(member_id_of(info.context.viewer), _after_sale_pk(id))
    return AfterSalePayload(after_sale=AfterSale.from_model(row))


# --- Staff mutations -------------------------------------------------------------------------------------------


def _staff_id(info: OrderInfo) -> int | None:
    staff = info.context.viewer.staff
    return staff.id if staff else None


@staff_mutation(Permission.ORDER_SHIP, action="orderShip")
async def order_ship(info: OrderInfo, id: strawberry.ID, carrier: str, tracking_number: str) -> OrderPayload:
    row = await fulfilment.ship_order(_order_pk(id), carrier, tracking_number, _staff_id(info))
    return OrderPayload(order=Order.from_model(row))


# What a single shipment's error names, as a field of a batch row.
_ROW_FIELDS = {"id": "orderId", "carrier": "carrier", "trackingNumber": "trackingNumber"}


def _in_row(error: DomainError, index: int) -> DomainError:
    """A shipment's error with its field as a path into row `index` of `orderShipBatch(rows:)`."""
    if error.field is None:
        return error
    return DomainError(
        error.code, error.message, f"rows[{index}].{_ROW_FIELDS.get(error.field, error.field)}"
    )


@staff_mutation(Permission.ORDER_SHIP, action="orderShipBatch")
async def order_ship_batch(info: OrderInfo, rows: list[OrderShipInput]) -> OrderShipBatchPayload:
    results: list[OrderShipResult | None] = [None] * len(rows)
    wanted: list[tuple[int, fulfilment.ShipRow]] = []
    for i, row in enumerate(rows):
        try:
            wanted.append(
                (
                    i,
                    fulfilment.ShipRow(
                        _order_pk(row.order_id, f"rows[{i}].orderId"), row.carrier, row.tracking_number
                    ),
                )
            )
        except DomainError as exc:
            results[i] = OrderShipResult(order_id=row.order_id, errors=user_errors(exc))
    shipped = await fulfilment.ship_orders([row for _, row in wanted], _staff_id(info))
    for (i, _), result in zip(wanted, shipped, strict=True):
        results[i] = OrderShipResult(
            order_id=encode_id("Order", result.order_id),
            order=Order.from_model(result.order) if result.order else None,
            errors=user_errors(_in_row(result.error, i)) if result.error else [],
        )
    # The payload's own errors stay empty when some rows fail: each row speaks for itself.
    return OrderShipBatchPayload(results=[r for r in results if r is not None])


@staff_mutation(Permission.ORDER_SHIP, action="orderStaffCancel")
async def order_staff_cancel(info: OrderInfo, id: strawberry.ID, reason: str) -> OrderPayload:
    row = await fulfilment.staff_cancel(_order_pk(id), _staff_id(info) or 0, reason)
    return OrderPayload(order=Order.from_model(row))


@staff_mutation(Permission.REFUND_APPROVE, action="afterSaleApprove")
async def after_sale_approve(info: OrderInfo, id: strawberry.ID) -> AfterSalePayload:
    row = await after_sales.approve(_after_sale_pk(id), _staff_id(info))
    return AfterSalePayload(after_sale=AfterSale.from_model(row))


@staff_mutation(Permission.REFUND_APPROVE, action="afterSaleReject")
async def after_sale_reject(info: OrderInfo, id: strawberry.ID, reason: str) -> AfterSalePayload:
    row = await after_sales.reject(_after_sale_pk(id), _staff_id(info), reason)
    return AfterSalePayload(after_sale=AfterSale.from_model(row))


@staff_mutation(Permission.REFUND_APPROVE, action="afterSaleConfirmReturn")
async def after_sale_confirm_return(info: OrderInfo, id: strawberry.ID) -> AfterSalePayload:
    row = await after_sales.confirm_return(_after_sale_pk(id), _staff_id(info))
    return AfterSalePayload(after_sale=AfterSale.from_model(row))


# --- Subscription --------------------------------------------------------------------------------------------


async def order_status_changed(
    info: OrderInfo, order_id: strawberry.ID
) -> AsyncGenerator[OrderStatusChanged, None]:
    """The owner's order as its status changes, from whichever process made the change."""
    viewer = info.context.viewer
    member_id = member_id_of(viewer)
    pk = _order_pk(order_id, "orderId")
    if await orders.order_detail(pk, member_id=member_id) is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such order", "orderId")
    signed_in = viewer.member
    assert signed_in is not None  # member_id_of refused everyone else
    async with current_runtime().bus.subscribe(order_channel(pk)) as events:
        # The socket authenticated once, at connect: when that token expires, or the member logs out (or the
        # session is revoked), the order's news stops.
        async for event in member_tokens.while_signed_in(signed_in.session_id, signed_in.expires_at, events):
            # Read afresh per event: the connection's context lives as long as the socket.
            current = await order_for_viewer(info.context.fresh().viewer, pk)
            yield OrderStatusChanged(
                order_id=encode_id("Order", pk),
                status=OrderStatusModel(event["status"]),
                order=current,
            )


@strawberry.type
class OrderQuery:
    order: Order | None = strawberry.field(
        resolver=order, description="The viewer's order (or any, for staff)."
    )
    my_orders: OrderConnection = strawberry.field(resolver=my_orders)
    my_order_counts: OrderCounts = strawberry.field(resolver=my_order_counts, description="The tab badges.")
    order_after_sales: list[AfterSale] = strawberry.field(resolver=order_after_sales)


@strawberry.type
class OrderMutation:
    order_cancel: OrderPayload = strawberry.mutation(
        resolver=order_cancel, description="Only an unpaid order."
    )
    order_confirm_receipt: OrderPayload = strawberry.mutation(resolver=order_confirm_receipt)
    order_ship: OrderPayload = strawberry.mutation(resolver=order_ship, description="Staff with ORDER_SHIP.")
    order_ship_batch: OrderShipBatchPayload = strawberry.mutation(
        resolver=order_ship_batch, description="A result per row; a failing row does not stop the others."
    )
    order_staff_cancel: OrderPayload = strawberry.mutation(resolver=order_staff_cancel)
    after_sale_request: AfterSalePayload = strawberry.mutation(resolver=after_sale_request)
    after_sale_submit_return: AfterSalePayload = strawberry.mutation(resolver=after_sale_submit_return)
    after_sale_cancel: AfterSalePayload = strawberry.mutation(resolver=after_sale_cancel)
    after_sale_approve: AfterSalePayload = strawberry.mutation(resolver=after_sale_approve)
    after_sale_reject: AfterSalePayload = strawberry.mutation(resolver=after_sale_reject)
    after_sale_confirm_return: AfterSalePayload = strawberry.mutation(resolver=after_sale_confirm_return)


@strawberry.type
class OrderSubscription:
    order_status_changed: OrderStatusChanged = strawberry.subscription(
        resolver=order_status_changed, description="The signed-in owner's order, as its status changes."
    )
