"""A shop's day after checkout: orders paid, shipped, received, completed or cancelled, on time, by the table.

Orders are made directly with the models here (checkout has its own tests), then driven through
`order_states.transition`, the sweeper and the GraphQL API.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from tortoise.expressions import F
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from infra.clock import now, set_clock
from infra.settings import Settings, get_settings
from models import (
    ActorKind,
    AfterSale,
    AfterSaleKind,
    AfterSaleStatus,
    Member,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    PointsEntry,
    PointsReason,
    Product,
    Shop,
    Sku,
    StaffRole,
)
from schema.node import encode_id
from services.access.staff import create_staff
from services.errors import DomainError, ErrorCode
from services.loyalty.points import change_points
from services.members.tokens import ACCESS_TTL, issue_tokens, revoke_session
from services.orders import after_sales, fulfilment
from services.orders import states as order_states
from services.orders.sweeper import register_sweep_job, sweep_once, unregister_sweep_job
from tests.graphql_client import gql
from tests.server_process import child_env, running_server
from tests.test_members import serving
from tests.wechat_standin import SUBSCRIBE_SEND, UPLOAD_SHIPPING_INFO, WeChatStandIn

S = OrderStatus
ERRORS = "errors { field message code }"


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    yield
    set_clock(None)


async def new_member(points: int = 0) -> tuple[Member, str]:
    member = await Member.create(openid=f"o_{secrets.token_hex(8)}", invite_code=secrets.token_hex(5).upper())
    if points:
        await change_points(member.id, points, PointsReason.ADJUSTMENT, f"seed-{secrets.token_hex(4)}")
    return member, (await issue_tokens(member)).access_token


async def a_sku(stock: int = 100) -> Sku:
    sku = await Sku.filter(product__status="ON_SALE").order_by("id").first()
    if sku is None:
        sku = await Sku.all().order_by("id").first()
    assert sku is not None, "the demo shop is seeded"
    # The product's total follows its SKUs (the seed's invariant, checked by test_seed).
    await Product.filter(id=sku.product_id).update(total_stock=F("total_stock") + (stock - sku.stock))  # type: ignore[attr-defined]
    await Sku.filter(id=sku.id).update(stock=stock)
    return await Sku.get(id=sku.id)


async def place(
    member: Member,
    *,
    quantity: int = 2,
    unit_price: int = 5000,
    points_used: int = 0,
    status: OrderStatus = S.PENDING_PAYMENT,
    pay_in: timedelta = timedelta(minutes=30),
    sku: Sku | None = None,
) -> Order:
    """An order as checkout leaves it: stock already taken, points already spent."""
    sku = sku or await a_sku()
    shop = await Shop.all().first()
    assert shop is not None
    total = unit_price * quantity
    order = await Order.create(
        number=secrets.token_hex(8).upper(),
        shop=shop,
        member=member,
        status=status,
        items_total=total,
        points_used=points_used,
        points_discount=points_used,
        payable=total - points_used,
        paid_amount=total - points_used if status != S.PENDING_PAYMENT else 0,
        address={"name": "林晓", "phone": "13800138000", "province": "广东省"},
        idempotency_key=secrets.token_hex(8),
        pay_deadline=now() + pay_in,
    )
    await OrderLine.create(
        order=order,
        product_id=sku.product_id,  # type: ignore[attr-defined]
        sku_id=sku.id,
        title="测试商品",
        unit_price=unit_price,
        quantity=quantity,
        line_total=total,
    )
    await Sku.filter(id=sku.id).update(stock=F("stock") - quantity)
    await Product.filter(id=sku.product_id).update(total_stock=F("total_stock") - quantity)  # type: ignore[attr-defined]
    if points_used:
        await change_points(member.id, -points_used, PointsReason.CHECKOUT, f"order:{order.number}:checkout")
    return order


async def paid_order(member: Member, **kwargs: Any) -> Order:
    order = await place(member, **kwargs)
    return await order_states.transition(order.id, S.PAID, actor=ActorKind.WECHAT, paid_amount=order.payable)


async def staff_token(role: StaffRole) -> str:
    _, token = await create_staff(f"orders-{role.value.lower()}-{secrets.token_hex(3)}", role)
    return token


# --- The transition table ------------------------------------------------------------------------------------


async def test_the_table_allows_exactly_its_transitions_and_records_each(
    seeded: None, runtime: object
) -> None:
    member, _ = await new_member()
    for from_status, allowed in order_states.TRANSITIONS.items():
        for to in S:
            if to == from_status:
                continue
            order = await place(member, status=from_status)
            if to in allowed:
                moved = await order_states.transition(
                    order.id, to, actor=ActorKind.STAFF, actor_id=7, reason="t"
                )
                assert moved.status == to
                event = await OrderEvent.filter(order_id=order.id).order_by("-id").first()
                assert event is not None
                assert (event.from_status, event.to_status, event.actor, event.actor_id, event.reason) == (
                    from_status.value,
                    to.value,
                    ActorKind.STAFF,
                    7,
                    "t",
                )
            else:
                with pytest.raises(DomainError) as refused:
                    await order_states.transition(order.id, to, actor=ActorKind.STAFF)
                assert refused.value.code == ErrorCode.CONFLICT
                assert (await Order.get(id=order.id)).status == from_status
                assert not await OrderEvent.filter(order_id=order.id).exists()


async def test_a_repeated_transition_changes_nothing(seeded: None, runtime: object) -> None:
    member, _ = await new_member()
    order = await paid_order(member)
    again = await order_states.transition(order.id, S.PAID, actor=ActorKind.WECHAT)
    assert again.paid_at == order.paid_at
    assert await OrderEvent.filter(order_id=order.id).count() == 1
    # Purchase rewards once: 1 growth and 1 point per yuan (100 yuan here).
    member = await Member.get(id=member.id)
    assert member.growth == 100 and member.points == 100
    with pytest.raises(DomainError) as unknown:
        await order_states.transition(2**31 - 1, S.PAID, actor=ActorKind.WECHAT)
    assert unknown.value.code == ErrorCode.NOT_FOUND


async def test_racing_transitions_make_one_change(seeded: None, runtime: object) -> None:
    member, _ = await new_member()
    order = await place(member)
    results = await asyncio.gather(
        *(order_states.transition(order.id, S.PAID, actor=ActorKind.WECHAT) for _ in range(5)),
        return_exceptions=True,
    )
    assert all(not isinstance(r, BaseException) and r.status == S.PAID for r in results), results
    assert await OrderEvent.filter(order_id=order.id).count() == 1
    assert (await Member.get(id=member.id)).growth == 100


async def test_cancelling_an_unpaid_order_returns_stock_and_points(seeded: None, runtime: object) -> None:
    member, _ = await new_member(points=500)
    sku = await a_sku(stock=10)
    product_stock = (await Product.get(id=sku.product_id)).total_stock  # type: ignore[attr-defined]
    order = await place(member, quantity=3, points_used=200, sku=sku)
    assert (await Sku.get(id=sku.id)).stock == 7
    assert (await Member.get(id=member.id)).points == 300

    async with runtime.bus.subscribe(f"stock:{sku.product_id}") as events:  # type: ignore[attr-defined]
        cancelled = await fulfilment.cancel_order(member.id, order.id, "不想要了")
        async with asyncio.timeout(5):
            event = await anext(events)
    # The event carries the product's total too (cached pages fill their stock holes from it).
    assert event == {
        "productId": sku.product_id,  # type: ignore[attr-defined]
        "skuId": sku.id,
        "stock": 10,
        "totalStock": product_stock,
    }
    assert cancelled.status == S.CANCELLED and cancelled.cancel_reason == "不想要了"
    assert (await Sku.get(id=sku.id)).stock == 10
    assert (await Product.get(id=sku.product_id)).total_stock == product_stock  # type: ignore[attr-defined]
    assert (await Member.get(id=member.id)).points == 500
    assert await PointsEntry.filter(
        member_id=member.id, idempotency_key=f"order:{order.number}:cancel"
    ).exists()
    # Again: nothing more comes back.
    await fulfilment.cancel_order(member.id, order.id)
    assert (await Sku.get(id=sku.id)).stock == 10 and (await Member.get(id=member.id)).points == 500

    other, _ = await new_member()
    with pytest.raises(DomainError) as foreign:
        await fulfilment.cancel_order(other.id, order.id)
    assert foreign.value.code == ErrorCode.NOT_FOUND
    paid = await paid_order(member)
    with pytest.raises(DomainError) as late:
        await fulfilment.cancel_order(member.id, paid.id)
    assert late.value.code == ErrorCode.CONFLICT


# --- The sweeper ---------------------------------------------------------------------------------------------


async def test_the_sweeper_makes_each_timed_transition_on_time(seeded: None, runtime: object) -> None:
    member, _ = await new_member()
    start = now()
    set_clock(lambda: start)
    unpaid = await place(member, pay_in=timedelta(minutes=30))
    shipped = await paid_order(member)
    await fulfilment.ship_order(shipped.id, "SF", "SF1001", None)

    report = await sweep_once(start + timedelta(minutes=29))
    assert unpaid.id not in report.cancelled
    report = await sweep_once(start + timedelta(minutes=31))
    assert unpaid.id in report.cancelled
    cancelled = await Order.get(id=unpaid.id)
    assert cancelled.status == S.CANCELLED
    event = await OrderEvent.filter(order_id=unpaid.id).order_by("-id").first()
    assert event is not None and (event.actor, event.reason) == (ActorKind.SYSTEM, "unpaid timeout")

    assert shipped.id not in (await sweep_once(start + timedelta(days=9))).received
    set_clock(lambda: start + timedelta(days=10, minutes=1))
    assert shipped.id in (await sweep_once()).received
    received = await Order.get(id=shipped.id)
    assert received.after_sale_deadline is not None

    # An open after-sale holds completion; once settled, the order completes.
    request = await after_sales.request_after_sale(
        member.id, shipped.id, AfterSaleKind.REFUND_ONLY, [await _line(shipped)], "坏了"
    )
    later = start + timedelta(days=18)
    assert shipped.id not in (await sweep_once(later)).completed
    await after_sales.reject(request.id, None, "照片不清楚")
    assert shipped.id in (await sweep_once(later)).completed
    assert (await Order.get(id=shipped.id)).status == S.COMPLETED


async def _line(order: Order, quantity: int = 1) -> after_sales.LineRequest:
    line = await OrderLine.filter(order_id=order.id).first()
    assert line is not None
    return after_sales.LineRequest(line.id, quantity)


async def test_sweepers_running_at_once_make_each_transition_once(seeded: None, runtime: object) -> None:
    member, _ = await new_member(points=1000)
    due = [await place(member, pay_in=timedelta(minutes=-1), points_used=100) for _ in range(5)]
    reports = await asyncio.gather(*(sweep_once(now()) for _ in range(4)))
    cancelled = [i for r in reports for i in r.cancelled]
    assert sorted(o.id for o in due) == sorted(i for i in cancelled if i in {o.id for o in due})
    for order in due:
        assert await OrderEvent.filter(order_id=order.id).count() == 1
    assert (await Member.get(id=member.id)).points == 1000


async def test_registered_sweep_jobs_run_each_sweep_and_a_failing_one_stops_no_other(
    seeded: None, runtime: object
) -> None:
    seen: list[object] = []

    async def counts(at: object) -> int:
        seen.append(at)
        return 3

    async def breaks(at: object) -> int:
        raise RuntimeError("job failed")

    register_sweep_job("test-breaks", breaks)
    register_sweep_job("test-counts", counts)
    try:
        at = now()
        report = await sweep_once(at)
    finally:
        unregister_sweep_job("test-breaks")
        unregister_sweep_job("test-counts")
    assert seen == [at]
    assert report.jobs["test-counts"] == 3
    assert "test-breaks" not in report.jobs
    assert "test-counts" not in (await sweep_once(now())).jobs


@pytest.mark.realservices
async def test_unpaid_orders_cancel_on_time_after_a_restart(
    settings: Settings, seeded: None, runtime: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The order was placed by a process that is gone; a new server process's sweeper cancels it."""
    member, _ = await new_member()
    order = await place(member, pay_in=timedelta(seconds=1))
    await asyncio.sleep(1.2)
    env = child_env(
        {
            "DATABASE_URL": str(settings.database_url),
            "REDIS_URL": str(settings.redis_url),
            "DATA_DIR": str(tmp_path_factory.mktemp("sweeper")),
            "DB_POOL_MAX": "2",
            "SWEEP_INTERVAL_SECONDS": "0.2",
        }
    )
    async with running_server(env):
        async with asyncio.timeout(15):
            while (await Order.get(id=order.id)).status != S.CANCELLED:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    event = await OrderEvent.filter(order_id=order.id).first()
    assert event is not None and event.actor == ActorKind.SYSTEM


