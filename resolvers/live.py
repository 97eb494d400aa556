"""Live sale root fields: rooms and their products for shoppers, the staff controls, comments, and the room's
event subscription. Thin: decode IDs, check who asks, call services.live, wrap models."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from strawberry.types import Info

from models import LiveComment as LiveCommentModel
from models import LiveRoom as LiveRoomModel
from models import LiveRoomProduct as LiveRoomProductModel
from models import LiveRoomStatus as LiveRoomStatusModel
from models import Moderation as ModerationModel
from resolvers.access import staff_mutation
from resolvers.node import node_type
from resolvers.payloads import payload_mutation
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.live import (
    LiveComment,
    LiveCommentPayload,
    LiveMutePayload,
    LiveRoom,
    LiveRoomConnection,
    LiveRoomInput,
    LiveRoomPayload,
    LiveRoomProduct,
    LiveRoomProductInput,
    LiveRoomProductPayload,
    LiveRoomProductUpdateInput,
    LiveRoomUpdateInput,
)
from schema.live_events import LiveRoomEvent, LiveRoomStatus, event_object
from schema.node import decode_id
from services.access.permissions import Permission, holds, require_permission
from services.catalog.listing import check_page_size
from services.errors import DomainError, ErrorCode
from services.live import comments, feed, products, rooms

LiveInfo = Info[Context, None]


# --- node(id:) -------------------------------------------------------------------------------------------------


@node_type("LiveRoom")
async def live_room_node(context: Context, pk: int) -> LiveRoom | None:
    row = await context.rows(LiveRoomModel).load(pk)
    return LiveRoom.from_model(row) if row else None


@node_type("LiveRoomProduct")
async def live_room_product_node(context: Context, pk: int) -> LiveRoomProduct | None:
    row = await context.rows(LiveRoomProductModel).load(pk)
    if row is None:
        return None
    room = await context.rows(LiveRoomModel).load(row.room_id)
    return LiveRoomProduct.from_model(row, pinned=room is not None and room.pinned_id == row.id)


# --- Shoppers ----------------------------------------------------------------------------------------------------


async def live_rooms(
    info: LiveInfo, status: LiveRoomStatus | None = None, first: int | None = 20, after: str | None = None
) -> LiveRoomConnection:
    """Rooms, latest start first; `status: LIVE` for the ones on air now."""
    info.context.cache_blocked = True  # statuses, pins and stock change by the second
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    wanted = LiveRoomStatusModel(status.value) if status else None
    rows, has_next = await rooms.list_rooms(wanted, offset, limit)
    edges, page_info = build_edges([LiveRoom.from_model(r) for r in rows], offset)
    page_info.has_next_page = has_next
    return LiveRoomConnection(edges=edges, page_info=page_info, total_count=await rooms.count_rooms(wanted))


async def live_room(info: LiveInfo, id: strawberry.ID) -> LiveRoom | None:
    info.context.cache_blocked = True
    row = await LiveRoomModel.get_or_none(id=decode_id(id, "LiveRoom"))
    return LiveRoom.from_model(row) if row else None


# --- Staff: rooms --------------------------------------------------------------------------------------------------


def _draft(input: LiveRoomInput | LiveRoomUpdateInput) -> rooms.RoomDraft:
    return rooms.RoomDraft(
        title=input.title,
        cover_url=input.cover_url,
        anchor_name=input.anchor_name,
        scheduled_start=input.scheduled_start,
        scheduled_end=input.scheduled_end,
    )


@staff_mutation(Permission.CONTENT_WRITE, action="liveRoomSchedule")
async def live_room_schedule(info: LiveInfo, input: LiveRoomInput) -> LiveRoomPayload:
    return LiveRoomPayload(room=LiveRoom.from_model(await rooms.schedule_room(_draft(input))))


@staff_mutation(Permission.CONTENT_WRITE, action="liveRoomUpdate")
async def live_room_update(info: LiveInfo, id: strawberry.ID, input: LiveRoomUpdateInput) -> LiveRoomPayload:
    room = await rooms.update_room(decode_id(id, "LiveRoom"), _draft(input))
    return LiveRoomPayload(room=LiveRoom.from_model(room))


async def _move(id: strawberry.ID, to: LiveRoomStatusModel) -> LiveRoomPayload:
    return LiveRoomPayload(room=LiveRoom.from_model(await rooms.move_room(decode_id(id, "LiveRoom"), to)))


@staff_mutation(Permission.CONTENT_WRITE, action="liveRoomGoLive")
async def live_room_go_live(info: LiveInfo, id: strawberry.ID) -> LiveRoomPayload:
    return await _move(id, LiveRoomStatusModel.LIVE)


@staff_mutation(Permission.CONTENT_WRITE, action="liveRoomPause")
async def live_room_pause(info: LiveInfo, id: strawberry.ID) -> LiveRoomPayload:
    return await _move(id, LiveRoomStatusModel.PAUSED)


@staff_mutation(Permission.CONTENT_WRITE, action="liveRoomEnd")
async def live_room_end(info: LiveInfo, id: strawberry.ID) -> LiveRoomPayload:
    return await _move(id, LiveRoomStatusModel.ENDED)


# --- Staff: room products ----------------------------------------------------------------------------------------


@staff_mutation(Permission.CONTENT_WRITE, action="liveRoomProductAdd")
async def live_room_product_add(info: LiveInfo, input: LiveRoomProductInput) -> LiveRoomProductPayload:
    row = await products.add_room_product(
        decode_id(input.room_id, "LiveRoom", "input.roomId"),
        decode_id(input.sku_id, "Sku", "input.skuId"),
        input.live_price,
        input.allotment,
    )
    return LiveRoomProductPayload(room_product=LiveRoomProduct.from_model(row))


@staff_mutation(Permission.CONTENT_WRITE, action="liveRoomProductUpdate")
async def live_room_product_update(
    info: LiveInfo, id: strawberry.ID, input: LiveRoomProductUpdateInput
) -> LiveRoomProductPayload:
    changed = await products.update_room_product(
        decode_id(id, "LiveRoomProduct"), live_price=input.live_price, allotment=input.allotment
    )
    return LiveRoomProductPayload(
        room_product=LiveRoomProduct.from_model(changed.item, pinned=changed.pinned)
    )


@staff_mutation(Permission.CONTENT_WRITE, action="liveRoomProductRemove")
async def live_room_product_remove(info: LiveInfo, id: strawberry.ID) -> LiveRoomPayload:
    room = await products.remove_room_product(decode_id(id, "LiveRoomProduct"))
    return LiveRoomPayload(room=LiveRoom.from_model(room))


@staff_mutation(Permission.CONTENT_WRITE, action="liveRoomPin")
async def live_room_pin(
    info: LiveInfo, room_id: strawberry.ID, room_product_id: strawberry.ID | None = None
) -> LiveRoomPayload:
    """Present this product now (讲解中); without `roomProductId`, present none."""
    pk = decode_id(room_product_id, "LiveRoomProduct", "roomProductId") if room_product_id else None
    room = await products.pin(decode_id(room_id, "LiveRoom", "roomId"), pk)
    return LiveRoomPayload(room=LiveRoom.from_model(room))


# --- Comments ---------------------------------------------------------------------------------------------------------


@payload_mutation
async def live_comment_post(info: LiveInfo, room_id: strawberry.ID, text: str) -> LiveCommentPayload:
    """A member's comment: shown at once when WeChat's check passes it (status PASSED), or HELD for staff."""
    if len(text) > comments.COMMENT_MAX * 4:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"A comment has at most {comments.COMMENT_MAX} characters", "text"
        )
    viewer = info.context.viewer
    if viewer.member is None:
        if viewer.is_anonymous:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "Log in with WeChat first")
        raise DomainError(ErrorCode.FORBIDDEN, "Only members can comment")
    posted = await comments.post_comment(decode_id(room_id, "LiveRoom", "roomId"), viewer.member.id, text)
    return LiveCommentPayload(comment=LiveComment.from_posted(posted))


async def _comment_payload(row: LiveCommentModel) -> LiveCommentPayload:
    await row.fetch_related("member")
    return LiveCommentPayload(comment=LiveComment.from_model(row))


@staff_mutation(Permission.CONTENT_WRITE, action="liveCommentApprove")
async def live_comment_approve(info: LiveInfo, id: strawberry.ID) -> LiveCommentPayload:
    return await _comment_payload(await comments.approve_comment(decode_id(id, "LiveComment")))


@staff_mutation(Permission.CONTENT_WRITE, action="liveCommentRemove")
async def live_comment_remove(info: LiveInfo, id: strawberry.ID) -> LiveCommentPayload:
    staff = info.context.viewer.staff
    assert staff is not None
    return await _comment_payload(await comments.remove_comment(decode_id(id, "LiveComment"), staff.id))


@staff_mutation(Permission.CONTENT_WRITE, action="liveMemberMute")
async def live_member_mute(
    info: LiveInfo, room_id: strawberry.ID, member_id: strawberry.ID, minutes: int | None = None
) -> LiveMutePayload:
    """Silence a member in a room for `minutes` (omitted: for the rest of the room; 0: unmute)."""
    staff = info.context.viewer.staff
    assert staff is not None
    until = await comments.mute_member(
        decode_id(room_id, "LiveRoom", "roomId"),
        decode_id(member_id, "Member", "memberId"),
        minutes,
        staff.id,
    )
    return LiveMutePayload(muted_until=until)


async def live_held_comments(
    info: LiveInfo, room_id: strawberry.ID, first: int | None = 50
) -> list[LiveComment]:
    """Staff with CONTENT_WRITE: the room's comments waiting for a decision, oldest first."""
    require_permission(info.context.viewer, Permission.CONTENT_WRITE)
    limit = check_page_size(first, info.context.settings.max_page_size)
    rows = await comments.held_comments(decode_id(room_id, "LiveRoom", "roomId"), limit)
    return [LiveComment.from_model(r) for r in rows]


