"""The hot-product cache: hits skip execution, writes invalidate at once, races never store stale answers."""

from __future__ import annotations

import httpx
from tortoise.expressions import F

from infra.query_counter import count_queries
from infra.response_cache import CachedResponse, cache_key
from infra.runtime import Runtime
from models import Product, ProductStatus, Sku, StaffRole
from schema.node import encode_id
from services.access.staff import create_staff
from services.catalog import hot_words
from services.catalog.events import products_changed
from tests.graphql_client import gql
from tests.test_catalog_read import PRODUCT_PAGE


async def _a_product(offset: int = 0) -> Product:
    product = (
        await Product.filter(status=ProductStatus.ON_SALE, total_stock__gt=0)
        .order_by("id")
        .offset(offset)
        .first()
    )
    assert product is not None
    return product


async def test_a_hot_product_page_runs_no_sql(seeded: None, client: httpx.AsyncClient) -> None:
    product = await _a_product(3)
    variables = {"id": encode_id("Product", product.id)}
    first = await gql(client, PRODUCT_PAGE, variables)
    with count_queries() as counter:
        second = await gql(client, PRODUCT_PAGE, variables)
    # The miss also reported the caller's throttle status; a hit is charged to no bucket, so it has none.
    assert second["data"] == first["data"]
    assert second["extensions"]["cost"] == {
        "requestedQueryCost": first["extensions"]["cost"]["requestedQueryCost"]
    }
    assert counter.count == 0


async def test_a_write_invalidates_at_once(seeded: None, client: httpx.AsyncClient) -> None:
    product = await _a_product(4)
    variables = {"id": encode_id("Product", product.id)}
    before = (await gql(client, PRODUCT_PAGE, variables))["data"]["product"]
    sku = await Sku.filter(product_id=product.id).order_by("id").first()
    assert sku is not None
    # (Stock would show anyway: cached pages keep no stock, see tests/test_sale_cache.py. A price is cached.)
    await Sku.filter(id=sku.id).update(price=F("price") + 7)
    # Without the after-commit announcement the cache still holds the old page...
    stale = (await gql(client, PRODUCT_PAGE, variables))["data"]["product"]
    assert stale == before
    # ...and the announcement drops it.
    await products_changed([product.id], text_changed=False)
    fresh = (await gql(client, PRODUCT_PAGE, variables))["data"]["product"]
    assert fresh["skus"][0]["price"] == before["skus"][0]["price"] + 7
    # Leave the shared demo shop as the seed made it (other tests check its totals).
    await Sku.filter(id=sku.id).update(price=F("price") - 7)
    await products_changed([product.id], text_changed=False)


