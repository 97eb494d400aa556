"""The promotion engine: active promotions compiled from their rules, applied by the pipeline's LIMITED_TIME and
THRESHOLD steps, and the same rules pricing the product page (`offers`).

Stage rules (README, "Promotions"):
- LIMITED_TIME: each line gets the lowest unit price among the limited-time promotions that apply to it (one
  per line, never two stacked): the price the product page shows as `activePrice`.
- THRESHOLD (满减 / 满折, member day, first order): promotions apply in priority order (higher first, then
  id), each on the lines in its scope that are left to it, measured after the limited-time prices.
- A promotion that does not combine with other promotions applies only to lines no promotion has discounted
  yet and keeps them for itself; one that does not combine with coupons keeps coupons off its lines.
- Campaign-priced lines are skipped unless the promotion says `applies_to_campaign_lines`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra import raw_sql
from infra.kept_copy import KeptCopy
from models import Category, Order, OrderStatus, Promotion, PromotionKind, PromotionStatus
from services.marketing.pipeline import line_categories, promotable_lines
from services.marketing.promotions.rules import (
    ACTIONS,
    CONDITIONS,
    Action,
    Condition,
    Facts,
    FreeShipping,
    GiftSku,
    Item,
    RuleSort,
    parse_rule,
)
from services.marketing.rows import stored_datetime
from services.orders.pipeline import Basket, DiscountSource, Gift, PricingContext, Stage
from services.orders.pricing import Quote

STAGE_OF = {
    PromotionKind.LIMITED_TIME: Stage.LIMITED_TIME,
    PromotionKind.THRESHOLD: Stage.THRESHOLD,
    PromotionKind.MEMBER_DAY: Stage.THRESHOLD,
    PromotionKind.FIRST_ORDER: Stage.THRESHOLD,
}


@dataclass(frozen=True)
class Compiled:
    """A promotion ready to apply."""

    id: int
    title: str
    kind: PromotionKind
    stage: Stage
    starts_at: datetime
    ends_at: datetime | None
    scope: tuple[Condition, ...]
    viewer: tuple[Condition, ...]
    basket: tuple[Condition, ...]
    actions: tuple[Action, ...]
    combines_with_promotions: bool
    combines_with_coupons: bool
    applies_to_campaign_lines: bool
    priority: int
    status_key: tuple[Any, ...] = ()

    @property
    def member_specific(self) -> bool:
        return any(c.member_specific for c in self.viewer)

    def in_scope(self, item: Item) -> bool:
        return all(c.matches(item) for c in self.scope)

    def viewer_holds(self, facts: Facts) -> bool:
        return all(c.holds(facts) for c in self.viewer)

    def basket_holds(self, facts: Facts) -> bool:
        return all(c.holds(facts) for c in self.basket)

    def unit_discount(self, unit_price: int) -> int:
        """Fen off one unit (limited-time promotions): the actions in turn, each on what is left."""
        left = unit_price
        for act in self.actions:
            left -= min(left, act.unit_discount(left))
        return unit_price - left

    def boundaries(self, after: datetime) -> list[datetime]:
        """When this promotion may start or stop applying by time alone, after `after`."""
        moments = [m for m in (self.starts_at, self.ends_at) if m is not None and m > after]
        moments += [b for c in self.viewer if (b := c.boundaries(after)) is not None]
        return moments


# Compiled promotions by (id, updated_at): a promotion's rules are parsed once per change, not per request.
_compiled: dict[tuple[int, datetime], Compiled] = {}
_COMPILED_MAX = 1000


def compile_promotion(p: Promotion) -> Compiled:
    """A stored promotion's rules parsed (they were checked when saved), reused while it is unchanged."""
    key = (p.id, p.updated_at) if p.updated_at is not None else None
    if key is not None and (hit := _compiled.get(key)) is not None and hit.status_key == _status_key(p):
        return hit
    made = _compile(p)
    if key is not None:
        if len(_compiled) >= _COMPILED_MAX:
            _compiled.clear()
        _compiled[key] = made
    return made


def _status_key(p: Promotion) -> tuple[Any, ...]:
    # What a status change (a guarded update that leaves updated_at alone) or a test's in-memory row can vary.
    return (p.title, p.kind, p.starts_at, p.ends_at, p.priority)


