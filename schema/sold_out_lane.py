"""A placeOrder this process already knows is refused (a sold-out flash sale's crowd), answered before execution.

Once a flash item is sold out, every further attempt ends in the same coded refusal, which `turn_away` decides
from what this process knows (services/marketing/flash_sale/sold_out.py) before checkout's first query. Building
a strawberry execution for it (execution context, extension phases, variable coercion, argument conversion,
result completion) cost about 400 µs of the 600 µs such an attempt took in-process. The view asks this lane
first; it answers from:

1. a plan per document text and operation name, made once: the document passes the same parse, shape and
   validation memos as QueryGuard (with the stricter, no-introspection rules), and its operation is a mutation
   whose only root field is placeOrder, `input` from a variable and `idempotencyKey` from a variable or a string,
   with no directives, no fragments, no unused or defaulted variables, and a payload selection of fields that
   strawberry resolves by attribute;
2. per request: the variables checked strictly (whatever graphql-core would coerce, e.g. an Int for an ID, or
   refuse is not answered here), the resolver's own `checkout_request`, the idempotency key's bounds, then each
   campaign's `turn_away_from_memory`, in the order `turn_away` asks them;
3. the caller's cost bucket spent as QueryGuard spends it (a refused spend hands the request over with the
   spend, so it is never taken twice), and the payload rendered field by field as graphql-core renders it.

Anything else, or anything not decided without waiting, goes the full path, which answers as it always has.
tests/test_sold_out_lane.py holds the two paths' answers (status, headers, body) byte for byte equal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import MISSING, dataclass
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    NamedTypeNode,
    NonNullTypeNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    Undefined,
    VariableNode,
    specified_rules,
)
from strawberry.types.base import StrawberryObjectDefinition

from infra.leaky_bucket import BucketState
from infra.settings import Settings
from resolvers.checkout import checkout_request
from schema.catalog_inputs import user_errors
from schema.checkout import CheckoutInput, PlaceOrderPayload
from schema.introspection import NO_INTROSPECTION
from schema.query_cost import find_operation
from schema.query_guard import admitted_document, caller, cost_extension, query_cost, spend
from services.errors import DomainError
from services.members.viewer import Viewer
from services.orders import campaigns
from services.orders.checkout import KEY_MAX

log = logging.getLogger("lianmall.sold_out_lane")

MEMO_SIZE = 1024
ROOT_FIELD = "placeOrder"
# Validated with these, a document is valid for every caller (the introspection gate only adds a rule).
_STRICT_RULES = (*specified_rules, *NO_INTROSPECTION)
# The deepest a body this lane answers can nest: variables, input, items, an item, its campaign (and the top).
_DEEPEST_BODY = 6
_TOP_KEYS = frozenset({"query", "variables", "operationName", "extensions"})
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class _Undecided(Exception):
    """Not for this lane: the full path answers."""


@dataclass(frozen=True)
class Answer:
    """The whole JSON body of the answer."""

    body: bytes


@dataclass(frozen=True)
class Handover:
    """Refused by the caller's bucket: the full path answers, with this spend instead of spending again."""

    charged: BucketState


# --- variables: what graphql-core coerces and strawberry converts, for values that need no coercion ------------

Convert = Callable[[Any], Any]


def _strict_scalar(scalar: GraphQLScalarType) -> Convert:
    name = scalar.name
    if name in ("ID", "String"):

        def text(value: Any) -> Any:
            if type(value) is not str:
                raise _Undecided
            return value

        return text
    if name == "Int":

        def integer(value: Any) -> Any:
            if type(value) is not int or not _INT_MIN <= value <= _INT_MAX:
                raise _Undecided
            return value

        return integer
    if name == "Boolean":

        def boolean(value: Any) -> Any:
            if type(value) is not bool:
                raise _Undecided
            return value

        return boolean
    raise _Undecided


def _strict_enum(enum: GraphQLEnumType) -> Convert:
    values = {name: value.value for name, value in enum.values.items()}

    def member(value: Any) -> Any:
        if type(value) is not str or value not in values:
            raise _Undecided
        return values[value]

    return member


