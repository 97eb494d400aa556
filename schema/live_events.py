"""The GraphQL face of a room's events: the `LiveRoomEvent` union, one object type per event kind.

Every member carries `seq` (the room's sequence number: a page that reconnects passes the last one it saw as
`afterSeq`), `roomId` and `at` (when it was published). Ids are global IDs, money is fen. The types are built
from services.live.events' dataclasses field by field: a `*_id` field becomes an `ID` of the type named in
`ID_TYPES`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from models import LiveRoomStatus as LiveRoomStatusModel
from schema.node import encode_id
from services.live import events as ev

LiveRoomStatus = strawberry.enum(
    LiveRoomStatusModel,
    name="LiveRoomStatus",
    description="SCHEDULED, then LIVE (PAUSED in between, as often as needed), then ENDED.",
)


@strawberry.interface(description="What every room event carries.")
class LiveEvent:
    seq: int = strawberry.field(description="The room's sequence number of this event (1, 2, 3, ...).")
    room_id: strawberry.ID
    at: datetime = strawberry.field(description="When it was published.")


@strawberry.type(description="Staff went live, paused or ended the room.")
class RoomStatusChanged(LiveEvent):
    status: LiveRoomStatus


@strawberry.type(description="A room product is presented now (讲解中), in place of the one before.")
class ProductPinned(LiveEvent):
    room_product_id: strawberry.ID
    product_id: strawberry.ID
    sku_id: strawberry.ID
    title: str
    image_url: str
    live_price: int = strawberry.field(description="In fen.")
    original_price: int = strawberry.field(description="The SKU's own price, in fen (to strike through).")
    stock: int = strawberry.field(description="What is left of the room's allotment.")


@strawberry.type(description="Nothing is presented any more (`roomProductId` was).")
class ProductUnpinned(LiveEvent):
    room_product_id: strawberry.ID


@strawberry.type(description="Staff changed a room product's live price.")
class PriceChanged(LiveEvent):
    room_product_id: strawberry.ID
    product_id: strawberry.ID
    sku_id: strawberry.ID
    live_price: int
    original_price: int


@strawberry.type(name="LiveStockChanged", description="What is left of a room product's allotment changed.")
class LiveStockChanged(LiveEvent):
    room_product_id: strawberry.ID
    product_id: strawberry.ID
    sku_id: strawberry.ID
    stock: int


@strawberry.type(description="A comment is shown in the room.")
class CommentPosted(LiveEvent):
    comment_id: strawberry.ID
    nickname: str
    avatar_url: str
    text: str
    posted_at: datetime


@strawberry.type(
    description="Comments posted within a moment of each other, oldest first, for a subscription with "
    "`batchComments: true` (in place of one CommentPosted each). `seq` and `at` are the last comment's."
)
class CommentsPosted(LiveEvent):
    comments: list[CommentPosted]


@strawberry.type(description="Staff removed a comment: take it off the page.")
class CommentRemoved(LiveEvent):
    comment_id: strawberry.ID


@strawberry.type(description="A red-packet rain begins: grab with `redPacketGrab(rainId:)` until `endsAt`.")
class RedPacketRainStarted(LiveEvent):
    rain_id: strawberry.ID
    packet_count: int
    starts_at: datetime
    ends_at: datetime


@strawberry.type
class RedPacketRainEnded(LiveEvent):
    rain_id: strawberry.ID
    packet_count: int
    packets_grabbed: int


@strawberry.type(description="An auction opens: bid with `auctionBid(auctionId:, amount:)` until `endsAt`.")
class AuctionStarted(LiveEvent):
    auction_id: strawberry.ID
    product_id: strawberry.ID
    sku_id: strawberry.ID
    title: str
    image_url: str
    start_price: int
    increment: int
    ends_at: datetime


@strawberry.type(description="An accepted bid (amounts are unique within an auction).")
class AuctionBid(LiveEvent):
    auction_id: strawberry.ID
    amount: int
    bidder: str = strawberry.field(description="The bidder's masked nickname.")
    next_minimum: int = strawberry.field(description="The least the next bid may be, in fen.")
    ends_at: datetime


@strawberry.type(description="A late bid moved the auction's end (anti-sniping).")
class AuctionExtended(LiveEvent):
    auction_id: strawberry.ID
    ends_at: datetime


@strawberry.type
class AuctionEnded(LiveEvent):
    auction_id: strawberry.ID
    winning_amount: int | None
    winner: str | None = strawberry.field(description="The winner's masked nickname; null: no bids.")


@strawberry.type(
    description="The closed auction's SKU is offered, until `deadline`, to the bidder whose best bid is `amount` "
    "(amounts are unique within an auction: a page that remembers its accepted amounts knows it is its turn; "
    "`auction.viewerOffer` says so too). Rank 1 is the winner; a higher rank, the next bidder after one who did "
    "not pay in time."
)
class AuctionOffered(LiveEvent):
    auction_id: strawberry.ID
    amount: int
    bidder: str = strawberry.field(description="The bidder's masked nickname.")
    rank: int
    deadline: datetime


@strawberry.type(description="People watching the room now, across every server process (approximate).")
class ViewerCount(LiveEvent):
    count: int


LiveRoomEvent = Annotated[
    RoomStatusChanged
    | ProductPinned
    | ProductUnpinned
    | PriceChanged
    | LiveStockChanged
    | CommentPosted
    | CommentsPosted
    | CommentRemoved
    | RedPacketRainStarted
    | RedPacketRainEnded
    | AuctionStarted
    | AuctionBid
    | AuctionExtended
    | AuctionEnded
    | AuctionOffered
    | ViewerCount,
    strawberry.union("LiveRoomEvent", description="Anything that happens in a live room."),
]

_GRAPHQL_TYPES: dict[str, type] = {
    ev.RoomStatusChanged.KIND: RoomStatusChanged,
    ev.ProductPinned.KIND: ProductPinned,
    ev.ProductUnpinned.KIND: ProductUnpinned,
    ev.PriceChanged.KIND: PriceChanged,
    ev.StockChanged.KIND: LiveStockChanged,
    ev.CommentPosted.KIND: CommentPosted,
    ev.CommentRemoved.KIND: CommentRemoved,
    ev.RedPacketRainStarted.KIND: RedPacketRainStarted,
    ev.RedPacketRainEnded.KIND: RedPacketRainEnded,
    ev.AuctionStarted.KIND: AuctionStarted,
    ev.AuctionBid.KIND: AuctionBid,
    ev.AuctionExtended.KIND: AuctionExtended,
    ev.AuctionEnded.KIND: AuctionEnded,
    ev.AuctionOffered.KIND: AuctionOffered,
    ev.ViewerCount.KIND: ViewerCount,
}
assert set(_GRAPHQL_TYPES) == set(ev.EVENT_TYPES), "every event kind needs its GraphQL type"


def _value(name: str, value: Any) -> Any:
    id_type = ev.ID_TYPES.get(name)
    if id_type is not None and value is not None:
        return encode_id(id_type, value)
    return value


def event_object(envelope: ev.Envelope) -> Any:
    """The GraphQL object of a published event (or of a batch of comments)."""
    if isinstance(envelope.event, ev.CommentsPosted):
        return CommentsPosted(
            seq=envelope.seq,
            room_id=encode_id("LiveRoom", envelope.room_id),
            at=envelope.at,
            comments=[event_object(e) for e in envelope.event.comments],
        )
    data = dict(envelope.event.__dict__)
    if envelope.event.KIND == ev.RoomStatusChanged.KIND:
        data["status"] = LiveRoomStatusModel(data["status"])
    return _GRAPHQL_TYPES[envelope.event.KIND](
        seq=envelope.seq,
        room_id=encode_id("LiveRoom", envelope.room_id),
        at=envelope.at,
        **{name: _value(name, value) for name, value in data.items()},
    )


def event_types() -> list[type]:
    """The union's member types."""
    return [*_GRAPHQL_TYPES.values(), CommentsPosted]
