"""A shop's flash sale (秒杀): staff set up a slot and an activity, shoppers see the countdown, race for the
allotment through placeOrder, and cancelled orders give their units back. Redis turns the crowd away; the
database records only winners and never passes the allotment or a member's limit, also when Redis loses its
counters mid-sale.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from infra.clock import SHOP_TZ, now
from infra.query_counter import count_queries
from infra.redis import get_redis
from infra.runtime import current_runtime
from models import (
    ActorKind,
    AuditLog,
    FlashSaleItem,
    FlashSalePurchase,
    FlashSaleSession,
    Order,
    OrderLine,
    OrderStatus,
    Sku,
    StaffRole,
)
from schema.fast import extension as fast_extension
from schema.node import decode_id, encode_id
from services.errors import DomainError, ErrorCode
from services.marketing.flash_sale import sold_out, stock
from services.marketing.flash_sale.events import session_channel
from services.orders import campaigns, checkout, states
from services.orders.campaigns import CampaignKind, CampaignRef
from services.orders.checkout import CheckoutRequest, ItemRequest
from tests.graphql_client import gql
from tests.test_access import staff_token
from tests.test_cart import new_address, new_member, new_sku
from tests.test_checkout import PLACE

pytestmark = pytest.mark.usefixtures("runtime", "seeded")


ERRORS = "errors { field message code }"
SESSION_CREATE = f"""mutation($input: FlashSaleSessionInput!) {{
  flashSaleSessionCreate(input: $input) {{ session {{ id name startsAt endsAt enabled }} {ERRORS} }} }}"""
SALE_CREATE = f"""mutation($input: FlashSaleCreateInput!) {{
  flashSaleCreate(input: $input) {{ flashSale {{ id title status items {{ id flashPrice allotment remaining }} }}
  {ERRORS} }} }}"""
SALE_STOP = f"""mutation($id: ID!) {{ flashSaleStop(id: $id) {{ flashSale {{ id status }} {ERRORS} }} }}"""
SALE = """query($id: ID!) { flashSale(id: $id) { id status items { id remaining numbers { sold orders paidOrders } } } }"""
SESSIONS = """query { flashSaleSessions {
  serverTime date sessions { sessionId name startsAt endsAt state secondsToStart secondsToEnd } } }"""
PRODUCTS = """query($id: ID!) { flashSaleProducts(sessionId: $id, first: 10) {
  edges { node { id flashPrice allotment remaining perMemberLimit soldOut sku { id listPrice } product { id } } }
  pageInfo { hasNextPage } } }"""


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


async def open_slot(client: Any, token: str) -> str:
    """A slot running now until midnight: the earlier tests' slots are disabled so none overlaps."""
    await FlashSaleSession.filter(enabled=True).update(enabled=False)
    moment = now().astimezone(SHOP_TZ)
    # Until midnight and at least two hours long: a test late in the shop's day still finds it on.
    start = max(0, min(moment.hour * 60 + moment.minute - 1, 22 * 60))
    answer = await gql(
        client,
        SESSION_CREATE,
        {"input": {"name": "此刻场", "startsAt": _clock(start), "endsAt": "24:00"}},
        token,
    )
    payload = answer["data"]["flashSaleSessionCreate"]
    assert payload["errors"] == []
    return str(payload["session"]["id"])


async def flash_sale(
    client: Any, token: str, session_id: str, sku: Sku, allotment: int, limit: int, price: int = 990
) -> dict[str, Any]:
    today = now().astimezone(SHOP_TZ).date()
    item = {
        "sessionId": session_id,
        "skuId": encode_id("Sku", sku.id),
        "flashPrice": price,
        "allotment": allotment,
        "perMemberLimit": limit,
    }
    answer = await gql(
        client,
        SALE_CREATE,
        {
            "input": {
                "title": "双十二秒杀",
                "startsOn": str(today - timedelta(days=1)),
                "endsOn": str(today + timedelta(days=1)),
                "items": [item],
            }
        },
        token,
    )
    payload = answer["data"]["flashSaleCreate"]
    assert payload["errors"] == []
    return dict(payload["flashSale"])


