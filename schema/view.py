"""The GraphQL endpoint over HTTP and WebSocket, with the hot response cache in front of execution."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.http.streaming import HTTPStreamTransport
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType
from strawberry.types.unset import UNSET, UnsetType

from infra.db import database_unavailable
from infra.leaky_bucket import BucketState
from infra.response_cache import CachedResponse, cache_key
from infra.runtime import current_runtime
from infra.settings import Settings
from schema import graphql_http, http_streams
from schema.cache_policy import may_store, shared_response
from schema.context import Context, make_context, searcher_key
from schema.extensions import UNAVAILABLE_MESSAGE, coded_error
from schema.graphiql import graphiql_page
from schema.graphql_http import CachedAnswer, RequestRejected, error_response, rejection_response
from schema.sockets import LegacyWSHandler, SocketLimits, TransportWSHandler, refuse_socket
from schema.sold_out_lane import Answer, SoldOutLane
from schema.volatile import template
from schema.websocket import TextFrameWebSocketAdapter
from services.catalog import hot_words
from services.errors import DomainError, ErrorCode
from services.members.viewer import Viewer, bearer_token, resolve_viewer, viewer_for_token

_CONTEXT_KEY = "lianmall_context"
# Distinct Content-Type / Accept headers remembered (clients send a handful; a hostile one cannot grow memory).
_KNOWN_HEADERS = 256


@lru_cache(maxsize=_KNOWN_HEADERS)
def _media_type(content_type: str) -> str:
    # strawberry parses the header with the email package on every request (~25 µs).
    return parse_content_type(content_type)[0]


@dataclass
class SocketContext(Context):
    """A WebSocket connection's context; strawberry puts the `connection_init` payload in `connection_params`."""

    connection_params: dict[str, object] | None = None
    # Bookkeeping for schema.sockets: the member this socket counts against, the subscriptions it started.
    socket_member: int | None = None
    subscriptions_started: int = 0


def socket_token(params: dict[str, object] | None, handshake_authorization: str | None) -> str | None:
    """The token a WebSocket client sent: `connection_init` payload `{"accessToken": ...}` or
    `{"Authorization": "Bearer ..."}` (browsers cannot set headers on a WebSocket), else the handshake's
    Authorization header. Raises DomainError UNAUTHENTICATED for a malformed one."""
    params = params or {}
    token = params.get("accessToken")
    if token is not None:
        if not isinstance(token, str) or not token.strip():
            raise DomainError(ErrorCode.UNAUTHENTICATED, "accessToken must be a non-empty string")
        return token.strip()
    authorization = params.get("Authorization", params.get("authorization"))
    if authorization is not None and not isinstance(authorization, str):
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Authorization must be 'Bearer <token>'")
    return bearer_token(authorization or handshake_authorization)


