"""A Starlette app that hands WebSocket connections on some paths straight to their endpoint.

A WebSocket is one ASGI call that lasts as long as the socket, and every layer it passes keeps a suspended
coroutine frame for that whole time: Starlette's error and exception middleware, the proxy-headers middleware,
the router and the route kept about 3 KB per idle socket (tracemalloc, 500 liveRoomEvents subscribers), a
sixth of what a subscriber of a 10,000-viewer room costs. None of them does anything for a WebSocket after the
handshake: the error middleware passes non-HTTP scopes through, CORS does not apply, the router only picks the
endpoint. So a socket on a listed path skips them: the scope gets the app and the proxy headers' rewrite of
the client address (run on the scope alone, so the trusted proxies are exactly the middleware's), then the
endpoint is awaited directly. Everything else (HTTP, lifespan, other WebSocket paths) goes through the full
stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


async def _nothing(scope: Scope, receive: Receive, send: Send) -> None:
    return None


class DirectSockets(Starlette):
    """Starlette, with WebSockets on `sockets` paths given to their endpoint past the middleware and router."""

    def __init__(
        self, *, sockets: Mapping[str, ASGIApp], trusted_proxies: list[str] | str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.sockets = dict(sockets)
        # The middleware with an endpoint that does nothing: awaiting it only rewrites the scope.
        self._proxy_headers = ProxyHeadersMiddleware(_nothing, trusted_hosts=trusted_proxies)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            endpoint = self.sockets.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                await self._proxy_headers(scope, receive, send)  # type: ignore[arg-type]
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
