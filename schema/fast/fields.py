"""What the fast executor knows of the catalog types: how each field reads its object, and what it loads.

An object here is what the loaders hold (loaders/catalog.py rows) or a small tuple, never a strawberry
instance; each entry reads exactly what the strawberry type's field returns for the same row (the
differential test, tests/test_fast_catalog.py, holds them to it). Fields left out (promotions, active
prices, reviews, a SKU's product) make an operation fall back to strawberry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

from loaders.catalog import NOT_READY, HeldLoader, ProductRow
from resolvers.catalog import (
    ProductListing,
    category_row,
    product_listing,
    product_row,
    root_category_rows,
)
from schema.catalog import low_stock_hole, sku_stock_hole, total_stock_hole
from schema.connection import offset_cursor
from schema.context import Context
from schema.node import encode_id
from services.catalog.prices import price_range, unit_price


class Fallback(Exception):
    """The fast executor cannot answer this exactly: strawberry executes the request instead."""


@dataclass(frozen=True, slots=True)
class Leaf:
    """A scalar (or list of scalars) read from the object; the plan serialises it as its GraphQL type does."""

    read: Callable[[Any, Context], Any]
    # The same read as an attribute or item of the object, when it is one (the plan then inlines it).
    attribute: str | None = None
    item: int | str | None = None


@dataclass(frozen=True, slots=True)
class Hole:
    """A volatile number (schema/volatile.py): its (key, form, argument, value) for the object."""

    describe: Callable[[Any], tuple[str, str, int, int]]


@dataclass(frozen=True, slots=True)
class Link:
    """A field whose value may need a load, then `get(object, context, prepared, index)` reads it (an object,
    a list of them, None, or a scalar). `loads` names a catalog loader and the keys a level's objects need
    from it: the executor fetches every field's keys of one loader in one batch per level. `prepare` is any
    other load, started for the level's objects at once; its result is `prepared`. Neither: nothing to load."""

    get: Callable[[Any, Context, Any, int], Any]
    loads: tuple[str, Callable[[list[Any]], Iterable[Any]]] | None = None
    prepare: Callable[[Context, list[Any]], Awaitable[Any]] | None = None
    # (a field of the child objects, other loads): when the selection reads that field, load this way instead.
    loads_with: tuple[str, tuple[str, Callable[[list[Any]], Iterable[Any]]]] | None = None

    @property
    def deferred(self) -> bool:
        return self.loads is not None or self.prepare is not None


@dataclass(frozen=True, slots=True)
class Root:
    """A root field: its resolution from the strawberry-converted arguments."""

    resolve: Callable[..., Awaitable[Any]]


Field = Leaf | Hole | Link


async def everything(awaitables: list[Awaitable[Any]]) -> list[Any]:
    """All their results; on a failure, the first error once all have finished (none is left running on the
    request's loaders while strawberry answers it again)."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def held(loader: HeldLoader[Any, Any], key: Any) -> Any:
    value = loader.ready(key)
    if value is NOT_READY:
        raise Fallback(f"{type(loader).__name__} holds nothing for {key!r}")
    return value


def _attribute(name: str) -> Leaf:
    read = attrgetter(name)
    return Leaf(lambda obj, _: read(obj), attribute=name)


def _item(index: int | str) -> Leaf:
    read = itemgetter(index)
    return Leaf(lambda obj, _: read(obj), item=index)


# Global IDs per type and primary key, remembered (a listing encodes ~100 of them; a pk's ID never changes).
NODE_IDS_KEPT = 100_000


def _node_id(type_name: str) -> Leaf:
    known: dict[int, str] = {}

    def read(obj: Any, _: Context) -> str:
        pk = obj.id
        found = known.get(pk)
        if found is None:
            if len(known) >= NODE_IDS_KEPT:
                known.clear()
            found = known[pk] = encode_id(type_name, pk)
        return found

    return Leaf(read)


def _unique(values: Any) -> list[Any]:
    return list(dict.fromkeys(v for v in values if v is not None))


# --- Product ---------------------------------------------------------------------------------------------


def _prepared(_: Any, __: Context, values: Any, index: int) -> Any:
    return values[index]


# Limited-time prices: the promotion engine's offers (schema/promotions.py `offers`), called per product and
# per SKU exactly as the strawberry fields call it, so tags, expiry and prices per viewer are the same.


async def _active_ranges(context: Context, products: list[ProductRow]) -> list[tuple[int, int]]:
    from schema.promotions import offers

    loader = context.loaders.skus_by_product
    await loader.fetch_many([p.id for p in products])
    found = await everything([offers(context, p, held(loader, p.id)) for p in products])
    ranges = []
    for product_offers in found:
        prices = [o.active_price for o in product_offers]
        ranges.append((min(prices, default=0), max(prices, default=0)))
    return ranges


async def _badges(context: Context, products: list[ProductRow]) -> list[list[Any]]:
    """Each product's badges: the strawberry Promotion objects its field returns (read like any object)."""
    from schema.promotions import badges, offers

    loader = context.loaders.skus_by_product
    await loader.fetch_many([p.id for p in products])

    async def of(product: ProductRow) -> list[Any]:
        return await badges(context, await offers(context, product, held(loader, product.id)))

    return await everything([of(p) for p in products])


