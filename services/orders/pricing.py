"""Order pricing: priced lines, registered adjustments (coupons, campaigns), shipping and points.

Unit prices come from `services.catalog.prices`, so the product page, the cart and checkout agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from infra.settings import MAX_PURCHASE_LIMIT, MAX_SHIPPING_FEE
from models import Sku
from services.catalog.drafts import MAX_PRICE
from services.catalog.prices import PriceContext, unit_price

# --- Orders: lines, shipping, points and adjustments ----------------------------------------------------------
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
    )


class Adjustment(Protocol):
    """A discount rule (a coupon, a campaign): the marketing module registers one class per kind."""

    name: str

    def discount(self, lines: Sequence[PricedLine], ctx: PriceContext) -> int:
        """Fen off the goods of `lines` (0 when the rule does not apply)."""
        ...


_adjustments: list[Adjustment] = []


def register_adjustment(adjustment: Adjustment) -> None:
    _adjustments.append(adjustment)


def unregister_adjustment(adjustment: Adjustment) -> None:
    _adjustments.remove(adjustment)


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
    lines: tuple[PricedLine, ...]
    items_total: int
    discount: int
    shipping_fee: int
    points_used: int
    points_discount: int

    @property
    def payable(self) -> int:
        return self.items_total - self.discount + self.shipping_fee - self.points_discount


def quote(
    lines: Sequence[PricedLine],
    ctx: PriceContext,
    *,
    shipping: ShippingRules,
    points: PointsRules,
    pickup: bool = False,
    province: str | None = None,
    free_shipping: bool = False,
    points_to_use: int = 0,
) -> Quote:
    """Price a set of lines: adjustments, then shipping on the discounted goods, then points on the goods."""
    items_total = sum(line.line_total for line in lines)
    discount = 0
    for adjustment in _adjustments:
        discount += max(0, adjustment.discount(lines, ctx))
    discount = min(discount, items_total)
    goods = items_total - discount
    fee = shipping_fee(goods, shipping, pickup=pickup, province=province, free_shipping=free_shipping)
    used, deducted = points_deduction(points_to_use, goods, points)
    return Quote(tuple(lines), items_total, discount, fee, used, deducted)