# --- Shipping ------------------------------------------------------------------------------------------------

SHIP_BATCH = f"""mutation($rows: [OrderShipInput!]!) {{
  orderShipBatch(rows: $rows) {{ results {{ orderId order {{ status logistics {{ carrier trackingNumber }} }} {ERRORS} }} {ERRORS} }}
}}"""


async def test_a_batch_ships_good_rows_and_reports_bad_ones(
    seeded: None, client: httpx.AsyncClient, wechat: WeChatStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "wechat_ship_template_id", "tpl-shipped")
    member, _ = await new_member()
    good = await paid_order(member)
    unpaid = await place(member)
    token = await staff_token(StaffRole.WAREHOUSE)
    rows = [
        {"orderId": encode_id("Order", good.id), "carrier": "SF", "trackingNumber": "SF123"},
        {"orderId": encode_id("Order", unpaid.id), "carrier": "SF", "trackingNumber": "SF124"},
        {"orderId": encode_id("Order", 2**31 - 1), "carrier": "SF", "trackingNumber": "SF125"},
        {"orderId": "bm90LWFuLWlk", "carrier": "SF", "trackingNumber": "SF126"},
        {"orderId": encode_id("Order", good.id), "carrier": "", "trackingNumber": "x"},
    ]
    body = await gql(client, SHIP_BATCH, {"rows": rows}, token=token)
    results = body["data"]["orderShipBatch"]["results"]
    assert [(r["errors"][0]["code"], r["errors"][0]["field"]) if r["errors"] else None for r in results] == [
        None,
        ("CONFLICT", "rows[1].orderId"),
        ("NOT_FOUND", "rows[2].orderId"),
        ("INVALID_ID", "rows[3].orderId"),
        ("BAD_USER_INPUT", "rows[4].carrier"),
    ]
    assert results[0]["order"] == {
        "status": "SHIPPED",
        "logistics": {"carrier": "SF", "trackingNumber": "SF123"},
    }
    shipped = await Order.get(id=good.id)
    assert shipped.auto_receive_at is not None and shipped.auto_receive_at - shipped.shipped_at == timedelta(
        days=10
    )

    uploads = wechat.calls(UPLOAD_SHIPPING_INFO)
    assert len(uploads) == 1
    upload = uploads[0].body or {}
    assert upload["shipping_list"][0]["tracking_no"] == "SF123"
    assert upload["payer"] == {"openid": member.openid}
    messages = wechat.calls(SUBSCRIBE_SEND)
    assert len(messages) == 1 and (messages[0].body or {})["touser"] == member.openid

    # Shipping the same again is a no-op (no second message); another tracking number is a conflict.
    again = await gql(client, SHIP_BATCH, {"rows": rows[:1]}, token=token)
    assert again["data"]["orderShipBatch"]["results"][0]["errors"] == []
    assert len(wechat.calls(SUBSCRIBE_SEND)) == 1
    other = [{**rows[0], "trackingNumber": "SF999"}]
    conflict = await gql(client, SHIP_BATCH, {"rows": other}, token=token)
    assert conflict["data"]["orderShipBatch"]["results"][0]["errors"][0]["code"] == "CONFLICT"

    _, member_token = await new_member()
    refused = await gql(client, SHIP_BATCH, {"rows": rows[:1]}, token=member_token)
    assert refused["data"]["orderShipBatch"]["errors"][0]["code"] == "FORBIDDEN"


