"""Every error `field` a response names must be a path into the arguments of the field that reported it.

`input.items[1].skuId` is fine for `placeOrder(input: CheckoutInput!)` when CheckoutInput has `items:
[CheckoutItemInput!]` whose members have `skuId`; `delta` (a service's variable) or `payParams` (an output) are
not. The test client (`tests.graphql_client.gql`) runs this on every answer, so the whole suite sweeps the
errors its calls provoke; tests/test_error_fields.py adds a table of bad inputs for the rest.

Payload errors (`errors { field }` of a mutation or of a query's payload) are paths into the root field's
arguments; GraphQL errors carrying `extensions.field` are paths into the arguments of the field at their `path`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_input_object_type,
    is_list_type,
    is_non_null_type,
    parse,
)

_SEGMENT = re.compile(r"([_A-Za-z][_0-9A-Za-z]*)((?:\[\d+\])*)")


def path_problem(field: GraphQLField, path: str) -> str | None:
    """Why `path` is not a path into `field`'s arguments, or None when it is one."""
    current: Any = None
    for position, segment in enumerate(path.split(".")):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            return f"{segment!r} is not an argument or input field name"
        name, indexes = match.groups()
        if position == 0:
            argument = field.args.get(name)
            if argument is None:
                return f"there is no argument {name!r} (arguments: {sorted(field.args)})"
            current = argument.type
        else:
            holder = current.of_type if is_non_null_type(current) else current
            if not is_input_object_type(holder):
                return f"{name!r} follows something that is not an input object"
            input_field = holder.fields.get(name)
            if input_field is None:
                return f"{holder.name} has no field {name!r}"
            current = input_field.type
        for _ in re.findall(r"\[\d+\]", indexes):
            holder = current.of_type if is_non_null_type(current) else current
            if not is_list_type(holder):
                return f"{name!r} is not a list, so it takes no index"
            current = holder.of_type
    return None


@lru_cache(maxsize=512)
def _document(query: str) -> DocumentNode | None:
    try:
        return parse(query)
    except GraphQLError:
        return None


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if name is None or (o.name is not None and o.name.value == name)]
    return chosen[0] if len(chosen) == 1 else None


def _fields(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    condition: str | None = None,
) -> list[tuple[FieldNode, str | None]]:
    """The field nodes of a selection set with fragments expanded, each with the type condition it sits under."""
    found: list[tuple[FieldNode, str | None]] = []
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            found.append((selection, condition))
        elif isinstance(selection, InlineFragmentNode):
            inner = selection.type_condition.name.value if selection.type_condition else condition
            found += _fields(selection.selection_set, fragments, inner)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
            fragment = fragments[selection.name.value]
            found += _fields(fragment.selection_set, fragments, fragment.type_condition.name.value)
    return found


def _field_at(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    path: list[str | int],
) -> GraphQLField | None:
    """The schema field behind a response path (aliases and fragments followed), or None if it cannot be told."""
    parent: Any = schema.get_root_type(operation.operation)
    selection_set: SelectionSetNode | None = operation.selection_set
    field: GraphQLField | None = None
    for key in path:
        if isinstance(key, int):
            continue
        for node, condition in _fields(selection_set, fragments):
            if (node.alias or node.name).value != key:
                continue
            owner = schema.get_type(condition) if condition else get_named_type(parent)
            field = getattr(owner, "fields", {}).get(node.name.value)
            if field is None:
                return None
            parent, selection_set = field.type, node.selection_set
            break
        else:
            return None
    return field


def _payload_fields(value: Any) -> list[str]:
    """The `field`s of every UserError under a payload (they sit in `errors` lists, at any depth)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "errors" and isinstance(inner, list):
                found += [
                    e["field"] for e in inner if isinstance(e, dict) and isinstance(e.get("field"), str)
                ]
            found += _payload_fields(inner)
    elif isinstance(value, list):
        for inner in value:
            found += _payload_fields(inner)
    return found


def error_field_problems(
    schema: GraphQLSchema, query: str, body: dict[str, Any], operation_name: str | None = None
) -> list[str]:
    """Every error `field` in a GraphQL answer that is not a path into its field's arguments, explained."""
    document = _document(query)
    operation = _operation(document, operation_name) if document else None
    if document is None or operation is None:
        return []
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    problems: list[str] = []
    for key, value in (body.get("data") or {}).items():
        field = _field_at(schema, operation, fragments, [key])
        for path in _payload_fields(value) if field is not None else ():
            problem = path_problem(field, path)
            if problem:
                problems.append(f"{key}: errors field {path!r}: {problem}")
    for error in body.get("errors") or []:
        path = (error.get("extensions") or {}).get("field")
        where = error.get("path")
        if not isinstance(path, str) or not where:
            continue
        field = _field_at(schema, operation, fragments, where)
        problem = path_problem(field, path) if field is not None else None
        if problem:
            problems.append(f"{'.'.join(map(str, where))}: extensions.field {path!r}: {problem}")
    return problems
