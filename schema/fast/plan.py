"""An operation compiled for the fast executor: which fields run, in graphql-core's order, and how.

Fields are collected by graphql-core's own `collect_fields` / `collect_subfields` (fragments, inline
fragments, type conditions, aliases merged by response key, @skip/@include with the request's variables), so
the plan runs exactly the fields graphql-core would, in its order. A plan depends on the document, the
operation and the values of the variables @skip/@include read; `compile_operation` answers None for anything
the executor does not model, and the request then runs through strawberry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from graphql.execution.collect_fields import (
    CollectedFields,
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues
from strawberry.types.base import StrawberryObjectDefinition

from schema.fast.builders import builder
from schema.fast.fields import QUERY, TYPES, Fallback, Field, Hole, Leaf, Link, Root
from schema.query_cost import find_operation

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
CONDITIONS = ("skip", "include")

Serialize = Callable[[Any], Any]


@dataclass(slots=True)
class FieldPlan:
    key: str  # the response key (alias or name)
    spec: Field | Root | None  # None: __typename
    serialize: Serialize | None  # leaves (and Links whose value is a scalar)
    child: TypePlan | None  # objects: the plan of their fields
    is_list: bool
    non_null: bool
    type_name: str  # the object type the field is on (for the answer's paths)
    node: FieldNode | None = None  # root fields: where their arguments are
    definition: GraphQLField | None = None
    arguments: Any = None  # root fields: strawberry's argument definitions
    scalar: str | None = None  # "str", "int" or "bool": a single scalar of that type (see builders.py)
    name: str = ""  # the field's name (the key may be an alias)
    loads: Any = None  # a Link's loads, as the selection below it chose (fields.Link.loads_with)


@dataclass(slots=True)
class TypePlan:
    type_name: str
    fields: list[FieldPlan]
    links: list[FieldPlan] = field(default_factory=list)  # the fields that load: done a level later
    # Builds one object's answer (generated from the fields by builders.py once the plan is complete).
    build: Callable[..., dict[str, Any]] | None = None


@dataclass(slots=True)
class OperationPlan:
    fields: list[FieldPlan]


def condition_variables(document: DocumentNode) -> tuple[str, ...] | None:
    """The variables @skip/@include read anywhere in the document (the plan depends on their values); None
    when the document carries any other directive on a selection, or a fragment with variables."""
    names: list[str] = []
    stack: list[SelectionSetNode] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode) and definition.variable_definitions:
            return None
        if getattr(definition, "directives", None):
            return None
        selection_set = getattr(definition, "selection_set", None)
        if selection_set is not None:
            stack.append(selection_set)
    while stack:
        for selection in stack.pop().selections:
            for directive in selection.directives or ():
                if directive.name.value not in CONDITIONS:
                    return None
                for argument in directive.arguments:
                    if isinstance(argument.value, VariableNode):
                        names.append(argument.value.name.value)
            selection_set = getattr(selection, "selection_set", None)
            if selection_set is not None:
                stack.append(selection_set)
    return tuple(dict.fromkeys(names))


def _serializer(graphql_type: GraphQLOutputType) -> Serialize:
    """The value as graphql-core's completion makes it, with a fast lane for values already in shape; a null
    where the type forbids one is graphql-core's error (and so a fallback)."""
    if isinstance(graphql_type, GraphQLNonNull):
        inner = _serializer(graphql_type.of_type)

        def non_null(value: Any) -> Any:
            if value is None:
                raise Fallback("null in a non-null field")
            return inner(value)

        return non_null
    if isinstance(graphql_type, GraphQLList):
        item = _serializer(graphql_type.of_type)

        def listed(value: Any) -> Any:
            return None if value is None else [item(v) for v in value]

        return listed
    serialize = graphql_type.serialize  # type: ignore[union-attr]
    if graphql_type is GraphQLInt:

        def as_int(value: Any) -> Any:
            if type(value) is int and INT_MIN <= value <= INT_MAX:
                return value
            return None if value is None else serialize(value)

        return as_int
    if graphql_type is GraphQLString or graphql_type is GraphQLID:

        def as_str(value: Any) -> Any:
            if type(value) is str:
                return value
            return None if value is None else serialize(value)

        return as_str
    if graphql_type is GraphQLBoolean:

        def as_bool(value: Any) -> Any:
            if type(value) is bool:
                return value
            return None if value is None else serialize(value)

        return as_bool

    def other(value: Any) -> Any:
        return None if value is None else serialize(value)

    return other


_SCALARS = {
    GraphQLString.name: "str",
    GraphQLID.name: "str",
    GraphQLInt.name: "int",
    GraphQLBoolean.name: "bool",
}