async def test_wechat_failures_do_not_undo_a_shipment(
    seeded: None, runtime: object, wechat: WeChatStandIn
) -> None:
    member, _ = await new_member()
    order = await paid_order(member)
    wechat.fail(UPLOAD_SHIPPING_INFO, -1)
    shipped = await fulfilment.ship_order(order.id, "YTO", "YT1", None)
    assert shipped.status == S.SHIPPED
    assert len(wechat.calls(UPLOAD_SHIPPING_INFO)) == 1


# --- Member views ----------------------------------------------------------------------------------------------

MY_ORDERS = """query($status: OrderStatus) {
  myOrders(status: $status, first: 10) {
    totalCount edges { node { id number status payable lines { title quantity lineTotal } } }
    counts { pendingPayment paid shipped received completed cancelled }
  }
}"""
ORDER = """query($id: ID!) { order(id: $id) { id status timeline { fromStatus toStatus actor reason }
  logistics { carrier trackingNumber } lines { title } } }"""


async def test_my_orders_with_tab_counts_and_detail(seeded: None, client: httpx.AsyncClient) -> None:
    member, token = await new_member()
    await place(member)
    await place(member)
    shipped = await paid_order(member)
    await fulfilment.ship_order(shipped.id, "SF", "SF42", None)
    data = (await gql(client, MY_ORDERS, {}, token=token))["data"]["myOrders"]
    assert data["totalCount"] == 3
    assert data["counts"] == {
        "pendingPayment": 2,
        "paid": 0,
        "shipped": 1,
        "received": 0,
        "completed": 0,
        "cancelled": 0,
    }
    assert data["edges"][0]["node"]["lines"] == [{"title": "测试商品", "quantity": 2, "lineTotal": 10000}]
    only = (await gql(client, MY_ORDERS, {"status": "SHIPPED"}, token=token))["data"]["myOrders"]
    assert [e["node"]["status"] for e in only["edges"]] == ["SHIPPED"]

    gid = encode_id("Order", shipped.id)
    detail = (await gql(client, ORDER, {"id": gid}, token=token))["data"]["order"]
    assert [(t["fromStatus"], t["toStatus"]) for t in detail["timeline"]] == [
        ("PENDING_PAYMENT", "PAID"),
        ("PAID", "SHIPPED"),
    ]
    assert detail["logistics"] == {"carrier": "SF", "trackingNumber": "SF42"}
    _, stranger = await new_member()
    assert (await gql(client, ORDER, {"id": gid}, token=stranger))["data"]["order"] is None
    staff = await staff_token(StaffRole.CUSTOMER_SERVICE)
    assert (await gql(client, ORDER, {"id": gid}, token=staff))["data"]["order"]["status"] == "SHIPPED"
    node = await gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": gid}, token=stranger)
    assert node["data"]["node"] is None

    receipt = f"mutation($id: ID!) {{ orderConfirmReceipt(id: $id) {{ order {{ status }} {ERRORS} }} }}"
    done = (await gql(client, receipt, {"id": gid}, token=token))["data"]["orderConfirmReceipt"]
    assert done["order"]["status"] == "RECEIVED"


