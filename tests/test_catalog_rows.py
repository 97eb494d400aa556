"""Catalog reads build plain rows in SQL (loaders/catalog.py, loaders/sql.py) instead of ORM instances: for the
whole demo catalog (brandless, unpublished and off-shelf products, member, tier and missing struck-through
prices) every loader answers exactly what the ORM queries it replaced answer, value for value and type for
type, on each backend."""

from __future__ import annotations

from typing import Any

from loaders.catalog import (
    BRAND_ROWS,
    MEDIA_ROWS,
    NOT_READY,
    PRODUCT_ROWS,
    SKU_ROWS,
    TAG_ROWS,
    CatalogLoaders,
)
from loaders.sql import Rows
from models import Brand, Product, ProductMedia, ProductTag, Sku, SkuSpecValue, SpecValue, Tag


def _same(model_object: Any, row: Any, rows: Rows) -> None:
    for name in rows.names:
        expected, got = getattr(model_object, name), getattr(row, name)
        assert (got, type(got), str(got)) == (expected, type(expected), str(expected)), (rows.row_class, name)


async def test_the_demo_catalog_has_the_awkward_cases(seeded: None) -> None:
    # What makes the comparisons below worth running.
    assert await Product.filter(brand_id=None).exists()
    assert await Product.filter(published_at=None).exists()
    assert await Product.exclude(status="ON_SALE").exists()
    assert await Sku.exclude(member_price=None).exists()
    assert await Sku.filter(original_price=None).exists()
    assert any(sku.tier_prices for sku in await Sku.all())


async def test_rows_by_id_hold_what_the_models_hold(seeded: None) -> None:
    loaders = CatalogLoaders()
    products = await Product.all().order_by("id")
    ids = [p.id for p in products]
    for product, row in zip(products, await loaders.product.load_many(ids), strict=True):
        _same(product, row, PRODUCT_ROWS)
    skus = await Sku.all().order_by("id")
    for sku, row in zip(skus, await loaders.sku.load_many([s.id for s in skus]), strict=True):
        _same(sku, row, SKU_ROWS)
    for model, loader, rows in ((Brand, loaders.brand, BRAND_ROWS), (Tag, loaders.tag, TAG_ROWS)):
        expected = await model.all().order_by("id")
        got = await loader.load_many([m.id for m in expected])
        for model_object, row in zip(expected, got, strict=True):
            _same(model_object, row, rows)
    assert await loaders.product.load(10**9) is None


async def test_categories_hold_what_the_models_hold(seeded: None) -> None:
    from loaders.catalog import CATEGORY_ROWS
    from models import Category

    categories = await Category.all().order_by("level", "sort", "id")
    leaves = [c for c in categories if c.level == 3][:5]
    loaders = CatalogLoaders()
    # A batch of leaves brings their parents and grandparents along, held for breadcrumbs.
    for leaf, row in zip(leaves, await loaders.category.load_many([c.id for c in leaves]), strict=True):
        _same(leaf, row, CATEGORY_ROWS)
        for ancestor in (int(i) for i in leaf.path.split("/") if i):
            assert loaders.category.ready(ancestor) is not NOT_READY
    everything = await CatalogLoaders().category.all()
    assert len(everything) == len(categories)
    for category, row in zip(categories, everything, strict=True):
        _same(category, row, CATEGORY_ROWS)


def _by_product(pairs: list[tuple[int, Any]]) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = {}
    for product_id, value in pairs:
        grouped.setdefault(product_id, []).append(value)
    return grouped