async def test_listing_is_cached_and_invalidated_by_any_product_write(
    seeded: None, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    query = "{ products(first: 3, sort: PRICE_ASC) { edges { node { id title } } } }"
    first = await gql(client, query)
    with count_queries() as counter:
        assert (await gql(client, query))["data"] == first["data"]
    assert counter.count == 0
    cheapest = first["data"]["products"]["edges"][0]["node"]
    pk = int(
        (
            await Product.filter(min_price__gte=0, status=ProductStatus.ON_SALE)
            .order_by("min_price", "id")
            .first()
        ).id
    )  # type: ignore[union-attr]
    assert encode_id("Product", pk) == cheapest["id"]
    await Product.filter(id=pk).update(title="限时特价 " + cheapest["title"][:100])
    await products_changed([pk])
    renamed = await gql(client, query)
    assert renamed["data"]["products"]["edges"][0]["node"]["title"].startswith("限时特价 ")
    await Product.filter(id=pk).update(title=cheapest["title"])
    await products_changed([pk])


async def test_staff_bypass_the_cache_and_see_drafts(seeded: None, client: httpx.AsyncClient) -> None:
    draft = await Product.filter(status=ProductStatus.DRAFT).first()
    assert draft is not None
    variables = {"id": encode_id("Product", draft.id)}
    assert (await gql(client, PRODUCT_PAGE, variables))["data"]["product"] is None
    _, token = await create_staff("cache-test-operator", StaffRole.OPERATOR)
    as_staff = await gql(client, PRODUCT_PAGE, variables, token=token)
    assert as_staff["data"]["product"]["title"] == draft.title
    # ...and the staff answer was not stored for shoppers.
    assert (await gql(client, PRODUCT_PAGE, variables))["data"]["product"] is None


async def test_price_scopes_never_share_an_entry() -> None:
    body = b'{"query": "{ products { totalCount } }"}'
    assert cache_key("public", body) != cache_key("level:2", body)
    assert cache_key("public", body) == cache_key("public", body)


async def test_a_response_computed_before_a_write_is_not_stored_after_it(runtime: Runtime) -> None:
    cache = runtime.cache
    marks = await cache.begin()
    # A write commits and invalidates while the response is still being computed.
    await cache.invalidate({"p:999999"})
    stored = await cache.store("race-key", CachedResponse(b"{}", frozenset({"p:999999"})), marks)
    assert stored is False
    assert await cache.get("race-key") is None
    marks = await cache.begin()
    assert await cache.store("race-key", CachedResponse(b'{"ok":1}', frozenset({"p:999999"})), marks) is True
    assert (await cache.get("race-key")).body == b'{"ok":1}'  # type: ignore[union-attr]


async def test_reconnect_drops_local_copies(runtime: Runtime) -> None:
    cache = runtime.cache
    marks = await cache.begin()
    await cache.store("reconnect-key", CachedResponse(b"1", frozenset({"p:1"})), marks)
    assert cache.get_local("reconnect-key") is not None
    cache.clear_local()  # what the bus does after it had to resubscribe
    assert cache.get_local("reconnect-key") is None
    assert await cache.get("reconnect-key") is not None, "the shared copy is still valid"


async def test_a_cached_search_still_counts_as_a_search(
    seeded: None, app: object, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """Once per searcher: five shoppers at five addresses count five times, the same one again not at all."""
    query = '{ products(first: 2, filter: {keyword: "面霜"}) { edges { node { id } } } }'
    await gql(client, query)
    key = hot_words._hot_key(hot_words._shop_today())

    async def count() -> float:
        return await runtime.redis.zscore(key, "面霜") or 0.0

    async def search_from(ip: str) -> None:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as shopper:
            await gql(shopper, query)

    before = await count()
    hits = runtime.cache.stats.l1_hits + runtime.cache.stats.l2_hits
    for i in range(5):
        await search_from(f"192.0.2.{i + 1}")
    assert runtime.cache.stats.l1_hits + runtime.cache.stats.l2_hits == hits + 5, "served from the cache"
    assert await count() == before + 5
    for _ in range(3):
        await search_from("192.0.2.1")
    assert await count() == before + 5


async def test_uncacheable_operations_are_not_stored(
    seeded: None, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    stores = runtime.cache.stats.stores
    await gql(client, "{ hotSearchWords }")
    product = await _a_product()
    await gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": encode_id("Product", product.id)})
    await gql(client, "{ nope }", expect_errors=True)
    assert runtime.cache.stats.stores == stores


async def test_mutations_never_ask_the_cache(
    seeded: None, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    # A mutation's answer is never stored, so looking it up would only cost Redis round trips.
    stats = runtime.cache.stats
    before = (stats.misses, stats.l1_hits, stats.l2_hits, stats.stores)
    for document in ("mutation { __typename }", "# a comment first\n mutation Named { __typename }"):
        for _ in range(2):
            assert (await gql(client, document))["data"] == {"__typename": "Mutation"}
    assert (stats.misses, stats.l1_hits, stats.l2_hits, stats.stores) == before
    # A query still is looked up (and missed the first time).
    await gql(client, "query Fresh { __typename }")
    assert stats.misses == before[0] + 1


async def test_an_operation_never_stored_is_not_looked_up_again(
    seeded: None, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    # Whether an answer may be shared follows from the body alone (document, operation, variables: the key), so
    # once one is known never to fit, its requests skip the lookups (two Redis round trips) and are computed.
    stats = runtime.cache.stats
    await gql(client, "{ hotSearchWords }")
    before = (stats.misses, stats.l1_hits, stats.l2_hits, stats.stores)
    for _ in range(3):
        await gql(client, "{ hotSearchWords }")
    assert (stats.misses, stats.l1_hits, stats.l2_hits, stats.stores) == before
    # The same document with other variables is another key: the public reading is still stored and served.
    query = "query($p: Boolean!) { products(first: 1) { totalCount } hotSearchWords @include(if: $p) }"
    await gql(client, query, {"p": True})
    stores = stats.stores
    await gql(client, query, {"p": False})
    assert stats.stores == stores + 1
    hits = stats.l1_hits + stats.l2_hits
    await gql(client, query, {"p": True})
    await gql(client, query, {"p": False})
    assert stats.l1_hits + stats.l2_hits == hits + 1
    assert stats.stores == stores + 1
