"""Where the fast executor joins a request: strawberry's execution step, after parsing, validation, the cost
check and the caller's bucket (schema/query_guard.py) and after the response cache noted what runs
(schema/cache_policy.py). A result set here is what strawberry would otherwise get from graphql-core, so the
answer, its `extensions` and the cache's handling of it are the same; None leaves strawberry to execute."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from graphql import DocumentNode, ExecutionResult, GraphQLSchema, OperationType
from graphql.execution.values import get_variable_values
from strawberry.extensions import SchemaExtension

from schema.context import Context
from schema.fast.execute import execute_plan, root_arguments
from schema.fast.fields import Fallback
from schema.fast.plan import OperationPlan, compile_operation, condition_variables
from schema.query_cost import find_operation

log = logging.getLogger("lianmall.fast")

MEMO_SIZE = 1024


class _Compiled:
    """One operation of one document: the variables its plan depends on and the plans per their values."""

    __slots__ = ("conditions", "plans")

    def __init__(self, conditions: tuple[str, ...] | None) -> None:
        self.conditions = conditions
        self.plans: dict[tuple[Any, ...], OperationPlan | None] = {}


_compiled: dict[tuple[int, str, str | None], _Compiled] = {}


def _entry(schema: object, query: str, operation_name: str | None, document: DocumentNode) -> _Compiled:
    key = (id(schema), query, operation_name)
    entry = _compiled.get(key)
    if entry is None:
        if len(_compiled) >= MEMO_SIZE:
            _compiled.clear()
        entry = _compiled[key] = _Compiled(condition_variables(document))
    return entry


# Per (query, operation, variables): the plan and its root fields' arguments. Coercing the variables and
# converting the arguments costs about as much as executing a small page, and shoppers ask the same pages.
_prepared: dict[tuple[int, str, str | None, bytes], tuple[OperationPlan, list[dict[str, Any]]] | None] = {}


def _prepare(
    strawberry_schema: Any,
    query: str,
    document: DocumentNode,
    operation_name: str | None,
    raw_variables: dict[str, Any] | None,
) -> tuple[OperationPlan, list[dict[str, Any]]] | None:
    entry = _entry(strawberry_schema, query, operation_name, document)
    if entry.conditions is None:
        return None
    schema: GraphQLSchema = strawberry_schema._schema
    operation = find_operation(document, operation_name)
    if operation is None:
        return None
    variables = get_variable_values(schema, operation.variable_definitions or (), raw_variables or {})
    if isinstance(variables, list):
        return None  # invalid variables: graphql-core words the errors
    try:
        values = tuple(variables.coerced.get(name) for name in entry.conditions)
        hash(values)
    except TypeError:
        return None
    if values in entry.plans:
        plan = entry.plans[values]
    else:
        query_type = strawberry_schema.get_type_by_name("Query")
        plan = entry.plans[values] = compile_operation(
            schema, query_type, document, operation_name, variables
        )
    if plan is None:
        return None
    try:
        return plan, root_arguments(plan, variables, strawberry_schema)
    except Exception:  # an argument strawberry cannot convert: it says so itself
        return None


def _prepared_for(
    strawberry_schema: Any,
    query: str,
    document: DocumentNode,
    operation_name: str | None,
    raw_variables: dict[str, Any] | None,
) -> tuple[OperationPlan, list[dict[str, Any]]] | None:
    try:
        key = (
            id(strawberry_schema),
            query,
            operation_name,
            orjson.dumps(raw_variables, option=orjson.OPT_SORT_KEYS),
        )
    except TypeError:  # variables that are not JSON (an in-process caller's): not remembered
        return _prepare(strawberry_schema, query, document, operation_name, raw_variables)
    if key in _prepared:
        return _prepared[key]
    if len(_prepared) >= MEMO_SIZE:
        _prepared.clear()
    made = _prepared[key] = _prepare(strawberry_schema, query, document, operation_name, raw_variables)
    return made


async def execute_fast(
    strawberry_schema: Any,
    query: str | None,
    document: DocumentNode | None,
    operation_name: str | None,
    raw_variables: dict[str, Any] | None,
    context: object,
) -> ExecutionResult | None:
    """The result of the operation by the fast executor, or None when strawberry must execute it."""
    if query is None or document is None or not isinstance(context, Context):
        return None
    operation = find_operation(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        # Only catalog reads run here: a mutation's variables (a new idempotency key each time) would be coerced
        # for nothing and fill the memo, pushing the shop's pages out of it.
        return None
    prepared = _prepared_for(strawberry_schema, query, document, operation_name, raw_variables)
    if prepared is None:
        return None
    plan, arguments = prepared
    noted = len(context.volatile) if context.volatile is not None else 0
    terms = len(context.search_terms)
    try:
        data = await execute_plan(plan, arguments, context)
    except Exception as error:  # strawberry answers it, errors included, as it always has
        if context.volatile is not None:
            del context.volatile[noted:]
        del context.search_terms[terms:]
        if not isinstance(error, Fallback):
            log.debug("fast execution fell back: %s: %s", type(error).__name__, error)
        return None
    return ExecutionResult(data=data)


class FastCatalogExecution(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.result is None:
            result = await execute_fast(
                context.schema,
                context.query,
                context.graphql_document,
                context.operation_name,
                context.variables,
                context.context,
            )
            if result is not None:
                context.result = result
        yield
