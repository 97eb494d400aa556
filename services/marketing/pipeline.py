"""Marketing's side of the pricing pipeline (the stages and the basket are services.orders.pipeline).

Marketing fills the pluggable stages with `register_step`: LIMITED_TIME and THRESHOLD with the promotion
engine, COUPON with the coupon wallet. The helpers here say which lines a rule may touch.

Campaign-priced lines (a flash sale, a group buy, ...: `PricedLine.campaign` set) already carry a campaign's
own price, the pipeline's first step. Promotions skip them unless a promotion says so explicitly
(`applies_to_campaign_lines`, default no); coupons skip them too. A promotion that does not combine with
others takes its lines for itself (later promotions skip them), and one that does not combine with coupons
keeps coupons off its lines.
"""

from __future__ import annotations

from collections.abc import Callable

from services.orders.pipeline import Basket
from services.orders.pricing import PricedLine


def promotable_lines(
    basket: Basket, *, campaign_lines: bool = False, matches: Callable[[PricedLine], bool] | None = None
) -> list[int]:
    """Indices of the lines a promotion may discount: not taken by a promotion that does not combine, not
    campaign-priced unless `campaign_lines`, matching the promotion's scope, and still costing something."""
    return [
        i
        for i, line in enumerate(basket.lines)
        if i not in basket.no_more_promotions
        and (campaign_lines or line.campaign is None)
        and (matches is None or matches(line))
        and basket.amount(i) > 0
    ]


def couponable_lines(basket: Basket, *, matches: Callable[[PricedLine], bool] | None = None) -> list[int]:
    """Indices of the lines a coupon may discount: not campaign-priced, not kept off coupons by a promotion,
    matching the coupon's scope, and still costing something."""
    return [
        i
        for i, line in enumerate(basket.lines)
        if i not in basket.no_coupons
        and line.campaign is None
        and (matches is None or matches(line))
        and basket.amount(i) > 0
    ]
