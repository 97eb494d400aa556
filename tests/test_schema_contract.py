"""The schema as code generators and partners build against it: committed as `schema.graphql`, every mutation
answering a `...Payload` with `errors`, connections non-null throughout, custom scalars pointing at their
specifications."""

from __future__ import annotations

import difflib

from graphql import (
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
    is_specified_scalar_type,
)

from infra.settings import PROJECT_ROOT
from schema.root import schema

SCHEMA_FILE = PROJECT_ROOT / "schema.graphql"
REGENERATE = "python main.py export-schema -o schema.graphql"


def _objects() -> list[GraphQLObjectType]:
    return [
        t
        for name, t in schema._schema.type_map.items()
        if isinstance(t, GraphQLObjectType) and not name.startswith("__")
    ]


def _is_non_null_list_of_non_null(field: GraphQLField) -> bool:
    outer = field.type
    return (
        isinstance(outer, GraphQLNonNull)
        and isinstance(outer.of_type, GraphQLList)
        and isinstance(outer.of_type.of_type, GraphQLNonNull)
    )


def test_the_committed_schema_is_the_served_one() -> None:
    served = schema.as_str() + "\n"  # exactly what `export-schema` writes
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    if committed != served:
        diff = list(
            difflib.unified_diff(
                committed.splitlines(), served.splitlines(), "schema.graphql", "served", lineterm="", n=1
            )
        )
        shown = "\n".join(diff[:80]) + ("\n..." if len(diff) > 80 else "")
        raise AssertionError(
            f"schema.graphql differs from the schema the server serves. Regenerate it with\n\n    {REGENERATE}\n\n"
            f"and commit it (partners and code generators read it).\n{shown}"
        )


def test_every_mutation_answers_a_payload_with_errors() -> None:
    mutation = schema._schema.mutation_type
    assert mutation is not None
    for name, field in mutation.fields.items():
        assert isinstance(field.type, GraphQLNonNull), f"{name} must be non-null"
        payload = field.type.of_type
        assert isinstance(payload, GraphQLObjectType) and payload.name.endswith("Payload"), (
            f"{name} returns {payload}, not a ...Payload"
        )
        errors = payload.fields.get("errors")
        assert errors is not None and _is_non_null_list_of_non_null(errors), f"{payload.name}.errors"
        assert get_named_type(errors.type).name == "UserError", f"{payload.name}.errors"


def test_connections_are_non_null_throughout() -> None:
    connections = [t for t in _objects() if t.name.endswith("Connection")]
    assert len(connections) >= 5
    for connection in connections:
        edges, page_info = connection.fields["edges"], connection.fields["pageInfo"]
        assert _is_non_null_list_of_non_null(edges), f"{connection.name}.edges"
        assert isinstance(page_info.type, GraphQLNonNull), f"{connection.name}.pageInfo"
        edge = get_named_type(edges.type)
        assert isinstance(edge, GraphQLObjectType)
        for name in ("node", "cursor"):
            assert isinstance(edge.fields[name].type, GraphQLNonNull), f"{edge.name}.{name}"
    for owner in _objects():
        for name, field in owner.fields.items():
            if get_named_type(field.type).name.endswith("Connection"):
                assert isinstance(field.type, GraphQLNonNull), f"{owner.name}.{name} must be non-null"


def test_custom_scalars_name_their_specification() -> None:
    custom = [
        t
        for t in schema._schema.type_map.values()
        if isinstance(t, GraphQLScalarType) and not is_specified_scalar_type(t)
    ]
    assert {t.name for t in custom} >= {"DateTime", "Date", "JSON"}
    for scalar in custom:
        assert (scalar.specified_by_url or "").startswith("https://"), f"{scalar.name} has no @specifiedBy"
