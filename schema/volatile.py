"""Fields whose numbers change with every sale, and how a cached answer keeps holes where they are.

A field is made volatile by `volatile_field("Sku", "stock")` on a function that tells, for the object being
resolved, the key of its number in the volatile table (infra/volatile.py), how to show it and its value now.
`install` sets a plain graphql-core resolver on each such field (no strawberry wrapper, no async: a listing
resolves hundreds of them), which returns the value and, when the answer may be cached, notes where in the
answer it went. `template` then turns the answer into bytes with a hole at each of those places.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from graphql import GraphQLObjectType, GraphQLResolveInfo
from graphql.pyutils import Path

from infra.volatile import Hole, present

# For one resolved object: (key, form, argument, value now); see infra/volatile.py.
Describe = Callable[[Any], tuple[str, str, int, int]]
# Where a volatile number went in one answer: its path, the hole, the value the database gave.
Noted = tuple[Path, Hole, int]

_fields: dict[tuple[str, str], Describe] = {}

# Marks a hole in the serialised answer: orjson escapes control characters inside strings, so a raw NUL byte
# can only come from a fragment put there on purpose.
HOLE = b"\x00"


def volatile_field(type_name: str, field_name: str) -> Callable[[Describe], Describe]:
    """Declare the GraphQL field `type_name.field_name` volatile, described by the decorated function."""

    def register(describe: Describe) -> Describe:
        _fields[(type_name, field_name)] = describe
        return describe

    return register


def _resolver(describe: Describe) -> Callable[..., Any]:
    def resolve(source: Any, info: GraphQLResolveInfo) -> Any:
        key, form, argument, value = describe(source)
        noted: list[Noted] | None = getattr(info.context, "volatile", None)
        if noted is not None:
            noted.append((info.path, (key, form, argument), value))
        return present(form, argument, value)

    return resolve


def install(graphql_schema: Any) -> None:
    """Put the volatile resolvers on the built schema (strawberry's `_schema`, a graphql-core schema)."""
    for (type_name, field_name), describe in _fields.items():
        owner = graphql_schema.type_map.get(type_name)
        if not isinstance(owner, GraphQLObjectType) or field_name not in owner.fields:
            raise LookupError(f"volatile field {type_name}.{field_name} is not in the schema")
        owner.fields[field_name].resolve = _resolver(describe)


def template(response: dict[str, Any], noted: list[Noted]) -> tuple[bytes, tuple[Hole, ...]] | None:
    """`response` serialised with a hole (a NUL byte) for every noted number, and the holes in byte order;
    None if a noted place cannot be found in it (the answer is then not worth caching)."""
    data = response.get("data")
    if not noted:
        return orjson.dumps(response), ()
    placed: list[tuple[Any, Any, Any]] = []  # (container, key, original value), to put back afterwards
    try:
        for index, (path, _, _) in enumerate(noted):
            container: Any = data
            steps = path.as_list()
            for step in steps[:-1]:
                container = container[step]
            last = steps[-1]
            placed.append((container, last, container[last]))
            container[last] = orjson.Fragment(HOLE + str(index).encode() + HOLE)
        body = orjson.dumps(response)
    except (KeyError, IndexError, TypeError):
        return None
    finally:
        for container, last, original in reversed(placed):
            container[last] = original
    parts = body.split(HOLE)
    if len(parts) != 2 * len(noted) + 1:
        return None
    holes = tuple(noted[int(parts[i])][1] for i in range(1, len(parts), 2))
    return HOLE.join(parts[0::2]), holes
