"""Group buys (拼团), a shop's day: staff set up a rule, a leader opens a group by paying, friends join by its
share link, the full group ships; a group that expires short of members fails and every paid member is refunded
once through WeChat Pay; 虚拟成团 completes a nearly full one; unpaid seats are given back; limits hold."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest

from infra.clock import now
from models import (
    AuditLog,
    GroupBuy,
    GroupBuyQuota,
    GroupBuySeat,
    GroupBuyStatus,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    Refund,
    RefundStatus,
    Sku,
    StaffRole,
)
from schema.node import decode_id, encode_id
from services.access.staff import create_staff
from services.errors import DomainError
from services.marketing.group_buy.groups import refund_key
from services.orders import fulfilment
from services.orders.sweeper import sweep_once
from services.payments.notifications import handle_payment_notification, handle_refund_notification
from services.payments.refunds import refund_number
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku
from tests.test_checkout import PLACE
from tests.test_payments import ok
from tests.wechat_pay_standin import WeChatPayStandIn

ERRORS = "errors { field message code }"
RULE_FIELDS = (
    "id title groupPrice groupSize hoursToFill perMemberLimit virtualMembers startsAt endsAt stoppedAt"
)
CREATE = f"""mutation($input: GroupBuyRuleInput!) {{ groupBuyRuleCreate(input: $input) {{
  rule {{ {RULE_FIELDS} }} {ERRORS} }} }}"""
STOP = f"mutation($id: ID!) {{ groupBuyRuleStop(id: $id) {{ rule {{ id stoppedAt }} {ERRORS} }} }}"
GROUP = """query($id: ID!) { groupBuy(id: $id) {
  id status size seatsLeft paidCount virtualCount expiresAt members { nickname leader } } }"""
ADMIN = """{ groupBuyRulesAdmin(first: 50) { edges { node { id
  stats { groupsOpening groupsOpen groupsFilled groupsFailed membersPaid } } } } }"""
RULES = """query($productId: ID) { groupBuyRules(productId: $productId, first: 5) { totalCount
  edges { node { id groupPrice openGroups { id seatsLeft } stats { groupsOpen } } } } }"""


async def staff(role: StaffRole = StaffRole.OPERATOR) -> str:
    _, token = await create_staff(f"groupbuy-{secrets.token_hex(3)}", role)
    return token


def rule_input(sku: Sku, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "skuId": encode_id("Sku", sku.id),
        "title": "三人团 特价",
        "groupPrice": 3000,
        "groupSize": 3,
        "hoursToFill": 24,
        "perMemberLimit": 2,
        "startsAt": (now() - timedelta(minutes=1)).isoformat(),
        "endsAt": (now() + timedelta(days=7)).isoformat(),
    }
    values.update(overrides)
    return values


async def new_rule(client: httpx.AsyncClient, sku: Sku, **overrides: Any) -> str:
    answer = (await gql(client, CREATE, {"input": rule_input(sku, **overrides)}, await staff()))["data"]
    assert answer["groupBuyRuleCreate"]["errors"] == [], answer
    return str(answer["groupBuyRuleCreate"]["rule"]["id"])


async def place(
    client: httpx.AsyncClient, token: str, address_id: int, sku: Sku, campaign_id: str, quantity: int = 1
) -> dict[str, Any]:
    item = {
        "skuId": encode_id("Sku", sku.id),
        "quantity": quantity,
        "campaign": {"kind": "GROUP_BUY", "id": campaign_id},
    }
    variables = {
        "input": {"addressId": encode_id("Address", address_id), "items": [item]},
        "key": secrets.token_hex(6),
    }
    return dict((await gql(client, PLACE, variables, token))["data"]["placeOrder"])


async def pay(pay_standin: WeChatPayStandIn, order_gid: str) -> Order:
    order_id = decode_id(order_gid, "Order")
    payment = await Payment.filter(order_id=order_id).order_by("-id").first()
    assert payment is not None
    assert ok(await handle_payment_notification(pay_standin.payment_notification(payment.out_trade_no)))
    return await Order.get(id=order_id)


async def shopper(nickname: str) -> tuple[Member, str, int]:
    member, token = await new_member()
    await Member.filter(id=member.id).update(nickname=nickname)
    return member, token, await new_address(member)


async def open_group(
    client: httpx.AsyncClient, pay_standin: WeChatPayStandIn, sku: Sku, rule_id: str, nickname: str = "团长"
) -> tuple[str, Order]:
    _, token, address = await shopper(nickname)
    placed = await place(client, token, address, sku, rule_id)
    assert placed["errors"] == [], placed
    order = await pay(pay_standin, placed["order"]["id"])
    seat = await GroupBuySeat.get(order_id=order.id)
    return encode_id("GroupBuy", seat.group_id), order  # type: ignore[attr-defined]


def codes(payload: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def test_staff_set_up_group_buys_with_typed_errors_and_audit_rows(client: httpx.AsyncClient) -> None:
    sku = await new_sku(price=5000, stock=20)
    token = await staff()
    bad = rule_input(
        sku,
        groupSize=1,
        groupPrice=6000,
        hoursToFill=0,
        perMemberLimit=0,
        virtualMembers=1,
        title="",
        endsAt=(now() - timedelta(days=2)).isoformat(),
    )
    refused = (await gql(client, CREATE, {"input": bad}, token))["data"]["groupBuyRuleCreate"]
    assert set(codes(refused)) == {
        ("BAD_USER_INPUT", "input.title"),
        ("BAD_USER_INPUT", "input.groupPrice"),
        ("BAD_USER_INPUT", "input.groupSize"),
        ("BAD_USER_INPUT", "input.hoursToFill"),
        ("BAD_USER_INPUT", "input.perMemberLimit"),
        ("BAD_USER_INPUT", "input.virtualMembers"),
        ("BAD_USER_INPUT", "input.endsAt"),
    }
    assert refused["rule"] is None
    member_token = (await new_member())[1]
    forbidden = (await gql(client, CREATE, {"input": rule_input(sku)}, member_token))["data"]
    assert codes(forbidden["groupBuyRuleCreate"]) == [("FORBIDDEN", None)]

    made = (await gql(client, CREATE, {"input": rule_input(sku)}, token))["data"]["groupBuyRuleCreate"]
    assert made["errors"] == [] and made["rule"]["groupSize"] == 3
    listed = await gql(client, RULES, {"productId": encode_id("Product", sku.product_id)}, member_token)
    [edge] = listed["data"]["groupBuyRules"]["edges"]
    assert edge["node"]["id"] == made["rule"]["id"] and edge["node"]["stats"] is None, "numbers are staff's"

    stopped = (await gql(client, STOP, {"id": made["rule"]["id"]}, token))["data"]["groupBuyRuleStop"]
    assert stopped["errors"] == [] and stopped["rule"]["stoppedAt"]
    listed = await gql(client, RULES, {"productId": encode_id("Product", sku.product_id)}, member_token)
    assert listed["data"]["groupBuyRules"]["totalCount"] == 0
    actions = await AuditLog.filter(action__startswith="groupBuyRule").order_by("-id").limit(3)
    assert [(a.action, a.succeeded) for a in actions] == [
        ("groupBuyRuleStop", True),
        ("groupBuyRuleCreate", True),
        ("groupBuyRuleCreate", False),
    ]


async def test_a_group_opens_on_the_leaders_payment_fills_and_only_then_ships(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient
) -> None:
    sku = await new_sku(price=5000, stock=20)
    rule_id = await new_rule(client, sku)
    _, leader_token, leader_address = await shopper("团长")
    placed = await place(client, leader_token, leader_address, sku, rule_id)
    assert placed["errors"] == [] and placed["order"]["payable"] == 3000 + 1000  # group price + shipping
    line = await OrderLine.get(order_id=decode_id(placed["order"]["id"], "Order"))
    assert line.campaign_kind == "GROUP_BUY" and line.campaign["leader"] is True
    group_gid = encode_id("GroupBuy", line.campaign_id or 0)

    # Nobody joins before the leader has paid.
    _, early_token, early_address = await shopper("早鸟")
    early = await place(client, early_token, early_address, sku, group_gid)
    assert codes(early) == [("CAMPAIGN_NOT_ACTIVE", "input.items[0].campaign.id")]

    leader_order = await pay(wechat_pay, placed["order"]["id"])
    shown = (await gql(client, GROUP, {"id": group_gid}))["data"]["groupBuy"]
    assert (shown["status"], shown["seatsLeft"], shown["paidCount"]) == ("OPEN", 2, 1)
    assert shown["members"] == [{"nickname": "团长", "leader": True}] and shown["expiresAt"]

    # Not shippable while the group forms.
    with pytest.raises(DomainError) as refused:
        await fulfilment.ship_order(leader_order.id, "SF", "SF100", None)
    assert refused.value.code == "CONFLICT"

    product = {"productId": encode_id("Product", sku.product_id)}
    listed = (await gql(client, RULES, product, early_token))["data"]["groupBuyRules"]["edges"]
    [offered] = [e["node"]["openGroups"] for e in listed if e["node"]["id"] == rule_id]
    assert offered == [{"id": group_gid, "seatsLeft": 2}], "the share page offers the open group"

    friends = [await shopper(f"朋友{i}") for i in range(2)]
    orders = []
    for _, token, address in friends:
        joined = await place(client, token, address, sku, group_gid)
        assert joined["errors"] == [], joined
        orders.append(joined["order"]["id"])
    # Every seat held (two of them still unpaid): the group is still OPEN but no longer offered to join.
    listed = (await gql(client, RULES, product, early_token))["data"]["groupBuyRules"]["edges"]
    assert [e["node"]["openGroups"] for e in listed if e["node"]["id"] == rule_id] == [[]]
    assert (await gql(client, GROUP, {"id": group_gid}))["data"]["groupBuy"]["status"] == "OPEN"
    # Every seat is held; a third friend is refused before anything is written.
    _, late_token, late_address = await shopper("迟到")
    late = await place(client, late_token, late_address, sku, group_gid)
    assert codes(late) == [("GROUP_FULL", "input.items[0].campaign.id")]
    assert (await Sku.get(id=sku.id)).stock == 17

    for order_gid in orders:
        await pay(wechat_pay, order_gid)
    shown = (await gql(client, GROUP, {"id": group_gid}))["data"]["groupBuy"]
    assert (shown["status"], shown["seatsLeft"], len(shown["members"])) == ("SUCCEEDED", 0, 3)
    shipped = await fulfilment.ship_order(leader_order.id, "SF", "SF100", None)
    assert shipped.status == OrderStatus.SHIPPED

    stats = (await gql(client, ADMIN, {}, await staff()))["data"]["groupBuyRulesAdmin"]["edges"]
    [mine] = [e["node"]["stats"] for e in stats if e["node"]["id"] == rule_id]
    assert mine == {
        "groupsOpening": 0,
        "groupsOpen": 0,
        "groupsFilled": 1,
        "groupsFailed": 0,
        "membersPaid": 3,
    }


async def test_an_expired_group_fails_and_refunds_every_paid_member_exactly_once(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient
) -> None:
    sku = await new_sku(price=5000, stock=20)
    rule_id = await new_rule(client, sku, groupSize=4)
    group_gid, leader_order = await open_group(client, wechat_pay, sku, rule_id)
    _, token, address = await shopper("付了款")
    paid_member = await pay(wechat_pay, (await place(client, token, address, sku, group_gid))["order"]["id"])
    _, token, address = await shopper("没付款")
    unpaid = await place(client, token, address, sku, group_gid)
    unpaid_id = decode_id(unpaid["order"]["id"], "Order")
    group = await GroupBuy.get(id=decode_id(group_gid, "GroupBuy"))
    assert group.expires_at is not None
    assert (await Order.get(id=unpaid_id)).pay_deadline <= group.expires_at, "no seat outlives its group"

    after = group.expires_at + timedelta(seconds=1)
    await asyncio.gather(sweep_once(after), sweep_once(after))  # two processes at once
    await sweep_once(after)
    group = await GroupBuy.get(id=group.id)
    assert group.status == GroupBuyStatus.FAILED and group.settled_at is None
    assert (await Order.get(id=unpaid_id)).status == OrderStatus.CANCELLED
    key = refund_key(group.id)
    for order in (leader_order, paid_member):
        [refund] = await Refund.filter(order_id=order.id)
        assert refund.out_refund_no == refund_number(order.id, key)
        assert (refund.amount, refund.status) == (order.paid_amount, RefundStatus.PENDING)
    asked = [call["out_refund_no"] for call in wechat_pay.calls("refund")]
    assert sorted(set(asked)) == sorted(r.out_refund_no for r in await Refund.filter(reason__contains="拼团"))

    for order in (leader_order, paid_member):
        member = await Member.get(id=order.member_id)  # type: ignore[attr-defined]
        assert member.points == order.paid_amount // 100, "paying earned purchase points"
        refund = await Refund.get(order_id=order.id)
        assert ok(await handle_refund_notification(wechat_pay.refund_notification(refund.out_refund_no)))
        assert ok(await handle_refund_notification(wechat_pay.refund_notification(refund.out_refund_no)))
        settled = await Order.get(id=order.id)
        assert (settled.status, settled.refunded_amount) == (OrderStatus.CANCELLED, order.paid_amount)
        assert (await Member.get(id=member.id)).points == 0, "the refund took them back, once"
    await sweep_once(after)
    group = await GroupBuy.get(id=group.id)
    assert group.settled_at is not None
    assert (await Sku.get(id=sku.id)).stock == 20, "every unit went back"
    assert not await GroupBuyQuota.filter(rule_id=group.rule_id, units__gt=0).exists()  # type: ignore[attr-defined]


async def test_virtual_members_complete_a_nearly_full_group_at_expiry(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient
) -> None:
    sku = await new_sku(price=5000, stock=20)
    rule_id = await new_rule(client, sku, groupSize=3, virtualMembers=1)
    group_gid, leader_order = await open_group(client, wechat_pay, sku, rule_id)
    group = await GroupBuy.get(id=decode_id(group_gid, "GroupBuy"))
    assert group.expires_at is not None
    # One member short of two: the head count of virtual members (1) does not cover it.
    await sweep_once(group.expires_at - timedelta(seconds=1))
    assert (await GroupBuy.get(id=group.id)).status == GroupBuyStatus.OPEN
    _, token, address = await shopper("第二人")
    await pay(wechat_pay, (await place(client, token, address, sku, group_gid))["order"]["id"])
    await sweep_once(group.expires_at + timedelta(seconds=1))
    shown = (await gql(client, GROUP, {"id": group_gid}))["data"]["groupBuy"]
    assert (shown["status"], shown["paidCount"], shown["virtualCount"]) == ("SUCCEEDED", 2, 1)
    assert not await Refund.filter(order_id=leader_order.id).exists()
    assert (await fulfilment.ship_order(leader_order.id, "SF", "SF200", None)).status == OrderStatus.SHIPPED


async def test_unpaid_seats_come_back_and_the_member_limit_holds_under_concurrency(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient
) -> None:
    sku = await new_sku(price=5000, stock=50)
    rule_id = await new_rule(client, sku, groupSize=2, perMemberLimit=1)
    group_gid, _ = await open_group(client, wechat_pay, sku, rule_id)
    _, token, address = await shopper("占座")
    held = await place(client, token, address, sku, group_gid)
    assert held["errors"] == []
    # The seat is held until the unpaid timeout, then given back.
    order = await Order.get(id=decode_id(held["order"]["id"], "Order"))
    await sweep_once(order.pay_deadline + timedelta(seconds=1))
    assert (await Order.get(id=order.id)).status == OrderStatus.CANCELLED
    shown = (await gql(client, GROUP, {"id": group_gid}))["data"]["groupBuy"]
    assert (shown["status"], shown["seatsLeft"]) == ("OPEN", 1)

    # Ten members race for the last seat: one gets it.
    racers = [await shopper(f"抢{i}") for i in range(10)]
    answers = await asyncio.gather(*(place(client, t, a, sku, group_gid) for _, t, a in racers))
    assert sorted(e["code"] for a in answers for e in a["errors"]).count("GROUP_FULL") == 9
    assert await GroupBuySeat.filter(group_id=decode_id(group_gid, "GroupBuy")).count() == 2

    # One member, one unit through this rule, also when two of their orders race.
    _, token, address = await shopper("贪心")
    raced = await asyncio.gather(*(place(client, token, address, sku, rule_id) for _ in range(3)))
    assert sum(1 for a in raced if not a["errors"]) == 1
    assert {e["code"] for a in raced for e in a["errors"]} <= {"LIMIT_EXCEEDED", "CONFLICT"}
    again = await place(client, token, address, sku, rule_id, quantity=2)
    assert codes(again) == [("LIMIT_EXCEEDED", "input.items[0].quantity")]
