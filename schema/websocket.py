"""The WebSocket side of the endpoint: every message goes out as a text frame.

Both subscription protocols are JSON text. strawberry sends a binary frame whenever the view's encoder returns
bytes (ours is orjson), and the reference `graphql-ws` client (Node and browsers) then fails with "Message is
missing the 'type' property"; Python clients accept either, so only a real client notices.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected


class TextFrameWebSocketAdapter(ASGIWebSocketAdapter):
    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc
