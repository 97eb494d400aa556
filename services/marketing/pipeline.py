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

from models import Category
from services.orders.pipeline import Basket, PricingContext
from services.orders.pricing import PricedLine

_CATEGORIES_MEMO = "line_categories"


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


async def line_categories(basket: Basket, ctx: PricingContext) -> dict[int, frozenset[int]]:
    """The lines' categories, each with its ancestors (what a category scope matches), by category id: from
    the lines' paths when their reader brought them (checkout's does), else one query; once per pricing run,
    kept in `ctx.memo` for the promotion and coupon steps alike."""
    found: dict[int, frozenset[int]] | None = ctx.memo.get(_CATEGORIES_MEMO)
    if found is None:
        paths = {
            line.category_id: line.category_path for line in basket.lines if line.category_id is not None
        }
        if any(path is None for path in paths.values()):  # the lines' reader did not bring the paths
            paths = dict(await Category.filter(id__in=sorted(paths)).values_list("id", "path"))
        found = {
            int(cid): frozenset([int(cid), *(int(p) for p in str(path).split("/") if p)])
            for cid, path in paths.items()
        }
        ctx.memo[_CATEGORIES_MEMO] = found
    return found
