"""Timed auctions of one SKU in a live room, and their bids.

A bid is accepted by one guarded update of the auction row (status, end time and the least next bid in its
WHERE clause), so two bids of the same amount can never both be accepted; the unique (auction, amount) pair of
accepted bids says so again in the database. The winner, and after them the next bidders in turn, are offered
the SKU at their own highest bid for a payment window.
"""

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class AuctionStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    LIVE = "LIVE"
    # Bidding is over; the SKU is offered to the best bidder who has not yet let an offer lapse.
    OFFERED = "OFFERED"
    SOLD = "SOLD"
    # Nobody bid, or every bidder let their offer lapse.
    UNSOLD = "UNSOLD"
    CANCELLED = "CANCELLED"


class Auction(Model):
    id = fields.IntField(primary_key=True)
    room_id = fields.IntField()
    sku = fields.ForeignKeyField("models.Sku", related_name="auctions", on_delete=fields.RESTRICT)
    title = fields.CharField(max_length=64, default="")
    # Money in fen.
    start_price = fields.IntField()
    increment = fields.IntField()
    starts_at = fields.DatetimeField()
    # The end as scheduled, and as extended by late bids (anti-sniping).
    scheduled_ends_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    # A bid less than `snipe_seconds` before the end moves the end to `extend_seconds` after the bid.
    snipe_seconds = fields.IntField(default=30)
    extend_seconds = fields.IntField(default=30)
    status = fields.CharEnumField(AuctionStatus, max_length=16, default=AuctionStatus.SCHEDULED)
    current_price = fields.IntField(null=True)
    # The least amount the next bid may offer: start_price, then the last accepted bid plus the increment.
    next_min = fields.IntField()
    leader = fields.ForeignKeyField(
        "models.Member", related_name="auctions_leading", null=True, on_delete=fields.RESTRICT
    )
    bid_count = fields.IntField(default=0)
    extensions = fields.IntField(default=0)
    ended_at = fields.DatetimeField(null=True)
    # The offer: who may buy now, at what price, until when; `offer_rank` 1 is the winner, 2 the next bidder ...
    offer_member = fields.ForeignKeyField(
        "models.Member", related_name="auction_offers", null=True, on_delete=fields.RESTRICT
    )
    offer_price = fields.IntField(null=True)
    offer_deadline = fields.DatetimeField(null=True)
    offer_rank = fields.IntField(default=0)
    order = fields.ForeignKeyField(
        "models.Order", related_name="auctions", null=True, on_delete=fields.SET_NULL
    )
    sold_at = fields.DatetimeField(null=True)
    created_by = fields.ForeignKeyField(
        "models.Staff", related_name="auctions", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "auctions"
        indexes = (
            ("status", "starts_at"),
            ("status", "ends_at"),
            ("status", "offer_deadline"),
            ("room_id", "starts_at"),
        )


class AuctionBid(Model):
    id = fields.IntField(primary_key=True)
    auction = fields.ForeignKeyField("models.Auction", related_name="bids", on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("models.Member", related_name="auction_bids", on_delete=fields.RESTRICT)
    amount = fields.IntField()
    # Whether this bid moved the auction's end.
    extended = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "auction_bids"
        unique_together = (("auction", "amount"),)
        indexes = (("auction_id", "member_id"),)
