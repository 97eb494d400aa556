"""Groups: a leader opens one by paying, others join by its share link, it fills or fails.

Checkout item `campaign: {kind: GROUP_BUY, id}` with a GroupBuyRule ID opens a group (the buyer leads it), with
a GroupBuy ID joins that group. The handler runs inside the order's transaction (`attach`):

- Seats: a seat is taken when the order is placed, by one guarded update (`seats_taken < size` and the group
  OPEN and not expired in the WHERE clause), so however many members race on however many processes, a group
  never has more seats than its size. An unpaid seat is held only for the order's unpaid timeout, and never past
  the group's expiry (the order's pay deadline is cut to it); the unpaid timeout cancels the order and the
  CANCELLED hook gives the seat back.
- The per-member limit is a row per (rule, member) raised by a guarded update in the same transaction, so
  concurrent orders of one member cannot pass it either.
- Paying (the PAID hook) counts the seat; the leader's payment opens the group (its `hours_to_fill` start then);
  the payment that makes every seat paid makes the group SUCCEEDED, and its orders may ship (before that the
  SHIPPED guard refuses them).

The sweeper (`sweep_group_buys`, on every process, nothing in memory) ends expired groups: SUCCEEDED when at
most `virtual_members` seats are missing (虚拟成团, a head count), else FAILED; then, for every FAILED group
not yet settled, it cancels its unpaid orders and refunds each paid one in full through the refund path
(services.payments.refunds) with the key `group-buy:<group id>`: one out_refund_no per order, so however
often a sweep runs, on however many processes, and across a process killed halfway, each member is refunded
exactly once. A group is settled when none of its orders is still open.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import F

from infra.clock import now
from models import (
    ActorKind,
    GroupBuy,
    GroupBuyQuota,
    GroupBuyRule,
    GroupBuySeat,
    GroupBuyStatus,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    Refund,
    Sku,
)
from services.catalog.prices import PriceContext
from services.errors import DomainError, ErrorCode
from services.marketing import member_quota
from services.marketing.group_buy.rules import is_active
from services.orders import states
from services.orders.campaigns import CampaignKind, CampaignPrice, CampaignRef, register_campaign
from services.orders.sweeper import register_sweep_job
from services.payments.refunds import refund_number, start_refund

log = logging.getLogger("lianmall.group_buy")

RULE_NODE = "GroupBuyRule"
GROUP_NODE = "GroupBuy"
FIELD = "input.items[0].campaign.id"
BATCH = 200
REFUND_REASON = "拼团未成团，自动退款"


def refund_key(group_id: int) -> str:
    return f"group-buy:{group_id}"


# --- Checkout ----------------------------------------------------------------------------------------------


async def _rule(rule_id: int) -> GroupBuyRule:
    rule = await GroupBuyRule.get_or_none(id=rule_id)
    if rule is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No group buy has this ID", FIELD)
    return rule


def _check_rule(rule: GroupBuyRule, sku: Sku, quantity: int) -> None:
    if rule.sku_id != sku.id:  # type: ignore[attr-defined]
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, "This group buy is for another SKU", "input.items[0].skuId"
        )
    if not is_active(rule):
        raise DomainError(ErrorCode.CAMPAIGN_NOT_ACTIVE, "This group buy is not running now", FIELD)
    if quantity > rule.per_member_limit:
        raise DomainError(
            ErrorCode.LIMIT_EXCEEDED,
            f"At most {rule.per_member_limit} per member in this group buy",
            "input.items[0].quantity",
        )


def _joinable(group: GroupBuy, member_id: int) -> None:
    if group.status != GroupBuyStatus.OPEN or (group.expires_at is not None and group.expires_at <= now()):
        raise DomainError(ErrorCode.CAMPAIGN_NOT_ACTIVE, "This group is not open for joining", FIELD)
    if group.seats_taken >= group.size:
        raise DomainError(ErrorCode.GROUP_FULL, "Every seat of this group is taken", FIELD)


class GroupBuyCampaign:
    """The GROUP_BUY campaign handler (services.orders.campaigns)."""

    kind = CampaignKind.GROUP_BUY

    async def price(
        self, member_id: int, ref: CampaignRef, sku: Sku, quantity: int, ctx: PriceContext
    ) -> CampaignPrice:
        if ref.node == RULE_NODE:
            rule = await _rule(ref.id)
            _check_rule(rule, sku, quantity)
            return CampaignPrice(rule.group_price, _snapshot(rule, None, leader=True))
        if ref.node == GROUP_NODE:
            group = await GroupBuy.get_or_none(id=ref.id).select_related("rule")
            if group is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No group has this ID", FIELD)
            _check_rule(group.rule, sku, quantity)
            _joinable(group, member_id)
            if await GroupBuySeat.exists(group_id=group.id, member_id=member_id):
                raise DomainError(ErrorCode.CONFLICT, "You are in this group already", FIELD)
            return CampaignPrice(group.rule.group_price, _snapshot(group.rule, group, leader=False))
        raise DomainError(ErrorCode.INVALID_ID, "A group buy item names a GroupBuyRule or a GroupBuy", FIELD)

    async def reserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        """Nothing before the transaction: the seat and the quota are guarded updates inside it."""

    async def unreserve(self, member_id: int, ref: CampaignRef, sku_id: int, quantity: int, key: str) -> None:
        """Nothing: what `attach` took rolled back with the order."""

    async def attach(self, order: Order, line_id: int, ref: CampaignRef, quantity: int) -> None:
        if await OrderLine.filter(order_id=order.id).count() > 1:
            raise DomainError(
                ErrorCode.BAD_USER_INPUT,
                "A group buy is ordered on its own, without other items",
                "input.items",
            )
        member_id: int = order.member_id  # type: ignore[attr-defined]
        if ref.node == RULE_NODE:
            rule = await _rule(ref.id)
            await member_quota.take(
                GroupBuyQuota, {"rule_id": rule.id}, member_id, quantity, rule.per_member_limit, "group buy"
            )
            group = await GroupBuy.create(
                rule_id=rule.id, leader_member_id=member_id, size=rule.group_size, seats_taken=1
            )
            leader = True
        else:
            group = await GroupBuy.get(id=ref.id).select_related("rule")
            rule = group.rule
            await member_quota.take(
                GroupBuyQuota, {"rule_id": rule.id}, member_id, quantity, rule.per_member_limit, "group buy"
            )
            # The seat: one guarded update decides, whatever the concurrency (row lock on PostgreSQL, one writer
            # on SQLite); `size` never changes, so comparing with the value read is exact.
            taken = await GroupBuy.filter(
                id=group.id, status=GroupBuyStatus.OPEN, expires_at__gt=now(), seats_taken__lt=group.size
            ).update(seats_taken=F("seats_taken") + 1)
            if not taken:
                fresh = await GroupBuy.get(id=group.id)
                _joinable(fresh, member_id)
                raise DomainError(ErrorCode.GROUP_FULL, "Every seat of this group is taken", FIELD)
            leader = False
            if group.expires_at is not None and group.expires_at < order.pay_deadline:
                # An unpaid seat never outlives its group.
                await Order.filter(id=order.id).update(pay_deadline=group.expires_at)
        await GroupBuySeat.create(
            group_id=group.id, member_id=member_id, order_id=order.id, quantity=quantity, leader=leader
        )
        await OrderLine.filter(id=line_id).update(
            campaign_id=group.id, campaign=_snapshot(rule, group, leader=leader)
        )


def _snapshot(rule: GroupBuyRule, group: GroupBuy | None, *, leader: bool) -> dict[str, Any]:
    return {
        "ruleId": rule.id,
        "groupId": group.id if group is not None else None,
        "title": rule.title,
        "groupPrice": rule.group_price,
        "groupSize": rule.group_size,
        "hoursToFill": rule.hours_to_fill,
        "leader": leader,
    }


# --- Order states ------------------------------------------------------------------------------------------


async def _on_paid(order: Order, from_status: OrderStatus, news: states.Announcements) -> None:
    seat = await GroupBuySeat.get_or_none(order_id=order.id)
    if seat is None or seat.paid:
        return
    await GroupBuySeat.filter(id=seat.id).update(paid=True)
    group = await GroupBuy.get(id=seat.group_id).select_related("rule")  # type: ignore[attr-defined]
    at = now()
    if seat.leader and group.status == GroupBuyStatus.OPENING:
        await GroupBuy.filter(id=group.id, status=GroupBuyStatus.OPENING).update(
            status=GroupBuyStatus.OPEN,
            paid_count=F("paid_count") + 1,
            opened_at=at,
            expires_at=at + timedelta(hours=group.rule.hours_to_fill),
        )
        return
    await GroupBuy.filter(id=group.id).update(paid_count=F("paid_count") + 1)
    group = await GroupBuy.get(id=group.id)
    if group.status == GroupBuyStatus.OPEN and group.paid_count >= group.size:
        await GroupBuy.filter(id=group.id, status=GroupBuyStatus.OPEN).update(
            status=GroupBuyStatus.SUCCEEDED, succeeded_at=at
        )
    elif group.status == GroupBuyStatus.SUCCEEDED and group.paid_count + group.virtual_count > group.size:
        # A seat held at a virtual success was paid after all: a real member replaces a virtual one.
        await GroupBuy.filter(id=group.id, virtual_count__gt=0).update(virtual_count=F("virtual_count") - 1)


async def _on_cancelled(order: Order, from_status: OrderStatus, news: states.Announcements) -> None:
    seat = await GroupBuySeat.get_or_none(order_id=order.id)
    if seat is None:
        return
    group = await GroupBuy.get(id=seat.group_id)  # type: ignore[attr-defined]
    await member_quota.give_back(
        GroupBuyQuota,
        {"rule_id": group.rule_id},  # type: ignore[attr-defined]
        seat.member_id,
        seat.quantity,
    )
    if seat.leader and group.status == GroupBuyStatus.OPENING:
        await GroupBuy.filter(id=group.id, status=GroupBuyStatus.OPENING).update(
            status=GroupBuyStatus.CANCELLED, seats_taken=0
        )
        return
    if group.status != GroupBuyStatus.OPEN:
        return  # the seat stays on record of a group that ended
    # An unpaid seat given back at the unpaid timeout, or a paid member refunded while the group forms.
    await GroupBuySeat.filter(id=seat.id).delete()
    await GroupBuy.filter(id=group.id, seats_taken__gt=0).update(seats_taken=F("seats_taken") - 1)
    if seat.paid:
        await GroupBuy.filter(id=group.id, paid_count__gt=0).update(paid_count=F("paid_count") - 1)


async def _ship_guard(order: Order, to: OrderStatus) -> None:
    seat = await GroupBuySeat.get_or_none(order_id=order.id).select_related("group")
    if seat is not None and seat.group.status != GroupBuyStatus.SUCCEEDED:
        raise DomainError(
            ErrorCode.CONFLICT,
            f"This order is in a group buy that is {seat.group.status.value}; it ships once the group is full",
            "id",
        )


# --- The sweeper -------------------------------------------------------------------------------------------


async def sweep_group_buys(at: datetime) -> int:
    """End the groups expired at `at` and settle failed ones (cancel unpaid orders, refund paid ones)."""
    moved = 0
    for group_id in (
        await GroupBuy.filter(status=GroupBuyStatus.OPEN, expires_at__lte=at)
        .order_by("expires_at")
        .limit(BATCH)
        .values_list("id", flat=True)
    ):
        moved += await _expire(int(group_id), at)
    for group_id in (
        await GroupBuy.filter(status=GroupBuyStatus.FAILED, settled_at__isnull=True)
        .order_by("failed_at")
        .limit(BATCH)
        .values_list("id", flat=True)
    ):
        moved += await settle_failed_group(int(group_id), at)
    return moved


async def _expire(group_id: int, at: datetime) -> int:
    group = await GroupBuy.get(id=group_id).select_related("rule")
    missing = group.size - group.paid_count
    if group.paid_count >= 1 and missing <= group.rule.virtual_members:
        changed = await GroupBuy.filter(id=group_id, status=GroupBuyStatus.OPEN).update(
            status=GroupBuyStatus.SUCCEEDED, succeeded_at=at, virtual_count=missing
        )
    else:
        changed = await GroupBuy.filter(id=group_id, status=GroupBuyStatus.OPEN).update(
            status=GroupBuyStatus.FAILED, failed_at=at
        )
    return changed


async def settle_failed_group(group_id: int, at: datetime) -> int:
    """Cancel the unpaid orders of a failed group and refund every paid one in full, each exactly once.

    A refund already asked for (the same out_refund_no) is not asked again once WeChat accepted it; one created
    but never accepted (a process killed between the two) is asked again. Returns how many refunds or
    cancellations this call started.
    """
    key = refund_key(group_id)
    order_ids = await GroupBuySeat.filter(group_id=group_id).values_list("order_id", flat=True)
    orders = await Order.filter(id__in=list(order_ids)).order_by("id")
    started = 0
    still_open = 0
    for order in orders:
        if order.status == OrderStatus.PENDING_PAYMENT:
            still_open += 1
            try:
                _, moved = await states.move(
                    order.id, OrderStatus.CANCELLED, actor=ActorKind.SYSTEM, reason="拼团未成团"
                )
                started += int(moved)
            except DomainError:
                pass  # paid meanwhile: refunded on the next sweep
        elif order.status == OrderStatus.PAID:
            still_open += 1
            existing = await Refund.get_or_none(out_refund_no=refund_number(order.id, key))
            if existing is not None and existing.refund_id:
                continue  # WeChat accepted it: its notification (or the refund query) finishes it
            left = order.paid_amount - order.refunded_amount
            if existing is None and left <= 0:
                continue
            try:
                await start_refund(
                    order.id,
                    existing.amount if existing is not None else left,
                    [],
                    REFUND_REASON,
                    key=key,
                )
                started += 1
            except DomainError as exc:
                log.warning("group %s: refunding order %s: %s", group_id, order.number, exc.code)
    if still_open == 0:
        await GroupBuy.filter(id=group_id, settled_at__isnull=True).update(settled_at=at)
    return started


# --- Reading -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupMember:
    nickname: str
    avatar_url: str
    leader: bool
    joined_at: datetime


async def members_of(group_ids: list[int]) -> dict[int, list[GroupMember]]:
    """The paid members of groups, leader first: what a share page shows (nickname and avatar only)."""
    seats = await GroupBuySeat.filter(group_id__in=group_ids, paid=True).order_by("-leader", "id")
    people = {
        m.id: m
        for m in await Member.filter(id__in=list({s.member_id for s in seats})).only(
            "id", "nickname", "avatar_url"
        )
    }
    found: dict[int, list[GroupMember]] = {}
    for s in seats:
        person = people.get(s.member_id)
        found.setdefault(s.group_id, []).append(  # type: ignore[attr-defined]
            GroupMember(
                nickname=person.nickname if person else "",
                avatar_url=person.avatar_url if person else "",
                leader=s.leader,
                joined_at=s.created_at,
            )
        )
    return found


async def open_groups(rule_id: int, limit: int) -> list[GroupBuy]:
    """Groups of a rule a shopper can join now, those closest to expiry first: open, not expired, and with a
    seat left (a full group waiting for its last payments is not offered)."""
    return list(
        await GroupBuy.filter(
            rule_id=rule_id, status=GroupBuyStatus.OPEN, expires_at__gt=now(), seats_taken__lt=F("size")
        )
        .order_by("expires_at", "id")
        .limit(limit)
    )


register_campaign(GroupBuyCampaign())
states.register_entry_hook(OrderStatus.PAID, _on_paid)
states.register_entry_hook(OrderStatus.CANCELLED, _on_cancelled)
states.register_transition_guard(OrderStatus.SHIPPED, _ship_guard)
register_sweep_job("group-buy", sweep_group_buys)
