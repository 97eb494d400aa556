"""Promotion root fields: staff create, change, activate, deactivate, delete and list promotions. Thin: decode
global IDs (also inside rule arguments), call services.marketing.promotions.admin, wrap results."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info
from strawberry.types.unset import UnsetType

import services.marketing.promotions  # noqa: F401  (registers the promotion steps of the pricing pipeline)
from infra.clock import now
from models import Promotion as PromotionModel
from models import PromotionKind as PromotionKindModel
from models import PromotionStatus as PromotionStatusModel
from resolvers.access import staff_mutation
from resolvers.node import node_type
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.node import decode_id
from schema.promotions import (
    Promotion,
    PromotionConnection,
    PromotionCreateInput,
    PromotionDeletePayload,
    PromotionFilter,
    PromotionPayload,
    PromotionRuleInput,
    PromotionUpdateInput,
)
from services.access.permissions import Permission, holds, require_permission
from services.catalog.listing import check_page_size
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.marketing.promotions import admin
from services.marketing.promotions.rules import ACTIONS, CONDITIONS, Rule

PromotionInfo = Info[Context, None]
PERMISSION = Permission.MARKETING_WRITE


def _rules(
    given: list[PromotionRuleInput], registry: dict[str, type[Rule]], where: str
) -> list[dict[str, Any]]:
    """Rules as the service takes them: global IDs in id arguments decoded to primary keys."""
    problems: list[DomainError] = []
    rules = []
    for i, rule in enumerate(given):
        args = dict(rule.args) if isinstance(rule.args, dict) else rule.args
        cls = registry.get(rule.type)
        if cls is not None and isinstance(args, dict):
            for arg, type_name in cls.refs.items():
                value = args.get(arg)
                field = f"{where}[{i}].args"  # one JSON value to GraphQL: errors name it
                try:
                    if isinstance(value, list):
                        args[arg] = [
                            decode_id(v, type_name, field) if isinstance(v, str) else v for v in value
                        ]
                    elif isinstance(value, str):
                        args[arg] = decode_id(value, type_name, field)
                except DomainError as exc:
                    problems.append(DomainError(exc.code, f"{arg}: {exc.message}", field))
        rules.append({"type": rule.type, "args": args})
    if problems:
        raise ValidationErrors(problems)
    return rules


def _given(value: Any) -> Any:
    return admin.UNCHANGED if isinstance(value, UnsetType) else value


# --- Queries -----------------------------------------------------------------------------------------------


async def promotions(
    info: PromotionInfo,
    filter: PromotionFilter | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> PromotionConnection:
    """Every promotion, newest first (staff with MARKETING_WRITE)."""
    require_permission(info.context.viewer, PERMISSION)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    f = filter or PromotionFilter()
    criteria = admin.PromotionFilter(
        status=PromotionStatusModel(f.status) if f.status is not None else None,
        kind=PromotionKindModel(f.kind) if f.kind is not None else None,
        running_at=now() if f.running else None,
        search=f.search,
    )
    admin.check_filter(criteria)
    rows, has_next = await admin.list_promotions(criteria, offset, limit)
    edges, page_info = build_edges([Promotion.from_model(row) for row in rows], offset)
    page_info.has_next_page = has_next
    return PromotionConnection(
        edges=edges, page_info=page_info, _total=lambda: admin.count_promotions(criteria)
    )


@node_type("Promotion")
async def promotion_node(context: Context, pk: int) -> Promotion | None:
    """Active promotions are anyone's to see (shoppers meet them as badges); drafts and stopped ones staff's."""
    row = await context.rows(PromotionModel).load(pk)
    if row is None or not (row.status == PromotionStatusModel.ACTIVE or holds(context.viewer, PERMISSION)):
        return None
    return Promotion.from_model(row)


# --- Staff mutations ---------------------------------------------------------------------------------------


def _pk(id: strawberry.ID) -> int:
    return decode_id(id, "Promotion", "id")


@staff_mutation(PERMISSION, action="promotionCreate")
async def promotion_create(info: PromotionInfo, input: PromotionCreateInput) -> PromotionPayload:
    draft = admin.PromotionDraft(
        title=input.title,
        kind=PromotionKindModel(input.kind),
        starts_at=input.starts_at,
        ends_at=input.ends_at,
        conditions=_rules(input.conditions, CONDITIONS, "input.conditions"),  # type: ignore[arg-type]
        actions=_rules(input.actions, ACTIONS, "input.actions"),  # type: ignore[arg-type]
        description=input.description,
        combines_with_promotions=input.combines_with_promotions,
        combines_with_coupons=input.combines_with_coupons,
        applies_to_campaign_lines=input.applies_to_campaign_lines,
        priority=input.priority,
    )
    return PromotionPayload(promotion=Promotion.from_model(await admin.create_promotion(draft)))


@staff_mutation(PERMISSION, action="promotionUpdate")
async def promotion_update(
    info: PromotionInfo, id: strawberry.ID, input: PromotionUpdateInput
) -> PromotionPayload:
    pk = _pk(id)
    problems = []
    for name in ("title", "kind", "starts_at", "conditions", "actions", "description", "priority"):
        if getattr(input, name) is None:
            problems.append(DomainError(ErrorCode.BAD_USER_INPUT, "Cannot be null", f"input.{_camel(name)}"))
    for name in ("combines_with_promotions", "combines_with_coupons", "applies_to_campaign_lines"):
        if getattr(input, name) is None:
            problems.append(DomainError(ErrorCode.BAD_USER_INPUT, "Cannot be null", f"input.{_camel(name)}"))
    if problems:
        raise ValidationErrors(problems)
    conditions = input.conditions
    actions = input.actions
    changes = admin.PromotionChanges(
        title=_given(input.title),
        kind=PromotionKindModel(input.kind) if isinstance(input.kind, str) else admin.UNCHANGED,
        starts_at=_given(input.starts_at),
        ends_at=_given(input.ends_at),
        conditions=_rules(conditions, CONDITIONS, "input.conditions")  # type: ignore[arg-type]
        if isinstance(conditions, list)
        else admin.UNCHANGED,
        actions=_rules(actions, ACTIONS, "input.actions")  # type: ignore[arg-type]
        if isinstance(actions, list)
        else admin.UNCHANGED,
        description=_given(input.description),
        combines_with_promotions=_given(input.combines_with_promotions),
        combines_with_coupons=_given(input.combines_with_coupons),
        applies_to_campaign_lines=_given(input.applies_to_campaign_lines),
        priority=_given(input.priority),
    )
    return PromotionPayload(promotion=Promotion.from_model(await admin.update_promotion(pk, changes)))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@staff_mutation(PERMISSION, action="promotionActivate")
async def promotion_activate(info: PromotionInfo, id: strawberry.ID) -> PromotionPayload:
    promotion = await admin.set_status(_pk(id), PromotionStatusModel.ACTIVE)
    return PromotionPayload(promotion=Promotion.from_model(promotion))


@staff_mutation(PERMISSION, action="promotionDeactivate")
async def promotion_deactivate(info: PromotionInfo, id: strawberry.ID) -> PromotionPayload:
    promotion = await admin.set_status(_pk(id), PromotionStatusModel.INACTIVE)
    return PromotionPayload(promotion=Promotion.from_model(promotion))


@staff_mutation(PERMISSION, action="promotionDelete")
async def promotion_delete(info: PromotionInfo, id: strawberry.ID) -> PromotionDeletePayload:
    await admin.delete_promotion(_pk(id))
    return PromotionDeletePayload(deleted_id=id)


# --- Root fields -------------------------------------------------------------------------------------------


@strawberry.type
class PromotionQuery:
    promotions: PromotionConnection = strawberry.field(
        resolver=promotions, description="Promotions, newest first (staff with MARKETING_WRITE)."
    )


@strawberry.type
class PromotionMutation:
    promotion_create: PromotionPayload = strawberry.mutation(
        resolver=promotion_create, description="Create a promotion (a DRAFT until promotionActivate)."
    )
    promotion_update: PromotionPayload = strawberry.mutation(
        resolver=promotion_update, description="Change a promotion; an active one applies as changed at once."
    )
    promotion_activate: PromotionPayload = strawberry.mutation(
        resolver=promotion_activate, description="Let a promotion apply between its startsAt and endsAt."
    )
    promotion_deactivate: PromotionPayload = strawberry.mutation(
        resolver=promotion_deactivate, description="Stop a promotion now."
    )
    promotion_delete: PromotionDeletePayload = strawberry.mutation(
        resolver=promotion_delete, description="Delete a promotion; orders keep what it gave them."
    )