def flash_item(address_id: int, sku: Sku, item_id: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "addressId": encode_id("Address", address_id),
        "items": [
            {
                "skuId": encode_id("Sku", sku.id),
                "quantity": quantity,
                "campaign": {"kind": "FLASH_SALE", "id": item_id},
            }
        ],
    }


def flash_request(address_id: int, sku: Sku, item_pk: int, quantity: int = 1) -> CheckoutRequest:
    ref = CampaignRef(CampaignKind.FLASH_SALE, item_pk, "FlashSaleItem")
    return CheckoutRequest(address_id=address_id, items=(ItemRequest(sku.id, quantity, ref),))


async def test_staff_set_up_a_sale_and_a_shopper_buys_at_the_flash_price(client: Any) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    sku = await new_sku(price=9900, stock=20)
    sale = await flash_sale(client, operator, session_id, sku, allotment=5, limit=2)
    [item] = sale["items"]
    assert (item["flashPrice"], item["allotment"], item["remaining"]) == (990, 5, 5)
    assert (
        await AuditLog.filter(
            action__in=["flashSaleSessionCreate", "flashSaleCreate"], succeeded=True
        ).count()
        >= 2
    )

    # The shopper sees the slot running, with the server's clock and the time left.
    shopper, token = await new_member()
    schedule = (await gql(client, SESSIONS, token=token))["data"]["flashSaleSessions"]
    [slot] = [s for s in schedule["sessions"] if s["sessionId"] == session_id]
    assert slot["state"] == "ONGOING" and slot["secondsToStart"] == 0 and slot["secondsToEnd"] > 0
    assert schedule["serverTime"]
    products = (await gql(client, PRODUCTS, {"id": session_id}, token))["data"]["flashSaleProducts"]
    [node] = [e["node"] for e in products["edges"]]
    assert (node["id"], node["remaining"], node["soldOut"], node["sku"]["listPrice"]) == (
        item["id"],
        5,
        False,
        9900,
    )

    # Two units at the flash price; the line says it was a flash sale.
    address = await new_address(shopper)
    placed = await gql(client, PLACE, {"input": flash_item(address, sku, item["id"], 2), "key": "f1"}, token)
    order = placed["data"]["placeOrder"]["order"]
    assert order["status"] == "PENDING_PAYMENT"
    line = await OrderLine.get(order_id=decode_id(order["id"], "Order"))
    assert (line.unit_price, line.campaign_kind, line.campaign["flashPrice"], line.campaign["listPrice"]) == (
        990,
        "FLASH_SALE",
        990,
        9900,
    )
    # The same key again is the same order, not a third unit.
    again = await gql(client, PLACE, {"input": flash_item(address, sku, item["id"], 2), "key": "f1"}, token)
    assert again["data"]["placeOrder"]["order"]["id"] == order["id"]

    # A third unit is beyond the member's limit; nothing is written.
    over = await gql(client, PLACE, {"input": flash_item(address, sku, item["id"]), "key": "f2"}, token)
    assert [e["code"] for e in over["data"]["placeOrder"]["errors"]] == ["LIMIT_EXCEEDED"]
    assert await Order.filter(member_id=shopper.id).count() == 1

    admin = await staff_token(StaffRole.ADMIN)
    seen = (await gql(client, SALE, {"id": sale["id"]}, admin))["data"]["flashSale"]
    assert seen["items"][0]["remaining"] == 3
    assert seen["items"][0]["numbers"] == {"sold": 2, "orders": 1, "paidOrders": 0}


