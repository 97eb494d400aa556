"""Timed auctions of one SKU in a live room: bids, anti-sniping, the winner's offer and the next bidder's.

A bid is accepted by one guarded update of the auction row: it must be LIVE, inside its time, and offer at
least `next_min` (the start price, then the last accepted bid plus the increment). On PostgreSQL a concurrent
bid waits for the row and re-checks the guard against the committed price, so of two bids of the same amount
exactly one is accepted, and no bid is ever accepted below the current price plus the increment; the unique
(auction, amount) pair of accepted bids says so again. A bid less than `snipe_seconds` before the end moves the
end to `extend_seconds` after the bid, in the same transaction.

When the end (as extended) has passed, the sweeper closes the auction and offers the SKU to the best bidder at
their bid, for ORDER_PAY_TIMEOUT_MINUTES: they buy it through checkout with an AUCTION campaign item
(`placeOrder` items `campaign: {kind: AUCTION, id: <Auction id>}`), whose order must be paid within the same
window. If they place no order in time, or their order is cancelled unpaid, the offer passes to the next bidder
(at that bidder's own highest bid), and so on; with nobody left the auction is UNSOLD. A paid order makes it SOLD.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from infra.clock import now as clock_now
from infra.settings import get_settings
from infra.transactions import retry_when_busy
from models import (
    Auction,
    AuctionBid,
    AuctionStatus,
    MediaKind,
    Member,
    Order,
    OrderStatus,
    ProductMedia,
    Sku,
)
from services.catalog.prices import PriceContext
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.live import events
from services.live.rooms import room_exists
from services.orders import states
from services.orders.campaigns import CampaignKind, CampaignPrice, CampaignRef, register_campaign
from services.orders.sweeper import register_sweep_job

log = logging.getLogger("lianmall.auctions")

MAX_PRICE = 20_000_000  # a unit price's bound (README "Limits")
MAX_WINDOW_SECONDS = 600
MAX_DURATION = timedelta(days=7)
TITLE_MAX = 64
SWEEP_BATCH = 50


# --- scheduling ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuctionDraft:
    room_id: int
    sku_id: int
    start_price: int
    increment: int
    starts_at: datetime
    ends_at: datetime
    snipe_seconds: int = 30
    extend_seconds: int = 30
    title: str = ""


def _check_draft(draft: AuctionDraft, at: datetime) -> None:
    problems: list[DomainError] = []

    def bad(field_name: str, message: str) -> None:
        problems.append(DomainError(ErrorCode.BAD_USER_INPUT, message, f"input.{field_name}"))

    if len(draft.title) > TITLE_MAX:
        bad("title", f"A title has at most {TITLE_MAX} characters")
    if not 1 <= draft.start_price <= MAX_PRICE:
        bad("startPrice", f"The start price is 1 to {MAX_PRICE} fen")
    if draft.increment <= 0:
        bad("increment", "Each bid must raise the price: the increment is at least 1 fen")
    elif draft.increment > MAX_PRICE:
        bad("increment", f"The increment is at most {MAX_PRICE} fen")
    if draft.ends_at <= draft.starts_at:
        bad("endsAt", "The auction must end after it starts")
    elif draft.ends_at <= at:
        bad("endsAt", "The auction would be over before it is scheduled")
    elif draft.ends_at - draft.starts_at > MAX_DURATION:
        bad("endsAt", "An auction lasts at most 7 days")
    if not 0 <= draft.snipe_seconds <= MAX_WINDOW_SECONDS:
        bad("snipeSeconds", f"The anti-sniping window is 0 to {MAX_WINDOW_SECONDS} seconds")
    if not 1 <= draft.extend_seconds <= MAX_WINDOW_SECONDS:
        bad("extendSeconds", f"An extension is 1 to {MAX_WINDOW_SECONDS} seconds")
    if problems:
        raise ValidationErrors(problems)


async def schedule_auction(draft: AuctionDraft, staff_id: int | None = None) -> Auction:
    """Schedule an auction (every setup problem at once, as field errors under `input`); one whose start has
    come opens at once."""
    at = clock_now()
    _check_draft(draft, at)
    if not await room_exists(draft.room_id):
        raise DomainError(ErrorCode.NOT_FOUND, "No such live room", "input.roomId")
    if not await Sku.exists(id=draft.sku_id):
        raise DomainError(ErrorCode.NOT_FOUND, "No such SKU", "input.skuId")
    auction = await Auction.create(
        room_id=draft.room_id,
        sku_id=draft.sku_id,
        title=draft.title,
        start_price=draft.start_price,
        increment=draft.increment,
        starts_at=draft.starts_at,
        scheduled_ends_at=draft.ends_at,
        ends_at=draft.ends_at,
        snipe_seconds=draft.snipe_seconds,
        extend_seconds=draft.extend_seconds,
        next_min=draft.start_price,
        created_by_id=staff_id,
    )
    if auction.starts_at <= at:
        await _open(auction, at)
    return await get_auction(auction.id)


async def get_auction(auction_id: int, field_name: str = "id") -> Auction:
    auction = await Auction.get_or_none(id=auction_id)
    if auction is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such auction", field_name)
    return auction


async def cancel_auction(auction_id: int) -> Auction:
    """Call an auction off before it closed; its bids stay on record, nobody is offered the SKU."""
    auction = await get_auction(auction_id)
    moved = await Auction.filter(
        id=auction_id, status__in=(AuctionStatus.SCHEDULED, AuctionStatus.LIVE)
    ).update(status=AuctionStatus.CANCELLED, ended_at=clock_now())
    if not moved:
        raise DomainError(ErrorCode.CONFLICT, f"The auction is already {auction.status.value.lower()}", "id")
    cancelled = await get_auction(auction_id)
    await _publish(
        cancelled.room_id, events.AuctionEnded(auction_id=auction_id, winning_amount=None, winner=None)
    )
    return cancelled


async def _open(auction: Auction, at: datetime) -> bool:
    """SCHEDULED → LIVE once its start has come (guarded: one process does it), announced in its room."""
    if not await Auction.filter(id=auction.id, status=AuctionStatus.SCHEDULED, starts_at__lte=at).update(
        status=AuctionStatus.LIVE
    ):
        return False
    sku = await Sku.get(id=auction.sku_id).prefetch_related("product")  # type: ignore[attr-defined]
    image = (
        await ProductMedia.filter(product_id=sku.product.id, kind=MediaKind.IMAGE)
        .order_by("sort", "id")
        .first()
        .values_list("url", flat=True)
    )
    await _publish(
        auction.room_id,
        events.AuctionStarted(
            auction_id=auction.id,
            product_id=sku.product.id,
            sku_id=sku.id,
            title=auction.title or sku.product.title,
            image_url=str(image or ""),
            start_price=auction.start_price,
            increment=auction.increment,
            ends_at=auction.ends_at,
        ),
    )
    return True


# --- bidding ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BidResult:
    auction: Auction
    bid: AuctionBid
    extended: bool


def mask_nickname(nickname: str) -> str:
    """How a bidder is shown to the room: the first character and two stars (匿名 without a nickname)."""
    return f"{nickname[0]}**" if nickname else "匿名**"


async def place_bid(auction_id: int, member_id: int, amount: int) -> BidResult:
    """Bid `amount` fen: accepted only while the auction is live and at least its least next bid.

    Raises BID_TOO_LOW (the message names the least next bid), AUCTION_CLOSED, NOT_FOUND. An accepted bid in
    the anti-sniping window moves the end; the room hears AuctionBid (and AuctionExtended) after the commit.
    """
    if not 1 <= amount <= MAX_PRICE:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"A bid is 1 to {MAX_PRICE} fen", "amount")
    at = clock_now()
    auction = await get_auction(auction_id, "auctionId")
    if auction.status == AuctionStatus.SCHEDULED and auction.starts_at <= at:
        await _open(auction, at)  # the sweeper has not opened it yet: the first bid does

    async def bid() -> tuple[AuctionBid, bool]:
        async with in_transaction():
            accepted = await Auction.filter(
                id=auction_id,
                status=AuctionStatus.LIVE,
                starts_at__lte=at,
                ends_at__gt=at,
                next_min__lte=amount,
            ).update(
                current_price=amount,
                next_min=F("increment") + amount,
                leader_id=member_id,
                bid_count=F("bid_count") + 1,
            )
            if not accepted:
                await _refusal(auction_id, at)
            window = timedelta(seconds=min(auction.snipe_seconds, auction.extend_seconds))
            extended = bool(auction.snipe_seconds) and bool(
                await Auction.filter(id=auction_id, ends_at__lt=at + window).update(
                    ends_at=at + timedelta(seconds=auction.extend_seconds), extensions=F("extensions") + 1
                )
            )
            row = await AuctionBid.create(
                auction_id=auction_id, member_id=member_id, amount=amount, extended=extended
            )
            return row, extended

    try:
        row, extended = await retry_when_busy(bid)
    except IntegrityError:
        # The guard already refuses a second bid of one amount; the unique pair is the database saying so too.
        raise DomainError(ErrorCode.BID_TOO_LOW, "Someone bid this amount first", "amount") from None
    after = await get_auction(auction_id)
    nickname = await Member.filter(id=member_id).first().values_list("nickname", flat=True)
    await _publish(
        after.room_id,
        events.AuctionBid(
            auction_id=auction_id,
            amount=amount,
            bidder=mask_nickname(str(nickname or "")),
            next_minimum=after.next_min,
            ends_at=after.ends_at,
        ),
    )
    if extended:
        await _publish(after.room_id, events.AuctionExtended(auction_id=auction_id, ends_at=after.ends_at))
    return BidResult(after, row, extended)


async def _refusal(auction_id: int, at: datetime) -> None:
    current = await get_auction(auction_id, "auctionId")
    if current.status != AuctionStatus.LIVE or not current.starts_at <= at < current.ends_at:
        raise DomainError(ErrorCode.AUCTION_CLOSED, "This auction is not taking bids", "auctionId")
    raise DomainError(ErrorCode.BID_TOO_LOW, f"The least bid now is {current.next_min} fen", "amount")


async def member_highest_bids(auction_ids: list[int], member_id: int) -> dict[int, int]:
    """A member's highest bid per auction (auctions they did not bid on are absent)."""
    rows = await AuctionBid.filter(auction_id__in=auction_ids, member_id=member_id).values_list(
        "auction_id", "amount"
    )
    best: dict[int, int] = {}
    for auction_id, amount in rows:
        best[auction_id] = max(amount, best.get(auction_id, 0))
    return best


