"""Writing ready-made WebSocket text frames straight to a connection's transport, for fan-out.

Sending one message through ASGI costs a coroutine chain (Starlette's WebSocket, uvicorn's `send`, the
websockets protocol building and serialising a frame) of some 10-15 µs of Python per socket; a room event sent
to 10,000 sockets paid that 10,000 times. A server frame is unmasked, so its bytes are a 2-10 byte header and the
payload: a fan-out that encoded the payload once only has to prefix the header and write.

`FrameProtocol` is uvicorn's sans-I/O websockets protocol with one addition: its ASGI scope carries a
`FrameWriter` under `scope["extensions"][EXTENSION]`, which writes whole frames to the transport (between
whole frames, so never inside one the protocol is writing). The app falls back to ASGI `send` when it runs
under another server (or uvicorn's other protocols), so nothing depends on it but speed.

`uvicorn_websocket_options()` is how `main.py serve` runs uvicorn: this protocol, and no permessage-deflate
(each connection kept a zlib compressor and decompressor, tens of KB, and compressed every frame for that socket
alone, which makes a shared frame impossible; measured in schema/live_fanout.py's docstring).
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import Sequence
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol

EXTENSION = "lianmall.websocket.frames"
# A socket whose unsent bytes pass this is behind: fan-out stops writing to it until it drained.
BEHIND_BYTES = 256 * 1024


def text_frame_header(length: int) -> bytes:
    """The header of an unmasked, final text frame carrying `length` bytes."""
    if length < 126:
        return bytes((0x81, length))
    if length < 65536:
        return struct.pack("!BBH", 0x81, 126, length)
    return struct.pack("!BBQ", 0x81, 127, length)


class SharedTexts:
    """Text messages that differ from socket to socket only by a leading prefix (a subscription's id): message i
    is `prefix + tails[i]`. A frame header depends only on the length, so the bytes around the prefix are the
    same for every prefix of one length: they are made once per length, and a socket's frames are then one
    `prefix.join(...)` (one allocation, no Python per frame)."""

    __slots__ = ("_around", "tails")

    def __init__(self, tails: Sequence[bytes]) -> None:
        self.tails = tuple(tails)
        self._around: dict[int, list[bytes]] = {}

    def framed(self, prefix: bytes) -> bytes:
        """Every message with `prefix`, each as a whole text frame, back to back."""
        around = self._around.get(len(prefix))
        if around is None:
            around = self._around[len(prefix)] = self._frames_around(len(prefix))
        return prefix.join(around)

    def messages(self, prefix: bytes) -> list[bytes]:
        """Every message with `prefix` (no framing)."""
        return [prefix + tail for tail in self.tails]

    def _frames_around(self, prefix_length: int) -> list[bytes]:
        # header0 | tail0 + header1 | ... | tailN: joined with the prefix, header_i + prefix + tail_i for each i.
        around = [b""]
        for tail in self.tails:
            around[-1] += text_frame_header(prefix_length + len(tail))
            around.append(tail)
        return around


class FrameWriter:
    """Whole text frames onto one connection's transport: the socket end of a fan-out."""

    __slots__ = ("_protocol", "_transport")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        self._transport = protocol.transport

    @property
    def closed(self) -> bool:
        protocol = self._protocol
        return (
            not protocol.handshake_complete
            or protocol.close_sent
            or protocol.disconnected
            or self._transport.is_closing()
        )

    def unsent(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return int(self._transport.get_write_buffer_size())

    def push(self, texts: SharedTexts, prefix: bytes) -> bool:
        """Write every message of `texts` with `prefix` as text frames in one write (one system call); False
        (nothing written) when the socket is closed or behind. Called once per socket per broadcast: kept to
        a few attribute reads, one join and the write."""
        protocol = self._protocol
        if protocol.close_sent or protocol.disconnected or not protocol.handshake_complete:
            return False
        transport = self._transport
        if transport.is_closing() or transport.get_write_buffer_size() > BEHIND_BYTES:
            return False
        transport.write(texts.framed(prefix))
        return True

    async def drained(self) -> None:
        """Return once the socket is no longer behind (or closed)."""
        while not self.closed and self.unsent() > BEHIND_BYTES // 4:  # noqa: ASYNC110 (no event for it)
            await asyncio.sleep(0.05)


class _Inbox:
    """What uvicorn uses of an asyncio.Queue (put_nowait, get, empty) for its one reader, without the Queue's
    four deques (about 3 KB a socket, most of an idle socket's memory after the app's own state)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if not self._items:
            self._items = None  # an idle socket holds no deque block
        return item


class _Flag:
    """What uvicorn uses of an asyncio.Event (wait, set, clear), without its deque."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        while not self._set:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


class FrameProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websockets protocol, offering a FrameWriter to the app and holding less per socket:
    a lighter inbox and write flag, and no handshake request and response once the socket is open (their
    header objects were about 4 KB). Written against uvicorn 0.54's attribute names; tests serve with it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][EXTENSION] = {"writer": FrameWriter(self)}  # type: ignore[index]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            self.request = self.response = None  # type: ignore[assignment]
            conn = self.conn
            if not conn.reader.buffer:
                # The handshake parser keeps the request (its headers) alive in its frame for the socket's life;
                # after the handshake it only runs the frame parser, so run that alone. Only between frames
                # (nothing buffered): websockets swaps parsers the same way when a connection closes.
                conn.parser = Protocol.parse(conn)
                next(conn.parser)


def frame_writer(scope: Any) -> FrameWriter | None:
    """The connection's FrameWriter, if the server offers one."""
    extension = (scope.get("extensions") or {}).get(EXTENSION)
    return extension.get("writer") if isinstance(extension, dict) else None


def uvicorn_websocket_options() -> dict[str, object]:
    """uvicorn settings for WebSockets: FrameProtocol, no permessage-deflate."""
    return {"ws": f"{__name__}:FrameProtocol", "ws_per_message_deflate": False}
