"""A member's server-side cart: one row per SKU, bounded by stock and the per-SKU purchase limit.

Lines whose SKU went off the shelf or ran short are kept and flagged, so the shopper sees why they cannot buy
them; only available selected lines count in the summary. Prices come from services.orders.pricing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from infra.clock import now
from infra.settings import Settings, get_settings
from models import CartItem, Member, ProductStatus, Shop, Sku
from services.catalog.prices import PriceContext, unit_price
from services.errors import DomainError, ErrorCode
from services.loyalty import levels
from services.orders import pricing
from services.orders.pipeline import PricingContext
from services.orders.pricing import PricedLine, Quote

MAX_LINES = 100


class LineProblem(StrEnum):
    OFF_SHELF = "OFF_SHELF"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    ORDER_LIMIT = "ORDER_LIMIT"
    """Selected with the lines above it, it would take the order past MAX_ORDER_TOTAL: buy it separately."""


@dataclass(frozen=True)
class CartLine:
    item: CartItem
    sku: Sku
    unit_price: int
    problem: LineProblem | None

    @property
    def available(self) -> bool:
        return self.problem is None

    @property
    def line_total(self) -> int:
        return self.unit_price * self.item.quantity


@dataclass(frozen=True)
class CartGroup:
    shop: Shop
    lines: tuple[CartLine, ...]


@dataclass(frozen=True)
class CartView:
    lines: tuple[CartLine, ...]
    groups: tuple[CartGroup, ...]
    summary: Quote


def purchase_limit() -> int:
    return get_settings().purchase_limit_per_sku


def line_problem(sku: Sku, quantity: int) -> LineProblem | None:
    if sku.product.status != ProductStatus.ON_SALE:
        return LineProblem.OFF_SHELF
    if sku.stock <= 0:
        return LineProblem.OUT_OF_STOCK
    if sku.stock < quantity:
        return LineProblem.INSUFFICIENT_STOCK
    return None


async def _sellable_sku(sku_id: int, field: str) -> Sku:
    sku = await Sku.filter(id=sku_id).select_related("product").first()
    if sku is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No SKU has this ID", field)
    if sku.product.status != ProductStatus.ON_SALE:
        raise DomainError(ErrorCode.OFF_SHELF, "This product is not on sale", field)
    return sku


def _check_quantity(sku: Sku, quantity: int) -> None:
    limit = purchase_limit()
    if quantity < 1:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "The quantity must be at least 1", "quantity")
    if quantity > limit:
        raise DomainError(ErrorCode.LIMIT_EXCEEDED, f"At most {limit} of one item per member", "quantity")
    if quantity > sku.stock:
        raise DomainError(ErrorCode.INSUFFICIENT_STOCK, f"Only {sku.stock} left in stock", "quantity")


async def add_item(member_id: int, sku_id: int, quantity: int) -> CartItem:
    """Add `quantity` of a SKU (on top of what the cart holds); the total is bounded by stock and the limit."""
    if quantity < 1:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "The quantity must be at least 1", "quantity")
    sku = await _sellable_sku(sku_id, "skuId")
    for _ in range(2):
        existing = await CartItem.get_or_none(member_id=member_id, sku_id=sku_id)
        if existing is not None:
            _check_quantity(sku, existing.quantity + quantity)
            await CartItem.filter(id=existing.id).update(quantity=F("quantity") + quantity, selected=True)
            await existing.refresh_from_db()
            return existing
        _check_quantity(sku, quantity)
        if await CartItem.filter(member_id=member_id).count() >= MAX_LINES:
            raise DomainError(ErrorCode.LIMIT_EXCEEDED, f"A cart holds at most {MAX_LINES} items", "skuId")
        try:
            return await CartItem.create(member_id=member_id, sku_id=sku_id, quantity=quantity)
        except IntegrityError:
            continue  # a concurrent add created the line: add to it
    raise DomainError(ErrorCode.CONFLICT, "The cart changed meanwhile; try again", "skuId")


async def update_item(member_id: int, sku_id: int, quantity: int) -> CartItem | None:
    """Set a line's quantity; 0 removes the line (returns None). NOT_FOUND for a SKU not in the cart."""
    item = await CartItem.get_or_none(member_id=member_id, sku_id=sku_id)
    if item is None:
        raise DomainError(ErrorCode.NOT_FOUND, "This SKU is not in the cart", "skuId")
    if quantity == 0:
        await item.delete()
        return None
    sku = await Sku.get(id=sku_id)
    _check_quantity(sku, quantity)
    item.quantity = quantity
    await item.save(update_fields=["quantity", "updated_at"])
    return item


