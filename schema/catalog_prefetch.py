"""What a product list will read, loaded before its fields resolve.

A listing of 20 used to resolve price, media, brand and tags of each product as async fields: four coroutines
per product, a task each for graphql-core to gather, a fifth of the page's time spent in the event loop. The
root resolvers (`products`, `product`) now look at the selection, start exactly the loads its fields would
have started (same loaders, same batches: same SQL statements) and await them together; the fields then find
their data in the loaders (`HeldLoader.ready`) and resolve synchronously. A field reached some other way (a
product under an order line, `node(id:)`) still loads its data itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionNode,
    SelectionSetNode,
    VariableNode,
)

from loaders.catalog import NOT_READY, CatalogLoaders, HeldLoader

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")


def _included(node: SelectionNode, info: GraphQLResolveInfo) -> bool:
    """@skip(if:) and @include(if:), whose argument is a Boolean literal or variable (validation saw to it)."""
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        value = next((a.value for a in directive.arguments if a.name.value == "if"), None)
        if isinstance(value, VariableNode):
            flag = bool(info.variable_values.get(value.name.value))
        else:
            flag = bool(isinstance(value, BooleanValueNode) and value.value)
        if flag is (name == "skip"):
            return False
    return True


def subfields(nodes: Iterable[FieldNode], info: GraphQLResolveInfo) -> dict[str, list[FieldNode]]:
    """The fields selected under `nodes`, by field name (aliases merged), through fragments and minding
    @skip/@include, as graphql-core will execute them."""
    found: dict[str, list[FieldNode]] = {}
    seen_fragments: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if not _included(selection, info):
                continue
            if isinstance(selection, FieldNode):
                found.setdefault(selection.name.value, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = info.fragments.get(name)
                if fragment is not None and name not in seen_fragments:
                    seen_fragments.add(name)
                    walk(fragment.selection_set)

    for node in nodes:
        walk(node.selection_set)
    return found


async def prefetch_products(
    loaders: CatalogLoaders, products: Sequence[Any], nodes: list[FieldNode], info: GraphQLResolveInfo
) -> None:
    """Load what the selection `nodes` (of Product) reads of `products`, in the batches its fields would."""
    if not products or not nodes:
        return
    fields = subfields(nodes, info)
    ids = [p.id for p in products]
    loads: list[Awaitable[Any]] = []
    if "price" in fields or "skus" in fields:
        loads.append(loaders.skus_by_product.load_many(ids))
    if "media" in fields:
        loads.append(loaders.media_by_product.load_many(ids))
    if "tags" in fields:
        loads.append(loaders.tags_by_product.load_many(ids))
    if "specs" in fields:
        loads.append(loaders.spec_dimensions_by_product.load_many(ids))
    if "brand" in fields:
        brand_ids = list(dict.fromkeys(p.brand_id for p in products if p.brand_id is not None))
        if brand_ids:
            loads.append(loaders.brand.load_many(brand_ids))
    if "category" in fields:
        loads.append(loaders.category.load_many(list(dict.fromkeys(p.category_id for p in products))))
    if not loads:
        return
    await asyncio.gather(*loads)
    if "skus" in fields and "specValues" in subfields(fields["skus"], info):
        sku_ids = [sku.id for p in products for sku in loaders.skus_by_product.ready(p.id) or ()]  # type: ignore[union-attr]
        if sku_ids:
            await loaders.spec_values_by_sku.load_many(sku_ids)


def now_or_later(loader: HeldLoader[K, V], key: K, build: Callable[[V], R]) -> R:
    """`build(value)` at once when `loader` holds `key`'s value (prefetched); otherwise an awaitable of it,
    which graphql-core awaits as it would an async resolver's result."""
    value = loader.ready(key)
    if value is NOT_READY:
        return _later(loader, key, build)  # type: ignore[return-value]
    return build(value)  # type: ignore[arg-type]


async def _later(loader: HeldLoader[K, V], key: K, build: Callable[[V], R]) -> R:
    return build(await loader.load(key))
