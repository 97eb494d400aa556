"""An app served by a real uvicorn on a free 127.0.0.1 port inside the test's own event loop (so it shares this
process's database and runtime), for clients that need a socket: WebSocket clients, Node, a browser."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn


@asynccontextmanager
async def in_loop_server(app: object, **options: Any) -> AsyncIterator[int]:
    """Serve `app` until the block ends; yields the port. `options` are uvicorn.Config's (lifespan stays off:
    the test set the runtime up)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", **options))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers only this flag)
                await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()
