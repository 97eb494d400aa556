"""The GraphQL endpoint over HTTP and WebSocket, with the hot response cache in front of execution."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import OperationDefinitionNode, OperationType, parse
from graphql.error import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from infra.response_cache import CachedResponse, cache_key
from infra.runtime import current_runtime
from infra.settings import Settings
from schema.context import Context, make_context
from schema.extensions import coded_error
from schema.root import CACHEABLE_ROOT_FIELDS
from services.catalog import search
from services.errors import DomainError, ErrorCode
from services.members.viewer import bearer_token, resolve_viewer, viewer_for_token

_CONTEXT_KEY = "lianmall_context"


@lru_cache(maxsize=2048)
def _root_fields(query: str, operation_name: str | None) -> frozenset[str] | None:
    """Root field names of the operation to run, or None unless it is a plain query."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    if len(chosen) != 1 or chosen[0].operation is not OperationType.QUERY:
        return None
    names: set[str] = set()
    for selection in chosen[0].selection_set.selections:
        name = getattr(selection, "name", None)
        if name is None:  # fragments at the root: keep it simple, do not cache
            return None
        names.add(name.value)
    return frozenset(names)


def is_cacheable_request(body: bytes) -> bool:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        return False
    roots = _root_fields(data["query"], data.get("operationName"))
    return roots is not None and roots <= CACHEABLE_ROOT_FIELDS


@dataclass
class SocketContext(Context):
    """A WebSocket connection's context; strawberry puts the `connection_init` payload in `connection_params`."""

    connection_params: dict[str, object] | None = None


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


def error_response(code: ErrorCode, message: str, status: int) -> Response:
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": code.value}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class GraphQLView(GraphQL[Context, None]):
    def __init__(self, schema: Any, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=False,
            keep_alive=True,
            keep_alive_interval=15,
            allowed_origins=settings.allowed_ws_origins,
        )
        self.settings = settings

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        if isinstance(request, WebSocket):
            return SocketContext(request=request, response=response)
        return getattr(request.state, _CONTEXT_KEY, None) or make_context(request=request, response=response)

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
        return UNSET

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if isinstance(request, WebSocket) or request.method != "POST":
            return await super().run(request, context, root_value)
        try:
            viewer = await resolve_viewer(request.headers.get("authorization"))
        except DomainError as exc:
            return error_response(exc.code, exc.message, 401)
        scope = viewer.cache_scope if self.settings.response_cache else None
        key: str | None = None
        marks: tuple[int, bytes] | None = None
        if scope is not None:
            # The hot path: a hit answers before any context, loader or parser is made.
            cache = current_runtime().cache
            key = cache_key(scope, await request.body())
            hit = cache.get_local(key) or await cache.get(key)
            if hit is not None:
                # A cached search is still a search: hot words count what shoppers asked.
                for term in hit.search_terms:
                    await search.record_search(term)
                return Response(hit.body, media_type="application/json")
            marks = await cache.begin()
        ctx = make_context(viewer, request=request, settings=self.settings, cache_key=key, cache_marks=marks)
        setattr(request.state, _CONTEXT_KEY, ctx)
        try:
            return await super().run(request, ctx, root_value)
        except HTTPException as exc:
            return error_response(ErrorCode.BAD_USER_INPUT, exc.reason, exc.status_code)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            # The schema extension codes errors, but strawberry skips its exit hook on parse failures.
            result.errors = [coded_error(e) for e in result.errors]
        data = await super().process_result(request, result)
        ctx: Context | None = getattr(request.state, _CONTEXT_KEY, None)
        if (
            ctx is not None
            and ctx.cache_key
            and ctx.cache_marks
            and not result.errors
            and not ctx.cache_blocked
            and ctx.cache_tags
            and is_cacheable_request(await request.body())
        ):
            entry = CachedResponse(
                body=orjson.dumps(data), tags=frozenset(ctx.cache_tags), search_terms=tuple(ctx.search_terms)
            )
            await current_runtime().cache.store(ctx.cache_key, entry, ctx.cache_marks)
        return data
