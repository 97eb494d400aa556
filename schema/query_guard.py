"""Every operation is measured before it runs, in time linear in its document, and refused when too big.

In order, each step bounding the next:
1. parse: at most MAX_QUERY_TOKENS tokens (the lexer stops there) and CHARS_PER_TOKEN characters per allowed
   token (checked first: graphql-core's syntax error scans the whole text for line breaks, 10 ms per 1.5 MB);
2. shape (schema/query_shape.py): definitions, fragment nesting, selections with fragments expanded, depth,
   aliases and overlapping fields, before graphql-core's validation, some of whose rules are quadratic;
3. graphql-core's validation;
4. cost (schema/query_cost.py): at most MAX_QUERY_COST per operation;
5. the caller's leaky bucket in Redis (per member, partner key or IP address; staff are not throttled).

Parsing, shape, validation and cost are memoised per query text (cost also per page-size variables), so a
repeated query pays dictionary lookups only. Every response reports `extensions.cost`. A refusal is one
coded error (QUERY_TOO_COMPLEX or RATE_LIMITED) and one log line, never a traceback.

The bucket fails open: when Redis does not answer within BUCKET_TIMEOUT the request runs unthrottled (and
the bucket is skipped for BUCKET_PAUSE), because a Redis outage must not take the shop down, and the per
request cost cap, which needs no Redis, still bounds what any one request can do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from functools import lru_cache
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse
from graphql.error import GraphQLSyntaxError
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from infra.leaky_bucket import BucketState
from infra.runtime import current_runtime
from infra.settings import Settings, get_settings
from schema.query_cost import CostInputs, find_operation, operation_cost, size_variables
from schema.query_shape import Shape, ShapeLimits, measure
from services.errors import ErrorCode
from services.members.viewer import Viewer

log = logging.getLogger("lianmall.limits")

MEMO_SIZE = 1024
# Generous for indentation, comments and long names; a document past it is refused before the lexer runs.
CHARS_PER_TOKEN = 50
BUCKET_TIMEOUT = 0.25
BUCKET_PAUSE = 5.0
_TOKEN_LIMIT_MARK = "tokens. Parsing aborted"


@lru_cache(maxsize=MEMO_SIZE)
def _parse(query: str, max_tokens: int) -> DocumentNode | str:
    """The document, or why it is too big (remembered too: a repeated oversized document costs a lookup)."""
    try:
        return parse(query, max_lexical_tokens=max_tokens)
    except GraphQLSyntaxError as error:
        if _TOKEN_LIMIT_MARK not in error.message:
            raise
        return f"The query has more than {max_tokens} tokens"


def parse_document(query: str, max_tokens: int) -> DocumentNode:
    """The parsed document of a query that `QueryGuard.on_parse` accepted."""
    document = _parse(query, max_tokens)
    if isinstance(document, str):
        raise ValueError(document)
    return document


@lru_cache(maxsize=MEMO_SIZE)
def _shape(query: str, max_tokens: int, limits: ShapeLimits) -> Shape:
    return measure(parse_document(query, max_tokens), limits)


@lru_cache(maxsize=MEMO_SIZE)
def validate_query(
    schema: GraphQLSchema, query: str, max_tokens: int, rules: tuple[type[ASTValidationRule], ...]
) -> list[GraphQLError]:
    """graphql-core's validation, memoised on the query text rather than on the parsed document: hashing
    a document walks all of it (~50 us for a README query), hashing a string is free after the first time."""
    return validate_document(schema, parse_document(query, max_tokens), rules)


@lru_cache(maxsize=MEMO_SIZE)
def _size_variables(query: str, max_tokens: int) -> tuple[str, ...]:
    return size_variables(parse_document(query, max_tokens))


@lru_cache(maxsize=MEMO_SIZE)
def _cost(
    schema: GraphQLSchema,
    query: str,
    max_tokens: int,
    operation_name: str | None,
    sizes: tuple[tuple[str, Any], ...],
    max_page_size: int,
) -> int:
    document = parse_document(query, max_tokens)
    operation = find_operation(document, operation_name)
    if operation is None:
        return 0
    return operation_cost(schema, document, operation, CostInputs(dict(sizes), max_page_size))


def query_cost(
    schema: GraphQLSchema,
    query: str,
    max_tokens: int,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    max_page_size: int,
) -> int:
    """The requested cost of the operation (see schema/query_cost.py)."""
    given = variables or {}
    # Only the variables that can change the cost key the memo; one left out is not the same as null.
    sizes = tuple((name, given[name]) for name in _size_variables(query, max_tokens) if name in given)
    try:
        return _cost(schema, query, max_tokens, operation_name, sizes, max_page_size)
    except TypeError:  # an unhashable variable value (a list or object where a number belongs)
        return _cost.__wrapped__(schema, query, max_tokens, operation_name, sizes, max_page_size)


def admitted_document(
    schema: GraphQLSchema, query: str, settings: Settings, rules: tuple[type[ASTValidationRule], ...]
) -> DocumentNode | None:
    """The document when QueryGuard's parse, shape and validation steps (with validation `rules`) let `query`
    through, else None; from the guard's own memos."""
    max_tokens = settings.max_query_tokens
    if len(query) > CHARS_PER_TOKEN * max_tokens:
        return None
    try:
        document = _parse(query, max_tokens)
    except GraphQLSyntaxError:
        return None
    if isinstance(document, str) or _shape(query, max_tokens, shape_limits(settings)).refusal is not None:
        return None
    return None if validate_query(schema, query, max_tokens, rules) else document


