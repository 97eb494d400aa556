"""Live rooms as shoppers and staff see them: the room, its products at live prices, inputs and payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from loaders.live import RoomProductsByRoom
from models import LiveComment as LiveCommentModel
from models import LiveRoom as LiveRoomModel
from models import LiveRoomProduct as LiveRoomProductModel
from models import Member as MemberModel
from schema.catalog import Product, Sku
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.content import ModerationStatus
from schema.context import Context
from schema.live_events import LiveRoomStatus
from schema.node import Node, encode_id
from services.live import comments, events, feed
from services.live.products import remaining


@strawberry.type(description="A product of WeChat's own live room (小程序直播), as WeChat lists it.")
class WechatLiveGoods:
    name: str
    cover_url: str
    url: str
    price: int = strawberry.field(description="In fen.")


@strawberry.type(description="A SKU sold in a live room at its live price, out of the room's allotment.")
class LiveRoomProduct(Node):
    live_price: int = strawberry.field(description="What a viewer pays in the room while it is live, in fen.")
    allotment: int = strawberry.field(description="How many the room sells at most.")
    sold: int
    _model: strawberry.Private[LiveRoomProductModel]
    _pinned: strawberry.Private[bool]

    @classmethod
    def from_model(cls, m: LiveRoomProductModel, pinned: bool = False) -> LiveRoomProduct:
        return cls(
            id=encode_id("LiveRoomProduct", m.id),
            live_price=m.live_price,
            allotment=m.allotment,
            sold=m.sold,
            _model=m,
            _pinned=pinned,
        )

    @strawberry.field(description="Being presented now (讲解中).")
    def pinned(self) -> bool:
        return self._pinned

    @strawberry.field
    async def product(self, info: Info[Context, None]) -> Product | None:
        found = await info.context.loaders.product.load(self._model.product_id)
        return Product.from_model(found) if found else None

    @strawberry.field
    async def sku(self, info: Info[Context, None]) -> Sku | None:
        found = await info.context.loaders.sku.load(self._model.sku_id)
        return Sku.from_model(found) if found else None

    @strawberry.field(description="The SKU's own list price, in fen (to strike through).")
    async def original_price(self, info: Info[Context, None]) -> int:
        found = await info.context.loaders.sku.load(self._model.sku_id)
        return found.price if found else 0

    @strawberry.field(
        description="What is left to buy in the room: the allotment's rest, at most the SKU's stock."
    )
    async def stock(self, info: Info[Context, None]) -> int:
        found = await info.context.loaders.sku.load(self._model.sku_id)
        return remaining(self._model, found.stock if found else 0)


@strawberry.type(description="A live-sale session (直播间).")
class LiveRoom(Node):
    title: str
    cover_url: str
    anchor_name: str
    scheduled_start: datetime
    scheduled_end: datetime
    status: LiveRoomStatus
    started_at: datetime | None
    ended_at: datetime | None
    wechat_room_id: int | None = strawberry.field(description="WeChat's room id when synced from 小程序直播.")
    wechat_status: int | None = strawberry.field(
        description="WeChat's live_status (101-107) at the last sync."
    )
    _model: strawberry.Private[LiveRoomModel]

    @classmethod
    def from_model(cls, m: LiveRoomModel) -> LiveRoom:
        return cls(
            id=encode_id("LiveRoom", m.id),
            title=m.title,
            cover_url=m.cover_url,
            anchor_name=m.anchor_name,
            scheduled_start=m.scheduled_start,
            scheduled_end=m.scheduled_end,
            status=m.status,
            started_at=m.started_at,
            ended_at=m.ended_at,
            wechat_room_id=m.wechat_room_id,
            wechat_status=m.wechat_status,
            _model=m,
        )

    @strawberry.field
    def wechat_goods(self) -> list[WechatLiveGoods]:
        return [
            WechatLiveGoods(name=g["name"], cover_url=g["coverUrl"], url=g["url"], price=g["price"])
            for g in self._model.wechat_goods or []
        ]

    @strawberry.field(description="The products sold in the room, in the order staff added them.")
    async def products(self, info: Info[Context, None]) -> list[LiveRoomProduct]:
        rows = await info.context.loader(RoomProductsByRoom).load(self._model.id)
        return [LiveRoomProduct.from_model(r, pinned=r.id == self._model.pinned_id) for r in rows]

    @strawberry.field(description="The product presented now (讲解中), if any.")
    async def pinned_product(self, info: Info[Context, None]) -> LiveRoomProduct | None:
        if self._model.pinned_id is None:
            return None
        rows = await info.context.loader(RoomProductsByRoom).load(self._model.id)
        pinned = next((r for r in rows if r.id == self._model.pinned_id), None)
        return LiveRoomProduct.from_model(pinned, pinned=True) if pinned else None

    @strawberry.field(description="People watching now, across every server process (approximate).")
    async def viewer_count(self) -> int:
        return await feed.viewer_count(self._model.id)

    @strawberry.field(description="The latest shown comments, oldest first (at most 100).")
    async def comments(self, last: int = 50) -> list[LiveComment]:
        return [
            LiveComment.from_model(c) for c in await comments.recent_comments(self._model.id, max(0, last))
        ]

    @strawberry.field(
        description="The room's latest event number: subscribe to `liveRoomEvents` with it as `afterSeq` to miss "
        "nothing that happens after this answer."
    )
    async def event_seq(self) -> int:
        return await events.current_seq(self._model.id)


@strawberry.type
class LiveRoomConnection:
    edges: list[Edge[LiveRoom]]
    page_info: PageInfo
    total_count: int


@strawberry.input
class LiveRoomInput:
    title: str = strawberry.field(description="At most 60 characters.")
    anchor_name: str = strawberry.field(description="At most 30 characters.")
    scheduled_start: datetime
    scheduled_end: datetime = strawberry.field(description="After the start, at most 24 hours later.")
    cover_url: str = ""


@strawberry.input
class LiveRoomUpdateInput:
    title: str | None = None
    anchor_name: str | None = None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    cover_url: str | None = None


@strawberry.input
class LiveRoomProductInput:
    room_id: strawberry.ID
    sku_id: strawberry.ID
    live_price: int = strawberry.field(description="In fen.")
    allotment: int


@strawberry.input
class LiveRoomProductUpdateInput:
    live_price: int | None = None
    allotment: int | None = strawberry.field(default=None, description="Not below what was sold.")


@strawberry.type
class LiveRoomPayload:
    room: LiveRoom | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LiveRoomProductPayload:
    room_product: LiveRoomProduct | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="A viewer's comment in a live room.")
class LiveComment(Node):
    text: str
    nickname: str
    avatar_url: str
    created_at: datetime
    status: ModerationStatus = strawberry.field(description="PASSED: shown; HELD: waiting for staff.")
    removed: bool

    @classmethod
    def from_model(cls, m: LiveCommentModel) -> LiveComment:
        member = m.member if isinstance(m.member, MemberModel) else None  # type: ignore[attr-defined]
        return cls(
            id=encode_id("LiveComment", m.id),
            text=m.text,
            nickname=(member.nickname if member else "") or comments.ANONYMOUS,
            avatar_url=member.avatar_url if member else "",
            created_at=m.created_at,
            status=m.moderation,
            removed=m.removed,
        )

    @classmethod
    def from_posted(cls, posted: comments.PostedComment) -> LiveComment:
        """A comment as `comments.post_comment` kept it (not removed: it is new)."""
        return cls(
            id=encode_id("LiveComment", posted.id),
            text=posted.text,
            nickname=posted.nickname,
            avatar_url=posted.avatar_url,
            created_at=posted.created_at,
            status=posted.moderation,
            removed=False,
        )


@strawberry.type
class LiveCommentPayload:
    comment: LiveComment | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LiveMutePayload:
    muted_until: datetime | None = strawberry.field(
        default=None,
        description="When the mute ends; null: for the rest of the room (or unmuted, minutes 0).",
    )
    errors: list[UserError] = strawberry.field(default_factory=list)
