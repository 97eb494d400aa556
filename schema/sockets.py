"""WebSocket bounds, per server process: open connections per client address and per member, subscriptions
per connection (WS_MAX_CONNECTIONS_PER_IP, WS_MAX_CONNECTIONS_PER_MEMBER, WS_MAX_SUBSCRIPTIONS_PER_CONNECTION),
and memory handed back after many subscriptions ended.

Where the memory of a subscription goes (measured: 100 sockets x 100 subscriptions of productStockChanged, one
process, +268 MB RSS, about 27 KB each: strawberry's and graphql-core's per-operation execution state, the
subscription's generator and queue, the socket's buffers): nothing stays referenced after a socket closes
(the bus drops the queue, strawberry cancels and forgets the tasks; tests/test_sockets.py counts them), but
the cancelled operations leave reference cycles that only a full garbage collection frees, and freed memory
stays with the allocators (CPython's arenas, glibc's heap), so RSS did not drop at all after the close (421 MB
12 s later). A second round reused it (+6 MB): bounded, not leaked. So: bound what one client can hold, and
after SUBSCRIPTIONS_BEFORE_RECLAIM ended subscriptions run one full collection and `malloc_trim` (glibc), at
most every RECLAIM_INTERVAL seconds (measured with the same load: 420 MB open, 317 MB 10 s after the close; the
rest is CPython arenas that still hold a few live objects each, reused by the next sockets).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError
from starlette.websockets import WebSocket
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from schema.graphql_http import error_response
from services.errors import ErrorCode

log = logging.getLogger("lianmall.sockets")

SUBSCRIPTIONS_BEFORE_RECLAIM = 2000
RECLAIM_INTERVAL = 10.0
RECLAIM_DELAY = 1.0  # let a burst of closes finish first


def _libc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    return trim  # type: ignore[no-any-return]


class MemoryReclaimer:
    """After enough subscriptions ended, one full GC plus malloc_trim, off the closing sockets' path."""

    def __init__(self, after: int = SUBSCRIPTIONS_BEFORE_RECLAIM, interval: float = RECLAIM_INTERVAL) -> None:
        self.after = after
        self.interval = interval
        self.ended = 0
        self.reclaims = 0
        self._last = 0.0
        self._scheduled = False
        self._trim = _libc_trim()

    def subscriptions_ended(self, count: int) -> None:
        self.ended += count
        if self._scheduled or self.ended < self.after:
            return
        delay = max(RECLAIM_DELAY, self._last + self.interval - time.monotonic())
        self._scheduled = True
        asyncio.get_running_loop().call_later(delay, self.reclaim)

    def reclaim(self) -> None:
        started = time.monotonic()
        collected = gc.collect()
        trimmed = self._trim(0) if self._trim is not None else 0
        self._last = time.monotonic()
        log.info(
            "reclaimed memory after %d ended subscriptions: %d objects collected, trim %s, %.0f ms",
            self.ended,
            collected,
            bool(trimmed),
            (self._last - started) * 1000,
        )
        self.ended = 0
        self.reclaims += 1
        self._scheduled = False


class SocketLimits:
    """Open WebSockets of this process by client address and by member."""

    def __init__(self, per_address: int, per_member: int) -> None:
        self.per_address = per_address
        self.per_member = per_member
        self.by_address: Counter[str] = Counter()
        self.by_member: Counter[int] = Counter()
        self.reclaimer = MemoryReclaimer()

    @property
    def open(self) -> int:
        return sum(self.by_address.values())

    def admit_address(self, address: str) -> bool:
        if self.by_address[address] >= self.per_address:
            return False
        self.by_address[address] += 1
        return True

    def admit_member(self, member_id: int) -> bool:
        if self.by_member[member_id] >= self.per_member:
            return False
        self.by_member[member_id] += 1
        return True

    def release(self, address: str, member_id: int | None, subscriptions: int) -> None:
        _decrement(self.by_address, address)
        if member_id is not None:
            _decrement(self.by_member, member_id)
        if subscriptions:
            self.reclaimer.subscriptions_ended(subscriptions)


def _decrement(counter: Counter[Any], key: Any) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


def limit_error(limit: int) -> GraphQLError:
    return GraphQLError(
        f"At most {limit} subscriptions per connection; complete one first or open another connection",
        extensions={"code": ErrorCode.LIMIT_EXCEEDED.value},
    )


async def refuse_socket(websocket: WebSocket, message: str) -> None:
    """Refuse a WebSocket handshake with a coded 429 (close code 1013, "try again later", if the server cannot
    send an HTTP answer to a handshake)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(ErrorCode.LIMIT_EXCEEDED, message, 429))
    else:
        await websocket.close(code=1013, reason=message[:120])


def _count_started(context: Any) -> None:
    if hasattr(context, "subscriptions_started"):
        context.subscriptions_started += 1


class TransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """graphql-transport-ws, with a coded error for a subscription past the per-connection limit."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_init_received:
            # Cancelled by now; kept, the finished task held ~1.8 KB for the socket's whole life.
            self.connection_init_timeout_task = None

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [limit_error(limit).formatted]}
            )
            return
        if self.connection_acknowledged and message["id"] not in self.operations:
            from schema import live_fanout  # imports the live domain's schema: only when a socket subscribes

            if await live_fanout.start(self, message):  # type: ignore[arg-type]
                _count_started(self.context)
                # strawberry's read loop holds the last message until the next one comes, for an idle
                # viewer the whole socket's life: its query text and variables are served, let them go.
                message.pop("payload", None)  # type: ignore[misc]
                return
        await super().handle_subscribe(message)
        if message["id"] in self.operations:
            _count_started(self.context)


class LegacyWSHandler(BaseGraphQLWSHandler[Any, Any]):
    """graphql-ws (legacy), with a coded error for a subscription past the per-connection limit."""

    async def handle_start(self, message: StartMessage) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.tasks
            and len(self.tasks) >= limit
        ):
            payload: Any = limit_error(limit).formatted
            await self.send_message({"type": "error", "id": message["id"], "payload": payload})
            return
        if self.connection_acknowledged and message["id"] not in self.tasks:
            from schema import live_fanout  # imports the live domain's schema: only when a socket subscribes

            if await live_fanout.start_legacy(self, message):  # type: ignore[arg-type]
                _count_started(self.context)
                message.pop("payload", None)  # type: ignore[misc]  (as for graphql-transport-ws above)
                return
        await super().handle_start(message)
        if message["id"] in self.tasks:
            _count_started(self.context)
