"""Catalog types: products, SKUs, categories, brands, tags, media."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from infra.volatile import AT_MOST, NUMBER
from loaders.catalog import BrandRow, CategoryRow, MediaRow, ProductRow, SkuRow, TagRow
from models import Brand as BrandModel
from models import Category as CategoryModel
from models import Product as ProductModel
from models import ProductMedia as MediaModel
from models import Sku as SkuModel
from models import Tag as TagModel
from models.product import MediaKind as MediaKindModel
from models.product import ProductStatus as ProductStatusModel
from schema.catalog_prefetch import now_or_later
from schema.connection import Edge, PageInfo
from schema.context import Context
from schema.node import Node, encode_id
from schema.volatile import volatile_field
from services.catalog.prices import price_range, unit_price
from services.catalog.stock_levels import product_stock_key, sku_stock_key

if TYPE_CHECKING:
    from schema.content import Review, ReviewConnection, ReviewFilter, ReviewSummary
    from schema.promotions import Promotion

# The review types live with content (schema.content), which imports this module: referenced lazily.
_ReviewConnection = Annotated["ReviewConnection", strawberry.lazy("schema.content")]
_ReviewFilter = Annotated["ReviewFilter", strawberry.lazy("schema.content")]
_ReviewSummary = Annotated["ReviewSummary", strawberry.lazy("schema.content")]
_Promotion = Annotated["Promotion", strawberry.lazy("schema.promotions")]
_Review = Annotated["Review", strawberry.lazy("schema.content")]

ProductStatus = strawberry.enum(ProductStatusModel, description="Where a product is in its life.")
MediaKind = strawberry.enum(MediaKindModel)


@strawberry.type(description="Lowest and highest price the viewer pays for one unit, in fen.")
class PriceRange:
    min: int
    max: int


@strawberry.type
class SpecValue:
    name: str
    value: str


@strawberry.type(description="A spec dimension of a product (e.g. 颜色) and its values (红, 蓝).")
class SpecDimension:
    name: str
    values: list[str]


@strawberry.type
class TierPrice:
    min_quantity: int
    price: int


@strawberry.type
class Media(Node):
    kind: MediaKind
    url: str
    sort: int

    @classmethod
    def from_model(cls, m: MediaModel | MediaRow) -> Media:
        return cls(id=encode_id("Media", m.id), kind=m.kind, url=m.url, sort=m.sort)


@strawberry.type
class Tag(Node):
    name: str

    @classmethod
    def from_model(cls, m: TagModel | TagRow) -> Tag:
        return cls(id=encode_id("Tag", m.id), name=m.name)


@strawberry.type
class Brand(Node):
    name: str
    logo_url: str

    @classmethod
    def from_model(cls, m: BrandModel | BrandRow) -> Brand:
        return cls(id=encode_id("Brand", m.id), name=m.name, logo_url=m.logo_url)


@strawberry.type(description="A node of the three-level category tree.")
class Category(Node):
    name: str
    level: int
    icon_url: str
    sort: int
    _model: strawberry.Private[CategoryModel | CategoryRow]

    @classmethod
    def from_model(cls, m: CategoryModel | CategoryRow) -> Category:
        return cls(
            id=encode_id("Category", m.id),
            name=m.name,
            level=m.level,
            icon_url=m.icon_url,
            sort=m.sort,
            _model=m,
        )

    @strawberry.field
    async def parent(self, info: Info[Context, None]) -> Category | None:
        if self._model.parent_id is None:
            return None
        parent = await info.context.loaders.category.load(self._model.parent_id)
        return Category.from_model(parent) if parent else None

    @strawberry.field
    async def children(self, info: Info[Context, None]) -> list[Category]:
        everything = await info.context.loaders.category.all()
        return [Category.from_model(c) for c in everything if c.parent_id == self._model.id]

    @strawberry.field(description="The path from the root category down to this one, inclusive.")
    async def breadcrumbs(self, info: Info[Context, None]) -> list[Category]:
        ids = [int(i) for i in self._model.path.split("/") if i]
        ancestors = await info.context.loaders.category.load_many(ids)
        return [Category.from_model(c) for c in ancestors if c is not None] + [self]


@strawberry.type(description="One purchasable combination of a product's specs.")
class Sku(Node):
    original_price: int | None = strawberry.field(description="划线价 in fen, shown struck through.")
    member_price: int | None
    stock: int
    barcode: str
    weight_grams: int
    _model: strawberry.Private[SkuModel | SkuRow]

    @classmethod
    def from_model(cls, m: SkuModel | SkuRow) -> Sku:
        return cls(
            id=encode_id("Sku", m.id),
            original_price=m.original_price,
            member_price=m.member_price,
            stock=m.stock,
            barcode=m.barcode,
            weight_grams=m.weight_grams,
            _model=m,
        )

    @strawberry.field(description="The unit price the viewer pays for one, in fen.")
    def price(self, info: Info[Context, None]) -> int:
        return unit_price(self._model, info.context.viewer.price)

    @strawberry.field(description="The list price before member, level and tier prices, in fen.")
    def list_price(self) -> int:
        return self._model.price

    @strawberry.field(
        description="What one costs the viewer now with limited-time discounts (限时折扣), in fen."
    )
    async def active_price(self, info: Info[Context, None]) -> int:
        from schema.promotions import offers

        product = await info.context.loaders.product.load(self._model.product_id)
        if product is None:
            return unit_price(self._model, info.context.viewer.price)
        return (await offers(info.context, product, [self._model]))[0].active_price

    @strawberry.field
    def tier_prices(self) -> list[TierPrice]:
        return [TierPrice(min_quantity=t["min_quantity"], price=t["price"]) for t in self._model.tier_prices]

    @strawberry.field
    def spec_values(self, info: Info[Context, None]) -> list[SpecValue]:
        return now_or_later(info.context.loaders.spec_values_by_sku, self._model.id, _spec_values)

    @strawberry.field
    async def product(self, info: Info[Context, None]) -> Product | None:
        product = await info.context.loaders.product.load(self._model.product_id)
        return Product.from_model(product) if product else None


@strawberry.type
class Product(Node):
    title: str
    subtitle: str
    description: str
    status: ProductStatus
    sales_count: int
    stock_warning: int
    total_stock: int
    created_at: datetime
    published_at: datetime | None
    _model: strawberry.Private[ProductModel | ProductRow]

    @classmethod
    def from_model(cls, m: ProductModel | ProductRow) -> Product:
        return cls(
            id=encode_id("Product", m.id),
            title=m.title,
            subtitle=m.subtitle,
            description=m.description,
            status=m.status,
            sales_count=m.sales_count,
            stock_warning=m.stock_warning,
            total_stock=m.total_stock,
            created_at=m.created_at,
            published_at=m.published_at,
            _model=m,
        )

    @strawberry.field
    def low_stock(self) -> bool:
        return self._model.total_stock <= self._model.stock_warning

    # The relations below resolve synchronously when the root resolver prefetched them (see
    # schema/catalog_prefetch.py), otherwise they return an awaitable, which graphql-core awaits.

    @strawberry.field(description="What the viewer pays for one unit, over all SKUs.")
    def price(self, info: Info[Context, None]) -> PriceRange:
        viewer_price = info.context.viewer.price

        def price_of(skus: list[SkuRow]) -> PriceRange:
            low, high = price_range(skus, viewer_price)
            return PriceRange(min=low, max=high)

        return now_or_later(info.context.loaders.skus_by_product, self._model.id, price_of)

    @strawberry.field(
        description="What the viewer pays for one unit now with limited-time discounts (限时折扣), over all SKUs; "
        "`price` stays the price before them."
    )
    async def active_price(self, info: Info[Context, None]) -> PriceRange:
        from schema.promotions import offers

        skus = await info.context.loaders.skus_by_product.load(self._model.id)
        prices = [o.active_price for o in await offers(info.context, self._model, skus)]
        return PriceRange(min=min(prices, default=0), max=max(prices, default=0))

    @strawberry.field(description="Promotions running now that the viewer may use on this product (badges).")
    async def promotions(self, info: Info[Context, None]) -> list[_Promotion]:
        from schema.promotions import badges, offers

        skus = await info.context.loaders.skus_by_product.load(self._model.id)
        return await badges(info.context, await offers(info.context, self._model, skus))  # type: ignore[return-value]

    @strawberry.field
    def skus(self, info: Info[Context, None]) -> list[Sku]:
        return now_or_later(info.context.loaders.skus_by_product, self._model.id, _skus)

    @strawberry.field
    def specs(self, info: Info[Context, None]) -> list[SpecDimension]:
        return now_or_later(info.context.loaders.spec_dimensions_by_product, self._model.id, _specs)

    @strawberry.field
    def category(self, info: Info[Context, None]) -> Category | None:
        return now_or_later(info.context.loaders.category, self._model.category_id, _category)

    @strawberry.field
    def brand(self, info: Info[Context, None]) -> Brand | None:
        if self._model.brand_id is None:
            return None
        return now_or_later(info.context.loaders.brand, self._model.brand_id, _brand)

    @strawberry.field
    def tags(self, info: Info[Context, None]) -> list[Tag]:
        return now_or_later(info.context.loaders.tags_by_product, self._model.id, _tags)

    @strawberry.field
    def media(self, info: Info[Context, None]) -> list[Media]:
        return now_or_later(info.context.loaders.media_by_product, self._model.id, _media)

    @strawberry.field(description="Public reviews (评价), newest first; only what passed WeChat's check.")
    async def reviews(
        self,
        info: Info[Context, None],
        first: int | None = 10,
        after: str | None = None,
        filter: _ReviewFilter | None = None,
    ) -> _ReviewConnection:
        from schema.content import product_reviews

        return await product_reviews(info, self._model.id, first, after, filter)

    @strawberry.field(description="Review count, average, good-rate and counts per rating.")
    async def review_summary(self, info: Info[Context, None]) -> _ReviewSummary:
        from schema.content import product_review_summary

        return await product_review_summary(info, self._model.id)

    @strawberry.field(description="The few reviews staff featured (精选评价), newest first.")
    async def featured_reviews(self, info: Info[Context, None], limit: int = 3) -> list[_Review]:
        from schema.content import product_featured_reviews

        return await product_featured_reviews(info, self._model.id, limit)


def _spec_values(pairs: list[tuple[str, str]]) -> list[SpecValue]:
    return [SpecValue(name=name, value=value) for name, value in pairs]


def _skus(skus: list[SkuRow]) -> list[Sku]:
    return [Sku.from_model(s) for s in skus]


def _specs(dimensions: list[tuple[str, list[str]]]) -> list[SpecDimension]:
    return [SpecDimension(name=name, values=values) for name, values in dimensions]


def _category(category: CategoryRow | None) -> Category | None:
    return Category.from_model(category) if category else None


def _brand(brand: BrandRow | None) -> Brand | None:
    return Brand.from_model(brand) if brand else None


def _tags(tags: list[TagRow]) -> list[Tag]:
    return [Tag.from_model(t) for t in tags]


def _media(media: list[MediaRow]) -> list[Media]:
    return [Media.from_model(m) for m in media]


# Stock changes with every order: cached answers keep holes where it is shown (schema/volatile.py), filled from
# the stock events every process hears, instead of being dropped by every sale.


def sku_stock_hole(sku: SkuModel | SkuRow) -> tuple[str, str, int, int]:
    """The volatile description of `Sku.stock` (also what the fast executor, schema/fast, notes)."""
    return sku_stock_key(sku.id), NUMBER, 0, sku.stock


def total_stock_hole(product: ProductModel | ProductRow) -> tuple[str, str, int, int]:
    return product_stock_key(product.id), NUMBER, 0, product.total_stock


def low_stock_hole(product: ProductModel | ProductRow) -> tuple[str, str, int, int]:
    return product_stock_key(product.id), AT_MOST, product.stock_warning, product.total_stock


@volatile_field("Sku", "stock")
def _sku_stock(sku: Sku) -> tuple[str, str, int, int]:
    return sku_stock_hole(sku._model)


@volatile_field("Product", "totalStock")
def _total_stock(product: Product) -> tuple[str, str, int, int]:
    return total_stock_hole(product._model)


@volatile_field("Product", "lowStock")
def _low_stock(product: Product) -> tuple[str, str, int, int]:
    return low_stock_hole(product._model)


@strawberry.enum(
    description="Listing order. RELEVANCE applies to keyword searches; without one it means SALES."
)
class ProductSort(Enum):
    RELEVANCE = "RELEVANCE"
    SALES = "SALES"
    PRICE_ASC = "PRICE_ASC"
    PRICE_DESC = "PRICE_DESC"
    NEWEST = "NEWEST"


@strawberry.input
class ProductFilter:
    category_id: strawberry.ID | None = strawberry.field(
        default=None, description="A category at any level: its whole subtree is listed."
    )
    tag_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Products with any of these."
    )
    brand_id: strawberry.ID | None = None
    keyword: str | None = strawberry.field(
        default=None, description="Chinese, full pinyin or pinyin initials; tolerates one typo."
    )
    price_min: int | None = strawberry.field(default=None, description="In fen, on the lowest SKU price.")
    price_max: int | None = None
    in_stock: bool | None = None


@strawberry.type
class ProductConnection:
    edges: list[Edge[Product]]
    page_info: PageInfo
    _total: strawberry.Private[object]

    @strawberry.field(description="All matches, not just this page (costs a count).")
    async def total_count(self) -> int:
        return await self._total()  # type: ignore[operator]


@strawberry.type(description="A SKU's stock changed (on any server process).")
class StockChanged:
    product_id: strawberry.ID
    sku_id: strawberry.ID
    stock: int
