"""The flash sale under two real server processes on PostgreSQL and a Redis of the test's own.

1,000 members race for 100 units through both processes: exactly 100 orders, nobody beyond the limit. Redis is
killed mid-sale and comes back empty: the counters are rebuilt from the database and the sale still ends at
exactly 100. A subscriber on one process hears the units won on the other.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from infra.clock import SHOP_TZ, now
from infra.settings import Settings
from models import (
    FlashSale,
    FlashSaleItem,
    FlashSalePurchase,
    FlashSaleSession,
    Member,
    MemberSession,
    OrderLine,
    Sku,
)
from schema.node import encode_id
from services.members import tokens as member_tokens
from tests.server_process import ServerProcess, child_env, running_server
from tests.test_cart import new_sku
from tests.test_faults import OwnRedis

pytestmark = [pytest.mark.realservices, pytest.mark.usefixtures("seeded")]

PLACE = """mutation($input: CheckoutInput!, $key: String!) {
  placeOrder(input: $input, idempotencyKey: $key) { order { id } errors { code } } }"""
STOCK_CHANGED = """subscription($id: ID!) { flashSaleStockChanged(sessionId: $id) { itemId remaining } }"""
MEASURED: dict[str, str] = {}


def seconds_to_shop_midnight() -> float:
    moment = now().astimezone(SHOP_TZ)
    return 24 * 3600 - (moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6)


async def wait_past_shop_midnight() -> None:
    """Slots do not cross midnight (shop time) and the servers run on the real clock: a sale set up in the last
    minutes of the shop's day would end under the test (slots here run until midnight), so a test starting then
    waits for the new day (at most three minutes, on the rare run that starts then) instead of being skipped."""
    left = seconds_to_shop_midnight()
    if left < 180:
        await asyncio.sleep(left + 2)


@pytest.fixture(scope="module")
async def own_redis(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OwnRedis]:
    redis = OwnRedis(tmp_path_factory.mktemp("flash-redis"))
    await redis.start()
    try:
        yield redis
    finally:
        await redis.stop()


@pytest.fixture(scope="module")
async def pair(
    settings: Settings, seeded: None, own_redis: OwnRedis, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    env = child_env(
        {
            "DATABASE_URL": str(settings.database_url),
            "REDIS_URL": own_redis.url,
            "DATA_DIR": str(tmp_path_factory.mktemp("flash")),
            "SECRET_KEY": settings.resolved_secret_key,
            "DB_POOL_MAX": "5",
            "REDIS_TIMEOUT_SECONDS": "1.0",
            "SWEEP_INTERVAL_SECONDS": "600",
            # The crowd comes from one address (the test): per-IP cost buckets would throttle it.
            "COST_BUCKET_SIZE": "0",
        }
    )
    async with running_server(env) as a, running_server(env) as b:
        yield a, b
    if MEASURED:
        print("\n" + "\n".join(f"  {name}: {value}" for name, value in MEASURED.items()))


async def crowd(count: int) -> list[tuple[int, str]]:
    """`count` members with an access token each, written in bulk (the race is the subject, not sign-up)."""
    tag = secrets.token_hex(4)
    await Member.bulk_create(
        [Member(openid=f"fs_{tag}_{i}", invite_code=f"F{tag}{i:05d}"[:16]) for i in range(count)]
    )
    ids = list(
        await Member.filter(openid__startswith=f"fs_{tag}_").order_by("id").values_list("id", flat=True)
    )
    expires = now() + timedelta(days=1)
    await MemberSession.bulk_create(
        [MemberSession(member_id=i, refresh_hash=secrets.token_hex(32), expires_at=expires) for i in ids]
    )
    sessions = dict(await MemberSession.filter(member_id__in=ids).values_list("member_id", "id"))
    return [(i, member_tokens._access_token(i, sessions[i])) for i in ids]


async def running_item(allotment: int, limit: int, stock: int) -> tuple[FlashSaleItem, Sku]:
    """An item selling now, in a slot of its own (earlier slots are disabled so none overlaps)."""
    await wait_past_shop_midnight()
    await FlashSaleSession.filter(enabled=True).update(enabled=False)
    moment = now().astimezone(SHOP_TZ)
    start = max(0, min(moment.hour * 60 + moment.minute - 1, 22 * 60))
    from services.catalog.lookups import default_shop_id

    shop_id = await default_shop_id()
    session = await FlashSaleSession.create(
        shop_id=shop_id, name="压测场", starts_minute=start, ends_minute=1440
    )
    today = moment.date()
    sale = await FlashSale.create(
        shop_id=shop_id,
        title="千人抢百件",
        starts_on=today - timedelta(days=1),
        ends_on=today + timedelta(days=1),
    )
    sku = await new_sku(price=19900, stock=stock)
    item = await FlashSaleItem.create(
        flash_sale=sale,
        session=session,
        sku_id=sku.id,
        product_id=sku.product_id,  # type: ignore[attr-defined]
        flash_price=990,
        allotment=allotment,
        per_member_limit=limit,
    )
    return item, sku


def flash_input(sku: Sku, item: FlashSaleItem) -> dict[str, Any]:
    return {
        "delivery": "PICKUP",
        "items": [
            {
                "skuId": encode_id("Sku", sku.id),
                "quantity": 1,
                "campaign": {"kind": "FLASH_SALE", "id": encode_id("FlashSaleItem", item.id)},
            }
        ],
    }


async def attempt_all(
    servers: tuple[ServerProcess, ServerProcess], attempts: list[tuple[str, str]], body: dict[str, Any]
) -> list[dict[str, Any]]:
    """Send every (token, key) attempt, alternating the processes, many at once; the placeOrder payloads. An
    answer without one says why in its code: the top-level error's code, or `HTTP <status>: <body>` for one
    that is not GraphQL JSON (a plain-text 500), for the caller to assert on. If an attempt fails outright,
    the others are cancelled: none of them goes on into the next test."""
    gate = asyncio.Semaphore(64)

    async def one(n: int, token: str, key: str) -> dict[str, Any]:
        async with gate:
            response = await servers[n % 2].post(PLACE, {"input": body, "key": key}, token)
        try:
            answer = response.json()
        except ValueError:
            return {
                "order": None,
                "errors": [{"code": f"HTTP {response.status_code}: {response.text[:200]}"}],
            }
        if answer.get("data") and answer["data"].get("placeOrder"):
            return dict(answer["data"]["placeOrder"])
        codes = [e.get("extensions", {}).get("code") for e in answer.get("errors") or [{}]]
        return {
            "order": None,
            "errors": [{"code": str(code or f"HTTP {response.status_code}")} for code in codes],
        }

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(n, t, k)) for n, (t, k) in enumerate(attempts)]
    return [task.result() for task in tasks]


async def bus_connected(server: ServerProcess, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        report = (await server.http.get(f"http://127.0.0.1:{server.port}/healthz")).json()
        if report["checks"]["eventBus"]["status"] == "ok":
            return
        assert time.monotonic() < deadline, (
            f"{server.port}'s event bus not connected within {within}s: {report}"
        )
        await asyncio.sleep(0.1)


def failed_on_the_server(codes: set[str]) -> set[str]:
    """Answers that are not a refusal: a plain-text or otherwise non-GraphQL answer, or an unexpected error."""
    return {c for c in codes if c.startswith("HTTP ") or c == "INTERNAL_SERVER_ERROR"}


async def assert_exactly(item: FlashSaleItem, sku: Sku, units: int, stock_before: int) -> None:
    lines = await OrderLine.filter(campaign_kind="FLASH_SALE", campaign_id=item.id).values_list(
        "order__member_id", "quantity"
    )
    assert sum(q for _, q in lines) == units
    per_member: dict[int, int] = {}
    for member_id, quantity in lines:
        per_member[member_id] = per_member.get(member_id, 0) + quantity
    assert max(per_member.values()) <= item.per_member_limit
    assert (await FlashSaleItem.get(id=item.id)).sold == units
    assert await FlashSalePurchase.filter(item_id=item.id, quantity__gt=item.per_member_limit).count() == 0
    assert (await Sku.get(id=sku.id)).stock == stock_before - units


async def test_a_thousand_members_race_for_a_hundred_units_through_two_processes(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    item, sku = await running_item(allotment=100, limit=1, stock=500)
    members = await crowd(1000)
    # Everyone tries once; the first 100 also try again with a second key at the same time.
    attempts = [(token, f"a{i}") for i, (_, token) in enumerate(members)]
    attempts += [(token, f"b{i}") for i, (_, token) in enumerate(members[:100])]
    started = time.monotonic()
    results = await attempt_all(pair, attempts, flash_input(sku, item))
    MEASURED["1,100 attempts on 2 processes"] = f"{time.monotonic() - started:.1f}s"
    assert sum(1 for r in results if r["order"]) == 100
    codes = {e["code"] for r in results if not r["order"] for e in r["errors"]}
    assert codes <= {"INSUFFICIENT_STOCK", "LIMIT_EXCEEDED"}, codes
    await assert_exactly(item, sku, 100, 500)


async def test_redis_killed_mid_sale_comes_back_empty_and_the_sale_still_ends_at_exactly_a_hundred(
    pair: tuple[ServerProcess, ServerProcess], own_redis: OwnRedis
) -> None:
    item, sku = await running_item(allotment=100, limit=1, stock=500)
    members = await crowd(200)
    body = flash_input(sku, item)
    # 40 units sell with Redis up; then Redis dies while the rest of the crowd is buying, and comes back empty.
    await attempt_all(pair, [(token, f"w1-{i}") for i, (_, token) in enumerate(members[:40])], body)
    assert await OrderLine.filter(campaign_kind="FLASH_SALE", campaign_id=item.id).count() == 40

    async def kill_while_selling() -> None:
        while True:
            if await OrderLine.filter(campaign_kind="FLASH_SALE", campaign_id=item.id).count() >= 55:
                break
            await asyncio.sleep(0.02)
        await own_redis.kill()
        await asyncio.sleep(1.0)
        await own_redis.start()  # empty: nothing was persisted

    killer = asyncio.create_task(kill_while_selling())
    try:
        second_wave = [(token, f"w2-{i}") for i, (_, token) in enumerate(members[40:])]
        results = await attempt_all(pair, second_wave, body)
        await asyncio.wait_for(killer, 30)
    finally:
        # Failed half-way: the killer must not kill Redis under the next test, nor leave it dead.
        killer.cancel()
        await asyncio.gather(killer, return_exceptions=True)
        if own_redis.process is None or own_redis.process.returncode is not None:
            await own_redis.start()
    # Whatever the outage cost the crowd (refusals while Redis was away), no unit sold twice and none was lost:
    # the stragglers buy what is left, and not one unit more.
    stragglers = [(token, f"w3-{i}") for i, (_, token) in enumerate(members[40:])]
    results += await attempt_all(pair, stragglers, body)
    codes = {e["code"] for r in results if not r["order"] for e in r["errors"]}
    MEASURED["refusals around the Redis restart"] = ", ".join(sorted(codes))
    assert not failed_on_the_server(codes), codes
    await assert_exactly(item, sku, 100, 500)


async def test_units_won_on_one_process_reach_a_subscriber_on_the_other(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = pair
    for server in pair:  # an earlier test may have restarted Redis: both buses must have subscribed again
        await bus_connected(server)
    item, sku = await running_item(allotment=5, limit=1, stock=10)
    [(_, token)] = await crowd(1)
    session_gid = encode_id("FlashSaleSession", item.session_id)  # type: ignore[attr-defined]
    async with connect(a.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=5.0) as ws:
        await ws.send(orjson.dumps({"type": "connection_init", "payload": {}}).decode())
        assert orjson.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            orjson.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": STOCK_CHANGED, "variables": {"id": session_gid}},
                }
            ).decode()
        )
        # No message says the subscription is in place: buy, and if nothing arrives, the event came too early.
        await asyncio.sleep(0.5)
        answer = (await b.post(PLACE, {"input": flash_input(sku, item), "key": "sub-1"}, token)).json()
        assert answer["data"]["placeOrder"]["order"], answer
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    assert message["type"] == "next", message
    assert message["payload"]["data"]["flashSaleStockChanged"] == {
        "itemId": encode_id("FlashSaleItem", item.id),
        "remaining": 4,
    }


async def test_twenty_friends_cut_one_bargain_through_two_processes_exactly_n_times(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    from models import Bargain, BargainActivity, BargainHelp
    from services.catalog.lookups import default_shop_id
    from services.marketing.bargain import service

    sku = await new_sku(price=9900, stock=5)
    moment = now()
    activity = await BargainActivity.create(
        shop_id=await default_shop_id(),
        title="二十人砍一刀",
        sku_id=sku.id,
        product_id=sku.product_id,  # type: ignore[attr-defined]
        start_price=9900,
        floor_price=100,
        helpers_needed=8,
        hours_to_finish=24,
        starts_at=moment - timedelta(minutes=1),
        ends_at=moment + timedelta(days=1),
        stock=5,
    )
    people = await crowd(21)
    bargain = await service.start_bargain(people[0][0], activity.id)
    help_mutation = "mutation($id: ID!) { bargainHelp(bargainId: $id) { cut errors { code } } }"
    bargain_gid = encode_id("Bargain", bargain.id)

    async def cut(n: int, token: str) -> dict[str, Any]:
        response = await pair[n % 2].post(help_mutation, {"id": bargain_gid}, token)
        return dict(response.json()["data"]["bargainHelp"])

    results = await asyncio.gather(*(cut(n, token) for n, (_, token) in enumerate(people[1:])))
    cuts = [r["cut"] for r in results if r["cut"] is not None]
    assert len(cuts) == 8 and sum(cuts) == 9900 - 100
    assert {e["code"] for r in results for e in r["errors"]} <= {"CONFLICT"}
    final = await Bargain.get(id=bargain.id)
    assert (final.current_price, final.cuts_done) == (100, 8)
    assert await BargainHelp.filter(bargain_id=bargain.id).count() == 8