class _InputObject:
    """An input object as strawberry builds it (schema/input_builders.py): given fields converted, missing ones
    left to the class's defaults, or None for fields without one."""

    def __init__(self, graphql_type: GraphQLInputObjectType, schema: Any) -> None:
        definition = schema.get_type_by_name(graphql_type.name)
        if not isinstance(definition, StrawberryObjectDefinition) or not definition.is_input:
            raise _Undecided
        self.cls = definition.origin
        by_name = {schema.config.name_converter.from_field(f): f for f in definition.fields}
        if set(by_name) != set(graphql_type.fields):
            raise _Undecided
        self.fields: dict[str, tuple[str, Convert]] = {}
        self.required: list[str] = []
        self.nulls: dict[str, None] = {}
        for name, field in graphql_type.fields.items():
            python = by_name[name]
            self.fields[name] = (python.python_name, _convert(field.type, schema))
            has_default = python.default_value is not MISSING or python.default_factory is not MISSING
            if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined:
                self.required.append(name)
            elif not has_default:
                self.nulls[python.python_name] = None
            if (field.default_value is not Undefined) != has_default:
                raise _Undecided  # a GraphQL default the class does not hold: leave it to strawberry

    def __call__(self, value: Any) -> Any:
        if type(value) is not dict:
            raise _Undecided
        fields = self.fields
        kwargs: dict[str, Any] = dict(self.nulls)
        for name, given in value.items():
            entry = fields.get(name)
            if entry is None:
                raise _Undecided
            kwargs[entry[0]] = entry[1](given)
        for name in self.required:
            if name not in value:
                raise _Undecided
        return self.cls(**kwargs)


