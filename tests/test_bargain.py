"""A shop's bargain (砍价): staff set up an activity, a member starts a bargain and shares it, friends cut it once
each (never the starter, at most BARGAIN_HELPS_PER_DAY a day), the N-th cut lands exactly on the floor, and the
starter buys at the price reached through placeOrder. The cut plan is property-tested; concurrent friends
each get one cut of their own and the floor is never crossed.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.clock import now
from models import (
    ActorKind,
    AuditLog,
    Bargain,
    BargainActivity,
    BargainHelp,
    BargainStatus,
    OrderLine,
    OrderStatus,
    StaffRole,
)
from schema.node import decode_id, encode_id
from services.errors import DomainError, ErrorCode
from services.marketing.bargain import service
from services.marketing.bargain.cuts import next_cut
from services.orders import states
from tests.graphql_client import gql
from tests.test_access import staff_token
from tests.test_cart import new_address, new_member, new_sku
from tests.test_checkout import PLACE

pytestmark = pytest.mark.usefixtures("runtime", "seeded")

ERRORS = "errors { field message code }"
ACTIVITY_CREATE = f"""mutation($input: BargainActivityCreateInput!) {{
  bargainActivityCreate(input: $input) {{ bargainActivity {{ id startPrice floorPrice remaining }} {ERRORS} }} }}"""
START = f"""mutation($id: ID!) {{ bargainStart(activityId: $id) {{
  bargain {{ id currentPrice cutsDone helpersLeft status mine }} {ERRORS} }} }}"""
HELP = f"""mutation($id: ID!) {{ bargainHelp(bargainId: $id) {{
  cut bargain {{ id currentPrice cutsDone helpersLeft status mine }} {ERRORS} }} }}"""
BARGAIN = """query($id: ID!) { bargain(id: $id) { id currentPrice status cuts { amount priceAfter }
  activity { id title floorPrice numbers { started succeeded sold } } } }"""


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=0, max_value=2_000_000),
    st.integers(min_value=0, max_value=2**32),
)
def test_the_cut_plan_reaches_the_floor_in_exactly_n_cuts_and_never_below(
    helpers: int, extra: int, seed: int
) -> None:
    start_minus_floor = helpers + extra  # setup guarantees at least 1 fen per helper
    rng = random.Random(seed)
    remaining, cuts = start_minus_floor, []
    for done in range(helpers):
        cut = next_cut(remaining, helpers - done, rng)
        assert 1 <= cut <= remaining
        remaining -= cut
        cuts.append(cut)
        # Never the floor before the N-th helper: each later helper still has at least 1 fen to cut.
        assert remaining >= helpers - done - 1
    assert remaining == 0 and sum(cuts) == start_minus_floor and len(cuts) == helpers


def test_no_valid_cut_is_refused() -> None:
    with pytest.raises(ValueError):
        next_cut(2, 3)


async def activity(
    client: Any, token: str, *, helpers: int = 3, stock: int = 5, start: int = 10000
) -> dict[str, Any]:
    sku = await new_sku(price=12000, stock=20)
    moment = now()
    answer = await gql(
        client,
        ACTIVITY_CREATE,
        {
            "input": {
                "title": "砍一刀",
                "skuId": encode_id("Sku", sku.id),
                "startPrice": start,
                "floorPrice": 100,
                "helpersNeeded": helpers,
                "hoursToFinish": 24,
                "startsAt": (moment - timedelta(hours=1)).isoformat(),
                "endsAt": (moment + timedelta(days=2)).isoformat(),
                "stock": stock,
            }
        },
        token,
    )
    payload = answer["data"]["bargainActivityCreate"]
    assert payload["errors"] == []
    return {**payload["bargainActivity"], "sku": sku}


async def test_friends_cut_a_bargain_to_the_floor_and_the_starter_buys_at_the_price_reached(
    client: Any,
) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    setup = await activity(client, operator, helpers=3)
    starter, token = await new_member()
    started = (await gql(client, START, {"id": setup["id"]}, token))["data"]["bargainStart"]["bargain"]
    assert (started["currentPrice"], started["helpersLeft"], started["mine"]) == (10000, 3, True)
    # Starting again gives the same bargain back.
    again = (await gql(client, START, {"id": setup["id"]}, token))["data"]["bargainStart"]["bargain"]
    assert again["id"] == started["id"]

    # Never self-help.
    own = (await gql(client, HELP, {"id": started["id"]}, token))["data"]["bargainHelp"]
    assert [e["code"] for e in own["errors"]] == ["FORBIDDEN"]

    friends = [await new_member() for _ in range(4)]
    price = 10000
    for n, (_, friend_token) in enumerate(friends[:3]):
        helped = (await gql(client, HELP, {"id": started["id"]}, friend_token))["data"]["bargainHelp"]
        assert helped["errors"] == [] and helped["cut"] >= 1
        price -= helped["cut"]
        assert helped["bargain"]["currentPrice"] == price and helped["bargain"]["mine"] is False
        assert helped["bargain"]["status"] == ("SUCCEEDED" if n == 2 else "ONGOING")
    assert price == 100
    # The same friend twice, and a fourth friend after the floor: refused.
    twice = (await gql(client, HELP, {"id": started["id"]}, friends[0][1]))["data"]["bargainHelp"]
    late = (await gql(client, HELP, {"id": started["id"]}, friends[3][1]))["data"]["bargainHelp"]
    assert [e["code"] for e in twice["errors"] + late["errors"]] == ["CONFLICT", "CONFLICT"]

    # The starter buys at the floor; the line keeps the bargain.
    address = await new_address(starter)
    item = {
        "skuId": encode_id("Sku", setup["sku"].id),
        "quantity": 1,
        "campaign": {"kind": "BARGAIN", "id": started["id"]},
    }
    body = {"addressId": encode_id("Address", address), "items": [item]}
    placed = (await gql(client, PLACE, {"input": body, "key": "bg1"}, token))["data"]["placeOrder"]
    assert placed["order"]["status"] == "PENDING_PAYMENT"  # no WeChat Pay here: it waits to be paid
    line = await OrderLine.get(order_id=decode_id(placed["order"]["id"], "Order"))
    assert (
        line.unit_price,
        line.campaign_kind,
        line.campaign["reachedPrice"],
        line.campaign["startPrice"],
    ) == (
        100,
        "BARGAIN",
        100,
        10000,
    )
    # Bought once: a second order on the same bargain is refused, and a friend cannot use it.
    twice_bought = (await gql(client, PLACE, {"input": body, "key": "bg2"}, token))["data"]["placeOrder"]
    assert [e["code"] for e in twice_bought["errors"]] == ["CONFLICT"]
    stolen = (await gql(client, PLACE, {"input": body, "key": "bg3"}, friends[0][1]))["data"]["placeOrder"]
    assert [e["code"] for e in stolen["errors"]] == ["NOT_FOUND"]

    admin = await staff_token(StaffRole.ADMIN)
    seen = (await gql(client, BARGAIN, {"id": started["id"]}, admin))["data"]["bargain"]
    assert seen["status"] == "ORDERED" and len(seen["cuts"]) == 3
    assert seen["activity"]["numbers"] == {"started": 1, "succeeded": 1, "sold": 1}
    assert await AuditLog.filter(action="bargainActivityCreate", succeeded=True).exists()

    # The order is cancelled (unpaid timeout): the bargain may be bought again, the unit is back.
    order_id = decode_id(placed["order"]["id"], "Order")
    await states.transition(order_id, OrderStatus.CANCELLED, actor=ActorKind.SYSTEM, reason="unpaid timeout")
    bargain = await Bargain.get(id=decode_id(started["id"], "Bargain"))
    assert (bargain.status, bargain.order_id) == (BargainStatus.SUCCEEDED, None)
    assert (await BargainActivity.get(id=bargain.activity_id)).sold == 0  # type: ignore[attr-defined]
    rebought = (await gql(client, PLACE, {"input": body, "key": "bg4"}, token))["data"]["placeOrder"]
    assert rebought["order"]["status"] == "PENDING_PAYMENT"


async def test_bad_setups_are_refused_field_by_field(client: Any) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    sku = await new_sku(price=5000, stock=3)
    moment = now()
    answer = await gql(
        client,
        ACTIVITY_CREATE,
        {
            "input": {
                "title": "坏的",
                "skuId": encode_id("Sku", sku.id),
                "startPrice": 6000,
                "floorPrice": 7000,
                "helpersNeeded": 0,
                "hoursToFinish": 0,
                "startsAt": moment.isoformat(),
                "endsAt": (moment - timedelta(hours=1)).isoformat(),
                "stock": 4,
            }
        },
        operator,
    )
    errors = {(e["field"], e["code"]) for e in answer["data"]["bargainActivityCreate"]["errors"]}
    assert errors == {
        ("input.startPrice", "BAD_USER_INPUT"),
        ("input.floorPrice", "BAD_USER_INPUT"),
        ("input.helpersNeeded", "BAD_USER_INPUT"),
        ("input.hoursToFinish", "BAD_USER_INPUT"),
        ("input.endsAt", "BAD_USER_INPUT"),
        ("input.stock", "BAD_USER_INPUT"),
    }


async def test_twenty_friends_cutting_at_once_make_exactly_n_cuts_and_never_cross_the_floor(
    client: Any,
) -> None:
    operator = await staff_token(StaffRole.OPERATOR)
    setup = await activity(client, operator, helpers=7, start=1000)
    starter, _ = await new_member()
    bargain = await service.start_bargain(starter.id, decode_id(setup["id"], "BargainActivity"))
    friends = [(await new_member())[0] for _ in range(20)]

    async def cut(helper_id: int) -> int | None:
        try:
            return (await service.help_bargain(helper_id, bargain.id)).amount
        except DomainError as exc:
            assert exc.code == ErrorCode.CONFLICT
            return None

    cuts = [c for c in await asyncio.gather(*(cut(f.id) for f in friends)) if c is not None]
    assert len(cuts) == 7 and sum(cuts) == 1000 - 100
    final = await Bargain.get(id=bargain.id)
    assert (final.current_price, final.cuts_done, final.status) == (100, 7, BargainStatus.SUCCEEDED)
    assert await BargainHelp.filter(bargain_id=bargain.id).count() == 7


async def test_a_helper_has_a_daily_cap(client: Any) -> None:
    from infra.settings import get_settings

    operator = await staff_token(StaffRole.OPERATOR)
    setup = await activity(client, operator, helpers=2)
    helper, _ = await new_member()
    cap = get_settings().bargain_helps_per_day
    for _ in range(cap):
        starter, _ = await new_member()
        started = await service.start_bargain(starter.id, decode_id(setup["id"], "BargainActivity"))
        await service.help_bargain(helper.id, started.id)
    starter, _ = await new_member()
    one_more = await service.start_bargain(starter.id, decode_id(setup["id"], "BargainActivity"))
    with pytest.raises(DomainError) as refused:
        await service.help_bargain(helper.id, one_more.id)
    assert refused.value.code == ErrorCode.LIMIT_EXCEEDED
    assert (await Bargain.get(id=one_more.id)).cuts_done == 0
