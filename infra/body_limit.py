"""A request body size limit for every HTTP route (uvicorn has none).

A declared Content-Length over the limit is refused before any byte of the body is read. A chunked body
(no Content-Length) is counted as the application reads it and refused once it passes the limit.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await self._refuse(send, 400, "BAD_REQUEST", "Content-Length is not a number")
                elif int(value) > self.max_bytes:
                    await self._refuse(send, 413, "PAYLOAD_TOO_LARGE", self._too_large())
                else:
                    await self.app(scope, receive, send)
                return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:  # the application answered before reading it all; nothing more can be said
                raise
            await self._refuse(send, 413, "PAYLOAD_TOO_LARGE", self._too_large())

    def _too_large(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes (MAX_BODY_BYTES)"

    @staticmethod
    async def _refuse(send: Send, status: int, code: str, message: str) -> None:
        body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 413:
            headers.append(
                (b"connection", b"close")
            )  # the unread rest of the body must not be parsed as a request
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
