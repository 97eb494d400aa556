"""Group-buy rules as staff set them up: create (scheduled by its start and end), stop, list with live numbers.

Every bad setup is refused with a coded error on its own input field, all of them at once (a form shows them
together), and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.functions import Count, Sum

from infra.clock import now
from models import GroupBuy, GroupBuyRule, GroupBuyStatus, Sku
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.orders.cart import purchase_limit

TITLE_MAX = 60
MAX_GROUP_SIZE = 100
MAX_HOURS_TO_FILL = 24 * 30
MAX_RUN = timedelta(days=366)


@dataclass(frozen=True)
class RuleDraft:
    sku_id: int
    title: str
    group_price: int
    group_size: int
    hours_to_fill: int
    per_member_limit: int
    starts_at: datetime
    ends_at: datetime
    virtual_members: int = 0


@dataclass(frozen=True)
class RuleStats:
    """Live numbers of one rule: groups by state, paid members and units sold through it."""

    groups_opening: int = 0
    groups_open: int = 0
    groups_filled: int = 0
    groups_failed: int = 0
    members_paid: int = 0


def _problems(draft: RuleDraft, sku: Sku | None) -> list[DomainError]:
    bad = ErrorCode.BAD_USER_INPUT
    found: list[DomainError] = []
    if sku is None:
        found.append(DomainError(ErrorCode.NOT_FOUND, "No SKU has this ID", "input.skuId"))
    if not 1 <= len(draft.title.strip()) <= TITLE_MAX:
        found.append(DomainError(bad, f"The title is 1 to {TITLE_MAX} characters", "input.title"))
    if draft.group_price < 1:
        found.append(DomainError(bad, "The group price is at least 1 fen", "input.groupPrice"))
    elif sku is not None and draft.group_price > sku.price:
        found.append(
            DomainError(bad, f"The group price is at most the shelf price ({sku.price})", "input.groupPrice")
        )
    if not 2 <= draft.group_size <= MAX_GROUP_SIZE:
        found.append(DomainError(bad, f"A group has 2 to {MAX_GROUP_SIZE} members", "input.groupSize"))
    if not 1 <= draft.hours_to_fill <= MAX_HOURS_TO_FILL:
        found.append(DomainError(bad, f"Hours to fill are 1 to {MAX_HOURS_TO_FILL}", "input.hoursToFill"))
    limit = purchase_limit()
    if not 1 <= draft.per_member_limit <= limit:
        found.append(DomainError(bad, f"The per-member limit is 1 to {limit} units", "input.perMemberLimit"))
    if not 0 <= draft.virtual_members < max(draft.group_size, 1):
        found.append(
            DomainError(
                bad,
                "Virtual members are 0 (off) up to one less than the group size",
                "input.virtualMembers",
            )
        )
    if draft.ends_at <= draft.starts_at:
        found.append(DomainError(bad, "The end comes after the start", "input.endsAt"))
    elif draft.ends_at <= now():
        found.append(DomainError(bad, "The end is in the past", "input.endsAt"))
    elif draft.ends_at - draft.starts_at > MAX_RUN:
        found.append(DomainError(bad, "A rule runs at most a year", "input.endsAt"))
    return found


async def create_rule(draft: RuleDraft) -> GroupBuyRule:
    """Set up a group buy of one SKU; it takes orders from `starts_at` until `ends_at` or until stopped.

    Raises ValidationErrors with one coded error per bad field (NOT_FOUND for the SKU, BAD_USER_INPUT else).
    """
    sku = await Sku.get_or_none(id=draft.sku_id).select_related("product")
    problems = _problems(draft, sku)
    if problems:
        raise ValidationErrors(problems)
    assert sku is not None
    return await GroupBuyRule.create(
        shop_id=sku.product.shop_id,  # type: ignore[attr-defined]
        product_id=sku.product.id,
        sku_id=sku.id,
        title=draft.title.strip(),
        group_price=draft.group_price,
        group_size=draft.group_size,
        hours_to_fill=draft.hours_to_fill,
        per_member_limit=draft.per_member_limit,
        virtual_members=draft.virtual_members,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
    )


async def stop_rule(rule_id: int) -> GroupBuyRule:
    """Stop a rule at once: no group opens or is joined through it any more. Groups already open run until
    they fill or expire, so no paid member is left behind. Stopping twice is a no-op."""
    rule = await GroupBuyRule.get_or_none(id=rule_id)
    if rule is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No group buy rule has this ID", "id")
    if rule.stopped_at is None:
        await GroupBuyRule.filter(id=rule_id, stopped_at__isnull=True).update(stopped_at=now())
        rule = await GroupBuyRule.get(id=rule_id)
    return rule


def is_active(rule: GroupBuyRule, at: datetime | None = None) -> bool:
    at = at or now()
    return rule.stopped_at is None and rule.starts_at <= at < rule.ends_at


async def active_rules(product_id: int | None, offset: int, limit: int) -> tuple[list[GroupBuyRule], int]:
    """Rules taking orders now (of one product, or all), soonest ending first, and how many there are."""
    at = now()
    query = GroupBuyRule.filter(stopped_at__isnull=True, starts_at__lte=at, ends_at__gt=at)
    if product_id is not None:
        query = query.filter(product_id=product_id)
    rows = await query.order_by("ends_at", "id").offset(offset).limit(limit)
    return list(rows), await query.count()


async def all_rules(offset: int, limit: int) -> tuple[list[GroupBuyRule], int]:
    """Every rule, newest first (staff)."""
    rows = await GroupBuyRule.all().order_by("-id").offset(offset).limit(limit)
    return list(rows), await GroupBuyRule.all().count()


async def stats_of(rule_ids: Sequence[int]) -> dict[int, RuleStats]:
    """Live numbers of many rules in one grouped query."""
    counts: dict[int, dict[str, int]] = {rid: {} for rid in rule_ids}
    rows = (
        await GroupBuy.filter(rule_id__in=list(rule_ids))
        .annotate(n=Count("id"), paid=Sum("paid_count"))
        .group_by("rule_id", "status")
        .values("rule_id", "status", "n", "paid")
    )
    for row in rows:
        into = counts.setdefault(int(row["rule_id"]), {})
        into[str(row["status"])] = int(row["n"])
        into["paid"] = into.get("paid", 0) + int(row["paid"] or 0)
    return {
        rid: RuleStats(
            groups_opening=c.get(GroupBuyStatus.OPENING.value, 0),
            groups_open=c.get(GroupBuyStatus.OPEN.value, 0),
            groups_filled=c.get(GroupBuyStatus.SUCCEEDED.value, 0),
            groups_failed=c.get(GroupBuyStatus.FAILED.value, 0),
            members_paid=c.get("paid", 0),
        )
        for rid, c in counts.items()
    }