async def test_rows_by_product_hold_what_the_models_hold(seeded: None) -> None:
    loaders = CatalogLoaders()
    ids = [p.id for p in await Product.all().order_by("id")]
    # The ORM queries the loaders ran before, for the whole catalog at once.
    all_skus = _by_product([(s.product_id, s) for s in await Sku.all().order_by("product_id", "id")])
    all_media = _by_product(
        [(m.product_id, m) for m in await ProductMedia.all().order_by("product_id", "sort", "id")]
    )
    links = await ProductTag.all().select_related("tag").order_by("tag_id")
    all_tags = _by_product([(link.product_id, link.tag) for link in links])
    values = (
        await SpecValue.all()
        .select_related("dimension")
        .order_by("dimension__product_id", "dimension__sort", "dimension_id", "sort", "id")
    )
    dimensions: dict[int, tuple[int, str, list[str]]] = {}
    for value in values:
        entry = dimensions.setdefault(
            value.dimension_id, (value.dimension.product_id, value.dimension.name, [])
        )
        entry[2].append(value.value)
    all_dimensions = _by_product([(pid, (name, vals)) for pid, name, vals in dimensions.values()])

    skus = await loaders.skus_by_product.load_many(ids)
    media = await loaders.media_by_product.load_many(ids)
    tags = await loaders.tags_by_product.load_many(ids)
    assert await loaders.spec_dimensions_by_product.load_many(ids) == [all_dimensions.get(i, []) for i in ids]
    for index, product_id in enumerate(ids):
        for expected, got, rows in (
            (all_skus, skus, SKU_ROWS),
            (all_media, media, MEDIA_ROWS),
            (all_tags, tags, TAG_ROWS),
        ):
            assert len(got[index]) == len(expected.get(product_id, [])), (rows.row_class, product_id)
            for model_object, row in zip(expected.get(product_id, []), got[index], strict=True):
                _same(model_object, row, rows)
    assert any(tags) and any(media) and any(skus)


async def test_spec_values_of_every_sku_match_the_models(seeded: None) -> None:
    sku_ids = [s.id for s in await Sku.all().order_by("id")]
    got = await CatalogLoaders().spec_values_by_sku.load_many(sku_ids)
    links = (
        await SkuSpecValue.all()
        .select_related("spec_value__dimension")
        .order_by("sku_id", "spec_value__dimension__sort", "spec_value__dimension_id")
    )
    expected: dict[int, list[tuple[str, str]]] = {}
    for link in links:
        expected.setdefault(link.sku_id, []).append((link.spec_value.dimension.name, link.spec_value.value))
    assert any(got)
    assert got == [expected.get(i, []) for i in sku_ids]


LISTING = """
query Listing($skipBrand: Boolean!) {
  products(first: 20, sort: SALES) {
    edges { cursor node { id title price { min max } media { url } ...More brand @skip(if: $skipBrand) { name } } }
  }
}
fragment More on Product { tags { name } skus { id price stock specValues { name value } } category { name } }
"""


async def test_a_listing_resolves_its_products_without_a_task_each(seeded: None, runtime: object) -> None:
    # The root resolver loads what the selection reads (fragments and @skip minded) before the fields run, so
    # they resolve synchronously: a handful of tasks for the page instead of several per product.
    from infra.query_counter import count_queries
    from schema.context import make_context
    from schema.root import schema
    from tests.task_counter import tasks_made

    answers = {}
    counts = {}
    for skip in (False, True):
        with tasks_made() as made, count_queries() as counted:
            result = await schema.execute(
                LISTING, variable_values={"skipBrand": skip}, context_value=make_context()
            )
        assert result.errors is None, result.errors
        # Resolving fields as coroutines made 100+ (and asyncpg released each statement's connection in a task).
        assert len(made) <= 30, len(made)
        answers[skip] = result.data
        counts[skip] = counted.count
    nodes = [edge["node"] for edge in answers[False]["products"]["edges"]]
    assert len(nodes) == 20 and all(node["skus"] and node["category"] for node in nodes)
    assert any(node["brand"] for node in nodes) and any(
        node["specValues"] for n in nodes for node in n["skus"]
    )
    # products, skus with their spec values (one statement on the fast path, schema/fast), media, tags,
    # categories, brands; without brand one statement fewer.
    assert counts == {False: 6, True: 5}