# --- closing and offers (the sweeper) -----------------------------------------------------------------------


def _offer_window() -> timedelta:
    return timedelta(minutes=get_settings().order_pay_timeout_minutes)


async def _ranked_bidders(auction_id: int) -> list[tuple[int, int]]:
    """(member, their highest bid), best first: who is offered the SKU, in turn."""
    seen: dict[int, int] = {}
    rows = (
        await AuctionBid.filter(auction_id=auction_id).order_by("-amount").values_list("member_id", "amount")
    )
    for member_id, amount in rows:
        seen.setdefault(member_id, amount)
    return list(seen.items())


async def close_due_auctions(at: datetime) -> int:
    """Open scheduled auctions whose start came; close live ones whose (extended) end passed, offering the SKU
    to the best bidder; pass lapsed offers to the next bidder."""
    moved = 0
    for auction in await Auction.filter(status=AuctionStatus.SCHEDULED, starts_at__lte=at).limit(SWEEP_BATCH):
        moved += await _open(auction, at)
    for auction in await Auction.filter(status=AuctionStatus.LIVE, ends_at__lte=at).limit(SWEEP_BATCH):
        moved += await _close(auction, at)
    lapsed = await Auction.filter(
        status=AuctionStatus.OFFERED, offer_deadline__lte=at, order_id__isnull=True
    ).limit(SWEEP_BATCH)
    for auction in lapsed:
        moved += await _offer_next(auction.id, auction.offer_rank, at)
    # A backstop for the cancel hook: an offer whose order was cancelled unpaid passes on.
    dead = await Auction.filter(status=AuctionStatus.OFFERED, order__status=OrderStatus.CANCELLED).limit(
        SWEEP_BATCH
    )
    for auction in dead:
        moved += await _offer_next(auction.id, auction.offer_rank, at)
    return moved


