"""Coupon root fields: the coupon center, claiming, the wallet, redeem codes; staff create, change, stop and
issue coupons and generate codes. Thin: decode arguments, call services.marketing.coupons, wrap results."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info
from strawberry.types.unset import UnsetType

from loaders.coupons import ClaimedCountLoader
from models import Coupon as CouponModel
from models import CouponScope as CouponScopeModel
from models import CouponStatus as CouponStatusModel
from models import MemberCoupon as MemberCouponModel
from resolvers.access import staff_mutation
from resolvers.cart import member_id
from resolvers.node import node_type
from resolvers.payloads import payload_mutation
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.coupons import (
    Coupon,
    CouponClaimPayload,
    CouponCodesPayload,
    CouponConnection,
    CouponCreateInput,
    CouponIssuePayload,
    CouponPayload,
    CouponStatus,
    CouponUpdateInput,
    MemberCoupon,
    MemberCouponConnection,
    MemberCouponStatus,
)
from schema.node import decode_any, decode_id
from services.access.permissions import Permission, holds, require_permission
from services.catalog.listing import check_page_size
from services.errors import DomainError, ErrorCode
from services.marketing.coupons import checkout as coupon_checkout  # noqa: F401  (registers the COUPON step)
from services.marketing.coupons import codes, templates, wallet

CouponInfo = Info[Context, None]
PERMISSION = Permission.MARKETING_WRITE
_SCOPE_TYPE = {
    CouponScopeModel.CATEGORIES: "Category",
    CouponScopeModel.PRODUCTS: "Product",
    CouponScopeModel.BRANDS: "Brand",
}


def coupon_type(context: Context, row: CouponModel) -> Coupon:
    """The GraphQL coupon, its `claimed` count batched per request for the viewing member."""
    member = context.viewer.member
    if member is None:
        return Coupon.from_model(row)
    loader = context.loader(ClaimedCountLoader)
    return Coupon.from_model(row, lambda: loader.load((member.id, row.id)))


def member_coupon_type(context: Context, row: MemberCouponModel) -> MemberCoupon:
    async def coupon() -> Coupon:
        template = await context.rows(CouponModel).load(row.coupon_id)  # type: ignore[attr-defined]
        return coupon_type(context, template)

    return MemberCoupon.from_model(row, coupon)


def _scope_ids(ids: list[strawberry.ID], scope: CouponScopeModel) -> tuple[int, ...]:
    expected = _SCOPE_TYPE.get(scope)
    if expected is None:
        return tuple(decode_any(gid, f"input.scopeIds[{i}]")[1] for i, gid in enumerate(ids))
    return tuple(decode_id(gid, expected, f"input.scopeIds[{i}]") for i, gid in enumerate(ids))


# --- Queries -----------------------------------------------------------------------------------------------


async def coupon_center(
    info: CouponInfo, first: int | None = 20, after: str | None = None
) -> CouponConnection:
    """Coupons anyone can claim now (a guest sees them too; claiming needs a member)."""
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows, has_next = await wallet.coupon_center(offset, limit)
    edges, page_info = build_edges([coupon_type(info.context, row) for row in rows], offset)
    page_info.has_next_page = has_next
    return CouponConnection(edges=edges, page_info=page_info, _total=wallet.count_coupon_center)


async def my_coupons(
    info: CouponInfo,
    status: MemberCouponStatus = wallet.WalletStatus.USABLE,
    first: int | None = 20,
    after: str | None = None,
) -> MemberCouponConnection:
    """The viewer's coupons: USABLE soonest-expiring first, USED and EXPIRED newest first."""
    me = member_id(info)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    state = wallet.WalletStatus(status)
    rows, has_next = await wallet.my_coupons(me, state, offset, limit)
    edges, page_info = build_edges([member_coupon_type(info.context, row) for row in rows], offset)
    page_info.has_next_page = has_next
    return MemberCouponConnection(
        edges=edges, page_info=page_info, _total=lambda: wallet.count_my_coupons(me, state)
    )


