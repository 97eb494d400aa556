"""The root types and the Schema.

Each domain declares its own root fields (`CatalogQuery`, `CatalogMutation`, ...); the Schema merges them, so a
new domain adds one class to a tuple here instead of editing another domain's root type.
"""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from infra.settings import get_settings
from resolvers import catalog, catalog_admin, node, subscriptions
from resolvers.access import AccessMutation, AccessQuery
from resolvers.addresses import AddressMutation, AddressQuery
from resolvers.cart import CartMutation, CartQuery
from resolvers.checkout import CheckoutMutation, CheckoutQuery
from resolvers.loyalty import LoyaltyMutation, LoyaltyQuery
from resolvers.members import MemberMutation, MemberQuery
from resolvers.orders import OrderMutation, OrderQuery, order_status_changed
from resolvers.payments import PaymentMutation, PaymentQuery
from schema.catalog import Brand, Category, Media, Product, ProductConnection, Sku, Tag
from schema.catalog_inputs import (
    BrandCreatePayload,
    BrandDeletePayload,
    BrandUpdatePayload,
    CategoryCreatePayload,
    CategoryDeletePayload,
    CategoryUpdatePayload,
    ProductCreatePayload,
    ProductPublishPayload,
    ProductUnpublishPayload,
    ProductUpdatePayload,
    SkuCreatePayload,
    SkuUpdatePayload,
    TagCreatePayload,
    TagDeletePayload,
    TagUpdatePayload,
)
from schema.extensions import LianmallSchema, edge_extensions
from schema.live import StockChanged
from schema.node import Node
from schema.orders import OrderStatusChanged


@strawberry.type
class CatalogQuery:
    node: Node | None = strawberry.field(resolver=node.node, description="Any object by its global ID.")
    product: Product | None = strawberry.field(resolver=catalog.product)
    products: ProductConnection = strawberry.field(resolver=catalog.products)
    categories: list[Category] = strawberry.field(resolver=catalog.categories)
    category: Category | None = strawberry.field(resolver=catalog.category)
    brands: list[Brand] = strawberry.field(resolver=catalog.brands)
    tags: list[Tag] = strawberry.field(resolver=catalog.tags)
    hot_search_words: list[str] = strawberry.field(
        resolver=catalog.hot_search_words, description="What shoppers searched most in the last 7 days."
    )


@strawberry.type
class CatalogMutation:
    product_create: ProductCreatePayload = strawberry.mutation(
        resolver=catalog_admin.product_create, description="A DRAFT product with its specs and SKUs."
    )
    product_update: ProductUpdatePayload = strawberry.mutation(resolver=catalog_admin.product_update)
    product_publish: ProductPublishPayload = strawberry.mutation(
        resolver=catalog_admin.product_publish, description="Put on sale; the product needs a SKU."
    )
    product_unpublish: ProductUnpublishPayload = strawberry.mutation(
        resolver=catalog_admin.product_unpublish, description="Take off the shelf (下架)."
    )
    sku_create: SkuCreatePayload = strawberry.mutation(resolver=catalog_admin.sku_create)
    sku_update: SkuUpdatePayload = strawberry.mutation(resolver=catalog_admin.sku_update)
    category_create: CategoryCreatePayload = strawberry.mutation(resolver=catalog_admin.category_create)
    category_update: CategoryUpdatePayload = strawberry.mutation(resolver=catalog_admin.category_update)
    category_delete: CategoryDeletePayload = strawberry.mutation(
        resolver=catalog_admin.category_delete, description="Only one without subcategories or products."
    )
    brand_create: BrandCreatePayload = strawberry.mutation(resolver=catalog_admin.brand_create)
    brand_update: BrandUpdatePayload = strawberry.mutation(resolver=catalog_admin.brand_update)
    brand_delete: BrandDeletePayload = strawberry.mutation(
        resolver=catalog_admin.brand_delete, description="Its products keep selling without a brand."
    )
    tag_create: TagCreatePayload = strawberry.mutation(resolver=catalog_admin.tag_create)
    tag_update: TagUpdatePayload = strawberry.mutation(resolver=catalog_admin.tag_update)
    tag_delete: TagDeletePayload = strawberry.mutation(
        resolver=catalog_admin.tag_delete, description="Also takes the tag off its products."
    )


QUERIES: tuple[type, ...] = (
    CatalogQuery,
    LoyaltyQuery,
    AccessQuery,
    AddressQuery,
    MemberQuery,
    CartQuery,
    CheckoutQuery,
    OrderQuery,
    PaymentQuery,
)
MUTATIONS: tuple[type, ...] = (
    CatalogMutation,
    LoyaltyMutation,
    AccessMutation,
    AddressMutation,
    MemberMutation,
    CartMutation,
    CheckoutMutation,
    OrderMutation,
    PaymentMutation,
)

Query = merge_types("Query", QUERIES)
Mutation = merge_types("Mutation", MUTATIONS)


@strawberry.type
class Subscription:
    product_stock_changed: StockChanged = strawberry.subscription(
        resolver=subscriptions.product_stock_changed
    )
    order_status_changed: OrderStatusChanged = strawberry.subscription(
        resolver=order_status_changed, description="The signed-in owner's order, as its status changes."
    )


# Root fields whose answers may be served from the response cache: catalog reads that depend only on the
# price scope and the arguments, and that declare their cache tags while resolving.
CACHEABLE_ROOT_FIELDS = frozenset(
    {"product", "products", "categories", "category", "brands", "tags", "__typename"}
)


def build_schema() -> strawberry.Schema:
    return LianmallSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Media, Sku],
        extensions=edge_extensions(get_settings()),
        config=StrawberryConfig(auto_camel_case=True),
    )


schema = build_schema()
