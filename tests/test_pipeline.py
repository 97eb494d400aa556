"""The pricing pipeline: fixed stages, registered steps, every discount prorated over lines in whole fen and
recorded with its source."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import pytest

from models import Order, OrderLine, Payment, Shop, StaffRole
from schema.node import encode_id
from services.catalog.prices import PUBLIC
from services.orders import pricing
from services.orders.checkout import CheckoutRequest, ItemRequest, place_order
from services.orders.pipeline import (
    Basket,
    DiscountSource,
    PricingContext,
    Stage,
    only_steps,
    prorate,
    register_step,
    registered_steps,
)
from services.orders.pricing import PointsRules, PricedLine, ShippingRules
from services.payments.notifications import handle_payment_notification
from services.payments.refunds import line_refund
from services.payments.wechat_pay import prepay
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku
from tests.test_checkout import ERRORS, PLACE, _address_gid
from tests.test_payments import ok
from tests.test_refunds import refund_order, staff_token
from tests.wechat_pay_standin import WeChatPayStandIn

NOON = datetime(2026, 11, 28, 12, 0)


def _line(sku_id: int, unit_price: int, quantity: int = 1, campaign: str | None = None) -> PricedLine:
    return PricedLine(sku_id, sku_id, 1, unit_price, quantity, campaign=campaign)


def _ctx(coupons: tuple[int, ...] | None = None) -> PricingContext:
    return PricingContext(member_id=7, level_id=None, price=PUBLIC, now=NOON, coupons=coupons)


@pytest.mark.parametrize(
    ("amount", "weights", "shares"),
    [
        (100, [3333, 3333, 3333], [34, 33, 33]),  # a 3-way split: the leftover fen goes to the earliest line
        (1, [1, 1, 1], [1, 0, 0]),
        (2, [1, 1, 1], [1, 1, 0]),
        (1, [1, 9999], [0, 1]),  # the largest remainder wins, not the first line
        (3, [1, 1, 1], [1, 1, 1]),  # three ¥0.01 lines all free
        (500, [100, 0, 400], [100, 0, 400]),  # a line that costs nothing gets nothing
        (0, [5, 5], [0, 0]),
        (7, [], []),
    ],
)
def test_prorate_splits_in_whole_fen_that_sum_to_the_discount(
    amount: int, weights: list[int], shares: list[int]
) -> None:
    got = prorate(amount, weights)
    assert got == shares
    assert sum(got) == (min(amount, sum(weights)) if amount > 0 else 0)
    assert all(0 <= s <= w for s, w in zip(got, weights, strict=True))


class FlatOff:
    """A stand-in step: `amount` fen off every line it may touch, prorated."""

    def __init__(self, stage: Stage, amount: int, source_id: int = 1) -> None:
        self.stage = stage
        self.amount = amount
        self.source_id = source_id
        self.attached: list[tuple[int, int]] = []
        self.seen: list[PricingContext] = []

    async def apply(self, basket: Basket, ctx: PricingContext) -> None:
        self.seen.append(ctx)
        source = DiscountSource.COUPON if self.stage == Stage.COUPON else DiscountSource.PROMOTION
        basket.take(
            self.amount,
            range(len(basket.lines)),
            stage=self.stage,
            source=source,
            source_id=self.source_id,
            kind="TEST",
            title=f"立减 {self.amount}",
        )

    async def attach(self, order: Order, quote: pricing.Quote, ctx: PricingContext) -> None:
        self.attached.append((order.id, quote.discount))


@pytest.fixture
def steps() -> Iterator[list[FlatOff]]:
    made = [FlatOff(Stage.COUPON, 500, 9), FlatOff(Stage.THRESHOLD, 1000, 3)]
    with only_steps(*made):
        yield made


async def test_steps_run_in_stage_order_and_lines_always_sum_to_the_order(steps: list[FlatOff]) -> None:
    assert [s.stage for s in registered_steps()] == [Stage.THRESHOLD, Stage.COUPON]
    lines = [_line(1, 1), _line(2, 3333, 3), _line(3, 4999)]  # ¥0.01, 3 × ¥33.33, ¥49.99
    quote = await pricing.quote(
        lines, _ctx(), shipping=ShippingRules(), points=PointsRules(), points_to_use=777, province="广东省"
    )
    assert quote.items_total == 1 + 9999 + 4999
    assert [(d.stage, d.source, d.source_id, d.amount) for d in quote.discounts] == [
        (Stage.THRESHOLD, DiscountSource.PROMOTION, 3, 1000),
        (Stage.COUPON, DiscountSource.COUPON, 9, 500),
    ]
    assert quote.discount == 1500 == sum(quote.line_discounts)
    for d in quote.discounts:
        assert sum(d.line_amounts) == d.amount
    assert quote.points_discount == 777 == sum(quote.line_points)
    assert (
        sum(quote.line_paid(i) for i in range(3))
        == quote.items_total - quote.discount - quote.points_discount
    )
    assert all(quote.line_paid(i) >= 0 for i in range(3))
    assert quote.payable == quote.items_total - 1500 + quote.shipping_fee - 777


async def test_a_step_never_takes_more_than_the_goods_cost() -> None:
    with only_steps(FlatOff(Stage.THRESHOLD, 10**6)):
        quote = await pricing.quote(
            [_line(1, 1), _line(2, 2)], _ctx(), shipping=ShippingRules(), points=PointsRules()
        )
    assert (quote.discount, quote.line_discounts, quote.payable) == (3, (1, 2), 0 + quote.shipping_fee)


def test_built_in_stages_cannot_be_replaced() -> None:
    with pytest.raises(ValueError):
        register_step(FlatOff(Stage.SHIPPING, 1))


def test_waived_shipping_is_recorded_with_its_source() -> None:
    basket = Basket([_line(1, 1000)])
    basket.waive_shipping(source=DiscountSource.PROMOTION, source_id=4, kind="THRESHOLD", title="包邮")
    assert basket.free_shipping and basket.discount == 0


PREVIEW = f"""query($input: CheckoutInput!) {{ checkoutPreview(input: $input) {{ preview {{
  lines {{ lineTotal discount pointsDiscount paid }} itemsTotal discount payable
  discounts {{ stage source sourceId kind title amount }} }} {ERRORS} }} }}"""


@pytest.fixture
async def a_member() -> AsyncIterator[tuple[Any, str, int]]:
    member, token = await new_member()
    yield member, token, await new_address(member)


@pytest.mark.usefixtures("runtime")
async def test_checkout_shows_the_pipelines_discounts_and_steps_attach_to_the_order(
    client: Any, steps: list[FlatOff], a_member: tuple[Any, str, int]
) -> None:
    member, token, address_id = a_member
    first = await new_sku(price=1990)
    shop = await Shop.get(products__skus__id=first.id)
    second = await new_sku(price=3990, shop=shop)

    items = [{"skuId": encode_id("Sku", s.id), "quantity": 1} for s in (first, second)]
    input = {"addressId": _address_gid(address_id), "items": items}
    answer = (await gql(client, PREVIEW, {"input": input}, token))["data"]["checkoutPreview"]
    assert answer["errors"] == []
    p = answer["preview"]
    assert p["discount"] == 1500 and [d["stage"] for d in p["discounts"]] == ["THRESHOLD", "COUPON"]
    assert p["discounts"][1]["sourceId"] == encode_id("Coupon", 9)
    assert sum(line["discount"] for line in p["lines"]) == 1500
    assert all(line["paid"] == line["lineTotal"] - line["discount"] for line in p["lines"])
    ctx = steps[0].seen[-1]
    assert (ctx.member_id, ctx.coupons) == (member.id, None), "no choice: the coupon step picks"

    placed = (await gql(client, PLACE, {"input": input, "key": "pipeline-1"}, token))["data"]["placeOrder"]
    order = await Order.get(number=placed["order"]["number"])
    assert (order.discount, order.payable) == (1500, p["payable"])
    assert [step.attached for step in steps] == [[(order.id, 1500)], [(order.id, 1500)]]


def test_refunding_a_line_unit_by_unit_gives_back_exactly_its_cash() -> None:
    order = Order(paid_amount=0, shipping_fee=0, items_total=0)
    line = OrderLine(quantity=3, line_total=9999, discount=1001, points_discount=0, paid_total=8998)
    line.refunded_quantity = 0
    shares = []
    for done in range(3):
        shares.append(line_refund(order, line, 1, done=done))
    assert shares == [2999, 2999, 3000] and sum(shares) == 8998
    assert line_refund(order, line, 3, done=0) == 8998
    assert line_refund(order, line, 5, done=2) == 3000, "never past the line's quantity"


async def test_refunding_one_line_of_a_discounted_order_gives_back_what_it_paid(
    seeded: None, wechat_pay: WeChatPayStandIn, client: Any, steps: list[FlatOff]
) -> None:
    member, _ = await new_member()
    address_id = await new_address(member)
    first = await new_sku(price=1, stock=5)  # a ¥0.01 line
    shop = await Shop.get(products__skus__id=first.id)
    second, third = await new_sku(price=3333, shop=shop), await new_sku(price=4999, shop=shop)
    request = CheckoutRequest(
        address_id=address_id,
        items=(ItemRequest(first.id, 1), ItemRequest(second.id, 3), ItemRequest(third.id, 1)),
    )
    order = await place_order(member.id, request, "refund-one-line")
    lines = await OrderLine.filter(order_id=order.id).order_by("id")
    assert order.discount == 1500 == sum(line.discount for line in lines)
    assert [line.paid_total for line in lines] == [
        line.line_total - line.discount - line.points_discount for line in lines
    ]
    assert sum(line.paid_total or 0 for line in lines) + order.shipping_fee == order.payable
    assert [[row["source"] for row in line.discounts] for line in lines if line.discount] == [
        ["PROMOTION", "COUPON"]
    ] * len([line for line in lines if line.discount])
    await prepay(order, member.openid)
    payment = await Payment.get(order_id=order.id)
    assert ok(await handle_payment_notification(wechat_pay.payment_notification(payment.out_trade_no)))
    order = await Order.get(id=order.id)

    token = await staff_token(StaffRole.CUSTOMER_SERVICE)
    middle = lines[1]
    wanted = [{"lineId": encode_id("OrderLine", middle.id), "quantity": 3}]
    made = await refund_order(client, token, order, "one-line", lines=wanted)
    assert made["errors"] == []
    assert made["refund"]["amount"] == middle.paid_total, "the line's cash, not its list price"
    assert made["refund"]["amount"] < middle.line_total
