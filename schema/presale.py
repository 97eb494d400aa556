"""Presales (预售): what staff set up, a presale order's two payments, and the payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from loaders.marketing import PresaleStatsLoader
from models import Presale as PresaleModel
from models import PresaleOrder as PresaleOrderModel
from models import PresaleStage as PresaleStageModel
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.context import Context
from schema.node import Node, decode_id, encode_id
from services.access.permissions import Permission, holds
from services.marketing.presale.orders import unit_total
from services.marketing.presale.setup import forfeit_notice

PresaleStage = strawberry.enum(
    PresaleStageModel,
    name="PresaleStage",
    description="DEPOSIT_DUE → DEPOSIT_PAID → BALANCE_PAID (the order is PAID); FORFEITED: the balance window "
    "closed unpaid (the deposit is kept, the stock released); CANCELLED: before the deposit, or the shop "
    "refunded the deposit.",
)


@strawberry.type(description="Live numbers of a presale (staff with MARKETING_WRITE).")
class PresaleStats:
    deposits_paid: int = strawberry.field(
        description="Deposits paid and kept (waiting for the balance, balanced or forfeited)."
    )
    waiting_for_balance: int
    balances_paid: int
    forfeited: int
    cancelled: int


@strawberry.type(
    description="A presale of one SKU: order it with `campaign: {kind: PRESALE, id: <this id>}`, pay the "
    "deposit at once and the balance in the balance window. Money in fen, per unit."
)
class Presale(Node):
    id: strawberry.ID
    sku_id: strawberry.ID
    product_id: strawberry.ID
    title: str
    price: int = strawberry.field(description="The presale price.")
    deposit: int = strawberry.field(description="Paid first.")
    deposit_worth: int = strawberry.field(description="What the deposit takes off the price (定金膨胀).")
    balance: int = strawberry.field(description="Paid in the balance window: price - depositWorth.")
    total: int = strawberry.field(description="What one unit costs in all: deposit + balance.")
    per_member_limit: int
    deposit_starts_at: datetime
    deposit_ends_at: datetime
    balance_starts_at: datetime
    balance_ends_at: datetime
    stopped_at: datetime | None
    forfeit_notice: str = strawberry.field(
        description="Shown before the deposit is paid: when an unpaid balance forfeits the deposit."
    )

    @strawberry.field(description="Live numbers; null unless the viewer is staff with MARKETING_WRITE.")
    async def stats(self, info: Info[Context, None]) -> PresaleStats | None:
        if not holds(info.context.viewer, Permission.MARKETING_WRITE):
            return None
        s = await info.context.loader(PresaleStatsLoader).load(int(decode_id(self.id, "Presale")))
        return PresaleStats(
            deposits_paid=s.deposits_paid + s.balances_paid + s.forfeited,
            waiting_for_balance=s.deposits_paid,
            balances_paid=s.balances_paid,
            forfeited=s.forfeited,
            cancelled=s.cancelled,
        )

    @classmethod
    def from_model(cls, m: PresaleModel) -> Presale:
        return cls(
            id=encode_id("Presale", m.id),
            sku_id=encode_id("Sku", m.sku_id),  # type: ignore[attr-defined]
            product_id=encode_id("Product", m.product_id),
            title=m.title,
            price=m.price,
            deposit=m.deposit,
            deposit_worth=m.deposit_worth,
            balance=m.price - m.deposit_worth,
            total=unit_total(m),
            per_member_limit=m.per_member_limit,
            deposit_starts_at=m.deposit_starts_at,
            deposit_ends_at=m.deposit_ends_at,
            balance_starts_at=m.balance_starts_at,
            balance_ends_at=m.balance_ends_at,
            stopped_at=m.stopped_at,
            forfeit_notice=forfeit_notice(m),
        )


@strawberry.type(description="A presale order's two payments. Money in fen, for the whole order.")
class PresaleOrder:
    order_id: strawberry.ID
    presale_id: strawberry.ID
    stage: PresaleStage
    quantity: int
    deposit: int
    deposit_worth: int
    balance: int = strawberry.field(description="The order's payable less the deposit.")
    balance_starts_at: datetime
    balance_ends_at: datetime
    deposit_paid_at: datetime | None
    balance_paid_at: datetime | None
    forfeit_notice: str

    @classmethod
    def from_model(cls, m: PresaleOrderModel, presale: PresaleModel) -> PresaleOrder:
        return cls(
            order_id=encode_id("Order", m.order_id),
            presale_id=encode_id("Presale", presale.id),
            stage=m.stage,
            quantity=m.quantity,
            deposit=m.deposit,
            deposit_worth=m.deposit_worth,
            balance=m.balance,
            balance_starts_at=presale.balance_starts_at,
            balance_ends_at=presale.balance_ends_at,
            deposit_paid_at=m.deposit_paid_at,
            balance_paid_at=m.balance_paid_at,
            forfeit_notice=forfeit_notice(presale),
        )


@strawberry.type
class PresaleConnection:
    edges: list[Edge[Presale]]
    page_info: PageInfo
    total_count: int


@strawberry.input(description="A presale of one SKU. Money in fen, per unit.")
class PresaleInput:
    sku_id: strawberry.ID
    title: str
    price: int
    deposit: int = strawberry.field(description="Below the price.")
    deposit_worth: int = strawberry.field(
        description="At least the deposit, below the price (定金膨胀: deposit 5000, worth 10000)."
    )
    per_member_limit: int
    deposit_starts_at: datetime
    deposit_ends_at: datetime
    balance_starts_at: datetime = strawberry.field(description="Not before depositEndsAt.")
    balance_ends_at: datetime


@strawberry.type
class PresalePayload:
    presale: Presale | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PresaleOrderPayload:
    presale_order: PresaleOrder | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
