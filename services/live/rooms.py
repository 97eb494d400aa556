"""Live rooms: staff schedule them, go live, pause and end them; shoppers list and open them.

A room's status moves only along ROOM_TRANSITIONS, each move one guarded update (two staff pressing "end" at
once end it once). Every committed move is announced in the room (RoomStatusChanged). When the shop also runs
WeChat's own live rooms (小程序直播) and LIVE_WECHAT_SYNC is on, `sync_wechat_rooms` copies WeChat's rooms
(getliveinfo: status 101-107, goods) into ours, matched by WeChat's room id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infra import wechat
from infra.clock import SHOP_TZ, now
from infra.redis import REDIS_ERRORS
from infra.runtime import current_runtime
from infra.settings import get_settings
from models import LiveRoom, LiveRoomStatus
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.live.events import RoomStatusChanged, publish_room_event
from services.orders.sweeper import register_sweep_job

log = logging.getLogger("lianmall.live.rooms")

TITLE_MAX = 60
ANCHOR_MAX = 30
COVER_URL_MAX = 500
LONGEST_SESSION = timedelta(hours=24)

S = LiveRoomStatus
ROOM_TRANSITIONS: dict[LiveRoomStatus, frozenset[LiveRoomStatus]] = {
    S.LIVE: frozenset({S.SCHEDULED, S.PAUSED}),
    S.PAUSED: frozenset({S.LIVE}),
    S.ENDED: frozenset({S.SCHEDULED, S.LIVE, S.PAUSED}),
}

# WeChat's live_status codes (getliveinfo) and the status they mean here.
WECHAT_STATUS: dict[int, LiveRoomStatus] = {
    101: S.LIVE,  # 直播中
    102: S.SCHEDULED,  # 未开始
    103: S.ENDED,  # 已结束
    104: S.ENDED,  # 禁播
    105: S.PAUSED,  # 暂停
    106: S.ENDED,  # 异常
    107: S.ENDED,  # 已过期
}
WECHAT_PAGE = 100
WECHAT_SYNC_LOCK = "live:wechat-sync"


@dataclass(frozen=True)
class RoomDraft:
    """What staff fill in for a room; None leaves a field as it is (on update)."""

    title: str | None = None
    cover_url: str | None = None
    anchor_name: str | None = None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None


def _text(value: str, field: str, longest: int, errors: list[DomainError]) -> str:
    value = value.strip()
    if not value:
        errors.append(DomainError(ErrorCode.BAD_USER_INPUT, "Must not be empty", field))
    elif len(value) > longest:
        errors.append(DomainError(ErrorCode.BAD_USER_INPUT, f"At most {longest} characters", field))
    return value


def _checked(draft: RoomDraft, current: LiveRoom | None, times: bool = True) -> dict[str, Any]:
    errors: list[DomainError] = []
    changes: dict[str, Any] = {}
    if draft.title is not None:
        changes["title"] = _text(draft.title, "input.title", TITLE_MAX, errors)
    if draft.anchor_name is not None:
        changes["anchor_name"] = _text(draft.anchor_name, "input.anchorName", ANCHOR_MAX, errors)
    if draft.cover_url is not None:
        cover = draft.cover_url.strip()
        if len(cover) > COVER_URL_MAX:
            errors.append(DomainError(ErrorCode.BAD_USER_INPUT, "At most 500 characters", "input.coverUrl"))
        elif cover and not cover.startswith(("https://", "http://", "/")):
            errors.append(
                DomainError(
                    ErrorCode.BAD_USER_INPUT, "An http(s) URL or a path on this server", "input.coverUrl"
                )
            )
        changes["cover_url"] = cover
    start = draft.scheduled_start or (current.scheduled_start if current else None)
    end = draft.scheduled_end or (current.scheduled_end if current else None)
    if not times:
        pass
    elif start is None or end is None:
        errors.append(DomainError(ErrorCode.BAD_USER_INPUT, "A room needs its start and end", "input"))
    elif end <= start:
        errors.append(DomainError(ErrorCode.BAD_USER_INPUT, "Ends after it starts", "input.scheduledEnd"))
    elif end - start > LONGEST_SESSION:
        errors.append(
            DomainError(ErrorCode.BAD_USER_INPUT, "A session lasts at most 24 hours", "input.scheduledEnd")
        )
    if draft.scheduled_start is not None:
        changes["scheduled_start"] = draft.scheduled_start
    if draft.scheduled_end is not None:
        changes["scheduled_end"] = draft.scheduled_end
    if errors:
        raise ValidationErrors(errors)
    return changes


async def schedule_room(draft: RoomDraft) -> LiveRoom:
    """A new SCHEDULED room. Raises ValidationErrors (BAD_USER_INPUT per field)."""
    for name in ("title", "anchor_name", "scheduled_start", "scheduled_end"):
        if getattr(draft, name) is None:
            field = {"anchor_name": "anchorName", "scheduled_start": "scheduledStart"}.get(name, name)
            raise DomainError(ErrorCode.BAD_USER_INPUT, "Required", f"input.{field}")
    return await LiveRoom.create(**_checked(draft, None))


async def get_room(room_id: int, field: str = "id") -> LiveRoom:
    room = await LiveRoom.get_or_none(id=room_id)
    if room is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such live room", field)
    return room


async def room_exists(room_id: int) -> bool:
    return await LiveRoom.exists(id=room_id)


async def update_room(room_id: int, draft: RoomDraft) -> LiveRoom:
    """Change a room's title, cover, anchor or times; an ended room is history and stays as it was."""
    # Text first, before any lookup: an over-long title is a bad input whatever the room.
    _checked(RoomDraft(draft.title, draft.cover_url, draft.anchor_name), None, times=False)
    room = await get_room(room_id)
    if room.status == S.ENDED:
        raise DomainError(ErrorCode.CONFLICT, "The room has ended", "id")
    changes = _checked(draft, room)
    if changes:
        await LiveRoom.filter(id=room_id).update(**changes, updated_at=now())
    return await get_room(room_id)


