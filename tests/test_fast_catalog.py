"""The fast catalog executor (schema/fast) answers exactly what strawberry answers.

Every operation here runs twice on the same data with fresh loaders: through the served schema (where the fast
executor answers what it models) and through the same schema built without it (strawberry and graphql-core
alone). The JSON bytes, the SQL statement count (fast: never more), the cache tags, the search terms, the
stock holes noted for the response cache and whether the answer may be cached must all agree, for a guest, a
member with a level discount and staff (who see drafts). The operations: the benchmark's and the README's,
hand-written ones over every field the executor models (with fragments, aliases, @skip/@include, errors and
fields it does not model), and randomized selections over the catalog types.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    get_named_type,
    is_leaf_type,
    parse,
)

from infra.query_counter import count_queries
from models import Category, Product, Sku
from models.product import ProductStatus
from schema.cache_policy import shared_response
from schema.context import make_context
from schema.fast.extension import execute_fast
from schema.fast.fields import TYPES
from schema.node import encode_id
from schema.root import build_schema, schema
from services.access.staff import StaffIdentity, StaffRole
from services.catalog.prices import PriceContext
from services.marketing.promotions import engine as promotion_engine
from services.members.viewer import ANONYMOUS, MemberIdentity, Viewer

REFERENCE = build_schema(fast=False)
_member_ids = itertools.count(10**6)
README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(autouse=True)
def promotions_kept_throughout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The running promotions a process keeps expire on a timer: an expiry between the compared executions
    would make whichever ran next pay the reload, so they stay kept (writes still drop them) while compared."""
    monkeypatch.setattr(promotion_engine._running, "seconds", 3600.0)
    promotion_engine.forget_running_promotions()  # a copy kept before would still expire on its old timer
    yield
    promotion_engine.forget_running_promotions()  # and none kept here outlives the test


VIEWERS = {
    "guest": ANONYMOUS,
    "member": Viewer(
        member=MemberIdentity(id=1, session_id=1, growth=500),
        price=PriceContext(scope="level:2", is_member=True, level_percent=95, level_id=2),
    ),
    "staff": Viewer(staff=StaffIdentity(id=1, name="ops", role=next(iter(StaffRole)))),
}

