"""Auction types: the auction a room runs, a bid, the offer to buy, their inputs and payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import Auction as AuctionModel
from models import AuctionStatus as AuctionStatusModel
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.node import Node, encode_id

AuctionStatus = strawberry.enum(
    AuctionStatusModel,
    description="SCHEDULED, LIVE (taking bids), OFFERED (over: the best bidder who has not let an offer lapse may "
    "buy), SOLD, UNSOLD (no bids, or every offer lapsed), CANCELLED.",
)


@strawberry.type(
    description="What the viewer may buy: the auction's SKU at their own bid, until the deadline."
)
class AuctionOffer:
    price: int
    deadline: datetime
    rank: int = strawberry.field(
        description="1: the winner; 2: the next bidder, after the winner let it lapse; ..."
    )


@strawberry.type(name="Auction", description="A timed auction of one SKU in a live room, with anti-sniping.")
class AuctionType(Node):
    room_id: strawberry.ID
    sku_id: strawberry.ID = strawberry.field(description="The SKU sold (one unit).")
    title: str
    start_price: int
    increment: int = strawberry.field(description="Each bid raises the price by at least this (fen).")
    starts_at: datetime
    ends_at: datetime = strawberry.field(description="The end, as moved by late bids.")
    scheduled_ends_at: datetime
    snipe_seconds: int = strawberry.field(
        description="A bid less than this many seconds before the end moves the end."
    )
    extend_seconds: int = strawberry.field(description="...to this many seconds after that bid.")
    status: AuctionStatus
    current_price: int | None = strawberry.field(
        description="The highest accepted bid (null before the first)."
    )
    next_minimum: int = strawberry.field(description="The least the next bid may offer.")
    bid_count: int
    extensions: int = strawberry.field(description="How often late bids moved the end.")
    leader: str | None = strawberry.field(description="The leading bidder, masked (e.g. 林**).")
    offer_rank: int = strawberry.field(description="Which bidder is offered the SKU now (0: nobody yet).")
    viewer_highest_bid: int | None = strawberry.field(
        description="The viewer's own highest bid (null: none, or not signed in)."
    )
    viewer_leading: bool = strawberry.field(description="False once the viewer is outbid.")
    viewer_offer: AuctionOffer | None = strawberry.field(
        description="Set while the SKU is offered to the viewer: buy it with placeOrder, item campaign "
        "{kind: AUCTION, id: <this id>}."
    )

    @classmethod
    def from_model(
        cls, m: AuctionModel, leader: str | None, viewer_id: int | None, viewer_best: int | None
    ) -> AuctionType:
        offered = (
            viewer_id is not None
            and m.status == AuctionStatusModel.OFFERED
            and m.offer_member_id == viewer_id  # type: ignore[attr-defined]
            and m.offer_price is not None
            and m.offer_deadline is not None
        )
        return cls(
            id=encode_id("Auction", m.id),
            room_id=encode_id("LiveRoom", m.room_id),
            sku_id=encode_id("Sku", m.sku_id),  # type: ignore[attr-defined]
            title=m.title,
            start_price=m.start_price,
            increment=m.increment,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            scheduled_ends_at=m.scheduled_ends_at,
            snipe_seconds=m.snipe_seconds,
            extend_seconds=m.extend_seconds,
            status=m.status,
            current_price=m.current_price,
            next_minimum=m.next_min,
            bid_count=m.bid_count,
            extensions=m.extensions,
            leader=leader,
            offer_rank=m.offer_rank,
            viewer_highest_bid=viewer_best,
            viewer_leading=viewer_id is not None and m.leader_id == viewer_id,  # type: ignore[attr-defined]
            viewer_offer=AuctionOffer(price=m.offer_price, deadline=m.offer_deadline, rank=m.offer_rank)  # type: ignore[arg-type]
            if offered
            else None,
        )


@strawberry.type
class AuctionConnection:
    edges: list[Edge[AuctionType]]
    page_info: PageInfo
    total_count: int


@strawberry.type(description="An accepted bid.")
class AuctionBidResult:
    amount: int
    extended: bool = strawberry.field(description="True when this bid moved the auction's end.")


# --- Inputs ------------------------------------------------------------------------------------------------


@strawberry.input(description="An auction to schedule in a live room.")
class AuctionInput:
    room_id: strawberry.ID
    sku_id: strawberry.ID
    start_price: int = strawberry.field(description="Fen, 1 to 20,000,000: the least first bid.")
    increment: int = strawberry.field(description="Fen, at least 1: each bid beats the last by this much.")
    starts_at: datetime
    ends_at: datetime = strawberry.field(description="After the start, at most 7 days later.")
    snipe_seconds: int = strawberry.field(default=30, description="0 to 600 (0: no anti-sniping).")
    extend_seconds: int = strawberry.field(default=30, description="1 to 600.")
    title: str = strawberry.field(default="", description="At most 64 characters (default: the product's).")


# --- Payloads ----------------------------------------------------------------------------------------------


@strawberry.type
class AuctionPayload:
    auction: AuctionType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AuctionBidPayload:
    bid: AuctionBidResult | None = None
    auction: AuctionType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
