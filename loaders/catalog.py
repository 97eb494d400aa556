"""One loader per "load X by Y" for the catalog; a fresh set is made for every request (and every event)."""

from __future__ import annotations

import asyncio
from asyncio import Future
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar

from aiodataloader import DataLoader
from tortoise import connections

from loaders.sql import Rows, fetch
from models import Brand, Category, Product, ProductMedia, Sku, Tag
from models.product import MediaKind, ProductStatus

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _grouped(keys: Iterable[K], pairs: Iterable[tuple[K, V]]) -> list[list[V]]:
    groups: dict[K, list[V]] = defaultdict(list)
    for key, value in pairs:
        groups[key].append(value)
    return [groups.get(key, []) for key in keys]


@dataclass(slots=True)
class ProductRow:
    """A product as catalog reads see it (every column but the search text); see loaders/sql.py."""

    id: int
    shop_id: int
    category_id: int
    brand_id: int | None
    title: str
    subtitle: str
    description: str
    status: ProductStatus
    sales_count: int
    stock_warning: int
    min_price: int
    max_price: int
    total_stock: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None


@dataclass(slots=True)
class SkuRow:
    """What the schema and the unit price read of a SKU. Leaving out the timestamps matters: parsing them was
    a fifth of a listing's execution time on SQLite."""

    id: int
    product_id: int
    spec_key: str
    price: int
    original_price: int | None
    member_price: int | None
    tier_prices: list[dict[str, int]]
    stock: int
    barcode: str
    weight_grams: int


@dataclass(slots=True)
class MediaRow:
    id: int
    product_id: int
    kind: MediaKind
    url: str
    sort: int


@dataclass(slots=True)
class BrandRow:
    id: int
    shop_id: int
    name: str
    logo_url: str


@dataclass(slots=True)
class TagRow:
    id: int
    shop_id: int
    name: str


PRODUCT_ROWS = Rows(Product, ProductRow)
SKU_ROWS = Rows(Sku, SkuRow)
MEDIA_ROWS = Rows(ProductMedia, MediaRow)
BRAND_ROWS = Rows(Brand, BrandRow)
TAG_ROWS = Rows(Tag, TagRow)

# The columns a listing reads (`list_products` selects them with its own filters and order).
PRODUCT_FIELDS = PRODUCT_ROWS.names
SKU_FIELDS = SKU_ROWS.names


class NotReady:
    """What `HeldLoader.ready` answers for a value not loaded yet."""


NOT_READY = NotReady()


class HeldLoader(DataLoader[K, V]):
    """A loader whose loaded values can also be read without awaiting: fields whose data a root resolver
    prefetched (schema/catalog_prefetch.py) then resolve synchronously, with no coroutine and no task."""

    def __init__(self) -> None:
        self._held: dict[K, Future[V]] = {}
        # What `fetch_many` loaded: plain values, no future per key.
        self._fetched: dict[K, V] = {}
        self._fetching: dict[K, Future[None]] = {}
        super().__init__(cache_map=self._held)

    async def fetch_many(
        self, keys: Iterable[K], batch: Callable[[list[K]], Awaitable[list[V]]] | None = None
    ) -> None:
        """Load the values of `keys` not held yet, in one call of `batch_load_fn` (the batch `load_many` would
        make, without a future and a callback per key); `ready` then answers them. For the fast executor
        (schema/fast), which reads a whole level's values at once. Keys another fetch is loading now are
        waited for, not loaded twice. `batch` replaces `batch_load_fn` (one that also reads more)."""
        fetched, fetching = self._fetched, self._fetching
        missing: list[K] = []
        waits: set[Future[None]] = set()
        for key in dict.fromkeys(keys):
            if key in fetched or self._ready(key) is not NOT_READY:
                continue
            running = fetching.get(key)
            if running is None:
                missing.append(key)
            else:
                waits.add(running)
        if missing:
            done: Future[None] = asyncio.get_running_loop().create_future()
            for key in missing:
                fetching[key] = done
            try:
                values = await (batch or self.batch_load_fn)(missing)
                if len(values) != len(missing):
                    raise ValueError(
                        f"{type(self).__name__} answered {len(values)} values for {len(missing)} keys"
                    )
                fetched.update(zip(missing, values, strict=True))
            finally:
                for key in missing:
                    fetching.pop(key, None)
                done.set_result(None)  # a failed fetch leaves its keys unready: the waiters find nothing
        for running in waits:
            await running

    def hold(self, key: K, value: V) -> None:
        """Keep `value` as loaded for `key` (read by a statement that loaded more than this loader's own)."""
        self._fetched[key] = value

    def load(self, key: K) -> Future[V]:
        # A value fetched by `fetch_many` is held like any loaded one (no second query for it).
        if key in self._fetched and key not in self._held:
            self.prime(key, self._fetched[key])
        return super().load(key)

    def ready(self, key: K) -> V | NotReady:
        """The value loaded for `key`, or NOT_READY while it is not (or its load failed: awaiting it raises)."""
        fetched = self._fetched
        if key in fetched:
            return fetched[key]
        return self._ready(key)

    def _ready(self, key: K) -> V | NotReady:
        future = self._held.get(key)
        if future is None or not future.done() or future.cancelled() or future.exception() is not None:
            return NOT_READY
        return future.result()


