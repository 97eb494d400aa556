"""Staff catalog mutations. Thin: decode IDs, call services.catalog (products, skus, taxonomy), wrap the result in schema types.
`staff_mutation` checks the permission and writes the audit row; every DomainError (permission, bad ID, bad
input) becomes the payload's `errors`."""

from __future__ import annotations

from typing import TypeVar

import strawberry
from strawberry.types import Info
from strawberry.types.unset import UnsetType

from loaders.catalog import CatalogLoaders
from resolvers.access import staff_mutation
from schema.catalog import Brand, Category, Product, Sku, Tag
from schema.catalog_inputs import (
    BrandCreateInput,
    BrandCreatePayload,
    BrandDeletePayload,
    BrandUpdateInput,
    BrandUpdatePayload,
    CategoryCreateInput,
    CategoryCreatePayload,
    CategoryDeletePayload,
    CategoryUpdateInput,
    CategoryUpdatePayload,
    MediaInput,
    ProductCreateInput,
    ProductCreatePayload,
    ProductPublishPayload,
    ProductUnpublishPayload,
    ProductUpdateInput,
    ProductUpdatePayload,
    SkuCreateInput,
    SkuCreatePayload,
    SkuInput,
    SkuUpdateInput,
    SkuUpdatePayload,
    SpecValueInput,
    TagCreateInput,
    TagCreatePayload,
    TagDeletePayload,
    TagUpdateInput,
    TagUpdatePayload,
    TierPriceInput,
)
from schema.context import Context
from schema.node import decode_id
from services.access.permissions import Permission
from services.catalog import drafts, products, skus, taxonomy

CatalogInfo = Info[Context, None]
T = TypeVar("T")


def _wrote(info: CatalogInfo) -> None:
    # Loaders keep rows for the whole request: fields resolved after a write (and later mutations of the same
    # request) must read the rows as written.
    info.context.loaders = CatalogLoaders()


def _pk(global_id: strawberry.ID, type_name: str, field: str) -> int:
    return decode_id(global_id, type_name, field)


def _optional_pk(global_id: strawberry.ID | None, type_name: str, field: str) -> int | None:
    return None if global_id is None else _pk(global_id, type_name, field)


def _given(value: T | UnsetType | None) -> T | drafts.Unchanged:
    """An update field of a non-nullable column: omitted or null leaves it as it is."""
    return drafts.UNCHANGED if value is None or isinstance(value, UnsetType) else value


def _nullable(value: T | UnsetType | None) -> T | drafts.Unchanged | None:
    """An update field of a nullable column: omitted leaves it, null clears it."""
    return drafts.UNCHANGED if isinstance(value, UnsetType) else value


def _tiers(tiers: list[TierPriceInput]) -> tuple[drafts.TierPrice, ...]:
    return tuple(drafts.TierPrice(min_quantity=t.min_quantity, price=t.price) for t in tiers)


def _choices(values: list[SpecValueInput]) -> tuple[drafts.SpecChoice, ...]:
    return tuple(drafts.SpecChoice(name=v.name, value=v.value) for v in values)


def _media(media: list[MediaInput]) -> tuple[drafts.MediaItem, ...]:
    return tuple(drafts.MediaItem(url=m.url, kind=m.kind) for m in media)


def _tag_pks(tag_ids: list[strawberry.ID]) -> tuple[int, ...]:
    return tuple(_pk(t, "Tag", f"input.tagIds[{i}]") for i, t in enumerate(tag_ids))


def _sku_draft(sku: SkuInput) -> drafts.SkuDraft:
    return drafts.SkuDraft(
        spec_values=_choices(sku.spec_values),
        price=sku.price,
        original_price=sku.original_price,
        member_price=sku.member_price,
        tier_prices=_tiers(sku.tier_prices),
        stock=sku.stock,
        barcode=sku.barcode,
        weight_grams=sku.weight_grams,
    )


def _product_draft(data: ProductCreateInput) -> drafts.ProductDraft:
    return drafts.ProductDraft(
        title=data.title,
        subtitle=data.subtitle,
        description=data.description,
        category_id=_pk(data.category_id, "Category", "input.categoryId"),
        brand_id=_optional_pk(data.brand_id, "Brand", "input.brandId"),
        tag_ids=_tag_pks(data.tag_ids),
        media=_media(data.media),
        specs=tuple(drafts.SpecDeclaration(name=s.name, values=tuple(s.values)) for s in data.specs),
        skus=tuple(_sku_draft(s) for s in data.skus),
        stock_warning=data.stock_warning,
    )


