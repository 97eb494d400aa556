"""Helpers for the content tests: images made on the spot (a phone photo with GPS in its EXIF, a decompression
bomb, an SVG with a script), uploading them as `wx.uploadFile` does, members with received orders, and
delivering WeChat's media check verdicts to the message endpoint."""

from __future__ import annotations

import io
import secrets
import struct
import zlib
from typing import Any

import httpx
from PIL import Image

from infra.clock import now
from models import ActorKind, Member, Order, OrderLine, OrderStatus, Shop, Sku
from services.members.tokens import issue_tokens
from services.orders import states as order_states
from tests.wechat_standin import WeChatStandIn

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def photo_jpeg(size: tuple[int, int] = (640, 480), color: str = "red", orientation: int = 6) -> bytes:
    """A JPEG as a phone writes it: EXIF with a GPS position, a camera serial and a rotation tag."""
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"
    exif[0xA431] = "SERIAL-123456"
    exif[GPS_IFD] = {1: "N", 2: (31.0, 14.0, 0.0), 3: "E", 4: (121.0, 28.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def png_image(size: tuple[int, int] = (300, 200), mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (0, 128, 255, 200) if mode == "RGBA" else (0, 128, 255)).save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(side: int = 30_000) -> bytes:
    """A real decompression bomb: a 1-bit PNG of side x side pixels (900 million for 30,000), all zeros, whose
    compressed data is ~100 KB but inflates to over 100 MB of pixel rows."""
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert(document.cookie)</script><rect width="10" height="10"/></svg>'
)


def zip_file() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "x" * 1000)
    return out.getvalue()


async def upload(
    client: httpx.AsyncClient,
    token: str | None,
    data: bytes,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    **form: str,
) -> httpx.Response:
    """POST /uploads as `wx.uploadFile` does: multipart form, the file in the field `file`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post(
        "/uploads", files={"file": (filename, data, content_type)}, data=form, headers=headers
    )


async def deliver_verdicts(client: httpx.AsyncClient, wechat: WeChatStandIn) -> list[int]:
    """WeChat sends the verdicts of every pending media check to our message endpoint (through `client`)."""
    statuses = []
    for message in wechat.media_messages():
        response = await client.post(
            "/wechat/message",
            params=message.params,
            content=message.body,
            headers={"content-type": message.content_type},
        )
        statuses.append(response.status_code)
    return statuses


async def new_member() -> tuple[Member, str]:
    member = await Member.create(
        openid=f"o_{secrets.token_hex(8)}",
        invite_code=secrets.token_hex(5).upper(),
        nickname="林晓晓",
        avatar_url="https://img.example.com/a.png",
    )
    return member, (await issue_tokens(member)).access_token


async def received_order(
    member: Member, sku: Sku | None = None, lines: int = 1
) -> tuple[Order, list[OrderLine]]:
    """An order of the member's, paid, shipped and received just now (`lines` lines of different SKUs)."""
    skus = [sku] if sku else list(await Sku.filter(product__status="ON_SALE").order_by("id").limit(lines))
    shop = await Shop.all().first()
    assert shop is not None, "the demo shop is seeded"
    order = await Order.create(
        number=secrets.token_hex(8).upper(),
        shop=shop,
        member=member,
        status=OrderStatus.PENDING_PAYMENT,
        items_total=1000 * len(skus),
        payable=1000 * len(skus),
        address={"name": "林晓", "phone": "13800138000", "province": "广东省"},
        idempotency_key=secrets.token_hex(8),
        pay_deadline=now(),
    )
    made = [
        await OrderLine.create(
            order=order,
            product_id=s.product_id,  # type: ignore[attr-defined]
            sku_id=s.id,
            title="测试商品",
            spec="颜色: 红",
            unit_price=1000,
            quantity=1,
            line_total=1000,
        )
        for s in skus
    ]
    for status in (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.RECEIVED):
        order = await order_states.transition(
            order.id, status, actor=ActorKind.SYSTEM, paid_amount=order.payable
        )
    return order, made


def errors_of(response: httpx.Response) -> list[str]:
    body: dict[str, Any] = response.json()
    return [e["code"] for e in body.get("errors", [])]
