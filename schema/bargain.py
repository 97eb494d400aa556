"""Bargains (砍价): activities, started bargains and their cuts; inputs and payloads."""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry
from strawberry.types import Info

from models import Bargain as BargainModel
from models import BargainActivity as BargainActivityModel
from models import BargainHelp as BargainHelpModel
from models import Product as ProductModel
from models import Sku as SkuModel
from schema.catalog import Product, Sku
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.context import Context
from schema.node import Node, encode_id
from services.access.permissions import Permission, holds


@strawberry.enum
class BargainActivityStatus(Enum):
    SCHEDULED = "SCHEDULED"
    STOPPED = "STOPPED"


@strawberry.enum
class BargainStatus(Enum):
    ONGOING = "ONGOING"
    SUCCEEDED = "SUCCEEDED"
    ORDERED = "ORDERED"
    EXPIRED = "EXPIRED"


@strawberry.type(description="Staff numbers of a bargain activity.")
class BargainActivityNumbers:
    started: int
    succeeded: int = strawberry.field(description="Bargains that reached the floor.")
    sold: int = strawberry.field(description="Units in orders not cancelled.")


@strawberry.type(description="A SKU sold from a start price down to a floor, cut by the starter's friends.")
class BargainActivity(Node):
    title: str
    start_price: int
    floor_price: int
    helpers_needed: int
    hours_to_finish: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    stock: int
    remaining: int
    status: BargainActivityStatus
    _model: strawberry.Private[BargainActivityModel]

    @classmethod
    def from_model(cls, m: BargainActivityModel) -> BargainActivity:
        return cls(
            id=encode_id("BargainActivity", m.id),
            title=m.title,
            start_price=m.start_price,
            floor_price=m.floor_price,
            helpers_needed=m.helpers_needed,
            hours_to_finish=m.hours_to_finish,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            stock=m.stock,
            remaining=max(0, m.stock - m.sold),
            status=BargainActivityStatus(m.status.value),
            _model=m,
        )

    @strawberry.field
    async def sku(self, info: Info[Context, None]) -> Sku | None:
        row = await info.context.rows(SkuModel).load(self._model.sku_id)
        return Sku.from_model(row) if row else None

    @strawberry.field
    async def product(self, info: Info[Context, None]) -> Product | None:
        row = await info.context.rows(ProductModel).load(self._model.product_id)
        return Product.from_model(row) if row else None

    @strawberry.field(description="Staff with MARKETING_WRITE or DASHBOARD_READ; null for everyone else.")
    def numbers(self, info: Info[Context, None]) -> BargainActivityNumbers | None:
        viewer = info.context.viewer
        if not (holds(viewer, Permission.MARKETING_WRITE) or holds(viewer, Permission.DASHBOARD_READ)):
            return None
        m = self._model
        return BargainActivityNumbers(started=m.started_count, succeeded=m.succeeded_count, sold=m.sold)


@strawberry.type
class BargainActivityConnection:
    edges: list[Edge[BargainActivity]]
    page_info: PageInfo


@strawberry.type(description="One friend's cut (who cut is not shown).")
class BargainCut:
    amount: int
    price_after: int
    created_at: dt.datetime

    @classmethod
    def from_model(cls, m: BargainHelpModel) -> BargainCut:
        return cls(amount=m.amount, price_after=m.price_after, created_at=m.created_at)


@strawberry.type(description="A member's bargain: share its ID, friends cut it with bargainHelp.")
class Bargain(Node):
    current_price: int
    cuts_done: int
    helpers_left: int
    status: BargainStatus
    expires_at: dt.datetime
    _model: strawberry.Private[BargainModel]
    _activity: strawberry.Private[BargainActivityModel]

    @classmethod
    def from_model(cls, m: BargainModel, activity: BargainActivityModel) -> Bargain:
        return cls(
            id=encode_id("Bargain", m.id),
            current_price=m.current_price,
            cuts_done=m.cuts_done,
            helpers_left=max(0, activity.helpers_needed - m.cuts_done),
            status=BargainStatus(m.status.value),
            expires_at=m.expires_at,
            _model=m,
            _activity=activity,
        )

    @strawberry.field
    def activity(self) -> BargainActivity:
        return BargainActivity.from_model(self._activity)

    @strawberry.field(description="Whether the viewer started it (and may buy it).")
    def mine(self, info: Info[Context, None]) -> bool:
        member = info.context.viewer.member
        return member is not None and member.id == self._model.member_id

    @strawberry.field(description="The cuts so far, oldest first.")
    async def cuts(self) -> list[BargainCut]:
        rows = await BargainHelpModel.filter(bargain_id=self._model.id).order_by("id")
        return [BargainCut.from_model(r) for r in rows]


@strawberry.input
class BargainActivityCreateInput:
    title: str
    sku_id: strawberry.ID
    start_price: int = strawberry.field(description="In fen, at most the SKU's price.")
    floor_price: int = strawberry.field(description="In fen, below the start price: what N cuts reach.")
    helpers_needed: int
    hours_to_finish: int = strawberry.field(description="How long a started bargain may be cut and bought.")
    starts_at: dt.datetime
    ends_at: dt.datetime
    stock: int = strawberry.field(description="Units sold through the activity, at most the SKU's stock.")


@strawberry.type
class BargainActivityPayload:
    bargain_activity: BargainActivity | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BargainPayload:
    bargain: Bargain | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BargainHelpPayload:
    cut: int | None = strawberry.field(default=None, description="Fen this help cut.")
    bargain: Bargain | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
