"""GraphQL over HTTP (the GraphQL-over-HTTP spec): request parsing and checks, media types and status codes.

Clients that accept `application/graphql-response+json` get it, with 4xx/5xx for request errors (the request
failed before execution began: bad JSON, parse or validation errors, variables that do not coerce) and no
`data` entry. Clients that accept only `application/json` get 200 for every well-formed request, as the spec
asks for that legacy type. Clients that accept `text/event-stream` or `multipart/mixed` get a stream.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from services.errors import ErrorCode

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
STREAM_TYPES = frozenset({"text/event-stream", "multipart/mixed"})

SUBSCRIPTION_NEEDS_STREAM = (
    "A subscription is a stream: send Accept: text/event-stream (graphql-sse), "
    'multipart/mixed;boundary="graphql";subscriptionSpec=1.0 (Apollo Client) or multipart/mixed (GraphiQL), '
    "or subscribe over the WebSocket at /graphql"
)

# Request errors answered with graphql-response+json get the status their code means; the rest get 400.
_REQUEST_ERROR_STATUS = {
    ErrorCode.UNAUTHENTICATED.value: 401,
    ErrorCode.FORBIDDEN.value: 403,
    ErrorCode.RATE_LIMITED.value: 429,
    ErrorCode.INTERNAL_SERVER_ERROR.value: 500,
}


class RequestRejected(Exception):
    """An HTTP request refused before execution, answered with `status` and a coded error."""

    def __init__(
        self,
        status: int,
        message: str,
        code: ErrorCode = ErrorCode.BAD_REQUEST,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers


def error_response(
    code: ErrorCode,
    message: str,
    status: int,
    media_type: str | None = JSON,
    headers: dict[str, str] | None = None,
) -> Response:
    """A GraphQL-shaped error answer. graphql-response+json has no `data` entry for a request error;
    application/json keeps `data: null`, which existing clients read."""
    media_type = media_type or JSON
    error = {"message": message, "extensions": {"code": code.value}}
    body = {"errors": [error]} if media_type == GRAPHQL_RESPONSE_JSON else {"data": None, "errors": [error]}
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=headers)


class CachedAnswer(Response):
    """A stored answer sent as it is: Response's header building, skipped, keeps a cache hit as cheap as
    before content negotiation and the body check were added in front of it."""

    def __init__(self, body: bytes, media_type: str) -> None:
        self.status_code = 200
        self.body = body
        self.background = None
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", media_type.encode()),
        ]


async def read_body(request: Request, content_length: str | None, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes: a declared length before reading anything, a
    chunked body as soon as it passes the limit."""
    if content_length is not None and content_length.isdigit() and int(content_length) <= limit:
        return await request.body()
    too_large = RequestRejected(
        413, f"The request body is larger than {limit} bytes (MAX_BODY_BYTES)", ErrorCode.PAYLOAD_TOO_LARGE
    )
    if content_length is not None:
        raise (
            too_large if content_length.isdigit() else RequestRejected(400, "Content-Length is not a number")
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache of the body: strawberry reads it from there
    return body


def rejection_response(exc: RequestRejected, media_type: str | None) -> Response:
    return error_response(exc.code, exc.message, exc.status, media_type, exc.headers)


@lru_cache(maxsize=256)
def negotiate(accept: str) -> str | None:
    """The media type for a single JSON answer to this Accept header, or None when the client asks for a
    stream (server-sent events or multipart). Cached: clients send a handful of distinct headers."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media_type, _, params = part.partition(";")
        media_type = media_type.strip().lower()
        if not media_type:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media_type in STREAM_TYPES and quality > 0:
            return None
        weights[media_type] = max(quality, weights.get(media_type, 0.0))
    preferred = weights.get(GRAPHQL_RESPONSE_JSON, 0.0)
    legacy = max(weights.get(JSON, 0.0), weights.get("application/*", 0.0), weights.get("*/*", 0.0))
    return GRAPHQL_RESPONSE_JSON if preferred > 0 and preferred >= legacy else JSON


def is_request_error(result: ExecutionResult) -> bool:
    """True when the request failed before execution began: parse or validation errors (strawberry's
    PreExecutionError) or variables that do not coerce (no data and no error with a field path)."""
    if isinstance(result, PreExecutionError):
        return True
    return result.data is None and bool(result.errors) and all(e.path is None for e in result.errors)


def request_error_status(errors: list[GraphQLError]) -> int:
    code = (errors[0].extensions or {}).get("code") if errors else None
    return _REQUEST_ERROR_STATUS.get(str(code), 400)


def shape_request_error(
    request: Request, result: ExecutionResult, data: GraphQLHTTPResponse, sub_response: Response | None
) -> None:
    """For a client that accepts graphql-response+json, a request error has no `data` entry and a 4xx/5xx
    status. `application/json` answers keep 200 and `data: null`, as the spec asks for that legacy type."""
    if not result.errors or not is_request_error(result):
        return
    accept = request.headers.get("accept")
    if not accept or negotiate(accept) != GRAPHQL_RESPONSE_JSON:
        return
    data.pop("data", None)  # type: ignore[misc]
    if sub_response is not None:
        sub_response.status_code = request_error_status(result.errors)


def too_deep(value: object, limit: int) -> bool:
    """Whether objects and lists nest more than `limit` levels (the top level is 1). Iterative, so a hostile
    document cannot exhaust Python's recursion limit."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def decode_json(data: str | bytes, max_depth: int) -> Any:
    """orjson's parse (UTF-8 only, bounded nesting), refusing documents deeper than `max_depth`.
    Raises json.JSONDecodeError (orjson's is a subclass) for anything unusable."""
    value = orjson.loads(data)
    if too_deep(value, max_depth):
        raise json.JSONDecodeError(f"JSON nested deeper than {max_depth} levels", "", 0)
    return value


# A document whose first definition is a mutation: ignored tokens (whitespace, commas, BOM, comments) first.
_MUTATION_FIRST = re.compile(r"(?:[\s,\ufeff]|#[^\n\r]*)*mutation(?![_0-9A-Za-z])")
# Larger bodies are not looked into here (they are parsed once, later).
_PEEK_MAX_BYTES = 16384


def posts_mutation(body: bytes) -> bool:
    """Whether a POSTed JSON body's document begins with a mutation: the response cache never stores those, so
    it need not be asked. False whenever unsure (a body that is not such JSON, or too large to look into)."""
    if len(body) > _PEEK_MAX_BYTES or b"mutation" not in body:
        return False
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    query = data.get("query") if isinstance(data, dict) else None
    return isinstance(query, str) and _MUTATION_FIRST.match(query) is not None


def parse_json_body(body: bytes, max_depth: int, protocol: Any) -> GraphQLRequestData:
    """A POSTed `{"query", "variables", "operationName", "extensions"}` object, checked field by field."""
    if not body:
        raise RequestRejected(400, 'The request body is empty; send {"query": "..."}')
    try:
        data = decode_json(body, max_depth)
    except json.JSONDecodeError as exc:
        raise RequestRejected(400, f"The request body is not usable JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise RequestRejected(
            400, 'The request body must be a JSON object: {"query": "...", "variables": {}}'
        )
    query = data.get("query")
    variables = data.get("variables")
    operation_name = data.get("operationName")
    extensions = data.get("extensions")
    if not isinstance(query, str):
        raise RequestRejected(400, "`query` must be a string holding the GraphQL document")
    if not isinstance(variables, dict | None):
        raise RequestRejected(400, "`variables` must be an object or null")
    if not isinstance(operation_name, str | None):
        raise RequestRejected(400, "`operationName` must be a string or null")
    if not isinstance(extensions, dict | None):
        raise RequestRejected(400, "`extensions` must be an object or null")
    return GraphQLRequestData(
        query=query,
        variables=variables,
        operation_name=operation_name,
        extensions=extensions,
        protocol=protocol,
    )


def check_query_params(request_data: GraphQLRequestData, max_depth: int) -> None:
    """GET parameters are strings, but `variables` and `extensions` are JSON inside them."""
    for name, value in (("variables", request_data.variables), ("extensions", request_data.extensions)):
        if value is not None and too_deep(value, max_depth):
            raise RequestRejected(400, f"`{name}` nest deeper than {max_depth} levels")


def operation_not_allowed(operation: OperationType, method: str) -> RequestRejected:
    if operation is OperationType.SUBSCRIPTION:
        return RequestRejected(406, SUBSCRIPTION_NEEDS_STREAM)
    # GET must never change anything (a link, a prefetch or a CDN may repeat it).
    return RequestRejected(
        405, f"{operation.value}s need POST; GET runs queries only", headers={"Allow": "POST"}
    )