@node_type("LiveComment")
async def live_comment_node(context: Context, pk: int) -> LiveComment | None:
    """Everyone sees a shown comment; content staff see every one."""
    row = await LiveCommentModel.get_or_none(id=pk).prefetch_related("member")
    if row is None:
        return None
    if row.moderation == ModerationModel.PASSED and not row.removed:
        return LiveComment.from_model(row)
    return LiveComment.from_model(row) if holds(context.viewer, Permission.CONTENT_WRITE) else None


# --- The room's event stream ---------------------------------------------------------------------------------


async def live_room_events(
    info: LiveInfo,
    room_id: strawberry.ID,
    after_seq: int | None = None,
    batch_comments: Annotated[
        bool,
        strawberry.argument(
            description="Comments as CommentsPosted batches (gathered for up to 200 ms) instead of one "
            "CommentPosted each: what a busy room's page should ask for."
        ),
    ] = False,
) -> AsyncGenerator[LiveRoomEvent, None]:
    pk = decode_id(room_id, "LiveRoom", "roomId")
    if after_seq is not None and after_seq < 0:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "afterSeq is a sequence number (0 or more)", "afterSeq")
    if not await rooms.room_exists(pk):
        raise DomainError(ErrorCode.NOT_FOUND, "No such live room", "roomId")
    async for envelope in feed.room_events(pk, after_seq, batch_comments):
        yield event_object(envelope)