def _compile(p: Promotion) -> Compiled:
    conditions = [parse_rule(CONDITIONS, raw) for raw in p.conditions or []]
    actions = [parse_rule(ACTIONS, raw) for raw in p.actions or []]
    by_sort: dict[RuleSort, list[Condition]] = {sort: [] for sort in RuleSort}
    for c in conditions:
        assert isinstance(c, Condition)
        by_sort[c.sort].append(c)
    return Compiled(
        id=p.id,
        title=p.title,
        kind=p.kind,
        stage=STAGE_OF[p.kind],
        starts_at=p.starts_at,
        ends_at=p.ends_at,
        scope=tuple(by_sort[RuleSort.SCOPE]),
        viewer=tuple(by_sort[RuleSort.VIEWER]),
        basket=tuple(by_sort[RuleSort.BASKET]),
        actions=tuple(a for a in actions if isinstance(a, Action)),
        combines_with_promotions=p.combines_with_promotions,
        combines_with_coupons=p.combines_with_coupons,
        applies_to_campaign_lines=p.applies_to_campaign_lines,
        priority=p.priority,
        status_key=_status_key(p),
    )


async def active_promotions(at: datetime) -> list[Compiled]:
    """The promotions that run at `at` (ACTIVE and within their dates), priority order."""
    return (await running_promotions(at))[0]


# The running promotions as plain rows (infra.raw_sql); their rules are compiled once per change, so
# a row whose compiled form is known needs no model instance and no JSON parsing.
_RUNNING_COLUMNS = (
    "id",
    "updated_at",
    "title",
    "kind",
    "starts_at",
    "ends_at",
    "priority",
    "conditions",
    "actions",
    "combines_with_promotions",
    "combines_with_coupons",
    "applies_to_campaign_lines",
)
_RUNNING_SQL = (
    f"SELECT {', '.join(_RUNNING_COLUMNS)} FROM promotions"
    " WHERE status = $1 AND (ends_at IS NULL OR ends_at > $2) ORDER BY priority DESC, id"
)


def _compiled_row(values: tuple[Any, ...]) -> Compiled:
    row = dict(zip(_RUNNING_COLUMNS, values, strict=True))
    starts_at = stored_datetime(row["starts_at"])
    ends_at = stored_datetime(row["ends_at"]) if row["ends_at"] is not None else None
    updated_at = stored_datetime(row["updated_at"])
    kind = PromotionKind(row["kind"])
    hit = _compiled.get((int(row["id"]), updated_at))
    if hit is not None and hit.status_key == (row["title"], kind, starts_at, ends_at, int(row["priority"])):
        return hit
    fields = Promotion._meta.fields_map
    return compile_promotion(
        Promotion(
            id=int(row["id"]),
            title=row["title"],
            kind=kind,
            starts_at=starts_at,
            ends_at=ends_at,
            priority=int(row["priority"]),
            conditions=fields["conditions"].to_python_value(row["conditions"]),
            actions=fields["actions"].to_python_value(row["actions"]),
            combines_with_promotions=bool(row["combines_with_promotions"]),
            combines_with_coupons=bool(row["combines_with_coupons"]),
            applies_to_campaign_lines=bool(row["applies_to_campaign_lines"]),
            updated_at=updated_at,
        )
    )


async def running_promotions(at: datetime) -> tuple[list[Compiled], datetime | None]:
    """The promotions that run at `at`, priority order, and when the next scheduled one starts (this process's
    copy while it is fresh, else one query)."""
    rows = [p for p in await _unended_promotions(at) if p.ends_at is None or p.ends_at > at]
    upcoming = [p.starts_at for p in rows if p.starts_at > at]
    return [p for p in rows if p.starts_at <= at], min(upcoming, default=None)


# --- The running promotions kept per process --------------------------------------------------------------------


@dataclass(frozen=True)
class _Unended:
    read_at: datetime
    rows: tuple[Compiled, ...]


PROMOTIONS_CHANNEL = "promotions.changed"
# Every write drops the copy at once, here and through the bus (admin.py), and a start or an end needs no expiry:
# each read filters the copy by its own moment. Five seconds, as the level table (infra/kept_copy.py).
_running: KeptCopy[_Unended] = KeptCopy(PROMOTIONS_CHANNEL, seconds=5.0)