PRODUCT_PAGE = (
    "query ProductPage($id: ID!) { product(id: $id) { id title subtitle price { min max } "
    "skus { id price originalPrice stock specValues { name value } } category { name } tags { name } } }"
)
LISTING = (
    "query Listing($c: ID!) { products(first: 20, filter: {categoryId: $c}, sort: SALES) { totalCount "
    "edges { cursor node { id title price { min max } media { url } brand { name } tags { name } } } "
    "pageInfo { hasNextPage endCursor } } }"
)
LISTING_SKUS = (
    "query ListingSkus($c: ID!) { products(first: 20, filter: {categoryId: $c}, sort: SALES) { "
    "edges { node { id title skus { id price stock specValues { name value } } } } } }"
)
EVERY_FIELD = """
fragment CategoryFields on Category { __typename id name level iconUrl sort }
fragment ProductFields on Product {
  __typename id title subtitle description status salesCount stockWarning totalStock lowStock createdAt
  publishedAt price { __typename min max }
  skus { __typename id originalPrice memberPrice stock barcode weightGrams price listPrice
         tierPrices { __typename minQuantity price } specValues { __typename name value } }
  specs { __typename name values }
  category { ...CategoryFields parent { ...CategoryFields parent { id } }
             breadcrumbs { ...CategoryFields } children { ...CategoryFields children { id name } } }
  brand { __typename id name logoUrl } tags { __typename id name } media { __typename id kind url sort }
}
query Every($id: ID!, $c: ID!, $after: String) {
  __typename
  product(id: $id) { ...ProductFields }
  products(first: 7, after: $after, filter: {categoryId: $c}, sort: PRICE_DESC) {
    __typename totalCount
    pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
    edges { __typename cursor node { ...ProductFields } }
  }
}
"""
SHAPES = """
query Shapes($id: ID!, $yes: Boolean!, $no: Boolean = false) {
  a: product(id: $id) { id t: title title ... on Node { id } ... on Product { skus { id } skus { stock } } }
  b: product(id: $id) @include(if: $yes) { price { min } price { max } x: lowStock totalStock }
  c: product(id: $id) @skip(if: $yes) { id }
  d: products(first: 3, sort: NEWEST) @include(if: $no) { totalCount }
  e: products(first: 3, sort: NEWEST) { n: totalCount m: totalCount edges { node { id @skip(if: $no)
    skus @include(if: $yes) { id stock } ...on Product @skip(if: $yes) { title } } } }
}
"""
LISTINGS = [
    ("{ products { edges { node { id title } } } }", {}),
    (
        "{ products(first: 5, sort: PRICE_ASC, filter: {inStock: true}) { totalCount edges { node { id totalStock } } } }",
        {},
    ),
    (
        "{ products(first: 5, sort: PRICE_DESC, filter: {priceMin: 1000, priceMax: 20000}) { edges { node { id price { min max } } } } }",
        {},
    ),
    ("{ products(first: 5, filter: {inStock: false}) { edges { node { id lowStock } } } }", {}),
    (
        '{ products(first: 4, filter: {keyword: "lyq", inStock: true}) { edges { node { id title skus { id price stock specValues { name value } } } } } }',
        {},
    ),
    (
        '{ products(first: 4, filter: {keyword: "zz"}, sort: RELEVANCE) { totalCount edges { cursor } pageInfo { hasNextPage startCursor } } }',
        {},
    ),
    ("{ products(first: 1000) { totalCount } }", {}),
    (
        "{ products(first: 0) { totalCount edges { cursor } pageInfo { startCursor endCursor hasNextPage } } }",
        {},
    ),
    ('{ products(first: 3, after: "bm9wZQ==") { totalCount } }', {}),
    ('{ products(filter: {categoryId: "nonsense"}) { totalCount } }', {}),
    ('{ product(id: "UHJvZHVjdDoxMDAwMDAwMDA=") { id } }', {}),
    ('{ product(id: "U2t1OjE=") { id } }', {}),
    ("{ products(first: 2) { edges { node { id activePrice { min } } } } }", {}),
    ("{ products(first: 2) { edges { node { id promotions { id } } } } }", {}),
    ("{ products(first: 2) { edges { node { id skus { activePrice product { id } } } } } }", {}),
    ("{ products(first: 2) { edges { node { id reviewSummary { count } } } } }", {}),
    ("{ products(first: 2) { edges { node { id } } } categories { id name } }", {}),
    ("{ __typename products(first: 2) { __typename } }", {}),
    ("{ products(first: 2) { edges { node { id } } } brands { id name } }", {}),
    ("{ categories { id name children { id name children { id name iconUrl } } } }", {}),
    ("{ categories { id children { id parent { id } breadcrumbs { id } } } tree: categories { name } }", {}),
    ('{ category(id: "Q2F0ZWdvcnk6MTAwMDAwMDA=") { id } }', {}),
    ('{ category(id: "nonsense") { id } }', {}),
]
CATEGORY_PAGE = """
query CategoryPage($c: ID!, $leaf: ID!) {
  category(id: $c) { id name level children { id name children { id name sort iconUrl } } breadcrumbs { id } }
  leaf: category(id: $leaf) { id name parent { id name parent { id name parent { id } } } breadcrumbs { id name } }
  products(first: 5, filter: {categoryId: $leaf}) { edges { node { id category { breadcrumbs { name } } } } }
}
"""