def _convert(graphql_type: GraphQLInputType, schema: Any) -> Convert:
    if isinstance(graphql_type, GraphQLNonNull):
        inner = _convert(graphql_type.of_type, schema)

        def non_null(value: Any) -> Any:
            if value is None:
                raise _Undecided
            return inner(value)

        return non_null
    if isinstance(graphql_type, GraphQLList):
        item = _convert(graphql_type.of_type, schema)

        def listed(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is not list:
                raise _Undecided  # graphql-core would wrap a single value in a list
            return [item(v) for v in value]

        return listed
    if isinstance(graphql_type, GraphQLInputObjectType):
        build = _InputObject(graphql_type, schema)
    elif isinstance(graphql_type, GraphQLEnumType):
        build = _strict_enum(graphql_type)
    elif isinstance(graphql_type, GraphQLScalarType):
        build = _strict_scalar(graphql_type)
    else:
        raise _Undecided

    def nullable(value: Any) -> Any:
        return None if value is None else build(value)

    return nullable


# --- the payload: what graphql-core completes for a payload object of attribute fields ---------------------------

Render = Callable[[Any], Any]


def _object_fields(
    graphql_type: GraphQLObjectType, selection_set: SelectionSetNode | None, schema: Any
) -> Render:
    definition = schema.get_type_by_name(graphql_type.name)
    if not isinstance(definition, StrawberryObjectDefinition) or selection_set is None:
        raise _Undecided
    by_name = {schema.config.name_converter.get_graphql_name(f): f for f in definition.fields}
    parts: list[tuple[str, Render]] = []
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives or selection.arguments:
            raise _Undecided
        key = selection.alias.value if selection.alias else selection.name.value
        if any(key == seen for seen, _ in parts):
            raise _Undecided  # fields merged under one key: graphql-core's business
        name = selection.name.value
        if name == "__typename":
            type_name = graphql_type.name
            parts.append((key, lambda _obj, type_name=type_name: type_name))
            continue
        field = by_name.get(name)
        if field is None or field.base_resolver is not None or field.permission_classes or field.extensions:
            raise _Undecided
        attribute = field.python_name
        value = _output(graphql_type.fields[name].type, selection.selection_set, schema)
        parts.append((key, lambda obj, a=attribute, v=value: v(getattr(obj, a))))

    def render(obj: Any) -> dict[str, Any]:
        return {key: part(obj) for key, part in parts}

    return render


def _unrenderable(value: Any) -> Any:
    raise _Undecided


def _output(graphql_type: GraphQLOutputType, selection_set: SelectionSetNode | None, schema: Any) -> Render:
    nullable = not isinstance(graphql_type, GraphQLNonNull)
    named = graphql_type if nullable else graphql_type.of_type  # type: ignore[union-attr]
    if isinstance(named, GraphQLList):
        item = _output(named.of_type, selection_set, schema)

        def complete(value: Any) -> Any:
            return [item(v) for v in value]

    elif isinstance(named, GraphQLScalarType | GraphQLEnumType):
        if selection_set is not None:
            raise _Undecided
        serialize = named.serialize

        def complete(value: Any) -> Any:
            out = serialize(value)
            if out is None or out is Undefined:
                raise _Undecided
            return out

    elif isinstance(named, GraphQLObjectType):
        try:
            complete = _object_fields(named, selection_set, schema)
        except _Undecided:
            # Fields with resolvers (an order, pay parameters): only their null is rendered here.
            complete = _unrenderable
    else:
        raise _Undecided

    def render(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise _Undecided
        return complete(value)

    return render


# --- the plan of one document ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    key: str  # the placeOrder field's response key
    input_variable: str
    key_variable: str | None
    key_literal: str | None
    variables: frozenset[str]
    payload: Render


def _variable_type(node: Any) -> str | None:
    if isinstance(node, NonNullTypeNode):
        node = node.type
    return node.name.value if isinstance(node, NamedTypeNode) else None


def _compile(schema: Any, settings: Settings, query: str, operation_name: str | None) -> _Plan | None:
    graphql_schema: GraphQLSchema = schema._schema
    document = admitted_document(graphql_schema, query, settings, _STRICT_RULES)
    if document is None:
        return None
    operation = find_operation(document, operation_name)
    if operation is None or operation.operation is not OperationType.MUTATION or operation.directives:
        return None
    selections = operation.selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return None
    field = selections[0]
    if field.name.value != ROOT_FIELD or field.directives:
        return None
    arguments = {a.name.value: a.value for a in field.arguments or ()}
    if set(arguments) != {"input", "idempotencyKey"} or not isinstance(arguments["input"], VariableNode):
        return None
    key_node = arguments["idempotencyKey"]
    if not isinstance(key_node, VariableNode | StringValueNode):
        return None
    types = {}
    for definition in operation.variable_definitions or ():
        if definition.default_value is not None or definition.directives:
            return None
        types[definition.variable.name.value] = _variable_type(definition.type)
    input_variable = arguments["input"].name.value
    key_variable = key_node.name.value if isinstance(key_node, VariableNode) else None
    used = {input_variable} | ({key_variable} if key_variable else set())
    if set(types) != used or types[input_variable] != "CheckoutInput":
        return None  # an unused variable is coerced too (and may be refused): not here
    if key_variable is not None and types[key_variable] != "String":
        return None
    mutation = graphql_schema.mutation_type
    assert mutation is not None
    root = mutation.fields[ROOT_FIELD]
    definition = schema.get_type_by_name(mutation.name)
    strawberry_field = next(
        f for f in definition.fields if schema.config.name_converter.get_graphql_name(f) == ROOT_FIELD
    )
    if strawberry_field.permission_classes or strawberry_field.extensions:
        return None
    try:
        payload = _output(root.type, field.selection_set, schema)
    except _Undecided:
        return None
    return _Plan(
        key=field.alias.value if field.alias else ROOT_FIELD,
        input_variable=input_variable,
        key_variable=key_variable,
        key_literal=key_node.value if isinstance(key_node, StringValueNode) else None,
        variables=frozenset(used),
        payload=payload,
    )


def _turned_away(member_id: int, refs: list[tuple[campaigns.CampaignRef, int]]) -> DomainError:
    """`campaigns.turn_away`'s refusal as far as the campaigns decide it without waiting; _Undecided otherwise."""
    for ref, quantity in refs:
        try:
            handler = campaigns.handler_for(ref)
        except DomainError:
            continue  # turn_away skips a kind nobody handles
        if getattr(handler, "turn_away", None) is None:
            continue
        from_memory = getattr(handler, "turn_away_from_memory", None)
        if from_memory is None:
            raise _Undecided
        try:
            if not from_memory(member_id, ref, quantity):
                raise _Undecided
        except DomainError as refusal:
            return refusal
    raise _Undecided


class SoldOutLane:
    def __init__(self, schema: Any, settings: Settings) -> None:
        self.schema = schema
        self.settings = settings
        self._plans: dict[tuple[str, str | None], _Plan | None] = {}
        try:
            self._input: Convert | None = _convert(schema._schema.get_type("CheckoutInput"), schema)
        except _Undecided:  # an input type this lane cannot build: everything goes the full path
            self._input = None
        self.enabled = self._input is not None and settings.max_json_depth >= _DEEPEST_BODY

    def _plan(self, query: str, operation_name: str | None) -> _Plan | None:
        key = (query, operation_name)
        if key in self._plans:
            return self._plans[key]
        if len(self._plans) >= MEMO_SIZE:
            self._plans.clear()
        plan = self._plans[key] = _compile(self.schema, self.settings, query, operation_name)
        return plan

    def _refusal(self, body: bytes, viewer: Viewer) -> tuple[_Plan, DomainError, int]:
        member, build = viewer.member, self._input
        if member is None or build is None or not self.enabled:
            raise _Undecided
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _Undecided from None
        if type(data) is not dict or not data.keys() <= _TOP_KEYS or data.get("extensions") is not None:
            raise _Undecided
        query, variables, operation_name = data.get("query"), data.get("variables"), data.get("operationName")
        if (
            type(query) is not str
            or type(variables) is not dict
            or type(operation_name) not in (str, type(None))
        ):
            raise _Undecided
        plan = self._plan(query, operation_name)
        if plan is None or variables.keys() != plan.variables:
            raise _Undecided
        given = variables[plan.input_variable]
        if given is None:
            raise _Undecided
        input: CheckoutInput = build(given)
        idempotency_key = plan.key_literal if plan.key_variable is None else variables[plan.key_variable]
        if type(idempotency_key) is not str or not 1 <= len(idempotency_key) <= KEY_MAX:
            raise _Undecided
        try:
            request = checkout_request(input)
        except DomainError:
            raise _Undecided from None
        if request.from_cart:
            raise _Undecided  # turn_away is not asked for the cart's lines
        refusal = _turned_away(member.id, [(i.campaign, i.quantity) for i in request.items if i.campaign])
        settings = self.settings
        cost = query_cost(
            self.schema._schema,
            query,
            settings.max_query_tokens,
            operation_name,
            variables,
            settings.max_page_size,
        )
        if cost > settings.max_query_cost:
            raise _Undecided
        return plan, refusal, cost

    async def answer(self, body: bytes, viewer: Viewer) -> Answer | Handover | None:
        """The answer to a placeOrder the campaigns refuse from memory, or None: the full path answers."""
        if b'"query"' not in body or ROOT_FIELD.encode() not in body:
            return None
        try:
            plan, refusal, cost = self._refusal(body, viewer)
            payload = plan.payload(PlaceOrderPayload(errors=user_errors(refusal)))
        except _Undecided:
            return None
        except Exception as error:  # a lane's slip must never cost an answer: the full path words it
            log.warning("sold-out lane left a request to the full path: %s: %s", type(error).__name__, error)
            return None
        bucket = await spend(caller(viewer, None), cost, self.settings)
        if bucket is not None and not bucket.allowed:
            return Handover(bucket)
        extensions = {"cost": cost_extension(cost, bucket)}
        return Answer(orjson.dumps({"data": {plan.key: payload}, "extensions": extensions}))
