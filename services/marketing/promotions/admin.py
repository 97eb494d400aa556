"""What staff do with promotions: create (as a DRAFT), change, activate, deactivate, delete, list.

Every rule is checked before anything is written; all problems come back at once as field errors
(`input.conditions[1].args` with the argument named in the message, `input.endsAt`, ...). Every change drops the cached product answers that
show promotions (the `promotions` tag), so shoppers see it at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from tortoise.transactions import in_transaction

from infra.runtime import current_runtime
from models import Brand, Category, MemberLevel, Product, Promotion, PromotionKind, PromotionStatus, Sku
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.marketing.promotions.engine import running_promotions_changed
from services.marketing.promotions.rules import ACTIONS, CONDITIONS, UNIT_ACTIONS, Rule, RuleError, parse_rule

log = logging.getLogger("lianmall.promotions")

PROMOTIONS_TAG = "promotions"
TITLE_MAX = 60
DESCRIPTION_MAX = 200
SEARCH_MAX = 60
RULE_TYPE_MAX = 40
MAX_RULES = 20
PRIORITY_BOUND = 1000

_MODELS: Mapping[str, Any] = {
    "Product": Product,
    "Category": Category,
    "Brand": Brand,
    "MemberLevel": MemberLevel,
    "Sku": Sku,
}


class Unchanged(Enum):
    UNCHANGED = "UNCHANGED"


UNCHANGED = Unchanged.UNCHANGED


@dataclass(frozen=True)
class PromotionDraft:
    title: str
    kind: PromotionKind
    starts_at: datetime
    ends_at: datetime | None
    conditions: Sequence[Mapping[str, Any]] = ()
    actions: Sequence[Mapping[str, Any]] = ()
    description: str = ""
    combines_with_promotions: bool = True
    combines_with_coupons: bool = True
    applies_to_campaign_lines: bool = False
    priority: int = 0


@dataclass(frozen=True)
class PromotionChanges:
    """Fields to change; UNCHANGED keeps the stored value (`ends_at=None` removes the end)."""

    title: str | Unchanged = UNCHANGED
    kind: PromotionKind | Unchanged = UNCHANGED
    starts_at: datetime | Unchanged = UNCHANGED
    ends_at: datetime | Unchanged | None = UNCHANGED
    conditions: Sequence[Mapping[str, Any]] | Unchanged = UNCHANGED
    actions: Sequence[Mapping[str, Any]] | Unchanged = UNCHANGED
    description: str | Unchanged = UNCHANGED
    combines_with_promotions: bool | Unchanged = UNCHANGED
    combines_with_coupons: bool | Unchanged = UNCHANGED
    applies_to_campaign_lines: bool | Unchanged = UNCHANGED
    priority: int | Unchanged = UNCHANGED


@dataclass
class _Checked:
    conditions: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


async def check_draft(draft: PromotionDraft) -> _Checked:
    """The draft's rules parsed and checked, or ValidationErrors naming every bad field."""
    problems: list[DomainError] = []

    def bad(field_name: str, message: str, code: ErrorCode = ErrorCode.BAD_USER_INPUT) -> None:
        problems.append(DomainError(code, message, field_name))

    title = draft.title.strip()
    if not 1 <= len(title) <= TITLE_MAX:
        bad("input.title", f"The title is 1 to {TITLE_MAX} characters")
    if len(draft.description) > DESCRIPTION_MAX:
        bad("input.description", f"The description is at most {DESCRIPTION_MAX} characters")
    if draft.ends_at is not None and draft.ends_at <= draft.starts_at:
        bad("input.endsAt", "The promotion ends before it starts")
    if not -PRIORITY_BOUND <= draft.priority <= PRIORITY_BOUND:
        bad("input.priority", f"The priority is -{PRIORITY_BOUND} to {PRIORITY_BOUND}")
    checked = _Checked()
    refs: dict[str, list[tuple[int, str]]] = {}
    for name, raws, registry, out in (
        ("conditions", draft.conditions, CONDITIONS, checked.conditions),
        ("actions", draft.actions, ACTIONS, checked.actions),
    ):
        if len(raws) > MAX_RULES:
            bad(f"input.{name}", f"At most {MAX_RULES} {name}")
            continue
        seen: set[str] = set()
        for i, raw in enumerate(raws):
            where = f"input.{name}[{i}]"
            try:
                rule: Rule = parse_rule(registry, raw)  # type: ignore[arg-type]
            except RuleError as exc:
                # `args` is one JSON value to GraphQL: the field stops there, the message names the argument.
                head, _, argument = exc.field.partition(".")
                bad(f"{where}.{head}", f"{argument}: {exc.message}" if argument else exc.message)
                continue
            if rule.type in seen:
                bad(f"{where}.type", f"{rule.type} is given twice")
                continue
            seen.add(rule.type)
            if (
                name == "actions"
                and draft.kind == PromotionKind.LIMITED_TIME
                and rule.type not in UNIT_ACTIONS
            ):
                bad(
                    f"{where}.type",
                    f"A limited-time discount sets a price: one of {', '.join(sorted(UNIT_ACTIONS))}",
                )
            for arg, type_name in rule.refs.items():
                value = getattr(rule, arg)
                for pk in value if isinstance(value, tuple) else (value,):
                    refs.setdefault(type_name, []).append((pk, f"{where}.args"))
            out.append(rule.to_json())
    if not draft.actions:
        bad("input.actions", "A promotion needs at least one action")
    for type_name, wanted in refs.items():
        found = set(
            await _MODELS[type_name].filter(id__in={pk for pk, _ in wanted}).values_list("id", flat=True)
        )
        for pk, where in wanted:
            if pk not in found:
                bad(where, f"No {type_name} has the ID {pk}", ErrorCode.NOT_FOUND)
                break
    if problems:
        raise ValidationErrors(problems)
    return checked