# --- After-sales -----------------------------------------------------------------------------------------------


async def test_after_sale_machine_and_window(
    seeded: None, runtime: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[int, int]] = []

    monkeypatch.setattr(after_sales, "_start_refund", _recorder(started))
    member, _ = await new_member()
    start = now()
    set_clock(lambda: start)
    order = await paid_order(member, quantity=2, unit_price=5000)
    await fulfilment.ship_order(order.id, "SF", "SF7", None)
    await fulfilment.confirm_receipt(member.id, order.id)

    # Return and refund: requested → approved → returning → refunding → refunded.
    request = await after_sales.request_after_sale(
        member.id, order.id, AfterSaleKind.RETURN_REFUND, [await _line(order, 1)], "尺码不合适"
    )
    assert request.amount == 5000
    with pytest.raises(DomainError) as twice:
        await after_sales.request_after_sale(
            member.id, order.id, AfterSaleKind.REFUND_ONLY, [await _line(order)], ""
        )
    assert twice.value.code == ErrorCode.CONFLICT
    approved = await after_sales.approve(request.id, None)
    assert approved.status == AfterSaleStatus.APPROVED
    with pytest.raises(DomainError):
        await after_sales.confirm_return(request.id, None)  # nothing was sent back yet
    returning = await after_sales.submit_return(member.id, request.id, "SF", "SF-BACK")
    assert returning.status == AfterSaleStatus.RETURNING
    refunding = await after_sales.confirm_return(request.id, None)
    assert refunding.status == AfterSaleStatus.REFUNDING and started == [(order.id, 5000)]
    assert (await after_sales.mark_refunded(request.id)).status == AfterSaleStatus.REFUNDED
    assert (await after_sales.mark_refunded(request.id)).status == AfterSaleStatus.REFUNDED

    # Too many, or after the window: refused.
    with pytest.raises(DomainError) as too_many:
        await after_sales.request_after_sale(
            member.id, order.id, AfterSaleKind.REFUND_ONLY, [await _line(order, 3)], ""
        )
    assert too_many.value.code == ErrorCode.BAD_USER_INPUT
    set_clock(lambda: start + timedelta(days=7, minutes=1))
    with pytest.raises(DomainError) as closed:
        await after_sales.request_after_sale(
            member.id, order.id, AfterSaleKind.REFUND_ONLY, [await _line(order)], ""
        )
    assert closed.value.code == ErrorCode.CONFLICT and "window" in closed.value.message


