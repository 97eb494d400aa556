"""Edge behaviour of the schema: query limits and the caches behind them, error codes and masking."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql.error import GraphQLError, GraphQLSyntaxError
from redis.exceptions import RedisError
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext

from infra.db import database_unavailable
from schema.cache_policy import ResponseCachePolicy
from schema.extension_runner import CachedHooksRunner
from schema.fast.extension import FastCatalogExecution
from schema.introspection import IntrospectionGate
from schema.query_guard import QueryGuard
from services.errors import DomainError, ErrorCode

log = logging.getLogger("lianmall.errors")

INTERNAL_MESSAGE = "Internal server error"
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; try again shortly"


def error_code(error: GraphQLError) -> ErrorCode | None:
    """The code for an error, or None when it is an unexpected failure whose details must stay hidden."""
    original = error.original_error
    if isinstance(original, DomainError):
        return original.code
    given = (error.extensions or {}).get("code")
    if given in ErrorCode.__members__:
        return ErrorCode(given)
    if database_unavailable(original) or isinstance(original, RedisError):
        return ErrorCode.SERVICE_UNAVAILABLE
    if isinstance(error, GraphQLSyntaxError) or isinstance(original, GraphQLSyntaxError):
        return ErrorCode.GRAPHQL_PARSE_FAILED
    if original is None or isinstance(original, GraphQLError):
        message = error.message
        if message.startswith(("Variable ", "Argument ", "Int cannot", "String cannot", "ID cannot")):
            return ErrorCode.BAD_USER_INPUT
        return ErrorCode.GRAPHQL_VALIDATION_FAILED
    return None


def coded_error(error: GraphQLError) -> GraphQLError:
    if (error.extensions or {}).get("code"):
        return error
    code = error_code(error)
    if code is None:
        return GraphQLError(
            INTERNAL_MESSAGE,
            nodes=error.nodes,
            positions=error.positions,
            path=error.path,
            extensions={"code": ErrorCode.INTERNAL_SERVER_ERROR.value},
        )
    extensions = dict(error.extensions or {})
    extensions["code"] = code.value
    original = error.original_error
    if code is ErrorCode.SERVICE_UNAVAILABLE and not isinstance(original, DomainError):
        # The driver's message names hosts and ports: log it in one line, tell the client what it can do.
        log.warning("dependency unavailable: %s: %s", type(original).__name__, original)
        return GraphQLError(
            UNAVAILABLE_MESSAGE,
            nodes=error.nodes,
            positions=error.positions,
            path=error.path,
            extensions=extensions,
        )
    if isinstance(original, DomainError) and original.field:
        extensions["field"] = original.field
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        positions=error.positions,
        path=error.path,
        original_error=original if isinstance(original, DomainError) else None,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Gives every error an `extensions.code`; replaces unexpected ones with a masked internal error."""

    def on_operation(self) -> Iterator[None]:
        yield
        # In place: on parse and validation failures strawberry has already built its result around these lists.
        # (Parse failures come back as a PreExecutionError holding a list of its own.)
        for errors in (
            getattr(self.execution_context.result, "errors", None),
            self.execution_context.pre_execution_errors,
        ):
            if errors:
                errors[:] = [coded_error(e) for e in errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # Each subscription event is a result of its own; its errors need codes (and masking) too.
        errors = getattr(result, "errors", None)
        if errors:
            errors[:] = [coded_error(e) for e in errors]
        yield


class FreshSocketLoaders(SchemaExtension):
    """A WebSocket keeps one context for its whole life: each operation on it starts with fresh loaders, so
    no query or mutation reads rows an earlier operation on the socket loaded."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(getattr(context, "request", None), WebSocket) and hasattr(context, "forget_loaded"):
            context.forget_loaded()
        yield


class LianmallSchema(strawberry.Schema):
    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> CachedHooksRunner:
        return CachedHooksRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what we did not expect: domain errors and bad queries are the client's business."""
        unexpected = [e for e in errors if error_code(e) is None]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def edge_extensions(*, fast: bool = True) -> list[Callable[[], SchemaExtension] | type[SchemaExtension]]:
    # QueryGuard parses and validates (memoised on the query text) in place of strawberry's ParserCache,
    # ValidationCache, QueryDepthLimiter and MaxAliasesLimiter: their limiters expand fragments without
    # memoising (exponential) and defeat ValidationCache (#4635). IntrospectionGate adds its rule before.
    edge: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        ErrorCodes,
        FreshSocketLoaders,
        IntrospectionGate,
        QueryGuard,
        ResponseCachePolicy,
    ]
    # Last: it answers in place of graphql-core once the others have let a request run (schema/fast).
    return [*edge, FastCatalogExecution] if fast else edge