def _by_id(ids: list[int], rows: Iterable[Any]) -> list[Any]:
    found = {row.id: row for row in rows}
    return [found.get(i) for i in ids]


class ProductLoader(HeldLoader[int, ProductRow | None]):
    async def batch_load_fn(self, ids: list[int]) -> list[ProductRow | None]:
        return _by_id(ids, await PRODUCT_ROWS.by_ids(ids))


class SkusByProductLoader(HeldLoader[int, list[SkuRow]]):
    async def batch_load_fn(self, product_ids: list[int]) -> list[list[SkuRow]]:
        skus = await SKU_ROWS.by_ids(product_ids, column="product_id", order_by="product_id, id")
        return _grouped(product_ids, ((s.product_id, s) for s in skus))


_made: dict[Callable[[], str], str] = {}


def _statements(make: Callable[[], str]) -> str:
    """The text `make` writes, made once (on first use: the row columns are known once Tortoise started)."""
    text = _made.get(make)
    if text is None:
        text = _made[make] = make()
    return text


def _skus_with_spec_values() -> str:
    return (
        f"SELECT {SKU_ROWS.columns('s')}, d.name, v.value FROM skus s "
        "LEFT JOIN sku_spec_values l ON l.sku_id = s.id LEFT JOIN spec_values v ON v.id = l.spec_value_id "
        "LEFT JOIN spec_dimensions d ON d.id = v.dimension_id "
        "WHERE s.product_id {ids} ORDER BY s.product_id, s.id, d.sort, d.id"
    )


def _skus_with_spec_values_of_several() -> str:
    # The same rows on PostgreSQL for several products. Joined as above, PostgreSQL hashes every SKU's link to
    # its spec values (a scan of the whole link table) for a page's ~90 SKUs; given the SKUs' ids as an array
    # first, it reads their links by index: 1.18 -> 0.98 ms for a listing of 20 (for one product the plain
    # join's index plan is the faster, 0.24 against 0.35 ms).
    return (
        f"WITH s AS MATERIALIZED ({SKU_ROWS.select} WHERE product_id {{ids}}) "
        f"SELECT {SKU_ROWS.columns('s')}, d.name, v.value FROM s "
        "LEFT JOIN (sku_spec_values l JOIN spec_values v ON v.id = l.spec_value_id "
        "JOIN spec_dimensions d ON d.id = v.dimension_id) "
        "ON l.sku_id = s.id AND l.sku_id = ANY(ARRAY(SELECT id FROM s)) "
        "ORDER BY s.product_id, s.id, d.sort, d.id"
    )