async def _changed() -> None:
    # After the commit: every process's copy of the running promotions is stale now (this one's is dropped at
    # once, the others' on the bus, before the cached product answers that show promotions go too, so an
    # answer computed after those went is not computed from a stale copy).
    await running_promotions_changed()
    try:
        runtime = current_runtime()
    except RuntimeError:
        return
    await runtime.cache.invalidate({PROMOTIONS_TAG})


async def create_promotion(draft: PromotionDraft) -> Promotion:
    """A new promotion, as a DRAFT (it applies once activated). Raises ValidationErrors."""
    checked = await check_draft(draft)
    promotion = await Promotion.create(
        title=draft.title.strip(),
        description=draft.description.strip(),
        kind=draft.kind,
        status=PromotionStatus.DRAFT,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        conditions=checked.conditions,
        actions=checked.actions,
        combines_with_promotions=draft.combines_with_promotions,
        combines_with_coupons=draft.combines_with_coupons,
        applies_to_campaign_lines=draft.applies_to_campaign_lines,
        priority=draft.priority,
    )
    return promotion


async def get_promotion(promotion_id: int, field_name: str = "id") -> Promotion:
    promotion = await Promotion.get_or_none(id=promotion_id)
    if promotion is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No promotion has this ID", field_name)
    return promotion


def _draft_of(p: Promotion) -> PromotionDraft:
    return PromotionDraft(
        title=p.title,
        kind=p.kind,
        starts_at=p.starts_at,
        ends_at=p.ends_at,
        conditions=p.conditions,
        actions=p.actions,
        description=p.description,
        combines_with_promotions=p.combines_with_promotions,
        combines_with_coupons=p.combines_with_coupons,
        applies_to_campaign_lines=p.applies_to_campaign_lines,
        priority=p.priority,
    )


