"""Presales (预售), a shop's day: staff set one up (定金膨胀: pay ¥50, worth ¥100 off); a shopper pays the deposit,
is reminded once by subscribe message when the balance window opens, pays the balance in it (a second WeChat Pay
payment on the same order) and the order ships; another shopper lets the window close and forfeits the deposit
(as shown before paying) while the stock goes back; the shop refunds a deposit it cannot honour."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from infra.clock import now, set_clock
from infra.settings import get_settings
from models import (
    AfterSale,
    AfterSaleKind,
    AfterSaleStatus,
    AuditLog,
    Member,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStage,
    Presale,
    PresaleOrder,
    PresaleStage,
    Refund,
    RefundStatus,
    Sku,
    StaffRole,
)
from schema.node import decode_id, encode_id
from services.access.staff import create_staff
from services.orders import after_sales, fulfilment
from services.orders.sweeper import sweep_once
from services.payments.notifications import handle_payment_notification, handle_refund_notification
from tests.graphql_client import gql
from tests.test_cart import new_address, new_member, new_sku
from tests.test_checkout import PLACE
from tests.test_payments import ok
from tests.wechat_pay_standin import WeChatPayStandIn
from tests.wechat_standin import SUBSCRIBE_SEND, WeChatStandIn

ERRORS = "errors { field message code }"
CREATE = f"""mutation($input: PresaleInput!) {{ presaleCreate(input: $input) {{
  presale {{ id price deposit depositWorth balance total forfeitNotice }} {ERRORS} }} }}"""
PRESALE_ORDER = """query($orderId: ID!) { presaleOrder(orderId: $orderId) {
  stage deposit depositWorth balance forfeitNotice } }"""
ORDER_PAY = f"""mutation($orderId: ID!) {{ orderPay(orderId: $orderId) {{
  payParams {{ package }} {ERRORS} }} }}"""
ORDER_CANCEL = f"mutation($id: ID!) {{ orderCancel(id: $id) {{ order {{ status }} {ERRORS} }} }}"
REFUND_DEPOSIT = f"""mutation($orderId: ID!) {{ presaleRefundDeposit(orderId: $orderId) {{
  presaleOrder {{ stage }} {ERRORS} }} }}"""
ADMIN = """{ presalesAdmin(first: 50) { edges { node { id
  stats { depositsPaid waitingForBalance balancesPaid forfeited cancelled } } } } }"""

DEPOSIT_OPENS = timedelta(minutes=-1)
BALANCE_OPENS = timedelta(hours=2)
BALANCE_CLOSES = timedelta(hours=26)


@pytest.fixture
def clock() -> Iterator[list[datetime]]:
    moment = [now()]
    set_clock(lambda: moment[0])
    yield moment
    set_clock(None)


async def staff(role: StaffRole = StaffRole.ADMIN) -> str:
    _, token = await create_staff(f"presale-{secrets.token_hex(3)}", role)
    return token


def presale_input(sku: Sku, start: datetime, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "skuId": encode_id("Sku", sku.id),
        "title": "新品预售",
        "price": 20000,
        "deposit": 5000,
        "depositWorth": 10000,
        "perMemberLimit": 2,
        "depositStartsAt": (start + DEPOSIT_OPENS).isoformat(),
        "depositEndsAt": (start + timedelta(hours=1)).isoformat(),
        "balanceStartsAt": (start + BALANCE_OPENS).isoformat(),
        "balanceEndsAt": (start + BALANCE_CLOSES).isoformat(),
    }
    values.update(overrides)
    return values


async def buy(
    client: httpx.AsyncClient, token: str, address: int, sku: Sku, presale_id: str, quantity: int = 1
) -> dict[str, Any]:
    item = {
        "skuId": encode_id("Sku", sku.id),
        "quantity": quantity,
        "campaign": {"kind": "PRESALE", "id": presale_id},
    }
    variables = {
        "input": {"addressId": encode_id("Address", address), "items": [item]},
        "key": secrets.token_hex(6),
    }
    return dict((await gql(client, PLACE, variables, token))["data"]["placeOrder"])


async def pay_latest(standin: WeChatPayStandIn, order_id: int) -> Payment:
    payment = await Payment.filter(order_id=order_id).order_by("-id").first()
    assert payment is not None
    assert ok(await handle_payment_notification(standin.payment_notification(payment.out_trade_no)))
    return await Payment.get(id=payment.id)


async def deposit_paid_order(
    client: httpx.AsyncClient, standin: WeChatPayStandIn, sku: Sku, presale_id: str
) -> tuple[Member, Order]:
    member, token = await new_member()
    address = await new_address(member)
    placed = await buy(client, token, address, sku, presale_id)
    assert placed["errors"] == [], placed
    order_id = decode_id(placed["order"]["id"], "Order")
    await pay_latest(standin, order_id)
    return member, await Order.get(id=order_id)


def codes(payload: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def test_staff_set_up_presales_with_typed_errors_and_audit_rows(client: httpx.AsyncClient) -> None:
    sku = await new_sku(price=25000, stock=10)
    token = await staff()
    start = now()
    bad = presale_input(
        sku,
        start,
        deposit=5000,
        depositWorth=4000,
        balanceStartsAt=(start + timedelta(minutes=30)).isoformat(),
        perMemberLimit=0,
    )
    refused = (await gql(client, CREATE, {"input": bad}, token))["data"]["presaleCreate"]
    assert set(codes(refused)) == {
        ("BAD_USER_INPUT", "input.depositWorth"),
        ("BAD_USER_INPUT", "input.balanceStartsAt"),
        ("BAD_USER_INPUT", "input.perMemberLimit"),
    }
    too_much = presale_input(sku, start, deposit=20000)
    refused = (await gql(client, CREATE, {"input": too_much}, token))["data"]["presaleCreate"]
    assert ("BAD_USER_INPUT", "input.deposit") in codes(refused)
    made = (await gql(client, CREATE, {"input": presale_input(sku, start)}, token))["data"]["presaleCreate"]
    assert made["errors"] == []
    shown = made["presale"]
    assert (shown["balance"], shown["total"]) == (10000, 15000), "¥50 is worth ¥100: ¥150 in all"
    assert "定金不退" in shown["forfeitNotice"]
    actions = await AuditLog.filter(action="presaleCreate").order_by("-id").limit(3)
    assert [a.succeeded for a in actions] == [True, False, False]


async def test_deposit_then_balance_in_its_window_two_payments_one_order(
    seeded: None,
    wechat_pay: WeChatPayStandIn,
    wechat: WeChatStandIn,
    client: httpx.AsyncClient,
    clock: list[datetime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One mini-program: WeChat Pay must know the appid the subscribe messages are sent for.
    monkeypatch.setattr(wechat_pay, "appid", wechat.appid)
    monkeypatch.setattr(get_settings(), "wechat_appid", wechat.appid)
    monkeypatch.setattr(get_settings(), "wechat_presale_balance_template_id", "tpl-balance")
    sku = await new_sku(price=25000, stock=10)
    start = clock[0]
    made = (await gql(client, CREATE, {"input": presale_input(sku, start)}, await staff()))["data"]
    presale_id = made["presaleCreate"]["presale"]["id"]
    member, token = await new_member()
    address = await new_address(member)
    placed = await buy(client, token, address, sku, presale_id)
    assert placed["errors"] == [] and placed["order"]["payable"] == 15000
    order_id = decode_id(placed["order"]["id"], "Order")
    shown = (await gql(client, PRESALE_ORDER, {"orderId": placed["order"]["id"]}, token))["data"][
        "presaleOrder"
    ]
    assert (shown["stage"], shown["deposit"], shown["balance"]) == ("DEPOSIT_DUE", 5000, 10000)
    assert "定金不退" in shown["forfeitNotice"], "the shopper sees the forfeit rule before paying"
    assert wechat_pay.calls("unifiedorder")[-1]["total_fee"] == "5000"

    deposit = await pay_latest(wechat_pay, order_id)
    order = await Order.get(id=order_id)
    assert (deposit.stage, order.status, order.paid_amount) == (
        PaymentStage.DEPOSIT,
        OrderStatus.PENDING_PAYMENT,
        5000,
    )
    assert order.pay_deadline == (await Presale.get(id=decode_id(presale_id, "Presale"))).balance_ends_at
    # Before the window: no balance payment, and the deposit holds the order (no cancelling it away).
    early = (await gql(client, ORDER_PAY, {"orderId": placed["order"]["id"]}, token))["data"]["orderPay"]
    assert codes(early) == [("ORDER_NOT_PAYABLE", None)]
    cancel = (await gql(client, ORDER_CANCEL, {"id": placed["order"]["id"]}, token))["data"]["orderCancel"]
    assert codes(cancel) == [("CONFLICT", "id")]
    await sweep_once(start + timedelta(hours=1))
    assert not wechat.calls(SUBSCRIBE_SEND)

    # The window opens: one reminder, however many sweeps.
    clock[0] = start + BALANCE_OPENS + timedelta(minutes=1)
    await sweep_once(clock[0])
    await sweep_once(clock[0])
    [reminder] = wechat.calls(SUBSCRIBE_SEND)
    assert (reminder.body or {})["touser"] == member.openid
    assert (reminder.body or {})["template_id"] == "tpl-balance"

    paying = (await gql(client, ORDER_PAY, {"orderId": placed["order"]["id"]}, token))["data"]["orderPay"]
    assert paying["errors"] == [] and paying["payParams"]["package"].startswith("prepay_id=")
    assert wechat_pay.calls("unifiedorder")[-1]["total_fee"] == "10000"
    balance = await pay_latest(wechat_pay, order_id)
    assert ok(await handle_payment_notification(wechat_pay.payment_notification(balance.out_trade_no)))
    order = await Order.get(id=order_id)
    assert (balance.stage, order.status, order.paid_amount) == (PaymentStage.BALANCE, OrderStatus.PAID, 15000)
    assert order.transaction_id == balance.transaction_id
    row = await PresaleOrder.get(order_id=order_id)
    assert (row.stage, row.deposit_payment_id, row.balance_payment_id) == (
        PresaleStage.BALANCE_PAID,
        deposit.id,
        balance.id,
    )
    assert not await Refund.filter(order_id=order_id).exists(), "neither payment was taken for an extra one"
    assert (await fulfilment.ship_order(order_id, "SF", "SF300", None)).status == OrderStatus.SHIPPED


async def test_an_unpaid_balance_forfeits_the_deposit_and_releases_the_stock(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient, clock: list[datetime]
) -> None:
    sku = await new_sku(price=25000, stock=10)
    start = clock[0]
    token = await staff()
    made = (await gql(client, CREATE, {"input": presale_input(sku, start)}, token))["data"]
    presale_id = made["presaleCreate"]["presale"]["id"]
    _, order = await deposit_paid_order(client, wechat_pay, sku, presale_id)
    _, refunded = await deposit_paid_order(client, wechat_pay, sku, presale_id)
    assert (await Sku.get(id=sku.id)).stock == 8

    # The shop cannot honour one of them: its deposit goes back in full, its unit back to stock.
    service = await staff(StaffRole.CUSTOMER_SERVICE)
    answer = (await gql(client, REFUND_DEPOSIT, {"orderId": encode_id("Order", refunded.id)}, service))[
        "data"
    ]
    assert (
        answer["presaleRefundDeposit"]["errors"] == []
        and answer["presaleRefundDeposit"]["presaleOrder"]["stage"] == "CANCELLED"
    )
    again = (await gql(client, REFUND_DEPOSIT, {"orderId": encode_id("Order", refunded.id)}, service))["data"]
    assert again["presaleRefundDeposit"]["errors"] == []
    [refund] = await Refund.filter(order_id=refunded.id)
    assert refund.amount == 5000
    assert ok(await handle_refund_notification(wechat_pay.refund_notification(refund.out_refund_no)))
    assert (await Refund.get(id=refund.id)).status == RefundStatus.SUCCEEDED
    assert (await Order.get(id=refunded.id)).status == OrderStatus.CANCELLED
    assert (await Sku.get(id=sku.id)).stock == 9

    # A deposit is paid in the deposit window only: an order still unpaid when it closes cannot pay it any more.
    member, member_token = await new_member()
    late = await buy(client, member_token, await new_address(member), sku, presale_id)
    clock[0] = start + timedelta(hours=1, seconds=1)
    refused = (await gql(client, ORDER_PAY, {"orderId": late["order"]["id"]}, member_token))["data"][
        "orderPay"
    ]
    assert codes(refused) == [("ORDER_NOT_PAYABLE", None)]

    # Still inside the window the sweeper leaves the other one alone; once it has closed, the deposit is forfeited.
    clock[0] = start + BALANCE_CLOSES - timedelta(minutes=1)
    await sweep_once(clock[0])
    assert (await Order.get(id=order.id)).status == OrderStatus.PENDING_PAYMENT
    clock[0] = start + BALANCE_CLOSES + timedelta(seconds=1)
    await sweep_once(clock[0])
    forfeited = await Order.get(id=order.id)
    assert (forfeited.status, forfeited.paid_amount) == (OrderStatus.CANCELLED, 5000)
    assert (await PresaleOrder.get(order_id=order.id)).stage == PresaleStage.FORFEITED
    assert not await Refund.filter(order_id=order.id).exists(), "a forfeited deposit is kept"
    assert (await Sku.get(id=sku.id)).stock == 10

    admin = (await gql(client, ADMIN, {}, token))["data"]["presalesAdmin"]["edges"]
    [stats] = [e["node"]["stats"] for e in admin if e["node"]["id"] == presale_id]
    assert stats == {
        "depositsPaid": 1,
        "waitingForBalance": 0,
        "balancesPaid": 0,
        "forfeited": 1,
        "cancelled": 2,
    }


REFUND_ORDER = f"""mutation($orderId: ID!, $input: RefundOrderInput!, $key: String!) {{
  refundOrder(orderId: $orderId, input: $input, idempotencyKey: $key) {{
    refund {{ outRefundNo amount status }} {ERRORS} }} }}"""


async def balance_paid_order(
    client: httpx.AsyncClient, standin: WeChatPayStandIn, clock: list[datetime], sku: Sku
) -> tuple[Order, Payment, Payment]:
    """A presale order of one unit (¥50 deposit worth ¥100, ¥100 balance, so ¥150 in two payments), paid in
    full: (order, deposit payment, balance payment)."""
    start = clock[0]
    made = (await gql(client, CREATE, {"input": presale_input(sku, start)}, await staff()))["data"]
    member, token = await new_member()
    placed = await buy(client, token, await new_address(member), sku, made["presaleCreate"]["presale"]["id"])
    assert placed["errors"] == [] and placed["order"]["payable"] == 15000
    order_id = decode_id(placed["order"]["id"], "Order")
    deposit = await pay_latest(standin, order_id)
    clock[0] = start + BALANCE_OPENS + timedelta(minutes=1)
    paying = (await gql(client, ORDER_PAY, {"orderId": placed["order"]["id"]}, token))["data"]["orderPay"]
    assert paying["errors"] == []
    balance = await pay_latest(standin, order_id)
    order = await Order.get(id=order_id)
    assert (order.status, order.paid_amount, deposit.amount, balance.amount) == (
        OrderStatus.PAID,
        15000,
        5000,
        10000,
    )
    return order, deposit, balance


def refunded_at_wechat(standin: WeChatPayStandIn, payment: Payment) -> list[int]:
    """The refunds WeChat Pay was asked for against `payment`, one entry per refund number."""
    asked = {
        c["out_refund_no"]: c for c in standin.calls("refund") if c["out_trade_no"] == payment.out_trade_no
    }
    assert all(int(c["total_fee"]) == payment.amount for c in asked.values()), "each against its own payment"
    return sorted(int(c["refund_fee"]) for c in asked.values())


async def test_a_whole_refund_after_the_balance_returns_both_payments_each_exactly_once(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient, clock: list[datetime]
) -> None:
    sku = await new_sku(price=25000, stock=10)
    order, deposit, balance = await balance_paid_order(client, wechat_pay, clock, sku)
    service = await staff(StaffRole.CUSTOMER_SERVICE)
    variables = {"orderId": encode_id("Order", order.id), "input": {"reason": "缺货"}, "key": "whole"}
    answer = (await gql(client, REFUND_ORDER, variables, service))["data"]["refundOrder"]
    assert answer["errors"] == [] and answer["refund"]["status"] == "PENDING"
    # A retried click is the same refund: nothing is asked of WeChat twice under another number.
    again = (await gql(client, REFUND_ORDER, variables, service))["data"]["refundOrder"]
    assert again["errors"] == [] and again["refund"]["outRefundNo"] == answer["refund"]["outRefundNo"]
    assert refunded_at_wechat(wechat_pay, balance) == [10000]
    assert refunded_at_wechat(wechat_pay, deposit) == [5000]
    rows = await Refund.filter(order_id=order.id).order_by("id")
    assert [(r.amount, r.payment_id) for r in rows] == [(10000, balance.id), (5000, deposit.id)]  # type: ignore[attr-defined]

    # WeChat settles the deposit's refund first (and says so twice): its money is the order's, its units
    # come back with the balance's refund.
    part = rows[1]
    for _ in range(2):
        assert ok(await handle_refund_notification(wechat_pay.refund_notification(part.out_refund_no)))
    half = await Order.get(id=order.id)
    assert (half.status, half.refunded_amount) == (OrderStatus.PAID, 5000)
    assert (await Sku.get(id=sku.id)).stock == 9
    for _ in range(2):
        assert ok(await handle_refund_notification(wechat_pay.refund_notification(rows[0].out_refund_no)))
    done = await Order.get(id=order.id)
    assert (done.status, done.refunded_amount) == (OrderStatus.CANCELLED, 15000)
    [line] = await OrderLine.filter(order_id=order.id)
    assert (line.refunded_quantity, line.refunded_amount) == (1, 15000)
    assert (await Sku.get(id=sku.id)).stock == 10, "the unit came back once"
    assert [r.status for r in await Refund.filter(order_id=order.id)] == [RefundStatus.SUCCEEDED] * 2
    over = (await gql(client, REFUND_ORDER, {**variables, "key": "more"}, service))["data"]["refundOrder"]
    assert codes(over) == [("REFUND_EXCEEDS_PAID", "input.amount")]


async def test_a_partial_refund_takes_the_balance_first_then_the_deposit(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient, clock: list[datetime]
) -> None:
    sku = await new_sku(price=25000, stock=10)
    order, deposit, balance = await balance_paid_order(client, wechat_pay, clock, sku)
    service = await staff(StaffRole.CUSTOMER_SERVICE)
    order_gid = encode_id("Order", order.id)
    first = {"orderId": order_gid, "input": {"reason": "差价", "amount": 12000}, "key": "p1"}
    answer = (await gql(client, REFUND_ORDER, first, service))["data"]["refundOrder"]
    assert answer["errors"] == []
    assert refunded_at_wechat(wechat_pay, balance) == [10000]
    assert refunded_at_wechat(wechat_pay, deposit) == [2000]
    for refund in await Refund.filter(order_id=order.id):
        assert ok(await handle_refund_notification(wechat_pay.refund_notification(refund.out_refund_no)))
    kept = await Order.get(id=order.id)
    assert (kept.status, kept.refunded_amount) == (OrderStatus.PAID, 12000)

    # The rest can only come from the deposit: one refund of it, which leaves nothing paid.
    rest = {"orderId": order_gid, "input": {"reason": "取消"}, "key": "p2"}
    answer = (await gql(client, REFUND_ORDER, rest, service))["data"]["refundOrder"]
    assert answer["errors"] == [] and answer["refund"]["amount"] == 3000
    assert refunded_at_wechat(wechat_pay, deposit) == [2000, 3000]
    assert refunded_at_wechat(wechat_pay, balance) == [10000]
    assert ok(
        await handle_refund_notification(wechat_pay.refund_notification(answer["refund"]["outRefundNo"]))
    )
    done = await Order.get(id=order.id)
    assert (done.status, done.refunded_amount) == (OrderStatus.CANCELLED, 15000)
    assert (await Sku.get(id=sku.id)).stock == 10


async def test_an_after_sale_of_a_presale_order_is_refunded_from_both_payments_and_done_when_both_are(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient, clock: list[datetime]
) -> None:
    sku = await new_sku(price=25000, stock=10)
    order, deposit, balance = await balance_paid_order(client, wechat_pay, clock, sku)
    [line] = await OrderLine.filter(order_id=order.id)
    member_id: int = order.member_id  # type: ignore[attr-defined]
    asked = await after_sales.request_after_sale(
        member_id, order.id, AfterSaleKind.REFUND_ONLY, [after_sales.LineRequest(line.id, 1)], "不想要了"
    )
    await after_sales.approve(asked.id, None)
    rows = await Refund.filter(order_id=order.id).order_by("id")
    assert [(r.amount, r.payment_id, r.after_sale_id) for r in rows] == [  # type: ignore[attr-defined]
        (10000, balance.id, asked.id),
        (5000, deposit.id, None),
    ]
    assert refunded_at_wechat(wechat_pay, balance) == [10000]
    assert refunded_at_wechat(wechat_pay, deposit) == [5000]
    assert ok(await handle_refund_notification(wechat_pay.refund_notification(rows[0].out_refund_no)))
    assert (await AfterSale.get(id=asked.id)).status == AfterSaleStatus.REFUNDING, "half of it is back"
    assert ok(await handle_refund_notification(wechat_pay.refund_notification(rows[1].out_refund_no)))
    assert (await AfterSale.get(id=asked.id)).status == AfterSaleStatus.REFUNDED
    done = await Order.get(id=order.id)
    assert (done.status, done.refunded_amount) == (OrderStatus.CANCELLED, 15000)
    assert (await OrderLine.get(id=line.id)).refunded_amount == 15000


async def test_the_per_member_limit_holds_and_a_cancelled_order_gives_its_units_back(
    seeded: None, wechat_pay: WeChatPayStandIn, client: httpx.AsyncClient
) -> None:
    sku = await new_sku(price=25000, stock=10)
    made = (await gql(client, CREATE, {"input": presale_input(sku, now())}, await staff()))["data"]
    presale_id = made["presaleCreate"]["presale"]["id"]
    member, token = await new_member()
    address = await new_address(member)
    first = await buy(client, token, address, sku, presale_id, quantity=2)
    assert first["errors"] == [], first
    over = await buy(client, token, address, sku, presale_id)
    assert codes(over) == [("LIMIT_EXCEEDED", "input.items[0].quantity")]
    assert "At most 2 per member in this presale" in over["errors"][0]["message"]
    cancelled = (await gql(client, ORDER_CANCEL, {"id": first["order"]["id"]}, token))["data"]["orderCancel"]
    assert cancelled["errors"] == [] and cancelled["order"]["status"] == "CANCELLED"
    again = await buy(client, token, address, sku, presale_id, quantity=2)
    assert again["errors"] == [], "the cancelled order's two units count no more"