async def test_bad_setups_are_refused_field_by_field(client: Any) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    clash = await gql(
        client, SESSION_CREATE, {"input": {"name": "撞车", "startsAt": "00:00", "endsAt": "24:00"}}, operator
    )
    assert [(e["field"], e["code"]) for e in clash["data"]["flashSaleSessionCreate"]["errors"]] == [
        ("input.startsAt", "CONFLICT")
    ]
    wrong = await gql(
        client, SESSION_CREATE, {"input": {"name": "倒挂", "startsAt": "14:00", "endsAt": "9:00"}}, operator
    )
    assert [e["field"] for e in wrong["data"]["flashSaleSessionCreate"]["errors"]] == ["input.endsAt"]

    sku = await new_sku(price=5000, stock=10)
    today = now().astimezone(SHOP_TZ).date()
    items = [
        {
            "sessionId": session_id,
            "skuId": encode_id("Sku", sku.id),
            "flashPrice": 6000,
            "allotment": 11,
            "perMemberLimit": 1,
        },
        {
            "sessionId": session_id,
            "skuId": encode_id("Sku", sku.id),
            "flashPrice": 100,
            "allotment": 3,
            "perMemberLimit": 4,
        },
    ]
    answer = await gql(
        client,
        SALE_CREATE,
        {
            "input": {
                "title": "坏的",
                "startsOn": str(today),
                "endsOn": str(today - timedelta(days=1)),
                "items": items,
            }
        },
        operator,
    )
    errors = {(e["field"], e["code"]) for e in answer["data"]["flashSaleCreate"]["errors"]}
    assert errors == {
        ("input.endsOn", "BAD_USER_INPUT"),
        ("input.items[0].flashPrice", "BAD_USER_INPUT"),
        ("input.items[0].allotment", "BAD_USER_INPUT"),
        ("input.items[1].skuId", "BAD_USER_INPUT"),
        ("input.items[1].perMemberLimit", "BAD_USER_INPUT"),
    }
    assert not await FlashSaleItem.filter(sku_id=sku.id).exists()
    # Members cannot set up sales.
    _, token = await new_member()
    refused = await gql(
        client, SESSION_CREATE, {"input": {"name": "x", "startsAt": "01:00", "endsAt": "02:00"}}, token
    )
    assert [e["code"] for e in refused["data"]["flashSaleSessionCreate"]["errors"]] == ["FORBIDDEN"]


async def test_a_crowd_wins_exactly_the_allotment_and_sold_out_attempts_cost_no_sql(client: Any) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    sku = await new_sku(price=5000, stock=50)
    sale = await flash_sale(client, operator, session_id, sku, allotment=8, limit=1)
    item_pk = decode_id(sale["items"][0]["id"], "FlashSaleItem")
    members = [(await new_member())[0] for _ in range(20)]
    addresses = [await new_address(m) for m in members]

    async def attempt(i: int, key: str) -> Order | None:
        try:
            return await checkout.place_order(members[i].id, flash_request(addresses[i], sku, item_pk), key)
        except DomainError as exc:
            assert exc.code in {ErrorCode.INSUFFICIENT_STOCK, ErrorCode.LIMIT_EXCEEDED}
            return None

    # Every member tries twice at once (two keys): the limit of one holds as well as the allotment.
    results = await asyncio.gather(*(attempt(i % 20, f"k{i}") for i in range(40)))
    orders = [o for o in results if o is not None]
    assert len(orders) == 8
    assert len({o.member_id for o in orders}) == 8  # type: ignore[attr-defined]
    assert (await FlashSaleItem.get(id=item_pk)).sold == 8
    assert (await Sku.get(id=sku.id)).stock == 42
    assert await FlashSalePurchase.filter(item_id=item_pk, quantity__gt=1).count() == 0

    # Sold out: a member holding nothing is turned away from Redis alone.
    loser = next(m for i, m in enumerate(members) if m.id not in {o.member_id for o in orders})  # type: ignore[attr-defined]
    with count_queries() as counter:
        with pytest.raises(DomainError) as refused:
            await checkout.place_order(
                loser.id, flash_request(addresses[members.index(loser)], sku, item_pk), "late"
            )
    assert refused.value.code == ErrorCode.INSUFFICIENT_STOCK
    assert counter.count == 0


