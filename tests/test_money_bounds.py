"""Prices and quantities have upper bounds that keep every money total within a 32-bit Int.

The reported attack: `skuUpdate(price: 2147483647)` and a member buying 2 wrote an order whose total no
longer fit GraphQL's Int (SQLite; that member's `myOrders` failed from then on) or failed as
INTERNAL_SERVER_ERROR (PostgreSQL). Here the price is refused past MAX_PRICE, and at the bounds themselves a
member buys, reads their orders and cart, and the cart and checkout refuse what one order cannot hold.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from pydantic.fields import FieldInfo

from infra.settings import Settings
from models import StaffRole
from schema.node import encode_id
from services.access.staff import create_staff
from services.catalog.drafts import MAX_PRICE
from services.orders import pricing
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku, sku_id

pytestmark = pytest.mark.usefixtures("runtime")

INT32_MAX = 2**31 - 1
ERRORS = "errors { field code message }"
SKU_UPDATE = f"""mutation($id: ID!, $input: SkuUpdateInput!) {{
  skuUpdate(id: $id, input: $input) {{ sku {{ id price }} {ERRORS} }} }}"""
PLACE = f"""mutation($input: CheckoutInput!, $key: String!) {{
  placeOrder(input: $input, idempotencyKey: $key) {{ order {{ id payable }} {ERRORS} }} }}"""
CART = f"""mutation($s: ID!, $q: Int!) {{ cartAddItem(skuId: $s, quantity: $q) {{
  cart {{ lines {{ quantity lineTotal available problem }} summary {{ itemsTotal payable }} }} {ERRORS} }} }}"""
MY_ORDERS = "{ myOrders(first: 10) { edges { node { itemsTotal payable lines { lineTotal } } } } }"


def _bound(field: FieldInfo, name: str) -> int:
    return next(getattr(m, name) for m in field.metadata if hasattr(m, name))


def test_the_bounds_add_up_to_a_32_bit_int() -> None:
    fields = Settings.model_fields
    purchase_limit = _bound(fields["purchase_limit_per_sku"], "le")
    region_fee_type = fields["shipping_region_fees"].annotation.__args__[1]  # type: ignore[union-attr]
    max_fee = max(
        _bound(fields["shipping_base_fee"], "le"), _bound(FieldInfo.from_annotation(region_fee_type), "le")
    )
    assert MAX_PRICE * purchase_limit <= pricing.MAX_ORDER_TOTAL
    assert pricing.MAX_ORDER_TOTAL + max_fee <= INT32_MAX
    with pytest.raises(ValueError):
        Settings(PURCHASE_LIMIT_PER_SKU=purchase_limit + 1)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        Settings(SHIPPING_REGION_FEES={"新疆": max_fee + 1})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("field", "value", "refused"),
    [
        ("price", MAX_PRICE, None),
        ("price", MAX_PRICE + 1, "input.price"),
        ("price", INT32_MAX, "input.price"),
        ("originalPrice", MAX_PRICE + 1, "input.originalPrice"),
        ("memberPrice", INT32_MAX, "input.memberPrice"),
        ("tierPrices", [{"minQuantity": 2, "price": MAX_PRICE + 1}], "input.tierPrices[0].price"),
    ],
)
async def test_prices_are_refused_past_the_bound(
    client: httpx.AsyncClient, field: str, value: Any, refused: str | None
) -> None:
    _, staff = await create_staff(f"bounds-{secrets.token_hex(3)}", StaffRole.OPERATOR)
    sku = await new_sku(price=5000)
    body = await gql(client, SKU_UPDATE, {"id": sku_id(sku), "input": {field: value}}, staff)
    errors = body["data"]["skuUpdate"]["errors"]
    if refused is None:
        assert errors == [] and body["data"]["skuUpdate"]["sku"]["price"] == value
    else:
        assert [(e["field"], e["code"]) for e in errors] == [(refused, "BAD_USER_INPUT")], errors


async def test_at_the_bounds_orders_and_carts_fit_and_more_is_refused(client: httpx.AsyncClient) -> None:
    member, token = await new_member()
    address = encode_id("Address", await new_address(member))
    limit = 99  # PURCHASE_LIMIT_PER_SKU's default
    dearest = await new_sku(price=MAX_PRICE, stock=500)
    another = await new_sku(price=MAX_PRICE, stock=500, shop=await dearest.product.shop)  # type: ignore[attr-defined]

    # The most one line can hold is one order.
    placed = await gql(
        client,
        PLACE,
        {
            "input": {"addressId": address, "items": [{"skuId": sku_id(dearest), "quantity": limit}]},
            "key": "k1",
        },
        token,
    )
    assert placed["data"]["placeOrder"]["order"]["payable"] == MAX_PRICE * limit
    orders = await gql(client, MY_ORDERS, token=token)
    (order,) = [edge["node"] for edge in orders["data"]["myOrders"]["edges"]]
    assert order["itemsTotal"] == order["lines"][0]["lineTotal"] == MAX_PRICE * limit <= INT32_MAX

    # Two such lines are more than one order may hold: "buy now" is refused, nothing is written.
    two = [{"skuId": sku_id(s), "quantity": limit} for s in (dearest, another)]
    refused = await gql(client, PLACE, {"input": {"addressId": address, "items": two}, "key": "k2"}, token)
    assert [(e["field"], e["code"]) for e in refused["data"]["placeOrder"]["errors"]] == [
        ("input.items", "LIMIT_EXCEEDED")
    ]
    assert len((await gql(client, MY_ORDERS, token=token))["data"]["myOrders"]["edges"]) == 1

    # In the cart, the line that does not fit is flagged and left out of the summary, which stays an Int.
    await gql(client, CART, {"s": sku_id(dearest), "q": limit}, token)
    cart = (await gql(client, CART, {"s": sku_id(another), "q": limit}, token))["data"]["cartAddItem"]["cart"]
    assert [(line["available"], line["problem"]) for line in cart["lines"]] == [
        (False, "ORDER_LIMIT"),  # newest first: the second line is the one past the limit
        (True, None),
    ]
    assert all(line["lineTotal"] <= INT32_MAX for line in cart["lines"])
    assert cart["summary"]["itemsTotal"] == cart["summary"]["payable"] == MAX_PRICE * limit
    from_cart = await gql(
        client, PLACE, {"input": {"addressId": address, "fromCart": True}, "key": "k3"}, token
    )
    assert [(e["field"], e["code"]) for e in from_cart["data"]["placeOrder"]["errors"]] == [
        ("input.fromCart", "LIMIT_EXCEEDED")
    ]