async def _active_prices(context: Context, skus: list[Any]) -> list[int]:
    from schema.promotions import offers

    loader = context.loaders.product
    await loader.fetch_many(_unique(s.product_id for s in skus))

    async def active(sku: Any) -> int:
        product = held(loader, sku.product_id)
        if product is None:
            return unit_price(sku, context.viewer.price)
        return (await offers(context, product, [sku]))[0].active_price

    return await everything([active(sku) for sku in skus])


def _price(product: ProductRow, context: Context, _: Any, __: int) -> tuple[int, int]:
    return price_range(held(context.loaders.skus_by_product, product.id), context.viewer.price)


def _brand(product: ProductRow, context: Context, _: Any, __: int) -> Any:
    return None if product.brand_id is None else held(context.loaders.brand, product.brand_id)


def _ids(objects: list[Any]) -> Iterable[int]:
    return [o.id for o in objects]


def _by_product(name: str, with_spec_values: bool = False) -> Link:
    def get(product: Any, context: Context, _: Any, __: int) -> Any:
        return held(getattr(context.loaders, name), product.id)

    if with_spec_values:
        return Link(get, (name, _ids), loads_with=("specValues", ("skus_with_spec_values", _ids)))
    return Link(get, (name, _ids))


# Fetched before the others of a level: a combined fetch must start before the plain one of the same keys.
FETCH_FIRST = ("skus_with_spec_values",)


PRODUCT: dict[str, Field] = {
    "id": _node_id("Product"),
    "title": _attribute("title"),
    "subtitle": _attribute("subtitle"),
    "description": _attribute("description"),
    "status": _attribute("status"),
    "salesCount": _attribute("sales_count"),
    "stockWarning": _attribute("stock_warning"),
    "totalStock": Hole(total_stock_hole),
    "lowStock": Hole(low_stock_hole),
    "createdAt": _attribute("created_at"),
    "publishedAt": _attribute("published_at"),
    "price": Link(_price, ("skus_by_product", _ids)),
    "activePrice": Link(_prepared, prepare=lambda context, products: _active_ranges(context, products)),
    "promotions": Link(_prepared, prepare=lambda context, products: _badges(context, products)),
    # With their spec values in the same statement when those are selected too (loaders.SkusWithSpecValues).
    "skus": _by_product("skus_by_product", with_spec_values=True),
    "specs": _by_product("spec_dimensions_by_product"),
    "category": Link(
        lambda p, context, _, __: held(context.loaders.category, p.category_id),
        ("category", lambda products: [p.category_id for p in products]),
    ),
    "brand": Link(_brand, ("brand", lambda products: _unique(p.brand_id for p in products))),
    "tags": _by_product("tags_by_product"),
    "media": _by_product("media_by_product"),
}

# --- Sku and what hangs off it -----------------------------------------------------------------------------

SKU: dict[str, Field] = {
    "id": _node_id("Sku"),
    "originalPrice": _attribute("original_price"),
    "memberPrice": _attribute("member_price"),
    "stock": Hole(sku_stock_hole),
    "barcode": _attribute("barcode"),
    "weightGrams": _attribute("weight_grams"),
    "price": Leaf(lambda sku, context: unit_price(sku, context.viewer.price)),
    "listPrice": _attribute("price"),
    "activePrice": Link(_prepared, prepare=lambda context, skus: _active_prices(context, skus)),
    "tierPrices": Link(lambda sku, _, __, ___: sku.tier_prices),
    "specValues": Link(
        lambda sku, context, _, __: held(context.loaders.spec_values_by_sku, sku.id),
        ("spec_values_by_sku", _ids),
    ),
}

TIER_PRICE: dict[str, Field] = {"minQuantity": _item("min_quantity"), "price": _item("price")}
SPEC_VALUE: dict[str, Field] = {"name": _item(0), "value": _item(1)}
SPEC_DIMENSION: dict[str, Field] = {"name": _item(0), "values": _item(1)}
PRICE_RANGE: dict[str, Field] = {"min": _item(0), "max": _item(1)}

# --- Category, brand, tag, media -----------------------------------------------------------------------------


def _path_ids(category: Any) -> list[int]:
    return [int(i) for i in category.path.split("/") if i]


def _breadcrumbs(category: Any, context: Context, _: Any, __: int) -> list[Any]:
    loader = context.loaders.category
    ancestors = [held(loader, i) for i in _path_ids(category)]
    return [c for c in ancestors if c is not None] + [category]


