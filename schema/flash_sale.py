"""Flash sales (秒杀): the shopper's slots and items, the staff's activities and their inputs and payloads."""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry
from strawberry.types import Info

from models import FlashSale as FlashSaleModel
from models import FlashSaleItem as FlashSaleItemModel
from models import FlashSaleSession as FlashSaleSessionModel
from models import Product as ProductModel
from models import Sku as SkuModel
from schema.catalog import Product, Sku
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.context import Context
from schema.node import Node, encode_id
from services.access.permissions import Permission, holds
from services.marketing.flash_sale import schedule, setup


@strawberry.enum(description="Where a slot stands today, by the server's clock.")
class FlashSaleSlotState(Enum):
    UPCOMING = "UPCOMING"
    ONGOING = "ONGOING"
    ENDED = "ENDED"


@strawberry.enum
class FlashSaleStatus(Enum):
    SCHEDULED = "SCHEDULED"
    STOPPED = "STOPPED"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@strawberry.type(description="A daily time slot (场次) as staff set it up, times in shop time (HH:MM).")
class FlashSaleSession(Node):
    name: str
    starts_at: str
    ends_at: str
    enabled: bool

    @classmethod
    def from_model(cls, m: FlashSaleSessionModel) -> FlashSaleSession:
        return cls(
            id=encode_id("FlashSaleSession", m.id),
            name=m.name,
            starts_at=_clock(m.starts_minute),
            ends_at=_clock(m.ends_minute),
            enabled=m.enabled,
        )


@strawberry.type(
    description="A slot on one day: when it starts and ends, and the countdowns from the server's now."
)
class FlashSaleSlot:
    session_id: strawberry.ID
    name: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    state: FlashSaleSlotState
    seconds_to_start: int = strawberry.field(description="0 once it has started.")
    seconds_to_end: int = strawberry.field(description="0 once it has ended.")

    @classmethod
    def from_slot(cls, slot: schedule.Slot) -> FlashSaleSlot:
        return cls(
            session_id=encode_id("FlashSaleSession", slot.session.id),
            name=slot.session.name,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            state=FlashSaleSlotState(slot.state.value),
            seconds_to_start=slot.seconds_to_start,
            seconds_to_end=slot.seconds_to_end,
        )


@strawberry.type(description="The day's slots, with the server's clock so the client can count down.")
class FlashSaleSchedule:
    server_time: dt.datetime
    date: dt.date
    sessions: list[FlashSaleSlot]


@strawberry.type(description="Staff numbers of one flash-sale item.")
class FlashSaleItemNumbers:
    sold: int = strawberry.field(description="Units in orders not cancelled.")
    orders: int = strawberry.field(description="Orders not cancelled holding it.")
    paid_orders: int


@strawberry.type(
    description="A SKU in a flash-sale slot. Buy it with placeOrder: campaign {kind: FLASH_SALE, id}."
)
class FlashSaleItem(Node):
    session_id: strawberry.ID
    flash_sale_id: strawberry.ID
    flash_price: int
    allotment: int
    remaining: int = strawberry.field(description="Units of the allotment still to win.")
    per_member_limit: int
    _model: strawberry.Private[FlashSaleItemModel]
    # Filled when a whole activity is shown to staff: its items' numbers come from one query, not one per item.
    _numbers: strawberry.Private[setup.ItemNumbers | None] = None

    @classmethod
    def from_view(cls, view: schedule.ItemView, numbers: setup.ItemNumbers | None = None) -> FlashSaleItem:
        m = view.item
        return cls(
            id=encode_id("FlashSaleItem", m.id),
            session_id=encode_id("FlashSaleSession", m.session_id),  # type: ignore[attr-defined]
            flash_sale_id=encode_id("FlashSale", m.flash_sale_id),  # type: ignore[attr-defined]
            flash_price=m.flash_price,
            allotment=m.allotment,
            remaining=view.remaining,
            per_member_limit=m.per_member_limit,
            _model=m,
            _numbers=numbers,
        )

    @strawberry.field
    def sold_out(self) -> bool:
        return self.remaining <= 0

    @strawberry.field
    async def sku(self, info: Info[Context, None]) -> Sku | None:
        row = await info.context.rows(SkuModel).load(self._model.sku_id)
        return Sku.from_model(row) if row else None

    @strawberry.field
    async def product(self, info: Info[Context, None]) -> Product | None:
        row = await info.context.rows(ProductModel).load(self._model.product_id)
        return Product.from_model(row) if row else None

    @strawberry.field(description="Staff with MARKETING_WRITE or DASHBOARD_READ; null for everyone else.")
    async def numbers(self, info: Info[Context, None]) -> FlashSaleItemNumbers | None:
        viewer = info.context.viewer
        if not (holds(viewer, Permission.MARKETING_WRITE) or holds(viewer, Permission.DASHBOARD_READ)):
            return None
        found = self._numbers or (await setup.item_numbers([self._model.id]))[self._model.id]
        return FlashSaleItemNumbers(sold=found.sold, orders=found.orders, paid_orders=found.paid_orders)


@strawberry.type
class FlashSaleItemConnection:
    edges: list[Edge[FlashSaleItem]]
    page_info: PageInfo


@strawberry.type(
    description="An activity: its SKUs sell in their slots on every day from startsOn to endsOn."
)
class FlashSale(Node):
    title: str
    starts_on: dt.date
    ends_on: dt.date
    status: FlashSaleStatus
    items: list[FlashSaleItem]

    @classmethod
    def from_model(
        cls,
        m: FlashSaleModel,
        items: list[schedule.ItemView],
        numbers: dict[int, setup.ItemNumbers] | None = None,
    ) -> FlashSale:
        return cls(
            id=encode_id("FlashSale", m.id),
            title=m.title,
            starts_on=m.starts_on,
            ends_on=m.ends_on,
            status=FlashSaleStatus(m.status.value),
            items=[FlashSaleItem.from_view(v, (numbers or {}).get(v.item.id)) for v in items],
        )


@strawberry.type(
    description="A change of what is left of an item in the slot, from whichever process sold it."
)
class FlashSaleStockChanged:
    session_id: strawberry.ID
    item_id: strawberry.ID
    remaining: int


@strawberry.input
class FlashSaleSessionInput:
    name: str
    starts_at: str = strawberry.field(description="HH:MM shop time, e.g. 10:00.")
    ends_at: str = strawberry.field(description="HH:MM shop time after startsAt; 24:00 for midnight.")


@strawberry.input
class FlashSaleItemInput:
    session_id: strawberry.ID
    sku_id: strawberry.ID
    flash_price: int = strawberry.field(description="In fen, below the SKU's price.")
    allotment: int = strawberry.field(description="Units sold at the flash price, at most the SKU's stock.")
    per_member_limit: int = strawberry.field(description="Units one member may hold at once.")


@strawberry.input
class FlashSaleCreateInput:
    title: str
    starts_on: dt.date
    ends_on: dt.date
    items: list[FlashSaleItemInput]


@strawberry.type
class FlashSaleSessionPayload:
    session: FlashSaleSession | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class FlashSalePayload:
    flash_sale: FlashSale | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