class SkusWithSpecValues:
    """The SKUs of products with their spec values, in one statement instead of two (SKUs, then the spec
    values of those SKUs): what the fast executor (schema/fast) fetches when a selection reads both. The rows
    and their order are those of the two loaders, which then hold them."""

    def __init__(self, skus: SkusByProductLoader, spec_values: SpecValuesBySkuLoader) -> None:
        self.skus = skus
        self.spec_values = spec_values

    async def fetch_many(self, product_ids: Iterable[int]) -> None:
        await self.skus.fetch_many(product_ids, self._batch)

    async def _batch(self, product_ids: list[int]) -> list[list[SkuRow]]:
        several = len(product_ids) > 1 and connections.get("default").capabilities.dialect == "postgres"
        query = _statements(_skus_with_spec_values_of_several if several else _skus_with_spec_values)
        width = len(SKU_ROWS.names)
        skus: list[SkuRow] = []
        pairs: list[tuple[str, str]] = []
        for values in await fetch(query, product_ids):
            if not skus or skus[-1].id != values[0]:
                skus.append(SKU_ROWS.build(values[:width]))
                pairs = []
                self.spec_values.hold(values[0], pairs)
            if values[width] is not None:
                pairs.append((values[width], values[width + 1]))
        return _grouped(product_ids, ((s.product_id, s) for s in skus))


class SkuLoader(HeldLoader[int, SkuRow | None]):
    async def batch_load_fn(self, ids: list[int]) -> list[SkuRow | None]:
        return _by_id(ids, await SKU_ROWS.by_ids(ids))


_SPEC_VALUES_BY_SKU = (
    "SELECT l.sku_id, d.name, v.value FROM sku_spec_values l "
    "JOIN spec_values v ON v.id = l.spec_value_id JOIN spec_dimensions d ON d.id = v.dimension_id "
    "WHERE l.sku_id {ids} ORDER BY l.sku_id, d.sort, d.id"
)


class SpecValuesBySkuLoader(HeldLoader[int, list[tuple[str, str]]]):
    """(dimension name, value) pairs of each SKU, in the product's dimension order."""

    async def batch_load_fn(self, sku_ids: list[int]) -> list[list[tuple[str, str]]]:
        rows = await fetch(_SPEC_VALUES_BY_SKU, sku_ids)
        return _grouped(sku_ids, ((sku_id, (name, value)) for sku_id, name, value in rows))


@dataclass(slots=True)
class CategoryRow:
    id: int
    shop_id: int
    parent_id: int | None
    name: str
    level: int
    path: str
    sort: int
    icon_url: str


CATEGORY_ROWS = Rows(Category, CategoryRow)


class CategoryLoader(HeldLoader[int, CategoryRow | None]):
    """Categories by id. A batch also loads the ancestors of what it was asked for, in the same query, and
    keeps them: breadcrumbs and parents then cost nothing more. `all()` loads the whole tree for tree views."""

    def __init__(self) -> None:
        super().__init__()
        self._all: dict[int, CategoryRow] | None = None

    async def batch_load_fn(self, ids: list[int]) -> list[CategoryRow | None]:
        if self._all is not None:
            return [self._all.get(i) for i in ids]
        # The tree is three levels deep, and a path lists a category's ancestors ("1/5"): the ids, and the
        # parents and grandparents of the ids, in one statement.
        parents = "SELECT parent_id FROM categories WHERE id {ids}"
        query = (
            f"{CATEGORY_ROWS.select} WHERE id {{ids}} OR id IN ({parents}) "
            f"OR id IN (SELECT parent_id FROM categories WHERE id IN ({parents}))"
        )
        rows = [CATEGORY_ROWS.build(values) for values in await fetch(query, ids)]
        found = {c.id: c for c in rows}
        for category in rows:
            if category.id not in ids:
                self.prime(category.id, category)
        return [found.get(i) for i in ids]

    async def all(self) -> list[CategoryRow]:
        if self._all is None:
            self._all = {c.id: c for c in await CATEGORY_ROWS.everything(order_by="level, sort, id")}
            for category in self._all.values():
                self.prime(category.id, category)
        return list(self._all.values())


