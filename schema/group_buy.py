"""Group buys (拼团): the rules staff set up, the groups shoppers open and join, and the payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from loaders.marketing import GroupBuyMembersLoader, GroupBuyStatsLoader
from models import GroupBuy as GroupBuyModel
from models import GroupBuyRule as GroupBuyRuleModel
from models import GroupBuyStatus as GroupBuyStatusModel
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.context import Context
from schema.node import Node, decode_id, encode_id
from services.access.permissions import Permission, holds
from services.marketing.group_buy import groups
from services.marketing.group_buy.rules import RuleStats

GroupBuyStatus = strawberry.enum(
    GroupBuyStatusModel,
    name="GroupBuyStatus",
    description="OPENING: the leader has not paid yet; OPEN: joinable until expiresAt; SUCCEEDED: full, its "
    "orders ship; FAILED: expired short of members, every paid member refunded; CANCELLED: never opened.",
)


@strawberry.type(description="Live numbers of a group buy rule (staff with MARKETING_WRITE).")
class GroupBuyRuleStats:
    groups_opening: int
    groups_open: int
    groups_filled: int
    groups_failed: int
    members_paid: int

    @classmethod
    def from_data(cls, s: RuleStats) -> GroupBuyRuleStats:
        return cls(
            groups_opening=s.groups_opening,
            groups_open=s.groups_open,
            groups_filled=s.groups_filled,
            groups_failed=s.groups_failed,
            members_paid=s.members_paid,
        )


@strawberry.type(
    description="A group buy of one SKU: buy it with `campaign: {kind: GROUP_BUY, id: <this id>}` to open a "
    "group (you lead it), or with a GroupBuy's ID to join that group."
)
class GroupBuyRule(Node):
    id: strawberry.ID
    sku_id: strawberry.ID
    product_id: strawberry.ID
    title: str
    group_price: int = strawberry.field(description="In fen.")
    group_size: int
    hours_to_fill: int = strawberry.field(description="From the leader's payment.")
    per_member_limit: int = strawberry.field(description="Units one member may buy through this rule.")
    virtual_members: int = strawberry.field(
        description="At expiry a group short of at most this many members succeeds anyway (0: off)."
    )
    starts_at: datetime
    ends_at: datetime
    stopped_at: datetime | None

    @strawberry.field(description="Live numbers; null unless the viewer is staff with MARKETING_WRITE.")
    async def stats(self, info: Info[Context, None]) -> GroupBuyRuleStats | None:
        if not holds(info.context.viewer, Permission.MARKETING_WRITE):
            return None
        pk = int(decode_id(self.id, "GroupBuyRule"))
        return GroupBuyRuleStats.from_data(await info.context.loader(GroupBuyStatsLoader).load(pk))

    @strawberry.field(description="Groups of this rule open for joining now, closest to expiry first.")
    async def open_groups(self, first: int = 5) -> list[GroupBuy]:
        pk = int(decode_id(self.id, "GroupBuyRule"))
        return [GroupBuy.from_model(g) for g in await groups.open_groups(pk, max(0, min(first, 20)))]

    @classmethod
    def from_model(cls, m: GroupBuyRuleModel) -> GroupBuyRule:
        return cls(
            id=encode_id("GroupBuyRule", m.id),
            sku_id=encode_id("Sku", m.sku_id),  # type: ignore[attr-defined]
            product_id=encode_id("Product", m.product_id),
            title=m.title,
            group_price=m.group_price,
            group_size=m.group_size,
            hours_to_fill=m.hours_to_fill,
            per_member_limit=m.per_member_limit,
            virtual_members=m.virtual_members,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            stopped_at=m.stopped_at,
        )


@strawberry.type(description="A member of a group, as its share page shows them.")
class GroupBuyMember:
    nickname: str
    avatar_url: str
    leader: bool
    joined_at: datetime


@strawberry.type(
    description="One group: share its ID; others join with `campaign: {kind: GROUP_BUY, id: <this id>}`."
)
class GroupBuy(Node):
    id: strawberry.ID
    rule_id: strawberry.ID
    status: GroupBuyStatus
    size: int
    seats_left: int = strawberry.field(
        description="Seats not held by a placed order (an unpaid one holds its seat for its unpaid timeout)."
    )
    paid_count: int
    virtual_count: int = strawberry.field(description="Virtual members that completed it at expiry.")
    expires_at: datetime | None = strawberry.field(description="Set when the leader pays.")
    succeeded_at: datetime | None
    failed_at: datetime | None

    @strawberry.field(description="Members who paid, leader first.")
    async def members(self, info: Info[Context, None]) -> list[GroupBuyMember]:
        pk = int(decode_id(self.id, "GroupBuy"))
        found = await info.context.loader(GroupBuyMembersLoader).load(pk)
        return [
            GroupBuyMember(
                nickname=m.nickname, avatar_url=m.avatar_url, leader=m.leader, joined_at=m.joined_at
            )
            for m in found
        ]

    @classmethod
    def from_model(cls, m: GroupBuyModel) -> GroupBuy:
        return cls(
            id=encode_id("GroupBuy", m.id),
            rule_id=encode_id("GroupBuyRule", m.rule_id),  # type: ignore[attr-defined]
            status=m.status,
            size=m.size,
            seats_left=max(0, m.size - m.seats_taken) if m.status == GroupBuyStatusModel.OPEN else 0,
            paid_count=m.paid_count,
            virtual_count=m.virtual_count,
            expires_at=m.expires_at,
            succeeded_at=m.succeeded_at,
            failed_at=m.failed_at,
        )


@strawberry.type
class GroupBuyRuleConnection:
    edges: list[Edge[GroupBuyRule]]
    page_info: PageInfo
    total_count: int


@strawberry.input(description="A group buy of one SKU, taking orders from startsAt until endsAt.")
class GroupBuyRuleInput:
    sku_id: strawberry.ID
    title: str
    group_price: int = strawberry.field(description="In fen, at most the SKU's shelf price.")
    group_size: int = strawberry.field(description="2 to 100.")
    hours_to_fill: int = strawberry.field(description="1 to 720, counted from the leader's payment.")
    per_member_limit: int
    starts_at: datetime
    ends_at: datetime
    virtual_members: int = strawberry.field(
        default=0, description="虚拟成团: at most this many missing members are filled at expiry (0: off)."
    )


@strawberry.type
class GroupBuyRulePayload:
    rule: GroupBuyRule | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