def shape_limits(settings: Settings) -> ShapeLimits:
    return ShapeLimits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_definitions=settings.max_query_definitions,
        max_selections=settings.max_query_selections,
        max_overlaps=settings.max_field_overlaps,
    )


def refusal(code: ErrorCode, message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code.value, **extensions})


def who(context: Any) -> str:
    """The caller, for log lines and bucket keys: never a token, only ids and addresses."""
    return caller(getattr(context, "viewer", None), getattr(context, "request", None))


def caller(viewer: Viewer | None, connection: Any) -> str:
    """`who` for a viewer and the request (or socket) it came on."""
    if viewer is not None and viewer.staff is not None:
        return f"staff:{viewer.staff.id}"
    if viewer is not None and viewer.member is not None:
        return f"member:{viewer.member.id}"
    if viewer is not None and viewer.partner is not None:
        return f"partner:{viewer.partner.id}"
    client = getattr(connection, "client", None)
    return f"ip:{client.host}" if client is not None else "ip:unknown"


def cost_extension(cost: int, bucket: BucketState | None) -> dict[str, Any]:
    """What `extensions.cost` of an answer says: the operation's cost and, when charged, the caller's bucket."""
    reported: dict[str, Any] = {"requestedQueryCost": cost}
    if bucket is not None:
        reported["throttleStatus"] = {
            "maximumAvailable": bucket.size,
            "currentlyAvailable": int(bucket.available),
            "restoreRate": bucket.rate,
        }
    return reported


class _BucketBreaker:
    """Skips the bucket for a while after Redis failed to answer, so an outage costs one timeout, not one per
    request; and logs that once per pause rather than once per request."""

    def __init__(self) -> None:
        self.paused_until = 0.0

    def open(self) -> bool:
        return time.monotonic() >= self.paused_until

    def trip(self, error: BaseException) -> None:
        self.paused_until = time.monotonic() + BUCKET_PAUSE
        log.warning(
            "query cost buckets unavailable (%s); serving unthrottled for %.0fs",
            type(error).__name__,
            BUCKET_PAUSE,
        )


_breaker = _BucketBreaker()