class BrandLoader(HeldLoader[int, BrandRow | None]):
    async def batch_load_fn(self, ids: list[int]) -> list[BrandRow | None]:
        return _by_id(ids, await BRAND_ROWS.by_ids(ids))


class TagLoader(HeldLoader[int, TagRow | None]):
    async def batch_load_fn(self, ids: list[int]) -> list[TagRow | None]:
        return _by_id(ids, await TAG_ROWS.by_ids(ids))


_TAGS_BY_PRODUCT = (
    "SELECT l.product_id, t.id, t.shop_id, t.name FROM product_tags l JOIN tags t ON t.id = l.tag_id "
    "WHERE l.product_id {ids} ORDER BY l.tag_id"
)


class TagsByProductLoader(HeldLoader[int, list[TagRow]]):
    async def batch_load_fn(self, product_ids: list[int]) -> list[list[TagRow]]:
        rows = await fetch(_TAGS_BY_PRODUCT, product_ids)
        return _grouped(product_ids, ((r[0], TagRow(r[1], r[2], r[3])) for r in rows))


class MediaByProductLoader(HeldLoader[int, list[MediaRow]]):
    async def batch_load_fn(self, product_ids: list[int]) -> list[list[MediaRow]]:
        media = await MEDIA_ROWS.by_ids(product_ids, column="product_id", order_by="product_id, sort, id")
        return _grouped(product_ids, ((m.product_id, m) for m in media))


_SPEC_DIMENSIONS = (
    "SELECT d.product_id, d.id, d.name, v.value FROM spec_values v "
    "JOIN spec_dimensions d ON d.id = v.dimension_id "
    "WHERE d.product_id {ids} ORDER BY d.product_id, d.sort, d.id, v.sort, v.id"
)


class SpecDimensionsByProductLoader(HeldLoader[int, list[tuple[str, list[str]]]]):
    """Each product's spec dimensions with their values, in display order."""

    async def batch_load_fn(self, product_ids: list[int]) -> list[list[tuple[str, list[str]]]]:
        by_dimension: dict[int, tuple[int, str, list[str]]] = {}
        for product_id, dimension_id, name, value in await fetch(_SPEC_DIMENSIONS, product_ids):
            by_dimension.setdefault(dimension_id, (product_id, name, []))[2].append(value)
        return _grouped(product_ids, ((pid, (name, vals)) for pid, name, vals in by_dimension.values()))


class CatalogLoaders:
    """The catalog loaders of one request, each made on first use (a product page needs four of the ten, and
    making a loader costs about as much as reading a row)."""

    @cached_property
    def product(self) -> ProductLoader:
        return ProductLoader()

    @cached_property
    def sku(self) -> SkuLoader:
        return SkuLoader()

    @cached_property
    def skus_by_product(self) -> SkusByProductLoader:
        return SkusByProductLoader()

    @cached_property
    def spec_values_by_sku(self) -> SpecValuesBySkuLoader:
        return SpecValuesBySkuLoader()

    @cached_property
    def category(self) -> CategoryLoader:
        return CategoryLoader()

    @cached_property
    def brand(self) -> BrandLoader:
        return BrandLoader()

    @cached_property
    def tag(self) -> TagLoader:
        return TagLoader()

    @cached_property
    def tags_by_product(self) -> TagsByProductLoader:
        return TagsByProductLoader()

    @cached_property
    def media_by_product(self) -> MediaByProductLoader:
        return MediaByProductLoader()

    @cached_property
    def spec_dimensions_by_product(self) -> SpecDimensionsByProductLoader:
        return SpecDimensionsByProductLoader()

    @cached_property
    def skus_with_spec_values(self) -> SkusWithSpecValues:
        return SkusWithSpecValues(self.skus_by_product, self.spec_values_by_sku)
