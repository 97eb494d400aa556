"""Group buys: shoppers read rules and groups (`groupBuyRules`, `groupBuy`); staff create and stop rules.

Thin: decode the input, call services.marketing.group_buy. Opening and joining a group is `placeOrder` with a
GROUP_BUY campaign item (services.orders.checkout → the group-buy campaign handler).
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from models import GroupBuy as GroupBuyModel
from models import GroupBuyRule as GroupBuyRuleModel
from resolvers.access import staff_mutation
from resolvers.node import node_type
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.group_buy import (
    GroupBuy,
    GroupBuyRule,
    GroupBuyRuleConnection,
    GroupBuyRuleInput,
    GroupBuyRulePayload,
)
from schema.node import decode_id
from services.access.permissions import Permission, require_permission
from services.catalog.listing import check_page_size
from services.marketing.group_buy import rules

GroupBuyInfo = Info[Context, None]


@node_type("GroupBuyRule")
async def group_buy_rule_node(context: Context, pk: int) -> GroupBuyRule | None:
    row = await context.rows(GroupBuyRuleModel).load(pk)
    return GroupBuyRule.from_model(row) if row else None


@node_type("GroupBuy")
async def group_buy_node(context: Context, pk: int) -> GroupBuy | None:
    row = await context.rows(GroupBuyModel).load(pk)
    return GroupBuy.from_model(row) if row else None


async def group_buy(info: GroupBuyInfo, id: strawberry.ID) -> GroupBuy | None:
    return await group_buy_node(info.context, decode_id(id, "GroupBuy"))


async def group_buy_rules(
    info: GroupBuyInfo,
    product_id: strawberry.ID | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> GroupBuyRuleConnection:
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    product = decode_id(product_id, "Product", "productId") if product_id else None
    rows, total = await rules.active_rules(product, offset, limit)
    return _connection(rows, total, offset)


async def group_buy_rules_admin(
    info: GroupBuyInfo, first: int | None = 20, after: str | None = None
) -> GroupBuyRuleConnection:
    require_permission(info.context.viewer, Permission.MARKETING_WRITE)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows, total = await rules.all_rules(offset, limit)
    return _connection(rows, total, offset)


def _connection(rows: list[GroupBuyRuleModel], total: int, offset: int) -> GroupBuyRuleConnection:
    edges, page_info = build_edges([GroupBuyRule.from_model(r) for r in rows], offset)
    page_info.has_next_page = offset + len(rows) < total
    return GroupBuyRuleConnection(edges=edges, page_info=page_info, total_count=total)


@staff_mutation(Permission.MARKETING_WRITE, action="groupBuyRuleCreate")
async def group_buy_rule_create(info: GroupBuyInfo, input: GroupBuyRuleInput) -> GroupBuyRulePayload:
    draft = rules.RuleDraft(
        sku_id=decode_id(input.sku_id, "Sku", "input.skuId"),
        title=input.title,
        group_price=input.group_price,
        group_size=input.group_size,
        hours_to_fill=input.hours_to_fill,
        per_member_limit=input.per_member_limit,
        starts_at=input.starts_at,
        ends_at=input.ends_at,
        virtual_members=input.virtual_members,
    )
    return GroupBuyRulePayload(rule=GroupBuyRule.from_model(await rules.create_rule(draft)))


@staff_mutation(Permission.MARKETING_WRITE, action="groupBuyRuleStop")
async def group_buy_rule_stop(info: GroupBuyInfo, id: strawberry.ID) -> GroupBuyRulePayload:
    rule = await rules.stop_rule(decode_id(id, "GroupBuyRule"))
    return GroupBuyRulePayload(rule=GroupBuyRule.from_model(rule))


@strawberry.type
class GroupBuyQuery:
    group_buy: GroupBuy | None = strawberry.field(
        resolver=group_buy, description="A group by its share link's ID: members, seats left, expiry."
    )
    group_buy_rules: GroupBuyRuleConnection = strawberry.field(
        resolver=group_buy_rules,
        description="Group buys taking orders now (of one product, or all), soonest ending first.",
    )
    group_buy_rules_admin: GroupBuyRuleConnection = strawberry.field(
        resolver=group_buy_rules_admin,
        description="Every group buy rule, newest first, with live numbers. Needs MARKETING_WRITE.",
    )


@strawberry.type
class GroupBuyMutation:
    group_buy_rule_create: GroupBuyRulePayload = strawberry.mutation(
        resolver=group_buy_rule_create,
        description="Set up a group buy of one SKU (scheduled by startsAt / endsAt). Needs MARKETING_WRITE.",
    )
    group_buy_rule_stop: GroupBuyRulePayload = strawberry.mutation(
        resolver=group_buy_rule_stop,
        description="Stop a group buy at once: no group opens or is joined any more; open groups run out "
        "their time. Needs MARKETING_WRITE.",
    )
