"""The content endpoints outside GraphQL: image uploads (`wx.uploadFile`) and WeChat's message push.

POST /uploads: multipart form, the image in the field `file`, `Authorization: Bearer <token>` (a member, or
staff with CONTENT_WRITE or CATALOG_WRITE); optional form field `scene`: REVIEW (default), ARTICLE or PROFILE.
Answers 201 with the image (`id`, `url`, `thumbnailUrl`, `width`, `height`, `contentType`, `status`) or an
error status with `{"errors": [{"message", "code"}]}`. The body is cut off past UPLOAD_MAX_BYTES while it
arrives, so a huge upload costs neither memory nor disk.

GET/POST /wechat/message: WeChat's message push. GET answers the URL check (`echostr`); POST takes signed (and,
in safe mode, encrypted) events and answers `success`, or 403 for anything not signed with our token.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from infra.redis import get_redis
from infra.settings import get_settings
from infra.wechat import Scene
from infra.wechat_messages import MAX_AGE_SECONDS, MAX_BODY, InvalidMessage, read_message, verify_signature
from models import Member
from schema.content import Image
from services.access.permissions import Permission, has_permission
from services.content import media_checks, uploads
from services.errors import DomainError, ErrorCode
from services.members.viewer import resolve_viewer

log = logging.getLogger("lianmall.content")

# Room for the multipart framing and the small form fields around the file.
FORM_OVERHEAD = 16 * 1024
SCENES = {"REVIEW": Scene.COMMENT, "ARTICLE": Scene.FORUM, "PROFILE": Scene.PROFILE}
STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.FILE_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.IMAGE_TOO_LARGE: 422,
    ErrorCode.IMAGE_CORRUPT: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.STORAGE_UNAVAILABLE: 503,
}


class _TooLarge(Exception):
    pass


def _error(code: ErrorCode, message: str) -> Response:
    body = {"errors": [{"message": message, "code": code.value}]}
    return Response(orjson.dumps(body), status_code=STATUS.get(code, 400), media_type="application/json")


async def _uploader(request: Request) -> uploads.Uploader:
    viewer = await resolve_viewer(request.headers.get("authorization"))
    if viewer.member is not None:
        openid = await Member.filter(id=viewer.member.id).first().values_list("openid", flat=True)
        return uploads.Uploader(member_id=viewer.member.id, openid=str(openid or ""))
    staff = viewer.staff
    if staff is not None and (
        has_permission(staff.role, Permission.CONTENT_WRITE)
        or has_permission(staff.role, Permission.CATALOG_WRITE)
    ):
        return uploads.Uploader(staff_id=staff.id)
    if viewer.is_anonymous:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Send a member or staff bearer token")
    raise DomainError(ErrorCode.FORBIDDEN, "Only members and content staff can upload")


def _capped(request: Request, limit: int) -> Request:
    """The request with a body that stops being read past `limit` bytes (Content-Length or not)."""
    received = 0

    async def receive() -> Any:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _TooLarge
        return message

    return Request(request.scope, receive)


async def upload(request: Request) -> Response:
    settings = get_settings()
    limit = settings.upload_max_bytes + FORM_OVERHEAD
    try:
        uploader = await _uploader(request)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise uploads.file_too_large(settings.upload_max_bytes)
        try:
            async with _capped(request, limit).form(max_files=1, max_fields=4) as form:
                file = form.get("file")
                scene_name = form.get("scene") or "REVIEW"
                if file is None or isinstance(file, str):
                    raise DomainError(
                        ErrorCode.BAD_USER_INPUT, "Send the image in the form field `file`", "file"
                    )
                if not isinstance(scene_name, str) or scene_name.upper() not in SCENES:
                    raise DomainError(
                        ErrorCode.BAD_USER_INPUT, "scene is REVIEW, ARTICLE or PROFILE", "scene"
                    )
                data = await file.read(settings.upload_max_bytes + 1)
        except _TooLarge:
            raise uploads.file_too_large(settings.upload_max_bytes) from None
        row = await uploads.create_upload(uploader, data, SCENES[scene_name.upper()])
    except DomainError as exc:
        return _error(exc.code, exc.message)
    except Exception as exc:
        # Starlette's form parser refuses malformed multipart bodies with its own HTTPException.
        if type(exc).__name__ in {"HTTPException", "MultiPartException"}:
            return _error(ErrorCode.BAD_USER_INPUT, "Send a multipart/form-data body with the field `file`")
        raise
    image = Image.from_model(row)
    body = {
        "id": image.id,
        "url": image.url,
        "thumbnailUrl": image.thumbnail_url,
        "width": image.width,
        "height": image.height,
        "contentType": image.content_type,
        "status": row.moderation.value,
    }
    return Response(orjson.dumps(body), status_code=201, media_type="application/json")


async def wechat_message(request: Request) -> Response:
    settings = get_settings()
    params = dict(request.query_params)
    if request.method == "GET":
        try:
            verify_signature(settings, params)
        except InvalidMessage:
            return PlainTextResponse("forbidden", status_code=403)
        return PlainTextResponse(params.get("echostr", ""))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return PlainTextResponse("too large", status_code=413)
        chunks.append(chunk)
    try:
        message = read_message(settings, params, b"".join(chunks))
    except InvalidMessage as exc:
        log.warning("refused a WeChat message push: %s", exc)
        return PlainTextResponse("forbidden", status_code=403)
    # One push per timestamp and nonce: a replayed signature (with any body) is acknowledged and ignored.
    seen = f"wechat:push:{params['timestamp']}:{params.get('nonce', '')}"
    if not await get_redis().set(seen, b"1", nx=True, ex=2 * MAX_AGE_SECONDS):
        return PlainTextResponse("success")
    try:
        await media_checks.handle_wechat_event(message)
    except BaseException:
        await get_redis().delete(seen)  # not handled: WeChat's retry of this push must get through
        raise
    return PlainTextResponse("success")