class Compiler:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: VariableValues,
        strawberry_query: StrawberryObjectDefinition,
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.strawberry_query = strawberry_query
        self.fragments = {
            d.name.value: FragmentDetails(d)
            for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }

    def operation(self, document: DocumentNode, operation_name: str | None) -> OperationPlan | None:
        operation = find_operation(document, operation_name)
        root = self.schema.query_type
        if operation is None or operation.operation is not OperationType.QUERY or root is None:
            return None
        self.operation_node = operation
        collected = collect_fields(self.schema, self.fragments, self.variables, root, operation)
        fields: list[FieldPlan] = []
        for key, details in self._grouped(collected).items():
            node = details[0].node
            name = node.name.value
            if name == "__typename":
                fields.append(FieldPlan(key, None, None, None, False, True, root.name))
                continue
            spec = QUERY.get(name)
            definition = root.fields.get(name)
            if spec is None or definition is None:
                return None
            plan = self._field(key, spec, definition, details, root.name)
            if plan is None:
                return None
            plan.node = node
            plan.definition = definition
            strawberry_field = next(
                (f for f in self.strawberry_query.fields if f.graphql_name == name or f.python_name == name),
                None,
            )
            if strawberry_field is None or strawberry_field.extensions:
                return None
            plan.arguments = strawberry_field.arguments
            fields.append(plan)
        return OperationPlan(fields)

    def _grouped(self, collected: CollectedFields) -> dict[str, list[FieldDetails]]:
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise Fallback("@defer")
        for details in collected.grouped_field_set.values():
            for detail in details:
                if detail.defer_usage is not None or detail.fragment_variable_values is not None:
                    raise Fallback("@defer or fragment variables")
        return collected.grouped_field_set

    def _field(
        self,
        key: str,
        spec: Field | Root,
        definition: GraphQLField,
        details: list[FieldDetails],
        parent: str,
    ) -> FieldPlan | None:
        graphql_type = definition.type
        non_null = isinstance(graphql_type, GraphQLNonNull)
        inner = graphql_type.of_type if isinstance(graphql_type, GraphQLNonNull) else graphql_type
        is_list = isinstance(inner, GraphQLList)
        named = get_named_type(graphql_type)
        if is_leaf_type(named):
            if not isinstance(spec, Leaf | Hole | Link):
                return None
            plan = FieldPlan(key, spec, _serializer(graphql_type), None, is_list, non_null, parent)
            if not is_list:
                plan.scalar = _SCALARS.get(named.name)
            return plan
        if isinstance(spec, Leaf | Hole) or not isinstance(named, GraphQLObjectType):
            return None
        if is_list:
            item = inner.of_type  # type: ignore[union-attr]
            if not isinstance(item, GraphQLNonNull) or isinstance(item.of_type, GraphQLList):
                return None  # lists of nullable items or of lists: not in the catalog types
        child = self.object_type(named, details)
        if child is None:
            return None
        plan = FieldPlan(key, spec, None, child, is_list, non_null, parent)
        if isinstance(spec, Link):
            plan.loads = spec.loads
            if spec.loads_with is not None and any(f.name == spec.loads_with[0] for f in child.fields):
                plan.loads = spec.loads_with[1]
        return plan

    def object_type(self, object_type: GraphQLObjectType, details: list[FieldDetails]) -> TypePlan | None:
        known = TYPES.get(object_type.name)
        if known is None:
            return None
        collected = collect_subfields(
            self.schema, self.fragments, self.variables, self.operation_node, object_type, details
        )
        plan = TypePlan(object_type.name, [])
        for key, sub_details in self._grouped(collected).items():
            name = sub_details[0].node.name.value
            if name == "__typename":
                plan.fields.append(FieldPlan(key, None, None, None, False, True, object_type.name))
                continue
            spec = known.get(name)
            definition = object_type.fields.get(name)
            if spec is None or definition is None or definition.args:
                return None
            field_plan = self._field(key, spec, definition, sub_details, object_type.name)
            if field_plan is None:
                return None
            field_plan.name = name
            if isinstance(spec, Link) and field_plan.child is None:
                field_plan.loads = spec.loads
            plan.fields.append(field_plan)
            if isinstance(spec, Link) and spec.deferred:
                plan.links.append(field_plan)
        plan.build = builder(plan)
        return plan


def compile_operation(
    schema: GraphQLSchema,
    strawberry_query: StrawberryObjectDefinition,
    document: DocumentNode,
    operation_name: str | None,
    variables: VariableValues,
) -> OperationPlan | None:
    """The plan of the operation with these @skip/@include values, or None when it is not all catalog."""
    try:
        return Compiler(schema, document, variables, strawberry_query).operation(document, operation_name)
    except Fallback:
        return None
