"""The demo shop seed: shape, internal consistency, determinism and idempotency of the data."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

from demo.seed import BASE_TIME, HISTORY_DAYS, plan_products, seed_demo_shop
from models import (
    DEFAULT_SHOP_CODE,
    MAX_CATEGORY_LEVEL,
    Brand,
    Category,
    MediaKind,
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
from services.catalog.search import search_document

COMMON_GOODS = ("连衣裙", "运动鞋", "面霜", "手机壳")


async def _shop_id() -> int:
    return (await Shop.get(code=DEFAULT_SHOP_CODE)).id


async def _skus_by_product(shop_id: int) -> dict[int, list[tuple[int, str, int, int]]]:
    rows = await Sku.filter(product__shop_id=shop_id).values_list(
        "id", "product_id", "spec_key", "price", "stock"
    )
    skus: dict[int, list[tuple[int, str, int, int]]] = defaultdict(list)
    for sku_id, product_id, key, price, stock in rows:
        skus[product_id].append((sku_id, key, price, stock))
    return skus


async def test_counts_meet_thresholds(seeded: None) -> None:
    counts = await seed_demo_shop()

    assert counts["shops"] == 1
    assert counts["products"] >= 300
    assert counts["leaf_categories"] >= 30
    assert counts["categories"] > counts["leaf_categories"]
    assert counts["brands"] >= 20
    assert counts["tags"] >= 15
    assert 2000 <= counts["skus"] <= 3500
    assert counts["media"] >= 3 * counts["products"]


async def test_category_tree_is_three_levels_with_paths_matching_parents(seeded: None) -> None:
    shop_id = await _shop_id()
    rows = await Category.filter(shop_id=shop_id).values_list("id", "parent_id", "level", "path")
    by_id = {id_: (parent_id, level, path) for id_, parent_id, level, path in rows}

    for parent_id, level, path in by_id.values():
        if level == 1:
            assert parent_id is None
            assert path == ""
            continue
        _, parent_level, parent_path = by_id[parent_id]
        assert level == parent_level + 1
        assert path == (f"{parent_path}/{parent_id}" if parent_path else str(parent_id))
    assert max(level for _, level, _ in by_id.values()) == MAX_CATEGORY_LEVEL
    # Depth is exactly 3 everywhere: every root and every level-2 node has children.
    with_children = {parent_id for parent_id, _, _ in by_id.values()}
    assert all(id_ in with_children for id_, (_, level, _) in by_id.items() if level < MAX_CATEGORY_LEVEL)

    used = set(await Product.filter(shop_id=shop_id).values_list("category_id", flat=True))
    assert all(by_id[category_id][1] == MAX_CATEGORY_LEVEL for category_id in used)
    assert len(used) >= 30


async def test_common_goods_appear_in_titles_of_their_category(seeded: None) -> None:
    shop_id = await _shop_id()
    for word in COMMON_GOODS:
        categories = await Product.filter(shop_id=shop_id, title__contains=word).values_list(
            "category__name", flat=True
        )
        assert len(categories) >= 5, word
        assert set(categories) == {word}, word


async def test_denormalised_prices_and_stock_match_skus(seeded: None) -> None:
    shop_id = await _shop_id()
    skus = await _skus_by_product(shop_id)
    products = await Product.filter(shop_id=shop_id).values_list(
        "id", "min_price", "max_price", "total_stock"
    )

    for product_id, min_price, max_price, total_stock in products:
        prices = [price for _, _, price, _ in skus[product_id]]
        assert prices, product_id
        assert min_price == min(prices), product_id
        assert max_price == max(prices), product_id
        assert total_stock == sum(stock for _, _, _, stock in skus[product_id]), product_id


async def test_spec_keys_match_links_and_combinations_are_unique(seeded: None) -> None:
    shop_id = await _shop_id()
    skus = await _skus_by_product(shop_id)
    dimension_product = dict(
        await SpecDimension.filter(product__shop_id=shop_id).values_list("id", "product_id")
    )
    value_dimension = dict(
        await SpecValue.filter(dimension__product__shop_id=shop_id).values_list("id", "dimension_id")
    )
    links: dict[int, list[int]] = defaultdict(list)
    for sku_id, value_id in await SkuSpecValue.filter(sku__product__shop_id=shop_id).values_list(
        "sku_id", "spec_value_id"
    ):
        links[sku_id].append(value_id)
    dimensions_of: dict[int, set[int]] = defaultdict(set)
    for dimension_id, product_id in dimension_product.items():
        dimensions_of[product_id].add(dimension_id)

    for product_id, product_skus in skus.items():
        keys = [key for _, key, _, _ in product_skus]
        assert len(keys) == len(set(keys)), product_id
        combinations = set()
        for sku_id, key, _, _ in product_skus:
            value_ids = links[sku_id]
            # Numeric order: "9-12", not the string order "12-9".
            assert key == "-".join(str(v) for v in sorted(value_ids)), sku_id
            dimensions = [value_dimension[v] for v in value_ids]
            # One value per dimension of its own product, covering all of them.
            assert sorted(dimensions) == sorted(dimensions_of[product_id]), sku_id
            combinations.add(frozenset(value_ids))
        assert len(combinations) == len(product_skus), product_id


async def _snapshot(shop_id: int) -> list[object]:
    return [
        await Category.filter(shop_id=shop_id).order_by("id").values_list("id", "name", "path"),
        await Product.filter(shop_id=shop_id)
        .order_by("id")
        .values_list("id", "title", "min_price", "total_stock", "created_at", "updated_at"),
        await Sku.filter(product__shop_id=shop_id).order_by("id").values_list("id", "spec_key", "updated_at"),
        await ProductTag.filter(product__shop_id=shop_id).count(),
        await SkuSpecValue.filter(sku__product__shop_id=shop_id).count(),
    ]


async def test_second_seed_changes_nothing(seeded: None) -> None:
    shop_id = await _shop_id()
    before = await _snapshot(shop_id)
    first = await seed_demo_shop()

    second = await seed_demo_shop()

    assert second == first
    assert await _snapshot(shop_id) == before
    assert await Shop.filter(code=DEFAULT_SHOP_CODE).count() == 1


async def test_search_text_is_the_search_document_with_pinyin(seeded: None) -> None:
    shop_id = await _shop_id()
    categories = {
        id_: (name, parent_id)
        for id_, name, parent_id in await Category.filter(shop_id=shop_id).values_list(
            "id", "name", "parent_id"
        )
    }
    brands = dict(await Brand.filter(shop_id=shop_id).values_list("id", "name"))
    tags = dict(await Tag.filter(shop_id=shop_id).values_list("id", "name"))
    tag_ids: dict[int, list[int]] = defaultdict(list)
    for product_id, tag_id in await ProductTag.filter(product__shop_id=shop_id).values_list(
        "product_id", "tag_id"
    ):
        tag_ids[product_id].append(tag_id)
    products = await Product.filter(shop_id=shop_id).values_list(
        "id", "title", "subtitle", "category_id", "brand_id", "search_text"
    )

    for product_id, title, subtitle, category_id, brand_id, search_text in products:
        leaf, parent_id = categories[category_id]
        parent, root_id = categories[parent_id]
        root, _ = categories[root_id]
        tag_names = [tags[t] for t in sorted(tag_ids[product_id])]
        brand = brands[brand_id] if brand_id else ""
        assert search_text == search_document(title, subtitle, leaf, parent, root, brand, *tag_names)

    dress = next(text for _, title, *_, text in products if "连衣裙" in title)
    assert "lianyiqun" in dress
    assert "lyq" in dress


async def test_catalog_looks_like_a_real_shop(seeded: None) -> None:
    shop_id = await _shop_id()
    products = await Product.filter(shop_id=shop_id).values(
        "id", "status", "published_at", "created_at", "brand_id", "total_stock", "sales_count"
    )
    statuses = Counter(p["status"] for p in products)
    assert statuses[ProductStatus.ON_SALE] >= 0.9 * len(products)
    assert statuses[ProductStatus.DRAFT] >= 2
    assert statuses[ProductStatus.OFF_SHELF] >= 2
    assert all(p["published_at"] for p in products if p["status"] == ProductStatus.ON_SALE)
    oldest = BASE_TIME - timedelta(days=HISTORY_DAYS)
    assert all(oldest <= p["created_at"] <= BASE_TIME for p in products)
    assert len({p["created_at"] for p in products}) > 0.9 * len(products)
    assert 3 <= sum(p["brand_id"] is None for p in products) < 0.1 * len(products)
    assert sum(p["total_stock"] == 0 for p in products) >= 3
    assert len({p["sales_count"] for p in products}) > 100

    tag_counts = Counter(
        await ProductTag.filter(product__shop_id=shop_id).values_list("product_id", flat=True)
    )
    assert all(1 <= tag_counts[p["id"]] <= 3 for p in products)

    skus = await Sku.filter(product__shop_id=shop_id).values(
        "price", "original_price", "member_price", "tier_prices", "stock", "barcode", "weight_grams",
        "product__stock_warning",
    )  # fmt: skip
    discounted = [s for s in skus if s["original_price"] is not None]
    assert len(discounted) > 0.7 * len(skus)
    assert all(s["original_price"] > s["price"] for s in discounted)
    members = [s for s in skus if s["member_price"] is not None]
    assert members
    assert all(s["member_price"] < s["price"] for s in members)
    tiered = [s for s in skus if s["tier_prices"]]
    assert tiered
    for s in tiered:
        quantities = [t["min_quantity"] for t in s["tier_prices"]]
        assert quantities == sorted(set(quantities))
        assert quantities[0] >= 2
        assert all(t["price"] < s["price"] for t in s["tier_prices"])
    assert any(s["stock"] == 0 for s in skus)
    assert any(0 < s["stock"] < s["product__stock_warning"] for s in skus)
    barcodes = [s["barcode"] for s in skus]
    assert all(len(b) == 13 and b.isdigit() for b in barcodes)
    assert len(set(barcodes)) == len(barcodes)
    assert all(s["weight_grams"] > 0 for s in skus)

    media: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for product_id, kind, sort in await ProductMedia.filter(product__shop_id=shop_id).values_list(
        "product_id", "kind", "sort"
    ):
        media[product_id].append((kind, sort))
    for p in products:
        items = sorted(media[p["id"]], key=lambda m: m[1])
        assert [sort for _, sort in items] == list(range(len(items)))
        assert 3 <= sum(kind == MediaKind.IMAGE for kind, _ in items) <= 5
    assert any(kind == MediaKind.VIDEO for items in media.values() for kind, _ in items)


async def test_plan_is_deterministic_and_is_what_was_stored(seeded: None) -> None:
    plan = plan_products()
    assert plan == plan_products()

    shop_id = await _shop_id()
    stored = (
        await Product.filter(shop_id=shop_id)
        .order_by("id")
        .limit(len(plan))
        .values_list("title", "min_price", "created_at", "published_at", "updated_at")
    )
    # updated_at too: auto_now stamps the wall clock on insert unless the seed pins it afterwards.
    assert stored == [
        (p.title, p.min_price, p.created_at, p.published_at, p.published_at or p.created_at) for p in plan
    ]
    sku_times = await Sku.filter(product__shop_id=shop_id).values_list("created_at", "updated_at")
    assert all(created == updated <= BASE_TIME for created, updated in sku_times)
