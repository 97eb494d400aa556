"""Staff writes to products: create with specs and SKUs, edit, publish and unpublish.

Every write checks its input first, collecting what it can into one ValidationErrors, then writes everything
inside one transaction, which also keeps a product's denormalised fields (price range, total stock, search
text) in step. Only after the commit is the change announced (`services.catalog.events`): a rejected or
rolled-back write changes nothing and announces nothing.

Field paths in errors name the GraphQL argument, e.g. `input.skus[1].price` or `id`.
"""

from __future__ import annotations

from collections.abc import Sequence

from infra.clock import now
from models import (
    Product,
    ProductMedia,
    ProductStatus,
    ProductTag,
    Sku,
    SpecDimension,
    SpecValue,
)
from services.catalog.checks import Problems, check_count, check_media, check_sku, check_specs, checked_text
from services.catalog.derived import refresh_totals, reindex
from services.catalog.drafts import (
    DESCRIPTION_MAX,
    MAX_SKUS_PER_PRODUCT,
    SUBTITLE_MAX,
    TITLE_MAX,
    MediaItem,
    ProductChanges,
    ProductDraft,
    Unchanged,
)
from services.catalog.events import StockChange, products_changed
from services.catalog.lookups import (
    default_shop_id,
    find_brand,
    find_leaf_category,
    find_tags,
    get_product,
    lock_product,
    write_transaction,
)
from services.catalog.skus import insert_sku
from services.errors import DomainError, ErrorCode


async def _link_tags(product_id: int, tag_ids: Sequence[int]) -> None:
    if tag_ids:
        await ProductTag.bulk_create([ProductTag(product_id=product_id, tag_id=t) for t in tag_ids])


async def _add_media(product_id: int, media: Sequence[MediaItem]) -> None:
    if media:
        await ProductMedia.bulk_create(
            [ProductMedia(product_id=product_id, kind=m.kind, url=m.url, sort=i) for i, m in enumerate(media)]
        )


# --- Products --------------------------------------------------------------------------------------------


async def create_product(draft: ProductDraft) -> Product:
    """Create a DRAFT product with its tags, media, spec dimensions and SKUs in one transaction.

    SKU spec values must name each declared spec exactly once, with a declared value; a product declared
    without specs and with one SKU without spec values gets the single spec 规格: 默认.
    Raises ValidationErrors (BAD_USER_INPUT, NOT_FOUND, CONFLICT for repeated spec combinations).
    """
    problems = Problems()
    title = checked_text(problems, "input.title", draft.title, "The title", TITLE_MAX)
    subtitle = checked_text(
        problems, "input.subtitle", draft.subtitle, "The subtitle", SUBTITLE_MAX, required=False
    )
    description = checked_text(
        problems, "input.description", draft.description, "The description", DESCRIPTION_MAX, required=False
    )
    check_count(problems, "input.stockWarning", draft.stock_warning, "The stock warning")
    media = check_media(problems, "input.media", draft.media)
    if len(draft.skus) > MAX_SKUS_PER_PRODUCT:
        problems.add("input.skus", f"A product has at most {MAX_SKUS_PER_PRODUCT} SKUs")
    skus = [check_sku(problems, f"input.skus[{i}]", s) for i, s in enumerate(draft.skus)]
    dims, combos = check_specs(problems, draft.specs, skus)
    shop_id = await default_shop_id()
    await find_leaf_category(problems, shop_id, draft.category_id, "input.categoryId")
    await find_brand(problems, shop_id, draft.brand_id, "input.brandId")
    tag_ids = await find_tags(problems, shop_id, draft.tag_ids, "input.tagIds")
    problems.raise_any()

    async with write_transaction():
        product = await Product.create(
            shop_id=shop_id,
            category_id=draft.category_id,
            brand_id=draft.brand_id,
            title=title,
            subtitle=subtitle,
            description=description,
            stock_warning=draft.stock_warning,
            status=ProductStatus.DRAFT,
        )
        await _link_tags(product.id, tag_ids)
        await _add_media(product.id, media)
        value_ids: dict[tuple[str, str], int] = {}
        for sort, dim in enumerate(dims):
            dimension = await SpecDimension.create(product_id=product.id, name=dim.name, sort=sort)
            for value_sort, value in enumerate(dim.values):
                row = await SpecValue.create(dimension_id=dimension.id, value=value, sort=value_sort)
                value_ids[(dim.name, value)] = row.id
        created = [
            await insert_sku(
                product.id, [value_ids[(d.name, v)] for d, v in zip(dims, combo, strict=True)], sku
            )
            for sku, combo in zip(skus, combos, strict=True)
        ]
        await refresh_totals(product.id)
        await reindex([product.id])
        product = await Product.get(id=product.id)
    await products_changed([product.id], [StockChange(product.id, s.id, s.stock) for s in created])
    return product


