"""Which answers the response cache may keep: decided on what an operation executes, not on what it names.

The cache is shared by every caller with the same price scope (all members of a level), so an answer may be
kept only when every root field that actually ran is a public catalog read. "Actually ran" is what
graphql-core's executor collects for the root: fragments and inline fragments resolved, `@skip`/`@include`
applied with the request's variables, and field names (not aliases, which a client picks freely) compared.
Reading the query text instead let `query { ...products } fragment products on Query { me { id } }` pass
as a `products` read, and one member's profile was served to others.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from graphql import DocumentNode, Executor, GraphQLSchema, OperationType
from graphql.execution.collect_fields import collect_fields
from strawberry.extensions import SchemaExtension

# Catalog reads whose answers depend only on the price scope and the arguments, and whose resolvers declare
# what they depend on (cache tags) while resolving.
CACHEABLE_ROOT_FIELDS = frozenset(
    {"product", "products", "categories", "category", "brands", "tags", "__typename"}
)


def executed_root_fields(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> frozenset[str] | None:
    """Names of the root fields the operation runs with these variables; None unless it is a query that runs."""
    built = Executor.build(schema, document, raw_variable_values=variables, operation_name=operation_name)
    if isinstance(built, list) or built.operation.operation is not OperationType.QUERY:
        return None
    root = schema.query_type
    if root is None:
        return None
    grouped = collect_fields(
        schema, built.fragments, built.variable_values, root, built.operation
    ).grouped_field_set
    return frozenset(details.node.name.value for group in grouped.values() for details in group)


def may_cache(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> bool:
    try:
        roots = executed_root_fields(schema, document, operation_name, variables)
    except Exception:  # whatever the executor would trip over is not worth caching
        return False
    return roots is not None and roots <= CACHEABLE_ROOT_FIELDS


def body_to_store(response: dict[str, Any]) -> bytes:
    """The response as every caller of the scope may get it: without the first caller's throttle status
    (answers from the cache are not charged to anyone's bucket)."""
    cost = (response.get("extensions") or {}).get("cost")
    if not cost or "throttleStatus" not in cost:
        return orjson.dumps(response)
    shared = dict(response)
    shared["extensions"] = {
        **response["extensions"],
        "cost": {k: v for k, v in cost.items() if k != "throttleStatus"},
    }
    return orjson.dumps(shared)


class ResponseCachePolicy(SchemaExtension):
    """Marks the request's context `cacheable` when its executed root fields allow it (see the docstring)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        request_context = context.context
        if getattr(request_context, "cache_key", None) and context.graphql_document is not None:
            request_context.cacheable = may_cache(
                context.schema._schema, context.graphql_document, context.operation_name, context.variables
            )
        yield
