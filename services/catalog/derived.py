"""A product's derived fields kept in step with what they derive from: SKU combination keys, price range and
total stock, search text."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from infra.clock import now
from models import (
    Brand,
    Category,
    Product,
    ProductTag,
    Sku,
)
from services.catalog.search import search_document

_REINDEX_BATCH = 500


# --- Denormalised product fields -------------------------------------------------------------------------


def spec_key(value_ids: Iterable[int]) -> str:
    """The SKU's unique combination key: its spec value ids sorted, joined by "-" (as the demo seed does)."""
    return "-".join(str(i) for i in sorted(value_ids))


def product_search_text(
    title: str, subtitle: str, category_names: Sequence[str], brand: str, tags: Sequence[str]
) -> str:
    """What a product is found by; `category_names` run from its leaf category up to the root."""
    return search_document(title, subtitle, *category_names, brand, *tags)


async def refresh_totals(product_id: int) -> None:
    rows = await Sku.filter(product_id=product_id).values_list("price", "stock")
    prices = [price for price, _ in rows]
    await Product.filter(id=product_id).update(
        min_price=min(prices, default=0),
        max_price=max(prices, default=0),
        total_stock=sum(stock for _, stock in rows),
        updated_at=now(),
    )


async def reindex(product_ids: Iterable[int]) -> None:
    """Rewrite the search text of these products from their current title, category, brand and tags."""
    ids = sorted(set(product_ids))
    for start in range(0, len(ids), _REINDEX_BATCH):
        await _reindex_batch(ids[start : start + _REINDEX_BATCH])


async def _reindex_batch(ids: list[int]) -> None:
    products = await Product.filter(id__in=ids)
    if not products:
        return
    leaves = {c.id: c for c in await Category.filter(id__in={p.category_id for p in products})}
    ancestor_ids = {int(i) for c in leaves.values() for i in c.path.split("/") if i}
    names = {c.id: c.name for c in leaves.values()}
    if ancestor_ids:
        names.update(await Category.filter(id__in=ancestor_ids).values_list("id", "name"))
    brand_ids = {p.brand_id for p in products if p.brand_id is not None}
    brands = dict(await Brand.filter(id__in=brand_ids).values_list("id", "name")) if brand_ids else {}
    tags: dict[int, list[str]] = defaultdict(list)
    links = (
        await ProductTag.filter(product_id__in=ids).order_by("tag_id").values_list("product_id", "tag__name")
    )
    for product_id, tag_name in links:
        tags[product_id].append(tag_name)

    for product in products:
        leaf = leaves.get(product.category_id)
        chain = [leaf.id, *reversed([int(i) for i in leaf.path.split("/") if i])] if leaf else []
        product.search_text = product_search_text(
            product.title,
            product.subtitle,
            [names[c] for c in chain if c in names],
            brands.get(product.brand_id, "") if product.brand_id is not None else "",
            tags[product.id],
        )
    await Product.bulk_update(products, fields=["search_text"])
