"""The price a viewer pays for a SKU: list, tiered, member and level prices. Catalog pages, the cart and
checkout all price units here; order totals (discounts, shipping, points) are built on it in
`services.orders.pricing`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class PricedSku(Protocol):
    """What pricing reads of a SKU: a model instance or a catalog read's row (loaders/catalog.py)."""

    @property
    def price(self) -> int: ...
    @property
    def member_price(self) -> int | None: ...
    @property
    def tier_prices(self) -> Sequence[dict[str, int]]: ...


@dataclass(frozen=True)
class PriceContext:
    """Everything about the viewer that changes a price. `scope` keys the response cache on it."""

    scope: str = "public"
    is_member: bool = False
    # Percent of the list price a member level pays (100 = no level discount).
    level_percent: int = 100
    # The member's level (promotions may be for some levels only); None: no level or not a member.
    level_id: int | None = None


PUBLIC = PriceContext()


def _apply_percent(amount: int, percent: int) -> int:
    # Integer fen, rounded half up, never below one fen for a priced item.
    return max(1, (amount * percent + 50) // 100) if amount > 0 else 0


def unit_price(sku: PricedSku, ctx: PriceContext = PUBLIC, quantity: int = 1) -> int:
    """The unit price in fen for `quantity` of `sku`: the lowest of list, tier, member and level prices."""
    candidates = [sku.price]
    for tier in sku.tier_prices or ():
        if quantity >= int(tier["min_quantity"]):
            candidates.append(int(tier["price"]))
    if ctx.is_member:
        if sku.member_price is not None:
            candidates.append(sku.member_price)
        if ctx.level_percent < 100:
            candidates.append(_apply_percent(sku.price, ctx.level_percent))
    return min(candidates)


def price_range(skus: Iterable[PricedSku], ctx: PriceContext = PUBLIC) -> tuple[int, int]:
    """Lowest and highest single-unit price over `skus`; (0, 0) for a product without SKUs."""
    prices = [unit_price(sku, ctx) for sku in skus]
    if not prices:
        return 0, 0
    return min(prices), max(prices)
