"""Coupons in checkout: the pipeline's COUPON step, spending coupons with the order, giving them back.

- `CouponStep.apply` judges every coupon the shopper holds against the basket as the promotions left it
  (services.marketing.coupons.choice), then takes off the coupons the shopper chose, or, with no choice, the
  best combination for them. A chosen coupon that cannot be used is an error naming it (COUPON_NOT_APPLICABLE,
  field `input.couponIds[i]`), never swapped for another. The verdicts stay in the pricing context's memo
  (`MEMO_KEY`) for the checkout preview to show.
- `CouponStep.attach` spends the coupons inside the order's transaction with a guarded update (`status =
  UNUSED`, still valid): of two orders racing for one coupon, one is written and the other rolls back whole.
- Coupons come back, only while still valid: always when an unpaid order is cancelled (by the shopper, staff
  or the unpaid timeout: the order state machine's CANCELLED hook); on refunds per the coupon's rule
  (`return_on_refund`: "a fully refunded order gives it back"): when a succeeded refund leaves the order's goods
  refunded in full, in one refund or line by line, shipped or not (the settlement's refund hook), never on a
  partial refund.

Registered with services.orders when this module is imported (resolvers.coupons imports it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import F

from infra import raw_sql
from infra.clock import now
from models import (
    Coupon,
    CouponSource,
    HeldCouponStatus,
    MemberCoupon,
    Order,
    OrderStatus,
    Refund,
)
from services.errors import DomainError, ErrorCode
from services.marketing.coupons.choice import (
    Choice,
    CouponLine,
    HeldCoupon,
    Verdict,
    apply_in_order,
    best_combination,
    evaluate,
    judge,
    scopes_of,
)
from services.marketing.pipeline import couponable_lines, line_categories
from services.marketing.rows import stored_datetime
from services.orders import settlement, states
from services.orders.pipeline import Basket, DiscountSource, PricingContext, Stage, register_step
from services.orders.pricing import Quote
from services.orders.states import Announcements

MEMO_KEY = "coupons"
CHOICE_FIELD = "input.couponIds"


@dataclass(frozen=True)
class CouponReport:
    """What the COUPON step found, for the preview: every held coupon's verdict and which were used."""

    held: tuple[tuple[HeldRow, Verdict], ...]
    chosen: tuple[int, ...]  # held coupon ids taken off the order, in the order applied
    auto_picked: bool
    discount: int


def held_coupon(row: HeldRow) -> HeldCoupon:
    c: Coupon = row.coupon
    return HeldCoupon(
        id=row.id,
        coupon_id=c.id,
        name=c.name,
        kind=c.kind,
        amount_off=c.amount_off,
        discount_percent=c.discount_percent,
        max_discount=c.max_discount,
        min_amount=c.min_amount,
        scope=c.scope,
        scope_ids=frozenset(c.scope_ids),
        stackable=c.stackable,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )


@dataclass(frozen=True)
class HeldRow:
    """A held coupon as checkout reads it: plain values with its template (building ORM instances was most of
    a preview's time)."""

    id: int
    status: HeldCouponStatus
    source: CouponSource
    valid_from: datetime
    valid_until: datetime
    claimed_at: datetime
    used_at: datetime | None
    order_id: int | None
    coupon: Coupon


# The member's unused, unexpired coupons as plain rows (infra.raw_sql, services.marketing.rows: ~2 ms less per
# preview than through Tortoise), with when their templates last changed (to know a kept template is current).
_HELD_SQL = (
    "SELECT h.id, h.coupon_id, h.status, h.source, h.valid_from, h.valid_until, h.claimed_at, h.used_at,"
    " h.order_id, c.updated_at FROM member_coupons h JOIN coupons c ON c.id = h.coupon_id"
    " WHERE h.member_id = $1 AND h.status = $2 AND h.valid_until > $3 ORDER BY h.valid_until, h.id"
)
_HELD_COLUMNS = (
    "id",
    "coupon_id",
    "status",
    "source",
    "valid_from",
    "valid_until",
    "claimed_at",
    "used_at",
    "order_id",
)
_HELD_TIMES = ("valid_from", "valid_until", "claimed_at", "used_at", "coupon__updated_at")


async def _unused_rows(member_id: int, at: datetime) -> list[dict[str, Any]]:
    found = []
    for row in await raw_sql.fetch(_HELD_SQL, [member_id, HeldCouponStatus.UNUSED.value, at]):
        values = dict(zip((*_HELD_COLUMNS, "coupon__updated_at"), row, strict=True))
        for name in _HELD_TIMES:
            if values[name] is not None:
                values[name] = stored_datetime(values[name])
        found.append(values)
    return found