async def test_a_cancelled_flash_order_gives_its_units_back_and_tells_subscribers(client: Any) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    sku = await new_sku(price=5000, stock=5)
    sale = await flash_sale(client, operator, session_id, sku, allotment=1, limit=1)
    item_pk = decode_id(sale["items"][0]["id"], "FlashSaleItem")
    first, _ = await new_member()
    second, _ = await new_member()
    order = await checkout.place_order(first.id, flash_request(await new_address(first), sku, item_pk), "a")
    second_address = await new_address(second)
    with pytest.raises(DomainError):
        await checkout.place_order(second.id, flash_request(second_address, sku, item_pk), "b")

    bus = current_runtime().bus
    async with bus.subscribe(session_channel(decode_id(session_id, "FlashSaleSession"))) as events:
        # The unpaid timeout (the sweeper's transition) frees the unit: the second member wins it.
        await states.transition(
            order.id, OrderStatus.CANCELLED, actor=ActorKind.SYSTEM, reason="unpaid timeout"
        )
        event = await asyncio.wait_for(anext(aiter(events)), 2)
    assert event == {
        "sessionId": decode_id(session_id, "FlashSaleSession"),
        "itemId": item_pk,
        "remaining": 1,
    }
    assert (await FlashSaleItem.get(id=item_pk)).sold == 0
    assert (
        await FlashSalePurchase.get(item_id=item_pk, member_id=first.id).values_list("quantity", flat=True)
        == 0
    )
    won = await checkout.place_order(second.id, flash_request(second_address, sku, item_pk), "c")
    assert won.status == OrderStatus.PENDING_PAYMENT
    # And the first member may buy again (their limit came back), but nothing is left.
    with pytest.raises(DomainError) as sold_out:
        await checkout.place_order(first.id, flash_request(await new_address(first), sku, item_pk), "d")
    assert sold_out.value.code == ErrorCode.INSUFFICIENT_STOCK


async def test_each_process_remembers_a_sold_out_item_for_at_most_a_second_and_never_refuses_a_holder(
    client: Any,
) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    sku = await new_sku(price=5000, stock=10)
    sale = await flash_sale(client, operator, session_id, sku, allotment=2, limit=1)
    item_pk = decode_id(sale["items"][0]["id"], "FlashSaleItem")
    winner, _ = await new_member()
    late, _ = await new_member()
    won = await checkout.place_order(winner.id, flash_request(await new_address(winner), sku, item_pk), "w")
    late_address = await new_address(late)
    # Redis counts the last unit as taken (an attempt in flight elsewhere): the late member is refused, and
    # this process now knows the item is sold out.
    await get_redis().hset(stock.item_key(item_pk), "left", 0)
    with pytest.raises(DomainError) as refused:
        await checkout.place_order(late.id, flash_request(late_address, sku, item_pk), "l1")
    assert refused.value.code == ErrorCode.INSUFFICIENT_STOCK
    assert sold_out.refuses(item_pk, late.id, 1) is True
    # The winner repeating their request (same key) is never refused from here: it is the same order.
    again = await checkout.place_order(winner.id, flash_request(await new_address(winner), sku, item_pk), "w")
    assert again.id == won.id

    # The unit comes back in Redis and its event is lost: the refusal is answered without asking Redis ...
    await get_redis().hset(stock.item_key(item_pk), "left", 1)
    with pytest.raises(DomainError):
        await checkout.place_order(late.id, flash_request(late_address, sku, item_pk), "l2")
    # ... for at most FRESH_SECONDS; then Redis is asked again and the late member wins it.
    await asyncio.sleep(sold_out.FRESH_SECONDS + 0.05)
    order = await checkout.place_order(late.id, flash_request(late_address, sku, item_pk), "l3")
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert (await FlashSaleItem.get(id=item_pk)).sold == 2

    # Sold out for real, and known: a cancellation's event makes every process forget it at once.
    stranger, _ = await new_member()
    stranger_address = await new_address(stranger)
    with pytest.raises(DomainError):
        await checkout.place_order(stranger.id, flash_request(stranger_address, sku, item_pk), "s1")
    assert sold_out.refuses(item_pk, stranger.id, 1) is True
    await states.transition(order.id, OrderStatus.CANCELLED, actor=ActorKind.SYSTEM, reason="unpaid timeout")
    for _ in range(40):  # well inside FRESH_SECONDS: it is the event, not age, that drops it
        if sold_out.refuses(item_pk, stranger.id, 1) is None:
            break
        await asyncio.sleep(0.01)
    assert sold_out.refuses(item_pk, stranger.id, 1) is None, "the give-back's event reached this process"
    bought = await checkout.place_order(stranger.id, flash_request(stranger_address, sku, item_pk), "s2")
    assert bought.status == OrderStatus.PENDING_PAYMENT