def _children(category: Any, context: Context, everything: Any, __: int) -> list[Any]:
    return [c for c in everything if c.parent_id == category.id]


CATEGORY: dict[str, Field] = {
    "id": _node_id("Category"),
    "name": _attribute("name"),
    "level": _attribute("level"),
    "iconUrl": _attribute("icon_url"),
    "sort": _attribute("sort"),
    "parent": Link(
        lambda c, context, _, __: (
            None if c.parent_id is None else held(context.loaders.category, c.parent_id)
        ),
        ("category", lambda categories: _unique(c.parent_id for c in categories)),
    ),
    "children": Link(_children, prepare=lambda context, _: context.loaders.category.all()),
    "breadcrumbs": Link(
        _breadcrumbs, ("category", lambda categories: [i for c in categories for i in _path_ids(c)])
    ),
}
BRAND: dict[str, Field] = {
    "id": _node_id("Brand"),
    "name": _attribute("name"),
    "logoUrl": _attribute("logo_url"),
}
TAG: dict[str, Field] = {"id": _node_id("Tag"), "name": _attribute("name")}
MEDIA: dict[str, Field] = {
    "id": _node_id("Media"),
    "kind": _attribute("kind"),
    "url": _attribute("url"),
    "sort": _attribute("sort"),
}

# --- Promotions (the badges: strawberry objects, whose plain fields are read as graphql-core reads them) ---

PROMOTION: dict[str, Field] = {
    "id": _attribute("id"),
    "title": _attribute("title"),
    "description": _attribute("description"),
    "kind": _attribute("kind"),
    "status": _attribute("status"),
    "startsAt": _attribute("starts_at"),
    "endsAt": _attribute("ends_at"),
    "conditions": Link(lambda promotion, _, __, ___: promotion.conditions),
    "actions": Link(lambda promotion, _, __, ___: promotion.actions),
    "combinesWithPromotions": _attribute("combines_with_promotions"),
    "combinesWithCoupons": _attribute("combines_with_coupons"),
    "appliesToCampaignLines": _attribute("applies_to_campaign_lines"),
    "priority": _attribute("priority"),
    "createdAt": _attribute("created_at"),
    "updatedAt": _attribute("updated_at"),
}
PROMOTION_RULE: dict[str, Field] = {"type": _attribute("type"), "args": _attribute("args")}

# --- The listing connection ---------------------------------------------------------------------------------


def _edges(listing: ProductListing, _: Context, __: Any, ___: int) -> list[tuple[str, ProductRow]]:
    return [(offset_cursor(listing.offset + i), row) for i, row in enumerate(listing.rows)]


def _counts(context: Context, listings: list[ProductListing]) -> Awaitable[Any]:
    return asyncio.gather(*(listing.page.total_count() for listing in listings))


PRODUCT_CONNECTION: dict[str, Field] = {
    "edges": Link(_edges),
    "pageInfo": Link(lambda listing, _, __, ___: listing),
    "totalCount": Link(lambda _, __, counts, index: counts[index], prepare=_counts),
}
PRODUCT_EDGE: dict[str, Field] = {"cursor": _item(0), "node": Link(lambda edge, _, __, ___: edge[1])}


def _start_cursor(listing: ProductListing, _: Context) -> str | None:
    return offset_cursor(listing.offset) if listing.rows else None


def _end_cursor(listing: ProductListing, _: Context) -> str | None:
    return offset_cursor(listing.offset + len(listing.rows) - 1) if listing.rows else None


PAGE_INFO: dict[str, Field] = {
    "hasNextPage": Leaf(lambda listing, _: listing.page.has_next),
    "hasPreviousPage": Leaf(lambda listing, _: listing.offset > 0),
    "startCursor": Leaf(_start_cursor),
    "endCursor": Leaf(_end_cursor),
}

# --- Root fields -----------------------------------------------------------------------------------------------

QUERY: dict[str, Root] = {
    "product": Root(product_row),
    "products": Root(product_listing),
    "category": Root(category_row),
    "categories": Root(root_category_rows),
}

TYPES: dict[str, dict[str, Field]] = {
    "Product": PRODUCT,
    "Sku": SKU,
    "TierPrice": TIER_PRICE,
    "SpecValue": SPEC_VALUE,
    "SpecDimension": SPEC_DIMENSION,
    "PriceRange": PRICE_RANGE,
    "Category": CATEGORY,
    "Brand": BRAND,
    "Tag": TAG,
    "Media": MEDIA,
    "ProductConnection": PRODUCT_CONNECTION,
    "ProductEdge": PRODUCT_EDGE,
    "PageInfo": PAGE_INFO,
    "Promotion": PROMOTION,
    "PromotionRule": PROMOTION_RULE,
}
