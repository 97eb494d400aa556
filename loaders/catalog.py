"""One loader per "load X by Y" for the catalog; a fresh set is made for every request (and every event)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from typing import TypeVar

from aiodataloader import DataLoader
from tortoise.expressions import Q, Subquery

from models import Brand, Category, Product, ProductMedia, ProductTag, Sku, SkuSpecValue, SpecValue, Tag

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _grouped(keys: Iterable[K], pairs: Iterable[tuple[K, V]]) -> list[list[V]]:
    groups: dict[K, list[V]] = defaultdict(list)
    for key, value in pairs:
        groups[key].append(value)
    return [groups.get(key, []) for key in keys]


class ProductLoader(DataLoader[int, Product | None]):
    async def batch_load_fn(self, ids: list[int]) -> list[Product | None]:
        found = {p.id: p for p in await Product.filter(id__in=ids)}
        return [found.get(i) for i in ids]


# What the schema reads of a SKU. Leaving out the timestamps matters: parsing them was a fifth of a listing's
# execution time on SQLite.
SKU_FIELDS = (
    "id",
    "product_id",
    "spec_key",
    "price",
    "original_price",
    "member_price",
    "tier_prices",
    "stock",
    "barcode",
    "weight_grams",
)


class SkusByProductLoader(DataLoader[int, list[Sku]]):
    async def batch_load_fn(self, product_ids: list[int]) -> list[list[Sku]]:
        skus = await Sku.filter(product_id__in=product_ids).only(*SKU_FIELDS).order_by("product_id", "id")
        return _grouped(product_ids, ((s.product_id, s) for s in skus))


class SkuLoader(DataLoader[int, Sku | None]):
    async def batch_load_fn(self, ids: list[int]) -> list[Sku | None]:
        found = {s.id: s for s in await Sku.filter(id__in=ids)}
        return [found.get(i) for i in ids]


class SpecValuesBySkuLoader(DataLoader[int, list[tuple[str, str]]]):
    """(dimension name, value) pairs of each SKU, in the product's dimension order."""

    async def batch_load_fn(self, sku_ids: list[int]) -> list[list[tuple[str, str]]]:
        links = (
            await SkuSpecValue.filter(sku_id__in=sku_ids)
            .select_related("spec_value__dimension")
            .order_by("sku_id", "spec_value__dimension__sort", "spec_value__dimension_id")
        )
        return _grouped(
            sku_ids, ((ln.sku_id, (ln.spec_value.dimension.name, ln.spec_value.value)) for ln in links)
        )


class CategoryLoader(DataLoader[int, Category | None]):
    """Categories by id. A batch also loads the ancestors of what it was asked for, in the same query, and
    keeps them: breadcrumbs and parents then cost nothing more. `all()` loads the whole tree for tree views."""

    def __init__(self) -> None:
        super().__init__()
        self._all: dict[int, Category] | None = None

    async def batch_load_fn(self, ids: list[int]) -> list[Category | None]:
        if self._all is not None:
            return [self._all.get(i) for i in ids]
        # The tree is three levels deep: the ids, their parents and their grandparents.
        parents = Category.filter(id__in=ids).values("parent_id")
        grandparents = Category.filter(id__in=Subquery(parents)).values("parent_id")
        rows = await Category.filter(
            Q(id__in=ids) | Q(id__in=Subquery(parents)) | Q(id__in=Subquery(grandparents))
        )
        found = {c.id: c for c in rows}
        for category in rows:
            if category.id not in ids:
                self.prime(category.id, category)
        return [found.get(i) for i in ids]

    async def all(self) -> list[Category]:
        if self._all is None:
            self._all = {c.id: c for c in await Category.all().order_by("level", "sort", "id")}
            for category in self._all.values():
                self.prime(category.id, category)
        return list(self._all.values())


class BrandLoader(DataLoader[int, Brand | None]):
    async def batch_load_fn(self, ids: list[int]) -> list[Brand | None]:
        found = {b.id: b for b in await Brand.filter(id__in=ids)}
        return [found.get(i) for i in ids]


class TagLoader(DataLoader[int, Tag | None]):
    async def batch_load_fn(self, ids: list[int]) -> list[Tag | None]:
        found = {t.id: t for t in await Tag.filter(id__in=ids)}
        return [found.get(i) for i in ids]


class TagsByProductLoader(DataLoader[int, list[Tag]]):
    async def batch_load_fn(self, product_ids: list[int]) -> list[list[Tag]]:
        links = await ProductTag.filter(product_id__in=product_ids).select_related("tag").order_by("tag_id")
        return _grouped(product_ids, ((ln.product_id, ln.tag) for ln in links))


class MediaByProductLoader(DataLoader[int, list[ProductMedia]]):
    async def batch_load_fn(self, product_ids: list[int]) -> list[list[ProductMedia]]:
        media = await ProductMedia.filter(product_id__in=product_ids).order_by("product_id", "sort", "id")
        return _grouped(product_ids, ((m.product_id, m) for m in media))


class SpecDimensionsByProductLoader(DataLoader[int, list[tuple[str, list[str]]]]):
    """Each product's spec dimensions with their values, in display order."""

    async def batch_load_fn(self, product_ids: list[int]) -> list[list[tuple[str, list[str]]]]:
        values = (
            await SpecValue.filter(dimension__product_id__in=product_ids)
            .select_related("dimension")
            .order_by("dimension__product_id", "dimension__sort", "dimension_id", "sort", "id")
        )
        by_dimension: dict[int, tuple[int, str, list[str]]] = {}
        for v in values:
            entry = by_dimension.setdefault(v.dimension_id, (v.dimension.product_id, v.dimension.name, []))
            entry[2].append(v.value)
        return _grouped(product_ids, ((pid, (name, vals)) for pid, name, vals in by_dimension.values()))


class CatalogLoaders:
    """The catalog loaders of one request."""

    def __init__(self) -> None:
        self.product = ProductLoader()
        self.sku = SkuLoader()
        self.skus_by_product = SkusByProductLoader()
        self.spec_values_by_sku = SpecValuesBySkuLoader()
        self.category = CategoryLoader()
        self.brand = BrandLoader()
        self.tag = TagLoader()
        self.tags_by_product = TagsByProductLoader()
        self.media_by_product = MediaByProductLoader()
        self.spec_dimensions_by_product = SpecDimensionsByProductLoader()
