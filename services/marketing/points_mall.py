"""The points mall (积分商城): members exchange points for a coupon, or points plus cash for a SKU.

Every limit is guarded by the database inside one transaction: the item's stock by a guarded update
(`stock >= n`), the member's limit by the unique (item, member, seq) with `seq` at most the limit, the points by
the ledger's own guarded update (services.loyalty.points, reason POINTS_MALL). Any refusal rolls back all.

- A coupon item is exchanged at once (`exchange_for_coupon`): the coupon is granted in the same transaction
  (so its own total and per-member limit hold too).
- A SKU item is bought through checkout as a campaign line (`campaign: {kind: POINTS_MALL, id: <item>}`): the
  line costs the item's cash price, and the order's transaction takes the stock, the member's number and the
  points (`PointsMallCampaign.attach`); an unpaid order cancelled (or timed out) or fully refunded gives all
  three back through the order state machine's CANCELLED hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from infra.clock import now
from infra.transactions import retry_when_busy
from models import (
    Coupon,
    CouponSource,
    MemberCoupon,
    Order,
    OrderStatus,
    PointsMallExchange,
    PointsMallItem,
    PointsMallItemKind,
    PointsReason,
    Sku,
)
from services.catalog.prices import PriceContext
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.loyalty.points import MAX_DELTA, apply_points_change, points_balance
from services.marketing.coupons.wallet import grant_in_transaction
from services.orders import states
from services.orders.campaigns import CampaignKind, CampaignPrice, CampaignRef, register_campaign
from services.orders.pricing import MAX_ORDER_TOTAL
from services.orders.states import Announcements

TITLE_MAX = 64
MAX_STOCK = 10_000_000
MAX_PER_MEMBER = 100
_ATTEMPTS = 3


@dataclass(frozen=True)
class ItemDraft:
    title: str
    kind: PointsMallItemKind
    points: int
    stock: int
    coupon_id: int | None = None
    sku_id: int | None = None
    cash: int = 0
    per_member_limit: int = 1
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def _problems(d: ItemDraft) -> list[DomainError]:
    found = []

    def bad(name: str, message: str) -> None:
        found.append(DomainError(ErrorCode.BAD_USER_INPUT, message, f"input.{name}"))

    if not 1 <= len(d.title.strip()) <= TITLE_MAX:
        bad("title", f"The title is 1 to {TITLE_MAX} characters")
    if not 1 <= d.points <= MAX_DELTA:
        bad("points", f"An item costs 1 to {MAX_DELTA} points")
    if not 0 <= d.cash <= MAX_ORDER_TOTAL:
        bad("cash", f"The cash part is 0 to {MAX_ORDER_TOTAL} fen")
    if not 0 <= d.stock <= MAX_STOCK:
        bad("stock", f"The stock is 0 to {MAX_STOCK}")
    if not 1 <= d.per_member_limit <= MAX_PER_MEMBER:
        bad("perMemberLimit", f"A member may exchange 1 to {MAX_PER_MEMBER} of an item")
    if d.kind == PointsMallItemKind.COUPON and (d.coupon_id is None or d.sku_id is not None or d.cash):
        bad("couponId", "A coupon item names a coupon (and no SKU or cash)")
    if d.kind == PointsMallItemKind.SKU and (d.sku_id is None or d.coupon_id is not None):
        bad("skuId", "A SKU item names a SKU (and no coupon)")
    if d.starts_at and d.ends_at and d.ends_at <= d.starts_at:
        bad("endsAt", "The exchange ends after it starts")
    return found


async def create_item(draft: ItemDraft) -> PointsMallItem:
    """A new item in the points mall (staff). BAD_USER_INPUT with every problem, NOT_FOUND for the coupon/SKU."""
    problems = _problems(draft)
    if problems:
        raise ValidationErrors(problems)
    if draft.coupon_id is not None and not await Coupon.exists(id=draft.coupon_id):
        raise DomainError(ErrorCode.NOT_FOUND, "No coupon has this ID", "input.couponId")
    if draft.sku_id is not None and not await Sku.exists(id=draft.sku_id):
        raise DomainError(ErrorCode.NOT_FOUND, "No SKU has this ID", "input.skuId")
    return await PointsMallItem.create(
        title=draft.title.strip(),
        kind=draft.kind,
        coupon_id=draft.coupon_id,
        sku_id=draft.sku_id,
        points=draft.points,
        cash=draft.cash,
        stock=draft.stock,
        per_member_limit=draft.per_member_limit,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
    )


async def stop_item(item_id: int) -> PointsMallItem:
    """Take an item out of the mall; exchanges already made stand."""
    item = await PointsMallItem.get_or_none(id=item_id)
    if item is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No points mall item has this ID", "id")
    await PointsMallItem.filter(id=item_id).update(active=False)
    item.active = False
    return item


def _open(at: datetime) -> Q:
    return (
        Q(active=True)
        & (Q(starts_at__isnull=True) | Q(starts_at__lte=at))
        & (Q(ends_at__isnull=True) | Q(ends_at__gt=at))
    )


async def mall_items(offset: int, limit: int) -> tuple[list[PointsMallItem], bool]:
    """The items on offer now, newest first, and whether more follow."""
    rows = list(await PointsMallItem.filter(_open(now())).order_by("-id").offset(offset).limit(limit + 1))
    return rows[:limit], len(rows) > limit


async def count_mall_items() -> int:
    return await PointsMallItem.filter(_open(now())).count()


async def _open_item(item_id: int, kind: PointsMallItemKind, field_name: str) -> PointsMallItem:
    item = await PointsMallItem.filter(_open(now())).get_or_none(id=item_id)
    if item is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No points mall item on offer has this ID", field_name)
    if item.kind != kind:
        how = (
            "exchange it with pointsMallExchange"
            if item.kind == PointsMallItemKind.COUPON
            else ("buy it at checkout with campaign {kind: POINTS_MALL, id}")
        )
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"This item is a {item.kind.value.lower()}: {how}", field_name
        )
    return item


async def _take(
    item: PointsMallItem, member_id: int, field_name: str, order_id: int | None
) -> PointsMallExchange:
    """Inside a transaction: one of the item's stock, the member's next free number, the points."""
    taken = await PointsMallItem.filter(id=item.id, stock__gte=1).update(stock=F("stock") - 1)
    if not taken:
        raise DomainError(ErrorCode.SOLD_OUT, f"「{item.title}」已兑完", field_name)
    used = set(
        await PointsMallExchange.filter(item_id=item.id, member_id=member_id, seq__isnull=False).values_list(
            "seq", flat=True
        )
    )
    free = next((n for n in range(1, item.per_member_limit + 1) if n not in used), None)
    if free is None:
        raise DomainError(
            ErrorCode.LIMIT_EXCEEDED, f"每人最多兑换 {item.per_member_limit} 件「{item.title}」", field_name
        )
    exchange = await PointsMallExchange.create(
        item_id=item.id, member_id=member_id, seq=free, points=item.points, cash=item.cash, order_id=order_id
    )
    try:
        await apply_points_change(
            member_id,
            -item.points,
            PointsReason.POINTS_MALL,
            f"mall:{exchange.id}",
            note=f"兑换 {item.title}",
        )
    except DomainError as exc:
        raise DomainError(
            exc.code, f"兑换「{item.title}」需要 {item.points} 积分：{exc.message}", field_name
        ) from None
    return exchange


async def exchange_for_coupon(member_id: int, item_id: int) -> MemberCoupon:
    """Spend the item's points on its coupon, all or nothing. SOLD_OUT (the item's stock or the coupon's
    total), LIMIT_EXCEEDED (the item's or the coupon's per-member limit), INSUFFICIENT_POINTS, NOT_FOUND."""
    item = await _open_item(item_id, PointsMallItemKind.COUPON, "itemId")

    async def attempt() -> MemberCoupon:
        async with in_transaction():
            exchange = await _take(item, member_id, "itemId", None)
            held = await grant_in_transaction(
                member_id,
                item.coupon_id,
                CouponSource.POINTS_MALL,
                "itemId",  # type: ignore[attr-defined]
            )
            await PointsMallExchange.filter(id=exchange.id).update(member_coupon_id=held.id)
            return held

    for n in range(_ATTEMPTS):
        try:
            return await retry_when_busy(attempt)
        except IntegrityError:
            # A concurrent exchange of the same member took the same number (ours rolled back): try again.
            if n == _ATTEMPTS - 1:
                raise DomainError(
                    ErrorCode.CONFLICT, "Exchanged at the same moment elsewhere; try again", "itemId"
                ) from None
    raise AssertionError("unreachable")


# --- SKU items: a campaign line at checkout ----------------------------------------------------------------


class PointsMallCampaign:
    kind = CampaignKind.POINTS_MALL

    async def price(
        self, member_id: int, ref: CampaignRef, sku: Sku, quantity: int, ctx: PriceContext
    ) -> CampaignPrice:
        """The item's cash price; one item per line, for its own SKU."""
        field_name = "input.items"
        if ref.node != "PointsMallItem":
            raise DomainError(ErrorCode.INVALID_ID, "Expected a PointsMallItem ID", field_name)
        item = await _open_item(ref.id, PointsMallItemKind.SKU, field_name)
        if item.sku_id != sku.id:  # type: ignore[attr-defined]
            raise DomainError(ErrorCode.BAD_USER_INPUT, f"「{item.title}」is another SKU", field_name)
        if quantity != 1:
            raise DomainError(ErrorCode.LIMIT_EXCEEDED, "One points mall item per line", field_name)
        # Said early, for the preview; the order's transaction takes the points with the ledger's own guard.
        balance = await points_balance(member_id)
        if balance < item.points:
            raise DomainError(
                ErrorCode.INSUFFICIENT_POINTS,
                f"「{item.title}」需要 {item.points} 积分，你有 {balance}",
                field_name,
            )
        return CampaignPrice(
            item.cash, {"pointsMallItemId": item.id, "title": item.title, "points": item.points}
        )

    async def reserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        return None  # the order's transaction takes everything (attach)

    async def unreserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        return None

    async def attach(self, order: Order, line_id: int, ref: CampaignRef, quantity: int) -> None:
        item = await _open_item(ref.id, PointsMallItemKind.SKU, "input.items")
        await _take(item, order.member_id, "input.items", order.id)  # type: ignore[attr-defined]


async def give_back(order: Order, from_status: OrderStatus, _news: Announcements) -> None:
    """CANCELLED (unpaid, timed out, or fully refunded): the order's exchanges return stock, number and points."""
    if from_status not in (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID):
        return
    exchanges: Sequence[PointsMallExchange] = await PointsMallExchange.filter(
        order_id=order.id, returned_at__isnull=True
    )
    for exchange in exchanges:
        back = await PointsMallExchange.filter(id=exchange.id, returned_at__isnull=True).update(
            returned_at=now(), seq=None
        )
        if not back:
            continue
        await PointsMallItem.filter(id=exchange.item_id).update(stock=F("stock") + 1)  # type: ignore[attr-defined]
        await apply_points_change(
            exchange.member_id,  # type: ignore[attr-defined]
            exchange.points,
            PointsReason.REFUND,
            f"mall:{exchange.id}:return",
            note=f"订单 {order.number} 取消，兑换积分退回",
        )


def install() -> None:
    """Register the POINTS_MALL campaign and hear cancellations (again, if a test replaced them)."""
    register_campaign(PointsMallCampaign())
    if give_back not in states.entry_hooks(OrderStatus.CANCELLED):
        states.register_entry_hook(OrderStatus.CANCELLED, give_back)


install()
