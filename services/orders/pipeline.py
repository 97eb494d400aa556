"""The pricing pipeline: a basket of priced lines goes through fixed stages, each taking its discount off the
lines it applies to, prorated in integer fen, and recording where the discount came from.

The order of the stages is fixed and documented (README, "Pricing pipeline"):

1. CAMPAIGN      a campaign's unit price (flash sale, group buy, ...), set on the line before the pipeline runs
                 (services.orders.campaigns); promotions skip campaign-priced lines unless they say so.
2. LIMITED_TIME  限时折扣: per-product prices (what the product page shows as `activePrice`).
3. THRESHOLD     满减 / 满折 and the other order promotions (member day, first order, ...).
4. COUPON        the shopper's coupons (chosen, or the best combination picked for them).
5. POINTS        points pay up to a share of what is left of the goods (built in, services.orders.pricing).
6. SHIPPING      the fee on what is left of the goods; free-shipping actions waive it (built in).

Orders only offers the slots: a higher domain (marketing) registers one step per stage with `register_step`,
so orders never imports it. Each step sees the basket as the stages before it left it.

Proration: a discount over several lines is split in proportion to what each line still costs, rounded down,
and the fen left over go one each to the lines with the largest remainders (ties: the earlier line). So the
lines' discounts always sum to the discount, and a line never gets more off than it still costs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from services.catalog.prices import PriceContext

if TYPE_CHECKING:
    from models import Order
    from services.orders.pricing import PricedLine, Quote


class Stage(IntEnum):
    """The pipeline's stages, in the order they run."""

    CAMPAIGN = 1
    LIMITED_TIME = 2
    THRESHOLD = 3
    COUPON = 4
    POINTS = 5
    SHIPPING = 6


# The stages a higher domain fills; the others are built into checkout.
PLUGGABLE = (Stage.LIMITED_TIME, Stage.THRESHOLD, Stage.COUPON)


class DiscountSource(StrEnum):
    PROMOTION = "PROMOTION"
    COUPON = "COUPON"


@dataclass(frozen=True)
class AppliedDiscount:
    """One discount the pipeline applied: its stage, where it came from, its total and its share per line
    (`line_amounts[i]` is basket line i's share; a SHIPPING entry has none: it waived the fee instead)."""

    stage: Stage
    source: DiscountSource
    source_id: int
    kind: str
    title: str
    amount: int
    line_amounts: tuple[int, ...] = ()


@dataclass(frozen=True)
class Gift:
    """A SKU given with the order (a gift action), while its stock lasts."""

    sku_id: int
    quantity: int
    source: DiscountSource
    source_id: int
    title: str


@dataclass
class PricingContext:
    """Who is buying and what they asked for: what every step may need.

    `coupons` is the shopper's coupon choice: None lets the COUPON step pick the best combination, a tuple
    names the held coupons (their ids) the shopper chose (empty: no coupon). `memo` is a per-run scratch
    space where steps keep what they looked up (e.g. whether this is the member's first order).
    """

    member_id: int | None
    level_id: int | None
    price: PriceContext
    now: datetime
    coupons: tuple[int, ...] | None = None
    memo: dict[str, Any] = field(default_factory=dict)
    # The shipping fee a goods amount would cost this order (set by the quote before the steps run), so the
    # COUPON step can weigh a bigger discount against losing free shipping.
    shipping_fee: Callable[[int], int] | None = None
    # Whether the member held an unused, unexpired coupon when checkout read the member (None: not read): the
    # COUPON step need not look for coupons of a member who has none.
    holds_coupons: bool | None = None


