"""Presales: shoppers read presales and their presale orders; staff create, stop and refund deposits.

Thin: decode the input, call services.marketing.presale. Buying is `placeOrder` with a PRESALE item; paying
the deposit, then the balance in its window, is `orderPay` (or `sandboxPay`) each time.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from models import Presale as PresaleModel
from models import PresaleOrder as PresaleOrderModel
from resolvers.access import staff_mutation
from resolvers.node import node_type
from resolvers.orders import may_read_orders_of
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.node import decode_id
from schema.presale import (
    Presale,
    PresaleConnection,
    PresaleInput,
    PresaleOrder,
    PresaleOrderPayload,
    PresalePayload,
)
from services.access.permissions import Permission, require_permission
from services.catalog.listing import check_page_size
from services.marketing.presale import orders, setup

PresaleInfo = Info[Context, None]


@node_type("Presale")
async def presale_node(context: Context, pk: int) -> Presale | None:
    row = await context.rows(PresaleModel).load(pk)
    return Presale.from_model(row) if row else None


async def presales(
    info: PresaleInfo,
    product_id: strawberry.ID | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> PresaleConnection:
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    product = decode_id(product_id, "Product", "productId") if product_id else None
    rows, total = await setup.open_presales(product, offset, limit)
    return _connection(rows, total, offset)


async def presales_admin(
    info: PresaleInfo, first: int | None = 20, after: str | None = None
) -> PresaleConnection:
    require_permission(info.context.viewer, Permission.MARKETING_WRITE)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows, total = await setup.all_presales(offset, limit)
    return _connection(rows, total, offset)


def _connection(rows: list[PresaleModel], total: int, offset: int) -> PresaleConnection:
    edges, page_info = build_edges([Presale.from_model(r) for r in rows], offset)
    page_info.has_next_page = offset + len(rows) < total
    return PresaleConnection(edges=edges, page_info=page_info, total_count=total)


async def presale_order(info: PresaleInfo, order_id: strawberry.ID) -> PresaleOrder | None:
    pk = decode_id(order_id, "Order", "orderId")
    row = await PresaleOrderModel.get_or_none(order_id=pk).select_related("presale")
    if row is None or not may_read_orders_of(info.context.viewer, row.member_id):
        return None
    return PresaleOrder.from_model(row, row.presale)


@staff_mutation(Permission.MARKETING_WRITE, action="presaleCreate")
async def presale_create(info: PresaleInfo, input: PresaleInput) -> PresalePayload:
    draft = setup.PresaleDraft(
        sku_id=decode_id(input.sku_id, "Sku", "input.skuId"),
        title=input.title,
        price=input.price,
        deposit=input.deposit,
        deposit_worth=input.deposit_worth,
        per_member_limit=input.per_member_limit,
        deposit_starts_at=input.deposit_starts_at,
        deposit_ends_at=input.deposit_ends_at,
        balance_starts_at=input.balance_starts_at,
        balance_ends_at=input.balance_ends_at,
    )
    return PresalePayload(presale=Presale.from_model(await setup.create_presale(draft)))


@staff_mutation(Permission.MARKETING_WRITE, action="presaleStop")
async def presale_stop(info: PresaleInfo, id: strawberry.ID) -> PresalePayload:
    return PresalePayload(presale=Presale.from_model(await setup.stop_presale(decode_id(id, "Presale"))))


@staff_mutation(Permission.REFUND_APPROVE, action="presaleRefundDeposit")
async def presale_refund_deposit(info: PresaleInfo, order_id: strawberry.ID) -> PresaleOrderPayload:
    staff = info.context.viewer.staff
    row = await orders.refund_deposit(decode_id(order_id, "Order", "orderId"), staff.id if staff else None)
    presale = await PresaleModel.get(id=row.presale_id)  # type: ignore[attr-defined]
    return PresaleOrderPayload(presale_order=PresaleOrder.from_model(row, presale))


@strawberry.type
class PresaleQuery:
    presales: PresaleConnection = strawberry.field(
        resolver=presales,
        description="Presales taking deposits now (of one product, or all), soonest closing first.",
    )
    presales_admin: PresaleConnection = strawberry.field(
        resolver=presales_admin,
        description="Every presale, newest first, with live numbers. Needs MARKETING_WRITE.",
    )
    presale_order: PresaleOrder | None = strawberry.field(
        resolver=presale_order,
        description="The deposit and balance of a presale order (its member, or staff who read orders).",
    )


@strawberry.type
class PresaleMutation:
    presale_create: PresalePayload = strawberry.mutation(
        resolver=presale_create,
        description="Set up a presale of one SKU (deposit window, then balance window). Needs MARKETING_WRITE.",
    )
    presale_stop: PresalePayload = strawberry.mutation(
        resolver=presale_stop,
        description="Take no more deposits, at once (paid deposits keep their balance window). "
        "Needs MARKETING_WRITE.",
    )
    presale_refund_deposit: PresaleOrderPayload = strawberry.mutation(
        resolver=presale_refund_deposit,
        description="The shop cannot deliver: cancel a presale order whose deposit is paid (its stock goes back) "
        "and refund the deposit through WeChat Pay. Needs REFUND_APPROVE.",
    )
