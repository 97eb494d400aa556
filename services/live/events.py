"""A live room's event stream: one numbered sequence per room, a bounded history in Redis, every process told.

`publish_room_event(room_id, event)` is the only way an event enters a room. One Redis script numbers it (the
room's counter, INCR), appends it to the room's history (a list capped at HISTORY_SIZE) and publishes it on the
room's bus channel, all at once: Redis runs scripts one at a time, so every process hears a room's events in
sequence order and the history holds exactly what was published. A subscriber (see services.live.feed) that
comes back with the last sequence number it saw reads what it missed from the history, then follows the live
channel, skipping what it already has and filling any hole (an event pub/sub dropped) from the history again.

Events are small frozen dataclasses of plain values (database ids, fen, datetimes); the GraphQL edge turns ids
into global IDs. Publish only after the transaction that made the change committed, never inside it. Publishing
never raises: the change happened, and a Redis that cannot hear of it loses the event (the next one carries the
state again; a client's next reconnect reads the history).

Each published event is an envelope `{"seq", "epoch", "type", "roomId", "at", "data"}`. `epoch` names the
counter's lifetime: when Redis lost a room's keys (a restart without persistence) the counter starts again at 1
under a new epoch, and subscribers start counting afresh instead of waiting for numbers that never come.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import orjson

from infra.clock import now
from infra.redis import REDIS_ERRORS
from infra.runtime import current_runtime

log = logging.getLogger("lianmall.live.events")

# Events a room keeps for reconnecting clients; at 10 stock changes and 50 comments a second this is ~10 s,
# far more than a page needs to come back from a network switch. Older ones are gone: the page reloads the room.
HISTORY_SIZE = 1000
# A room's keys outlive its last event by this long, then Redis forgets them.
KEY_TTL_SECONDS = 3 * 24 * 3600

# The global ID type names the events' ids are encoded with (their objects' `node(id:)` types).
ID_TYPES: dict[str, str] = {
    "room_id": "LiveRoom",
    "room_product_id": "LiveRoomProduct",
    "product_id": "Product",
    "sku_id": "Sku",
    "comment_id": "LiveComment",
    "rain_id": "RedPacketRain",
    "auction_id": "Auction",
}


@dataclass(frozen=True, kw_only=True)
class RoomEvent:
    """One thing that happened in a room. Subclasses are the GraphQL union's members (same names)."""

    KIND: ClassVar[str] = ""

    def data(self) -> dict[str, Any]:
        """The event's fields as JSON-ready values (datetimes as ISO 8601 text)."""
        return {
            f.name: (v.isoformat() if isinstance(v, datetime) else v)
            for f in dataclasses.fields(self)
            for v in (getattr(self, f.name),)
        }


@dataclass(frozen=True, kw_only=True)
class RoomStatusChanged(RoomEvent):
    """Staff went live, paused or ended the room (a LiveRoomStatus value)."""

    KIND: ClassVar[str] = "RoomStatusChanged"
    status: str


@dataclass(frozen=True, kw_only=True)
class ProductPinned(RoomEvent):
    """The anchor presents a room product now (讲解中), in place of the one before."""

    KIND: ClassVar[str] = "ProductPinned"
    room_product_id: int
    product_id: int
    sku_id: int
    title: str
    image_url: str
    live_price: int
    original_price: int
    stock: int


@dataclass(frozen=True, kw_only=True)
class ProductUnpinned(RoomEvent):
    """Nothing is presented any more (this room product was)."""

    KIND: ClassVar[str] = "ProductUnpinned"
    room_product_id: int


@dataclass(frozen=True, kw_only=True)
class PriceChanged(RoomEvent):
    KIND: ClassVar[str] = "PriceChanged"
    room_product_id: int
    product_id: int
    sku_id: int
    live_price: int
    original_price: int


@dataclass(frozen=True, kw_only=True)
class StockChanged(RoomEvent):
    """What is left of a room product's allotment (never more than the SKU's own stock)."""

    KIND: ClassVar[str] = "StockChanged"
    room_product_id: int
    product_id: int
    sku_id: int
    stock: int


