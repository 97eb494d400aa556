"""WeChat Pay's notification endpoints: thin HTTP handlers around services.payments.notifications.

Whatever arrives, WeChat gets its XML answer with HTTP 200 (FAIL: send it again later), never a 500: a body
over MAX_BODY is read no further, and an unexpected failure while handling one is logged and answered FAIL, so
WeChat's retry heals it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from infra.db import database_unavailable
from services.payments.notifications import (
    MAX_BODY,
    answer,
    handle_payment_notification,
    handle_refund_notification,
    refuse_unreadable,
)

log = logging.getLogger("lianmall.payment_notices")


async def _body(request: Request) -> bytes:
    """The body, or its first MAX_BODY + 1 bytes when it is longer."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            break
    return b"".join(chunks)[: MAX_BODY + 1]


def _xml(text: str, *, unread_body: bool = False) -> Response:
    response = Response(text, media_type="text/xml; charset=utf-8")
    if unread_body:
        response.headers["connection"] = "close"  # the rest of the body must not be read as a next request
    return response


async def _receive(request: Request, kind: str, handle: Callable[[bytes], Awaitable[str]]) -> Response:
    try:
        body = await _body(request)
    except ClientDisconnect:
        return _xml(answer(False, "incomplete"))
    try:
        if len(body) > MAX_BODY:
            return _xml(await refuse_unreadable(kind, body, f"body over {MAX_BODY} bytes"), unread_body=True)
        return _xml(await handle(body))
    except Exception as exc:
        if database_unavailable(exc):  # one line, not a traceback per notification while the database is away
            log.warning("%s notification answered FAIL, the database is unavailable: %s", kind, exc)
        else:
            log.exception("%s notification failed unexpectedly; answered FAIL so WeChat sends it again", kind)
        return _xml(answer(False, "try again"))


async def payment_notify(request: Request) -> Response:
    return await _receive(request, "payment", handle_payment_notification)


async def refund_notify(request: Request) -> Response:
    return await _receive(request, "refund", handle_refund_notification)
