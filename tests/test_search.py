"""Keyword search: pinyin, synonyms, one-typo correction and relevance order (hot words: test_hot_words)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from time import monotonic

import pytest
from redis.asyncio import Redis

from infra.query_counter import count_queries
from models import Brand, Category, Product, ProductStatus, Shop
from services.catalog import search
from services.catalog.search import (
    KeywordMatch,
    invalidate_vocabulary,
    keyword_match,
    search_document,
    with_relevance,
)


@dataclass
class Catalog:
    shop: Shop
    leaves: dict[str, Category]
    dress: int
    """Title has 连衣裙; fewest sales."""
    beach_dress: int
    """In category 连衣裙 but not titled so; most sales."""
    skirt: int
    """Titled 裙子 (a synonym of 连衣裙), category 半身裙."""
    phone_case: int
    sneakers: int
    off_shelf: int
    """Titled with the typo 连衣群, but not on sale: it must not stop the correction."""

    @property
    def ids(self) -> list[int]:
        return [self.dress, self.beach_dress, self.skirt, self.phone_case, self.sneakers, self.off_shelf]


async def _category(
    shop: Shop, names: tuple[str, str, str], cache: dict[tuple[str, ...], Category]
) -> Category:
    parent: Category | None = None
    for level in range(1, 4):
        key = names[:level]
        if key not in cache:
            path = "" if parent is None else (f"{parent.path}/{parent.id}" if parent.path else str(parent.id))
            cache[key] = await Category.create(
                shop=shop, parent=parent, name=names[level - 1], level=level, path=path
            )
        parent = cache[key]
    assert parent is not None
    return parent


async def _product(
    shop: Shop,
    category: Category,
    chain: tuple[str, str, str],
    title: str,
    *,
    subtitle: str = "",
    brand: Brand | None = None,
    tags: tuple[str, ...] = (),
    sales: int = 0,
    status: ProductStatus = ProductStatus.ON_SALE,
) -> int:
    text = search_document(title, subtitle, *chain, brand.name if brand else "", *tags)
    product = await Product.create(
        shop=shop,
        category=category,
        brand=brand,
        title=title,
        subtitle=subtitle,
        status=status,
        sales_count=sales,
        search_text=text,
    )
    return product.id


DRESSES = ("百货", "女装", "连衣裙")
SKIRTS = ("百货", "女装", "半身裙")
PHONE = ("百货", "数码配件", "手机壳")
SHOES = ("百货", "鞋靴", "运动鞋")
HOME = ("百货", "家居", "摆件")


@pytest.fixture(scope="module")
async def catalog(database: None, redis: Redis) -> AsyncIterator[Catalog]:
    shop = await Shop.create(code=f"search-{uuid.uuid4().hex[:12]}", name="搜索测试店")
    cache: dict[tuple[str, ...], Category] = {}
    leaves = {
        chain[2]: await _category(shop, chain, cache) for chain in (DRESSES, SKIRTS, PHONE, SHOES, HOME)
    }
    brand = await Brand.create(shop=shop, name="花间集")
    catalog = Catalog(
        shop=shop,
        leaves=leaves,
        dress=await _product(
            shop,
            leaves["连衣裙"],
            DRESSES,
            "法式碎花连衣裙 夏季新款",
            subtitle="显瘦 收腰",
            brand=brand,
            tags=("新品",),
            sales=10,
        ),
        beach_dress=await _product(shop, leaves["连衣裙"], DRESSES, "夏日度假碎花长款", sales=500),
        skirt=await _product(shop, leaves["半身裙"], SKIRTS, "百褶半身裙子 春秋", sales=300),
        phone_case=await _product(shop, leaves["手机壳"], PHONE, "iPhone 15 磨砂手机壳", sales=50),
        sneakers=await _product(shop, leaves["运动鞋"], SHOES, "男子轻便透气运动鞋", sales=80),
        off_shelf=await _product(
            shop, leaves["连衣裙"], DRESSES, "连衣群 旧款", sales=900, status=ProductStatus.OFF_SHELF
        ),
    )
    # The word list may have been cached by an earlier test, before these products existed.
    invalidate_vocabulary()
    yield catalog
    invalidate_vocabulary()


async def _search(keyword: str, catalog: Catalog) -> tuple[KeywordMatch, list[int]]:
    """The caller's query, as product listing runs it, limited to this module's products."""
    match = await keyword_match(keyword)
    assert match is not None
    queryset = Product.filter(match.condition, status=ProductStatus.ON_SALE, id__in=catalog.ids)
    rows = await with_relevance(queryset, match).order_by("-relevance", "-sales_count", "-id")
    return match, [row.id for row in rows]


async def _corrected(keyword: str) -> bool:
    match = await keyword_match(keyword)
    assert match is not None
    return match.corrected


async def test_blank_keyword_is_no_search() -> None:
    assert await keyword_match("") is None
    assert await keyword_match(" \u3000 ") is None


@pytest.mark.parametrize("keyword", ["连衣裙", "lianyiqun", "lyq", " LianYi Qun ", "ｌｙｑ"])
async def test_chinese_pinyin_and_initials_find_the_dress(catalog: Catalog, keyword: str) -> None:
    match, found = await _search(keyword, catalog)
    assert not match.corrected
    # Both products in the 连衣裙 category; the one with it in the title first despite fewer sales.
    assert found[0] == catalog.dress
    assert catalog.beach_dress in found
    assert catalog.phone_case not in found
    assert catalog.off_shelf not in found


async def test_synonym_finds_products_listed_under_another_name(catalog: Catalog) -> None:
    match, found = await _search("手机套", catalog)
    assert "手机壳" in match.terms
    assert found == [catalog.phone_case]

    match, found = await _search("裙子", catalog)
    assert match.terms[0] == "裙子"
    assert "连衣裙" in match.terms
    # 裙子 itself is in the skirt's title; the dresses come through their synonym.
    assert found == [catalog.skirt, catalog.dress, catalog.beach_dress]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("连衣群", "连衣裙"),  # substitution (and a homophone)
        ("联衣群", "连衣裙"),  # two wrong characters, but the same sound
        ("lianyiqn", "lianyiqun"),  # deletion
        ("lainyiqun", "lianyiqun"),  # transposition
        ("lianyiquun", "lianyiqun"),  # insertion
    ],
)
async def test_one_typo_is_corrected(catalog: Catalog, typo: str, meant: str) -> None:
    match, found = await _search(typo, catalog)
    assert match.corrected
    assert match.keyword == typo
    assert meant in match.terms
    assert typo not in match.terms
    assert catalog.dress in found
    assert found[0] == catalog.dress
    assert catalog.off_shelf not in found


async def test_typo_in_pinyin_of_a_category(catalog: Catalog) -> None:
    match, found = await _search("yundongxei", catalog)
    assert match.corrected
    assert match.terms == ("yundongxie",)
    assert found == [catalog.sneakers]


async def test_nonsense_and_short_keywords_find_nothing(catalog: Catalog) -> None:
    match, found = await _search("qzxwvkjhpt", catalog)
    assert found == []
    assert not match.corrected
    assert match.terms == ("qzxwvkjhpt",)
    assert not await Product.filter(match.condition, status=ProductStatus.ON_SALE).exists()

    # One edit from 衣裙, but two characters are too few to guess from.
    match, found = await _search("衣群", catalog)
    assert not match.corrected
    assert found == []


async def test_relevance_ranks_title_then_synonym_then_elsewhere(catalog: Catalog) -> None:
    match = await keyword_match("连衣裙")
    assert match is not None
    queryset = with_relevance(
        Product.filter(match.condition, status=ProductStatus.ON_SALE, id__in=catalog.ids), match
    ).order_by("-relevance", "-sales_count", "-id")
    rows = await queryset
    # Sales alone would give beach_dress (500), skirt (300), dress (10).
    assert [(row.id, row.relevance) for row in rows] == [
        (catalog.dress, search.RELEVANCE_TITLE),
        (catalog.skirt, search.RELEVANCE_SYNONYM_IN_TITLE),
        (catalog.beach_dress, search.RELEVANCE_OTHER),
    ]
    # Pagination keeps the order: the database sorts, not Python.
    page = await queryset.offset(1).limit(1)
    assert [row.id for row in page] == [catalog.skirt]


async def test_query_counts_and_vocabulary_cache(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    async def queries(keyword: str, *, corrected: bool) -> int:
        with count_queries() as counted:
            assert await _corrected(keyword) is corrected
        return counted.count

    invalidate_vocabulary()
    # A Han keyword that matches needs no word list: just the existence check.
    assert await queries("连衣裙", corrected=False) == 1
    # A pinyin keyword loads it once, to rank titles by the Han words it stands for.
    assert await queries("lianyiqun", corrected=False) == 2
    assert await queries("lyq", corrected=False) == 1
    # A typo needs it too; loaded once, it serves later typos without a query.
    assert await queries("连衣群", corrected=True) == 1
    invalidate_vocabulary()
    assert await queries("lainyiqun", corrected=True) == 2
    assert await queries("yundongxei", corrected=True) == 1

    added: list[int] = []
    try:
        added.append(await _product(catalog.shop, catalog.leaves["摆件"], HOME, "青瓷莲纹茶盏"))
        # A product added since the load is no correction target while the cached list is fresh...
        assert not await _corrected("莲纹茶展")
        # ...but is 60 seconds after the load, in every process,
        later = monotonic() + search.VOCABULARY_TTL_SECONDS + 1
        monkeypatch.setattr(search, "monotonic", lambda: later)
        assert await _found("莲纹茶展", catalog) == ("莲纹茶盏", added[:1])

        # ...and at once in this one when the catalog write path invalidates the list.
        added.append(await _product(catalog.shop, catalog.leaves["摆件"], HOME, "黄铜鎏金烛台"))
        assert not await _corrected("鎏金竹台")
        invalidate_vocabulary()
        assert await _found("鎏金竹台", catalog) == ("鎏金烛台", added[1:])
    finally:
        await Product.filter(id__in=added).delete()
        invalidate_vocabulary()


async def _found(keyword: str, catalog: Catalog) -> tuple[str, list[int]]:
    """What a corrected keyword was taken for, and this shop's products it finds."""
    match = await keyword_match(keyword)
    assert match is not None and match.corrected
    (term,) = match.terms
    found = await Product.filter(match.condition, shop_id=catalog.shop.id).values_list("id", flat=True)
    return term, list(found)