async def coupons(
    info: CouponInfo, status: CouponStatus | None = None, first: int | None = 20, after: str | None = None
) -> CouponConnection:
    """Every coupon, newest first (staff with MARKETING_WRITE)."""
    require_permission(info.context.viewer, PERMISSION)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    state = CouponStatusModel(status) if status is not None else None
    rows, has_next = await templates.staff_coupons(state, offset, limit)
    edges, page_info = build_edges([coupon_type(info.context, row) for row in rows], offset)
    page_info.has_next_page = has_next
    return CouponConnection(
        edges=edges, page_info=page_info, _total=lambda: templates.count_staff_coupons(state)
    )


@node_type("Coupon")
async def coupon_node(context: Context, pk: int) -> Coupon | None:
    """Public coupons are anyone's to see; the others (issued or redeemed only) are staff's."""
    row = await context.rows(CouponModel).load(pk)
    if row is None or not (row.public or holds(context.viewer, PERMISSION)):
        return None
    return coupon_type(context, row)


@node_type("MemberCoupon")
async def member_coupon_node(context: Context, pk: int) -> MemberCoupon | None:
    """A held coupon is its member's alone."""
    member = context.viewer.member
    if member is None:
        return None
    row = await context.rows(MemberCouponModel).load(pk)
    return member_coupon_type(context, row) if row and row.member_id == member.id else None  # type: ignore[attr-defined]


# --- Member mutations --------------------------------------------------------------------------------------


@payload_mutation
async def coupon_claim(info: CouponInfo, coupon_id: strawberry.ID) -> CouponClaimPayload:
    held = await wallet.claim(member_id(info), decode_id(coupon_id, "Coupon", "couponId"))
    return CouponClaimPayload(member_coupon=member_coupon_type(info.context, held))


@payload_mutation
async def coupon_redeem_code(info: CouponInfo, code: str) -> CouponClaimPayload:
    held = await codes.redeem_code(member_id(info), code)
    return CouponClaimPayload(member_coupon=member_coupon_type(info.context, held))


# --- Staff mutations ---------------------------------------------------------------------------------------


def _draft(input: CouponCreateInput) -> templates.CouponDraft:
    scope = CouponScopeModel(input.scope)
    return templates.CouponDraft(
        name=input.name,
        kind=input.kind,
        total_quantity=input.total_quantity,
        amount_off=input.amount_off,
        discount_percent=input.discount_percent,
        max_discount=input.max_discount,
        min_amount=input.min_amount,
        scope=scope,
        scope_ids=_scope_ids(input.scope_ids, scope),
        valid_from=input.valid_from,
        valid_until=input.valid_until,
        valid_days=input.valid_days,
        claim_starts_at=input.claim_starts_at,
        claim_ends_at=input.claim_ends_at,
        public=input.public,
        per_member_limit=input.per_member_limit,
        stackable=input.stackable,
        return_on_refund=input.return_on_refund,
        description=input.description,
    )


# Fields that may be set back to null (the validity and the claim window); others ignore null.
_NULLABLE = {"valid_from", "valid_until", "valid_days", "claim_starts_at", "claim_ends_at"}


async def _changes(coupon_id: int, input: CouponUpdateInput) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in CouponUpdateInput.__annotations__:
        value = getattr(input, name)
        if isinstance(value, UnsetType) or (value is None and name not in _NULLABLE):
            continue
        changes[name] = value
    templates.check_texts(changes)
    if "scope_ids" in changes:
        scope = changes.get("scope") or (await templates.get_coupon(coupon_id)).scope
        changes["scope_ids"] = _scope_ids(changes["scope_ids"], CouponScopeModel(scope))
    if "scope" in changes:
        changes["scope"] = CouponScopeModel(changes["scope"])
    return changes