async def test_refund_only_goes_straight_to_refunding_and_members_can_withdraw(
    seeded: None, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[int, int]] = []
    monkeypatch.setattr(after_sales, "_start_refund", _recorder(started))
    member, token = await new_member()
    order = await paid_order(member)
    line = await OrderLine.filter(order_id=order.id).first()
    assert line is not None
    request = f"""mutation($input: AfterSaleRequestInput!) {{ afterSaleRequest(input: $input) {{
        afterSale {{ id status amount kind }} {ERRORS} }} }}"""
    variables = {
        "input": {
            "orderId": encode_id("Order", order.id),
            "kind": "REFUND_ONLY",
            "lines": [{"lineId": encode_id("OrderLine", line.id), "quantity": 2}],
            "reason": "不想要了",
        }
    }
    made = (await gql(client, request, variables, token=token))["data"]["afterSaleRequest"]
    assert made["afterSale"]["status"] == "REQUESTED" and made["afterSale"]["amount"] == 10000

    cancel = f"mutation($id: ID!) {{ afterSaleCancel(id: $id) {{ afterSale {{ status }} {ERRORS} }} }}"
    _, stranger = await new_member()
    foreign = (await gql(client, cancel, {"id": made["afterSale"]["id"]}, token=stranger))["data"][
        "afterSaleCancel"
    ]
    assert foreign["errors"][0]["code"] == "NOT_FOUND"
    withdrawn = (await gql(client, cancel, {"id": made["afterSale"]["id"]}, token=token))["data"][
        "afterSaleCancel"
    ]
    assert withdrawn["afterSale"]["status"] == "CLOSED"

    made = (await gql(client, request, variables, token=token))["data"]["afterSaleRequest"]
    approve = f"mutation($id: ID!) {{ afterSaleApprove(id: $id) {{ afterSale {{ status }} {ERRORS} }} }}"
    warehouse = await staff_token(StaffRole.WAREHOUSE)
    refused = (await gql(client, approve, {"id": made["afterSale"]["id"]}, token=warehouse))["data"]
    assert refused["afterSaleApprove"]["errors"][0]["code"] == "FORBIDDEN"
    service = await staff_token(StaffRole.CUSTOMER_SERVICE)
    approved = (await gql(client, approve, {"id": made["afterSale"]["id"]}, token=service))["data"]
    assert approved["afterSaleApprove"]["afterSale"]["status"] == "REFUNDING"
    assert started == [(order.id, 10000)]
    assert (await AfterSale.filter(order_id=order.id).count()) == 2