async def remove_items(member_id: int, sku_ids: Sequence[int]) -> int:
    return await CartItem.filter(member_id=member_id, sku_id__in=list(sku_ids)).delete()


async def select(member_id: int, sku_ids: Sequence[int], selected: bool) -> int:
    return await CartItem.filter(member_id=member_id, sku_id__in=list(sku_ids)).update(selected=selected)


async def cart_view(
    member_id: int,
    ctx: PriceContext,
    *,
    free_shipping: bool = False,
    province: str | None = None,
    level_id: int | None = None,
) -> CartView:
    """The cart, newest line first, grouped by shop, with the summary of its available selected lines."""
    items = await (
        CartItem.filter(member_id=member_id)
        .select_related("sku__product__shop")
        .order_by("-created_at", "-id")
    )
    lines = _within_order_limit(
        CartLine(
            item=item,
            sku=item.sku,
            unit_price=unit_price(item.sku, ctx, item.quantity),
            problem=line_problem(item.sku, item.quantity),
        )
        for item in items
    )
    shops: dict[int, Shop] = {}
    grouped: dict[int, list[CartLine]] = {}
    for line in lines:
        shop = line.sku.product.shop
        shops[shop.id] = shop
        grouped.setdefault(shop.id, []).append(line)
    groups = tuple(CartGroup(shops[sid], tuple(group)) for sid, group in grouped.items())
    chosen = [
        PricedLine(
            sku_id=line.sku.id,
            product_id=line.sku.product.id,
            shop_id=line.sku.product.shop.id,
            unit_price=line.unit_price,
            quantity=line.item.quantity,
            category_id=line.sku.product.category_id,  # type: ignore[attr-defined]
            brand_id=line.sku.product.brand_id,  # type: ignore[attr-defined]
        )
        for line in lines
        if line.item.selected and line.available
    ]
    settings = get_settings()
    summary = await pricing.quote(
        chosen,
        PricingContext(member_id, level_id, ctx, now()),
        shipping=shipping_rules(settings),
        points=points_rules(settings),
        province=province,
        free_shipping=free_shipping,
    )
    return CartView(lines, groups, summary)


def _within_order_limit(lines: Iterable[CartLine]) -> tuple[CartLine, ...]:
    """The lines (newest first, as shown), with each selected one that would take the selection past one
    order's limit flagged ORDER_LIMIT, counting from the oldest: what was added last is what does not fit.
    So the summary always prices something one order can hold."""
    newest_first = list(lines)
    total = 0
    for i in reversed(range(len(newest_first))):
        line = newest_first[i]
        if line.item.selected and line.available:
            if total + line.line_total > pricing.MAX_ORDER_TOTAL:
                newest_first[i] = replace(line, problem=LineProblem.ORDER_LIMIT)
            else:
                total += line.line_total
    return tuple(newest_first)


def shipping_rules(settings: Settings | None = None) -> pricing.ShippingRules:
    s = settings or get_settings()
    return pricing.ShippingRules(s.shipping_free_over, s.shipping_base_fee, dict(s.shipping_region_fees))


def points_rules(settings: Settings | None = None) -> pricing.PointsRules:
    s = settings or get_settings()
    return pricing.PointsRules(s.points_per_yuan, s.points_max_percent)


@dataclass(frozen=True)
class Shopper:
    """How a member is priced now: unit prices, their level (None: no level reached), free shipping."""

    price: PriceContext
    level_id: int | None
    free_shipping: bool


async def shopper(member_id: int) -> Shopper:
    """How `member_id` is priced now (read from their current growth)."""
    growth = await Member.filter(id=member_id).first().values_list("growth", flat=True)
    return await shopper_with_growth(int(growth or 0))


async def shopper_with_growth(growth: int) -> Shopper:
    """How a member with `growth` is priced now (the caller read the growth)."""
    level = await levels.level_for_growth(growth)
    return Shopper(
        levels.price_context(level),
        level.id if level is not None else None,
        bool(level is not None and level.free_shipping),
    )


async def member_pricing(member_id: int) -> tuple[PriceContext, bool]:
    """How a member is priced now, and whether their level ships free (read from their current growth)."""
    who = await shopper(member_id)
    return who.price, who.free_shipping
