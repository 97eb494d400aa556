"""Image uploads as the mini-program's `wx.uploadFile` sends them: what is kept, what is refused and why.

Files are judged by their bytes, never their name: a PNG called .jpg is stored as the PNG it is; an SVG with a
script, HTML and ZIP files are not images; a 50 MB file is cut off while it arrives; a decompression bomb is
refused from its header before a pixel is decoded. What is kept loses its EXIF (GPS, camera serial) and is
turned upright, and a member's image waits for WeChat's media check.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from models import Moderation, StaffRole, Upload
from schema.node import decode_id
from tests.content_support import (
    GPS_IFD,
    SVG_WITH_SCRIPT,
    bomb_png,
    errors_of,
    new_member,
    photo_jpeg,
    png_image,
    upload,
    zip_file,
)
from tests.test_members import staff_token
from tests.wechat_standin import MEDIA_CHECK_ASYNC, WeChatStandIn

pytestmark = pytest.mark.usefixtures("seeded")


async def _served(client: httpx.AsyncClient, url: str) -> bytes:
    response = await client.get(url.replace("http://127.0.0.1:8000", ""))
    assert response.status_code == 200, url
    return response.content


async def test_a_phone_photo_is_stored_upright_without_exif_with_a_thumbnail_and_sent_to_wechat(
    client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    member, token = await new_member()
    original = photo_jpeg(size=(640, 480), orientation=6)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD), "the test photo carries GPS"

    response = await upload(client, token, original)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "PENDING" and body["contentType"] == "image/jpeg"
    # EXIF orientation 6 means "rotate 90°": the stored image is upright, so 480 wide and 640 high.
    assert (body["width"], body["height"]) == (480, 640)

    stored = Image.open(io.BytesIO(await _served(client, body["url"])))
    assert stored.format == "JPEG" and stored.size == (480, 640)
    assert dict(stored.getexif()) == {} and "exif" not in stored.info and "xmp" not in stored.info
    thumb = Image.open(io.BytesIO(await _served(client, body["thumbnailUrl"])))
    assert max(thumb.size) == 360 and thumb.size == (270, 360)

    row = await Upload.get(id=decode_id(body["id"], "Upload"))
    assert row.member_id == member.id and row.moderation is Moderation.PENDING  # type: ignore[attr-defined]
    (job,) = wechat.media_jobs()
    assert job.media_url == body["url"] and job.openid == member.openid and job.scene == 2
    assert row.trace_id == job.trace_id
    call = wechat.calls(MEDIA_CHECK_ASYNC)[0]
    assert call.body is not None and call.body["version"] == 2 and call.body["media_type"] == 2


async def test_a_png_renamed_jpg_is_judged_by_its_bytes(
    client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    _, token = await new_member()
    response = await upload(client, token, png_image(), filename="holiday.jpg", content_type="image/jpeg")
    assert response.status_code == 201
    body = response.json()
    assert body["contentType"] == "image/png" and body["url"].endswith(".png")
    stored = Image.open(io.BytesIO(await _served(client, body["url"])))
    assert stored.format == "PNG" and stored.mode == "RGBA"


@pytest.mark.parametrize(
    ("data", "filename", "status", "code"),
    [
        (SVG_WITH_SCRIPT, "cute.jpg", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (SVG_WITH_SCRIPT, "cute.svg", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"<html><script>alert(1)</script></html>", "page.png", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (zip_file(), "photos.jpg", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"GIF89a" + b"\x00" * 100, "a.gif", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (photo_jpeg()[:600], "cut.jpg", 422, "IMAGE_CORRUPT"),
        (b"", "empty.jpg", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ],
    ids=["svg-named-jpg", "svg", "html", "zip", "gif", "truncated-jpeg", "empty"],
)
async def test_what_is_not_a_supported_image_is_refused_with_a_code(
    client: httpx.AsyncClient, wechat: WeChatStandIn, data: bytes, filename: str, status: int, code: str
) -> None:
    _, token = await new_member()
    before = await Upload.all().count()
    response = await upload(client, token, data, filename=filename)
    assert (response.status_code, errors_of(response)) == (status, [code])
    assert await Upload.all().count() == before and wechat.media_jobs() == []


async def test_a_decompression_bomb_is_refused_from_its_header(
    client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    _, token = await new_member()
    bomb = bomb_png()
    assert len(bomb) < 200_000, "small on the wire"
    started = time.perf_counter()
    response = await upload(client, token, bomb, filename="small.png", content_type="image/png")
    elapsed = time.perf_counter() - started
    assert (response.status_code, errors_of(response)) == (422, ["IMAGE_TOO_LARGE"])
    # Decoding 900 million pixels would take seconds and over 100 MB; reading the header takes nothing.
    assert elapsed < 2.0


async def test_a_50_mb_image_is_cut_off_while_it_arrives(
    client: httpx.AsyncClient, wechat: WeChatStandIn
) -> None:
    _, token = await new_member()
    huge = photo_jpeg()[:-2] + b"\x00" * (50 * 1024 * 1024) + b"\xff\xd9"
    response = await upload(client, token, huge)
    assert (response.status_code, errors_of(response)) == (413, ["FILE_TOO_LARGE"])

    # Without a Content-Length (chunked), the body is still counted as it arrives.
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        boundary = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        yield boundary
        for _ in range(50):
            sent += 1
            yield b"\x00" * (1024 * 1024)

    response = await client.post(
        "/uploads",
        content=chunks(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert (response.status_code, errors_of(response)) == (413, ["FILE_TOO_LARGE"])
    assert sent <= 12, "reading stopped soon after the 10 MB limit"


async def test_who_may_upload(client: httpx.AsyncClient, wechat: WeChatStandIn) -> None:
    image = png_image()
    assert errors_of(await upload(client, None, image)) == ["UNAUTHENTICATED"]
    assert errors_of(await upload(client, "not-a-token", image)) == ["UNAUTHENTICATED"]
    warehouse = await staff_token(StaffRole.WAREHOUSE)
    assert errors_of(await upload(client, warehouse, image)) == ["FORBIDDEN"]

    # The shop's own pictures pass at once: no WeChat check.
    operator = await staff_token(StaffRole.OPERATOR)
    response = await upload(client, operator, image, scene="ARTICLE")
    assert response.status_code == 201 and response.json()["status"] == "PASSED"
    assert wechat.media_jobs() == []

    _, token = await new_member()
    missing = await client.post(
        "/uploads", data={"scene": "REVIEW"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert errors_of(missing) == ["BAD_USER_INPUT"]
    bad_scene = await upload(client, token, image, scene="NOPE")
    assert errors_of(bad_scene) == ["BAD_USER_INPUT"]
