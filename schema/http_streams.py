"""Operations streamed over plain HTTP, for clients that do not open a WebSocket.

strawberry serves two dialects itself: server-sent events per graphql-sse (`Accept: text/event-stream`) and
Apollo Client's multipart subscriptions (`multipart/mixed;subscriptionSpec=1.0`, each part `{"payload": ...}`).
GraphiQL's fetcher (and graphql-helix / Yoga clients) send `Accept: application/json, multipart/mixed`
and read each part as a plain execution result: that is the third dialect, here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, ClassVar

from strawberry.http import GraphQLHTTPResponse
from strawberry.http.base import BaseView
from strawberry.http.streaming import HTTPStreamTransport, JSONEncoder, MultipartTransport
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)

INCREMENTAL_MULTIPART_PROTOCOL = "multipart-mixed"
INCREMENTAL_BOUNDARY = "stream"
# Apollo's dialect first: its Accept header also names multipart/mixed, with subscriptionSpec.
PROTOCOLS = (
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
    GRAPHQL_SSE_PROTOCOL,
    INCREMENTAL_MULTIPART_PROTOCOL,
)


class IncrementalMultipartTransport(MultipartTransport, HTTPStreamTransport):
    """`multipart/mixed`, one JSON execution result per part (the incremental-delivery format).

    Each part is followed at once by the next delimiter, so a reader can hand it over without waiting for the
    next event; the stream therefore has to open with a delimiter (see `with_opening_delimiter`).
    """

    protocol: ClassVar[Any] = INCREMENTAL_MULTIPART_PROTOCOL
    batching_error: ClassVar[str] = "Batching is not supported for multipart responses"
    # The format has no heartbeat part (an empty one would read as a result), so none is sent.
    heartbeat_interval: float = 3600.0
    send_initial_heartbeat: ClassVar[bool] = False

    @property
    def headers(self) -> Mapping[str, str]:
        return {**super().headers, "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}

    def __init__(self) -> None:
        super().__init__(INCREMENTAL_BOUNDARY)

    def accepts(self, accept: str) -> bool:
        for part in accept.split(","):
            media_type, _, params = part.partition(";")
            if media_type.strip().lower() == "multipart/mixed" and "subscriptionspec" not in params.lower():
                return True
        return False

    def encode_next(self, response: GraphQLHTTPResponse, encode_json: JSONEncoder) -> str:
        return self.encode_multipart_data(response, encode_json)

    def encode_complete(self) -> str:
        # After the last part's delimiter, `--` makes it the closing one.
        return "--\r\n"

    def heartbeat_message(self, encode_json: JSONEncoder) -> str:
        return ""  # uvicorn sends nothing for an empty chunk


TRANSPORTS: Mapping[str, type[HTTPStreamTransport]] = {
    **BaseView.stream_transport_classes_by_protocol,
    INCREMENTAL_MULTIPART_PROTOCOL: IncrementalMultipartTransport,
}


def with_opening_delimiter(
    stream: Callable[[], AsyncGenerator[str, None]], headers: Mapping[str, str]
) -> Callable[[], AsyncGenerator[str, None]]:
    """The stream, opened with the first delimiter when it is in the incremental multipart dialect."""
    if headers.get("Content-Type") != IncrementalMultipartTransport().headers["Content-Type"]:
        return stream

    async def opened() -> AsyncGenerator[str, None]:
        yield f"--{INCREMENTAL_BOUNDARY}"
        async for chunk in stream():
            yield chunk

    return opened