async def move_room(room_id: int, to: LiveRoomStatus) -> LiveRoom:
    """Go live, pause or end: one guarded update, then the room hears of it.

    Raises NOT_FOUND, or CONFLICT when the room is not in a status it can move from (e.g. ending it twice).
    """
    room = await get_room(room_id)
    allowed = ROOM_TRANSITIONS[to]
    changes: dict[str, Any] = {"status": to, "updated_at": now()}
    if to == S.LIVE and room.started_at is None:
        changes["started_at"] = now()
    if to == S.ENDED:
        changes["ended_at"] = now()
        changes["pinned_id"] = None
    moved = await LiveRoom.filter(id=room_id, status__in=list(allowed)).update(**changes)
    if not moved:
        current = (await get_room(room_id)).status
        raise DomainError(ErrorCode.CONFLICT, f"A {current.value} room cannot become {to.value}", "id")
    await publish_room_event(room_id, RoomStatusChanged(status=to.value))
    return await get_room(room_id)


async def list_rooms(status: LiveRoomStatus | None, offset: int, limit: int) -> tuple[list[LiveRoom], bool]:
    """Rooms live now first, then by start, newest first; one more row is read to tell whether a next page exists."""
    query = LiveRoom.filter(status=status) if status else LiveRoom.all()
    rows = await query.order_by("-scheduled_start", "-id").offset(offset).limit(limit + 1)
    return rows[:limit], len(rows) > limit


async def count_rooms(status: LiveRoomStatus | None) -> int:
    return await (LiveRoom.filter(status=status) if status else LiveRoom.all()).count()


# --- WeChat's live rooms (小程序直播) -------------------------------------------------------------------


def _wechat_time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), SHOP_TZ) if isinstance(value, int) and value > 0 else None


def _goods(items: Any) -> list[dict[str, Any]]:
    goods = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            goods.append(
                {
                    "name": str(item.get("name", ""))[:60],
                    "coverUrl": str(item.get("cover_img", ""))[:500],
                    "url": str(item.get("url", ""))[:500],
                    # WeChat gives goods prices in fen (price_type 1: one price).
                    "price": int(item.get("price", 0) or 0),
                }
            )
    return goods


async def apply_wechat_room(info: dict[str, Any]) -> LiveRoom | None:
    """Copy one room of getliveinfo's `room_info` into ours (made on first sight); None for one we cannot read."""
    wechat_id, code = info.get("roomid"), info.get("live_status")
    start, end = _wechat_time(info.get("start_time")), _wechat_time(info.get("end_time"))
    if not isinstance(wechat_id, int) or code not in WECHAT_STATUS or start is None or end is None:
        return None
    values: dict[str, Any] = {
        "title": str(info.get("name", ""))[:TITLE_MAX] or f"直播 {wechat_id}",
        "cover_url": str(info.get("cover_img", ""))[:COVER_URL_MAX],
        "anchor_name": str(info.get("anchor_name", ""))[:ANCHOR_MAX] or "主播",
        "scheduled_start": start,
        "scheduled_end": end,
        "wechat_status": code,
        "wechat_goods": _goods(info.get("goods")),
        "wechat_synced_at": now(),
    }
    room = await LiveRoom.get_or_none(wechat_room_id=wechat_id)
    if room is None:
        room = await LiveRoom.create(wechat_room_id=wechat_id, **values)
    else:
        await LiveRoom.filter(id=room.id).update(**values, updated_at=now())
    target = WECHAT_STATUS[code]
    if room.status != target and room.status != S.ENDED and room.status in ROOM_TRANSITIONS[target]:
        await move_room(room.id, target)
    return await LiveRoom.get(id=room.id)


async def sync_wechat_rooms(at: datetime | None = None) -> int:
    """Copy WeChat's live rooms over (a sweep job; one process at a time through a Redis lock). How many rooms
    it read; 0 when the sync is off, another process holds the lock, or WeChat does not answer."""
    settings = get_settings()
    if not settings.live_wechat_sync or not settings.wechat_appid:
        return 0
    try:
        locked = await current_runtime().redis.set(
            WECHAT_SYNC_LOCK, "1", nx=True, ex=max(1, int(settings.sweep_interval_seconds) - 1)
        )
    except REDIS_ERRORS:
        return 0
    if not locked:
        return 0
    seen = 0
    start = 0
    while True:
        try:
            answer = await wechat.get_live_info(start, WECHAT_PAGE)
        except DomainError as exc:
            log.warning("getliveinfo failed: %s", exc.message)
            return seen
        rooms = answer.get("room_info") or []
        for info in rooms:
            if isinstance(info, dict) and await apply_wechat_room(info) is not None:
                seen += 1
        start += len(rooms)
        if not rooms or start >= int(answer.get("total") or 0):
            return seen


register_sweep_job("live-wechat-rooms", sync_wechat_rooms)
