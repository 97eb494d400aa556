"""Live sale root fields: rooms and their products for shoppers, the staff controls, comments, and the room's
event subscription. Thin: decode IDs, check who asks, call services.live, wrap models."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from schema.context import Context
from schema.live_events import LiveRoomEvent, event_object
from schema.node import decode_id
from services.errors import DomainError, ErrorCode
from services.live import feed, rooms

LiveInfo = Info[Context, None]


async def live_room_events(
    info: LiveInfo,
    room_id: strawberry.ID,
    after_seq: int | None = None,
) -> AsyncGenerator[LiveRoomEvent, None]:
    pk = decode_id(room_id, "LiveRoom", "roomId")
    if after_seq is not None and after_seq < 0:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "afterSeq is a sequence number (0 or more)", "afterSeq")
    if not await rooms.room_exists(pk):
        raise DomainError(ErrorCode.NOT_FOUND, "No such live room", "roomId")
    async for envelope in feed.room_events(pk, after_seq):
        yield event_object(envelope)


@strawberry.type
class LiveSubscription:
    live_room_events: LiveRoomEvent = strawberry.subscription(
        resolver=live_room_events,
        description="Everything that happens in a room, each event numbered by the room's `seq` (select it "
        "with `... on LiveEvent { seq }`: every member implements it). Pass the last "
        "`seq` you saw as `afterSeq` when you reconnect: the events you missed come first (the room keeps its "
        "latest 1,000), then live ones, none twice. Without `afterSeq`: from now on (read `liveRoom.eventSeq` "
        "with the page's first query and pass it to miss nothing in between).",
    )