def _product_changes(data: ProductUpdateInput) -> drafts.ProductChanges:
    category_id = _given(data.category_id)
    brand_id = _nullable(data.brand_id)
    tag_ids = _given(data.tag_ids)
    media = _given(data.media)
    return drafts.ProductChanges(
        title=_given(data.title),
        subtitle=_given(data.subtitle),
        description=_given(data.description),
        category_id=category_id
        if isinstance(category_id, drafts.Unchanged)
        else _pk(category_id, "Category", "input.categoryId"),
        brand_id=brand_id
        if isinstance(brand_id, drafts.Unchanged)
        else _optional_pk(brand_id, "Brand", "input.brandId"),
        tag_ids=tag_ids if isinstance(tag_ids, drafts.Unchanged) else _tag_pks(tag_ids),
        media=media if isinstance(media, drafts.Unchanged) else _media(media),
        stock_warning=_given(data.stock_warning),
    )


def _sku_changes(data: SkuUpdateInput) -> drafts.SkuChanges:
    tiers = _given(data.tier_prices)
    return drafts.SkuChanges(
        price=_given(data.price),
        stock=_given(data.stock),
        original_price=_nullable(data.original_price),
        member_price=_nullable(data.member_price),
        tier_prices=tiers if isinstance(tiers, drafts.Unchanged) else _tiers(tiers),
        barcode=_given(data.barcode),
        weight_grams=_given(data.weight_grams),
    )


def _category_changes(data: CategoryUpdateInput) -> drafts.CategoryChanges:
    parent_id = _nullable(data.parent_id)
    return drafts.CategoryChanges(
        name=_given(data.name),
        parent_id=parent_id
        if isinstance(parent_id, drafts.Unchanged)
        else _optional_pk(parent_id, "Category", "input.parentId"),
        sort=_given(data.sort),
        icon_url=_given(data.icon_url),
    )


# --- Products and SKUs -----------------------------------------------------------------------------------


@staff_mutation(Permission.CATALOG_WRITE, action="productCreate")
async def product_create(info: CatalogInfo, input: ProductCreateInput) -> ProductCreatePayload:
    product = await products.create_product(_product_draft(input))
    _wrote(info)
    return ProductCreatePayload(product=Product.from_model(product))


@staff_mutation(Permission.CATALOG_WRITE, action="productUpdate")
async def product_update(
    info: CatalogInfo, id: strawberry.ID, input: ProductUpdateInput
) -> ProductUpdatePayload:
    product = await products.update_product(_pk(id, "Product", "id"), _product_changes(input))
    _wrote(info)
    return ProductUpdatePayload(product=Product.from_model(product))


@staff_mutation(Permission.CATALOG_WRITE, action="productPublish")
async def product_publish(info: CatalogInfo, id: strawberry.ID) -> ProductPublishPayload:
    product = await products.publish_product(_pk(id, "Product", "id"))
    _wrote(info)
    return ProductPublishPayload(product=Product.from_model(product))


@staff_mutation(Permission.CATALOG_WRITE, action="productUnpublish")
async def product_unpublish(info: CatalogInfo, id: strawberry.ID) -> ProductUnpublishPayload:
    product = await products.unpublish_product(_pk(id, "Product", "id"))
    _wrote(info)
    return ProductUnpublishPayload(product=Product.from_model(product))


async def _sku_product(info: CatalogInfo, product_id: int) -> Product | None:
    product = await info.context.loaders.product.load(product_id)
    return Product.from_model(product) if product else None


@staff_mutation(Permission.CATALOG_WRITE, action="skuCreate")
async def sku_create(info: CatalogInfo, input: SkuCreateInput) -> SkuCreatePayload:
    product_id = _pk(input.product_id, "Product", "input.productId")
    sku = await skus.create_sku(product_id, _sku_draft(input))
    _wrote(info)
    return SkuCreatePayload(sku=Sku.from_model(sku), product=await _sku_product(info, sku.product_id))


@staff_mutation(Permission.CATALOG_WRITE, action="skuUpdate")
async def sku_update(info: CatalogInfo, id: strawberry.ID, input: SkuUpdateInput) -> SkuUpdatePayload:
    sku = await skus.update_sku(_pk(id, "Sku", "id"), _sku_changes(input))
    _wrote(info)
    return SkuUpdatePayload(sku=Sku.from_model(sku), product=await _sku_product(info, sku.product_id))


# --- Categories, brands and tags -------------------------------------------------------------------------


@staff_mutation(Permission.CATALOG_WRITE, action="categoryCreate")
async def category_create(info: CatalogInfo, input: CategoryCreateInput) -> CategoryCreatePayload:
    draft = drafts.CategoryDraft(
        name=input.name,
        parent_id=_optional_pk(input.parent_id, "Category", "input.parentId"),
        sort=input.sort,
        icon_url=input.icon_url,
    )
    category = await taxonomy.create_category(draft)
    _wrote(info)
    return CategoryCreatePayload(category=Category.from_model(category))