async def spend(caller: str, cost: int, settings: Settings) -> BucketState | None:
    """Take `cost` from `caller`'s bucket (`who`); None when the caller is not throttled: staff, an unknown
    address, buckets off, or Redis away (fail open, see the module docstring)."""
    if caller.startswith("staff:") or caller == "ip:unknown":
        return None
    if caller.startswith("ip:"):
        size, rate = settings.cost_bucket_size_per_ip, settings.cost_restore_rate_per_ip
    else:
        size, rate = settings.cost_bucket_size, settings.cost_restore_rate
    if size == 0 or not _breaker.open():
        return None
    try:
        async with asyncio.timeout(BUCKET_TIMEOUT):
            return await current_runtime().buckets.spend(caller, cost, size=size, rate=rate)
    except Exception as error:  # any Redis failure: fail open
        _breaker.trip(error)
        return None


class QueryGuard(SchemaExtension):
    def __init__(self) -> None:
        super().__init__()
        self.cost: int | None = None
        self.bucket: BucketState | None = None

    def _settings(self) -> Settings:
        return getattr(self.execution_context.context, "settings", None) or get_settings()

    def _refuse(self, code: ErrorCode, message: str, **extensions: Any) -> None:
        context = self.execution_context
        level = logging.INFO if code is ErrorCode.RATE_LIMITED else logging.WARNING
        log.log(
            level,
            "refused %r from %s: %s",
            (context.operation_name or "anonymous operation")[:64],
            who(context.context),
            message,
        )
        context.pre_execution_errors = [refusal(code, message, **extensions)]

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and context.graphql_document is None:
            max_tokens = self._settings().max_query_tokens
            if len(context.query) > CHARS_PER_TOKEN * max_tokens:
                message = f"The query is longer than {CHARS_PER_TOKEN * max_tokens} characters"
                log.warning("refused a query from %s: %s", who(context.context), message)
                raise refusal(ErrorCode.QUERY_TOO_COMPLEX, message)
            document = _parse(context.query, max_tokens)
            if isinstance(document, str):
                log.warning("refused a query from %s: %s", who(context.context), document)
                raise refusal(ErrorCode.QUERY_TOO_COMPLEX, document)
            context.graphql_document = document
        yield

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        settings = self._settings()
        query = context.query
        if not query or context.pre_execution_errors is not None:
            yield
            return
        schema = context.schema._schema
        shape = _shape(query, settings.max_query_tokens, shape_limits(settings))
        if shape.refusal is not None:
            code = ErrorCode.GRAPHQL_VALIDATION_FAILED if shape.cyclic else ErrorCode.QUERY_TOO_COMPLEX
            self._refuse(code, shape.refusal)
            yield
            return
        errors = validate_query(schema, query, settings.max_query_tokens, tuple(context.validation_rules))
        context.pre_execution_errors = errors
        if errors:
            yield
            return
        self.cost = query_cost(
            schema,
            query,
            settings.max_query_tokens,
            context.operation_name,
            context.variables,
            settings.max_page_size,
        )
        if self.cost > settings.max_query_cost:
            self._refuse(
                ErrorCode.QUERY_TOO_COMPLEX,
                f"The query costs {self.cost}; the limit is {settings.max_query_cost} "
                "(ask for smaller pages or fewer fields)",
            )
        else:
            await self._charge(settings)
        yield

    async def _charge(self, settings: Settings) -> None:
        if self.cost is None:
            return
        context = self.execution_context.context
        # An edge that answers early (schema/sold_out_lane.py) spent the bucket already when it hands over.
        charged = getattr(context, "charged", None)
        self.bucket = charged or await spend(who(context), self.cost, settings)
        if self.bucket is not None and not self.bucket.allowed:
            size, rate = self.bucket.size, self.bucket.rate
            retry_after = round(self.bucket.retry_after + 0.05, 1)
            self._refuse(
                ErrorCode.RATE_LIMITED,
                f"The query costs {self.cost} and {int(self.bucket.available)} of {size} points are "
                f"available; they refill at {rate:g} per second: retry in {retry_after:g} s",
                retryAfter=retry_after,
            )
            if hasattr(context, "retry_after"):
                context.retry_after = retry_after

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return {"cost": cost_extension(self.cost, self.bucket)}
