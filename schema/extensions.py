"""Edge behaviour of the schema: parse/validation caches, depth and alias limits, error codes and masking."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql.error import GraphQLError, GraphQLSyntaxError
from starlette.websockets import WebSocket
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types.execution import ExecutionContext

from infra.settings import Settings
from schema.cache_policy import ResponseCachePolicy
from schema.introspection import IntrospectionGate
from services.errors import DomainError, ErrorCode

INTERNAL_MESSAGE = "Internal server error"


def error_code(error: GraphQLError) -> ErrorCode | None:
    """The code for an error, or None when it is an unexpected failure whose details must stay hidden."""
    original = error.original_error
    if isinstance(original, DomainError):
        return original.code
    if isinstance(error, GraphQLSyntaxError) or isinstance(original, GraphQLSyntaxError):
        return ErrorCode.GRAPHQL_PARSE_FAILED
    if original is None or isinstance(original, GraphQLError):
        message = error.message
        if "exceeds maximum operation depth" in message or "aliases found" in message:
            return ErrorCode.QUERY_TOO_COMPLEX
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
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what we did not expect: domain errors and bad queries are the client's business."""
        unexpected = [e for e in errors if error_code(e) is None]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def edge_extensions(settings: Settings) -> list[Callable[[], SchemaExtension] | type[SchemaExtension]]:
    # The limiters build fresh rule classes in __init__, and ValidationCache keys on the rule objects (#4635):
    # build the rules once and add them through AddValidationRules so the cache keeps hitting.
    rules: list[Any] = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    return [
        ErrorCodes,
        FreshSocketLoaders,
        lambda: ParserCache(maxsize=1024),
        lambda: AddValidationRules(rules),
        IntrospectionGate,
        lambda: ValidationCache(maxsize=1024),
        ResponseCachePolicy,
    ]
