"""Prices shoppers see: the product page and listings show the limited-time price (`activePrice`) and the badges
of the promotions a viewer may use, batched (flat SQL counts), and cached answers change at the very moment a
promotion starts or ends; a level's promotion never shows to other viewers through the cache."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from infra.clock import SHOP_TZ, set_clock
from infra.query_counter import count_queries
from infra.runtime import current_runtime
from models import Member, MemberLevel, Product, ProductStatus, Promotion, PromotionKind, PromotionStatus, Sku
from schema.node import encode_id
from services.marketing.promotions import admin
from services.marketing.promotions.engine import forget_running_promotions, running_promotions
from tests.graphql_client import gql
from tests.test_cart import new_member
from tests.test_catalog_read import _execute
from tests.test_promotions_api import real_time_token

PAGE = """
query PromoPage($id: ID!) {
  product(id: $id) { id price { min max } activePrice { min max } promotions { id title kind }
    skus { id price activePrice } }
}
"""

LISTING = """
query PromoListing($first: Int!) {
  products(first: $first) { edges { node { id price { min } activePrice { min max } promotions { id kind }
    skus { activePrice } } } }
}
"""

SATURDAY = datetime(2026, 11, 28, 8, 0, tzinfo=SHOP_TZ)


@pytest.fixture
def clock() -> Iterator[list[datetime]]:
    moments = [SATURDAY]
    set_clock(lambda: moments[-1])
    yield moments
    set_clock(None)


@pytest.fixture(autouse=True)
async def no_promotions_left() -> AsyncIterator[None]:
    yield
    await Promotion.all().delete()
    forget_running_promotions()  # deleted behind the admin's back: it would have dropped the copy
    await current_runtime().cache.invalidate({admin.PROMOTIONS_TAG})


async def running(
    kind: PromotionKind, title: str, actions: list[Any], conditions: list[Any], **extra: Any
) -> int:
    promotion = await admin.create_promotion(
        admin.PromotionDraft(
            title=title,
            kind=kind,
            starts_at=extra.pop("starts_at", SATURDAY - timedelta(days=1)),
            ends_at=extra.pop("ends_at", SATURDAY + timedelta(days=2)),
            conditions=conditions,
            actions=actions,
            **extra,
        )
    )
    await admin.set_status(promotion.id, PromotionStatus.ACTIVE)
    return promotion.id


async def a_product(offset: int) -> tuple[Product, list[Sku]]:
    product = await Product.filter(status=ProductStatus.ON_SALE).order_by("id").offset(offset).first()
    assert product is not None
    return product, list(await Sku.filter(product_id=product.id).order_by("id"))


def eight_tenths(price: int) -> int:
    return (price * 80 + 50) // 100


async def test_the_product_page_shows_the_limited_time_price_and_the_viewers_badges(
    seeded: None, client: httpx.AsyncClient, clock: list[datetime]
) -> None:
    product, skus = await a_product(11)
    scope = [{"type": "PRODUCTS", "args": {"ids": [product.id]}}]
    sale = await running(
        PromotionKind.LIMITED_TIME, "限时8折", [{"type": "PERCENT_OFF", "args": {"percent": 20}}], scope
    )
    gold = await MemberLevel.get(name="金卡会员")
    gold_only = await running(
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
    variables = {"id": encode_id("Product", product.id)}

    page = (await gql(client, PAGE, variables))["data"]["product"]
    assert page["price"] == {"min": min(s.price for s in skus), "max": max(s.price for s in skus)}, "base"
    assert page["activePrice"] == {
        "min": eight_tenths(page["price"]["min"]),
        "max": eight_tenths(page["price"]["max"]),
    }
    assert [s["activePrice"] for s in page["skus"]] == [eight_tenths(s["price"]) for s in page["skus"]]
    assert page["promotions"] == [
        {"id": encode_id("Promotion", sale), "title": "限时8折", "kind": "LIMITED_TIME"}
    ]

    member, _ = await new_member()
    await Member.filter(id=member.id).update(growth=gold.min_growth)
    token = await real_time_token(member, clock)
    seen = (await gql(client, PAGE, variables, token))["data"]["product"]
    assert [b["id"] for b in seen["promotions"]] == [
        encode_id("Promotion", sale),
        encode_id("Promotion", gold_only),
    ]
    # The gold answer is cached for gold members only: a guest still sees no gold badge, nobody the first-order one.
    again = (await gql(client, PAGE, variables))["data"]["product"]
    assert again == page


async def test_cached_answers_change_when_a_promotion_starts_and_ends(
    seeded: None, client: httpx.AsyncClient, clock: list[datetime]
) -> None:
    product, _ = await a_product(12)
    await running(
        PromotionKind.LIMITED_TIME,
        "上午限时",
        [{"type": "FIXED_PRICE", "args": {"price": 990}}],
        [{"type": "PRODUCTS", "args": {"ids": [product.id]}}],
        starts_at=SATURDAY + timedelta(hours=1),
        ends_at=SATURDAY + timedelta(hours=4),
    )
    variables = {"id": encode_id("Product", product.id)}
    before = (await gql(client, PAGE, variables))["data"]["product"]
    assert before["activePrice"] == before["price"] and before["promotions"] == []
    with count_queries() as counter:
        assert (await gql(client, PAGE, variables))["data"]["product"] == before
    assert counter.count == 0, "cached until the promotion starts"

    clock.append(SATURDAY + timedelta(hours=1))  # 09:00: no write, no invalidation, just the time
    started = (await gql(client, PAGE, variables))["data"]["product"]
    assert started["activePrice"]["max"] == min(990, before["price"]["max"])
    assert [b["title"] for b in started["promotions"]] == ["上午限时"]

    clock.append(SATURDAY + timedelta(hours=4))  # 12:00: it ends
    ended = (await gql(client, PAGE, variables))["data"]["product"]
    assert ended == before


async def test_staff_changes_show_at_once(
    seeded: None, client: httpx.AsyncClient, clock: list[datetime]
) -> None:
    product, _ = await a_product(13)
    variables = {"id": encode_id("Product", product.id)}
    before = (await gql(client, PAGE, variables))["data"]["product"]
    pid = await running(
        PromotionKind.LIMITED_TIME,
        "立减5元",
        [{"type": "AMOUNT_OFF", "args": {"amount": 500}}],
        [{"type": "PRODUCTS", "args": {"ids": [product.id]}}],
    )
    after = (await gql(client, PAGE, variables))["data"]["product"]
    assert after["activePrice"]["min"] == before["price"]["min"] - 500
    await admin.set_status(pid, PromotionStatus.INACTIVE)
    assert (await gql(client, PAGE, variables))["data"]["product"] == before


async def test_listing_badges_and_active_prices_cost_flat_sql(
    seeded: None, runtime: object, clock: list[datetime]
) -> None:
    await running(
        PromotionKind.LIMITED_TIME, "全场9折", [{"type": "PERCENT_OFF", "args": {"percent": 10}}], []
    )
    await running(
        PromotionKind.THRESHOLD,
        "类目满减",
        [{"type": "AMOUNT_OFF", "args": {"amount": 1000}}],
        [{"type": "CATEGORIES", "args": {"ids": [int((await Product.first()).category_id)]}}],  # type: ignore[union-attr]
    )
    await running_promotions(clock[-1])  # kept by the process from now on: both listings find them there
    counts = {}
    for first in (5, 40):
        with count_queries() as counter:
            data = await _execute(LISTING, {"first": first})
        nodes = [e["node"] for e in data["products"]["edges"]]
        assert len(nodes) == first
        assert all(n["activePrice"]["min"] < n["price"]["min"] for n in nodes if n["price"]["min"] > 10)
        counts[first] = counter.count
    assert counts[5] == counts[40], counts
