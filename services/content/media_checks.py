"""Verdicts on uploaded images: WeChat's `wxa_media_check` events, and staff deciding the held ones.

An upload is decided once: the guarded update (still PENDING, or HELD for staff) lets one verdict win however
often WeChat repeats its push or however many processes receive it. Whatever shows the image (review photos,
articles) is then told, so counts and cached pages follow.
"""

from __future__ import annotations

import logging
from typing import Any

from infra.clock import now
from infra.settings import get_settings
from infra.wechat import Verdict
from models import Moderation, Upload
from services.content import articles, reviews
from services.content.security import media_moderation
from services.errors import DomainError, ErrorCode

log = logging.getLogger("lianmall.content")

MEDIA_CHECK_EVENT = "wxa_media_check"


async def _decided(upload_id: int) -> None:
    await reviews.photo_moderated(upload_id)
    await articles.media_moderated(upload_id)


async def apply_media_verdict(verdict: Verdict) -> Upload | None:
    """Record WeChat's verdict for the upload its trace_id names; None for an unknown trace (an answer to a
    check asked again since, or not ours). A repeated verdict changes nothing."""
    upload = await Upload.get_or_none(trace_id=verdict.trace_id) if verdict.trace_id else None
    if upload is None:
        log.info("media check verdict for an unknown trace %r ignored", verdict.trace_id)
        return None
    decided = media_moderation(verdict.suggest)
    changed = await Upload.filter(id=upload.id, moderation=Moderation.PENDING).update(
        moderation=decided, label=verdict.label, checked_at=now(), next_check_at=None
    )
    if changed:
        await _decided(upload.id)
    await upload.refresh_from_db()
    return upload


async def handle_wechat_event(message: dict[str, Any]) -> None:
    """A verified event message from WeChat: media check verdicts are applied, other events ignored."""
    if message.get("Event") != MEDIA_CHECK_EVENT:
        return
    appid = message.get("appid")
    if appid not in (None, "", get_settings().wechat_appid):
        log.warning("a media check verdict for another appid was ignored")
        return
    await apply_media_verdict(Verdict.from_result(message))


async def moderate_upload(upload_id: int, approve: bool) -> Upload:
    """Staff decide an image WeChat held for review (or one still waiting): shown, or never shown.

    Raises NOT_FOUND, CONFLICT when it was decided already.
    """
    decided = Moderation.PASSED if approve else Moderation.REJECTED
    changed = await Upload.filter(id=upload_id, moderation__in=(Moderation.HELD, Moderation.PENDING)).update(
        moderation=decided, checked_at=now(), next_check_at=None
    )
    upload = await Upload.get_or_none(id=upload_id)
    if upload is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such upload", "id")
    if not changed:
        raise DomainError(ErrorCode.CONFLICT, f"The image was decided already ({upload.moderation})", "id")
    await _decided(upload.id)
    return upload
