"""The points mall: a member spends points on a coupon at once, or points plus cash on a SKU at checkout; stock,
per-member limits and the points ledger move together or not at all, however many exchanges race."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from models import (
    Member,
    MemberCoupon,
    Order,
    OrderLine,
    PointsEntry,
    PointsMallExchange,
    PointsMallItem,
    PointsMallItemKind,
    PointsReason,
)
from schema.node import encode_id
from services.errors import DomainError, ErrorCode
from services.marketing import points_mall
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku
from tests.test_coupons import new_coupon, staff_token

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
EXCHANGE = f"""mutation($id: ID!) {{ pointsMallExchange(itemId: $id) {{
  memberCoupon {{ id source coupon {{ name }} }} {ERRORS} }} }}"""
CREATE = f"""mutation($input: PointsMallItemCreateInput!) {{ pointsMallItemCreate(input: $input) {{
  item {{ id title kind points cash stock coupon {{ name }} }} {ERRORS} }} }}"""
ITEMS = "query { pointsMallItems(first: 50) { edges { node { id title kind points cash stock } } } }"
PLACE = f"""mutation($input: CheckoutInput!, $key: String!) {{ placeOrder(input: $input, idempotencyKey: $key) {{
  order {{ id number status payable }} {ERRORS} }} }}"""
CANCEL = f'mutation($id: ID!) {{ orderCancel(id: $id, reason: "不要了") {{ order {{ status }} {ERRORS} }} }}'


@pytest.fixture(autouse=True)
def installed() -> None:
    points_mall.install()


async def balance(member: Member) -> int:
    return (await Member.get(id=member.id)).points


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def test_a_member_exchanges_points_for_a_coupon_within_the_limits(client: Any) -> None:
    staff = await staff_token()
    coupon = await new_coupon(name="积分换10元券", public=False, total_quantity=100, per_member_limit=5)
    made = (
        await gql(
            client,
            CREATE,
            {
                "input": {
                    "title": "10元无门槛券",
                    "kind": "COUPON",
                    "points": 500,
                    "stock": 2,
                    "couponId": encode_id("Coupon", coupon.id),
                    "perMemberLimit": 1,
                }
            },
            staff,
        )
    )["data"]["pointsMallItemCreate"]
    assert made["errors"] == [] and made["item"]["coupon"]["name"] == "积分换10元券"
    bad = await gql(client, CREATE, {"input": {"title": "", "kind": "SKU", "points": 0, "stock": -1}}, staff)
    assert {e["field"] for e in bad["data"]["pointsMallItemCreate"]["errors"]} == {
        "input.title",
        "input.points",
        "input.stock",
        "input.skuId",
    }
    item_id = made["item"]["id"]
    assert item_id in {
        e["node"]["id"] for e in (await gql(client, ITEMS))["data"]["pointsMallItems"]["edges"]
    }

    member, token = await new_member(points=1200)
    got = (await gql(client, EXCHANGE, {"id": item_id}, token))["data"]["pointsMallExchange"]
    assert got["errors"] == [] and got["memberCoupon"]["source"] == "POINTS_MALL"
    assert await balance(member) == 700
    entry = await PointsEntry.get(member_id=member.id, reason=PointsReason.POINTS_MALL)
    assert (entry.delta, entry.balance_after, entry.note) == (-500, 700, "兑换 10元无门槛券")
    again = (await gql(client, EXCHANGE, {"id": item_id}, token))["data"]["pointsMallExchange"]
    assert codes(again) == ["LIMIT_EXCEEDED"] and await balance(member) == 700

    poor, poor_token = await new_member(points=100)
    short = (await gql(client, EXCHANGE, {"id": item_id}, poor_token))["data"]["pointsMallExchange"]
    assert codes(short) == ["INSUFFICIENT_POINTS"] and "500" in short["errors"][0]["message"]
    item = await PointsMallItem.filter(title="10元无门槛券").order_by("-id").first()
    assert item is not None and item.stock == 1, "the refused exchange took no stock"
    assert not await MemberCoupon.filter(member_id=poor.id).exists()


async def test_racing_exchanges_never_oversell_or_pass_the_member_limit() -> None:
    coupon = await new_coupon(name="抢兑券", public=False, total_quantity=1000, per_member_limit=3)
    item = await points_mall.create_item(
        points_mall.ItemDraft("抢兑", PointsMallItemKind.COUPON, points=100, stock=10, coupon_id=coupon.id)
    )
    members = [
        await Member.create(
            openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper(), points=250
        )
        for _ in range(15)
    ]

    async def one(member: Member) -> Any:
        try:
            return await points_mall.exchange_for_coupon(member.id, item.id)
        except DomainError as exc:
            return exc.code

    outcomes = await asyncio.gather(*(one(m) for m in members for _ in range(3)))
    won = [o for o in outcomes if isinstance(o, MemberCoupon)]
    assert len(won) == 10
    assert {o for o in outcomes if not isinstance(o, MemberCoupon)} <= {
        ErrorCode.SOLD_OUT,
        ErrorCode.LIMIT_EXCEEDED,
        ErrorCode.CONFLICT,
    }
    assert (await PointsMallItem.get(id=item.id)).stock == 0
    rows = await PointsMallExchange.filter(item_id=item.id).values_list("member_id", flat=True)
    assert len(rows) == 10 and max(rows.count(m) for m in set(rows)) == 1
    for member in members:
        spent = 250 - await balance(member)
        assert spent == 100 * rows.count(member.id)


async def test_a_sku_for_points_and_cash_is_bought_at_checkout_and_a_cancel_gives_everything_back(
    client: Any,
) -> None:
    sku = await new_sku(price=9900, stock=5)
    item = await points_mall.create_item(
        points_mall.ItemDraft(
            "积分换购保温杯", PointsMallItemKind.SKU, points=2000, stock=3, sku_id=sku.id, cash=990
        )
    )
    member, token = await new_member(points=5000)
    address = encode_id("Address", await new_address(member))
    campaign = {"kind": "POINTS_MALL", "id": encode_id("PointsMallItem", item.id)}
    buy = {
        "addressId": address,
        "items": [{"skuId": encode_id("Sku", sku.id), "quantity": 1, "campaign": campaign}],
    }
    placed = (await gql(client, PLACE, {"input": buy, "key": "mall-1"}, token))["data"]["placeOrder"]
    assert placed["order"]["status"] == "PENDING_PAYMENT"
    order = await Order.get(number=placed["order"]["number"])
    [line] = await OrderLine.filter(order_id=order.id)
    assert (line.unit_price, line.campaign_kind, line.campaign["points"]) == (990, "POINTS_MALL", 2000)
    assert await balance(member) == 3000 and (await PointsMallItem.get(id=item.id)).stock == 2
    # The per-member limit (1) holds at checkout too.
    again = (await gql(client, PLACE, {"input": buy, "key": "mall-2"}, token))["data"]["placeOrder"]
    assert codes(again) == ["LIMIT_EXCEEDED"] and await balance(member) == 3000

    cancelled = (await gql(client, CANCEL, {"id": placed["order"]["id"]}, token))["data"]["orderCancel"]
    assert cancelled["order"]["status"] == "CANCELLED"
    assert await balance(member) == 5000 and (await PointsMallItem.get(id=item.id)).stock == 3
    # Her number is free again: she may exchange it once more.
    third = (await gql(client, PLACE, {"input": buy, "key": "mall-3"}, token))["data"]["placeOrder"]
    assert third["order"]["status"] == "PENDING_PAYMENT" and await balance(member) == 3000

    poor, poor_token = await new_member(points=10)
    poor_buy = {**buy, "addressId": encode_id("Address", await new_address(poor))}
    # The preview says so already, and placing the order is refused (a race would meet the ledger's guard).
    preview = f"query($input: CheckoutInput!) {{ checkoutPreview(input: $input) {{ {ERRORS} }} }}"
    said = (await gql(client, preview, {"input": poor_buy}, poor_token))["data"]["checkoutPreview"]
    assert codes(said) == ["INSUFFICIENT_POINTS"] and "2000" in said["errors"][0]["message"]
    refused = (await gql(client, PLACE, {"input": poor_buy, "key": "mall-poor"}, poor_token))["data"][
        "placeOrder"
    ]
    assert codes(refused) == ["INSUFFICIENT_POINTS"] and not await Order.filter(member_id=poor.id).exists()
    assert (await PointsMallItem.get(id=item.id)).stock == 2