async def _close(auction: Auction, at: datetime) -> bool:
    ranked = await _ranked_bidders(auction.id)
    if ranked:
        member_id, amount = ranked[0]
        closed = await Auction.filter(id=auction.id, status=AuctionStatus.LIVE, ends_at__lte=at).update(
            status=AuctionStatus.OFFERED,
            ended_at=at,
            offer_member_id=member_id,
            offer_price=amount,
            offer_deadline=at + _offer_window(),
            offer_rank=1,
        )
    else:
        closed = await Auction.filter(id=auction.id, status=AuctionStatus.LIVE, ends_at__lte=at).update(
            status=AuctionStatus.UNSOLD, ended_at=at
        )
    if not closed:
        return False  # another process closed it, or a last bid extended it
    winner = None
    if ranked:
        nickname = await Member.filter(id=ranked[0][0]).first().values_list("nickname", flat=True)
        winner = mask_nickname(str(nickname or ""))
    await _publish(
        auction.room_id,
        events.AuctionEnded(
            auction_id=auction.id, winning_amount=ranked[0][1] if ranked else None, winner=winner
        ),
    )
    if ranked:
        await _announce_offer(auction.room_id, auction.id, ranked[0], 1, at + _offer_window())
    return True


async def _offer_next(auction_id: int, rank: int, at: datetime) -> bool:
    """Pass the offer from the bidder at `rank` to the next one (guarded by the rank: once)."""
    ranked = await _ranked_bidders(auction_id)
    if rank < len(ranked):
        member_id, amount = ranked[rank]
        changes = {
            "offer_member_id": member_id,
            "offer_price": amount,
            "offer_deadline": at + _offer_window(),
            "offer_rank": rank + 1,
            "order_id": None,
        }
    else:
        changes = {
            "status": AuctionStatus.UNSOLD,
            "offer_member_id": None,
            "offer_deadline": None,
            "order_id": None,
        }
    moved = bool(
        await Auction.filter(id=auction_id, status=AuctionStatus.OFFERED, offer_rank=rank).update(**changes)
    )
    if moved and rank < len(ranked):
        room_id = await Auction.filter(id=auction_id).first().values_list("room_id", flat=True)
        await _announce_offer(int(room_id), auction_id, ranked[rank], rank + 1, changes["offer_deadline"])  # type: ignore[arg-type]
    return moved


