"""Which answers the response cache may keep: decided on what an operation executes, not on what it names.

The cache is shared by every caller with the same price scope (all members of a level), so an answer may be
kept only when every root field that actually ran is a public catalog read. "Actually ran" is what
graphql-core's executor collects for the root: fragments and inline fragments resolved, `@skip`/`@include`
applied with the request's variables, and field names (not aliases, which a client picks freely) compared.
Reading the query text instead let `query { ...products } fragment products on Query { me { id } }` pass
as a `products` read, and one member's profile was served to others.

The decision costs nothing for the requests it cannot concern: it is taken only for a query that is
otherwise fit to store (no errors, catalog tags), and remembered per query text when the document has no
`@skip`/`@include` (then variables cannot change which root fields run).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    OperationType,
    SelectionSetNode,
    get_variable_values,
)
from graphql.execution.collect_fields import FragmentDetails, collect_fields
from graphql.execution.values import VariableValues
from strawberry.extensions import SchemaExtension

from schema.query_cost import find_operation

if TYPE_CHECKING:
    from schema.context import Context

# Catalog reads whose answers depend only on the price scope and the arguments, and whose resolvers declare
# what they depend on (cache tags) while resolving.
CACHEABLE_ROOT_FIELDS = frozenset(
    {"product", "products", "categories", "category", "brands", "tags", "__typename"}
)
CONDITIONS = frozenset({"skip", "include"})
MEMO_SIZE = 1024
_NO_VARIABLES = VariableValues(sources={}, coerced={})
_unconditional_roots: dict[tuple[str, str | None], frozenset[str] | None] = {}


def _conditional(document: DocumentNode) -> bool:
    """Whether any selection carries @skip or @include (variables may then change what runs)."""
    stack: list[SelectionSetNode] = [
        d.selection_set for d in document.definitions if hasattr(d, "selection_set")
    ]
    while stack:
        for selection in stack.pop().selections:
            if any(d.name.value in CONDITIONS for d in selection.directives or ()):
                return True
            selection_set = getattr(selection, "selection_set", None)
            if selection_set is not None:
                stack.append(selection_set)
    return False


def executed_root_fields(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> frozenset[str] | None:
    """Names of the root fields the operation runs with these variables; None unless it is a query that runs."""
    operation = find_operation(document, operation_name)
    root = schema.query_type
    if operation is None or operation.operation is not OperationType.QUERY or root is None:
        return None
    values = _NO_VARIABLES
    if _conditional(document):
        coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
        if isinstance(coerced, list):
            return None
        values = coerced
    fragments = {
        d.name.value: FragmentDetails(d)
        for d in document.definitions
        if isinstance(d, FragmentDefinitionNode)
    }
    grouped = collect_fields(schema, fragments, values, root, operation).grouped_field_set
    return frozenset(details.node.name.value for group in grouped.values() for details in group)


@dataclass(frozen=True)
class ExecutedOperation:
    """What a request ran, kept on its context until the view asks whether the answer may be stored."""

    schema: GraphQLSchema
    query: str
    document: DocumentNode
    operation_name: str | None
    variables: dict[str, Any] | None

    def public(self) -> bool:
        key = (self.query, self.operation_name)
        if key in _unconditional_roots:
            roots = _unconditional_roots[key]
        else:
            try:
                roots = executed_root_fields(self.schema, self.document, self.operation_name, self.variables)
            except Exception:  # whatever the executor would trip over is not worth caching
                return False
            if not _conditional(self.document):
                if len(_unconditional_roots) >= MEMO_SIZE:
                    _unconditional_roots.clear()
                _unconditional_roots[key] = roots
        return roots is not None and roots <= CACHEABLE_ROOT_FIELDS


def may_store(context: Context, failed: bool) -> bool:
    """Whether this request's answer may go into the cache its scope shares."""
    return (
        context.cache_key is not None
        and context.cache_marks is not None
        and not failed
        and not context.cache_blocked
        and bool(context.cache_tags)
        and context.operation is not None
        and context.operation.public()
    )


def shared_response(response: dict[str, Any]) -> dict[str, Any]:
    """The response as every caller of the scope may get it: without the first caller's throttle status
    (answers from the cache are not charged to anyone's bucket). A shallow copy: `data` is not copied."""
    cost = (response.get("extensions") or {}).get("cost")
    if not cost or "throttleStatus" not in cost:
        return dict(response)
    shared = dict(response)
    shared["extensions"] = {
        **response["extensions"],
        "cost": {k: v for k, v in cost.items() if k != "throttleStatus"},
    }
    return shared


class ResponseCachePolicy(SchemaExtension):
    """Notes on the context what a cache candidate ran; the decision waits until it is needed (`may_store`)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        request_context = context.context
        if (
            getattr(request_context, "cache_key", None)
            and context.query
            and context.graphql_document is not None
        ):
            request_context.operation = ExecutedOperation(
                context.schema._schema,
                context.query,
                context.graphql_document,
                context.operation_name,
                context.variables,
            )
        yield