async def test_a_sold_out_crowd_over_http_leaves_the_catalog_executors_memo_alone(client: Any) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    sku = await new_sku(price=5000, stock=5)
    sale = await flash_sale(client, operator, session_id, sku, allotment=1, limit=1)
    winner, winner_token = await new_member()
    won = await gql(
        client,
        PLACE,
        {"input": flash_item(await new_address(winner), sku, sale["items"][0]["id"]), "key": "w"},
        winner_token,
    )
    assert won["data"]["placeOrder"]["order"]
    member, token = await new_member()
    body = flash_item(await new_address(member), sku, sale["items"][0]["id"])
    remembered = len(fast_extension._prepared)
    for i in range(5):  # each attempt its own idempotency key, as in a real crowd
        answer = (await gql(client, PLACE, {"input": body, "key": f"crowd-{i}"}, token))["data"]["placeOrder"]
        assert [e["code"] for e in answer["errors"]] == ["INSUFFICIENT_STOCK"]
    assert len(fast_extension._prepared) == remembered, "mutations are never the fast executor's"


async def test_redis_losing_the_counters_mid_sale_neither_oversells_nor_loses_a_unit(client: Any) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    sku = await new_sku(price=5000, stock=50)
    sale = await flash_sale(client, operator, session_id, sku, allotment=6, limit=1)
    item_pk = decode_id(sale["items"][0]["id"], "FlashSaleItem")
    members = [(await new_member())[0] for _ in range(12)]
    addresses = [await new_address(m) for m in members]
    for i in range(3):
        await checkout.place_order(members[i].id, flash_request(addresses[i], sku, item_pk), f"r{i}")

    # An attempt in flight holds a reservation when Redis forgets everything; it then commits.
    in_flight = await stock.reserve(item_pk, members[3].id, 1)
    assert in_flight.outcome == stock.TAKEN
    await get_redis().delete(stock.item_key(item_pk))
    rebuilt = await stock.reserve(item_pk, members[4].id, 1)  # rebuilds from the 3 committed units
    assert rebuilt.outcome == stock.TAKEN and rebuilt.epoch != in_flight.epoch
    # Member 3's order commits (its reservation predates the rebuild), member 4's attempt fails and gives back
    # nothing into the new epoch beyond what it took.
    await checkout._write_order(
        members[3].id,
        flash_request(addresses[3], sku, item_pk),
        [ItemRequest(sku.id, 1, CampaignRef(CampaignKind.FLASH_SALE, item_pk, "FlashSaleItem"))],
        "r3",
    )
    assert await stock.give_back(item_pk, members[4].id, 1, in_flight.epoch) is None  # an old epoch: ignored
    await stock.give_back(item_pk, members[4].id, 1, rebuilt.epoch)

    async def attempt(i: int) -> Order | None:
        try:
            return await checkout.place_order(
                members[i].id, flash_request(addresses[i], sku, item_pk), f"r{i}"
            )
        except DomainError as exc:
            assert exc.code in {ErrorCode.INSUFFICIENT_STOCK, ErrorCode.LIMIT_EXCEEDED}
            return None

    await asyncio.gather(*(attempt(i) for i in range(4, 12)))
    assert await OrderLine.filter(campaign_kind="FLASH_SALE", campaign_id=item_pk).count() == 6
    assert (await FlashSaleItem.get(id=item_pk)).sold == 6
    # Redis ends where the database is: sold out (the refused excess rebuilt it from the exact counts).
    assert (await stock.peek(item_pk, members[11].id) or (0, 0))[0] == 0


async def test_a_stopped_sale_sells_nothing_more(client: Any) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    sku = await new_sku(price=5000, stock=5)
    sale = await flash_sale(client, operator, session_id, sku, allotment=3, limit=1)
    stopped = await gql(client, SALE_STOP, {"id": sale["id"]}, operator)
    assert stopped["data"]["flashSaleStop"]["flashSale"]["status"] == "STOPPED"
    shopper, token = await new_member()
    answer = await gql(
        client,
        PLACE,
        {"input": flash_item(await new_address(shopper), sku, sale["items"][0]["id"]), "key": "s"},
        token,
    )
    assert [e["code"] for e in answer["data"]["placeOrder"]["errors"]] == ["CONFLICT"]


