"""WeChat Pay's notification endpoints: thin HTTP handlers around services.payments.notifications."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from services.payments.notifications import (
    MAX_BODY,
    answer,
    handle_payment_notification,
    handle_refund_notification,
)


async def _body(request: Request) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _xml(text: str) -> Response:
    return Response(text, media_type="text/xml; charset=utf-8")


async def payment_notify(request: Request) -> Response:
    body = await _body(request)
    if body is None:
        return _xml(answer(False, "too large"))
    return _xml(await handle_payment_notification(body))


async def refund_notify(request: Request) -> Response:
    body = await _body(request)
    if body is None:
        return _xml(answer(False, "too large"))
    return _xml(await handle_refund_notification(body))