def prorate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` fen over `weights` in proportion, largest remainder first; 0 <= share <= weight when
    `amount` <= sum(weights) (the caller caps it)."""
    total = sum(weights)
    if amount <= 0 or total <= 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    left = amount - sum(shares)
    if left:
        by_remainder = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
        for i in by_remainder[:left]:
            shares[i] += 1
    return shares


class Basket:
    """The lines being priced and what each stage took off them so far."""

    def __init__(self, lines: Sequence[PricedLine]) -> None:
        self.lines: tuple[PricedLine, ...] = tuple(lines)
        self.discounts: list[int] = [0] * len(self.lines)
        self.applied: list[AppliedDiscount] = []
        self.gifts: list[Gift] = []
        self.free_shipping: list[AppliedDiscount] = []  # sources waiving the fee (amount set at SHIPPING)
        # Lines a promotion that does not combine has taken: no other promotion / no coupon touches them.
        self.no_more_promotions: set[int] = set()
        self.no_coupons: set[int] = set()

    def copy(self) -> Basket:
        """An independent copy (to try a combination without changing this basket)."""
        other = Basket(self.lines)
        other.discounts = list(self.discounts)
        other.applied = list(self.applied)
        other.gifts = list(self.gifts)
        other.free_shipping = list(self.free_shipping)
        other.no_more_promotions = set(self.no_more_promotions)
        other.no_coupons = set(self.no_coupons)
        return other

    @property
    def items_total(self) -> int:
        return sum(line.line_total for line in self.lines)

    def amount(self, i: int) -> int:
        """What line `i` still costs after the discounts so far."""
        return self.lines[i].line_total - self.discounts[i]

    def amount_of(self, indices: Iterable[int]) -> int:
        return sum(self.amount(i) for i in indices)

    @property
    def goods(self) -> int:
        """What the goods still cost."""
        return self.items_total - sum(self.discounts)

    @property
    def discount(self) -> int:
        return sum(self.discounts)

    def take(
        self,
        amount: int,
        indices: Iterable[int],
        *,
        stage: Stage,
        source: DiscountSource,
        source_id: int,
        kind: str,
        title: str,
    ) -> AppliedDiscount | None:
        """Take `amount` fen off the lines `indices`, prorated by what they still cost (capped at that).
        Records and returns the discount, or None when nothing was taken."""
        chosen = sorted(set(indices))
        weights = [self.amount(i) for i in chosen]
        amount = min(amount, sum(weights))
        if amount <= 0:
            return None
        return self.take_per_line(
            dict(zip(chosen, prorate(amount, weights), strict=True)),
            stage=stage,
            source=source,
            source_id=source_id,
            kind=kind,
            title=title,
        )

    def take_per_line(
        self,
        amounts: Mapping[int, int],
        *,
        stage: Stage,
        source: DiscountSource,
        source_id: int,
        kind: str,
        title: str,
    ) -> AppliedDiscount | None:
        """Take `amounts[i]` fen off line i (each capped at what the line still costs), e.g. a per-product
        price. Records and returns the discount, or None when nothing was taken."""
        per_line = [0] * len(self.lines)
        for i, fen in amounts.items():
            per_line[i] = max(0, min(fen, self.amount(i)))
        total = sum(per_line)
        if total <= 0:
            return None
        for i, fen in enumerate(per_line):
            self.discounts[i] += fen
        applied = AppliedDiscount(stage, source, source_id, kind, title, total, tuple(per_line))
        self.applied.append(applied)
        return applied

    def waive_shipping(self, *, source: DiscountSource, source_id: int, kind: str, title: str) -> None:
        """Ship this order free (the fee it saves is recorded at the SHIPPING stage)."""
        self.free_shipping.append(AppliedDiscount(Stage.SHIPPING, source, source_id, kind, title, 0))

    def give(self, gift: Gift) -> None:
        self.gifts.append(gift)


class PricingStep(Protocol):
    """One stage's rule set (all promotions of a stage, or the coupons): registered by a higher domain."""

    stage: Stage

    async def apply(self, basket: Basket, ctx: PricingContext) -> None:
        """Take this stage's discounts off `basket`; raise DomainError for a choice that cannot be honoured
        (e.g. a chosen coupon that does not apply: say which, never swap it silently)."""
        ...

    async def attach(self, order: Order, quote: Quote, ctx: PricingContext) -> None:
        """Inside the order's transaction: record what this stage used (a coupon spent, a usage counted);
        raise DomainError to refuse the order (everything rolls back)."""
        ...


_steps: dict[Stage, PricingStep] = {}


def register_step(step: PricingStep) -> None:
    """Fill `step.stage` (one of PLUGGABLE) with `step`, replacing what filled it."""
    if step.stage not in PLUGGABLE:
        raise ValueError(f"{step.stage.name} is built into checkout")
    _steps[step.stage] = step


def unregister_step(stage: Stage) -> None:
    _steps.pop(stage, None)


@contextmanager
def only_steps(*steps: PricingStep) -> Iterator[None]:
    """Run with exactly `steps` registered, then restore what was (tests, benchmarks)."""
    saved = dict(_steps)
    _steps.clear()
    try:
        for step in steps:
            register_step(step)
        yield
    finally:
        _steps.clear()
        _steps.update(saved)


def step_attaches(step: PricingStep, quote: Quote, ctx: PricingContext) -> bool:
    """Whether `step.attach` may record something for this order. A step may say it has nothing to record with
    an `attaches(quote, ctx) -> bool` method (checkout then writes a plain order in one statement); a step
    without one is always asked to attach."""
    check = getattr(step, "attaches", None)
    return True if check is None else bool(check(quote, ctx))


def registered_steps() -> list[PricingStep]:
    """The registered steps in pipeline order."""
    return [_steps[stage] for stage in PLUGGABLE if stage in _steps]


async def run_steps(basket: Basket, ctx: PricingContext) -> Basket:
    for step in registered_steps():
        await step.apply(basket, ctx)
    return basket