async def _announce_offer(
    room_id: int, auction_id: int, bidder: tuple[int, int], rank: int, deadline: datetime
) -> None:
    """Tell the room whose turn it is to buy (AuctionOffered): the bidder knows it by the amount."""
    member_id, amount = bidder
    nickname = await Member.filter(id=member_id).first().values_list("nickname", flat=True)
    await _publish(
        room_id,
        events.AuctionOffered(
            auction_id=auction_id,
            amount=amount,
            bidder=mask_nickname(str(nickname or "")),
            rank=rank,
            deadline=deadline,
        ),
    )


async def sweep_auctions(at: datetime) -> int:
    return await close_due_auctions(at)


register_sweep_job("auctions", sweep_auctions)


# --- buying: the AUCTION campaign of checkout ---------------------------------------------------------------


class AuctionCampaign:
    """The offered bidder buys the auction's SKU, one unit, at their bid, through checkout."""

    kind = CampaignKind.AUCTION

    async def price(
        self, member_id: int, ref: CampaignRef, sku: Sku, quantity: int, ctx: PriceContext
    ) -> CampaignPrice:
        auction = await _offer_for(member_id, ref)
        if auction.sku_id != sku.id:  # type: ignore[attr-defined]
            raise DomainError(ErrorCode.BAD_USER_INPUT, "The auction sells another SKU", "input.items")
        if quantity != 1:
            raise DomainError(ErrorCode.BAD_USER_INPUT, "An auction sells one unit", "input.items")
        assert auction.offer_price is not None
        return CampaignPrice(
            auction.offer_price,
            {"auctionId": auction.id, "rank": auction.offer_rank, "price": auction.offer_price},
        )

    async def reserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        return None  # the guarded update in `attach` holds the offer for one order

    async def unreserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        return None

    async def attach(self, order: Order, line_id: int, ref: CampaignRef, quantity: int) -> None:
        at = clock_now()
        member_id: int = order.member_id  # type: ignore[attr-defined]
        taken = await Auction.filter(
            id=ref.id,
            status=AuctionStatus.OFFERED,
            offer_member_id=member_id,
            offer_deadline__gt=at,
            order_id__isnull=True,
        ).update(order_id=order.id)
        if not taken:
            raise DomainError(ErrorCode.CONFLICT, "This auction offer is taken or has lapsed", "input.items")
        # The order must be paid within the offer's window, not the shop's usual one.
        deadline = await Auction.filter(id=ref.id).first().values_list("offer_deadline", flat=True)
        if deadline is not None and deadline < order.pay_deadline:
            await Order.filter(id=order.id).update(pay_deadline=deadline)
            order.pay_deadline = deadline


