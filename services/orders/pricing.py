"""Order pricing: priced lines through the pricing pipeline (services.orders.pipeline: promotions and coupons
registered by marketing), then points and shipping, into a quote whose every discount is prorated over lines.

Unit prices come from `services.catalog.prices`, so the product page, the cart and checkout agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from infra.settings import MAX_PURCHASE_LIMIT, MAX_SHIPPING_FEE
from models import Sku
from services.catalog.drafts import MAX_PRICE
from services.catalog.prices import PriceContext, unit_price
from services.orders.pipeline import (
    AppliedDiscount,
    Basket,
    Gift,
    PricingContext,
    Stage,
    prorate,
    run_steps,
)

# --- Orders: lines, the pipeline's discounts, points and shipping ------------------------------------------
#
# A quote is built from priced lines only, so every total can be recomputed from what an order stores:
#   items_total = sum(line_total), payable = items_total - discount + shipping_fee - points_discount.
#
# Every total fits a 32-bit signed Int (GraphQL's Int, PostgreSQL's integer), by these bounds:
#   unit price      <= MAX_PRICE (¥200,000; catalog checks)      quantity per line <= MAX_PURCHASE_LIMIT (100)
#   line total      <= MAX_PRICE * 100 = MAX_ORDER_TOTAL
#   items total     <= MAX_ORDER_TOTAL (checkout refuses more; the cart flags lines past it as ORDER_LIMIT)
#   discount        <= items total;  points discount <= items total * POINTS_MAX_PERCENT
#   shipping fee    <= MAX_SHIPPING_FEE (settings)
#   payable         <= MAX_ORDER_TOTAL + MAX_SHIPPING_FEE = 2,010,000,000 < 2,147,483,647
#   refunds         <= paid amount = payable;  points used <= the points asked for (an Int) and the balance
MAX_ORDER_TOTAL = MAX_PRICE * MAX_PURCHASE_LIMIT
INT32_MAX = 2**31 - 1
assert MAX_ORDER_TOTAL + MAX_SHIPPING_FEE <= INT32_MAX


@dataclass(frozen=True)
class PricedLine:
    sku_id: int
    product_id: int
    shop_id: int
    unit_price: int
    quantity: int
    campaign: str | None = None  # the CampaignKind whose price this line carries, if any
    # What promotion and coupon scopes match on (services.orders.pipeline).
    category_id: int | None = None
    brand_id: int | None = None
    # The category's path of ancestor ids ("/1/5/") when the reader had it (checkout does), so the steps need
    # not read it again.
    category_path: str | None = None

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


def priced_line(sku: Sku, quantity: int, ctx: PriceContext, shop_id: int) -> PricedLine:
    return PricedLine(
        sku_id=sku.id,
        product_id=sku.product_id,  # type: ignore[attr-defined]
        shop_id=shop_id,
        unit_price=unit_price(sku, ctx, quantity),
        quantity=quantity,
        category_id=sku.product.category_id,  # type: ignore[attr-defined]
        brand_id=sku.product.brand_id,  # type: ignore[attr-defined]
    )


@dataclass(frozen=True)
class ShippingRules:
    free_over: int = 9900
    base_fee: int = 1000
    region_fees: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PointsRules:
    points_per_yuan: int = 100
    max_percent: int = 50


def shipping_fee(
    goods_amount: int, rules: ShippingRules, *, pickup: bool, province: str | None, free_shipping: bool
) -> int:
    """Pickup, a level with free shipping and orders reaching `free_over` ship free; else the region's fee."""
    if pickup or free_shipping or goods_amount <= 0 or goods_amount >= rules.free_over:
        return 0
    for prefix, fee in rules.region_fees.items():
        if province and province.startswith(prefix):
            return fee
    return rules.base_fee


def points_deduction(requested: int, goods_amount: int, rules: PointsRules) -> tuple[int, int]:
    """(points used, fen deducted) for `requested` points on `goods_amount` fen of goods.

    At most `max_percent` of the goods is paid with points; points that would buy less than one fen are
    not used, so the member is never charged points for nothing.
    """
    if requested <= 0 or goods_amount <= 0:
        return 0, 0
    cap = goods_amount * rules.max_percent // 100
    fen = min(requested * 100 // rules.points_per_yuan, cap)
    if fen <= 0:
        return 0, 0
    return -(-fen * rules.points_per_yuan // 100), fen


@dataclass(frozen=True)
class Quote:
    """A priced order. Per line i: `line_discounts[i]` (promotions and coupons) and `line_points[i]` (the fen
    points paid) sum to `discount` and `points_discount`; `line_paid(i)` is the cash the line's goods cost."""

    lines: tuple[PricedLine, ...]
    items_total: int
    discount: int
    shipping_fee: int
    points_used: int
    points_discount: int
    discounts: tuple[AppliedDiscount, ...] = ()
    line_discounts: tuple[int, ...] = ()
    line_points: tuple[int, ...] = ()
    gifts: tuple[Gift, ...] = ()

    @property
    def payable(self) -> int:
        return self.items_total - self.discount + self.shipping_fee - self.points_discount

    def line_paid(self, i: int) -> int:
        return self.lines[i].line_total - self.line_discounts[i] - self.line_points[i]

    def line_breakdown(self, i: int) -> list[AppliedDiscount]:
        """The discounts that took something off line i (its share in `line_amounts[i]`)."""
        return [d for d in self.discounts if d.line_amounts and d.line_amounts[i] > 0]


async def quote(
    lines: Sequence[PricedLine],
    ctx: PricingContext,
    *,
    shipping: ShippingRules,
    points: PointsRules,
    pickup: bool = False,
    province: str | None = None,
    free_shipping: bool = False,
    points_to_use: int = 0,
) -> Quote:
    """Price a set of lines through the pipeline (services.orders.pipeline, in its documented order): the
    registered promotion and coupon steps, then points on the goods left, then shipping on them."""
    basket = Basket(lines)
    # A promotion's free shipping (waived at an earlier stage) counts too.
    ctx.shipping_fee = lambda goods: shipping_fee(
        goods,
        shipping,
        pickup=pickup,
        province=province,
        free_shipping=free_shipping or bool(basket.free_shipping),
    )
    basket = await run_steps(basket, ctx)
    goods = basket.goods
    used, deducted = points_deduction(points_to_use, goods, points)
    line_points = prorate(deducted, [basket.amount(i) for i in range(len(basket.lines))])
    waived = bool(basket.free_shipping)
    fee = shipping_fee(
        goods, shipping, pickup=pickup, province=province, free_shipping=free_shipping or waived
    )
    applied = list(basket.applied)
    if waived and not free_shipping:
        saved = shipping_fee(goods, shipping, pickup=pickup, province=province, free_shipping=False)
        if saved:
            first = basket.free_shipping[0]  # one waiver saves the fee; the others had nothing left to save
            applied.append(
                AppliedDiscount(Stage.SHIPPING, first.source, first.source_id, first.kind, first.title, saved)
            )
    return Quote(
        tuple(lines),
        basket.items_total,
        basket.discount,
        fee,
        used,
        deducted,
        tuple(applied),
        tuple(basket.discounts),
        tuple(line_points),
        tuple(basket.gifts),
    )