# Templates are kept per process, each while its `updated_at` is the one the held coupons' read saw (every change
# of a template stamps it: templates.update_coupon), so a kept template is never older than that read, in any
# process; and for at most this long, which bounds how old its counters (issued, used) may be.
TEMPLATE_TTL = 30.0
_templates: dict[int, tuple[float, Coupon]] = {}


async def templates_by_id(versions: dict[int, datetime | None]) -> dict[int, Coupon]:
    """The templates with these ids, each as of at least the given `updated_at` (None: any kept one)."""
    moment = time.monotonic()
    found = {
        i: hit[1]
        for i, version in versions.items()
        if (hit := _templates.get(i)) is not None
        and hit[0] > moment
        and (version is None or hit[1].updated_at == version)
    }
    missing = versions.keys() - found.keys()
    if missing:
        for row in await Coupon.filter(id__in=sorted(missing)):
            _templates[row.id] = (moment + TEMPLATE_TTL, row)
            found[row.id] = row
        if len(_templates) > 10_000:
            _templates.clear()
    return found


async def _held(member_id: int, at_ids: Sequence[int] | None) -> list[HeldRow]:
    """The member's unused, unexpired coupons (and any chosen ones whatever their state, to name them)."""
    rows = await _unused_rows(member_id, now())
    if at_ids:
        known = {row["id"] for row in rows}
        missing = [i for i in at_ids if i not in known]
        if missing:
            rows += list(
                await MemberCoupon.filter(member_id=member_id, id__in=missing).values(
                    *_HELD_COLUMNS, "coupon__updated_at"
                )
            )
    coupons = await templates_by_id({int(row["coupon_id"]): row["coupon__updated_at"] for row in rows})
    return [
        HeldRow(
            id=int(row["id"]),
            status=HeldCouponStatus(row["status"]),
            source=CouponSource(row["source"]),
            valid_from=row["valid_from"],
            valid_until=row["valid_until"],
            claimed_at=row["claimed_at"],
            used_at=row["used_at"],
            order_id=row["order_id"],
            coupon=coupons[int(row["coupon_id"])],
        )
        for row in rows
    ]


async def _coupon_lines(basket: Basket, ctx: PricingContext) -> list[CouponLine]:
    ok = set(couponable_lines(basket))
    ancestors = await line_categories(basket, ctx)
    return [
        CouponLine(
            key=i,
            product_id=line.product_id,
            category_ids=ancestors.get(line.category_id, frozenset()) if line.category_id else frozenset(),
            brand_id=line.brand_id,
            amount=basket.amount(i),
            coupon_ok=i in ok,
        )
        for i, line in enumerate(basket.lines)
    ]


def _penalty(basket: Basket, ctx: PricingContext) -> Callable[[int], int]:
    """The shipping fee a coupon discount `d` would leave the shopper paying (0 when shipping is waived)."""
    fee = ctx.shipping_fee
    if fee is None or basket.free_shipping:
        return lambda _d: 0
    goods = basket.goods
    return lambda d: fee(goods - d)


def _refuse(message: str, index: int | None) -> DomainError:
    field = CHOICE_FIELD if index is None else f"{CHOICE_FIELD}[{index}]"
    return DomainError(ErrorCode.COUPON_NOT_APPLICABLE, message, field)