async def _offer_for(member_id: int, ref: CampaignRef) -> Auction:
    if ref.node != "Auction":
        raise DomainError(ErrorCode.INVALID_ID, "An AUCTION item names an Auction", "input.items")
    auction = await Auction.get_or_none(id=ref.id)
    if auction is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such auction", "input.items")
    if (
        auction.status != AuctionStatus.OFFERED
        or auction.offer_member_id != member_id  # type: ignore[attr-defined]
        or auction.order_id is not None  # type: ignore[attr-defined]
        or auction.offer_deadline is None
        or auction.offer_deadline <= clock_now()
    ):
        raise DomainError(ErrorCode.FORBIDDEN, "This auction is not offered to you now", "input.items")
    return auction


async def _on_paid(order: Order, from_status: OrderStatus, news: states.Announcements) -> None:
    await Auction.filter(order_id=order.id, status=AuctionStatus.OFFERED).update(
        status=AuctionStatus.SOLD, sold_at=clock_now()
    )


async def _on_cancelled(order: Order, from_status: OrderStatus, news: states.Announcements) -> None:
    if from_status != OrderStatus.PENDING_PAYMENT:
        return  # a paid auction order refunded later stays sold
    auction = await Auction.get_or_none(order_id=order.id, status=AuctionStatus.OFFERED)
    if auction is not None:
        await _offer_next(auction.id, auction.offer_rank, clock_now())


CAMPAIGN = AuctionCampaign()
register_campaign(CAMPAIGN)
states.register_entry_hook(OrderStatus.PAID, _on_paid)
states.register_entry_hook(OrderStatus.CANCELLED, _on_cancelled)


# --- room events --------------------------------------------------------------------------------------------


async def _publish(room_id: int, event: events.RoomEvent) -> None:
    # After the commit that made the change; a lost event is logged, never the change's failure.
    try:
        await events.publish_room_event(room_id, event)
    except Exception:
        log.exception("room %s: %s not published", room_id, event.KIND)