class GraphQLView(GraphQL[Context, None]):
    websocket_adapter_class = TextFrameWebSocketAdapter  # type: ignore[assignment]
    stream_transport_classes_by_protocol = http_streams.TRANSPORTS
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, schema: Any, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            # Queries (never mutations) over GET, so persisted queries can be cached by a CDN.
            allow_queries_via_get=True,
            keep_alive=True,
            keep_alive_interval=15,
            subscription_protocols=http_streams.PROTOCOLS,
            allowed_origins=settings.browser_origins,
            max_subscriptions_per_connection=settings.ws_max_subscriptions_per_connection,
        )
        self.settings = settings
        self.max_body = settings.max_body_bytes
        self.sockets = SocketLimits(
            settings.ws_max_connections_per_ip, settings.ws_max_connections_per_member
        )
        self._transports_by_accept: dict[str, HTTPStreamTransport | None] = {}
        self.sold_out_lane = SoldOutLane(schema, settings)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        # Also WebSocket messages: too deep a one closes the socket (4400) like any unreadable message.
        return graphql_http.decode_json(data, self.settings.max_json_depth)

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(graphiql_page())

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        if isinstance(request, WebSocket):
            return SocketContext(request=request, response=response)
        return getattr(request.state, _CONTEXT_KEY, None) or make_context(request=request, response=response)

    async def get_sub_response(self, request: Request) -> Response:
        sub_response = await super().get_sub_response(request)
        ctx: Context | None = getattr(request.state, _CONTEXT_KEY, None)
        if ctx is not None:
            ctx.response = sub_response  # its status and headers reach the answer (see graphql_http)
        return sub_response

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate the connection once, at `connection_init`: its operations run as that viewer.

        No token is a guest (public subscriptions need none); a bad, expired or revoked one is refused
        (graphql-transport-ws closes with 4403, graphql-ws answers `connection_error` with the code).
        """
        params = getattr(context, "connection_params", None)
        try:
            token = socket_token(params, context.request.headers.get("authorization"))
            if token is not None:
                context.viewer = await viewer_for_token(token)
        except DomainError as exc:
            raise ConnectionRejectionError({"message": exc.message, "code": exc.code.value}) from None
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            raise ConnectionRejectionError(
                {"message": UNAVAILABLE_MESSAGE, "code": ErrorCode.SERVICE_UNAVAILABLE.value}
            ) from None
        member = context.viewer.member
        if member is not None and isinstance(context, SocketContext):
            if not self.sockets.admit_member(member.id):
                limit = self.sockets.per_member
                message = f"At most {limit} open connections per member; close another one first"
                raise ConnectionRejectionError({"message": message, "code": ErrorCode.LIMIT_EXCEEDED.value})
            context.socket_member = member.id
        return UNSET

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if isinstance(request, WebSocket):
            return await self._run_socket(request, root_value)
        headers = request.headers
        accept = headers.get("accept")
        # None: the client asked for a stream (SSE or multipart), which the cache never answers.
        media_type = graphql_http.negotiate(accept) if accept else graphql_http.JSON
        post = request.method == "POST"
        try:
            body = (
                await graphql_http.read_body(request, headers.get("content-length"), self.max_body)
                if post
                else b""
            )
            viewer = await resolve_viewer(headers.get("authorization"))
        except RequestRejected as exc:
            return rejection_response(exc, media_type)
        except DomainError as exc:
            return error_response(exc.code, exc.message, 401, media_type)
        charged: BucketState | None = None
        if post and media_type is not None and self._plain_json(headers):
            early = await self.sold_out_lane.answer(body, viewer)
            if isinstance(early, Answer):
                return CachedAnswer(early.body, media_type)
            if early is not None:
                charged = early.charged
        key: str | None = None
        marks: tuple[int, bytes] | None = None
        leading = False
        scope = viewer.cache_scope if self.settings.response_cache else None
        if scope is not None and media_type is not None and post and not graphql_http.posts_mutation(body):
            # The hot path: a hit answers before any context, loader or parser is made.
            cache = current_runtime().cache
            key = cache_key(scope, body)
            if cache.never_fits(key):
                # e.g. a member's own cart or orders: nothing to look up, nothing to note while resolving.
                key = None
            else:
                hit = cache.get_local(key) or await cache.get(key)
                if hit is None and (flight := cache.flight(key)) is not None:
                    # Someone in this process computes this very answer now: take theirs, not compute it too.
                    await flight.wait()
                    hit = cache.get_local(key)
                if hit is not None:
                    body = await cache.render(hit)
                    if body is not None:
                        return await self._cached_answer(hit, body, viewer, request, media_type)
                leading = cache.take_off(key)
                marks = await cache.begin()
        ctx = make_context(
            viewer,
            request=request,
            settings=self.settings,
            cache_key=key,
            cache_marks=marks,
            volatile=[] if key is not None else None,
            charged=charged,
        )
        setattr(request.state, _CONTEXT_KEY, ctx)
        streamed = False
        try:
            response = await super().run(request, ctx, root_value)
            streamed = isinstance(response, StreamingResponse)
        except RequestRejected as exc:
            return rejection_response(exc, media_type)
        except HTTPException as exc:
            return error_response(ErrorCode.BAD_REQUEST, exc.reason, exc.status_code, media_type)
        finally:
            if leading:
                assert key is not None
                current_runtime().cache.land(key)
            if not streamed:
                # request.state -> context -> request is a reference cycle: left in place, the request's loaders
                # and every row they cached wait for the cyclic collector (~80 MB more per worker under cold
                # load). A stream still reads it (process_result) after run returns.
                delattr(request.state, _CONTEXT_KEY)
        if media_type == graphql_http.GRAPHQL_RESPONSE_JSON and response.media_type == graphql_http.JSON:
            response.headers["content-type"] = media_type
        if ctx.retry_after is not None:
            response.status_code = 429
            response.headers["Retry-After"] = str(max(1, math.ceil(ctx.retry_after)))
        return response

    async def _cached_answer(
        self, hit: CachedResponse, body: bytes, viewer: Viewer, request: Request, media_type: str
    ) -> CachedAnswer:
        # A cached search is still a search: hot words count what shoppers asked (once per searcher).
        searcher = searcher_key(viewer, request)
        for term in hit.search_terms:
            await hot_words.record_search(term, searcher)
        return CachedAnswer(body, media_type)

    def _plain_json(self, headers: Mapping[str, str]) -> bool:
        """A JSON body asking for one JSON answer, as `parse_http_body` takes it (not a stream)."""
        return (
            _media_type(headers.get("content-type") or "") == "application/json"
            and self._stream_transport_for(headers.get("accept", "")) is None
        )

    def _stream_transport_for(self, accept: str) -> HTTPStreamTransport | None:
        # strawberry asks every transport about the Accept header on every request; clients send a handful.
        known = self._transports_by_accept
        if accept not in known:
            if len(known) >= _KNOWN_HEADERS:
                known.clear()
            known[accept] = next((t for t in self._stream_transport_map.values() if t.accepts(accept)), None)
        return known[accept]

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """strawberry's parsing, but every malformed request gets a coded 400 (never a 500) and JSON is
        parsed once, by orjson, with bounded nesting."""
        max_depth = self.settings.max_json_depth
        if request.method == "POST":
            content_type = _media_type(request.content_type or "")
            if content_type != "application/json":
                raise RequestRejected(
                    415 if content_type else 400, "Send the request as JSON: Content-Type: application/json"
                )
            transport = self._stream_transport_for(request.headers.get("accept", ""))
            return graphql_http.parse_json_body(
                await request.get_body(), max_depth, transport.protocol if transport else "http"
            )
        request_data = await super().parse_http_body(request)
        assert isinstance(request_data, GraphQLRequestData)  # batching is off
        graphql_http.check_query_params(request_data, max_depth)
        return request_data

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """One operation answered with one JSON result: queries over GET, queries and mutations over POST.
        Subscriptions need a stream (SSE or multipart, see `http_streams`) or the WebSocket."""
        allowed = {StrawberryOperationType.QUERY}
        if request_adapter.method == "POST":
            allowed.add(StrawberryOperationType.MUTATION)
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError as exc:
            raise graphql_http.operation_not_allowed(exc.operation_type, request_adapter.method) from None
        except CannotGetOperationTypeError as exc:
            raise RequestRejected(400, exc.as_http_error_reason()) from None
        except MissingQueryError:
            raise RequestRejected(400, "No GraphQL query found in the request") from None

    async def create_streaming_response(
        self,
        request: Request,
        stream: Callable[[], AsyncGenerator[str, None]],
        sub_response: Response,
        headers: Mapping[str, str],
    ) -> Response:
        stream = http_streams.with_opening_delimiter(stream, headers)
        return await super().create_streaming_response(request, stream, sub_response, headers)

    async def _run_socket(self, websocket: WebSocket, root_value: Any) -> Any:
        """Count the socket against its client address (and, once authenticated, its member) while it is open."""
        address = websocket.client.host if websocket.client else "unknown"
        if not self.sockets.admit_address(address):
            limit = self.sockets.per_address
            await refuse_socket(websocket, f"At most {limit} open connections per client address")
            return None
        context = SocketContext(request=websocket, response=websocket)
        try:
            return await super().run(websocket, context, root_value)
        finally:
            self.sockets.release(address, context.socket_member, context.subscriptions_started)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            # The schema extension codes errors, but strawberry skips its exit hook on parse failures.
            result.errors = [coded_error(e) for e in result.errors]
        data = await super().process_result(request, result)
        ctx: Context | None = getattr(request.state, _CONTEXT_KEY, None)
        graphql_http.shape_request_error(request, result, data, ctx.response if ctx else None)
        if ctx is None or ctx.cache_key is None or ctx.cache_marks is None:
            return data
        cache = current_runtime().cache
        made = (
            template(shared_response(dict(data)), ctx.volatile or [])
            if may_store(ctx, bool(result.errors))
            else None
        )
        if made is None:
            operation = ctx.operation
            if operation is not None and not operation.public():
                # Decided by the document, its operation name and variables: all in the key.
                cache.never_fit(ctx.cache_key)
            else:
                cache.unfit(ctx.cache_key)
            return data
        body, holes = made
        for _, (key, _, _), value in ctx.volatile or ():
            cache.volatile.seed(key, value, ctx.started)
        entry = CachedResponse(
            body=body,
            tags=frozenset(ctx.cache_tags),
            search_terms=tuple(ctx.search_terms),
            holes=holes,
            expires_at=ctx.cache_expires_at,
        )
        await cache.store(ctx.cache_key, entry, ctx.cache_marks)
        return data