async def test_a_listing_without_a_keyword_answers_what_the_orm_answers(seeded: None) -> None:
    # Without a keyword the page and its count are fixed SQL (services/catalog/listing.py), not the queryset
    # Tortoise used to build: for each filter and order, the same products in the same order, value for value
    # and type for type, and the same count, on each backend.
    from itertools import product as combinations

    from tortoise.expressions import Q

    from loaders.catalog import PRODUCT_FIELDS
    from models import Category
    from services.catalog.listing import ProductFilter, ProductSort, list_products

    top = await Category.filter(level=1).order_by("sort", "id").first()
    leaf = await Category.filter(level=3).order_by("sort", "id").first()
    tag = await Tag.all().order_by("id").first()
    brand = await Brand.all().order_by("id").first()
    assert top and leaf and tag and brand
    filters = [
        ProductFilter(),
        ProductFilter(include_unpublished=True),
        ProductFilter(category_id=top.id),
        ProductFilter(category_id=leaf.id, include_unpublished=True),
        ProductFilter(tag_ids=(tag.id, tag.id + 1)),
        ProductFilter(brand_id=brand.id, in_stock=True),
        ProductFilter(price_min=1000, price_max=20000, in_stock=False),
        ProductFilter(category_id=top.id, tag_ids=(tag.id,), price_min=500),
    ]
    orders = {
        ProductSort.SALES: ("-sales_count", "-id"),
        ProductSort.PRICE_ASC: ("min_price", "id"),
        ProductSort.PRICE_DESC: ("-min_price", "-id"),
        ProductSort.NEWEST: ("-published_at", "-id"),
    }
    seen = 0
    for listing_filter, (sort, ordering), offset in combinations(filters, orders.items(), (0, 7)):
        expected = Product.all()
        if not listing_filter.include_unpublished:
            expected = expected.filter(status="ON_SALE")
        if listing_filter.category_id is not None:
            c = listing_filter.category_id
            subtree = await Category.filter(
                Q(id=c) | Q(path=str(c)) | Q(path__startswith=f"{c}/") | Q(path__endswith=f"/{c}")
            ).values_list("id", flat=True)
            expected = expected.filter(category_id__in=list(subtree))
        if listing_filter.tag_ids:
            tagged = await ProductTag.filter(tag_id__in=listing_filter.tag_ids).values_list(
                "product_id", flat=True
            )
            expected = expected.filter(id__in=list(tagged))
        if listing_filter.brand_id is not None:
            expected = expected.filter(brand_id=listing_filter.brand_id)
        if listing_filter.price_min is not None:
            expected = expected.filter(min_price__gte=listing_filter.price_min)
        if listing_filter.price_max is not None:
            expected = expected.filter(min_price__lte=listing_filter.price_max)
        if listing_filter.in_stock is not None:
            expected = (
                expected.filter(total_stock__gt=0)
                if listing_filter.in_stock
                else expected.filter(total_stock=0)
            )
        models = await expected.order_by(*ordering).offset(offset).limit(11)
        page = await list_products(listing_filter, sort, offset, 10, PRODUCT_FIELDS)
        assert len(page.products) == len(models[:10]), (listing_filter, sort, offset)
        assert page.has_next is (len(models) > 10)
        assert await page.total_count() == await expected.count()
        for model_object, values in zip(models, page.products, strict=False):
            for name, got in zip(PRODUCT_FIELDS, values, strict=True):
                wanted = getattr(model_object, name)
                assert (got, type(got), str(got)) == (wanted, type(wanted), str(wanted)), (
                    listing_filter,
                    name,
                )
        seen += len(page.products)
    assert seen > 200


async def test_skus_with_spec_values_hold_what_the_two_loaders_hold(seeded: None) -> None:
    # One statement for SKUs and their spec values (two texts on PostgreSQL: one product, several): the same
    # SKU rows and (dimension, value) pairs, in the same order, as the SKU and spec-value loaders read apart.
    ids = [p.id for p in await Product.all().order_by("id")]
    for wanted in (ids, ids[:20], ids[7:8]):
        combined = CatalogLoaders()
        await combined.skus_with_spec_values.fetch_many(wanted)
        apart = CatalogLoaders()
        skus = await apart.skus_by_product.load_many(wanted)
        for product_id, expected in zip(wanted, skus, strict=True):
            got = combined.skus_by_product.ready(product_id)
            assert got == expected, product_id
            values = await apart.spec_values_by_sku.load_many([s.id for s in expected])
            assert [combined.spec_values_by_sku.ready(s.id) for s in expected] == values, product_id
        assert any(combined.spec_values_by_sku.ready(s.id) for group in skus for s in group)
