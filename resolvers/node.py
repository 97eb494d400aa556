"""`node(id:)` and `nodes(ids:)`: any object with a global ID, for whoever may see it.

Each domain registers how its types are fetched (`@node_type("Order")` beside its other resolvers): an async
function of the request's context and the primary key. It loads through the request's dataloaders, so many IDs
of one type cost one query however they are asked for (`nodes(ids:)`, or many aliased `node` fields), and it
applies the same access rule as the type's own fields: a viewer who may not see the object gets None, exactly
as for one that does not exist. This module knows no domain; a new domain adds its types without editing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import strawberry
from strawberry.types import Info

from schema.context import Context
from schema.node import Node, decode_any
from services.errors import DomainError, ErrorCode

NodeResolver = Callable[[Context, int], Awaitable[Node | None]]

_resolvers: dict[str, NodeResolver] = {}


def node_type(type_name: str) -> Callable[[NodeResolver], NodeResolver]:
    """Register the decorated function as how `node(id:)` fetches objects of GraphQL type `type_name`."""

    def register(resolver: NodeResolver) -> NodeResolver:
        known = _resolvers.get(type_name)
        if known is not None and known is not resolver:
            raise RuntimeError(f"{type_name} already has a node resolver ({known.__qualname__})")
        _resolvers[type_name] = resolver
        return resolver

    return register


def node_types() -> frozenset[str]:
    """The GraphQL types `node(id:)` can fetch."""
    return frozenset(_resolvers)


def _resolver_for(global_id: str, field: str) -> tuple[NodeResolver, int]:
    type_name, pk = decode_any(global_id, field)
    resolver = _resolvers.get(type_name)
    if resolver is None:
        raise DomainError(ErrorCode.INVALID_ID, f"No object type is called {type_name[:64]}", field)
    return resolver, pk


async def node(info: Info[Context, None], id: strawberry.ID) -> Node | None:
    resolver, pk = _resolver_for(id, "id")
    return await resolver(info.context, pk)


async def nodes(info: Info[Context, None], ids: list[strawberry.ID]) -> list[Node | None]:
    """The objects in the order asked, null where there is none or the viewer may not see it."""
    cap = info.context.settings.max_page_size
    if len(ids) > cap:
        raise DomainError(ErrorCode.PAGE_SIZE_EXCEEDED, f"At most {cap} IDs at once", "ids")
    wanted = [_resolver_for(global_id, f"ids[{i}]") for i, global_id in enumerate(ids)]
    # Started together, each type's loads land in one batch of its loader.
    return list(await asyncio.gather(*(resolver(info.context, pk) for resolver, pk in wanted)))


@strawberry.type
class NodeQuery:
    node: Node | None = strawberry.field(resolver=node, description="Any object by its global ID.")
    nodes: list[Node | None] = strawberry.field(
        resolver=nodes,
        description="Objects by their global IDs, in the order given (at most MAX_PAGE_SIZE, 100 by default); "
        "null where there is none or the viewer may not see it.",
    )