async def update_product(product_id: int, changes: ProductChanges) -> Product:
    """Change a product's own fields; `tag_ids` and `media` replace the current ones when given.

    Raises ValidationErrors (BAD_USER_INPUT, NOT_FOUND) or DomainError NOT_FOUND on `id`.
    """
    problems = Problems()
    fields: dict[str, object] = {}
    if not isinstance(changes.title, Unchanged):
        fields["title"] = checked_text(problems, "input.title", changes.title, "The title", TITLE_MAX)
    if not isinstance(changes.subtitle, Unchanged):
        fields["subtitle"] = checked_text(
            problems, "input.subtitle", changes.subtitle, "The subtitle", SUBTITLE_MAX, required=False
        )
    if not isinstance(changes.description, Unchanged):
        fields["description"] = checked_text(
            problems, "input.description", changes.description, "The description", DESCRIPTION_MAX, False
        )
    if not isinstance(changes.stock_warning, Unchanged):
        check_count(problems, "input.stockWarning", changes.stock_warning, "The stock warning")
        fields["stock_warning"] = changes.stock_warning
    media = (
        None if isinstance(changes.media, Unchanged) else check_media(problems, "input.media", changes.media)
    )
    problems.raise_any()  # the input first: a malformed request is refused before any lookup
    product = await get_product(product_id, "id")
    if not isinstance(changes.category_id, Unchanged):
        await find_leaf_category(problems, product.shop_id, changes.category_id, "input.categoryId")
        fields["category_id"] = changes.category_id
    if not isinstance(changes.brand_id, Unchanged):
        await find_brand(problems, product.shop_id, changes.brand_id, "input.brandId")
        fields["brand_id"] = changes.brand_id
    tag_ids = None
    if not isinstance(changes.tag_ids, Unchanged):
        tag_ids = await find_tags(problems, product.shop_id, changes.tag_ids, "input.tagIds")
    problems.raise_any()

    async with write_transaction():
        await lock_product(product_id, "id")
        await Product.filter(id=product_id).update(**fields, updated_at=now())
        if tag_ids is not None:
            await ProductTag.filter(product_id=product_id).delete()
            await _link_tags(product_id, tag_ids)
        if media is not None:
            await ProductMedia.filter(product_id=product_id).delete()
            await _add_media(product_id, media)
        await reindex([product_id])
        product = await Product.get(id=product_id)
    await products_changed([product_id])
    return product


# Target status -> the statuses a product may reach it from. Moving to the status it has is a no-op.
_STATUS_SOURCES: dict[ProductStatus, frozenset[ProductStatus]] = {
    ProductStatus.ON_SALE: frozenset({ProductStatus.DRAFT, ProductStatus.OFF_SHELF}),
    ProductStatus.OFF_SHELF: frozenset({ProductStatus.ON_SALE}),
}


async def _transition(product_id: int, to: ProductStatus) -> Product:
    async with write_transaction():
        product = await lock_product(product_id, "id")
        if product.status == to:
            return product
        if product.status not in _STATUS_SOURCES[to]:
            raise DomainError(
                ErrorCode.CONFLICT, f"A {product.status.value} product cannot become {to.value}", "id"
            )
        if to is ProductStatus.ON_SALE and not await Sku.exists(product_id=product_id):
            raise DomainError(ErrorCode.CONFLICT, "Add at least one SKU before publishing the product", "id")
        product.status = to
        if to is ProductStatus.ON_SALE:
            product.published_at = now()
        await product.save(update_fields=["status", "published_at", "updated_at"])
    await products_changed([product_id])
    return product


async def publish_product(product_id: int) -> Product:
    """Put a DRAFT or OFF_SHELF product on sale (it needs a SKU) and stamp `published_at`.

    Publishing a product already on sale changes nothing. Raises DomainError NOT_FOUND or CONFLICT on `id`.
    """
    return await _transition(product_id, ProductStatus.ON_SALE)


async def unpublish_product(product_id: int) -> Product:
    """Take a product off the shelf; its page stays (已下架). A DRAFT was never on sale: CONFLICT."""
    return await _transition(product_id, ProductStatus.OFF_SHELF)
