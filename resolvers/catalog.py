"""Catalog root fields. Thin: decode arguments, call services, wrap models in schema types."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

import strawberry
from strawberry.types import Info

from infra.runtime import current_runtime
from loaders.catalog import PRODUCT_FIELDS, CategoryRow, ProductRow
from models import Brand as BrandModel
from models import ProductMedia
from models import ProductStatus as ProductStatusModel
from models import Tag as TagModel
from resolvers.node import node_type
from schema.catalog import (
    Brand,
    Category,
    Media,
    Product,
    ProductConnection,
    ProductFilter,
    ProductSort,
    Sku,
    StockChanged,
    Tag,
)
from schema.catalog_prefetch import prefetch_products, subfields
from schema.connection import build_edges, cursor_offset
from schema.context import Context, searcher_key
from schema.node import decode_id, encode_id
from services.catalog import hot_words
from services.catalog.events import IN_STOCK_TAG, stock_channel
from services.catalog.listing import ProductFilter as ListingFilter
from services.catalog.listing import ProductPage, check_page_size, list_products
from services.catalog.listing import ProductSort as ListingSort
from services.errors import DomainError, ErrorCode

ProductInfo = Info[Context, None]


def visible(product_status: ProductStatusModel, context: Context) -> bool:
    # Drafts exist only for staff; an off-shelf product still has a page (it shows 已下架).
    return context.viewer.is_staff or product_status is not ProductStatusModel.DRAFT


async def product_row(context: Context, id: strawberry.ID) -> ProductRow | None:
    """The product `id` names if the viewer may see it (also what the fast executor, schema/fast, reads)."""
    pk = decode_id(id, "Product")
    context.depends_on(f"p:{pk}")
    model = await context.loaders.product.load(pk)
    if model is None or not visible(model.status, context):
        return None
    return model


async def product(info: ProductInfo, id: strawberry.ID) -> Product | None:
    model = await product_row(info.context, id)
    if model is None:
        return None
    raw = info._raw_info
    await prefetch_products(info.context.loaders, [model], raw.field_nodes, raw)
    return Product.from_model(model)


# --- node(id:) ------------------------------------------------------------------------------------------


@node_type("Product")
async def product_node(context: Context, pk: int) -> Product | None:
    model = await context.loaders.product.load(pk)
    return Product.from_model(model) if model and visible(model.status, context) else None


@node_type("Sku")
async def sku_node(context: Context, pk: int) -> Sku | None:
    sku = await context.loaders.sku.load(pk)
    owner = await context.loaders.product.load(sku.product_id) if sku else None
    return Sku.from_model(sku) if sku and owner and visible(owner.status, context) else None


@node_type("Media")
async def media_node(context: Context, pk: int) -> Media | None:
    media = await context.rows(ProductMedia).load(pk)
    owner = await context.loaders.product.load(media.product_id) if media else None
    return Media.from_model(media) if media and owner and visible(owner.status, context) else None


@node_type("Category")
async def category_node(context: Context, pk: int) -> Category | None:
    category = await context.loaders.category.load(pk)
    return Category.from_model(category) if category else None


@node_type("Brand")
async def brand_node(context: Context, pk: int) -> Brand | None:
    brand = await context.loaders.brand.load(pk)
    return Brand.from_model(brand) if brand else None


@node_type("Tag")
async def tag_node(context: Context, pk: int) -> Tag | None:
    tag = await context.loaders.tag.load(pk)
    return Tag.from_model(tag) if tag else None


# --- Lists -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductListing:
    """One page of `products`: its rows (held by the product loader), where it starts, and the page."""

    rows: list[ProductRow]
    offset: int
    page: ProductPage


async def product_listing(
    context: Context,
    first: int | None,
    after: str | None,
    filter: ProductFilter | None,
    sort: ProductSort | None,
) -> ProductListing:
    """The page `products` answers (also what the fast executor, schema/fast, reads)."""
    limit = check_page_size(first, context.settings.max_page_size)
    offset = cursor_offset(after)
    listing_filter = _listing_filter(filter, include_unpublished=context.viewer.is_staff)
    context.depends_on("listing")
    if listing_filter.in_stock is not None:
        context.depends_on(IN_STOCK_TAG)
    page = await list_products(
        listing_filter, ListingSort(sort.value) if sort else None, offset, limit, PRODUCT_FIELDS
    )
    if listing_filter.keyword:
        await hot_words.record_search(listing_filter.keyword, searcher_key(context.viewer, context.request))
        context.search_terms.append(listing_filter.keyword)
    rows = [ProductRow(*values) for values in page.products]
    held = context.loaders.product
    for row in rows:
        held.hold(row.id, row)
    return ProductListing(rows, offset, page)


async def products(
    info: ProductInfo,
    first: int | None = 20,
    after: str | None = None,
    filter: ProductFilter | None = None,
    sort: ProductSort | None = None,
) -> ProductConnection:
    context = info.context
    listing = await product_listing(context, first, after, filter, sort)
    rows = listing.rows
    raw = info._raw_info
    edges_selected = subfields(raw.field_nodes, raw).get("edges", [])
    await prefetch_products(context.loaders, rows, subfields(edges_selected, raw).get("node", []), raw)
    edges, page_info = build_edges([Product.from_model(row) for row in rows], listing.offset)
    page_info.has_next_page = listing.page.has_next
    return ProductConnection(edges=edges, page_info=page_info, _total=listing.page.total_count)


def _listing_filter(filter: ProductFilter | None, include_unpublished: bool) -> ListingFilter:
    if filter is None:
        return ListingFilter(include_unpublished=include_unpublished)
    return ListingFilter(
        category_id=decode_id(filter.category_id, "Category", "filter.categoryId")
        if filter.category_id
        else None,
        tag_ids=tuple(decode_id(t, "Tag", "filter.tagIds") for t in filter.tag_ids or ()),
        brand_id=decode_id(filter.brand_id, "Brand", "filter.brandId") if filter.brand_id else None,
        keyword=filter.keyword.strip() if filter.keyword and filter.keyword.strip() else None,
        price_min=filter.price_min,
        price_max=filter.price_max,
        in_stock=filter.in_stock,
        include_unpublished=include_unpublished,
    )


async def root_category_rows(context: Context) -> list[CategoryRow]:
    """The root categories (also what the fast executor, schema/fast, reads)."""
    context.depends_on("taxonomy")
    everything = await context.loaders.category.all()
    return [c for c in everything if c.parent_id is None]


async def category_row(context: Context, id: strawberry.ID) -> CategoryRow | None:
    """The category `id` names (also what the fast executor, schema/fast, reads)."""
    context.depends_on("taxonomy")
    return await context.loaders.category.load(decode_id(id, "Category"))


async def categories(info: ProductInfo) -> list[Category]:
    """The root categories; walk `children` for the tree."""
    return [Category.from_model(c) for c in await root_category_rows(info.context)]


async def category(info: ProductInfo, id: strawberry.ID) -> Category | None:
    model = await category_row(info.context, id)
    return Category.from_model(model) if model else None


async def brands(info: ProductInfo) -> list[Brand]:
    info.context.depends_on("taxonomy")
    return [Brand.from_model(b) for b in await BrandModel.all().order_by("name", "id")]


async def tags(info: ProductInfo) -> list[Tag]:
    info.context.depends_on("taxonomy")
    return [Tag.from_model(t) for t in await TagModel.all().order_by("id")]


async def hot_search_words(info: ProductInfo, limit: int = 10) -> list[str]:
    info.context.cache_blocked = True
    return await hot_words.hot_search_words(max(1, min(limit, 50)))


@strawberry.type
class CatalogQuery:
    product: Product | None = strawberry.field(resolver=product)
    products: ProductConnection = strawberry.field(resolver=products)
    categories: list[Category] = strawberry.field(resolver=categories)
    category: Category | None = strawberry.field(resolver=category)
    brands: list[Brand] = strawberry.field(resolver=brands)
    tags: list[Tag] = strawberry.field(resolver=tags)
    hot_search_words: list[str] = strawberry.field(
        resolver=hot_search_words, description="What shoppers searched most in the last 7 days."
    )


async def product_stock_changed(
    info: Info[Context, None], product_id: strawberry.ID
) -> AsyncGenerator[StockChanged, None]:
    pk = decode_id(product_id, "Product", "productId")
    # A fresh context: the connection's own lives as long as the socket, and its loaders would go stale.
    product = await info.context.fresh().loaders.product.load(pk)
    if product is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such product", "productId")
    async with current_runtime().bus.subscribe(stock_channel(pk)) as events:
        async for event in events:
            yield StockChanged(
                product_id=encode_id("Product", event["productId"]),
                sku_id=encode_id("Sku", event["skuId"]),
                stock=event["stock"],
            )


@strawberry.type
class CatalogSubscription:
    product_stock_changed: StockChanged = strawberry.subscription(resolver=product_stock_changed)