@staff_mutation(Permission.CATALOG_WRITE, action="categoryUpdate")
async def category_update(
    info: CatalogInfo, id: strawberry.ID, input: CategoryUpdateInput
) -> CategoryUpdatePayload:
    category = await taxonomy.update_category(_pk(id, "Category", "id"), _category_changes(input))
    _wrote(info)
    return CategoryUpdatePayload(category=Category.from_model(category))


@staff_mutation(Permission.CATALOG_WRITE, action="categoryDelete")
async def category_delete(info: CatalogInfo, id: strawberry.ID) -> CategoryDeletePayload:
    await taxonomy.delete_category(_pk(id, "Category", "id"))
    _wrote(info)
    return CategoryDeletePayload(deleted_id=id)


@staff_mutation(Permission.CATALOG_WRITE, action="brandCreate")
async def brand_create(info: CatalogInfo, input: BrandCreateInput) -> BrandCreatePayload:
    brand = await taxonomy.create_brand(input.name, input.logo_url)
    _wrote(info)
    return BrandCreatePayload(brand=Brand.from_model(brand))


@staff_mutation(Permission.CATALOG_WRITE, action="brandUpdate")
async def brand_update(info: CatalogInfo, id: strawberry.ID, input: BrandUpdateInput) -> BrandUpdatePayload:
    brand = await taxonomy.update_brand(
        _pk(id, "Brand", "id"), name=_given(input.name), logo_url=_given(input.logo_url)
    )
    _wrote(info)
    return BrandUpdatePayload(brand=Brand.from_model(brand))


@staff_mutation(Permission.CATALOG_WRITE, action="brandDelete")
async def brand_delete(info: CatalogInfo, id: strawberry.ID) -> BrandDeletePayload:
    await taxonomy.delete_brand(_pk(id, "Brand", "id"))
    _wrote(info)
    return BrandDeletePayload(deleted_id=id)


@staff_mutation(Permission.CATALOG_WRITE, action="tagCreate")
async def tag_create(info: CatalogInfo, input: TagCreateInput) -> TagCreatePayload:
    tag = await taxonomy.create_tag(input.name)
    _wrote(info)
    return TagCreatePayload(tag=Tag.from_model(tag))


@staff_mutation(Permission.CATALOG_WRITE, action="tagUpdate")
async def tag_update(info: CatalogInfo, id: strawberry.ID, input: TagUpdateInput) -> TagUpdatePayload:
    tag = await taxonomy.update_tag(_pk(id, "Tag", "id"), name=_given(input.name))
    _wrote(info)
    return TagUpdatePayload(tag=Tag.from_model(tag))


@staff_mutation(Permission.CATALOG_WRITE, action="tagDelete")
async def tag_delete(info: CatalogInfo, id: strawberry.ID) -> TagDeletePayload:
    await taxonomy.delete_tag(_pk(id, "Tag", "id"))
    _wrote(info)
    return TagDeletePayload(deleted_id=id)


@strawberry.type
class CatalogMutation:
    product_create: ProductCreatePayload = strawberry.mutation(
        resolver=product_create, description="A DRAFT product with its specs and SKUs."
    )
    product_update: ProductUpdatePayload = strawberry.mutation(resolver=product_update)
    product_publish: ProductPublishPayload = strawberry.mutation(
        resolver=product_publish, description="Put on sale; the product needs a SKU."
    )
    product_unpublish: ProductUnpublishPayload = strawberry.mutation(
        resolver=product_unpublish, description="Take off the shelf (下架)."
    )
    sku_create: SkuCreatePayload = strawberry.mutation(resolver=sku_create)
    sku_update: SkuUpdatePayload = strawberry.mutation(resolver=sku_update)
    category_create: CategoryCreatePayload = strawberry.mutation(resolver=category_create)
    category_update: CategoryUpdatePayload = strawberry.mutation(resolver=category_update)
    category_delete: CategoryDeletePayload = strawberry.mutation(
        resolver=category_delete, description="Only one without subcategories or products."
    )
    brand_create: BrandCreatePayload = strawberry.mutation(resolver=brand_create)
    brand_update: BrandUpdatePayload = strawberry.mutation(resolver=brand_update)
    brand_delete: BrandDeletePayload = strawberry.mutation(
        resolver=brand_delete, description="Its products keep selling without a brand."
    )
    tag_create: TagCreatePayload = strawberry.mutation(resolver=tag_create)
    tag_update: TagUpdatePayload = strawberry.mutation(resolver=tag_update)
    tag_delete: TagDeletePayload = strawberry.mutation(
        resolver=tag_delete, description="Also takes the tag off its products."
    )
