"""Orders and after-sales as members and staff see them: types, inputs and mutation payloads.

`Order.from_model(order, lines=..., events=...)` takes rows the caller already loaded (a page of orders loads
their lines and events in one query each); given none, `lines` and `timeline` read them on demand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from loaders.orders import EventsByOrderLoader, LinesByOrderLoader
from models import ActorKind as ActorKindModel
from models import AfterSale as AfterSaleModel
from models import AfterSaleKind as AfterSaleKindModel
from models import AfterSaleStatus as AfterSaleStatusModel
from models import DeliveryMethod as DeliveryMethodModel
from models import Order as OrderModel
from models import OrderEvent as OrderEventModel
from models import OrderLine as OrderLineModel
from models import OrderStatus as OrderStatusModel
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.context import Context
from schema.node import Node, encode_id
from schema.pricing import AppliedDiscount
from services.orders.campaigns import CampaignKind as CampaignKindModel

OrderStatus = strawberry.enum(OrderStatusModel, name="OrderStatus")
DeliveryMethod = strawberry.enum(DeliveryMethodModel, name="DeliveryMethod")
OrderActor = strawberry.enum(ActorKindModel, name="OrderActor", description="Who made a transition.")
AfterSaleKind = strawberry.enum(AfterSaleKindModel, name="AfterSaleKind")
AfterSaleStatus = strawberry.enum(AfterSaleStatusModel, name="AfterSaleStatus")
CampaignKind = strawberry.enum(
    CampaignKindModel, name="CampaignKind", description="A special way to buy a SKU, at the campaign's price."
)


@strawberry.type(description="A bought line, as it was at checkout: later catalog edits do not change it.")
class OrderLine(Node):
    title: str
    spec: str
    image_url: str
    unit_price: int = strawberry.field(description="Fen.")
    quantity: int
    line_total: int = strawberry.field(description="Fen.")
    refunded_quantity: int
    refunded_amount: int = strawberry.field(description="Fen.")
    sku_id: strawberry.ID
    product_id: strawberry.ID
    campaign_kind: CampaignKind | None = strawberry.field(
        default=None, description="Set when the line was bought through a campaign at its price."
    )
    discount: int = strawberry.field(
        default=0, description="Fen: this line's share of the order's promotions and coupons."
    )
    points_discount: int = strawberry.field(default=0, description="Fen: this line's share paid with points.")
    paid: int = strawberry.field(
        default=0,
        description="Fen: the cash this line's goods cost (lineTotal - discount - pointsDiscount); refunds by "
        "line give back this, unit by unit.",
    )
    discounts: list[AppliedDiscount] = strawberry.field(
        default_factory=list, description="This line's share of each discount, by source."
    )

    @classmethod
    def from_model(cls, m: OrderLineModel) -> OrderLine:
        return cls(
            id=encode_id("OrderLine", m.id),
            title=m.title,
            spec=m.spec,
            image_url=m.image_url,
            unit_price=m.unit_price,
            quantity=m.quantity,
            line_total=m.line_total,
            refunded_quantity=m.refunded_quantity,
            refunded_amount=m.refunded_amount,
            sku_id=encode_id("Sku", m.sku_id),
            product_id=encode_id("Product", m.product_id),
            campaign_kind=CampaignKindModel(m.campaign_kind) if m.campaign_kind else None,
            discount=m.discount,
            points_discount=m.points_discount,
            paid=m.paid_total if m.paid_total is not None else m.line_total - m.discount - m.points_discount,
            discounts=[AppliedDiscount.from_json(row) for row in m.discounts or []],
        )


@strawberry.type(description="One transition of an order: from which status to which, by whom, why.")
class OrderTimelineEntry:
    from_status: OrderStatus | None
    to_status: OrderStatus
    actor: OrderActor
    reason: str
    created_at: datetime

    @classmethod
    def from_model(cls, m: OrderEventModel) -> OrderTimelineEntry:
        return cls(
            from_status=OrderStatusModel(m.from_status) if m.from_status else None,
            to_status=OrderStatusModel(m.to_status),
            actor=m.actor,
            reason=m.reason,
            created_at=m.created_at,
        )


@strawberry.type
class Logistics:
    carrier: str
    tracking_number: str


@strawberry.type(description="An order of the signed-in member (or any order, for staff with ORDER_READ).")
class Order(Node):
    number: str
    status: OrderStatus
    payable: int = strawberry.field(description="Fen: itemsTotal - discount + shippingFee - pointsDiscount.")
    items_total: int
    discount: int
    shipping_fee: int
    points_used: int
    points_discount: int
    paid_amount: int
    refunded_amount: int
    delivery: DeliveryMethod
    address: strawberry.scalars.JSON = strawberry.field(description="The address as it was at checkout.")
    note: str
    created_at: datetime
    pay_deadline: datetime = strawberry.field(description="Unpaid by then, the order is cancelled.")
    paid_at: datetime | None
    shipped_at: datetime | None
    received_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str
    auto_receive_at: datetime | None = strawberry.field(description="Shipped orders are received by then.")
    after_sale_deadline: datetime | None = strawberry.field(
        description="After-sales can be asked until then."
    )
    logistics: Logistics | None
    discounts: list[AppliedDiscount] = strawberry.field(
        description="The discounts applied at checkout, in pipeline order, with their source."
    )
    _pk: strawberry.Private[int]
    _lines: strawberry.Private[list[OrderLineModel] | None] = None
    _events: strawberry.Private[list[OrderEventModel] | None] = None

    @strawberry.field
    async def lines(self, info: Info[Context, None]) -> list[OrderLine]:
        rows = self._lines
        if rows is None:
            rows = await info.context.loader(LinesByOrderLoader).load(self._pk)
        return [OrderLine.from_model(r) for r in rows]

    @strawberry.field(description="Every transition, oldest first.")
    async def timeline(self, info: Info[Context, None]) -> list[OrderTimelineEntry]:
        rows = self._events
        if rows is None:
            rows = await info.context.loader(EventsByOrderLoader).load(self._pk)
        return [OrderTimelineEntry.from_model(r) for r in rows]

    @classmethod
    def from_model(
        cls,
        m: OrderModel,
        lines: list[OrderLineModel] | None = None,
        events: list[OrderEventModel] | None = None,
    ) -> Order:
        return cls(
            id=encode_id("Order", m.id),
            number=m.number,
            status=m.status,
            payable=m.payable,
            items_total=m.items_total,
            discount=m.discount,
            shipping_fee=m.shipping_fee,
            points_used=m.points_used,
            points_discount=m.points_discount,
            discounts=[AppliedDiscount.from_json(row) for row in m.discounts or []],
            paid_amount=m.paid_amount,
            refunded_amount=m.refunded_amount,
            delivery=m.delivery,
            address=m.address,
            note=m.note,
            created_at=m.created_at,
            pay_deadline=m.pay_deadline,
            paid_at=m.paid_at,
            shipped_at=m.shipped_at,
            received_at=m.received_at,
            completed_at=m.completed_at,
            cancelled_at=m.cancelled_at,
            cancel_reason=m.cancel_reason,
            auto_receive_at=m.auto_receive_at,
            after_sale_deadline=m.after_sale_deadline,
            logistics=Logistics(carrier=m.carrier, tracking_number=m.tracking_number)
            if m.tracking_number
            else None,
            _pk=m.id,
            _lines=lines,
            _events=events,
        )


@strawberry.type(description="How many of the viewer's orders are in each status (the tab badges).")
class OrderCounts:
    pending_payment: int
    paid: int
    shipped: int
    received: int
    completed: int
    cancelled: int


@strawberry.type
class OrderConnection:
    edges: list[Edge[Order]]
    page_info: PageInfo
    _total: strawberry.Private[Callable[[], Awaitable[int]]]
    _counts: strawberry.Private[Callable[[], Awaitable[dict[str, int]]]]

    @strawberry.field(description="The viewer's orders in this status filter, not just this page.")
    async def total_count(self) -> int:
        return await self._total()

    @strawberry.field(description="Counts per status over all the viewer's orders, whatever the filter.")
    async def counts(self) -> OrderCounts:
        return order_counts(await self._counts())


def order_counts(by_status: dict[str, int]) -> OrderCounts:
    return OrderCounts(**{s.value.lower(): by_status.get(s.value, 0) for s in OrderStatusModel})


@strawberry.type(description="A request for a refund, or a return and refund, of some lines of an order.")
class AfterSale(Node):
    order_id: strawberry.ID
    kind: AfterSaleKind
    status: AfterSaleStatus
    reason: str
    amount: int = strawberry.field(description="Fen to refund.")
    lines: list[AfterSaleLine]
    return_carrier: str
    return_tracking_number: str
    staff_note: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, m: AfterSaleModel) -> AfterSale:
        return cls(
            id=encode_id("AfterSale", m.id),
            order_id=encode_id("Order", m.order_id),  # type: ignore[attr-defined]
            kind=m.kind,
            status=m.status,
            reason=m.reason,
            amount=m.amount,
            lines=[
                AfterSaleLine(line_id=encode_id("OrderLine", int(x["line_id"])), quantity=int(x["quantity"]))
                for x in _rows(m.lines)
            ],
            return_carrier=m.return_carrier,
            return_tracking_number=m.return_tracking_number,
            staff_note=m.staff_note,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )


def _rows(value: Any) -> list[dict[str, Any]]:
    return [x for x in value or [] if isinstance(x, dict)]


@strawberry.type
class AfterSaleLine:
    line_id: strawberry.ID
    quantity: int


# --- Inputs and payloads -----------------------------------------------------------------------------------


@strawberry.input
class OrderShipInput:
    order_id: strawberry.ID
    carrier: str
    tracking_number: str


@strawberry.input
class AfterSaleLineInput:
    line_id: strawberry.ID
    quantity: int


@strawberry.input
class AfterSaleRequestInput:
    order_id: strawberry.ID
    kind: AfterSaleKind
    lines: list[AfterSaleLineInput]
    reason: str = ""


@strawberry.type
class OrderPayload:
    order: Order | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="The outcome of one row of a batch shipment.")
class OrderShipResult:
    order_id: strawberry.ID
    order: Order | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OrderShipBatchPayload:
    results: list[OrderShipResult] = strawberry.field(default_factory=list)
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AfterSalePayload:
    after_sale: AfterSale | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="An order's new status, as it happens.")
class OrderStatusChanged:
    order_id: strawberry.ID
    status: OrderStatus
    order: Order | None = None
