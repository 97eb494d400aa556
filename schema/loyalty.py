"""Loyalty types: member levels, the points ledger, daily sign-in and referral payloads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

from models import MemberLevel as MemberLevelModel
from models import PointsEntry as PointsEntryModel
from models import PointsReason as PointsReasonModel
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.node import Node, encode_id

PointsReason = strawberry.enum(PointsReasonModel, description="Why a member's points changed.")


@strawberry.type(name="MemberLevel", description="A member level reached by growth value, with its benefits.")
class MemberLevelType(Node):
    name: str
    min_growth: int = strawberry.field(description="Growth value from which a member has this level.")
    discount_percent: int = strawberry.field(
        description="Percent of the list price members of this level pay (100 = no discount)."
    )
    free_shipping: bool
    birthday_points: int = strawberry.field(description="Points given on the member's birthday.")
    priority_minutes: int = strawberry.field(
        description="Minutes before a sale opens to everyone that this level may already buy."
    )

    @classmethod
    def from_model(cls, m: MemberLevelModel) -> MemberLevelType:
        return cls(
            id=encode_id("MemberLevel", m.id),
            name=m.name,
            min_growth=m.min_growth,
            discount_percent=m.discount_percent,
            free_shipping=m.free_shipping,
            birthday_points=m.birthday_points,
            priority_minutes=m.priority_minutes,
        )


@strawberry.type(description="One change of the viewer's points balance.")
class PointsEntry(Node):
    delta: int = strawberry.field(description="Points earned (positive) or spent (negative).")
    balance_after: int
    reason: PointsReason
    note: str
    created_at: datetime

    @classmethod
    def from_model(cls, m: PointsEntryModel) -> PointsEntry:
        return cls(
            id=encode_id("PointsEntry", m.id),
            delta=m.delta,
            balance_after=m.balance_after,
            reason=m.reason,
            note=m.note,
            created_at=m.created_at,
        )


@strawberry.type
class PointsEntryConnection:
    edges: list[Edge[PointsEntry]]
    page_info: PageInfo
    _total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="All of the viewer's entries, not just this page (costs a count).")
    async def total_count(self) -> int:
        return await self._total()


# --- Inputs ------------------------------------------------------------------------------------------------


@strawberry.input
class MemberLevelCreateInput:
    name: str = strawberry.field(description="1 to 32 characters, unique.")
    min_growth: int = strawberry.field(description="Growth value from which the level applies; unique.")
    discount_percent: int = strawberry.field(default=100, description="1 to 100 (100 = no discount).")
    free_shipping: bool = False
    birthday_points: int = 0
    priority_minutes: int = strawberry.field(default=0, description="0 to 1440.")


@strawberry.input(description="Only the fields given change; null leaves a field as it is.")
class MemberLevelUpdateInput:
    name: str | None = strawberry.UNSET
    min_growth: int | None = strawberry.UNSET
    discount_percent: int | None = strawberry.UNSET
    free_shipping: bool | None = strawberry.UNSET
    birthday_points: int | None = strawberry.UNSET
    priority_minutes: int | None = strawberry.UNSET


# --- Payloads ----------------------------------------------------------------------------------------------


@strawberry.type
class SignInPayload:
    points: int | None = strawberry.field(default=None, description="Points credited for today.")
    streak: int | None = strawberry.field(
        default=None, description="Consecutive days signed in, today included."
    )
    balance: int | None = strawberry.field(default=None, description="The points balance afterwards.")
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BindInviterPayload:
    inviter_nickname: str | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MemberLevelCreatePayload:
    level: MemberLevelType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MemberLevelUpdatePayload:
    level: MemberLevelType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MemberLevelDeletePayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
