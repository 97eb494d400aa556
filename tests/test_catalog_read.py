"""A shopper browses the demo shop: product page, listings, filters, sorts, pagination, and no N+1."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from infra.query_counter import count_queries
from infra.settings import Settings
from models import Category, Product, ProductStatus, Sku
from schema.context import make_context
from schema.node import encode_id
from schema.root import schema
from tests.graphql_client import gql

PRODUCT_PAGE = """
query ProductPage($id: ID!) {
  product(id: $id) { id title subtitle price { min max }
    skus { id price originalPrice stock specValues { name value } } category { name } tags { name } }
}
"""

RICH_LISTING = """
query Listing($first: Int!) {
  products(first: $first) {
    totalCount
    edges { cursor node {
      id title price { min max }
      skus { id price stock specValues { name value } }
      category { name breadcrumbs { id name } }
      brand { name } tags { name } media { url kind }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

LISTING = """
query Listing($first: Int, $after: String, $filter: ProductFilter, $sort: ProductSort) {
  products(first: $first, after: $after, filter: $filter, sort: $sort) {
    totalCount
    edges { cursor node { id title salesCount totalStock price { min max } } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}
"""


async def _execute(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    result = await schema.execute(query, variable_values=variables, context_value=make_context())
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


async def test_listing_query_count_is_flat_and_at_most_seven(seeded: None, runtime: object) -> None:
    counts = {}
    for first in (5, 50):
        with count_queries() as counter:
            data = await _execute(RICH_LISTING, {"first": first})
        assert len(data["products"]["edges"]) == first
        counts[first] = counter.count
    assert counts[5] == counts[50], counts
    assert counts[50] <= 7, counts  # SKUs and their spec values are one statement (schema/fast)


async def test_product_page_query_matches_the_database(seeded: None, client: httpx.AsyncClient) -> None:
    product = (
        await Product.filter(status=ProductStatus.ON_SALE, title__contains="连衣裙").order_by("id").first()
    )
    assert product is not None
    skus = await Sku.filter(product_id=product.id).order_by("id")
    body = await gql(client, PRODUCT_PAGE, {"id": encode_id("Product", product.id)})
    page = body["data"]["product"]
    assert page["title"] == product.title
    assert page["price"] == {"min": min(s.price for s in skus), "max": max(s.price for s in skus)}
    assert [s["stock"] for s in page["skus"]] == [s.stock for s in skus]
    assert [s["originalPrice"] for s in page["skus"]] == [s.original_price for s in skus]
    assert all(len(s["specValues"]) >= 1 for s in page["skus"])
    combos = {tuple((v["name"], v["value"]) for v in s["specValues"]) for s in page["skus"]}
    assert len(combos) == len(skus), "every SKU is a distinct spec combination"
    assert page["category"]["name"] == (await Category.get(id=product.category_id)).name


async def test_breadcrumbs_walk_from_the_root(seeded: None, client: httpx.AsyncClient) -> None:
    leaf = await Category.filter(level=3).order_by("id").first()
    assert leaf is not None
    body = await gql(
        client,
        "query($id: ID!) { category(id: $id) { breadcrumbs { name level } } }",
        {"id": encode_id("Category", leaf.id)},
    )
    crumbs = body["data"]["category"]["breadcrumbs"]
    assert [c["level"] for c in crumbs] == [1, 2, 3]
    assert crumbs[-1]["name"] == leaf.name


async def test_category_tree_has_three_levels(seeded: None, client: httpx.AsyncClient) -> None:
    body = await gql(
        client, "{ categories { name level children { level children { level children { id } } } } }"
    )
    roots = body["data"]["categories"]
    assert roots and all(r["level"] == 1 for r in roots)
    leaves = [leaf for r in roots for mid in r["children"] for leaf in mid["children"]]
    assert len(leaves) >= 30
    assert all(leaf["level"] == 3 and leaf["children"] == [] for leaf in leaves)


async def test_pages_walk_the_whole_listing_without_overlap(seeded: None, client: httpx.AsyncClient) -> None:
    root = await Category.filter(level=1).order_by("id").first()
    assert root is not None
    filter_ = {"categoryId": encode_id("Category", root.id)}
    seen: list[str] = []
    after = None
    total = None
    while True:
        body = await gql(client, LISTING, {"first": 7, "after": after, "filter": filter_, "sort": "NEWEST"})
        conn = body["data"]["products"]
        total = conn["totalCount"]
        seen += [e["node"]["id"] for e in conn["edges"]]
        assert conn["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == total
    leaf_ids = await Category.filter(level=3, path__startswith=f"{root.id}/").values_list("id", flat=True)
    expected = await Product.filter(status=ProductStatus.ON_SALE, category_id__in=list(leaf_ids)).count()
    assert total == expected > 0


async def test_sorts_order_the_listing(seeded: None, client: httpx.AsyncClient) -> None:
    async def nodes(sort: str) -> list[dict[str, Any]]:
        body = await gql(client, LISTING, {"first": 30, "sort": sort})
        return [e["node"] for e in body["data"]["products"]["edges"]]

    by_sales = [n["salesCount"] for n in await nodes("SALES")]
    assert by_sales == sorted(by_sales, reverse=True)
    by_price_up = [n["price"]["min"] for n in await nodes("PRICE_ASC")]
    assert by_price_up == sorted(by_price_up)
    by_price_down = [n["price"]["min"] for n in await nodes("PRICE_DESC")]
    assert by_price_down == sorted(by_price_down, reverse=True)
    newest = await Product.filter(status=ProductStatus.ON_SALE).order_by("-published_at", "-id").first()
    assert newest is not None
    assert (await nodes("NEWEST"))[0]["id"] == encode_id("Product", newest.id)


async def test_filters_narrow_the_listing(seeded: None, client: httpx.AsyncClient) -> None:
    body = await gql(client, LISTING, {"first": 100, "filter": {"priceMin": 10000, "priceMax": 20000}})
    prices = [e["node"]["price"]["min"] for e in body["data"]["products"]["edges"]]
    assert prices and all(10000 <= p <= 20000 for p in prices)

    in_stock = await gql(client, LISTING, {"first": 1, "filter": {"inStock": True}})
    out_of_stock = await gql(client, LISTING, {"first": 100, "filter": {"inStock": False}})
    on_sale = await Product.filter(status=ProductStatus.ON_SALE).count()
    sold_out = out_of_stock["data"]["products"]
    assert sold_out["totalCount"] >= 1, "the demo shop has sold-out products"
    assert all(e["node"]["totalStock"] == 0 for e in sold_out["edges"])
    assert in_stock["data"]["products"]["totalCount"] + sold_out["totalCount"] == on_sale


async def test_tag_and_brand_filters(seeded: None, client: httpx.AsyncClient) -> None:
    tags = (await gql(client, "{ tags { id name } }"))["data"]["tags"]
    hot = next(t for t in tags if t["name"] == "热卖")
    body = await gql(
        client,
        "query($f: ProductFilter) { products(first: 50, filter: $f) { edges { node { tags { name } } } } }",
        {"f": {"tagIds": [hot["id"]]}},
    )
    edges = body["data"]["products"]["edges"]
    assert edges and all(any(t["name"] == "热卖" for t in e["node"]["tags"]) for e in edges)

    brands = (await gql(client, "{ brands { id name } }"))["data"]["brands"]
    brand = brands[0]
    body = await gql(
        client,
        "query($f: ProductFilter) { products(first: 50, filter: $f) { edges { node { brand { name } } } } }",
        {"f": {"brandId": brand["id"]}},
    )
    assert all(e["node"]["brand"]["name"] == brand["name"] for e in body["data"]["products"]["edges"])


async def test_keyword_search_through_the_api(
    seeded: None, client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "hot_search_min_searchers", 1)  # this test is the only searcher
    for keyword in ("连衣裙", "lianyiqun", "lyq", "连衣群"):
        body = await gql(client, LISTING, {"first": 5, "filter": {"keyword": keyword}})
        titles = [e["node"]["title"] for e in body["data"]["products"]["edges"]]
        assert titles and "连衣裙" in titles[0], (keyword, titles)
    hot = await gql(client, "{ hotSearchWords(limit: 20) }")
    assert "lianyiqun" in hot["data"]["hotSearchWords"]


async def test_drafts_are_hidden_from_shoppers(seeded: None, client: httpx.AsyncClient) -> None:
    draft = await Product.filter(status=ProductStatus.DRAFT).first()
    assert draft is not None, "the demo shop has drafts"
    body = await gql(client, PRODUCT_PAGE, {"id": encode_id("Product", draft.id)})
    assert body["data"]["product"] is None
    body = await gql(
        client, "query($id: ID!) { node(id: $id) { id } }", {"id": encode_id("Product", draft.id)}
    )
    assert body["data"]["node"] is None


async def test_node_resolves_every_catalog_type(seeded: None, client: httpx.AsyncClient) -> None:
    product = await Product.filter(status=ProductStatus.ON_SALE).order_by("id").first()
    assert product is not None
    sku = await Sku.filter(product_id=product.id).first()
    assert sku is not None
    query = """query($p: ID!, $s: ID!, $c: ID!) {
      p: node(id: $p) { __typename id ... on Product { title } }
      s: node(id: $s) { __typename ... on Sku { product { id } } }
      c: node(id: $c) { __typename ... on Category { name } } }"""
    body = await gql(
        client,
        query,
        {
            "p": encode_id("Product", product.id),
            "s": encode_id("Sku", sku.id),
            "c": encode_id("Category", product.category_id),
        },
    )
    data = body["data"]
    assert data["p"] == {
        "__typename": "Product",
        "id": encode_id("Product", product.id),
        "title": product.title,
    }
    assert data["s"]["product"]["id"] == encode_id("Product", product.id)
    assert data["c"]["__typename"] == "Category"
