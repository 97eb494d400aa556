"""A member fills a cart: bounded by stock and the purchase limit, flagged (never dropped) when goods go."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from models import (
    Category,
    Member,
    Product,
    ProductMedia,
    ProductStatus,
    Shop,
    Sku,
    SkuSpecValue,
    SpecDimension,
    SpecValue,
)
from schema.node import encode_id
from services.catalog.prices import PUBLIC
from services.members.addresses import AddressDraft, create_address
from services.members.tokens import issue_tokens
from services.orders import cart
from services.orders.pricing import PointsRules, ShippingRules, points_deduction, shipping_fee
from tests.graphql_client import gql

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
CART = """cart { lines { sku { id } quantity selected unitPrice lineTotal available problem }
  groups { shop { name } lines { quantity } } summary { itemsTotal discount shipping payable } }"""


async def new_member(points: int = 0) -> tuple[Member, str]:
    member = await Member.create(
        openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper(), points=points
    )
    return member, (await issue_tokens(member)).access_token


async def new_address(
    member: Member, province: str = "广东省", city: str = "深圳市", district: str = "南山区"
) -> int:
    draft = AddressDraft("林晓", "13800138000", province, city, district, "科技园南路 88 号")
    return (await create_address(member.id, draft)).id


async def new_sku(price: int = 5000, stock: int = 10, shop: Shop | None = None, **extra: Any) -> Sku:
    """A fresh product on sale with one SKU (颜色:红 尺码:M) and an image, in its own shop unless `shop` is given."""
    tag = secrets.token_hex(4)
    shop = shop or await Shop.create(code=f"ck-{tag}", name=f"测试店 {tag}")
    category = await Category.create(shop=shop, name=f"类目{tag}", level=1)
    product = await Product.create(
        shop=shop,
        category=category,
        title=f"测试商品 {tag}",
        status=ProductStatus.ON_SALE,
        total_stock=stock,
        min_price=price,
        max_price=price,
    )
    await ProductMedia.create(product=product, url=f"https://img.example.com/{tag}-1.jpg", sort=0)
    await ProductMedia.create(product=product, url=f"https://img.example.com/{tag}-2.jpg", sort=1)
    values = []
    for sort, (name, value) in enumerate((("颜色", "红"), ("尺码", "M"))):
        dimension = await SpecDimension.create(product=product, name=name, sort=sort)
        values.append(await SpecValue.create(dimension=dimension, value=value))
    sku = await Sku.create(
        product=product, spec_key="-".join(str(v.id) for v in values), price=price, stock=stock, **extra
    )
    for value in values:
        await SkuSpecValue.create(sku=sku, spec_value=value)
    return sku


def sku_id(sku: Sku) -> str:
    return encode_id("Sku", sku.id)


async def test_member_adds_items_and_the_cart_prices_them(client: Any) -> None:
    _member, token = await new_member()
    cheap = await new_sku(price=3000, stock=5, tier_prices=[{"min_quantity": 3, "price": 2500}])
    body = await gql(
        client,
        f"mutation($s: ID!) {{ cartAddItem(skuId: $s, quantity: 3) {{ {CART} {ERRORS} }} }}",
        {"s": sku_id(cheap)},
        token,
    )
    payload = body["data"]["cartAddItem"]
    assert payload["errors"] == []
    line = payload["cart"]["lines"][0]
    assert (line["quantity"], line["unitPrice"], line["lineTotal"], line["available"]) == (
        3,
        2500,
        7500,
        True,
    )
    summary = payload["cart"]["summary"]
    # 75 yuan is under the free-shipping threshold: the base fee applies.
    assert summary == {"itemsTotal": 7500, "discount": 0, "shipping": 1000, "payable": 8500}
    assert payload["cart"]["groups"][0]["shop"]["name"].startswith("测试店")


async def test_quantities_are_bounded_by_stock_and_the_purchase_limit(client: Any) -> None:
    member, token = await new_member()
    sku = await new_sku(stock=5)
    add = f"mutation($s: ID!, $q: Int!) {{ cartAddItem(skuId: $s, quantity: $q) {{ {CART} {ERRORS} }} }}"
    await gql(client, add, {"s": sku_id(sku), "q": 4}, token)
    over = (await gql(client, add, {"s": sku_id(sku), "q": 2}, token))["data"]["cartAddItem"]
    assert [e["code"] for e in over["errors"]] == ["INSUFFICIENT_STOCK"]
    assert await cart.CartItem.filter(member_id=member.id).values_list("quantity", flat=True) == [4]
    big = await new_sku(stock=1000)
    limited = (await gql(client, add, {"s": sku_id(big), "q": 100}, token))["data"]["cartAddItem"]
    assert [e["code"] for e in limited["errors"]] == ["LIMIT_EXCEEDED"]
    update = (
        f"mutation($s: ID!, $q: Int!) {{ cartUpdateItem(skuId: $s, quantity: $q) {{ {CART} {ERRORS} }} }}"
    )
    assert (await gql(client, update, {"s": sku_id(sku), "q": 6}, token))["data"]["cartUpdateItem"]["errors"]
    ok = (await gql(client, update, {"s": sku_id(sku), "q": 2}, token))["data"]["cartUpdateItem"]
    assert ok["cart"]["lines"][0]["quantity"] == 2
    gone = (await gql(client, update, {"s": sku_id(sku), "q": 0}, token))["data"]["cartUpdateItem"]
    assert gone["cart"]["lines"] == []


async def test_lines_that_went_off_shelf_or_ran_short_are_flagged_not_dropped(client: Any) -> None:
    member, token = await new_member()
    shelf, empty, short = await new_sku(stock=5), await new_sku(stock=5), await new_sku(stock=5)
    for sku in (shelf, empty, short):
        await cart.add_item(member.id, sku.id, 3)
    await Product.filter(id=shelf.product_id).update(status=ProductStatus.OFF_SHELF)  # type: ignore[attr-defined]
    await Sku.filter(id=empty.id).update(stock=0)
    await Sku.filter(id=short.id).update(stock=2)
    data = (await gql(client, f"{{ {CART} }}", token=token))["data"]["cart"]
    problems = {line["sku"]["id"]: (line["available"], line["problem"]) for line in data["lines"]}
    assert problems == {
        sku_id(shelf): (False, "OFF_SHELF"),
        sku_id(empty): (False, "OUT_OF_STOCK"),
        sku_id(short): (False, "INSUFFICIENT_STOCK"),
    }
    assert data["summary"]["itemsTotal"] == 0


async def test_select_and_remove(client: Any) -> None:
    member, token = await new_member()
    a, b = await new_sku(price=1000), await new_sku(price=2000)
    await cart.add_item(member.id, a.id, 1)
    await cart.add_item(member.id, b.id, 1)
    sel = f"mutation($s: [ID!]!) {{ cartSelect(skuIds: $s, selected: false) {{ {CART} {ERRORS} }} }}"
    data = (await gql(client, sel, {"s": [sku_id(a)]}, token))["data"]["cartSelect"]["cart"]
    assert data["summary"]["itemsTotal"] == 2000
    rm = f"mutation($s: [ID!]!) {{ cartRemoveItems(skuIds: $s) {{ {CART} {ERRORS} }} }}"
    data = (await gql(client, rm, {"s": [sku_id(b)]}, token))["data"]["cartRemoveItems"]["cart"]
    assert [line["sku"]["id"] for line in data["lines"]] == [sku_id(a)]


async def test_guests_and_staff_have_no_cart(client: Any) -> None:
    body = await gql(client, f"{{ {CART} }}", expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_shipping_rules() -> None:
    rules = ShippingRules(free_over=9900, base_fee=1000, region_fees={"新疆": 2500})
    assert shipping_fee(5000, rules, pickup=False, province="广东省", free_shipping=False) == 1000
    assert shipping_fee(5000, rules, pickup=False, province="新疆维吾尔自治区", free_shipping=False) == 2500
    assert shipping_fee(9900, rules, pickup=False, province="新疆维吾尔自治区", free_shipping=False) == 0
    assert shipping_fee(5000, rules, pickup=True, province="广东省", free_shipping=False) == 0
    assert shipping_fee(5000, rules, pickup=False, province="广东省", free_shipping=True) == 0


def test_points_pay_at_most_the_allowed_share_and_never_for_nothing() -> None:
    rules = PointsRules(points_per_yuan=100, max_percent=50)
    assert points_deduction(1000, 10000, rules) == (1000, 1000)
    assert points_deduction(100000, 10000, rules) == (5000, 5000)
    odd = PointsRules(points_per_yuan=150, max_percent=50)
    used, fen = points_deduction(1000, 100000, odd)
    assert fen == 666 and used == 999 and used * 100 // 150 == fen
    assert points_deduction(1, 10000, odd) == (0, 0)
    assert PUBLIC.scope == "public"