def forget_running_promotions() -> None:
    """Drop this process's copy of the running promotions (after a write); the next read loads them again."""
    _running.forget()


async def running_promotions_changed() -> None:
    """After a committed write to promotions: every process's copy is stale (infra/kept_copy.py, `changed`)."""
    await _running.changed()


async def _unended_promotions(at: datetime) -> tuple[Compiled, ...]:
    """The ACTIVE promotions not ended at `at` (some may start later), priority order."""

    async def load() -> _Unended:
        return _Unended(at, await _read_unended(at))

    # A copy read at some moment holds every promotion not ended then: right for that moment and any later one.
    return (await _running.get(load, fits=lambda kept: kept.read_at <= at)).rows


async def _read_unended(at: datetime) -> tuple[Compiled, ...]:
    values = await raw_sql.fetch(_RUNNING_SQL, [PromotionStatus.ACTIVE.value, at])
    return tuple(_compiled_row(row) for row in values)


async def category_ids(category_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    """Each category with its ancestors (what a category scope matches), one query."""
    wanted = set(category_ids)
    if not wanted:
        return {}
    rows = await Category.filter(id__in=wanted).values_list("id", "path")
    return {
        int(cid): frozenset([int(cid), *(int(p) for p in str(path).split("/") if p)]) for cid, path in rows
    }


# --- Checkout: the pipeline's steps -----------------------------------------------------------------------------


async def _run_context(basket: Basket, ctx: PricingContext) -> tuple[list[Compiled], list[Item], Facts]:
    """This pricing run's promotions, line items and viewer facts, looked up once and kept in `ctx.memo`."""
    memo = ctx.memo
    if "promotions" not in memo:
        promotions = await active_promotions(ctx.now)
        ancestry = await line_categories(basket, ctx)
        items = [
            Item(line.product_id, ancestry.get(line.category_id or 0, frozenset()), line.brand_id)
            for line in basket.lines
        ]
        first_order: bool | None = None
        if ctx.member_id is not None and any(p.member_specific for p in promotions):
            first_order = not await (
                Order.filter(member_id=ctx.member_id).exclude(status=OrderStatus.CANCELLED).exists()
            )
        memo["promotions"] = promotions
        memo["items"] = items
        memo["facts"] = Facts(ctx.now, ctx.level_id, ctx.price.is_member, first_order)
    return memo["promotions"], memo["items"], memo["facts"]


def _promoted(basket: Basket) -> set[int]:
    """Lines a promotion has discounted so far."""
    return {
        i
        for d in basket.applied
        if d.source == DiscountSource.PROMOTION
        for i, fen in enumerate(d.line_amounts)
        if fen > 0
    }


def _claim(basket: Basket, promotion: Compiled, lines: Iterable[int]) -> None:
    for i in lines:
        if not promotion.combines_with_promotions:
            basket.no_more_promotions.add(i)
        if not promotion.combines_with_coupons:
            basket.no_coupons.add(i)


def _lines_for(basket: Basket, promotion: Compiled, items: Sequence[Item]) -> list[int]:
    lines = promotable_lines(basket, campaign_lines=promotion.applies_to_campaign_lines)
    lines = [i for i in lines if promotion.in_scope(items[i])]
    if not promotion.combines_with_promotions:
        taken = _promoted(basket)
        lines = [i for i in lines if i not in taken]
    return lines


def _facts(base: Facts, basket: Basket, lines: Sequence[int]) -> Facts:
    return Facts(
        base.now,
        base.level_id,
        base.is_member,
        base.first_order,
        amount=basket.amount_of(lines),
        quantity=sum(basket.lines[i].quantity for i in lines),
    )


class LimitedTimeStep:
    """限时折扣: each line at the lowest price its limited-time promotions give."""

    stage = Stage.LIMITED_TIME

    async def apply(self, basket: Basket, ctx: PricingContext) -> None:
        promotions, items, facts = await _run_context(basket, ctx)
        mine = [p for p in promotions if p.stage == Stage.LIMITED_TIME and p.viewer_holds(facts)]
        if not mine:
            return
        best: dict[int, tuple[int, Compiled]] = {}
        for promotion in mine:
            for i in _lines_for(basket, promotion, items):
                line = basket.lines[i]
                if not promotion.basket_holds(_facts(facts, basket, [i])):
                    continue
                fen = promotion.unit_discount(basket.amount(i) // line.quantity) * line.quantity
                if fen > 0 and fen > best.get(i, (0, promotion))[0]:
                    best[i] = (fen, promotion)
        for promotion in mine:
            won = {i: fen for i, (fen, p) in best.items() if p is promotion}
            if won:
                basket.take_per_line(
                    won,
                    stage=Stage.LIMITED_TIME,
                    source=DiscountSource.PROMOTION,
                    source_id=promotion.id,
                    kind=promotion.kind.value,
                    title=promotion.title,
                )
                _claim(basket, promotion, won)

    async def attach(self, order: Order, quote: Quote, ctx: PricingContext) -> None:
        return None

    def attaches(self, quote: Quote, ctx: PricingContext) -> bool:
        return False


class OrderPromotionStep:
    """满减 / 满折, member day, first order: order promotions in priority order."""

    stage = Stage.THRESHOLD

    async def apply(self, basket: Basket, ctx: PricingContext) -> None:
        promotions, items, facts = await _run_context(basket, ctx)
        for promotion in promotions:
            if promotion.stage != Stage.THRESHOLD or not promotion.viewer_holds(facts):
                continue
            lines = _lines_for(basket, promotion, items)
            if not lines or not promotion.basket_holds(_facts(facts, basket, lines)):
                continue
            apply_order_actions(basket, promotion, lines)

    async def attach(self, order: Order, quote: Quote, ctx: PricingContext) -> None:
        return None

    def attaches(self, quote: Quote, ctx: PricingContext) -> bool:
        return False


def apply_order_actions(basket: Basket, promotion: Compiled, lines: Sequence[int]) -> None:
    """An order promotion's actions on its lines: money off (prorated), free shipping, gifts."""
    source = {
        "source": DiscountSource.PROMOTION,
        "source_id": promotion.id,
        "kind": promotion.kind.value,
        "title": promotion.title,
    }
    touched = False
    for act in promotion.actions:
        if isinstance(act, FreeShipping):
            basket.waive_shipping(**source)  # type: ignore[arg-type]
            touched = True
        elif isinstance(act, GiftSku):
            basket.give(
                Gift(act.sku_id, act.quantity, DiscountSource.PROMOTION, promotion.id, promotion.title)
            )
            touched = True
        else:
            units = [(basket.amount(i) // basket.lines[i].quantity, basket.lines[i].quantity) for i in lines]
            fen = act.order_discount(basket.amount_of(lines), units)
            if basket.take(fen, lines, stage=Stage.THRESHOLD, **source) is not None:  # type: ignore[arg-type]
                touched = True
    if touched:
        _claim(basket, promotion, lines)


# --- The product page -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """What a viewer sees of a SKU's promotions: the limited-time unit price and the promotions they may use."""

    active_price: int
    promotions: tuple[Compiled, ...]


def offer(
    unit_price: int, item: Item, promotions: Sequence[Compiled], facts: Facts, *, campaign: bool = False
) -> Offer:
    """The limited-time price of one unit costing `unit_price` and the badges of the promotions whose scope
    holds it and whose viewer conditions this viewer meets (member-specific ones are left to checkout: the
    product page is cached per price scope, never per member)."""
    shown = [
        p
        for p in promotions
        if not p.member_specific
        and (not campaign or p.applies_to_campaign_lines)
        and p.in_scope(item)
        and p.viewer_holds(facts)
    ]
    off = 0
    for p in shown:
        if p.stage == Stage.LIMITED_TIME and p.basket_holds(
            Facts(facts.now, facts.level_id, facts.is_member, None, unit_price, 1)
        ):
            off = max(off, p.unit_discount(unit_price))
    return Offer(unit_price - off, tuple(shown))


def next_boundary(
    promotions: Iterable[Compiled], after: datetime, upcoming: datetime | None
) -> datetime | None:
    """The next moment a product page priced at `after` may change by time alone: a promotion starting or
    ending, a daily window or a day of the week turning."""
    moments = [m for p in promotions for m in p.boundaries(after)]
    if upcoming is not None:
        moments.append(upcoming)
    return min(moments) if moments else None