class CouponStep:
    stage = Stage.COUPON

    async def apply(self, basket: Basket, ctx: PricingContext) -> None:
        """Judge the held coupons and take off the chosen ones, or the best combination (see the module)."""
        if ctx.member_id is None:
            return
        chosen_ids = ctx.coupons
        # A member checkout found holding no coupon has none to judge (chosen ones are still looked up, to name them).
        rows = [] if ctx.holds_coupons is False and not chosen_ids else await _held(ctx.member_id, chosen_ids)
        lines = await _coupon_lines(basket, ctx)
        held = [held_coupon(row) for row in rows]
        scopes = scopes_of(held, lines)
        verdicts = {c.id: judge(c, lines, ctx.now, scopes[c.id]) for c in held}
        by_id = {row.id: row for row in rows}
        if chosen_ids is None:
            choice: Choice = best_combination(
                list(verdicts.values()), lines, _penalty(basket, ctx), scopes=scopes
            )
            coupons = choice.coupons
        else:
            coupons = self._chosen(chosen_ids, by_id, lines, ctx)
        total, shares = apply_in_order(coupons, lines, scopes)
        for coupon in coupons:
            basket.take_per_line(
                shares[coupon.id],
                stage=Stage.COUPON,
                source=DiscountSource.COUPON,
                source_id=coupon.coupon_id,
                kind=by_id[coupon.id].coupon.kind.value,
                title=coupon.name,
            )
        held = tuple((row, verdicts[row.id]) for row in rows if row.status == HeldCouponStatus.UNUSED)
        ctx.memo[MEMO_KEY] = CouponReport(held, tuple(c.id for c in coupons), chosen_ids is None, total)

    def _chosen(
        self,
        chosen_ids: tuple[int, ...],
        by_id: dict[int, HeldRow],
        lines: Sequence[CouponLine],
        ctx: PricingContext,
    ) -> tuple[HeldCoupon, ...]:
        for i, held_id in enumerate(chosen_ids):
            row = by_id.get(held_id)
            if row is None:
                raise _refuse("This coupon is not yours", i)
            if row.status != HeldCouponStatus.UNUSED:
                raise _refuse(f"「{row.coupon.name}」已使用", i)
        if len(set(chosen_ids)) != len(chosen_ids):
            raise _refuse("A coupon is chosen twice", None)
        coupons = [held_coupon(by_id[i]) for i in chosen_ids]
        verdicts, problem = evaluate(coupons, lines, ctx.now)
        if problem is not None:
            first_bad = next((v for v in verdicts if not v.applicable), None)
            index = chosen_ids.index(first_bad.coupon.id) if first_bad else None
            raise _refuse(problem, index)
        return tuple(v.coupon for v in verdicts)

    def attaches(self, quote: Quote, ctx: PricingContext) -> bool:
        """Whether the order spends coupons (then `attach` has to)."""
        report: CouponReport | None = ctx.memo.get(MEMO_KEY)
        return report is not None and bool(report.chosen)

    async def attach(self, order: Order, quote: Quote, ctx: PricingContext) -> None:
        """Spend the coupons the order used, inside its transaction (guarded: each coupon once)."""
        report: CouponReport | None = ctx.memo.get(MEMO_KEY)
        if report is None or not report.chosen:
            return
        at = now()
        names = {row.id: row.coupon.name for row, _ in report.held}
        templates = {row.id: row.coupon.id for row, _ in report.held}
        for held_id in report.chosen:
            spent = await MemberCoupon.filter(
                id=held_id,
                member_id=order.member_id,  # type: ignore[attr-defined]
                status=HeldCouponStatus.UNUSED,
                valid_from__lte=at,
                valid_until__gt=at,
            ).update(status=HeldCouponStatus.USED, order_id=order.id, used_at=at)
            if not spent:
                raise _refuse(f"「{names.get(held_id, held_id)}」刚刚被用掉或已过期", None)
            await Coupon.filter(id=templates[held_id]).update(used=F("used") + 1)


async def give_back(order: Order, from_status: OrderStatus, _news: Announcements) -> None:
    """CANCELLED: an unpaid order's coupons come back; a refunded one's only if the coupon says so. Only coupons
    still valid come back (an expired one stays spent)."""
    if from_status not in (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID):
        return
    await _return_coupons(order.id, refunded=from_status == OrderStatus.PAID)


async def give_back_on_refund(order: Order, _refund: Refund, wholly: bool) -> None:
    """A succeeded refund: once it leaves the order's goods refunded in full (in one refund or line by line, shipped
    or not), the coupons made with `return_on_refund` come back while still valid; a partial refund keeps them
    spent (their discount stays in the lines the shopper kept)."""
    if wholly:
        await _return_coupons(order.id, refunded=True)


async def _return_coupons(order_id: int, *, refunded: bool) -> None:
    at = now()
    rows = await MemberCoupon.filter(order_id=order_id, status=HeldCouponStatus.USED).select_related("coupon")
    for row in rows:
        if refunded and not row.coupon.return_on_refund:
            continue
        if row.valid_until <= at:
            continue
        # Guarded: the CANCELLED hook and the refund's may both try; the coupon comes back (and is counted) once.
        back = await MemberCoupon.filter(id=row.id, status=HeldCouponStatus.USED, order_id=order_id).update(
            status=HeldCouponStatus.UNUSED, order_id=None, used_at=None
        )
        if back:
            await Coupon.filter(id=row.coupon.id, used__gt=0).update(used=F("used") - 1)


def install() -> None:
    """Fill the pipeline's COUPON stage and hear cancellations (again, if a test replaced the step)."""
    register_step(CouponStep())
    if give_back not in states.entry_hooks(OrderStatus.CANCELLED):
        states.register_entry_hook(OrderStatus.CANCELLED, give_back)
    settlement.register_refund_hook(give_back_on_refund)


install()
