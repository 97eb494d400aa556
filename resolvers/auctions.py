"""Auction root fields: staff schedule and cancel auctions and see their numbers; members bid. Thin: decode
arguments, call services.live.auctions, wrap the result."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry
from strawberry.types import Info

from models import Auction as AuctionModel
from models import Member
from resolvers.access import staff_mutation
from resolvers.node import node_type
from resolvers.payloads import payload_mutation
from schema.auctions import (
    AuctionBidPayload,
    AuctionBidResult,
    AuctionConnection,
    AuctionInput,
    AuctionPayload,
    AuctionType,
)
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.node import decode_id
from services.access.permissions import Permission
from services.catalog.listing import check_page_size
from services.errors import DomainError, ErrorCode
from services.live import auctions

AuctionInfo = Info[Context, None]

# Auctions are run from the live room's console: the permission that runs live rooms.
AUCTION_PERMISSION = Permission.CONTENT_WRITE


async def _typed(rows: Sequence[AuctionModel], viewer_id: int | None) -> list[AuctionType]:
    """The page's auctions with their leaders' masked names and the viewer's bids: two queries for the page."""
    leader_ids = {r.leader_id for r in rows if r.leader_id}  # type: ignore[attr-defined]
    names = (
        dict(await Member.filter(id__in=list(leader_ids)).values_list("id", "nickname")) if leader_ids else {}
    )
    best = await auctions.member_highest_bids([r.id for r in rows], viewer_id) if viewer_id else {}
    return [
        AuctionType.from_model(
            r,
            auctions.mask_nickname(str(names.get(r.leader_id) or "")) if r.leader_id else None,  # type: ignore[attr-defined]
            viewer_id,
            best.get(r.id),
        )
        for r in rows
    ]


def _viewer_id(info: AuctionInfo) -> int | None:
    member = info.context.viewer.member
    return member.id if member else None


# --- Queries -----------------------------------------------------------------------------------------------


async def auction(info: AuctionInfo, id: strawberry.ID) -> AuctionType | None:
    row = await AuctionModel.get_or_none(id=decode_id(id, "Auction"))
    return (await _typed([row], _viewer_id(info)))[0] if row else None


async def auctions_in_room(
    info: AuctionInfo, room_id: strawberry.ID, first: int | None = 20, after: str | None = None
) -> AuctionConnection:
    """A room's auctions, latest start first."""
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    query = AuctionModel.filter(room_id=decode_id(room_id, "LiveRoom", "roomId"))
    rows = list(await query.order_by("-starts_at", "-id").offset(offset).limit(limit + 1))
    edges, page_info = build_edges(await _typed(rows[:limit], _viewer_id(info)), offset)
    page_info.has_next_page = len(rows) > limit
    return AuctionConnection(edges=edges, page_info=page_info, total_count=await query.count())


@node_type("Auction")
async def auction_node(context: Context, pk: int) -> AuctionType | None:
    row = await context.rows(AuctionModel).load(pk)
    member = context.viewer.member
    return (await _typed([row], member.id if member else None))[0] if row else None


# --- Mutations ---------------------------------------------------------------------------------------------


@payload_mutation
async def auction_bid(info: AuctionInfo, auction_id: strawberry.ID, amount: int) -> AuctionBidPayload:
    member_id = _viewer_id(info)
    if member_id is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in as a member to bid")
    result = await auctions.place_bid(decode_id(auction_id, "Auction", "auctionId"), member_id, amount)
    return AuctionBidPayload(
        bid=AuctionBidResult(amount=result.bid.amount, extended=result.extended),
        auction=(await _typed([result.auction], member_id))[0],
    )


@staff_mutation(AUCTION_PERMISSION, action="auctionSchedule")
async def auction_schedule(info: AuctionInfo, input: AuctionInput) -> AuctionPayload:
    staff = info.context.viewer.staff
    row = await auctions.schedule_auction(
        auctions.AuctionDraft(
            room_id=decode_id(input.room_id, "LiveRoom", "input.roomId"),
            sku_id=decode_id(input.sku_id, "Sku", "input.skuId"),
            start_price=input.start_price,
            increment=input.increment,
            starts_at=input.starts_at,
            ends_at=input.ends_at,
            snipe_seconds=input.snipe_seconds,
            extend_seconds=input.extend_seconds,
            title=input.title,
        ),
        staff_id=staff.id if staff else None,
    )
    return AuctionPayload(auction=(await _typed([row], None))[0])


@staff_mutation(AUCTION_PERMISSION, action="auctionCancel")
async def auction_cancel(info: AuctionInfo, id: strawberry.ID) -> AuctionPayload:
    row = await auctions.cancel_auction(decode_id(id, "Auction"))
    return AuctionPayload(auction=(await _typed([row], None))[0])


# --- Root fields -------------------------------------------------------------------------------------------


@strawberry.type
class AuctionQuery:
    auction: AuctionType | None = strawberry.field(
        resolver=auction, description="One auction; a signed-in member also sees their own bid and offer."
    )
    auctions: AuctionConnection = strawberry.field(
        resolver=auctions_in_room, description="A live room's auctions, latest first."
    )


@strawberry.type
class AuctionMutation:
    auction_bid: AuctionBidPayload = strawberry.mutation(
        resolver=auction_bid,
        description="Bid on a live auction: at least its nextMinimum (BID_TOO_LOW otherwise; of equal bids one "
        "wins); a bid near the end moves the end.",
    )
    auction_schedule: AuctionPayload = strawberry.mutation(
        resolver=auction_schedule, description="Schedule an auction in a live room (staff, CONTENT_WRITE)."
    )
    auction_cancel: AuctionPayload = strawberry.mutation(
        resolver=auction_cancel, description="Call off an auction before it closes (staff, CONTENT_WRITE)."
    )
