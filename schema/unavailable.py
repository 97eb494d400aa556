"""HTTP answers when a dependency cannot be reached: a coded 503 the client can retry, never a plain-text 500.

The database: what runs outside GraphQL execution (the bearer token's session or staff check, the WeChat Pay
notification endpoints) when PostgreSQL does not answer. Redis: the rare path that cannot do without it (e.g.
the replay check of WeChat's message push) while it is away; everything else degrades (see the README). Errors
inside GraphQL execution are coded by `schema.extensions` the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from tortoise.exceptions import OperationalError

from infra.db import DATABASE_DOWN_ERRORS, database_unavailable
from schema.extensions import UNAVAILABLE_MESSAGE
from schema.graphql_http import error_response
from services.errors import ErrorCode

log = logging.getLogger("lianmall.errors")


async def dependency_down(_: Request, exc: Exception) -> Response:
    if not (isinstance(exc, RedisError) or database_unavailable(exc)):
        raise exc
    log.warning(
        "%s unavailable: %s: %s",
        "Redis" if isinstance(exc, RedisError) else "database",
        type(exc).__name__,
        exc,
    )
    return error_response(ErrorCode.SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE, 503)


# Starlette looks handlers up by exception class; Tortoise wraps some driver errors in OperationalError, whose
# cause `dependency_down` checks (anything else is re-raised: a real bug stays a logged 500).
DEPENDENCY_DOWN_HANDLERS: dict[Any, Any] = {
    cls: dependency_down for cls in (*DATABASE_DOWN_ERRORS, OperationalError, RedisError)
}
