"""A member checks out: previewed amounts are charged, stock is never oversold, half orders never exist."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models import CartItem, Member, Order, OrderLine, OrderStatus, PointsEntry, Product, Shop, Sku
from services.errors import DomainError, ErrorCode
from services.orders import cart, checkout
from services.orders.checkout import CheckoutRequest, ItemRequest
from tests.conftest import BACKEND
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku, sku_id

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
PLACE = f"""mutation($input: CheckoutInput!, $key: String!) {{ placeOrder(input: $input, idempotencyKey: $key) {{
  order {{ id number status payable }} payParams {{ appId timeStamp nonceStr package signType paySign }}
  {ERRORS} }} }}"""
PREVIEW = f"""query($input: CheckoutInput!) {{ checkoutPreview(input: $input) {{ preview {{
  lines {{ title spec imageUrl unitPrice quantity lineTotal }}
  itemsTotal discount shippingFee pointsUsed pointsDiscount payable }} {ERRORS} }} }}"""


def buy(sku: Sku, quantity: int, address_id: int | None, **extra: Any) -> CheckoutRequest:
    return CheckoutRequest(address_id=address_id, items=(ItemRequest(sku.id, quantity),), **extra)


async def test_preview_is_what_place_order_charges_and_the_order_snapshots_every_line(client: Any) -> None:
    member, token = await new_member(points=3000)
    address_id = await new_address(member, "新疆维吾尔自治区", "乌鲁木齐市", "天山区")
    sku = await new_sku(price=2990, stock=10)
    await cart.add_item(member.id, sku.id, 2)
    input = {"addressId": _address_gid(address_id), "fromCart": True, "pointsToUse": 1000, "note": "放门口"}
    preview = (await gql(client, PREVIEW, {"input": input}, token))["data"]["checkoutPreview"]
    assert preview["errors"] == []
    p = preview["preview"]
    # 2 × 29.90 = 59.80, 新疆 ships at 25.00, 1000 points take 10.00 off.
    assert (p["itemsTotal"], p["shippingFee"], p["pointsUsed"], p["pointsDiscount"]) == (
        5980,
        2500,
        1000,
        1000,
    )
    assert p["payable"] == 5980 + 2500 - 1000
    assert p["lines"][0]["spec"] == "颜色:红 尺码:M" and p["lines"][0]["imageUrl"].endswith("-1.jpg")

    placed = (await gql(client, PLACE, {"input": input, "key": "k1"}, token))["data"]["placeOrder"]
    assert placed["order"]["payable"] == p["payable"] and placed["order"]["status"] == "PENDING_PAYMENT"
    order = await Order.get(number=placed["order"]["number"])
    lines = await OrderLine.filter(order_id=order.id)
    assert sum(line.line_total for line in lines) == order.items_total
    assert order.payable == order.items_total - order.discount + order.shipping_fee - order.points_discount
    assert (lines[0].title, lines[0].spec, lines[0].unit_price, lines[0].quantity) == (
        p["lines"][0]["title"],
        "颜色:红 尺码:M",
        2990,
        2,
    )
    assert order.address["province"] == "新疆维吾尔自治区" and order.note == "放门口"
    assert (await Sku.get(id=sku.id)).stock == 8
    assert (await Product.get(id=sku.product_id)).total_stock == 8  # type: ignore[attr-defined]
    assert (await Member.get(id=member.id)).points == 2000
    entry = await PointsEntry.get(member_id=member.id, idempotency_key=f"order:{order.number}")
    assert entry.delta == -1000
    assert not await CartItem.filter(member_id=member.id).exists(), "bought cart lines are cleared"
    # Paying could not start (no merchant configured here): the order stands, payParams is null.
    assert placed["payParams"] is None
    assert [e["code"] for e in placed["errors"]] == ["PAYMENT_UNAVAILABLE"]


def _address_gid(pk: int) -> str:
    from schema.node import encode_id

    return encode_id("Address", pk)


async def test_a_failure_after_a_stock_decrement_writes_nothing() -> None:
    member, _ = await new_member(points=500)
    address_id = await new_address(member)
    plenty = await new_sku(stock=10)
    scarce = await new_sku(stock=1, shop=await Shop.get(id=plenty.product.shop_id))
    # SKU ids ascend, so `plenty` is decremented first and `scarce` then fails.
    assert plenty.id < scarce.id
    await cart.add_item(member.id, plenty.id, 3)
    request = CheckoutRequest(
        address_id=address_id,
        items=(ItemRequest(plenty.id, 3), ItemRequest(scarce.id, 2)),
        points_to_use=500,
    )
    with pytest.raises(DomainError) as failed:
        await checkout.place_order(member.id, request, "atomic")
    assert failed.value.code == ErrorCode.INSUFFICIENT_STOCK
    assert [(await Sku.get(id=s.id)).stock for s in (plenty, scarce)] == [10, 1]
    assert (await Product.get(id=plenty.product_id)).total_stock == 10  # type: ignore[attr-defined]
    assert not await Order.filter(member_id=member.id).exists()
    assert (await Member.get(id=member.id)).points == 500
    assert not await PointsEntry.filter(member_id=member.id).exists()
    assert await CartItem.filter(member_id=member.id).count() == 1


async def test_short_points_fail_the_whole_order() -> None:
    member, _ = await new_member(points=10)
    sku = await new_sku(stock=3)
    request = buy(sku, 1, await new_address(member), points_to_use=2000)
    with pytest.raises(DomainError) as failed:
        await checkout.place_order(member.id, request, "short")
    assert failed.value.code == ErrorCode.INSUFFICIENT_POINTS
    assert (await Sku.get(id=sku.id)).stock == 3 and not await Order.filter(member_id=member.id).exists()


async def test_the_same_idempotency_key_never_makes_two_orders() -> None:
    member, _ = await new_member()
    sku = await new_sku(stock=10)
    request = buy(sku, 1, await new_address(member))
    first = await checkout.place_order(member.id, request, "same")
    again = await checkout.place_order(member.id, request, "same")
    assert again.id == first.id
    racing = await asyncio.gather(*(checkout.place_order(member.id, request, "race") for _ in range(5)))
    assert len({o.id for o in racing}) == 1
    assert await Order.filter(member_id=member.id).count() == 2
    assert (await Sku.get(id=sku.id)).stock == 8


async def test_pickup_and_a_zero_amount_order() -> None:
    member, _ = await new_member(points=100000)
    sku = await new_sku(price=1, stock=5)
    # 1 fen: half of it cannot be paid in points, so it still costs 1 fen; pickup ships free.
    order = await checkout.place_order(
        member.id,
        CheckoutRequest(items=(ItemRequest(sku.id, 1),), delivery=checkout.DeliveryMethod.PICKUP),
        "pickup",
    )
    assert (order.shipping_fee, order.payable, order.address) == (0, 1, {})


async def test_a_free_order_goes_straight_to_paid() -> None:
    member, _ = await new_member()
    sku = await new_sku(price=0, stock=5)
    order = await checkout.place_order(member.id, buy(sku, 1, await new_address(member)), "free")
    assert order.payable == 0 and order.status == OrderStatus.PAID


async def test_fifty_concurrent_orders_on_stock_ten_sell_exactly_ten() -> None:
    sku = await new_sku(stock=10)
    members = [(await new_member())[0] for _ in range(50)]
    addresses = [await new_address(m) for m in members]

    async def attempt(i: int) -> Order | None:
        try:
            return await checkout.place_order(members[i].id, buy(sku, 1, addresses[i]), f"c{i}")
        except DomainError as exc:
            assert exc.code == ErrorCode.INSUFFICIENT_STOCK
            return None

    orders = [o for o in await asyncio.gather(*(attempt(i) for i in range(50))) if o is not None]
    assert len(orders) == 10
    assert (await Sku.get(id=sku.id)).stock == 0
    assert (await Product.get(id=sku.product_id)).total_stock == 0  # type: ignore[attr-defined]
    assert await OrderLine.filter(sku_id=sku.id).count() == 10


async def test_guests_cannot_place_orders(client: Any) -> None:
    sku = await new_sku()
    input = {"items": [{"skuId": sku_id(sku), "quantity": 1}], "delivery": "PICKUP"}
    body = await gql(client, PLACE, {"input": input, "key": "g"})
    assert [e["code"] for e in body["data"]["placeOrder"]["errors"]] == ["UNAUTHENTICATED"]


@pytest.mark.realservices
@pytest.mark.skipif(BACKEND != "real", reason="needs PostgreSQL + Redis")
async def test_two_hundred_members_through_two_server_processes_buy_exactly_fifty(settings: Any) -> None:
    from tests.server_process import child_env, running_server

    sku = await new_sku(stock=50)
    members = [(await new_member())[0] for _ in range(200)]
    tokens = [(await _token(m)) for m in members]
    addresses = [_address_gid(await new_address(m)) for m in members]
    env = child_env(
        {
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url,
            "SECRET_KEY": settings.resolved_secret_key,
            "DATA_DIR": str(settings.data_dir),
        }
    )
    async with running_server(env) as one, running_server(env) as two:

        async def attempt(i: int) -> dict[str, Any]:
            server = one if i % 2 else two
            input = {"addressId": addresses[i], "items": [{"skuId": sku_id(sku), "quantity": 1}]}
            response = await server.post(PLACE, {"input": input, "key": f"r{i}"}, tokens[i])
            return response.json()["data"]["placeOrder"]

        results = await asyncio.gather(*(attempt(i) for i in range(200)))
    placed = [r for r in results if r["order"] is not None]
    refused = [r for r in results if r["order"] is None]
    assert len(placed) == 50
    assert {e["code"] for r in refused for e in r["errors"]} == {"INSUFFICIENT_STOCK"}
    assert (await Sku.get(id=sku.id)).stock == 0
    assert await OrderLine.filter(sku_id=sku.id).count() == 50


async def _token(member: Member) -> str:
    from services.members.tokens import issue_tokens

    return (await issue_tokens(member)).access_token


async def test_buy_now_refuses_an_unknown_sku_one_off_the_shelf_and_two_shops_writing_nothing(
    client: Any,
) -> None:
    # "Buy now" reads its SKUs with the buyer (one statement on PostgreSQL): each refusal still names the input.
    member, token = await new_member()
    address = _address_gid(await new_address(member))
    on_sale, other_shop = await new_sku(stock=5), await new_sku(stock=5)
    off_shelf = await new_sku(stock=5)
    await Product.filter(id=off_shelf.product_id).update(status="OFF_SHELF")  # type: ignore[attr-defined]

    async def place(*skus: str) -> list[tuple[str, str]]:
        items = [{"skuId": s, "quantity": 1} for s in skus]
        variables = {"input": {"addressId": address, "items": items}, "key": f"k-{len(skus)}-{skus[-1]}"}
        payload = (await gql(client, PLACE, variables, token))["data"]["placeOrder"]
        assert payload["order"] is None
        return [(e["code"], e["field"]) for e in payload["errors"]]

    from schema.node import encode_id

    assert await place(encode_id("Sku", 10**9)) == [("NOT_FOUND", "input.items")]
    assert await place(sku_id(off_shelf)) == [("OFF_SHELF", "input.items")]
    assert await place(sku_id(on_sale), sku_id(other_shop)) == [("BAD_USER_INPUT", "input.items")]
    assert not await Order.filter(member_id=member.id).exists()
    assert [s.stock for s in await Sku.filter(id__in=[on_sale.id, other_shop.id, off_shelf.id])] == [5, 5, 5]
