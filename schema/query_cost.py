"""The static cost of an operation: an upper bound on the objects it can make the server load and build.

Like Shopify's requested query cost:
- a field that returns an object costs 1 per object it can return; scalars, enums and `__typename` cost 0;
- a field with a `first`, `last` or `limit` argument returns at most that many items: a list field with one
  costs that many objects, and a connection passes it to its `edges` (or `nodes`), whose selections are
  multiplied by it. The argument's value comes from the query, the request's variables or the argument's
  default, and counts as at most MAX_PAGE_SIZE (a larger page is refused as PAGE_SIZE_EXCEEDED anyway);
- a list the catalog bounds (`LIST_SIZES`: a SKU's spec values, a category's breadcrumbs) counts as that
  many items, any other list (a product's `skus`, a category's `children`, a payload's `errors`) as
  `LIST_SIZE`; a tree's field nested deeper than the tree has levels (`TREE_LEVELS`) counts as empty;
- each mutation field costs `MUTATION_COST` more;
- introspection (`__schema`, `__type`) costs nothing: it is bounded by the schema and by graphql-core's
  introspection depth rule, and open only to staff and partners in production.
Fields under `@skip`/`@include` are counted either way (the cost is an upper bound).

The walk covers the operation with fragments expanded; `schema/query_shape.py` has already bounded how many
selections that is, so it is linear and has no recursion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    is_composite_type,
)
from graphql.language import DocumentNode
from graphql.pyutils import Undefined

from models import MAX_CATEGORY_LEVEL
from schema.query_shape import INTROSPECTION_ROOTS
from services.catalog.drafts import MAX_SPEC_DIMENSIONS, MAX_TIER_PRICES

LIST_SIZE = 10
# (type, field) -> most items the domain allows in that list.
LIST_SIZES: dict[tuple[str, str], int] = {
    ("Sku", "specValues"): MAX_SPEC_DIMENSIONS,
    ("Sku", "tierPrices"): MAX_TIER_PRICES,
    ("Product", "specs"): MAX_SPEC_DIMENSIONS,
    ("Category", "breadcrumbs"): MAX_CATEGORY_LEVEL,
}
# (type, field) of a tree -> its levels: that field nested deeper is empty. The category tree has three, so
# `categories { children { children { children { id } } } }` costs its first three levels only.
TREE_LEVELS: dict[tuple[str, str], int] = {("Category", "children"): MAX_CATEGORY_LEVEL}
MUTATION_COST = 10
SIZE_ARGUMENTS = ("first", "last", "limit")


@dataclass(frozen=True)
class CostInputs:
    """What the cost depends on besides the document."""

    variables: dict[str, Any]
    max_page_size: int


def find_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == operation_name), None)


def size_variables(document: DocumentNode) -> tuple[str, ...]:
    """Names of the variables that can change the cost (those passed to a size argument), for memo keys."""
    names: set[str] = set()
    stack: list[SelectionSetNode] = [
        d.selection_set for d in document.definitions if hasattr(d, "selection_set")
    ]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                for argument in selection.arguments or ():
                    if argument.name.value in SIZE_ARGUMENTS and isinstance(argument.value, VariableNode):
                        names.add(argument.value.name.value)
            selection_set = getattr(selection, "selection_set", None)
            if selection_set is not None:
                stack.append(selection_set)
    return tuple(sorted(names))


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    inputs: CostInputs,
) -> int:
    """The operation's requested cost (see the module docstring); 0 for parts validation would reject."""
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    defaults = {
        v.variable.name.value: v.default_value
        for v in operation.variable_definitions or ()
        if v.default_value is not None
    }
    total = 0
    stack = [
        _Scope(
            operation.selection_set,
            root,
            multiplier=1,
            page=None,
            extra=MUTATION_COST if operation.operation is OperationType.MUTATION else 0,
            level=1,
        )
    ]
    while stack:
        scope = stack.pop()
        fields = getattr(scope.parent, "fields", None)
        for selection in scope.selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                definition = fields.get(name) if fields is not None else None
                if name in INTROSPECTION_ROOTS or definition is None:
                    continue
                total += scope.extra * scope.multiplier
                size = _size_argument(selection, definition, inputs, defaults)
                key = (scope.parent.name, name)
                level = scope.level + 1 if key in TREE_LEVELS else 1
                field_type = definition.type
                if isinstance(field_type, GraphQLNonNull):
                    field_type = field_type.of_type
                if isinstance(field_type, GraphQLList):
                    if level > TREE_LEVELS.get(key, level):
                        items = 0
                    elif size is not None:
                        items = size
                    else:
                        items = scope.page if scope.page is not None else LIST_SIZES.get(key, LIST_SIZE)
                    page = None
                    while isinstance(field_type, (GraphQLList, GraphQLNonNull)):
                        field_type = field_type.of_type
                else:
                    items, page = 1, size
                if not is_composite_type(field_type):
                    continue
                total += scope.multiplier * items
                if selection.selection_set is not None and items:
                    stack.append(
                        _Scope(selection.selection_set, field_type, scope.multiplier * items, page, 0, level)
                    )
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                parent = schema.get_type(condition.name.value) if condition else scope.parent
                stack.append(scope._replace(selection_set=selection.selection_set, parent=parent))
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    parent = schema.get_type(fragment.type_condition.name.value)
                    stack.append(scope._replace(selection_set=fragment.selection_set, parent=parent))
    return total


class _Scope(NamedTuple):
    """A selection set to cost, and what it inherits."""

    selection_set: SelectionSetNode
    parent: Any  # the type its fields belong to
    multiplier: int  # how many objects it is selected on
    page: int | None  # the page size a connection hands its `edges`/`nodes`
    extra: int  # added per field (mutation fields)
    level: int  # for a tree type (TREE_LEVELS): the level its objects may be at, 1 when unknown


def _size_argument(
    node: FieldNode, definition: Any, inputs: CostInputs, defaults: dict[str, ValueNode]
) -> int | None:
    """The page size a field asks for: its first/last/limit argument, or the argument's default."""
    for name in SIZE_ARGUMENTS:
        argument_definition = definition.args.get(name)
        if argument_definition is None:
            continue
        given = next((a.value for a in node.arguments or () if a.name.value == name), None)
        value: Any = Undefined if given is None else _value(given, inputs, defaults)
        if value is Undefined:  # not given, or a variable the request left out: the argument's default
            value = argument_definition.default_value
        if not isinstance(value, int) or isinstance(value, bool):
            # Unset, null or not a number (validation or the resolver refuses the last): assume the largest.
            return inputs.max_page_size
        return max(0, min(value, inputs.max_page_size))
    return None


def _value(node: ValueNode, inputs: CostInputs, defaults: dict[str, ValueNode]) -> Any:
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, VariableNode):
        name = node.name.value
        if name in inputs.variables:
            return inputs.variables[name]
        default = defaults.get(name)
        if default is None:
            return Undefined
        return int(default.value) if isinstance(default, IntValueNode) else None
    return None
