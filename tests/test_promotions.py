"""The promotion engine as a table: every condition and action, stacking on and off, campaign lines, prices in
whole fen. Pure: the promotions are built in memory and the steps run on a basket."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from infra.clock import SHOP_TZ
from models import Promotion, PromotionKind, PromotionStatus
from services.catalog.prices import PUBLIC, PriceContext
from services.marketing.promotions.engine import (
    Compiled,
    LimitedTimeStep,
    OrderPromotionStep,
    compile_promotion,
    next_boundary,
    offer,
)
from services.marketing.promotions.rules import ACTIONS, CONDITIONS, Facts, Item, RuleError, parse_rule
from services.orders.pipeline import Basket, PricingContext, Stage
from services.orders.pricing import PricedLine

# Saturday 2026-11-28, 12:00 shop time.
SATURDAY = datetime(2026, 11, 28, 12, 0, tzinfo=SHOP_TZ)
GOLD = 3


def promo(
    pid: int,
    kind: PromotionKind,
    actions: list[dict[str, Any]],
    conditions: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> Compiled:
    row = Promotion(
        id=pid,
        title=f"促销{pid}",
        kind=kind,
        status=PromotionStatus.ACTIVE,
        starts_at=SATURDAY - timedelta(days=1),
        ends_at=extra.pop("ends_at", SATURDAY + timedelta(days=1)),
        conditions=conditions or [],
        actions=actions,
        **extra,
    )
    return compile_promotion(row)


def rule(type_: str, **args: Any) -> dict[str, Any]:
    return {"type": type_, "args": args}


# Lines: product id = sku id; category 10 (under 1) for products 1-2, category 20 for 3; brand 7 for product 1.
ITEMS = {
    1: Item(1, frozenset({10, 1}), 7),
    2: Item(2, frozenset({10, 1}), None),
    3: Item(3, frozenset({20}), None),
}


def line(sku: int, unit: int, quantity: int = 1, campaign: str | None = None) -> PricedLine:
    return PricedLine(sku, sku, 1, unit, quantity, campaign=campaign)


async def run(
    lines: list[PricedLine],
    promotions: list[Compiled],
    *,
    level: int | None = None,
    first_order: bool | None = False,
    at: datetime = SATURDAY,
) -> Basket:
    basket = Basket(lines)
    price = PriceContext(scope="member", is_member=True) if level is not None or first_order else PUBLIC
    ctx = PricingContext(member_id=1, level_id=level, price=price, now=at)
    ordered = sorted(promotions, key=lambda p: (-p.priority, p.id))
    ctx.memo.update(
        promotions=ordered,
        items=[ITEMS[line.product_id] for line in lines],
        facts=Facts(at, level, price.is_member, first_order),
    )
    await LimitedTimeStep().apply(basket, ctx)
    await OrderPromotionStep().apply(basket, ctx)
    assert sum(basket.discounts) == sum(d.amount for d in basket.applied)
    assert all(0 <= basket.amount(i) for i in range(len(lines)))
    return basket


THRESHOLD = PromotionKind.THRESHOLD
LIMITED = PromotionKind.LIMITED_TIME
满300减40 = [rule("MIN_AMOUNT", amount=30000)], [rule("AMOUNT_OFF", amount=4000)]

# (name, lines, promotions, viewer, expected discount)
CASES: list[tuple[str, list[PricedLine], list[Compiled], dict[str, Any], int]] = [
    (
        "满300减40 reached",
        [line(1, 20000), line(3, 10000)],
        [promo(1, THRESHOLD, 满300减40[1], 满300减40[0])],
        {},
        4000,
    ),
    ("满300减40 missed by 1 fen", [line(1, 29999)], [promo(1, THRESHOLD, 满300减40[1], 满300减40[0])], {}, 0),
    (
        "min quantity 3 met",
        [line(1, 1000, 3)],
        [promo(1, THRESHOLD, [rule("AMOUNT_OFF", amount=500)], [rule("MIN_QUANTITY", quantity=3)])],
        {},
        500,
    ),
    (
        "min quantity 3 missed",
        [line(1, 1000, 2)],
        [promo(1, THRESHOLD, [rule("AMOUNT_OFF", amount=500)], [rule("MIN_QUANTITY", quantity=3)])],
        {},
        0,
    ),
    (
        "products in scope only",
        [line(1, 10000), line(3, 10000)],
        [promo(1, THRESHOLD, [rule("PERCENT_OFF", percent=10)], [rule("PRODUCTS", ids=[3])])],
        {},
        1000,
    ),
    (
        "category matches its subtree",
        [line(1, 10000), line(3, 10000)],
        [promo(1, THRESHOLD, [rule("PERCENT_OFF", percent=10)], [rule("CATEGORIES", ids=[1])])],
        {},
        1000,
    ),
    (
        "brand scope",
        [line(1, 10000), line(2, 10000)],
        [promo(1, THRESHOLD, [rule("AMOUNT_OFF", amount=300)], [rule("BRANDS", ids=[7])])],
        {},
        300,
    ),
    (
        "member level met",
        [line(1, 10000)],
        [promo(1, THRESHOLD, [rule("AMOUNT_OFF", amount=300)], [rule("MEMBER_LEVELS", ids=[GOLD])])],
        {"level": GOLD},
        300,
    ),
    (
        "member level missed",
        [line(1, 10000)],
        [promo(1, THRESHOLD, [rule("AMOUNT_OFF", amount=300)], [rule("MEMBER_LEVELS", ids=[GOLD])])],
        {"level": 1},
        0,
    ),
    (
        "first order",
        [line(1, 10000)],
        [promo(1, PromotionKind.FIRST_ORDER, [rule("AMOUNT_OFF", amount=1000)], [rule("FIRST_ORDER")])],
        {"first_order": True},
        1000,
    ),
    (
        "not the first order",
        [line(1, 10000)],
        [promo(1, PromotionKind.FIRST_ORDER, [rule("AMOUNT_OFF", amount=1000)], [rule("FIRST_ORDER")])],
        {"first_order": False},
        0,
    ),
    (
        "time window 10:00-14:00 at noon",
        [line(1, 10000)],
        [
            promo(
                1,
                THRESHOLD,
                [rule("AMOUNT_OFF", amount=100)],
                [rule("TIME_WINDOW", start="10:00", end="14:00")],
            )
        ],
        {},
        100,
    ),
    (
        "night window 20:00-02:00 at noon",
        [line(1, 10000)],
        [
            promo(
                1,
                THRESHOLD,
                [rule("AMOUNT_OFF", amount=100)],
                [rule("TIME_WINDOW", start="20:00", end="02:00")],
            )
        ],
        {},
        0,
    ),
    (
        "night window at 01:00",
        [line(1, 10000)],
        [
            promo(
                1,
                THRESHOLD,
                [rule("AMOUNT_OFF", amount=100)],
                [rule("TIME_WINDOW", start="20:00", end="02:00")],
            )
        ],
        {"at": SATURDAY.replace(hour=1)},
        100,
    ),
    (
        "weekend (Saturday)",
        [line(1, 10000)],
        [promo(1, THRESHOLD, [rule("AMOUNT_OFF", amount=100)], [rule("WEEKDAYS", days=[6, 7])])],
        {},
        100,
    ),
    (
        "weekdays only on a Saturday",
        [line(1, 10000)],
        [promo(1, THRESHOLD, [rule("AMOUNT_OFF", amount=100)], [rule("WEEKDAYS", days=[1, 2, 3, 4, 5])])],
        {},
        0,
    ),
    (
        "member day the 28th",
        [line(1, 10000)],
        [
            promo(
                1,
                PromotionKind.MEMBER_DAY,
                [rule("PERCENT_OFF", percent=5)],
                [rule("MONTH_DAYS", days=[8, 28])],
            )
        ],
        {},
        500,
    ),
    (
        "member day not today",
        [line(1, 10000)],
        [
            promo(
                1, PromotionKind.MEMBER_DAY, [rule("PERCENT_OFF", percent=5)], [rule("MONTH_DAYS", days=[8])]
            )
        ],
        {},
        0,
    ),
    (
        "percentage off with a cap",
        [line(1, 100000)],
        [promo(1, THRESHOLD, [rule("PERCENT_OFF", percent=20, cap=5000)])],
        {},
        5000,
    ),
    (
        "percentage off rounds down to fen",
        [line(1, 999)],
        [promo(1, THRESHOLD, [rule("PERCENT_OFF", percent=15)])],
        {},
        149,
    ),
    (
        "fixed price per unit",
        [line(1, 5000, 2), line(3, 800)],
        [promo(1, THRESHOLD, [rule("FIXED_PRICE", price=1000)])],
        {},
        8000,
    ),
    (
        "amount off never beyond the goods",
        [line(1, 1)],
        [promo(1, THRESHOLD, [rule("AMOUNT_OFF", amount=500)])],
        {},
        1,
    ),
    (
        "limited time: 8折 per unit, half up",
        [line(1, 1999, 3)],
        [promo(1, LIMITED, [rule("PERCENT_OFF", percent=20)])],
        {},
        3 * (1999 - 1599),
    ),
    (
        "limited time: the lowest price wins, not both",
        [line(1, 10000)],
        [
            promo(1, LIMITED, [rule("PERCENT_OFF", percent=10)]),
            promo(2, LIMITED, [rule("FIXED_PRICE", price=7000)]),
        ],
        {},
        3000,
    ),
    (
        "limited time then 满减 on what is left",
        [line(1, 20000), line(3, 15000)],
        [
            promo(1, LIMITED, [rule("FIXED_PRICE", price=15000)], [rule("PRODUCTS", ids=[1])]),
            promo(2, THRESHOLD, 满300减40[1], 满300减40[0]),
        ],
        {},
        5000 + 4000,
    ),
    (
        "limited time takes the line below 满300",
        [line(1, 20000), line(3, 12000)],
        [
            promo(1, LIMITED, [rule("FIXED_PRICE", price=15000)], [rule("PRODUCTS", ids=[1])]),
            promo(2, THRESHOLD, 满300减40[1], 满300减40[0]),
        ],
        {},
        5000,
    ),
    (
        "stacking on: two order promotions add up",
        [line(1, 50000)],
        [
            promo(1, THRESHOLD, 满300减40[1], 满300减40[0]),
            promo(2, THRESHOLD, [rule("AMOUNT_OFF", amount=1000)]),
        ],
        {},
        5000,
    ),
    (
        "stacking off: the exclusive one skips discounted lines",
        [line(1, 50000)],
        [
            promo(1, THRESHOLD, 满300减40[1], 满300减40[0], priority=5),
            promo(2, THRESHOLD, [rule("AMOUNT_OFF", amount=1000)], combines_with_promotions=False),
        ],
        {},
        4000,
    ),
    (
        "stacking off: the exclusive one keeps its lines",
        [line(1, 50000)],
        [
            promo(
                1, THRESHOLD, [rule("AMOUNT_OFF", amount=1000)], combines_with_promotions=False, priority=5
            ),
            promo(2, THRESHOLD, 满300减40[1], 满300减40[0]),
        ],
        {},
        1000,
    ),
    (
        "campaign lines are skipped by default",
        [line(1, 50000, campaign="FLASH_SALE")],
        [promo(1, THRESHOLD, [rule("AMOUNT_OFF", amount=1000)])],
        {},
        0,
    ),
    (
        "unless the promotion says so",
        [line(1, 50000, campaign="FLASH_SALE")],
        [promo(1, THRESHOLD, [rule("AMOUNT_OFF", amount=1000)], applies_to_campaign_lines=True)],
        {},
        1000,
    ),
]


@pytest.mark.parametrize(
    ("name", "lines", "promotions", "viewer", "expected"), CASES, ids=[c[0] for c in CASES]
)
async def test_engine_table(
    name: str, lines: list[PricedLine], promotions: list[Compiled], viewer: dict[str, Any], expected: int
) -> None:
    basket = await run(lines, promotions, **viewer)
    assert basket.discount == expected, name


async def test_every_registered_rule_is_in_the_table() -> None:
    used = {r["type"] for c in CASES for p in c[2] for r in _rules_of(p)}
    assert set(CONDITIONS) <= used
    assert set(ACTIONS) - {"FREE_SHIPPING", "GIFT_SKU"} <= used  # those two: test_free_shipping_and_gifts


def _rules_of(p: Compiled) -> list[dict[str, Any]]:
    return [c.to_json() for c in (*p.scope, *p.viewer, *p.basket)] + [a.to_json() for a in p.actions]


async def test_free_shipping_and_gifts_are_recorded_with_their_promotion() -> None:
    gift = promo(4, THRESHOLD, [rule("FREE_SHIPPING"), rule("GIFT_SKU", sku_id=99, quantity=2)], 满300减40[0])
    basket = await run([line(1, 30000)], [gift])
    assert [(w.source_id, w.kind) for w in basket.free_shipping] == [(4, "THRESHOLD")]
    assert [(g.sku_id, g.quantity, g.source_id) for g in basket.gifts] == [(99, 2, 4)]
    assert basket.discount == 0


async def test_exclusive_promotion_keeps_coupons_off_its_lines() -> None:
    solo = promo(
        1,
        THRESHOLD,
        [rule("AMOUNT_OFF", amount=100)],
        [rule("PRODUCTS", ids=[1])],
        combines_with_coupons=False,
    )
    basket = await run([line(1, 1000), line(3, 1000)], [solo])
    assert basket.no_coupons == {0}


async def test_a_three_way_split_of_awkward_amounts_sums_exactly() -> None:
    basket = await run(
        [line(1, 1), line(2, 3333, 3), line(3, 4999)],
        [promo(1, THRESHOLD, [rule("AMOUNT_OFF", amount=1000)])],
    )
    assert basket.discount == 1000 and basket.discounts[0] <= 1
    assert basket.applied[0].line_amounts == tuple(basket.discounts)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (rule("PERCENT_OFF", percent=101), "args.percent"),
        (rule("PERCENT_OFF", percent=0), "args.percent"),
        (rule("PRODUCTS", ids=[]), "args.ids"),
        (rule("AMOUNT_OFF", amount="10"), "args.amount"),
        (rule("AMOUNT_OFF"), "args.amount"),
        (rule("AMOUNT_OFF", amount=1, extra=2), "args.extra"),
        (rule("TIME_WINDOW", start="25:00", end="10:00"), "args.start"),
        (rule("WEEKDAYS", days=[0]), "args.days"),
        ({"type": "NOPE"}, "type"),
    ],
)
def test_bad_rules_name_their_argument(raw: dict[str, Any], field: str) -> None:
    registry = ACTIONS if raw["type"] in ACTIONS else CONDITIONS
    with pytest.raises(RuleError) as caught:
        parse_rule(registry, raw)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_the_product_page_offer_and_its_next_boundary() -> None:
    ends = SATURDAY + timedelta(hours=2)
    sale = promo(1, LIMITED, [rule("PERCENT_OFF", percent=20)], [rule("PRODUCTS", ids=[1])], ends_at=ends)
    weekend = promo(2, THRESHOLD, 满300减40[1], [*满300减40[0], rule("WEEKDAYS", days=[6, 7])])
    newcomer = promo(3, PromotionKind.FIRST_ORDER, [rule("AMOUNT_OFF", amount=1000)], [rule("FIRST_ORDER")])
    facts = Facts(SATURDAY, None, False, None)
    seen = offer(10000, ITEMS[1], [sale, weekend, newcomer], facts)
    assert seen.active_price == 8000
    assert [p.id for p in seen.promotions] == [1, 2], "member-specific promotions are left to checkout"
    assert offer(10000, ITEMS[3], [sale, weekend], facts).active_price == 10000
    assert offer(10000, ITEMS[1], [sale], facts, campaign=True).promotions == ()
    # The sale ends in two hours; the weekend promotion turns at midnight.
    assert next_boundary([sale, weekend], SATURDAY, None) == ends
    assert next_boundary([weekend], SATURDAY, None) == datetime(2026, 11, 29, 0, 0, tzinfo=SHOP_TZ)
    assert next_boundary([], SATURDAY, SATURDAY + timedelta(minutes=5)) == SATURDAY + timedelta(minutes=5)


def test_stages_of_kinds() -> None:
    assert promo(1, LIMITED, [rule("AMOUNT_OFF", amount=1)]).stage == Stage.LIMITED_TIME
    assert promo(1, PromotionKind.MEMBER_DAY, [rule("AMOUNT_OFF", amount=1)]).stage == Stage.THRESHOLD