async def _answer(
    target: Any, query: str, variables: dict[str, Any], viewer: Viewer, cached: bool = True
) -> dict[str, Any]:
    # cached: as a cache candidate (stock holes noted); otherwise as with the response cache off.
    if viewer.member is not None:
        # A member of its own each time: one member's cost bucket would run dry over these hundreds of queries.
        viewer = dataclasses.replace(viewer, member=dataclasses.replace(viewer.member, id=next(_member_ids)))
    context = make_context(viewer, cache_key="fast-test" if cached else None, volatile=[] if cached else None)
    with count_queries() as counted:
        result = await target.execute(query, variable_values=variables, context_value=context)
    body = {"data": result.data}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    if result.extensions:
        # Without the caller's bucket state: each run spends from a bucket (and a slow Redis skips it), and
        # that accounting happens before execution, the same for both paths.
        body["extensions"] = shared_response({"extensions": result.extensions})["extensions"]
        # What the caller's cost bucket holds refills with time: it differs between any two executions.
        cost = result.extensions.get("cost") or {}
        cost.get("throttleStatus", {}).pop("currentlyAvailable", None)
    return {
        "json": orjson.dumps(body),
        "statements": counted.count,
        "tags": sorted(context.cache_tags),
        "search_terms": context.search_terms,
        "holes": sorted(repr((path.as_list(), hole, value)) for path, hole, value in context.volatile or ()),
        "public": context.operation.public() if context.operation else None,
    }


