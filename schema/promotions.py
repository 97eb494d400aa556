"""Promotions as staff manage them and shoppers see them (badges on products)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from loaders.promotions import CategoryAncestryLoader, RunningPromotionsLoader
from models import Promotion as PromotionModel
from models import PromotionKind as PromotionKindModel
from models import PromotionStatus as PromotionStatusModel
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.context import Context
from schema.node import Node, encode_id
from services.catalog.prices import unit_price
from services.marketing.promotions.admin import PROMOTIONS_TAG
from services.marketing.promotions.engine import Compiled, Offer, offer
from services.marketing.promotions.rules import ACTIONS, CONDITIONS, Facts, Item, Rule

PromotionKind = strawberry.enum(
    PromotionKindModel,
    name="PromotionKind",
    description="LIMITED_TIME (限时折扣: a per-product price), THRESHOLD (满减 / 满折), MEMBER_DAY, FIRST_ORDER.",
)
PromotionStatus = strawberry.enum(
    PromotionStatusModel,
    name="PromotionStatus",
    description="DRAFT never applies; ACTIVE applies between startsAt and endsAt; INACTIVE was stopped.",
)


def encode_rule(raw: dict[str, Any], registry: dict[str, type[Rule]]) -> dict[str, Any]:
    """A stored rule with its id arguments as global IDs."""
    cls = registry.get(raw.get("type", ""))
    args = dict(raw.get("args") or {})
    for arg, type_name in (cls.refs if cls else {}).items():
        value = args.get(arg)
        if isinstance(value, list):
            args[arg] = [encode_id(type_name, v) for v in value]
        elif isinstance(value, int):
            args[arg] = encode_id(type_name, value)
    return {"type": raw.get("type"), "args": args}


@strawberry.type(description="One condition or action of a promotion: its type and typed arguments.")
class PromotionRule:
    type: str
    args: JSON = strawberry.field(
        description="IDs (products, categories, brands, levels, SKUs) are global IDs."
    )


@strawberry.type(
    description="A promotion. Shoppers see the active ones (as badges on products, or by ID); staff with "
    "MARKETING_WRITE see all."
)
class Promotion(Node):
    title: str
    description: str
    kind: PromotionKind
    status: PromotionStatus
    starts_at: datetime
    ends_at: datetime | None
    conditions: list[PromotionRule]
    actions: list[PromotionRule]
    combines_with_promotions: bool
    combines_with_coupons: bool
    applies_to_campaign_lines: bool
    priority: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, m: PromotionModel) -> Promotion:
        return cls(
            id=encode_id("Promotion", m.id),
            title=m.title,
            description=m.description,
            kind=m.kind,
            status=m.status,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            conditions=[PromotionRule(**encode_rule(r, CONDITIONS)) for r in m.conditions or []],  # type: ignore[arg-type]
            actions=[PromotionRule(**encode_rule(r, ACTIONS)) for r in m.actions or []],  # type: ignore[arg-type]
            combines_with_promotions=m.combines_with_promotions,
            combines_with_coupons=m.combines_with_coupons,
            applies_to_campaign_lines=m.applies_to_campaign_lines,
            priority=m.priority,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )


RULE_HELP = (
    "Conditions: MIN_AMOUNT {amount}, MIN_QUANTITY {quantity}, PRODUCTS / CATEGORIES / BRANDS / MEMBER_LEVELS "
    "{ids}, FIRST_ORDER {}, TIME_WINDOW {start, end} (HH:MM), WEEKDAYS {days} (1-7), MONTH_DAYS {days} (1-31). "
    "Actions: AMOUNT_OFF {amount}, PERCENT_OFF {percent, cap}, FIXED_PRICE {price}, FREE_SHIPPING {}, "
    "GIFT_SKU {sku_id, quantity}. Money in fen."
)


@strawberry.input(description="A condition or an action. " + RULE_HELP)
class PromotionRuleInput:
    type: str
    args: JSON = strawberry.field(default_factory=dict)


@strawberry.input(description="A new promotion; it is a DRAFT until promotionActivate.")
class PromotionCreateInput:
    title: str = strawberry.field(description="1 to 60 characters, shown to shoppers.")
    kind: PromotionKind
    starts_at: datetime
    ends_at: datetime | None = strawberry.field(default=None, description="After startsAt; null: no end.")
    conditions: list[PromotionRuleInput] = strawberry.field(default_factory=list)
    actions: list[PromotionRuleInput] = strawberry.field(default_factory=list)
    description: str = ""
    combines_with_promotions: bool = strawberry.field(
        default=True,
        description="False: it applies only to lines no other promotion discounted, and keeps them.",
    )
    combines_with_coupons: bool = strawberry.field(default=True, description="False: no coupon on its lines.")
    applies_to_campaign_lines: bool = strawberry.field(
        default=False, description="Also discount lines bought at a campaign's price (flash sale, ...)."
    )
    priority: int = strawberry.field(default=0, description="Higher applies first within its stage.")


@strawberry.input(description="Fields to change; the others stay. `endsAt: null` removes the end.")
class PromotionUpdateInput:
    title: str | None = strawberry.UNSET
    kind: PromotionKind | None = strawberry.UNSET
    starts_at: datetime | None = strawberry.UNSET
    ends_at: datetime | None = strawberry.UNSET
    conditions: list[PromotionRuleInput] | None = strawberry.UNSET
    actions: list[PromotionRuleInput] | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    combines_with_promotions: bool | None = strawberry.UNSET
    combines_with_coupons: bool | None = strawberry.UNSET
    applies_to_campaign_lines: bool | None = strawberry.UNSET
    priority: int | None = strawberry.UNSET


@strawberry.input
class PromotionFilter:
    status: PromotionStatus | None = None
    kind: PromotionKind | None = None
    running: bool | None = strawberry.field(default=None, description="True: only those applying right now.")
    search: str | None = strawberry.field(default=None, description="Part of the title.")


@strawberry.type
class PromotionPayload:
    promotion: Promotion | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PromotionDeletePayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class PromotionConnection:
    edges: list[Edge[Promotion]]
    page_info: PageInfo
    _total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="All of them, not just this page (costs a count).")
    async def total_count(self) -> int:
        return await self._total()


async def offers(context: Context, product: Any, skus: Sequence[Any]) -> list[Offer]:
    """What this viewer sees of each SKU of `product` (a product row): the limited-time price and the badges,
    through the promotion engine. A cached copy depends on the promotions (staff changes drop it) and stops
    being true at the next moment a promotion starts or ends, or a promotion's day or hour turns."""
    running = await context.loader(RunningPromotionsLoader).load("now")
    context.depends_on(PROMOTIONS_TAG)
    context.true_until(running.until)
    price = context.viewer.price
    units = [unit_price(sku, price) for sku in skus]
    if not running.promotions:
        return [Offer(unit, ()) for unit in units]
    ancestry = await context.loader(CategoryAncestryLoader).load(product.category_id)
    item = Item(product.id, ancestry, product.brand_id)
    facts = Facts(running.at, price.level_id, price.is_member, None)
    return [offer(unit, item, running.promotions, facts) for unit in units]


async def badges(context: Context, found: Sequence[Offer]) -> list[Promotion]:
    """The promotions of `found`, once each, as shoppers see them on a product (badges)."""
    seen: dict[int, Compiled] = {}
    for o in found:
        for p in o.promotions:
            seen.setdefault(p.id, p)
    rows = await context.rows(PromotionModel).load_many(list(seen))
    return [Promotion.from_model(row) for row in rows if row is not None]