@dataclass(frozen=True, kw_only=True)
class CommentPosted(RoomEvent):
    KIND: ClassVar[str] = "CommentPosted"
    comment_id: int
    nickname: str
    avatar_url: str
    text: str
    posted_at: datetime


@dataclass(frozen=True, kw_only=True)
class CommentRemoved(RoomEvent):
    KIND: ClassVar[str] = "CommentRemoved"
    comment_id: int


@dataclass(frozen=True, kw_only=True)
class RedPacketRainStarted(RoomEvent):
    KIND: ClassVar[str] = "RedPacketRainStarted"
    rain_id: int
    packet_count: int
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, kw_only=True)
class RedPacketRainEnded(RoomEvent):
    KIND: ClassVar[str] = "RedPacketRainEnded"
    rain_id: int
    packet_count: int
    packets_grabbed: int


@dataclass(frozen=True, kw_only=True)
class AuctionStarted(RoomEvent):
    KIND: ClassVar[str] = "AuctionStarted"
    auction_id: int
    product_id: int
    sku_id: int
    title: str
    image_url: str
    start_price: int
    increment: int
    ends_at: datetime


@dataclass(frozen=True, kw_only=True)
class AuctionBid(RoomEvent):
    """An accepted bid. `bidder` is the bidder's masked nickname; amounts are unique per auction, so a page
    that remembers its own accepted amounts can tell it was outbid."""

    KIND: ClassVar[str] = "AuctionBid"
    auction_id: int
    amount: int
    bidder: str
    next_minimum: int
    ends_at: datetime


@dataclass(frozen=True, kw_only=True)
class AuctionExtended(RoomEvent):
    """A bid in the anti-sniping window moved the end."""

    KIND: ClassVar[str] = "AuctionExtended"
    auction_id: int
    ends_at: datetime


@dataclass(frozen=True, kw_only=True)
class AuctionEnded(RoomEvent):
    KIND: ClassVar[str] = "AuctionEnded"
    auction_id: int
    winning_amount: int | None
    winner: str | None


@dataclass(frozen=True, kw_only=True)
class AuctionOffered(RoomEvent):
    """The closed auction's SKU is offered, until `deadline`, to the bidder whose best bid is `amount` (unique
    within the auction, so a page that remembers its accepted amounts knows it is its turn): rank 1 is the
    winner; each next rank, the bidder after one who did not pay in time."""

    KIND: ClassVar[str] = "AuctionOffered"
    auction_id: int
    amount: int
    bidder: str
    rank: int
    deadline: datetime


@dataclass(frozen=True, kw_only=True)
class ViewerCount(RoomEvent):
    """People watching the room now, across every process (approximate: counted every few seconds)."""

    KIND: ClassVar[str] = "ViewerCount"
    count: int


@dataclass(frozen=True, kw_only=True)
class CommentsPosted(RoomEvent):
    """Comments posted within a moment of each other, delivered as one event to subscribers that asked for
    batches. Never published itself: each comment is its own numbered CommentPosted in the stream and the
    history; a batch is made at delivery and carries the last one's number."""

    KIND: ClassVar[str] = "CommentsPosted"
    comments: tuple[Envelope, ...]


EVENT_TYPES: dict[str, type[RoomEvent]] = {
    cls.KIND: cls
    for cls in (
        RoomStatusChanged,
        ProductPinned,
        ProductUnpinned,
        PriceChanged,
        StockChanged,
        CommentPosted,
        CommentRemoved,
        RedPacketRainStarted,
        RedPacketRainEnded,
        AuctionStarted,
        AuctionBid,
        AuctionExtended,
        AuctionEnded,
        AuctionOffered,
        ViewerCount,
    )
}

_DATETIME_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(
        name
        for name, hint in typing.get_type_hints(cls).items()
        if hint is datetime or hint == (datetime | None)
    )
    for kind, cls in EVENT_TYPES.items()
}


@dataclass(frozen=True)
class Envelope:
    """A published event as every subscriber sees it."""

    seq: int
    epoch: str
    room_id: int
    at: datetime
    event: RoomEvent


def comment_batch(posted: list[Envelope]) -> Envelope:
    """One envelope for consecutive CommentPosted envelopes, numbered (and timed) as the last of them."""
    last = posted[-1]
    return Envelope(
        seq=last.seq,
        epoch=last.epoch,
        room_id=last.room_id,
        at=last.at,
        event=CommentsPosted(comments=tuple(posted)),
    )