def check_texts(changes: PromotionChanges) -> None:
    """Text lengths, checked before anything is read (BAD_USER_INPUT naming the field)."""
    problems = []
    if isinstance(changes.title, str) and not 1 <= len(changes.title.strip()) <= TITLE_MAX:
        problems.append(
            DomainError(ErrorCode.BAD_USER_INPUT, f"The title is 1 to {TITLE_MAX} characters", "input.title")
        )
    if isinstance(changes.description, str) and len(changes.description) > DESCRIPTION_MAX:
        problems.append(
            DomainError(
                ErrorCode.BAD_USER_INPUT,
                f"The description is at most {DESCRIPTION_MAX} characters",
                "input.description",
            )
        )
    for name in ("conditions", "actions"):
        rules = getattr(changes, name)
        if isinstance(rules, Unchanged):
            continue
        for i, raw in enumerate(rules):
            if len(str(raw.get("type", ""))) > RULE_TYPE_MAX:
                problems.append(
                    DomainError(ErrorCode.BAD_USER_INPUT, "Unknown rule type", f"input.{name}[{i}].type")
                )
    if problems:
        raise ValidationErrors(problems)


async def update_promotion(promotion_id: int, changes: PromotionChanges) -> Promotion:
    """Change a promotion (also an active one: it applies as changed from now on). The result is checked as
    a whole, as a new one would be. Raises NOT_FOUND, ValidationErrors."""
    check_texts(changes)
    async with in_transaction():
        promotion = await Promotion.filter(id=promotion_id).select_for_update().first()
        if promotion is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No promotion has this ID", "id")
        values = {
            name: getattr(changes, name)
            for name in PromotionChanges.__dataclass_fields__
            if getattr(changes, name) is not UNCHANGED
        }
        draft = PromotionDraft(**{**_draft_of(promotion).__dict__, **values})
        checked = await check_draft(draft)
        promotion.update_from_dict(
            {
                **{k: v for k, v in draft.__dict__.items() if k not in ("conditions", "actions")},
                "title": draft.title.strip(),
                "description": draft.description.strip(),
                "conditions": checked.conditions,
                "actions": checked.actions,
            }
        )
        await promotion.save()
    if promotion.status == PromotionStatus.ACTIVE:
        await _changed()
    return promotion


async def set_status(promotion_id: int, status: PromotionStatus) -> Promotion:
    """Activate (it applies within its dates) or deactivate a promotion; the same again changes nothing."""
    promotion = await get_promotion(promotion_id)
    if promotion.status != status:
        await Promotion.filter(id=promotion_id).update(status=status)
        promotion.status = status
        await _changed()
    return promotion


async def delete_promotion(promotion_id: int) -> None:
    """Delete a promotion. Orders keep what it gave them (their lines snapshot every discount)."""
    promotion = await get_promotion(promotion_id)
    await promotion.delete()
    if promotion.status == PromotionStatus.ACTIVE:
        await _changed()


@dataclass(frozen=True)
class PromotionFilter:
    status: PromotionStatus | None = None
    kind: PromotionKind | None = None
    running_at: datetime | None = None  # only those that apply at this moment (ACTIVE and within dates)
    search: str | None = None


def check_filter(f: PromotionFilter) -> None:
    if f.search is not None and len(f.search) > SEARCH_MAX:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"Search at most {SEARCH_MAX} characters", "filter.search"
        )


def _filtered(f: PromotionFilter) -> Any:
    query = Promotion.all()
    if f.status is not None:
        query = query.filter(status=f.status)
    if f.kind is not None:
        query = query.filter(kind=f.kind)
    if f.running_at is not None:
        from tortoise.expressions import Q

        query = query.filter(status=PromotionStatus.ACTIVE, starts_at__lte=f.running_at).filter(
            Q(ends_at__isnull=True) | Q(ends_at__gt=f.running_at)
        )
    if f.search:
        query = query.filter(title__icontains=f.search.strip())
    return query


async def list_promotions(f: PromotionFilter, offset: int, limit: int) -> tuple[list[Promotion], bool]:
    """A page of promotions, newest first, and whether more follow."""
    rows = await _filtered(f).order_by("-id").offset(offset).limit(limit + 1)
    return rows[:limit], len(rows) > limit


async def count_promotions(f: PromotionFilter) -> int:
    return int(await _filtered(f).count())
