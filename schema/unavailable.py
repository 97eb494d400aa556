"""HTTP answers when the database cannot be reached: a coded 503 the client can retry, never a plain-text 500.

Covers what runs outside GraphQL execution (the bearer token's session or staff check before execution, the
WeChat Pay notification endpoints); errors inside execution are coded by `schema.extensions` the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from tortoise.exceptions import OperationalError

from infra.db import DATABASE_DOWN_ERRORS, database_unavailable
from schema.extensions import UNAVAILABLE_MESSAGE
from schema.graphql_http import error_response
from services.errors import ErrorCode

log = logging.getLogger("lianmall.errors")


async def database_down(_: Request, exc: Exception) -> Response:
    if not database_unavailable(exc):
        raise exc
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    return error_response(ErrorCode.SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE, 503)


# Starlette looks handlers up by exception class; Tortoise wraps some driver errors in OperationalError, whose
# cause `database_down` checks (anything else is re-raised: a real bug stays a logged 500).
DATABASE_DOWN_HANDLERS: dict[Any, Any] = {
    cls: database_down for cls in (*DATABASE_DOWN_ERRORS, OperationalError)
}