@staff_mutation(PERMISSION, action="couponCreate")
async def coupon_create(info: CouponInfo, input: CouponCreateInput) -> CouponPayload:
    return CouponPayload(coupon=coupon_type(info.context, await templates.create_coupon(_draft(input))))


@staff_mutation(PERMISSION, action="couponUpdate")
async def coupon_update(info: CouponInfo, id: strawberry.ID, input: CouponUpdateInput) -> CouponPayload:
    coupon_id = decode_id(id, "Coupon")
    row = await templates.update_coupon(coupon_id, await _changes(coupon_id, input))
    return CouponPayload(coupon=coupon_type(info.context, row))


@staff_mutation(PERMISSION, action="couponStop")
async def coupon_stop(info: CouponInfo, id: strawberry.ID) -> CouponPayload:
    row = await templates.stop_coupon(decode_id(id, "Coupon"))
    return CouponPayload(coupon=coupon_type(info.context, row))


@staff_mutation(PERMISSION, action="couponIssue")
async def coupon_issue(
    info: CouponInfo,
    id: strawberry.ID,
    member_ids: list[strawberry.ID] | None = None,
    level_id: strawberry.ID | None = None,
) -> CouponIssuePayload:
    coupon_id = decode_id(id, "Coupon")
    if (member_ids is None) == (level_id is None):
        raise DomainError(ErrorCode.BAD_USER_INPUT, "Give either memberIds or levelId", "memberIds")
    if level_id is not None:
        result = await wallet.issue_to_level(coupon_id, decode_id(level_id, "MemberLevel", "levelId"))
    else:
        assert member_ids is not None
        ids = [decode_id(gid, "Member", f"memberIds[{i}]") for i, gid in enumerate(member_ids)]
        result = await wallet.issue(coupon_id, ids)
    return CouponIssuePayload(issued=result.issued, skipped=result.skipped, sold_out=result.sold_out)


@staff_mutation(PERMISSION, action="couponCodesGenerate")
async def coupon_codes_generate(info: CouponInfo, coupon_id: strawberry.ID, count: int) -> CouponCodesPayload:
    made = await codes.generate_codes(decode_id(coupon_id, "Coupon", "couponId"), count)
    return CouponCodesPayload(codes=made)


# --- Root fields -------------------------------------------------------------------------------------------


@strawberry.type
class CouponQuery:
    coupon_center: CouponConnection = strawberry.field(
        resolver=coupon_center, description="领券中心: coupons that can be claimed now."
    )
    my_coupons: MemberCouponConnection = strawberry.field(
        resolver=my_coupons, description="The signed-in member's coupon wallet."
    )
    coupons: CouponConnection = strawberry.field(
        resolver=coupons, description="Staff: every coupon, newest first (MARKETING_WRITE)."
    )


@strawberry.type
class CouponMutation:
    coupon_claim: CouponClaimPayload = strawberry.mutation(
        resolver=coupon_claim, description="Claim a coupon from the coupon center (within its limits)."
    )
    coupon_redeem_code: CouponClaimPayload = strawberry.mutation(
        resolver=coupon_redeem_code, description="Redeem a one-time code (兑换码) for its coupon."
    )
    coupon_create: CouponPayload = strawberry.mutation(resolver=coupon_create)
    coupon_update: CouponPayload = strawberry.mutation(resolver=coupon_update)
    coupon_stop: CouponPayload = strawberry.mutation(
        resolver=coupon_stop, description="Hand out no more; coupons already held stay usable."
    )
    coupon_issue: CouponIssuePayload = strawberry.mutation(
        resolver=coupon_issue,
        description="Give one coupon to each of `memberIds` (at most 1,000) or to every member of `levelId`, "
        "as far as the total and the per-member limit allow.",
    )
    coupon_codes_generate: CouponCodesPayload = strawberry.mutation(
        resolver=coupon_codes_generate, description="Make `count` (1 to 1,000) one-time redeem codes."
    )
