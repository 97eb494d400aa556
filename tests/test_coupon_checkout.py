"""Coupons at checkout: the preview shows every held coupon (usable or why not, and the gap), picks the best
combination by itself, refuses a chosen coupon that no longer applies by name; placeOrder spends it inside the
order's transaction; cancelling, the unpaid timeout and (when the coupon says so) a full refund give it back."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from infra.clock import now
from infra.query_counter import count_queries
from models import (
    ActorKind,
    CouponKind,
    CouponScope,
    CouponSource,
    HeldCouponStatus,
    MemberCoupon,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    PromotionKind,
    PromotionStatus,
    Shop,
)
from schema.node import encode_id
from services.errors import DomainError, ErrorCode
from services.marketing.coupons import checkout as coupon_checkout
from services.marketing.coupons import templates, wallet
from services.marketing.promotions import admin as promotion_admin
from services.orders import checkout, states, sweeper
from services.orders.checkout import CheckoutRequest, ItemRequest
from services.orders.pipeline import Stage, unregister_step
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku
from tests.test_coupons import CENTER, CLAIM, WALLET, new_coupon

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
PREVIEW = f"""query($input: CheckoutInput!) {{ checkoutPreview(input: $input) {{ preview {{
  itemsTotal discount shippingFee payable
  lines {{ lineTotal discount }}
  discounts {{ stage source sourceId kind title amount }}
  coupons {{ memberCoupon {{ id coupon {{ name }} }} applicable reason gap discount selected }}
}} {ERRORS} }} }}"""
PLACE = f"""mutation($input: CheckoutInput!, $key: String!) {{ placeOrder(input: $input, idempotencyKey: $key) {{
  order {{ id number status payable }} {ERRORS} }} }}"""
CANCEL = (
    f'mutation($id: ID!) {{ orderCancel(id: $id, reason: "不想要了") {{ order {{ status }} {ERRORS} }} }}'
)


@pytest.fixture(autouse=True)
def coupon_step() -> Iterator[None]:
    # Other test modules replace pipeline steps with their own and remove them; make sure ours is in place.
    coupon_checkout.install()
    yield


def held_gid(held: MemberCoupon) -> str:
    return encode_id("MemberCoupon", held.id)


async def test_a_shoppers_day_claim_see_check_out_with_the_picked_coupon_cancel_and_get_it_back(
    client: Any,
) -> None:
    coupon = await new_coupon(
        name="满100减20", kind=CouponKind.THRESHOLD, amount_off=2000, min_amount=10000, per_member_limit=1
    )
    member, token = await new_member()
    address = encode_id("Address", await new_address(member))
    sku = await new_sku(price=6000, stock=10)

    # The coupon center shows the coupon; she claims it and the center shows it claimed.
    gid = encode_id("Coupon", coupon.id)
    assert (await gql(client, CLAIM, {"id": gid}, token))["data"]["couponClaim"]["errors"] == []
    center = (await gql(client, CENTER, token=token))["data"]["couponCenter"]["edges"]
    assert [e["node"]["claimed"] for e in center if e["node"]["id"] == gid] == [1]

    # One item (¥60.00) is not enough: the preview says how much more she needs.
    one = {"addressId": address, "items": [{"skuId": encode_id("Sku", sku.id), "quantity": 1}]}
    preview = (await gql(client, PREVIEW, {"input": one}, token))["data"]["checkoutPreview"]["preview"]
    [held] = preview["coupons"]
    assert (held["applicable"], held["reason"], held["gap"], held["selected"]) == (
        False,
        "再买 ¥40.00 可用",
        4000,
        False,
    )
    assert preview["discount"] == 0

    # Two items (¥120.00): the coupon is picked by itself and shown with its source.
    two = {**one, "items": [{"skuId": encode_id("Sku", sku.id), "quantity": 2}]}
    preview = (await gql(client, PREVIEW, {"input": two}, token))["data"]["checkoutPreview"]["preview"]
    assert preview["coupons"][0]["selected"] and preview["discount"] == 2000
    assert preview["discounts"] == [
        {
            "stage": "COUPON",
            "source": "COUPON",
            "sourceId": gid,
            "kind": "THRESHOLD",
            "title": "满100减20",
            "amount": 2000,
        }
    ]
    assert preview["payable"] == 12000 - 2000 + preview["shippingFee"]

    placed = (await gql(client, PLACE, {"input": two, "key": "day-1"}, token))["data"]["placeOrder"]
    assert placed["order"]["payable"] == preview["payable"]
    spent = await MemberCoupon.get(member_id=member.id)
    assert spent.status == HeldCouponStatus.USED and spent.order_id is not None
    # The order's line keeps the coupon's share, with its source, for refunds by line.
    [line] = await OrderLine.filter(order_id=spent.order_id)
    assert (line.discount, line.paid_total) == (2000, 10000)
    assert [(d["source"], d["amount"]) for d in line.discounts] == [("COUPON", 2000)]
    used = (await gql(client, WALLET, {"status": "USED"}, token))["data"]["myCoupons"]
    assert used["totalCount"] == 1

    # She cancels the unpaid order: the coupon is back in her wallet.
    cancelled = (await gql(client, CANCEL, {"id": placed["order"]["id"]}, token))["data"]["orderCancel"]
    assert cancelled["order"]["status"] == "CANCELLED"
    usable = (await gql(client, WALLET, {"status": "USABLE"}, token))["data"]["myCoupons"]
    assert usable["totalCount"] == 1
    back = await MemberCoupon.get(id=spent.id)
    assert (back.status, back.order_id) == (HeldCouponStatus.UNUSED, None)


async def test_the_best_combination_is_picked_and_a_choice_is_honoured_or_refused_by_name(
    client: Any,
) -> None:
    member, token = await new_member()
    address = encode_id("Address", await new_address(member))
    sku = await new_sku(price=10000, stock=10)
    lone = await wallet.grant(
        member.id, (await new_coupon(name="无门槛50", amount_off=5000)).id, CouponSource.ISSUED
    )
    a = await wallet.grant(
        member.id, (await new_coupon(name="叠加30A", amount_off=3000, stackable=True)).id, CouponSource.ISSUED
    )
    b = await wallet.grant(
        member.id,
        (
            await new_coupon(
                name="叠加9折",
                kind=CouponKind.DISCOUNT,
                discount_percent=90,
                max_discount=3000,
                stackable=True,
            )
        ).id,
        CouponSource.ISSUED,
    )
    other_product = (await new_sku()).product_id  # type: ignore[attr-defined]
    elsewhere_coupon = await new_coupon(
        name="别的商品", amount_off=100, scope=CouponScope.PRODUCTS, scope_ids=(other_product,)
    )
    elsewhere = await wallet.grant(member.id, elsewhere_coupon.id, CouponSource.ISSUED)
    items = [{"skuId": encode_id("Sku", sku.id), "quantity": 2}]
    auto = {"addressId": address, "items": items}
    preview = (await gql(client, PREVIEW, {"input": auto}, token))["data"]["checkoutPreview"]["preview"]
    # ¥200.00: the 9折 (¥20.00, capped at ¥30.00) plus 30 stack to ¥50.00... the same as 50 alone, with more coupons:
    # the search prefers fewer. Make the 9折 bigger than that by buying more.
    assert preview["discount"] == 5000
    four = {"addressId": address, "items": [{"skuId": encode_id("Sku", sku.id), "quantity": 4}]}
    preview = (await gql(client, PREVIEW, {"input": four}, token))["data"]["checkoutPreview"]["preview"]
    selected = {c["memberCoupon"]["coupon"]["name"] for c in preview["coupons"] if c["selected"]}
    assert selected == {"叠加30A", "叠加9折"} and preview["discount"] == 6000
    assert sum(line["discount"] for line in preview["lines"]) == 6000
    reasons = {c["memberCoupon"]["coupon"]["name"]: c["reason"] for c in preview["coupons"]}
    assert reasons["别的商品"] == "本单没有适用此券的商品" and reasons["无门槛50"] is None

    # Her own choice is used as it is.
    chosen = {**four, "couponIds": [held_gid(lone)]}
    preview = (await gql(client, PREVIEW, {"input": chosen}, token))["data"]["checkoutPreview"]["preview"]
    assert preview["discount"] == 5000
    none = {**four, "couponIds": []}
    assert (await gql(client, PREVIEW, {"input": none}, token))["data"]["checkoutPreview"]["preview"][
        "discount"
    ] == 0

    # A choice that does not apply is refused, naming the coupon: never swapped for another.
    bad = {**four, "couponIds": [held_gid(a), held_gid(elsewhere)]}
    refused = (await gql(client, PREVIEW, {"input": bad}, token))["data"]["checkoutPreview"]
    [error] = refused["errors"]
    assert (error["code"], error["field"]) == ("COUPON_NOT_APPLICABLE", "input.couponIds[1]")
    assert "别的商品" in error["message"] and "本单没有适用此券的商品" in error["message"]
    mixed = {**four, "couponIds": [held_gid(lone), held_gid(b)]}
    refused = (await gql(client, PLACE, {"input": mixed, "key": "mixed"}, token))["data"]["placeOrder"]
    assert [e["code"] for e in refused["errors"]] == ["COUPON_NOT_APPLICABLE"]
    assert "无门槛50" in refused["errors"][0]["message"]
    assert not await Order.filter(member_id=member.id).exists()
    stranger, stranger_token = await new_member()
    theirs_input = {
        **four,
        "addressId": encode_id("Address", await new_address(stranger)),
        "couponIds": [held_gid(a)],
    }
    theirs = (await gql(client, PREVIEW, {"input": theirs_input}, stranger_token))["data"]
    assert [e["code"] for e in theirs["checkoutPreview"]["errors"]] == ["COUPON_NOT_APPLICABLE"]


async def test_two_orders_racing_for_one_coupon_write_one(client: Any) -> None:
    member, _ = await new_member()
    address_id = await new_address(member)
    sku = await new_sku(price=5000, stock=10)
    held = await wallet.grant(member.id, (await new_coupon(amount_off=1000)).id, CouponSource.ISSUED)
    request = CheckoutRequest(address_id=address_id, items=(ItemRequest(sku.id, 1),), coupons=(held.id,))

    async def place(key: str) -> Any:
        try:
            return await checkout.place_order(member.id, request, key)
        except DomainError as exc:
            return exc.code

    outcomes = await asyncio.gather(*(place(f"race-{n}") for n in range(6)))
    orders = [o for o in outcomes if isinstance(o, Order)]
    assert len(orders) == 1 and set(outcomes) - set(orders) == {ErrorCode.COUPON_NOT_APPLICABLE}
    assert orders[0].discount == 1000
    assert await Order.filter(member_id=member.id).count() == 1
    assert (await sku.__class__.get(id=sku.id)).stock == 9, "the losers' stock came back with their rollback"


async def test_the_unpaid_timeout_returns_the_coupon_and_an_expired_one_stays_spent() -> None:
    member, _ = await new_member()
    address_id = await new_address(member)
    sku = await new_sku(price=5000, stock=10)
    fresh = await wallet.grant(
        member.id, (await new_coupon(amount_off=1000, stackable=True)).id, CouponSource.ISSUED
    )
    ending = await wallet.grant(
        member.id, (await new_coupon(amount_off=500, stackable=True)).id, CouponSource.ISSUED
    )
    request = CheckoutRequest(address_id=address_id, items=(ItemRequest(sku.id, 1),))
    order = await checkout.place_order(member.id, request, "timeout")
    assert order.discount == 1500
    # The second coupon expires while the order waits; then the order times out.
    await MemberCoupon.filter(id=ending.id).update(valid_until=now() + timedelta(seconds=1))
    await Order.filter(id=order.id).update(pay_deadline=now() - timedelta(seconds=1))
    await asyncio.sleep(1.1)
    await sweeper.sweep_once()
    assert (await Order.get(id=order.id)).status == OrderStatus.CANCELLED
    assert (await MemberCoupon.get(id=fresh.id)).status == HeldCouponStatus.UNUSED
    assert (await MemberCoupon.get(id=ending.id)).status == HeldCouponStatus.USED


@pytest.mark.parametrize("returnable", [True, False])
async def test_a_full_refund_returns_the_coupon_only_when_the_coupon_says_so(returnable: bool) -> None:
    member, _ = await new_member()
    address_id = await new_address(member)
    sku = await new_sku(price=5000, stock=10)
    held = await wallet.grant(
        member.id, (await new_coupon(amount_off=1000, return_on_refund=returnable)).id, CouponSource.ISSUED
    )
    order = await checkout.place_order(
        member.id,
        CheckoutRequest(address_id=address_id, items=(ItemRequest(sku.id, 1),)),
        f"refund-{returnable}",
    )
    await states.transition(order.id, OrderStatus.PAID, actor=ActorKind.SYSTEM, paid_amount=order.payable)
    await states.transition(order.id, OrderStatus.CANCELLED, actor=ActorKind.SYSTEM, reason="full refund")
    status = (await MemberCoupon.get(id=held.id)).status
    assert status == (HeldCouponStatus.UNUSED if returnable else HeldCouponStatus.USED)


async def test_without_the_coupon_step_checkout_ignores_coupons() -> None:
    # Orders never imports marketing: with the step removed, checkout still works (and spends nothing).
    member, _ = await new_member()
    sku = await new_sku(price=5000, stock=10)
    held = await wallet.grant(member.id, (await new_coupon(amount_off=1000)).id, CouponSource.ISSUED)
    unregister_step(Stage.COUPON)
    try:
        order = await checkout.place_order(
            member.id,
            CheckoutRequest(address_id=await new_address(member), items=(ItemRequest(sku.id, 1),)),
            "plain",
        )
    finally:
        coupon_checkout.install()
    assert order.discount == 0 and (await MemberCoupon.get(id=held.id)).status == HeldCouponStatus.UNUSED


async def test_a_preview_costs_the_same_statements_whatever_it_holds(client: Any) -> None:
    """Lines, held coupons and running promotions are each read in one statement (plus the buyer and the
    SKUs): a basket of one line and one coupon costs what six lines, eight coupons and a promotion cost."""
    shop = await Shop.create(code=f"flat-{secrets.token_hex(3)}", name="平价店")
    skus = [await new_sku(price=3000 + 100 * i, stock=50, shop=shop) for i in range(6)]
    member, token = await new_member()
    address = encode_id("Address", await new_address(member))
    for i in range(8):
        held = await new_coupon(amount_off=100 + i, stackable=i % 2 == 0)
        await wallet.grant(member.id, held.id, CouponSource.ISSUED)
    category = (await Product.get(id=skus[0].product_id)).category_id  # type: ignore[attr-defined]
    promotion = await promotion_admin.create_promotion(
        promotion_admin.PromotionDraft(
            title="类目满减",
            kind=PromotionKind.THRESHOLD,
            starts_at=now() - timedelta(hours=1),
            ends_at=now() + timedelta(hours=1),
            conditions=[{"type": "CATEGORIES", "args": {"ids": [category]}}],
            actions=[{"type": "AMOUNT_OFF", "args": {"amount": 500}}],
        )
    )
    await promotion_admin.set_status(promotion.id, PromotionStatus.ACTIVE)
    try:

        async def statements(count: int) -> int:
            items = [{"skuId": encode_id("Sku", sku.id), "quantity": 1} for sku in skus[:count]]
            variables = {"input": {"addressId": address, "items": items}}
            await gql(client, PREVIEW, variables, token)  # what a process keeps warm
            with count_queries() as counter:
                preview = (await gql(client, PREVIEW, variables, token))["data"]["checkoutPreview"]
            assert preview["errors"] == [] and len(preview["preview"]["coupons"]) == 8
            return counter.count

        small, large = await statements(1), await statements(6)
        assert small == large <= 5, (small, large)
    finally:
        await promotion_admin.delete_promotion(promotion.id)


async def test_a_template_changed_by_staff_prices_the_next_preview(client: Any) -> None:
    """Checkout keeps coupon templates per process, but never one older than the database's: staff making a
    held coupon non-stackable changes the very next preview (in any process: the held coupons' read brings
    each template's updated_at, which every change stamps)."""
    member, token = await new_member()
    sku = await new_sku(price=30000, stock=10)  # far above free shipping: only the coupons count
    first = await new_coupon(amount_off=1000, stackable=True)
    second = await new_coupon(amount_off=1000, stackable=True)
    for template in (first, second):
        await wallet.grant(member.id, template.id, CouponSource.ISSUED)
    one = {
        "addressId": encode_id("Address", await new_address(member)),
        "items": [{"skuId": encode_id("Sku", sku.id), "quantity": 1}],
    }

    async def discount() -> int:
        payload = (await gql(client, PREVIEW, {"input": one}, token))["data"]["checkoutPreview"]
        return int(payload["preview"]["discount"])

    assert await discount() == 2000, "both stack"
    await templates.update_coupon(second.id, {"stackable": False})
    assert await discount() == 1000, "one alone now"