async def both_ways(query: str, variables: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """The reference answer, after checking the fast schema's is the same (and costs no more SQL)."""
    # Once before, unchecked: what a process reads once (the search's word lists) is then read for neither.
    await _answer(REFERENCE, query, variables, viewer)
    fast = await _answer(schema, query, variables, viewer)
    reference = await _answer(REFERENCE, query, variables, viewer)
    assert fast["json"] == reference["json"], (query, variables)
    uncached = await _answer(schema, query, variables, viewer, cached=False)
    assert uncached["json"] == reference["json"], (query, variables)
    assert fast["statements"] <= reference["statements"], (query, fast["statements"], reference["statements"])
    for key in ("tags", "search_terms", "holes", "public"):
        assert fast[key] == reference[key], (key, query, variables)
    return reference


async def answered_fast(query: str, variables: dict[str, Any], viewer: Viewer = ANONYMOUS) -> bool:
    context = make_context(viewer)
    return await execute_fast(schema, query, parse(query), None, variables, context) is not None


@pytest.fixture
async def ids(seeded: None) -> dict[str, str]:
    top = await Product.filter(status=ProductStatus.ON_SALE).order_by("-sales_count", "id").first()
    draft = await Product.filter(status=ProductStatus.DRAFT).first()
    brandless = await Product.filter(brand_id=None).first()
    tiered = next(s for s in await Sku.all().order_by("id") if s.tier_prices)
    root = await Category.filter(parent_id=None).order_by("id").first()
    leaf = await Category.filter(level=3).order_by("id").first()
    assert top and root and leaf and brandless
    found = {
        "id": encode_id("Product", top.id),
        "c": encode_id("Category", root.id),
        "leaf": encode_id("Category", leaf.id),
        "brandless": encode_id("Product", brandless.id),
        "tiered": encode_id("Product", tiered.product_id),  # type: ignore[attr-defined]
    }
    found["draft"] = encode_id("Product", draft.id) if draft else found["id"]
    return found


@pytest.mark.parametrize("viewer", list(VIEWERS))
async def test_the_benchmark_and_hand_written_operations(ids: dict[str, str], viewer: str) -> None:
    who = VIEWERS[viewer]
    for product in ("id", "draft", "brandless", "tiered"):
        await both_ways(PRODUCT_PAGE, {"id": ids[product]}, who)
        await both_ways(EVERY_FIELD, {"id": ids[product], "c": ids["c"]}, who)
    for category in ("c", "leaf"):
        await both_ways(LISTING, {"c": ids[category]}, who)
        await both_ways(LISTING_SKUS, {"c": ids[category]}, who)
    page = await both_ways(EVERY_FIELD, {"id": ids["id"], "c": ids["c"], "after": None}, who)
    cursor = orjson.loads(page["json"])["data"]["products"]["pageInfo"]["endCursor"]
    await both_ways(EVERY_FIELD, {"id": ids["id"], "c": ids["c"], "after": cursor}, who)
    for yes in (True, False):
        for no in (True, False, None):
            variables: dict[str, Any] = {"id": ids["id"], "yes": yes}
            if no is not None:
                variables["no"] = no
            await both_ways(SHAPES, variables, who)
    for query, variables in LISTINGS:
        await both_ways(query, variables, who)
    for category in ("c", "leaf"):
        await both_ways(CATEGORY_PAGE, {"c": ids[category], "leaf": ids["leaf"]}, who)


async def test_the_catalog_reads_are_answered_fast(ids: dict[str, str]) -> None:
    # The cold path's operations do take the fast path (the comparisons above would pass if nothing did).
    assert await answered_fast(PRODUCT_PAGE, {"id": ids["id"]})
    assert await answered_fast(LISTING, {"c": ids["c"]})
    assert await answered_fast(LISTING_SKUS, {"c": ids["c"]})
    assert await answered_fast(EVERY_FIELD, {"id": ids["id"], "c": ids["c"]})
    assert await answered_fast(SHAPES, {"id": ids["id"], "yes": True})
    # What it does not model goes to strawberry.
    assert await answered_fast(LISTINGS[12][0], {})
    assert await answered_fast(LISTINGS[13][0], {})
    assert not await answered_fast(LISTINGS[14][0], {})
    assert await answered_fast(CATEGORY_PAGE, {"c": ids["c"], "leaf": ids["leaf"]})
    assert await answered_fast(LISTINGS[19][0], {})
    assert not await answered_fast(LISTINGS[18][0], {})
    assert not await answered_fast("{ product(id: 1) { id } }", {})


def _readme_operations() -> list[str]:
    blocks = re.findall(r"```graphql\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    # The catalog's: the others fall back and some show the time (`serverTime`), so two runs differ.
    catalog = ("product", "products", "category", "categories", "brands", "tags")
    return [b for b in blocks if b.lstrip().startswith(("query", "{")) and _first_root(b) in catalog]


def _first_root(operation: str) -> str:
    found = re.search(r"\{\s*(\w+)", operation)
    return found.group(1) if found else ""


async def test_the_readme_queries(ids: dict[str, str]) -> None:
    operations = _readme_operations()
    assert any("products(" in op for op in operations)
    for operation in operations:
        names = set(re.findall(r"\$(\w+)", operation))
        variables = {name: ids["c"] if "ategory" in name else ids["id"] for name in names}
        for viewer in VIEWERS.values():
            await both_ways(operation, variables, viewer)


# --- Randomized selections ------------------------------------------------------------------------------------

# Fields the executor does not model are drawn too (rarely): the operation must then fall back, identically.
UNMODELLED_SHARE = 0.04


def _selection(rng: random.Random, type_: GraphQLObjectType, depth: int, state: dict[str, Any]) -> str:
    modelled = TYPES.get(type_.name, {})
    names = [
        n
        for n, f in type_.fields.items()
        if not f.args and (n in modelled or rng.random() < UNMODELLED_SHARE)
    ]
    picked = rng.sample(names, k=max(1, min(len(names), rng.randint(1, 6)))) if names else ["__typename"]
    if rng.random() < 0.3:
        picked.append("__typename")
    parts: list[str] = []
    for name in picked:
        field = type_.fields.get(name)
        text = name
        if state["aliases"] < 5 and rng.random() < 0.2:
            state["aliases"] += 1
            text = f"{rng.choice('pqrs')}{state['aliases']}: {name}"
        roll = rng.random()
        if roll < 0.08:
            text += " @skip(if: $flag)"
        elif roll < 0.16:
            text += " @include(if: $flag)"
        elif roll < 0.2:
            text += f" @include(if: {rng.choice(['true', 'false'])})"
        named = get_named_type(field.type) if field else None
        if named is not None and not is_leaf_type(named):
            if depth >= 4:
                continue
            text += " { " + _selection(rng, named, depth + 1, state) + " }"  # type: ignore[arg-type]
        if rng.random() < 0.1:
            text = f"... on {type_.name} {{ {text} }}"
        elif rng.random() < 0.05:
            state["fragments"].append(f"fragment F{len(state['fragments'])} on {type_.name} {{ {text} }}")
            text = f"...F{len(state['fragments']) - 1}"
        parts.append(text)
    return " ".join(parts) or "__typename"


def _random_operation(rng: random.Random) -> str:
    graphql_schema = schema._schema
    state: dict[str, Any] = {"aliases": 0, "fragments": []}
    roll = rng.random()
    if roll < 0.15:
        category = graphql_schema.get_type("Category")
        root = rng.choice(["categories", "category(id: $c)"])
        body = f"{root} {{ {_selection(rng, category, 1, state)} }}"  # type: ignore[arg-type]
    elif roll < 0.55:
        product = graphql_schema.get_type("Product")
        body = f"product(id: $id) {{ {_selection(rng, product, 1, state)} }}"  # type: ignore[arg-type]
    else:
        connection = graphql_schema.get_type("ProductConnection")
        sort = rng.choice(["SALES", "NEWEST", "PRICE_ASC", "PRICE_DESC"])
        body = (
            f"products(first: {rng.randint(1, 6)}, sort: {sort}, filter: {{categoryId: $c}}) "
            f"{{ {_selection(rng, connection, 1, state)} }}"  # type: ignore[arg-type]
        )
    fragments = " ".join(state["fragments"])
    text = f"{{ {body} }} {fragments}"
    # Only the variables it uses (an unused one is a validation error, and then nothing is compared).
    declared = ", ".join(d for name, d in DECLARATIONS.items() if f"${name}" in text)
    return f"query Random({declared}) {text}" if declared else f"query Random {text}"


DECLARATIONS = {"id": "$id: ID!", "c": "$c: ID!", "flag": "$flag: Boolean!"}


@pytest.mark.parametrize("seed", range(6))
async def test_randomized_catalog_selections(ids: dict[str, str], seed: int) -> None:
    rng = random.Random(seed)
    fast = 0
    for _ in range(30):
        query = _random_operation(rng)
        parse(query)
        viewer = rng.choice(list(VIEWERS.values()))
        variables = {
            "id": ids[rng.choice(["id", "draft", "brandless", "tiered"])],
            "c": ids["c"],
            "flag": rng.random() < 0.5,
        }
        answer = await both_ways(query, variables, viewer)
        fast += await answered_fast(query, variables, viewer) and b'"errors"' not in answer["json"]
    assert fast > 15  # most draws are all modelled fields and run without errors


def test_the_random_generator_makes_lists_and_objects() -> None:
    # Guards the generator itself: it reaches nested lists of objects.
    product = schema._schema.get_type("Product")
    assert isinstance(product, GraphQLObjectType)
    assert isinstance(product.fields["skus"].type, GraphQLNonNull)
    assert isinstance(product.fields["skus"].type.of_type, GraphQLList)


# --- Limited-time prices (the promotion engine) -----------------------------------------------------------------

PROMO_PAGE = """
query PromoPage($id: ID!) {
  product(id: $id) { id price { min max } activePrice { min max } skus { id price activePrice } }
}
"""
PROMO_LISTING = """
query PromoListing($first: Int!) {
  products(first: $first) { edges { node { id price { min } activePrice { min max } skus { activePrice }
    promotions { id kind } } } }
}
"""
BADGES = """
query Badges($id: ID!) {
  product(id: $id) { promotions { __typename id title description kind status startsAt endsAt
    conditions { type args } actions { type args } combinesWithPromotions combinesWithCoupons
    appliesToCampaignLines priority createdAt updatedAt } skus { activePrice } }
}
"""


async def test_limited_time_prices_per_viewer(ids: dict[str, str], runtime: object) -> None:
    from infra.clock import set_clock
    from infra.runtime import current_runtime
    from models import MemberLevel, Promotion, PromotionKind
    from services.marketing.promotions import admin
    from tests.test_promotions_catalog import LISTING as THEIR_LISTING
    from tests.test_promotions_catalog import PAGE as THEIR_PAGE
    from tests.test_promotions_catalog import SATURDAY, a_product, running

    set_clock(lambda: SATURDAY)
    try:
        product, _ = await a_product(11)
        other, _ = await a_product(3)
        gold = await MemberLevel.get(name="金卡会员")
        await running(
            PromotionKind.LIMITED_TIME,
            "限时8折",
            [{"type": "PERCENT_OFF", "args": {"percent": 20}}],
            [{"type": "PRODUCTS", "args": {"ids": [product.id]}}],
        )
        await running(
            PromotionKind.LIMITED_TIME,
            "金卡限时9折",
            [{"type": "PERCENT_OFF", "args": {"percent": 10}}],
            [
                {"type": "PRODUCTS", "args": {"ids": [product.id, other.id]}},
                {"type": "MEMBER_LEVELS", "args": {"ids": [gold.id]}},
            ],
        )
        await running(
            PromotionKind.THRESHOLD,
            "金卡满200减30",
            [{"type": "AMOUNT_OFF", "args": {"amount": 3000}}],
            [
                {"type": "MIN_AMOUNT", "args": {"amount": 20000}},
                {"type": "MEMBER_LEVELS", "args": {"ids": [gold.id]}},
            ],
        )
        await running(
            PromotionKind.FIRST_ORDER,
            "新人立减",
            [{"type": "AMOUNT_OFF", "args": {"amount": 500}}],
            [{"type": "FIRST_ORDER"}],
        )
        gold_member = Viewer(
            member=MemberIdentity(id=1, session_id=1, growth=gold.min_growth),
            price=PriceContext(scope=f"level:{gold.id}", is_member=True, level_percent=100, level_id=gold.id),
        )
        viewers = [*VIEWERS.values(), gold_member]
        seen: set[bytes] = set()
        for viewer in viewers:
            for pk in (product.id, other.id):
                page = await both_ways(PROMO_PAGE, {"id": encode_id("Product", pk)}, viewer)
                seen.add(page["json"])
                assert await answered_fast(PROMO_PAGE, {"id": encode_id("Product", pk)}, viewer)
                badges = await both_ways(BADGES, {"id": encode_id("Product", pk)}, viewer)
                seen.add(badges["json"])
                assert await answered_fast(BADGES, {"id": encode_id("Product", pk)}, viewer)
            await both_ways(PROMO_LISTING, {"first": 20}, viewer)
            await both_ways(THEIR_LISTING, {"first": 20}, viewer)
            await both_ways(THEIR_PAGE, {"id": encode_id("Product", product.id)}, viewer)
            await both_ways(EVERY_FIELD, {"id": encode_id("Product", product.id), "c": ids["c"]}, viewer)
        answer = orjson.loads(
            (await both_ways(PROMO_PAGE, {"id": encode_id("Product", product.id)}, ANONYMOUS))["json"]
        )["data"]["product"]
        assert answer["activePrice"]["min"] < answer["price"]["min"]  # the comparisons saw a discount
        shown = await both_ways(BADGES, {"id": encode_id("Product", product.id)}, ANONYMOUS)
        assert orjson.loads(shown["json"])["data"]["product"]["promotions"]  # and badges
        assert len(seen) > 2  # and prices that differ per viewer
    finally:
        set_clock(None)
        await Promotion.all().delete()
        promotion_engine.forget_running_promotions()  # deleted behind the admin's back: it would have dropped the copy
        await current_runtime().cache.invalidate({admin.PROMOTIONS_TAG})
