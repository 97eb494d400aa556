"""Loyalty root fields: member levels, the points ledger, daily sign-in, referral. Thin: find the viewer,
decode arguments, call services, wrap the result. In mutations every DomainError becomes the payload's
`errors`; in queries it becomes a GraphQL error with its code. The staff level mutations go through
`staff_mutation`, which checks the permission and writes the audit row."""

from __future__ import annotations

from typing import TypeVar

import strawberry
from strawberry.types import Info
from strawberry.types.unset import UnsetType

from models import MemberLevel as MemberLevelModel
from models import PointsEntry as PointsEntryModel
from resolvers.access import staff_mutation
from resolvers.node import node_type
from resolvers.payloads import payload_mutation
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.loyalty import (
    BindInviterPayload,
    MemberLevelCreateInput,
    MemberLevelCreatePayload,
    MemberLevelDeletePayload,
    MemberLevelType,
    MemberLevelUpdateInput,
    MemberLevelUpdatePayload,
    PointsEntry,
    PointsEntryConnection,
    SignInPayload,
)
from schema.node import decode_id
from services.access.permissions import Permission
from services.catalog.listing import check_page_size
from services.errors import DomainError, ErrorCode
from services.loyalty import levels, points, referral
from services.loyalty import sign_in as sign_ins

LoyaltyInfo = Info[Context, None]
T = TypeVar("T")

# Member levels are a marketing setting: the permission that also covers coupons and sign-in rewards.
LEVEL_PERMISSION = Permission.MARKETING_WRITE


def _member_id(info: LoyaltyInfo) -> int:
    member = info.context.viewer.member
    if member is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in as a member to do this")
    return member.id


def _given(value: T | UnsetType | None) -> T | levels.Unchanged:
    """An update field: omitted or null leaves it as it is."""
    return levels.UNCHANGED if value is None or isinstance(value, UnsetType) else value


# --- Queries -----------------------------------------------------------------------------------------------


async def member_levels(info: LoyaltyInfo) -> list[MemberLevelType]:
    """Every member level, lowest growth threshold first."""
    return [MemberLevelType.from_model(level) for level in await levels.member_levels()]


async def points_history(
    info: LoyaltyInfo, first: int | None = 20, after: str | None = None
) -> PointsEntryConnection:
    """The viewer's own points ledger, newest first."""
    member_id = _member_id(info)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows, has_next = await points.points_history(member_id, offset, limit)
    edges, page_info = build_edges([PointsEntry.from_model(row) for row in rows], offset)
    page_info.has_next_page = has_next
    return PointsEntryConnection(
        edges=edges, page_info=page_info, _total=lambda: points.count_points_entries(member_id)
    )


@node_type("MemberLevel")
async def level_node(context: Context, pk: int) -> MemberLevelType | None:
    level = await context.rows(MemberLevelModel).load(pk)
    return MemberLevelType.from_model(level) if level else None


@node_type("PointsEntry")
async def points_entry_node(context: Context, pk: int) -> PointsEntry | None:
    """Ledger rows are their member's alone: anyone else gets null, as for a row that does not exist."""
    member = context.viewer.member
    if member is None:
        return None
    entry = await context.rows(PointsEntryModel).load(pk)
    return PointsEntry.from_model(entry) if entry and entry.member_id == member.id else None


# --- Member mutations --------------------------------------------------------------------------------------


@payload_mutation
async def sign_in(info: LoyaltyInfo) -> SignInPayload:
    result = await sign_ins.sign_in(_member_id(info))
    return SignInPayload(points=result.points, streak=result.streak, balance=result.balance)


@payload_mutation
async def bind_inviter(info: LoyaltyInfo, code: str) -> BindInviterPayload:
    inviter = await referral.bind_inviter(_member_id(info), code)
    return BindInviterPayload(inviter_nickname=inviter.nickname)


# --- Staff mutations ---------------------------------------------------------------------------------------


@staff_mutation(LEVEL_PERMISSION, action="levelCreate")
async def level_create(info: LoyaltyInfo, input: MemberLevelCreateInput) -> MemberLevelCreatePayload:
    level = await levels.create_level(
        levels.LevelDraft(
            name=input.name,
            min_growth=input.min_growth,
            discount_percent=input.discount_percent,
            free_shipping=input.free_shipping,
            birthday_points=input.birthday_points,
            priority_minutes=input.priority_minutes,
        )
    )
    return MemberLevelCreatePayload(level=MemberLevelType.from_model(level))


@staff_mutation(LEVEL_PERMISSION, action="levelUpdate")
async def level_update(
    info: LoyaltyInfo, id: strawberry.ID, input: MemberLevelUpdateInput
) -> MemberLevelUpdatePayload:
    changes = levels.LevelChanges(
        name=_given(input.name),
        min_growth=_given(input.min_growth),
        discount_percent=_given(input.discount_percent),
        free_shipping=_given(input.free_shipping),
        birthday_points=_given(input.birthday_points),
        priority_minutes=_given(input.priority_minutes),
    )
    level = await levels.update_level(decode_id(id, "MemberLevel"), changes)
    return MemberLevelUpdatePayload(level=MemberLevelType.from_model(level))


@staff_mutation(LEVEL_PERMISSION, action="levelDelete")
async def level_delete(info: LoyaltyInfo, id: strawberry.ID) -> MemberLevelDeletePayload:
    await levels.delete_level(decode_id(id, "MemberLevel"))
    return MemberLevelDeletePayload(deleted_id=id)


# --- Root fields -------------------------------------------------------------------------------------------


@strawberry.type
class LoyaltyQuery:
    member_levels: list[MemberLevelType] = strawberry.field(
        resolver=member_levels, description="The member levels and their benefits, lowest first."
    )
    points_history: PointsEntryConnection = strawberry.field(
        resolver=points_history, description="The signed-in member's points ledger, newest first."
    )


@strawberry.type
class LoyaltyMutation:
    sign_in: SignInPayload = strawberry.mutation(
        resolver=sign_in,
        description="Daily sign-in (签到), once per day (Asia/Shanghai); points grow with the streak.",
    )
    bind_inviter: BindInviterPayload = strawberry.mutation(
        resolver=bind_inviter,
        description="Record who invited the signed-in member, by their invite code; once only.",
    )
    level_create: MemberLevelCreatePayload = strawberry.mutation(resolver=level_create)
    level_update: MemberLevelUpdatePayload = strawberry.mutation(resolver=level_update)
    level_delete: MemberLevelDeletePayload = strawberry.mutation(
        resolver=level_delete, description="Its members fall to the highest level below it."
    )
