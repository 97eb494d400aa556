"""Image uploads: checked and cleaned (services.content.images), stored (services.content.storage), and sent
to WeChat's media check when a member uploaded them.

A member's image stays PENDING, shown to nobody but its owner, until WeChat's verdict arrives
(services.content.media_checks). Asking WeChat can fail; the sweeper asks again for every PENDING image whose
`next_check_at` passed (after a failure, with back-off; after a successful ask, once more if no verdict came
within REASK_AFTER). Staff uploads are the shop's own pictures and pass at once.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from infra import wechat
from infra.blocking_io import ThreadLane
from infra.clock import now
from infra.settings import get_settings
from infra.wechat import Scene
from models import Member, Moderation, Upload
from services import rate_limit
from services.content.images import ProcessedImage, process_image
from services.content.storage import get_storage
from services.errors import DomainError, ErrorCode
from services.orders.sweeper import register_sweep_job

log = logging.getLogger("lianmall.content")

# WeChat answers within about 30 minutes; without an answer by then, the image is sent again.
REASK_AFTER = timedelta(hours=1)
MAX_BACKOFF = timedelta(hours=1)
BATCH = 200
# Decoding is CPU work: at most this many images at once per process, off the event loop.
IMAGE_LANE = ThreadLane(threads=2, timeout=0)


@dataclass(frozen=True)
class Uploader:
    """Who uploads: a member (with the openid WeChat's check needs) or a staff member."""

    member_id: int | None = None
    openid: str = ""
    staff_id: int | None = None


async def create_upload(uploader: Uploader, data: bytes, scene: Scene = Scene.COMMENT) -> Upload:
    """Store an uploaded image and its thumbnail; a member's is sent to WeChat's media check.

    Raises DomainError FILE_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, IMAGE_TOO_LARGE, IMAGE_CORRUPT (see
    services.content.images) or RATE_LIMITED. WeChat being unavailable does not fail the upload: the image
    stays hidden and the check is asked again later.
    """
    settings = get_settings()
    if len(data) > settings.upload_max_bytes:
        raise file_too_large(settings.upload_max_bytes)
    if uploader.member_id is not None and not await rate_limit.hit(
        f"upload:{uploader.member_id}", settings.upload_limit, settings.upload_window_seconds
    ):
        raise DomainError(ErrorCode.RATE_LIMITED, "Too many uploads; try again in a few minutes")
    image: ProcessedImage = await IMAGE_LANE.run(
        lambda: process_image(data, settings.upload_max_pixels, settings.upload_thumbnail_size)
    )
    at = now()
    stem = f"u/{at:%Y/%m}/{secrets.token_urlsafe(18)}"
    storage = get_storage(settings)
    url = await storage.put(f"{stem}.{image.extension}", image.data, image.content_type)
    thumbnail_url = await storage.put(
        f"{stem}_t.{image.thumbnail_extension}", image.thumbnail, image.thumbnail_content_type
    )
    by_member = uploader.member_id is not None
    upload = await Upload.create(
        member_id=uploader.member_id,
        staff_id=uploader.staff_id,
        storage_key=f"{stem}.{image.extension}",
        url=url,
        thumbnail_url=thumbnail_url,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        size_bytes=len(image.data),
        scene=int(scene),
        moderation=Moderation.PENDING if by_member else Moderation.PASSED,
        next_check_at=at if by_member else None,
        checked_at=None if by_member else at,
    )
    if by_member:
        await request_check(upload, uploader.openid)
        await upload.refresh_from_db()
    return upload


def file_too_large(limit: int) -> DomainError:
    return DomainError(ErrorCode.FILE_TOO_LARGE, f"Files are limited to {limit // (1024 * 1024)} MB", "file")


async def request_check(upload: Upload, openid: str) -> bool:
    """Ask WeChat to check `upload`; False (and a later retry scheduled) when WeChat could not be asked."""
    at = now()
    try:
        trace_id = await wechat.media_check_async(openid, Scene(upload.scene), upload.url)
    except DomainError as exc:
        delay = min(timedelta(minutes=2 ** min(upload.check_attempts, 6)), MAX_BACKOFF)
        await Upload.filter(id=upload.id, moderation=Moderation.PENDING).update(
            check_attempts=upload.check_attempts + 1, next_check_at=at + delay
        )
        log.warning("media check of upload %s not asked (%s); again in %s", upload.id, exc.code, delay)
        return False
    await Upload.filter(id=upload.id, moderation=Moderation.PENDING).update(
        trace_id=trace_id, check_attempts=upload.check_attempts + 1, next_check_at=at + REASK_AFTER
    )
    return True


async def retry_media_checks(at: datetime) -> int:
    """Sweeper job: ask WeChat again for PENDING images due a check; how many were asked.

    Each image is claimed by a guarded update of its `next_check_at`, so of several processes sweeping at
    once exactly one asks.
    """
    due = await (
        Upload.filter(moderation=Moderation.PENDING, next_check_at__lte=at, member_id__isnull=False)
        .order_by("next_check_at")
        .limit(BATCH)
    )
    asked = 0
    for upload in due:
        claimed = await Upload.filter(
            id=upload.id, moderation=Moderation.PENDING, next_check_at=upload.next_check_at
        ).update(next_check_at=at + timedelta(minutes=5))
        if not claimed:
            continue
        openid = await Member.filter(id=upload.member_id).first().values_list("openid", flat=True)  # type: ignore[attr-defined]
        if openid and await request_check(upload, str(openid)):
            asked += 1
    return asked


async def owned_uploads(member_id: int, upload_ids: list[int], field: str) -> list[Upload]:
    """The member's own uploads with these ids, in the order given; refused ones cannot be used.

    Raises DomainError NOT_FOUND (with `field`) for an id that is not the member's upload, BAD_USER_INPUT for
    a repeated one, CONTENT_REJECTED for an image WeChat refused.
    """
    if len(set(upload_ids)) != len(upload_ids):
        raise DomainError(ErrorCode.BAD_USER_INPUT, "The same photo is given twice", field)
    found = {u.id: u for u in await Upload.filter(id__in=upload_ids, member_id=member_id)}
    missing = [i for i in upload_ids if i not in found]
    if missing:
        raise DomainError(ErrorCode.NOT_FOUND, "No such upload of yours", field)
    if any(found[i].moderation is Moderation.REJECTED for i in upload_ids):
        raise DomainError(
            ErrorCode.CONTENT_REJECTED, "WeChat's content check refused one of the photos", field
        )
    return [found[i] for i in upload_ids]


register_sweep_job("media checks", retry_media_checks)