@strawberry.type
class LiveQuery:
    live_rooms: LiveRoomConnection = strawberry.field(resolver=live_rooms)
    live_room: LiveRoom | None = strawberry.field(resolver=live_room)
    live_held_comments: list[LiveComment] = strawberry.field(resolver=live_held_comments)


@strawberry.type
class LiveMutation:
    live_room_schedule: LiveRoomPayload = strawberry.mutation(
        resolver=live_room_schedule, description="Staff with CONTENT_WRITE: a new SCHEDULED room."
    )
    live_room_update: LiveRoomPayload = strawberry.mutation(resolver=live_room_update)
    live_room_go_live: LiveRoomPayload = strawberry.mutation(
        resolver=live_room_go_live, description="SCHEDULED or PAUSED → LIVE: live prices hold from now."
    )
    live_room_pause: LiveRoomPayload = strawberry.mutation(
        resolver=live_room_pause, description="LIVE → PAUSED."
    )
    live_room_end: LiveRoomPayload = strawberry.mutation(
        resolver=live_room_end, description="→ ENDED, for good."
    )
    live_room_product_add: LiveRoomProductPayload = strawberry.mutation(resolver=live_room_product_add)
    live_room_product_update: LiveRoomProductPayload = strawberry.mutation(resolver=live_room_product_update)
    live_room_product_remove: LiveRoomPayload = strawberry.mutation(resolver=live_room_product_remove)
    live_room_pin: LiveRoomPayload = strawberry.mutation(resolver=live_room_pin)
    live_comment_post: LiveCommentPayload = strawberry.mutation(
        resolver=live_comment_post,
        description="Members: at most 100 characters, 5 per 10 seconds per room, while the room is on air; "
        "WeChat's content check decides (CONTENT_REJECTED, or HELD for staff).",
    )
    live_comment_approve: LiveCommentPayload = strawberry.mutation(resolver=live_comment_approve)
    live_comment_remove: LiveCommentPayload = strawberry.mutation(resolver=live_comment_remove)
    live_member_mute: LiveMutePayload = strawberry.mutation(resolver=live_member_mute)


# --- The room's events ---------------------------------------------------------------------------------------------


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