def first_seq(envelope: Envelope) -> int:
    """The first sequence number an envelope covers (a batch covers its comments')."""
    event = envelope.event
    return event.comments[0].seq if isinstance(event, CommentsPosted) else envelope.seq


def decode_envelope(message: dict[str, Any]) -> Envelope | None:
    """The envelope of a bus message or history entry; None for one this version does not know."""
    cls = EVENT_TYPES.get(message.get("type", ""))
    if cls is None:
        return None
    data = dict(message["data"])
    for name in _DATETIME_FIELDS[cls.KIND]:
        if data.get(name) is not None:
            data[name] = datetime.fromisoformat(data[name])
    return Envelope(
        seq=int(message["seq"]),
        epoch=str(message.get("epoch", "")),
        room_id=int(message["roomId"]),
        at=datetime.fromisoformat(message["at"]),
        event=cls(**data),
    )


def room_channel(room_id: int) -> str:
    return f"live:{room_id}"


def _keys(room_id: int) -> list[str]:
    base = f"live:room:{room_id}:"
    return [base + "seq", base + "events", base + "epoch"]


# KEYS: seq counter, history list, epoch. ARGV: the envelope without seq/epoch (a JSON object), the full bus
# channel, the history size, the keys' TTL, a fresh epoch in case the room has none.
_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
local epoch = redis.call('GET', KEYS[3])
if (not epoch) or seq == 1 then
  epoch = ARGV[5]
  redis.call('SET', KEYS[3], epoch)
end
local message = '{"seq":' .. seq .. ',"epoch":"' .. epoch .. '",' .. string.sub(ARGV[1], 2)
redis.call('RPUSH', KEYS[2], message)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
redis.call('PUBLISH', ARGV[2], message)
return seq
"""


async def publish_room_event(room_id: int, event: RoomEvent) -> int | None:
    """Number `event`, keep it in the room's history and tell every process; return its sequence number.

    Call it after the change committed. Never raises: None means Redis did not take the event (logged).
    """
    runtime = current_runtime()
    body = orjson.dumps(
        {"type": event.KIND, "roomId": room_id, "at": now().isoformat(), "data": event.data()}
    )
    try:
        script = runtime.redis.register_script(_PUBLISH)
        seq = await script(
            keys=_keys(room_id),
            args=[
                body,
                runtime.bus.channel_name(room_channel(room_id)),
                HISTORY_SIZE,
                KEY_TTL_SECONDS,
                secrets.token_hex(4),
            ],
        )
    except REDIS_ERRORS as exc:
        log.warning("room %s: %s not published: %s", room_id, event.KIND, exc)
        return None
    return int(seq)


async def current_seq(room_id: int) -> int:
    """The room's last sequence number (0 before its first event)."""
    value = await current_runtime().redis.get(_keys(room_id)[0])
    return int(value or 0)


# KEYS: seq counter, history list. ARGV: the last number the caller saw. The history holds consecutive numbers
# ending at the counter, so what comes after ARGV[1] is its last (counter - ARGV[1]) entries; a number beyond
# the counter (the counter started again) gets them all.
_TAIL = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(ARGV[1])
if n == 0 then return {} end
if n < 0 then return redis.call('LRANGE', KEYS[2], 0, -1) end
return redis.call('LRANGE', KEYS[2], -n, -1)
"""


async def history_since(room_id: int, after_seq: int) -> list[Envelope]:
    """The kept events numbered after `after_seq`, oldest first (all of them for a number from a former
    epoch, i.e. larger than the counter now). Reads and decodes only those: a crowd reconnecting after a
    blip each reads the few events it missed, not the whole history."""
    keys = _keys(room_id)
    script = current_runtime().redis.register_script(_TAIL)
    raw = await script(keys=keys[:2], args=[after_seq])
    envelopes = [e for item in raw if (e := decode_envelope(orjson.loads(item))) is not None]
    if envelopes and after_seq > envelopes[-1].seq:
        after_seq = 0  # the counter started again (Redis lost the room): everything kept is news
    return [e for e in envelopes if e.seq > after_seq]
