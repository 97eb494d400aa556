"""Coupons: staff define them, shoppers claim them in the coupon center or redeem codes, the wallet shows them;
no total and no per-member limit can be exceeded, however many claims race."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import Any

import pytest

from infra.clock import now
from models import Coupon, CouponCode, CouponKind, CouponSource, Member, MemberCoupon, MemberLevel, StaffRole
from schema.node import encode_id
from services.access.staff import create_staff
from services.errors import DomainError, ErrorCode
from services.loyalty.levels import ensure_default_levels
from services.marketing.coupons import templates, wallet
from tests.graphql_client import gql
from tests.test_cart import new_member

pytestmark = pytest.mark.usefixtures("runtime")

ERRORS = "errors { field message code }"
COUPON_FIELDS = "id name summary kind remaining claimed stackable status"
CREATE = f"""mutation($input: CouponCreateInput!) {{ couponCreate(input: $input) {{
  coupon {{ {COUPON_FIELDS} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: CouponUpdateInput!) {{ couponUpdate(id: $id, input: $input) {{
  coupon {{ {COUPON_FIELDS} totalQuantity }} {ERRORS} }} }}"""
CENTER = f"query {{ couponCenter(first: 50) {{ totalCount edges {{ node {{ {COUPON_FIELDS} }} }} }} }}"
CLAIM = f"""mutation($id: ID!) {{ couponClaim(couponId: $id) {{
  memberCoupon {{ id status source validUntil coupon {{ name claimed }} }} {ERRORS} }} }}"""
WALLET = """query($status: MemberCouponStatus!) { myCoupons(status: $status, first: 20) {
  totalCount edges { node { id status coupon { name summary } } } } }"""
REDEEM = f"""mutation($code: String!) {{ couponRedeemCode(code: $code) {{
  memberCoupon {{ id source coupon {{ name }} }} {ERRORS} }} }}"""


async def staff_token(role: StaffRole = StaffRole.OPERATOR) -> str:
    _, token = await create_staff(f"coupons-{secrets.token_hex(4)}", role)
    return token


async def new_coupon(**values: Any) -> Coupon:
    """A public coupon, valid for 7 days after it is got, unless `values` say otherwise."""
    fields: dict[str, Any] = {
        "name": f"券{secrets.token_hex(3)}",
        "kind": CouponKind.CASH,
        "amount_off": 1000,
        "total_quantity": 100,
        "valid_days": 7,
    }
    fields.update(values)
    if "valid_until" in values:
        fields.pop("valid_days")
    return await templates.create_coupon(templates.CouponDraft(**fields))


def codes_of(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def test_staff_make_a_threshold_coupon_and_bad_rules_are_refused_field_by_field(client: Any) -> None:
    token = await staff_token()
    good = {
        "name": "满300减40",
        "kind": "THRESHOLD",
        "totalQuantity": 500,
        "amountOff": 4000,
        "minAmount": 30000,
        "validDays": 7,
        "perMemberLimit": 2,
        "stackable": True,
    }
    made = (await gql(client, CREATE, {"input": good}, token))["data"]["couponCreate"]
    assert made["errors"] == []
    assert made["coupon"]["summary"] == "满¥300.00减¥40.00" and made["coupon"]["remaining"] == 500

    bad = {
        "name": "",
        "kind": "DISCOUNT",
        "totalQuantity": 0,
        "discountPercent": 120,
        "validFrom": "2026-12-02T00:00:00+08:00",
        "validUntil": "2026-12-01T00:00:00+08:00",
        "scope": "PRODUCTS",
    }
    refused = (await gql(client, CREATE, {"input": bad}, token))["data"]["couponCreate"]
    assert refused["coupon"] is None
    assert {e["field"] for e in refused["errors"]} == {
        "input.name",
        "input.discountPercent",
        "input.maxDiscount",
        "input.scopeIds",
        "input.validUntil",
        "input.totalQuantity",
    }
    missing_scope = {**good, "scope": "CATEGORIES", "scopeIds": [encode_id("Category", 2_000_000_000)]}
    answer = (await gql(client, CREATE, {"input": missing_scope}, token))["data"]["couponCreate"]
    assert [(e["code"], e["field"]) for e in answer["errors"]] == [("NOT_FOUND", "input.scopeIds")]

    # A shopper may not make coupons.
    _, shopper = await new_member()
    forbidden = (await gql(client, CREATE, {"input": good}, shopper))["data"]["couponCreate"]
    assert codes_of(forbidden) == ["FORBIDDEN"]


async def test_a_shopper_claims_in_the_coupon_center_and_finds_it_in_the_wallet(client: Any) -> None:
    coupon = await new_coupon(name="新人无门槛10元", per_member_limit=2, total_quantity=3)
    hidden = await new_coupon(name="仅发放", public=False)
    later = await new_coupon(name="明天开抢", claim_starts_at=now() + timedelta(days=1))
    member, token = await new_member()
    center = (await gql(client, CENTER, token=token))["data"]["couponCenter"]
    shown = {edge["node"]["name"]: edge["node"] for edge in center["edges"]}
    assert coupon.name in shown and hidden.name not in shown and later.name not in shown
    assert shown[coupon.name]["summary"] == "无门槛减¥10.00" and shown[coupon.name]["claimed"] == 0

    gid = encode_id("Coupon", coupon.id)
    first = (await gql(client, CLAIM, {"id": gid}, token))["data"]["couponClaim"]
    assert first["errors"] == [] and first["memberCoupon"]["status"] == "USABLE"
    assert first["memberCoupon"]["source"] == "CENTER" and first["memberCoupon"]["coupon"]["claimed"] == 1
    second = (await gql(client, CLAIM, {"id": gid}, token))["data"]["couponClaim"]
    assert second["errors"] == []
    third = (await gql(client, CLAIM, {"id": gid}, token))["data"]["couponClaim"]
    assert codes_of(third) == ["LIMIT_EXCEEDED"] and third["errors"][0]["field"] == "couponId"

    # The third coupon goes to someone else; then the center no longer shows it and claims are refused.
    _, other = await new_member()
    assert (await gql(client, CLAIM, {"id": gid}, other))["data"]["couponClaim"]["errors"] == []
    _, late = await new_member()
    assert codes_of((await gql(client, CLAIM, {"id": gid}, late))["data"]["couponClaim"]) == ["SOLD_OUT"]
    center = (await gql(client, CENTER, token=token))["data"]["couponCenter"]
    assert coupon.name not in {edge["node"]["name"] for edge in center["edges"]}
    for refused in (hidden, later):
        answer = (await gql(client, CLAIM, {"id": encode_id("Coupon", refused.id)}, token))["data"]
        assert codes_of(answer["couponClaim"]) == ["CONFLICT"]

    usable = (await gql(client, WALLET, {"status": "USABLE"}, token))["data"]["myCoupons"]
    assert usable["totalCount"] == 2
    assert {e["node"]["coupon"]["name"] for e in usable["edges"]} == {coupon.name}
    assert (await Coupon.get(id=coupon.id)).issued == 3
    assert await MemberCoupon.filter(member_id=member.id).count() == 2


async def test_the_wallet_sorts_coupons_into_usable_used_and_expired(client: Any) -> None:
    member, token = await new_member()
    fresh = await wallet.grant(member.id, (await new_coupon(name="可用")).id, CouponSource.ISSUED)
    old = await wallet.grant(member.id, (await new_coupon(name="过期")).id, CouponSource.ISSUED)
    spent = await wallet.grant(member.id, (await new_coupon(name="已用")).id, CouponSource.ISSUED)
    await MemberCoupon.filter(id=old.id).update(valid_until=now() - timedelta(minutes=1))
    await MemberCoupon.filter(id=spent.id).update(status="USED", used_at=now(), order_id=1)
    seen = {}
    for status in ("USABLE", "USED", "EXPIRED"):
        answer = (await gql(client, WALLET, {"status": status}, token))["data"]["myCoupons"]
        seen[status] = [(e["node"]["coupon"]["name"], e["node"]["status"]) for e in answer["edges"]]
    assert seen == {
        "USABLE": [("可用", "USABLE")],
        "USED": [("已用", "USED")],
        "EXPIRED": [("过期", "EXPIRED")],
    }
    assert fresh.valid_until - fresh.valid_from == timedelta(days=7)
    # Someone else's coupon is nobody else's business.
    _, stranger = await new_member()
    node = await gql(
        client,
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": encode_id("MemberCoupon", fresh.id)},
        stranger,
    )
    assert node["data"]["node"] is None


async def test_staff_issue_to_members_and_to_a_level_within_the_limits(client: Any) -> None:
    token = await staff_token()
    await ensure_default_levels()
    gold = await MemberLevel.get(name="金卡会员")
    diamond = await MemberLevel.get(name="钻石会员")
    coupon = await new_coupon(name="金卡专享", public=False, total_quantity=100_000)
    golds = [
        await Member.create(
            openid=f"o_{secrets.token_hex(8)}",
            invite_code=secrets.token_hex(5).upper(),
            growth=gold.min_growth + i,
        )
        for i in range(3)
    ]
    above = await Member.create(
        openid=f"o_{secrets.token_hex(8)}",
        invite_code=secrets.token_hex(5).upper(),
        growth=diamond.min_growth,
    )
    issue = f"""mutation($id: ID!, $members: [ID!], $level: ID) {{
      couponIssue(id: $id, memberIds: $members, levelId: $level) {{ issued skipped soldOut {ERRORS} }} }}"""
    gid = encode_id("Coupon", coupon.id)
    by_level = await gql(client, issue, {"id": gid, "level": encode_id("MemberLevel", gold.id)}, token)
    result = by_level["data"]["couponIssue"]
    assert result["errors"] == [] and result["issued"] >= 3
    for member in golds:
        assert await MemberCoupon.filter(member_id=member.id, coupon_id=coupon.id).count() == 1
    assert not await MemberCoupon.filter(member_id=above.id, coupon_id=coupon.id).exists()

    # Again, by member: they hold the per-member limit already, so only the diamond member gets one.
    members = [encode_id("Member", m.id) for m in (*golds, above)]
    again = (await gql(client, issue, {"id": gid, "members": members}, token))["data"]["couponIssue"]
    assert (again["issued"], again["skipped"], again["soldOut"]) == (1, 3, False)
    both = (await gql(client, issue, {"id": gid}, token))["data"]["couponIssue"]
    assert codes_of(both) == ["BAD_USER_INPUT"]


async def test_redeem_codes_give_one_coupon_each_and_unknown_codes_tell_nothing(client: Any) -> None:
    token = await staff_token()
    coupon = await new_coupon(name="直播间兑换券", public=False, total_quantity=2)
    generate = f"""mutation($id: ID!, $n: Int!) {{ couponCodesGenerate(couponId: $id, count: $n) {{
      codes {ERRORS} }} }}"""
    made = (await gql(client, generate, {"id": encode_id("Coupon", coupon.id), "n": 3}, token))["data"]
    codes = made["couponCodesGenerate"]["codes"]
    assert len(set(codes)) == 3 and all(len(c) == 12 for c in codes)

    member, shopper = await new_member()
    redeemed = (await gql(client, REDEEM, {"code": codes[0].lower()}, shopper))["data"]["couponRedeemCode"]
    assert redeemed["errors"] == [] and redeemed["memberCoupon"]["source"] == "CODE"
    again = (await gql(client, REDEEM, {"code": codes[0]}, shopper))["data"]["couponRedeemCode"]
    assert codes_of(again) == ["CONFLICT"]
    # The per-member limit (1) refuses the second code, which stays unused for someone else.
    limited = (await gql(client, REDEEM, {"code": codes[1]}, shopper))["data"]["couponRedeemCode"]
    assert codes_of(limited) == ["LIMIT_EXCEEDED"]
    assert (await CouponCode.get(code=codes[1])).member_id is None
    _, other = await new_member()
    assert (await gql(client, REDEEM, {"code": codes[1]}, other))["data"]["couponRedeemCode"]["errors"] == []
    # The total (2) is handed out: the third code is refused and stays unused.
    _, third = await new_member()
    sold = (await gql(client, REDEEM, {"code": codes[2]}, third))["data"]["couponRedeemCode"]
    assert codes_of(sold) == ["SOLD_OUT"] and (await CouponCode.get(code=codes[2])).member_id is None
    unknown = (await gql(client, REDEEM, {"code": "NOPE"}, third))["data"]["couponRedeemCode"]
    assert codes_of(unknown) == ["NOT_FOUND"]
    assert (await MemberCoupon.get(member_id=member.id)).coupon_id == coupon.id  # type: ignore[attr-defined]


async def test_rules_of_a_held_coupon_cannot_change_but_its_total_can_grow(client: Any) -> None:
    token = await staff_token()
    coupon = await new_coupon(kind=CouponKind.THRESHOLD, amount_off=2000, min_amount=10000, total_quantity=1)
    member, _ = await new_member()
    await wallet.grant(member.id, coupon.id, CouponSource.ISSUED)
    gid = encode_id("Coupon", coupon.id)
    bait = (await gql(client, UPDATE, {"id": gid, "input": {"minAmount": 50000}}, token))["data"][
        "couponUpdate"
    ]
    assert [(e["code"], e["field"]) for e in bait["errors"]] == [("CONFLICT", "input.minAmount")]
    grown = await gql(client, UPDATE, {"id": gid, "input": {"totalQuantity": 10, "name": "加量"}}, token)
    assert grown["data"]["couponUpdate"]["coupon"]["totalQuantity"] == 10
    stop = f"mutation($id: ID!) {{ couponStop(id: $id) {{ coupon {{ status }} {ERRORS} }} }}"
    assert (await gql(client, stop, {"id": gid}, token))["data"]["couponStop"]["coupon"][
        "status"
    ] == "STOPPED"
    with pytest.raises(DomainError) as stopped:
        await wallet.grant(member.id, coupon.id, CouponSource.ISSUED)
    assert stopped.value.code == ErrorCode.CONFLICT


# --- Races ---------------------------------------------------------------------------------------------------


async def race_claims(coupon: Coupon, members: list[Member], claims_each: int) -> list[Any]:
    async def one(member: Member) -> Any:
        try:
            return await wallet.claim(member.id, coupon.id)
        except DomainError as exc:
            return exc.code

    return await asyncio.gather(*(one(m) for m in members for _ in range(claims_each)))


async def test_500_concurrent_claims_of_100_coupons_give_exactly_100_and_respect_the_member_limit() -> None:
    coupon = await new_coupon(name="秒杀券", total_quantity=100, per_member_limit=2)
    members = [
        await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper())
        for _ in range(125)
    ]
    outcomes = await race_claims(coupon, members, claims_each=4)
    assert len(outcomes) == 500
    won = [o for o in outcomes if isinstance(o, MemberCoupon)]
    assert len(won) == 100
    assert {o for o in outcomes if not isinstance(o, MemberCoupon)} <= {
        ErrorCode.SOLD_OUT,
        ErrorCode.LIMIT_EXCEEDED,
    }
    await assert_claims_consistent(coupon.id, expected=100, per_member=2)


async def assert_claims_consistent(coupon_id: int, expected: int, per_member: int) -> None:
    """The template's count, the held rows and each member's numbers agree, and no member holds too many."""
    assert (await Coupon.get(id=coupon_id)).issued == expected
    rows = await MemberCoupon.filter(coupon_id=coupon_id).values_list("member_id", "seq")
    assert len(rows) == expected
    per: dict[int, list[int]] = {}
    for member_id, seq in rows:
        per.setdefault(member_id, []).append(seq)
    assert all(
        sorted(seqs) == list(range(1, len(seqs) + 1)) and len(seqs) <= per_member for seqs in per.values()
    )
