"""Which of a shopper's coupons an order can use, why not, and the best combination (pure: no database).

An order's goods reach this step as `CouponLine`s carrying what each line costs after the earlier pipeline
steps. A coupon applies to the lines in its scope (`coupon_ok` lines only: a campaign or promotion may exclude
its lines from coupons); its minimum spend is compared with those lines' amount before any coupon.

A combination is one coupon that does not stack, or any number of stackable coupons of different templates.
Coupons of a combination are applied in a fixed order (largest stand-alone discount first, then id); each
takes at most what is left of its lines, prorated over them in whole fen by largest remainder, so the lines
always sum to the order and a refund of one line stays exact.

`best_combination` is exact over that space (not greedy): branch and bound on the stackable coupons, plus
every non-stackable coupon alone. What the coupons still to decide can add is bounded by each one's stand-alone
discount and what is left of its lines, and all of them together by what is left of the lines they reach (with
stand-alone values alone, a wallet of many small coupons on a small basket explored the node cap). The
objective is what the shopper pays (`-discount + penalty(discount)`, the penalty being e.g. the shipping fee
the lower goods amount would cost). A node cap bounds the work on pathological wallets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from models import CouponKind, CouponScope

# Explored nodes at most; far above what 30 coupons need with the bound (see tests/test_coupon_choice.py).
NODE_CAP = 200_000


@dataclass(frozen=True)
class CouponLine:
    key: int  # the caller's line index
    product_id: int
    category_ids: frozenset[int]  # the product's category and its ancestors
    brand_id: int | None
    amount: int  # fen this line costs after the earlier steps
    coupon_ok: bool = True


@dataclass(frozen=True)
class HeldCoupon:
    id: int  # the member's coupon (MemberCoupon)
    coupon_id: int  # its template
    name: str
    kind: CouponKind
    amount_off: int
    discount_percent: int
    max_discount: int
    min_amount: int
    scope: CouponScope
    scope_ids: frozenset[int]
    stackable: bool
    valid_from: datetime
    valid_until: datetime


@dataclass(frozen=True)
class Verdict:
    coupon: HeldCoupon
    applicable: bool
    discount: int  # what it takes off alone (0 when not applicable)
    reason: str = ""  # in words, for the shopper, when not applicable
    gap: int = 0  # fen more of in-scope goods that would make it applicable


def yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


def in_scope(coupon: HeldCoupon, line: CouponLine) -> bool:
    if coupon.scope == CouponScope.ALL:
        return True
    if coupon.scope == CouponScope.PRODUCTS:
        return line.product_id in coupon.scope_ids
    if coupon.scope == CouponScope.CATEGORIES:
        return not line.category_ids.isdisjoint(coupon.scope_ids)
    return line.brand_id is not None and line.brand_id in coupon.scope_ids


def nominal(coupon: HeldCoupon, eligible: int) -> int:
    """Fen off `eligible` fen of in-scope goods, before capping at what is left of them."""
    if coupon.kind == CouponKind.DISCOUNT:
        return min(coupon.max_discount, eligible * (100 - coupon.discount_percent) // 100)
    return coupon.amount_off


@dataclass(frozen=True)
class Scope:
    """Which lines a coupon reaches, worked out once per pricing run (the search asks at every node)."""

    scoped: bool  # some line is in its scope (usable or not)
    keys: tuple[int, ...]  # the keys of the lines in scope that coupons may touch, in line order
    eligible: int  # what those lines cost before any coupon


def scope_of(coupon: HeldCoupon, lines: Sequence[CouponLine]) -> Scope:
    ids = coupon.scope_ids
    # in_scope, unrolled per kind of scope: asked for every held coupon and line of every preview.
    if coupon.scope == CouponScope.ALL:
        scoped = list(lines)
    elif coupon.scope == CouponScope.PRODUCTS:
        scoped = [line for line in lines if line.product_id in ids]
    elif coupon.scope == CouponScope.CATEGORIES:
        scoped = [line for line in lines if not line.category_ids.isdisjoint(ids)]
    else:
        scoped = [line for line in lines if line.brand_id is not None and line.brand_id in ids]
    usable = [line for line in scoped if line.coupon_ok]
    return Scope(bool(scoped), tuple(line.key for line in usable), sum(line.amount for line in usable))


def scopes_of(coupons: Sequence[HeldCoupon], lines: Sequence[CouponLine]) -> dict[int, Scope]:
    """Each coupon's Scope by its id (a held coupon's id is unique)."""
    return {coupon.id: scope_of(coupon, lines) for coupon in coupons}


def judge(
    coupon: HeldCoupon, lines: Sequence[CouponLine], at: datetime, scope: Scope | None = None
) -> Verdict:
    """Whether `coupon` alone applies to `lines` at `at`; if not, why in words and the spend it lacks."""
    if coupon.valid_until <= at:
        return Verdict(coupon, False, 0, "已过期")
    if coupon.valid_from > at:
        return Verdict(coupon, False, 0, f"{coupon.valid_from:%Y-%m-%d %H:%M} 起可用")
    if scope is None:
        scope = scope_of(coupon, lines)
    if not scope.scoped:
        return Verdict(coupon, False, 0, "本单没有适用此券的商品")
    if not scope.keys:
        return Verdict(coupon, False, 0, "适用商品正在参加不可用券的活动")
    eligible = scope.eligible
    if eligible < coupon.min_amount:
        gap = coupon.min_amount - eligible
        return Verdict(coupon, False, 0, f"再买 {yuan(gap)} 可用", gap)
    discount = min(nominal(coupon, eligible), eligible)
    if discount <= 0:
        return Verdict(coupon, False, 0, "本单用此券不减钱")
    return Verdict(coupon, True, discount)


def prorate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` (at most sum(weights)) over `weights` in whole fen, proportionally, by largest
    remainder: the parts sum to `amount` and none exceeds its weight."""
    total = sum(weights)
    if amount <= 0 or total <= 0:
        return [0] * len(weights)
    parts = [amount * w // total for w in weights]
    short = amount - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in order[:short]:
        parts[i] += 1
    return parts


def apply_in_order(
    coupons: Sequence[HeldCoupon], lines: Sequence[CouponLine], scopes: Mapping[int, Scope] | None = None
) -> tuple[int, dict[int, dict[int, int]]]:
    """Apply `coupons` one after the other; the total discount and each coupon's fen per line key."""
    left = {line.key: line.amount if line.coupon_ok else 0 for line in lines}
    total = 0
    shares: dict[int, dict[int, int]] = {}
    for coupon in coupons:
        scope = scopes[coupon.id] if scopes is not None else scope_of(coupon, lines)
        keys = scope.keys
        remaining = sum(left[k] for k in keys)
        take = min(nominal(coupon, scope.eligible), remaining) if scope.eligible >= coupon.min_amount else 0
        parts = prorate(take, [left[k] for k in keys])
        for k, part in zip(keys, parts, strict=True):
            left[k] -= part
        shares[coupon.id] = {k: p for k, p in zip(keys, parts, strict=True) if p}
        total += take
    return total, shares


def order_key(verdict: Verdict) -> tuple[int, int]:
    return (-verdict.discount, verdict.coupon.id)


@dataclass(frozen=True)
class Choice:
    coupons: tuple[HeldCoupon, ...]  # in the order they are applied
    discount: int
    cost: int  # -discount + penalty(discount): lower is better for the shopper
    nodes: int  # search nodes explored
    exhaustive: bool  # False only if the node cap stopped the search


def _dedupe(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """At most one coupon per template in an order: of equal ones, the one that expires first."""
    best: dict[int, Verdict] = {}
    for v in verdicts:
        known = best.get(v.coupon.coupon_id)
        if known is None or (v.coupon.valid_until, v.coupon.id) < (known.coupon.valid_until, known.coupon.id):
            best[v.coupon.coupon_id] = v
    return list(best.values())


def best_combination(
    verdicts: Sequence[Verdict],
    lines: Sequence[CouponLine],
    penalty: Callable[[int], int] = lambda _d: 0,
    node_cap: int = NODE_CAP,
    scopes: Mapping[int, Scope] | None = None,
) -> Choice:
    """The combination of applicable coupons that leaves the shopper paying least (see the module docstring).

    `penalty(d)` must not decrease as `d` grows (a shipping fee for goods falling under the free threshold).
    Of the combinations the search meets at one cost, fewer coupons win, then the first found (larger coupons
    are tried first); a subtree that can at best tie is not searched. `scopes` (scopes_of) spares working out
    each coupon's lines again.
    """
    usable = sorted(_dedupe([v for v in verdicts if v.applicable]), key=order_key)
    if scopes is None:
        scopes = scopes_of([v.coupon for v in usable], lines)
    best = Choice((), 0, penalty(0), 0, True)

    def consider(chosen: tuple[HeldCoupon, ...]) -> None:
        nonlocal best
        discount, _ = apply_in_order(chosen, lines, scopes)
        cost = -discount + penalty(discount)
        if (cost, len(chosen)) < (best.cost, len(best.coupons)):
            best = Choice(chosen, discount, cost, best.nodes, True)

    for v in usable:
        if not v.coupon.stackable:
            consider((v.coupon,))
    stack = [v for v in usable if v.coupon.stackable]
    bounds = [0] * (len(stack) + 1)
    for i in range(len(stack) - 1, -1, -1):
        bounds[i] = bounds[i + 1] + stack[i].discount
    stack_keys = [scopes[v.coupon.id].keys for v in stack]
    # The lines the coupons from i on can still reach: together they cannot take more than is left of those.
    reach: list[tuple[int, ...]] = [()] * (len(stack) + 1)
    for i in range(len(stack) - 1, -1, -1):
        reach[i] = tuple(sorted(set(reach[i + 1]) | set(stack_keys[i])))

    def hopeless(i: int, left: dict[int, int], current: int) -> bool:
        """Whether nothing below a node can beat the best (penalty does not decrease as the discount grows),
        by ever tighter bounds on what the coupons from i on can still add: their stand-alone values; at most
        what is left of the lines they reach; each at most what is left of its own lines."""
        floor = penalty(current) - current
        gain = bounds[i]
        if floor - gain >= best.cost:
            return True
        gain = min(gain, sum(left[k] for k in reach[i]))
        if floor - gain >= best.cost:
            return True
        each = 0
        for j in range(i, len(stack)):
            each += min(stack[j].discount, sum(left[k] for k in stack_keys[j]))
            if floor - each < best.cost:
                return False
        return True

    nodes = 0
    exhaustive = True

    # Depth-first: (next index, chosen so far, what is left per line, discount so far).
    start_left = {line.key: line.amount if line.coupon_ok else 0 for line in lines}
    todo: list[tuple[int, tuple[HeldCoupon, ...], dict[int, int], int]] = [(0, (), start_left, 0)]
    while todo:
        i, chosen, left, current = todo.pop()
        nodes += 1
        if nodes > node_cap:
            exhaustive = False
            break
        if chosen and (-current + penalty(current), len(chosen)) < (best.cost, len(best.coupons)):
            best = Choice(chosen, current, -current + penalty(current), 0, True)
        if i == len(stack):
            continue
        if hopeless(i, left, current):
            continue
        coupon = stack[i].coupon
        todo.append((i + 1, chosen, left, current))  # without it (explored after "with")
        keys = stack_keys[i]
        weights = [left[k] for k in keys]
        take = min(stack[i].discount, sum(weights))
        if take > 0:
            after = dict(left)
            for k, part in zip(keys, prorate(take, weights), strict=True):
                after[k] -= part
            todo.append((i + 1, (*chosen, coupon), after, current + take))
    return Choice(best.coupons, best.discount, best.cost, nodes, exhaustive)


def evaluate(
    coupons: Sequence[HeldCoupon], lines: Sequence[CouponLine], at: datetime
) -> tuple[list[Verdict], str | None]:
    """Verdicts for a combination the shopper chose, in application order, and what is wrong with it (the
    first coupon that cannot be used, named, and why), or None when it can be used as a whole."""
    verdicts = sorted((judge(c, lines, at) for c in coupons), key=order_key)
    for v in verdicts:
        if not v.applicable:
            return verdicts, f"「{v.coupon.name}」不可用：{v.reason}"
    templates = [c.coupon_id for c in coupons]
    if len(set(templates)) != len(templates):
        twice = next(c for c in coupons if templates.count(c.coupon_id) > 1)
        return verdicts, f"「{twice.name}」一单只能用一张"
    if len(coupons) > 1:
        lone = next((c for c in coupons if not c.stackable), None)
        if lone is not None:
            return verdicts, f"「{lone.name}」不可与其他优惠券同时使用"
    return verdicts, None