def _recorder(started: list[tuple[int, int]]) -> Any:
    async def record(after_sale: AfterSale) -> None:
        started.append((after_sale.order_id, after_sale.amount))  # type: ignore[attr-defined]

    return record


# --- The subscription ------------------------------------------------------------------------------------------

SUBSCRIBE = "subscription($id: ID!) { orderStatusChanged(orderId: $id) { orderId status order { status } } }"


@pytest.fixture
async def ws_url(app: object) -> AsyncIterator[str]:
    async with serving(app) as url:
        yield url


async def _subscribe(url: str, token: str | None, order_id: int) -> Any:
    ws = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")])
    await ws.send(json.dumps({"type": "connection_init", "payload": {"accessToken": token} if token else {}}))
    async with asyncio.timeout(5):
        assert json.loads(await ws.recv())["type"] == "connection_ack"
    payload = {"query": SUBSCRIBE, "variables": {"id": encode_id("Order", order_id)}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return ws


async def test_order_status_changes_reach_the_owner_only(seeded: None, runtime: object, ws_url: str) -> None:
    member, token = await new_member()
    order = await place(member)
    _, stranger = await new_member()
    for who in (stranger, None):
        ws = await _subscribe(ws_url, who, order.id)
        async with asyncio.timeout(5):
            message = json.loads(await ws.recv())
        await ws.close()
        assert message["type"] == "error" or message["payload"].get("errors"), message

    ws = await _subscribe(ws_url, token, order.id)
    try:
        await asyncio.sleep(0.2)  # the subscription is listening on the bus
        await order_states.transition(order.id, S.PAID, actor=ActorKind.WECHAT)
        async with asyncio.timeout(5):
            message = json.loads(await ws.recv())
        assert message["type"] == "next", message
        assert message["payload"]["data"]["orderStatusChanged"]["status"] == "PAID"
        assert message["payload"]["data"]["orderStatusChanged"]["order"] == {"status": "PAID"}
    finally:
        await ws.close()


async def test_a_logged_out_member_stops_receiving_order_news(
    seeded: None, runtime: object, ws_url: str
) -> None:
    member, token = await new_member()
    order = await place(member)
    ws = await _subscribe(ws_url, token, order.id)
    try:
        await asyncio.sleep(0.2)  # the subscription is listening on the bus
        claims = jwt.decode(token, options={"verify_signature": False})
        await revoke_session(int(claims["sid"]))
        await order_states.transition(order.id, S.PAID, actor=ActorKind.WECHAT)
        async with asyncio.timeout(5):
            message = json.loads(await ws.recv())
        assert message["type"] == "next" and message["payload"]["data"] is None, message
        assert message["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "PAID" not in json.dumps(message)
    finally:
        await ws.close()


async def test_an_order_subscription_ends_when_its_access_token_expires(
    seeded: None, runtime: object, ws_url: str
) -> None:
    member, _ = await new_member()
    order = await place(member)
    # A token issued long enough ago that it has 1.5 s left.
    issued = now() - ACCESS_TTL + timedelta(seconds=1.5)
    set_clock(lambda: issued)
    try:
        token = (await issue_tokens(member)).access_token
    finally:
        set_clock(None)
    ws = await _subscribe(ws_url, token, order.id)
    try:
        async with asyncio.timeout(5):
            message = json.loads(await ws.recv())  # no event was published: the expiry alone ends it
            done = json.loads(await ws.recv())
        assert message["type"] == "next" and message["payload"]["data"] is None, message
        assert message["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "expired" in message["payload"]["errors"][0]["message"]
        assert done == {"id": "1", "type": "complete"}
        # The order's later news is not sent on this socket.
        await order_states.transition(order.id, S.PAID, actor=ActorKind.WECHAT)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await ws.recv()
    finally:
        await ws.close()
