"""Staff run promotions through the API (create, check, activate, list, change, stop, delete; audited), and a
shopper's weekend: a 满减 weekend and a limited-time discount priced at checkout and kept on the order lines."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from infra.clock import SHOP_TZ, now, set_clock
from models import (
    AuditLog,
    Order,
    OrderLine,
    Product,
    Promotion,
    PromotionKind,
    PromotionStatus,
    Shop,
    Sku,
    StaffRole,
)
from schema.node import encode_id
from services.access.staff import create_staff
from services.marketing.promotions import admin
from services.marketing.promotions.engine import forget_running_promotions
from services.members.tokens import issue_tokens
from services.orders import checkout
from services.orders.checkout import CheckoutRequest, ItemRequest
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
FIELDS = """id title kind status startsAt endsAt combinesWithPromotions combinesWithCoupons appliesToCampaignLines
  priority conditions { type args } actions { type args }"""
CREATE = f"""mutation($input: PromotionCreateInput!) {{ promotionCreate(input: $input) {{
  promotion {{ {FIELDS} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: PromotionUpdateInput!) {{ promotionUpdate(id: $id, input: $input) {{
  promotion {{ {FIELDS} }} {ERRORS} }} }}"""
ACTIVATE = f"""mutation($id: ID!) {{ promotionActivate(id: $id) {{ promotion {{ id status }} {ERRORS} }} }}"""
DEACTIVATE = (
    f"""mutation($id: ID!) {{ promotionDeactivate(id: $id) {{ promotion {{ id status }} {ERRORS} }} }}"""
)
DELETE = f"""mutation($id: ID!) {{ promotionDelete(id: $id) {{ deletedId {ERRORS} }} }}"""
LIST = """query($filter: PromotionFilter, $first: Int, $after: String) {
  promotions(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id title status kind } } pageInfo { hasNextPage endCursor } totalCount } }"""
PREVIEW = f"""query($input: CheckoutInput!) {{ checkoutPreview(input: $input) {{ preview {{
  lines {{ unitPrice lineTotal discount paid }} itemsTotal discount shippingFee payable
  discounts {{ stage source sourceId kind title amount }} }} {ERRORS} }} }}"""
PLACE = f"""mutation($input: CheckoutInput!, $key: String!) {{ placeOrder(input: $input, idempotencyKey: $key) {{
  order {{ id number payable discount discounts {{ stage kind title amount }}
    lines {{ lineTotal discount paid discounts {{ stage sourceId amount }} }} }} {ERRORS} }} }}"""

# Saturday 2026-11-28 10:00 shop time: the weekend.
SATURDAY = datetime(2026, 11, 28, 10, 0, tzinfo=SHOP_TZ)


@pytest.fixture(autouse=True)
async def no_promotions_left() -> AsyncIterator[None]:
    """Promotions apply shop-wide: none outlives its test."""
    yield
    await Promotion.all().delete()
    forget_running_promotions()  # deleted behind the admin's back: it would have dropped the copy


async def real_time_token(member: Any, clock: list[datetime]) -> str:
    """An access token signed on the real clock (the JWT library checks expiry against it)."""
    set_clock(None)
    try:
        return (await issue_tokens(member)).access_token
    finally:
        set_clock(lambda: clock[-1])


@pytest.fixture
def clock() -> Iterator[list[datetime]]:
    moments = [SATURDAY]
    set_clock(lambda: moments[-1])
    yield moments
    set_clock(None)


async def staff(role: StaffRole = StaffRole.OPERATOR) -> str:
    _, token = await create_staff(f"promo-{role.value.lower()}-{secrets.token_hex(3)}", role)
    return token


def weekend_input(**extra: Any) -> dict[str, Any]:
    return {
        "title": "周末满300减40",
        "kind": "THRESHOLD",
        "startsAt": "2026-11-28T00:00:00+08:00",
        "endsAt": "2026-11-30T00:00:00+08:00",
        "conditions": [{"type": "MIN_AMOUNT", "args": {"amount": 30000}}],
        "actions": [{"type": "AMOUNT_OFF", "args": {"amount": 4000}}],
        **extra,
    }


def codes_by_field(payload: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["code"] for e in payload["errors"]}


async def test_staff_reject_bad_rules_with_field_errors(client: Any) -> None:
    token = await staff()
    bad = weekend_input(
        endsAt="2026-11-27T00:00:00+08:00",
        conditions=[
            {"type": "PRODUCTS", "args": {"ids": []}},
            {"type": "CATEGORIES", "args": {"ids": [encode_id("Category", 10**8)]}},
        ],
        actions=[{"type": "PERCENT_OFF", "args": {"percent": 120}}, {"type": "BOGUS"}],
    )
    answer = (await gql(client, CREATE, {"input": bad}, token))["data"]["promotionCreate"]
    assert answer["promotion"] is None
    percent = next(e for e in answer["errors"] if e["field"] == "input.actions[0].args")
    assert percent["message"] == "percent: The percentage off is 1 to 100"
    assert codes_by_field(answer) == {
        "input.endsAt": "BAD_USER_INPUT",
        "input.conditions[0].args": "BAD_USER_INPUT",
        "input.conditions[1].args": "NOT_FOUND",
        "input.actions[0].args": "BAD_USER_INPUT",
        "input.actions[1].type": "BAD_USER_INPUT",
    }
    wrong_id = weekend_input(conditions=[{"type": "PRODUCTS", "args": {"ids": ["not-an-id"]}}])
    answer = (await gql(client, CREATE, {"input": wrong_id}, token))["data"]["promotionCreate"]
    assert codes_by_field(answer) == {"input.conditions[0].args": "INVALID_ID"}
    assert answer["errors"][0]["message"].startswith("ids: ")
    limited = weekend_input(kind="LIMITED_TIME", actions=[{"type": "FREE_SHIPPING"}])
    answer = (await gql(client, CREATE, {"input": limited}, token))["data"]["promotionCreate"]
    assert codes_by_field(answer) == {"input.actions[0].type": "BAD_USER_INPUT"}
    assert not await Promotion.filter(title="周末满300减40").exists(), "nothing written"


async def test_staff_run_a_promotion_through_its_life_audited(client: Any) -> None:
    token = await staff()
    warehouse = await staff(StaffRole.WAREHOUSE)
    refused = (await gql(client, CREATE, {"input": weekend_input()}, warehouse))["data"]["promotionCreate"]
    assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]

    sku = await new_sku(price=1000)
    made = (
        await gql(
            client,
            CREATE,
            {
                "input": weekend_input(
                    conditions=[
                        {"type": "MIN_AMOUNT", "args": {"amount": 30000}},
                        {"type": "PRODUCTS", "args": {"ids": [encode_id("Product", sku.product_id)]}},  # type: ignore[attr-defined]
                    ]
                )
            },
            token,
        )
    )["data"]["promotionCreate"]
    assert made["errors"] == []
    promotion = made["promotion"]
    assert promotion["status"] == "DRAFT" and promotion["combinesWithCoupons"] is True
    assert promotion["conditions"][1] == {
        "type": "PRODUCTS",
        "args": {"ids": [encode_id("Product", sku.product_id)]},  # type: ignore[attr-defined]
    }, "ids go out as global IDs"

    changed = (
        await gql(
            client, UPDATE, {"id": promotion["id"], "input": {"title": "周末大促", "endsAt": None}}, token
        )
    )["data"]["promotionUpdate"]
    assert changed["errors"] == [] and changed["promotion"]["title"] == "周末大促"
    assert changed["promotion"]["endsAt"] is None
    worse = (
        await gql(
            client, UPDATE, {"id": promotion["id"], "input": {"endsAt": "2026-01-01T00:00:00+08:00"}}, token
        )
    )["data"]["promotionUpdate"]
    assert codes_by_field(worse) == {"input.endsAt": "BAD_USER_INPUT"}

    active = (await gql(client, ACTIVATE, {"id": promotion["id"]}, token))["data"]["promotionActivate"]
    assert active["promotion"]["status"] == "ACTIVE"
    listed = (
        await gql(client, LIST, {"filter": {"status": "ACTIVE", "search": "周末大"}, "first": 5}, token)
    )["data"]["promotions"]
    assert [e["node"]["id"] for e in listed["edges"]] == [promotion["id"]] and listed["totalCount"] == 1
    anonymous = await gql(client, LIST, {}, expect_errors=True)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    stopped = (await gql(client, DEACTIVATE, {"id": promotion["id"]}, token))["data"]["promotionDeactivate"]
    assert stopped["promotion"]["status"] == "INACTIVE"
    gone = (await gql(client, DELETE, {"id": promotion["id"]}, token))["data"]["promotionDelete"]
    assert gone == {"deletedId": promotion["id"], "errors": []}
    missing = (await gql(client, ACTIVATE, {"id": promotion["id"]}, token))["data"]["promotionActivate"]
    assert codes_by_field(missing) == {"id": "NOT_FOUND"}

    actions = await AuditLog.filter(target=promotion["id"]).order_by("id").values_list("action", "succeeded")
    assert [a for a, ok in actions if ok] == [
        "promotionCreate",
        "promotionUpdate",
        "promotionActivate",
        "promotionDeactivate",
        "promotionDelete",
    ]
    assert await AuditLog.filter(action="promotionCreate", succeeded=False).exists()


async def test_a_shoppers_weekend_limited_time_and_man_jian(client: Any, clock: list[datetime]) -> None:
    """Staff set up a 满300减40 weekend and a limited-time 8折 on a scarf; a shopper buys the scarf and a coat
    on Saturday, and what each line paid is kept on the order."""
    token = await staff()
    scarf = await new_sku(price=12900, stock=10)
    shop = await Shop.get(products__skus__id=scarf.id)
    coat = await new_sku(price=19900, stock=10, shop=shop)
    scarf_product = encode_id("Product", scarf.product_id)  # type: ignore[attr-defined]
    limited = {
        "title": "围巾限时8折",
        "kind": "LIMITED_TIME",
        "startsAt": "2026-11-28T09:00:00+08:00",
        "endsAt": "2026-11-28T12:00:00+08:00",
        "conditions": [{"type": "PRODUCTS", "args": {"ids": [scarf_product]}}],
        "actions": [{"type": "PERCENT_OFF", "args": {"percent": 20}}],
    }
    ids = []
    for input in (weekend_input(), limited):
        made = (await gql(client, CREATE, {"input": input}, token))["data"]["promotionCreate"]
        assert made["errors"] == []
        ids.append(made["promotion"]["id"])
        await gql(client, ACTIVATE, {"id": ids[-1]}, token)
    weekend_id, limited_id = ids

    member, _ = await new_member()
    shopper = await real_time_token(member, clock)
    address = await new_address(member)
    items = [{"skuId": encode_id("Sku", s.id), "quantity": 1} for s in (scarf, coat)]
    input = {"addressId": encode_id("Address", address), "items": items}
    p = (await gql(client, PREVIEW, {"input": input}, shopper))["data"]["checkoutPreview"]["preview"]
    # Scarf 129.00 → 103.20 (8折); with the coat 199.00 the goods are 302.20 ≥ 300: 40.00 off.
    assert [(d["stage"], d["sourceId"], d["amount"]) for d in p["discounts"]] == [
        ("LIMITED_TIME", limited_id, 2580),
        ("THRESHOLD", weekend_id, 4000),
    ]
    assert p["discount"] == 6580 and p["payable"] == 12900 + 19900 - 6580 + p["shippingFee"]
    assert sum(line["paid"] for line in p["lines"]) == 12900 + 19900 - 6580

    placed = (await gql(client, PLACE, {"input": input, "key": "weekend-1"}, shopper))["data"]["placeOrder"]
    order = placed["order"]
    assert order["discount"] == 6580 and order["payable"] == p["payable"]
    assert [d["kind"] for d in order["discounts"]] == ["LIMITED_TIME", "THRESHOLD"]
    scarf_line = order["lines"][0] if order["lines"][0]["lineTotal"] == 12900 else order["lines"][1]
    assert [d["sourceId"] for d in scarf_line["discounts"]] == [limited_id, weekend_id]
    assert scarf_line["paid"] == 12900 - scarf_line["discount"]
    stored = await OrderLine.filter(order__number=order["number"])
    assert (
        sum(line.paid_total or 0 for line in stored) + (await Order.get(number=order["number"])).shipping_fee
        == (order["payable"])
    )

    # At noon the limited-time discount is over: 129.00 + 199.00 = 328.00, still 满300.
    clock.append(SATURDAY.replace(hour=12))
    p = (await gql(client, PREVIEW, {"input": input}, shopper))["data"]["checkoutPreview"]["preview"]
    assert [(d["stage"], d["amount"]) for d in p["discounts"]] == [("THRESHOLD", 4000)]
    # Monday: the weekend is over.
    clock.append(SATURDAY + timedelta(days=2))
    p = (await gql(client, PREVIEW, {"input": input}, shopper))["data"]["checkoutPreview"]["preview"]
    assert p["discounts"] == [] and p["discount"] == 0


async def test_a_gift_comes_as_a_free_line_while_its_stock_lasts(client: Any, clock: list[datetime]) -> None:
    token = await staff()
    coat = await new_sku(price=5000, stock=10)
    gift = await new_sku(price=1990, stock=1)
    made = (
        await gql(
            client,
            CREATE,
            {
                "input": weekend_input(
                    title="买就送围巾",
                    conditions=[],
                    actions=[
                        {"type": "GIFT_SKU", "args": {"sku_id": encode_id("Sku", gift.id), "quantity": 1}},
                        {"type": "FREE_SHIPPING"},
                    ],
                )
            },
            token,
        )
    )["data"]["promotionCreate"]
    assert made["errors"] == []
    await gql(client, ACTIVATE, {"id": made["promotion"]["id"]}, token)
    member, _ = await new_member()
    shopper = await real_time_token(member, clock)
    address = await new_address(member, "新疆维吾尔自治区", "乌鲁木齐市", "天山区")
    input = {
        "addressId": encode_id("Address", address),
        "items": [{"skuId": encode_id("Sku", coat.id), "quantity": 1}],
    }
    preview = """query($input: CheckoutInput!) { checkoutPreview(input: $input) { preview {
      shippingFee payable gifts { skuId quantity title } discounts { stage kind amount } } errors { code } } }"""
    p = (await gql(client, preview, {"input": input}, shopper))["data"]["checkoutPreview"]["preview"]
    assert p["gifts"] == [{"skuId": encode_id("Sku", gift.id), "quantity": 1, "title": "买就送围巾"}]
    assert p["shippingFee"] == 0 and p["discounts"] == [
        {"stage": "SHIPPING", "kind": "THRESHOLD", "amount": 2500}
    ]
    assert p["payable"] == 5000, "新疆 ships at 25.00, waived"
    first = (await gql(client, PLACE, {"input": input, "key": "gift-1"}, shopper))["data"]["placeOrder"][
        "order"
    ]
    lines = await OrderLine.filter(order__number=first["number"]).order_by("id")
    assert [(line.sku_id, line.unit_price, line.line_total) for line in lines] == [
        (coat.id, 5000, 5000),
        (gift.id, 0, 0),
    ]
    assert first["payable"] == 5000
    second = (await gql(client, PLACE, {"input": input, "key": "gift-2"}, shopper))["data"]["placeOrder"][
        "order"
    ]
    assert await OrderLine.filter(order__number=second["number"]).count() == 1, (
        "the gift ran out: no gift line"
    )


async def test_orders_whose_lines_and_gifts_cross_never_deadlock() -> None:
    """Half the shoppers buy X and are given Y, the other half buy Y and are given X, all at once. Every order
    takes its SKU rows, bought or given, in one ascending order (then the products' totals): on PostgreSQL
    none of them deadlocks, and every unit sold or given is counted once."""
    shop = await Shop.create(code=f"gift-{secrets.token_hex(3)}", name="赠品店")
    x = await new_sku(price=5000, stock=100, shop=shop)
    y = await new_sku(price=3000, stock=100, shop=shop)
    for bought, given in ((x, y), (y, x)):
        row = await admin.create_promotion(
            admin.PromotionDraft(
                title=f"买{bought.id}送{given.id}",
                kind=PromotionKind.THRESHOLD,
                starts_at=now() - timedelta(hours=1),
                ends_at=now() + timedelta(days=1),
                conditions=[{"type": "PRODUCTS", "args": {"ids": [bought.product_id]}}],  # type: ignore[attr-defined]
                actions=[{"type": "GIFT_SKU", "args": {"sku_id": given.id, "quantity": 1}}],
            )
        )
        await admin.set_status(row.id, PromotionStatus.ACTIVE)
    shoppers = [(await new_member())[0] for _ in range(24)]
    addresses = [await new_address(m) for m in shoppers]

    async def order(i: int) -> Order:
        sku = x if i % 2 else y
        request = CheckoutRequest(address_id=addresses[i], items=(ItemRequest(sku.id, 1),))
        return await checkout.place_order(shoppers[i].id, request, f"cross-{i}")

    orders = await asyncio.gather(*(order(i) for i in range(len(shoppers))))
    for i, placed in enumerate(orders):
        bought, given = (x, y) if i % 2 else (y, x)
        lines = await OrderLine.filter(order_id=placed.id).order_by("id").values_list("sku_id", "line_total")
        assert [tuple(line) for line in lines] == [(bought.id, bought.price), (given.id, 0)]
    for sku in (x, y):
        assert (await Sku.get(id=sku.id)).stock == 100 - 24, "12 bought and 12 given"
        assert (await Product.get(id=sku.product_id)).total_stock == 100 - 24  # type: ignore[attr-defined]
