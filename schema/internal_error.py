"""The answer to an exception no route and no other handler dealt with: coded JSON, never a plain-text 500.

Starlette runs this handler in its outermost middleware, which sends the answer and then raises the exception
again, so uvicorn logs its traceback as before. A failure of Redis or of the database anywhere in the exception's
chain (a library that wraps one) is SERVICE_UNAVAILABLE, as `schema.unavailable` answers them when raised as they
are; anything else is INTERNAL_SERVER_ERROR with its details kept out of the answer. A GraphQL request gets the
status the GraphQL-over-HTTP spec gives a request error for its media type (200 with `data: null` for
`application/json`, 500 for `application/graphql-response+json`), as a masked error gets inside execution.
"""

from __future__ import annotations

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from infra.db import database_unavailable
from infra.exception_chain import caused_by
from schema import graphql_http
from schema.extensions import INTERNAL_MESSAGE, UNAVAILABLE_MESSAGE
from services.errors import ErrorCode

GRAPHQL_PATH = "/graphql"


async def internal_error(request: Request, exc: Exception) -> Response:
    accept = request.headers.get("accept")
    media_type = graphql_http.negotiate(accept) if accept else graphql_http.JSON
    if caused_by(exc, RedisError) or database_unavailable(exc):
        return graphql_http.error_response(
            ErrorCode.SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE, 503, media_type
        )
    graphql_json = request.url.path == GRAPHQL_PATH and media_type in (None, graphql_http.JSON)
    status = 200 if graphql_json else 500
    return graphql_http.error_response(ErrorCode.INTERNAL_SERVER_ERROR, INTERNAL_MESSAGE, status, media_type)
