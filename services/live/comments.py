"""Comments in a live room: members post short texts, WeChat checks each one, staff remove them and mute people.

Every comment passes msg_sec_check version 2 with the writer's openid and the comment scene
(services.content.security, kind LIVE_COMMENT): `risky` is refused (CONTENT_REJECTED, nothing kept), `review`
is kept HELD until staff approve it, `pass` is shown at once. A member posts at most COMMENT_LIMIT comments per
COMMENT_WINDOW_SECONDS in a room (counted in Redis across processes; counted per process while Redis is away).
Shown comments reach the room as CommentPosted; a removed one as CommentRemoved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from infra import raw_sql
from infra.clock import now
from models import LiveComment, LiveMute, LiveRoomStatus, Member, Moderation
from services import rate_limit
from services.content.security import ContentKind, check_text
from services.errors import DomainError, ErrorCode
from services.live.events import CommentPosted, CommentRemoved, publish_room_event
from services.live.rooms import get_room

COMMENT_MAX = 100
COMMENT_LIMIT = 5
COMMENT_WINDOW_SECONDS = 10
LONGEST_MUTE = timedelta(days=30)
RECENT_MAX = 100
# What a comment shows for a member who set no nickname.
ANONYMOUS = "观众"


@dataclass(frozen=True)
class PostedComment:
    """A comment just kept, with the member as it shows them (their nickname, or ANONYMOUS)."""

    id: int
    text: str
    moderation: Moderation
    created_at: datetime
    nickname: str
    avatar_url: str

    @property
    def shown(self) -> bool:
        return self.moderation == Moderation.PASSED


def _clean(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "Write something first", "text")
    if len(text) > COMMENT_MAX:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"A comment has at most {COMMENT_MAX} characters", "text")
    return text


# What a comment needs to know before WeChat is asked, in one statement: the member (the openid for the check,
# what the comment shows of them), whether the room exists and is on air, and whether they are muted there now.
_COMMENTER_SQL = (
    "SELECT m.openid, m.nickname, m.avatar_url, r.status,"
    " EXISTS (SELECT 1 FROM live_mutes u WHERE u.room_id = $2 AND u.member_id = $1"
    " AND (u.until IS NULL OR u.until > $3))"
    " FROM members m LEFT JOIN live_rooms r ON r.id = $2 WHERE m.id = $1"
)


@dataclass(frozen=True)
class _Commenter:
    openid: str
    nickname: str
    avatar_url: str


async def _commenter(room_id: int, member_id: int) -> _Commenter:
    """The member, once the room is on air and they are not muted in it (NOT_FOUND, CONFLICT, FORBIDDEN)."""
    rows = await raw_sql.fetch(_COMMENTER_SQL, [member_id, room_id, now()])
    if not rows:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The token is invalid, expired or revoked")
    openid, nickname, avatar_url, status, muted = rows[0]
    if status is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such live room", "roomId")
    if status not in (LiveRoomStatus.LIVE.value, LiveRoomStatus.PAUSED.value):
        raise DomainError(ErrorCode.CONFLICT, "Comments open while the room is on air", "roomId")
    if muted:
        raise DomainError(ErrorCode.FORBIDDEN, "You have been muted in this room")
    return _Commenter(str(openid), str(nickname or "") or ANONYMOUS, str(avatar_url or ""))


async def post_comment(room_id: int, member_id: int, text: str) -> PostedComment:
    """A member's comment: shown (CommentPosted in the room) or held for staff.

    Raises BAD_USER_INPUT (empty, too long), NOT_FOUND, CONFLICT (the room is not on air), FORBIDDEN (muted),
    RATE_LIMITED, CONTENT_REJECTED, WECHAT_UNAVAILABLE / WECHAT_RATE_LIMITED (nothing kept then).
    """
    text = _clean(text)
    commenter = await _commenter(room_id, member_id)
    if not await rate_limit.hit(f"live-comment:{room_id}:{member_id}", COMMENT_LIMIT, COMMENT_WINDOW_SECONDS):
        raise DomainError(ErrorCode.RATE_LIMITED, "Too many comments; wait a few seconds")
    moderation = await check_text(ContentKind.LIVE_COMMENT, commenter.openid, text, "text")
    created_at = now()
    rows = await raw_sql.fetch(_INSERT_SQL, [room_id, member_id, text, moderation.value, created_at])
    posted = PostedComment(
        int(rows[0][0]), text, moderation, created_at, commenter.nickname, commenter.avatar_url
    )
    if posted.shown:
        await _announce(room_id, posted.id, commenter.nickname, commenter.avatar_url, text, created_at)
    return posted


# A fixed statement: Tortoise's create (a model instance, the query builder) was a tenth of a comment's CPU.
_INSERT_SQL = (
    "INSERT INTO live_comments (room_id, member_id, text, moderation, label, removed, created_at)"
    " VALUES ($1, $2, $3, $4, 0, FALSE, $5) RETURNING id"
)


async def _announce(
    room_id: int, comment_id: int, nickname: str, avatar_url: str, text: str, posted_at: datetime
) -> None:
    await publish_room_event(
        room_id,
        CommentPosted(
            comment_id=comment_id,
            nickname=nickname or ANONYMOUS,
            avatar_url=avatar_url,
            text=text,
            posted_at=posted_at,
        ),
    )


async def _comment(comment_id: int) -> LiveComment:
    comment = await LiveComment.get_or_none(id=comment_id)
    if comment is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such comment", "id")
    return comment


async def approve_comment(comment_id: int) -> LiveComment:
    """Staff show a held comment (CommentPosted in the room). Raises NOT_FOUND, CONFLICT when it is not held."""
    comment = await _comment(comment_id)
    shown = await LiveComment.filter(id=comment_id, moderation=Moderation.HELD, removed=False).update(
        moderation=Moderation.PASSED
    )
    if not shown:
        raise DomainError(ErrorCode.CONFLICT, "Only a held comment can be approved", "id")
    comment = await _comment(comment_id)
    member = await Member.get(id=comment.member_id)  # type: ignore[attr-defined]
    await _announce(
        comment.room_id,  # type: ignore[attr-defined]
        comment.id,
        member.nickname,
        member.avatar_url,
        comment.text,
        comment.created_at,
    )
    return comment


async def remove_comment(comment_id: int, staff_id: int) -> LiveComment:
    """Staff take a comment down (CommentRemoved in the room, if it was shown). Removing twice is harmless."""
    comment = await _comment(comment_id)
    removed = await LiveComment.filter(id=comment_id, removed=False).update(removed=True, removed_by=staff_id)
    if removed and comment.moderation == Moderation.PASSED:
        await publish_room_event(comment.room_id, CommentRemoved(comment_id=comment.id))  # type: ignore[attr-defined]
    return await _comment(comment_id)


async def mute_member(room_id: int, member_id: int, minutes: int | None, staff_id: int) -> datetime | None:
    """Silence a member in a room for `minutes` (None: for the rest of the room; 0: unmute). The end, or None."""
    if minutes is not None and not 0 <= minutes <= LONGEST_MUTE.total_seconds() // 60:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "At most 30 days (43,200 minutes)", "minutes")
    await get_room(room_id, "roomId")
    if not await Member.exists(id=member_id):
        raise DomainError(ErrorCode.NOT_FOUND, "No such member", "memberId")
    if minutes == 0:
        await LiveMute.filter(room_id=room_id, member_id=member_id).delete()
        return None
    until = now() + timedelta(minutes=minutes) if minutes is not None else None
    updated = await LiveMute.filter(room_id=room_id, member_id=member_id).update(
        until=until, staff_id=staff_id
    )
    if not updated:
        await LiveMute.create(room_id=room_id, member_id=member_id, until=until, staff_id=staff_id)
    return until


async def recent_comments(room_id: int, limit: int) -> list[LiveComment]:
    """The latest shown comments of a room, oldest first (what a page shows when it opens)."""
    rows = (
        await LiveComment.filter(room_id=room_id, moderation=Moderation.PASSED, removed=False)
        .order_by("-id")
        .limit(min(limit, RECENT_MAX))
        .prefetch_related("member")
    )
    return list(reversed(rows))


async def held_comments(room_id: int, limit: int) -> list[LiveComment]:
    """Comments waiting for staff, oldest first."""
    return (
        await LiveComment.filter(room_id=room_id, moderation=Moderation.HELD, removed=False)
        .order_by("id")
        .limit(min(limit, RECENT_MAX))
        .prefetch_related("member")
    )