async def test_units_taken_by_a_process_that_died_before_its_order_come_back_on_the_second_sweep(
    client: Any,
) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    sku = await new_sku(price=5000, stock=5)
    sale = await flash_sale(client, operator, session_id, sku, allotment=2, limit=1)
    item_pk = decode_id(sale["items"][0]["id"], "FlashSaleItem")
    member, _ = await new_member()
    # The script took a unit, then the process died: no order, no give-back.
    assert (await stock.reserve(item_pk, member.id, 1)).outcome == stock.TAKEN
    assert (await stock.peek(item_pk, member.id)) == (1, 1)
    # One sweep notes the disagreement (it may be an attempt in flight); the next, seeing it unchanged, rebuilds.
    assert await stock.reconcile(now()) == 0
    assert (await stock.peek(item_pk, member.id)) == (1, 1)
    assert await stock.reconcile(now()) >= 1  # (items other tests left out of line are rebuilt too)
    assert (await stock.peek(item_pk, member.id)) == (2, 0)
    assert await stock.reconcile(now()) == 0


async def test_a_give_back_redis_does_not_take_is_left_to_the_sweeper_and_fails_nothing(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    sku = await new_sku(price=5000, stock=5)
    sale = await flash_sale(client, operator, session_id, sku, allotment=2, limit=1)
    item_pk = decode_id(sale["items"][0]["id"], "FlashSaleItem")
    ref = CampaignRef(CampaignKind.FLASH_SALE, item_pk, "FlashSaleItem")
    campaign = campaigns.handler_for(ref)
    member, _ = await new_member()
    await campaign.reserve(member.id, ref, sku.id, 1, "lost-give-back")
    assert (await stock.peek(item_pk, member.id)) == (1, 1)

    # The order is not written, and Redis is gone when the unit is given back: one warning, no error.
    async def redis_gone(*_: object, **__: object) -> object:
        raise RedisConnectionError("Connection closed by server.")

    with monkeypatch.context() as cut, caplog.at_level(logging.WARNING, logger="lianmall.flash_sale"):
        cut.setattr(get_redis(), "evalsha", redis_gone)
        await campaign.unreserve(member.id, ref, sku.id, 1, "lost-give-back")
    assert [r.levelno for r in caplog.records] == [logging.WARNING], caplog.text
    assert "the sweeper will" in caplog.text
    # Redis is back with the unit still taken; the sweeper gives it back on its second look.
    assert (await stock.peek(item_pk, member.id)) == (1, 1)
    await stock.reconcile(now())
    await stock.reconcile(now())
    assert (await stock.peek(item_pk, member.id)) == (2, 0)


async def test_staff_see_an_activity_with_its_numbers_in_the_same_queries_however_many_items(
    client: Any,
) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    session_id = await open_slot(client, operator)
    today = now().astimezone(SHOP_TZ).date()

    async def sale_of(count: int) -> str:
        items = [
            {
                "sessionId": session_id,
                "skuId": encode_id("Sku", (await new_sku(price=5000, stock=5)).id),
                "flashPrice": 100,
                "allotment": 2,
                "perMemberLimit": 1,
            }
            for _ in range(count)
        ]
        answer = await gql(
            client,
            SALE_CREATE,
            {"input": {"title": "多件", "startsOn": str(today), "endsOn": str(today), "items": items}},
            operator,
        )
        return str(answer["data"]["flashSaleCreate"]["flashSale"]["id"])

    counts = []
    for sale_id in (await sale_of(1), await sale_of(4)):
        await gql(client, SALE, {"id": sale_id}, operator)  # warm per-process caches
        with count_queries() as counter:
            seen = (await gql(client, SALE, {"id": sale_id}, operator))["data"]["flashSale"]
        assert all(i["numbers"] == {"sold": 0, "orders": 0, "paidOrders": 0} for i in seen["items"])
        counts.append(counter.count)
    assert counts[0] == counts[1]
