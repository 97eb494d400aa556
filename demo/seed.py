"""Deterministic demo data for the default shop.

The catalog is planned in memory first (`plan_products`, pure and seeded) and then written with a few
bulk inserts inside one transaction (`seed_demo_shop`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import product as cartesian

from tortoise.expressions import F
from tortoise.models import Model
from tortoise.transactions import in_transaction

from demo.catalog_data import (
    BRANDS,
    CATALOG,
    DEFAULT_DIMS,
    DOMESTIC_TAG,
    IMAGE_HOST,
    NEW_TAG,
    SHOP_NAME,
    TAGS,
    Leaf,
    SpecDim,
)
from infra.clock import SHOP_TZ
from infra.db import refresh_planner_statistics
from models import (
    DEFAULT_SHOP_CODE,
    Brand,
    Category,
    MediaKind,
    MemberLevel,
    Product,
    ProductMedia,
    ProductStatus,
    ProductTag,
    Shop,
    Sku,
    SkuSpecValue,
    SpecDimension,
    SpecValue,
    Tag,
)
from services.catalog.derived import product_search_text, spec_key
from services.loyalty.levels import ensure_default_levels

RANDOM_SEED = 20261121
# A fixed "now" for the demo: data must not depend on when it was seeded.
BASE_TIME = datetime(2026, 11, 1, tzinfo=SHOP_TZ)
HISTORY_DAYS = 180
NEW_PRODUCT_DAYS = 14
BATCH_SIZE = 1000

# Quantity discounts as (min_quantity, fraction of the unit price).
TIER_SCHEMES: tuple[tuple[tuple[int, float], ...], ...] = (
    ((2, 0.95), (5, 0.9)),
    ((3, 0.95), (10, 0.88)),
    ((6, 0.92),),
)

CategoryKey = tuple[str, ...]


@dataclass(frozen=True)
class SkuPlan:
    values: tuple[str, ...]  # one value per dimension, in dimension order
    price: int
    original_price: int | None
    member_price: int | None
    tier_prices: list[dict[str, int]]
    stock: int
    barcode: str
    weight_grams: int


@dataclass(frozen=True)
class ProductPlan:
    seq: int  # 1-based position in the plan; names the media folder
    category: CategoryKey  # (root, branch, leaf)
    title: str
    subtitle: str
    description: str
    brand: str | None
    tags: tuple[str, ...]
    status: ProductStatus
    sales_count: int
    stock_warning: int
    created_at: datetime
    published_at: datetime | None
    dims: tuple[tuple[str, tuple[str, ...]], ...]
    skus: tuple[SkuPlan, ...]
    media: tuple[tuple[MediaKind, str], ...] = ()

    @property
    def min_price(self) -> int:
        return min(s.price for s in self.skus)

    @property
    def max_price(self) -> int:
        return max(s.price for s in self.skus)

    @property
    def total_stock(self) -> int:
        return sum(s.stock for s in self.skus)


# ---------------------------------------------------------------------------------------------------------
# Planning (pure)
# ---------------------------------------------------------------------------------------------------------


def category_keys() -> list[CategoryKey]:
    """Every category as its name path, level by level so parents always precede children."""
    roots = [(r.name,) for r in CATALOG]
    branches = [(r.name, b.name) for r in CATALOG for b in r.branches]
    leaves = [(r.name, b.name, leaf.name) for r in CATALOG for b in r.branches for leaf in b.leaves]
    return roots + branches + leaves


def _leaves() -> list[tuple[CategoryKey, Leaf]]:
    return [((r.name, b.name, leaf.name), leaf) for r in CATALOG for b in r.branches for leaf in b.leaves]


def _shelf_price(yuan: float) -> int:
    """Whole yuan ending in 9 (129, 599), the way shops price; never below 9."""
    return round(yuan) // 10 * 10 + 9


def _ean13(seq: int) -> str:
    # 69 is China's GS1 prefix; a valid check digit keeps scanners and validators happy.
    body = f"692026{seq:06d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _pick_values(rng: random.Random, dim: SpecDim) -> tuple[str, ...]:
    if dim.pick is None:
        return dim.values
    chosen = rng.sample(range(len(dim.values)), rng.randint(*dim.pick))
    # Shelf order, not draw order: S before M, 50ml before 100ml.
    return tuple(dim.values[i] for i in sorted(chosen))


def _tier_prices(scheme: tuple[tuple[int, float], ...], price: int) -> list[dict[str, int]]:
    tiers: list[dict[str, int]] = []
    last = price
    for min_quantity, factor in scheme:
        tier_price = int(price * factor) // 10 * 10
        if tier_price >= last:  # too cheap to discount meaningfully
            break
        tiers.append({"min_quantity": min_quantity, "price": tier_price})
        last = tier_price
    return tiers


def _sku_stock(rng: random.Random, sold_out: bool) -> int:
    if sold_out:
        return 0
    roll = rng.random()
    if roll < 0.08:
        return 0
    if roll < 0.2:
        return rng.randint(1, 9)  # below the usual stock warning
    return rng.randint(10, 600)


@dataclass(frozen=True)
class _PriceRules:
    base_yuan: int
    jiao: bool  # 129.9 rather than 129
    original_ratio: float | None
    member: bool
    tiers: tuple[tuple[int, float], ...]


def _price_rules(rng: random.Random, leaf: Leaf) -> _PriceRules:
    base = _shelf_price(rng.uniform(*leaf.price_yuan))
    if base > leaf.price_yuan[1]:
        base -= 10
    return _PriceRules(
        base_yuan=base,
        jiao=rng.random() < 0.3 and base + 1 <= leaf.price_yuan[1],
        original_ratio=rng.uniform(1.2, 1.8) if rng.random() < 0.85 else None,
        member=rng.random() < 0.3,
        tiers=rng.choice(TIER_SCHEMES) if leaf.tiered and rng.random() < 0.7 else (),
    )


def _plan_skus(
    rng: random.Random,
    leaf: Leaf,
    dims: tuple[tuple[str, tuple[str, ...]], ...],
    steps: tuple[float, ...],
    barcode_seq: int,
) -> tuple[SkuPlan, ...]:
    rules = _price_rules(rng, leaf)
    sold_out = rng.random() < 0.03
    base_weight = rng.randint(*leaf.weight_grams)
    skus: list[SkuPlan] = []
    for combo in cartesian(*(range(len(values)) for _, values in dims)):
        scale = 1.0 + sum(step * index for step, index in zip(steps, combo, strict=True))
        price = _shelf_price(rules.base_yuan * scale) * 100 + (90 if rules.jiao else 0)
        original = (
            math.ceil(price * rules.original_ratio / 100) * 100 if rules.original_ratio is not None else None
        )
        skus.append(
            SkuPlan(
                values=tuple(values[i] for (_, values), i in zip(dims, combo, strict=True)),
                price=price,
                original_price=original,
                member_price=int(price * 0.95) // 10 * 10 if rules.member else None,
                tier_prices=_tier_prices(rules.tiers, price),
                stock=_sku_stock(rng, sold_out),
                barcode=_ean13(barcode_seq + len(skus)),
                weight_grams=int(base_weight * scale),
            )
        )
    return tuple(skus)


def _plan_tags(rng: random.Random, created_at: datetime, domestic: bool) -> tuple[str, ...]:
    age = BASE_TIME - created_at
    tags = [NEW_TAG] if age <= timedelta(days=NEW_PRODUCT_DAYS) else []
    pool = [t for t in TAGS if t != NEW_TAG and (t != DOMESTIC_TAG or domestic)]
    wanted = rng.choice((1, 1, 2, 2, 2, 3))
    tags += rng.sample(pool, max(0, wanted - len(tags)))
    # Catalog order, so the product's search text does not depend on draw order.
    return tuple(t for t in TAGS if t in tags)


def _plan_status(rng: random.Random) -> ProductStatus:
    roll = rng.random()
    if roll < 0.025:
        return ProductStatus.DRAFT
    if roll < 0.05:
        return ProductStatus.OFF_SHELF
    return ProductStatus.ON_SALE


def _plan_media(rng: random.Random, seq: int) -> tuple[tuple[MediaKind, str], ...]:
    images = [(MediaKind.IMAGE, f"{IMAGE_HOST}/p{seq}/{i}.jpg") for i in range(rng.randint(3, 5))]
    if rng.random() < 0.06:
        images.append((MediaKind.VIDEO, f"{IMAGE_HOST}/p{seq}/video.mp4"))
    return tuple(images)


def _plan_titles(rng: random.Random, leaf: Leaf) -> list[str]:
    combos = [
        f"{style}{noun} {suffix}".strip()
        for style in leaf.styles
        for noun in leaf.nouns
        for suffix in leaf.suffixes
    ]
    rng.shuffle(combos)
    return combos[: min(rng.randint(*leaf.count), len(combos))]


def plan_products(seed: int = RANDOM_SEED) -> list[ProductPlan]:
    """The whole demo catalog, decided by `seed` alone."""
    rng = random.Random(seed)
    domestic = {b.name: b.domestic for b in BRANDS}
    plans: list[ProductPlan] = []
    barcode_seq = 1
    for key, leaf in _leaves():
        for title in _plan_titles(rng, leaf):
            spec_dims = leaf.dims or DEFAULT_DIMS
            dims = tuple((d.name, _pick_values(rng, d)) for d in spec_dims)
            skus = _plan_skus(rng, leaf, dims, tuple(d.step for d in spec_dims), barcode_seq)
            barcode_seq += len(skus)
            brand = rng.choice(leaf.brands) if rng.random() >= 0.04 else None
            created_at = BASE_TIME - timedelta(seconds=rng.randrange(HISTORY_DAYS * 86400))
            status = _plan_status(rng)
            published_at = (
                None
                if status is ProductStatus.DRAFT
                else min(BASE_TIME, created_at + timedelta(seconds=rng.randrange(2 * 86400)))
            )
            points = rng.sample(leaf.points, 2)
            seq = len(plans) + 1
            plans.append(
                ProductPlan(
                    seq=seq,
                    category=key,
                    title=title,
                    subtitle="，".join(points),
                    description=f"{title}。{'；'.join(leaf.points)}。支持七天无理由退换。",
                    brand=brand,
                    tags=_plan_tags(rng, created_at, brand is not None and domestic[brand]),
                    status=status,
                    sales_count=0
                    if status is ProductStatus.DRAFT
                    else min(int((rng.paretovariate(1.1) - 1) * 200), 120_000),
                    stock_warning=rng.choice((5, 10, 10, 10, 20)),
                    created_at=created_at,
                    published_at=published_at,
                    dims=dims,
                    skus=skus,
                    media=_plan_media(rng, seq),
                )
            )
    return plans


# ---------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------


async def _bulk(model: type[Model], rows: Sequence[Model]) -> None:
    if rows:
        await model.bulk_create(rows, batch_size=BATCH_SIZE)


async def _default_shop() -> Shop:
    shop, _ = await Shop.get_or_create(
        code=DEFAULT_SHOP_CODE,
        defaults={"name": SHOP_NAME, "created_at": BASE_TIME - timedelta(days=HISTORY_DAYS + 1)},
    )
    # Serialises concurrent seeders (e.g. several workers starting) on PostgreSQL; SQLite's single
    # writer already does.
    await Shop.filter(id=shop.id).select_for_update().first()
    return shop


async def _ensure_categories(shop_id: int) -> dict[CategoryKey, int]:
    """Ids of every demo category by name path, creating those missing (level by level for parent ids)."""
    ids: dict[CategoryKey, int] = {}
    paths: dict[CategoryKey, str] = {}
    keys = category_keys()
    for level in (1, 2, 3):
        wanted = [k for k in keys if len(k) == level]
        existing = await _category_ids(shop_id, level)
        missing = []
        for key in wanted:
            parent = key[:-1]
            if (ids.get(parent), key[-1]) in existing:
                continue
            missing.append(
                Category(
                    shop_id=shop_id,
                    parent_id=ids.get(parent),
                    name=key[-1],
                    level=level,
                    path=paths.get(parent, ""),
                    sort=_sibling_index(key),
                    icon_url=f"{IMAGE_HOST}/category/{keys.index(key) + 1}.png",
                )
            )
        if missing:
            await _bulk(Category, missing)
            existing = await _category_ids(shop_id, level)
        for key in wanted:
            ids[key] = existing[(ids.get(key[:-1]), key[-1])]
            parent_path = paths.get(key[:-1], "")
            paths[key] = f"{parent_path}/{ids[key]}" if parent_path else str(ids[key])
    return ids


async def _category_ids(shop_id: int, level: int) -> dict[tuple[int | None, str], int]:
    rows = await Category.filter(shop_id=shop_id, level=level).values_list("id", "parent_id", "name")
    return {(parent_id, name): id_ for id_, parent_id, name in rows}


def _sibling_index(key: CategoryKey) -> int:
    siblings = [k for k in category_keys() if len(k) == len(key) and k[:-1] == key[:-1]]
    return siblings.index(key)


async def _ensure_named(
    model: type[Brand] | type[Tag], shop_id: int, rows: Sequence[Brand | Tag]
) -> dict[str, int]:
    """Ids by name, creating the rows whose name the shop lacks."""
    existing: dict[str, int] = dict(await model.filter(shop_id=shop_id).values_list("name", "id"))
    missing = [row for row in rows if row.name not in existing]
    if missing:
        await _bulk(model, missing)
        existing = dict(await model.filter(shop_id=shop_id).values_list("name", "id"))
    return existing


def _search_text(plan: ProductPlan) -> str:
    root, branch, leaf = plan.category
    return product_search_text(plan.title, plan.subtitle, (leaf, branch, root), plan.brand or "", plan.tags)


async def _insert_products(
    shop_id: int, plans: list[ProductPlan], categories: dict[CategoryKey, int], brands: dict[str, int]
) -> list[int]:
    """Insert the products; their ids, in plan order."""
    await _bulk(
        Product,
        [
            Product(
                shop_id=shop_id,
                category_id=categories[p.category],
                brand_id=brands[p.brand] if p.brand else None,
                title=p.title,
                subtitle=p.subtitle,
                description=p.description,
                status=p.status,
                sales_count=p.sales_count,
                stock_warning=p.stock_warning,
                min_price=p.min_price,
                max_price=p.max_price,
                total_stock=p.total_stock,
                search_text=_search_text(p),
                created_at=p.created_at,
                published_at=p.published_at,
            )
            for p in plans
        ],
    )
    # bulk_create leaves ids unset on both SQLite and PostgreSQL. The shop had no products before (checked
    # under the shop lock) and one executemany inserts in order, so id order is plan order.
    ids = await Product.filter(shop_id=shop_id).order_by("id").values_list("id", flat=True)
    if len(ids) != len(plans):
        raise RuntimeError(f"expected {len(plans)} demo products, found {len(ids)}")
    return list(ids)


async def _insert_tags_and_media(
    plans: list[ProductPlan], product_ids: list[int], tags: dict[str, int]
) -> None:
    await _bulk(
        ProductTag,
        [
            ProductTag(product_id=pid, tag_id=tags[name])
            for p, pid in zip(plans, product_ids, strict=True)
            for name in p.tags
        ],
    )
    await _bulk(
        ProductMedia,
        [
            ProductMedia(product_id=pid, kind=kind, url=url, sort=i)
            for p, pid in zip(plans, product_ids, strict=True)
            for i, (kind, url) in enumerate(p.media)
        ],
    )


async def _insert_specs(
    shop_id: int, plans: list[ProductPlan], product_ids: list[int]
) -> dict[tuple[int, str, str], int]:
    """Create dimensions and values; value ids by (product id, dimension name, value)."""
    pairs = list(zip(plans, product_ids, strict=True))
    await _bulk(
        SpecDimension,
        [
            SpecDimension(product_id=pid, name=name, sort=i)
            for p, pid in pairs
            for i, (name, _) in enumerate(p.dims)
        ],
    )
    dim_rows = await SpecDimension.filter(product__shop_id=shop_id).values_list("id", "product_id", "name")
    dim_ids = {(pid, name): id_ for id_, pid, name in dim_rows}
    await _bulk(
        SpecValue,
        [
            SpecValue(dimension_id=dim_ids[(pid, name)], value=value, sort=i)
            for p, pid in pairs
            for name, values in p.dims
            for i, value in enumerate(values)
        ],
    )
    dims_by_id = {id_: key for key, id_ in dim_ids.items()}
    value_rows = await SpecValue.filter(dimension__product__shop_id=shop_id).values_list(
        "id", "dimension_id", "value"
    )
    return {(*dims_by_id[dim_id], value): id_ for id_, dim_id, value in value_rows}


async def _insert_skus(
    shop_id: int, plans: list[ProductPlan], product_ids: list[int], value_ids: dict[tuple[int, str, str], int]
) -> None:
    links: list[tuple[int, str, list[int]]] = []
    skus: list[Sku] = []
    for p, pid in zip(plans, product_ids, strict=True):
        for s in p.skus:
            ids = [value_ids[(pid, name, value)] for (name, _), value in zip(p.dims, s.values, strict=True)]
            key = spec_key(ids)
            links.append((pid, key, ids))
            skus.append(
                Sku(
                    product_id=pid,
                    spec_key=key,
                    price=s.price,
                    original_price=s.original_price,
                    member_price=s.member_price,
                    tier_prices=s.tier_prices,
                    stock=s.stock,
                    barcode=s.barcode,
                    weight_grams=s.weight_grams,
                    created_at=p.created_at,
                )
            )
    await _bulk(Sku, skus)
    sku_rows = await Sku.filter(product__shop_id=shop_id).values_list("id", "product_id", "spec_key")
    sku_ids = {(pid, key): id_ for id_, pid, key in sku_rows}
    await _bulk(
        SkuSpecValue,
        [SkuSpecValue(sku_id=sku_ids[(pid, key)], spec_value_id=v) for pid, key, ids in links for v in ids],
    )


async def _pin_updated_at(shop_id: int, product_ids: list[int]) -> None:
    # auto_now overwrites updated_at with the wall clock on every insert, even when set explicitly;
    # a queryset update does not, so copy the deterministic timestamps over afterwards.
    await Product.filter(shop_id=shop_id, published_at__isnull=False).update(updated_at=F("published_at"))
    await Product.filter(shop_id=shop_id, published_at__isnull=True).update(updated_at=F("created_at"))
    await Sku.filter(product_id__in=product_ids).update(updated_at=F("created_at"))


async def _write_catalog(shop_id: int, plans: list[ProductPlan]) -> None:
    categories = await _ensure_categories(shop_id)
    brands = await _ensure_named(
        Brand,
        shop_id,
        [
            Brand(shop_id=shop_id, name=b.name, logo_url=f"{IMAGE_HOST}/brand/{i}.png")
            for i, b in enumerate(BRANDS, 1)
        ],
    )
    tags = await _ensure_named(Tag, shop_id, [Tag(shop_id=shop_id, name=name) for name in TAGS])
    product_ids = await _insert_products(shop_id, plans, categories, brands)
    await _insert_tags_and_media(plans, product_ids, tags)
    value_ids = await _insert_specs(shop_id, plans, product_ids)
    await _insert_skus(shop_id, plans, product_ids, value_ids)
    await _pin_updated_at(shop_id, product_ids)


async def _counts(shop_id: int) -> dict[str, int]:
    # Scoped to the default shop (hence shops == 1) so other shops never change the answer.
    return {
        "shops": 1,
        "categories": await Category.filter(shop_id=shop_id).count(),
        "leaf_categories": await Category.filter(shop_id=shop_id, level=3).count(),
        "brands": await Brand.filter(shop_id=shop_id).count(),
        "tags": await Tag.filter(shop_id=shop_id).count(),
        "products": await Product.filter(shop_id=shop_id).count(),
        "skus": await Sku.filter(product__shop_id=shop_id).count(),
        "media": await ProductMedia.filter(product__shop_id=shop_id).count(),
    }


async def seed_demo_shop() -> dict[str, int]:
    """Fill the default shop with a deterministic demo catalog and return what it holds.

    Creates the shop if needed, then (only if it has no products yet) categories, brands, tags,
    ~390 products with specs, SKUs, tags and media, all in one transaction. Calling it again on a
    shop that already has products writes nothing. Returns counts of the default shop's shops (1),
    categories, leaf_categories, brands, tags, products, skus and media, and the member levels.
    """
    written = False
    async with in_transaction():
        shop = await _default_shop()
        if not await Product.filter(shop_id=shop.id).exists():
            await _write_catalog(shop.id, plan_products())
            written = True
        counts = await _counts(shop.id)
    if written:
        await refresh_planner_statistics()
    # The demo shop's members need levels to be priced by; ensure_default_levels is idempotent.
    await ensure_default_levels()
    counts["member_levels"] = await MemberLevel.all().count()
    return counts
