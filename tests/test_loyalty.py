"""A member's loyalty: levels by growth price the catalog, the points ledger stays exact under a rush of spends,
daily sign-in builds a streak, and an invitation is bound once, never to oneself, never in a circle."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from infra.clock import SHOP_TZ, set_clock
from infra.runtime import Runtime
from infra.settings import Settings
from models import (
    AuditLog,
    Member,
    MemberLevel,
    PointsEntry,
    PointsReason,
    Product,
    ProductStatus,
    Sku,
    StaffRole,
)
from schema.node import encode_id
from services.access.staff import create_staff
from services.errors import DomainError, ErrorCode
from services.loyalty import levels, points, referral
from services.loyalty.sign_in import points_for_streak, sign_in
from services.members import invite_codes
from services.members.tokens import issue_tokens
from tests.conftest import BACKEND
from tests.graphql_client import gql

ERRORS = "errors { field message code }"
PRODUCT_PRICES = "query($id: ID!) { product(id: $id) { price { min max } skus { id price } } }"
SIGN_IN = f"mutation {{ signIn {{ points streak balance {ERRORS} }} }}"
BIND_INVITER = f"mutation($code: String!) {{ bindInviter(code: $code) {{ inviterNickname {ERRORS} }} }}"
POINTS_HISTORY = """
query($first: Int, $after: String) {
  pointsHistory(first: $first, after: $after) {
    totalCount
    edges { cursor node { id delta balanceAfter reason note createdAt } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""
MEMBER_LEVELS = (
    "{ memberLevels { id name minGrowth discountPercent freeShipping birthdayPoints priorityMinutes } }"
)
LEVEL_FIELDS = "level { id name minGrowth discountPercent freeShipping birthdayPoints priorityMinutes }"
LEVEL_CREATE = f"""
mutation($input: MemberLevelCreateInput!) {{ levelCreate(input: $input) {{ {LEVEL_FIELDS} {ERRORS} }} }}"""
LEVEL_UPDATE = f"""
mutation($id: ID!, $input: MemberLevelUpdateInput!) {{
  levelUpdate(id: $id, input: $input) {{ {LEVEL_FIELDS} {ERRORS} }} }}"""
LEVEL_DELETE = f"mutation($id: ID!) {{ levelDelete(id: $id) {{ deletedId {ERRORS} }} }}"


async def _member(growth: int = 0, points_balance: int = 0, nickname: str = "") -> Member:
    member = await Member.create(
        openid=f"o_{secrets.token_hex(8)}",
        invite_code=invite_codes.new_invite_code(),
        growth=growth,
        nickname=nickname,
    )
    if points_balance:
        await points.change_points(member.id, points_balance, PointsReason.ADJUSTMENT, "opening-balance")
    return member


async def _token(member: Member) -> str:
    return (await issue_tokens(member)).access_token


async def _balance(member: Member) -> int:
    return (await Member.get(id=member.id)).points


def _codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


@pytest.fixture
async def default_levels(database: None) -> dict[str, MemberLevel]:
    await levels.ensure_default_levels()
    return {level.name: level for level in await MemberLevel.all()}


@pytest.fixture
def shop_day() -> Iterator[list[datetime]]:
    """Drive the clock by hand: append the moment the shop should see (real time until the first one); the
    clock is real again afterwards."""
    moments: list[datetime] = []
    set_clock(lambda: moments[-1] if moments else datetime.now(SHOP_TZ))
    try:
        yield moments
    finally:
        set_clock(None)


# --- Levels ------------------------------------------------------------------------------------------------


async def test_the_default_levels_are_created_once(default_levels: dict[str, MemberLevel]) -> None:
    assert await levels.ensure_default_levels() == []
    rows = (
        await MemberLevel.all().order_by("min_growth").values_list("name", "min_growth", "discount_percent")
    )
    assert rows[:4] == [
        ("普通会员", 0, 100),
        ("银卡会员", 500, 98),
        ("金卡会员", 2000, 95),
        ("钻石会员", 10000, 90),
    ]
    diamond = default_levels["钻石会员"]
    assert diamond.free_shipping and diamond.priority_minutes == 30 and diamond.birthday_points > 0
    assert default_levels["金卡会员"].free_shipping and not default_levels["银卡会员"].free_shipping


async def test_a_member_has_the_highest_level_their_growth_reaches(
    default_levels: dict[str, MemberLevel],
) -> None:
    expected = {
        0: "普通会员",
        499: "普通会员",
        500: "银卡会员",
        1999: "银卡会员",
        2000: "金卡会员",
        10**6: "钻石会员",
    }
    for growth, name in expected.items():
        level = await levels.level_for_growth(growth)
        assert level is not None and level.name == name, growth


async def test_the_price_context_keys_on_the_level_not_the_member(
    default_levels: dict[str, MemberLevel],
) -> None:
    gold = default_levels["金卡会员"]
    context = levels.price_context(gold)
    assert (context.scope, context.is_member, context.level_percent) == (f"level:{gold.id}", True, 95)
    without_level = levels.price_context(None)
    assert (without_level.scope, without_level.is_member, without_level.level_percent) == (
        "member",
        True,
        100,
    )


async def test_a_level_change_made_by_another_process_reaches_this_one_through_the_bus(
    default_levels: dict[str, MemberLevel], runtime: Runtime
) -> None:
    silver = default_levels["银卡会员"]
    assert (await levels.level_for_growth(600)) == silver  # the table is now cached here
    try:
        # Another process's write: this one only hears of it on the bus.
        await MemberLevel.filter(id=silver.id).update(discount_percent=97)
        assert (await levels.level_for_growth(600)).discount_percent == 98  # type: ignore[union-attr]
        await runtime.bus.publish(levels.LEVELS_CHANNEL, {})
        for _ in range(100):
            if (await levels.level_for_growth(600)).discount_percent == 97:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the level table was not dropped on the bus message")
    finally:
        await MemberLevel.filter(id=silver.id).update(discount_percent=98)
        levels.invalidate_levels()


async def _product_with(member_prices: bool) -> Product:
    skus = Sku.filter(product__status=ProductStatus.ON_SALE, member_price__isnull=not member_prices)
    product_ids = set(await skus.values_list("product_id", flat=True))
    # Every SKU of the product must match, so the expected prices follow one rule.
    for product_id in sorted(product_ids):
        mixed = await Sku.filter(product_id=product_id, member_price__isnull=member_prices).exists()
        if not mixed:
            return await Product.get(id=product_id)
    raise AssertionError("the demo shop has no such product")


async def test_a_gold_member_sees_their_level_and_member_prices_while_a_guest_sees_list_prices(
    seeded: None, default_levels: dict[str, MemberLevel], client: httpx.AsyncClient
) -> None:
    gold_token = await _token(await _member(growth=2500))
    for has_member_prices in (False, True):
        product = await _product_with(has_member_prices)
        skus = {encode_id("Sku", s.id): s for s in await Sku.filter(product_id=product.id)}
        variables = {"id": encode_id("Product", product.id)}
        guest = (await gql(client, PRODUCT_PRICES, variables))["data"]["product"]
        gold = (await gql(client, PRODUCT_PRICES, variables, token=gold_token))["data"]["product"]
        for sku in guest["skus"]:
            assert sku["price"] == skus[sku["id"]].price
        for sku in gold["skus"]:
            model = skus[sku["id"]]
            level_price = (model.price * 95 + 50) // 100
            expected = min(level_price, model.member_price) if has_member_prices else level_price
            assert sku["price"] == expected, (has_member_prices, model.price, model.member_price)
        assert gold["price"] == {
            "min": min(s["price"] for s in gold["skus"]),
            "max": max(s["price"] for s in gold["skus"]),
        }
        assert gold["price"]["min"] < guest["price"]["min"]


async def _cache_hits(runtime: Runtime) -> int:
    return runtime.cache.stats.l1_hits + runtime.cache.stats.l2_hits


async def test_members_of_one_level_share_cached_answers_and_other_levels_do_not(
    seeded: None, default_levels: dict[str, MemberLevel], client: httpx.AsyncClient, runtime: Runtime
) -> None:
    product = await _product_with(False)
    variables = {"id": encode_id("Product", product.id)}
    first_gold, second_gold = (
        await _token(await _member(growth=2000)),
        await _token(await _member(growth=9999)),
    )
    diamond = await _token(await _member(growth=10000))

    # Its own request bytes: no earlier test's entry can answer it.
    query = PRODUCT_PRICES.replace("query(", "query SharedByLevel(")
    stats = runtime.cache.stats
    stores, hits = stats.stores, await _cache_hits(runtime)
    answer = await gql(client, query, variables, token=first_gold)
    assert (stats.stores, await _cache_hits(runtime)) == (stores + 1, hits)

    assert (await gql(client, query, variables, token=second_gold))["data"] == answer["data"]
    assert (stats.stores, await _cache_hits(runtime)) == (stores + 1, hits + 1), "same level, same entry"

    diamond_answer = await gql(client, query, variables, token=diamond)
    assert (stats.stores, await _cache_hits(runtime)) == (stores + 2, hits + 1), "another level, own entry"
    assert diamond_answer["data"]["product"]["price"]["min"] < answer["data"]["product"]["price"]["min"]


async def test_growth_that_reaches_a_new_level_reprices_the_next_request(
    seeded: None, default_levels: dict[str, MemberLevel], client: httpx.AsyncClient
) -> None:
    member = await _member(growth=1990)
    token = await _token(member)
    product = await _product_with(False)
    variables = {"id": encode_id("Product", product.id)}
    sku = await Sku.filter(product_id=product.id).order_by("price").first()
    assert sku is not None
    silver = (await gql(client, PRODUCT_PRICES, variables, token=token))["data"]["product"]["price"]["min"]
    assert silver == (sku.price * 98 + 50) // 100
    assert await levels.add_growth(member.id, 10) == 2000
    gold = (await gql(client, PRODUCT_PRICES, variables, token=token))["data"]["product"]["price"]["min"]
    assert gold == (sku.price * 95 + 50) // 100
    assert await levels.add_growth(member.id, -5000) == 0, "a refund never takes growth below zero"


async def test_staff_manage_levels_and_member_prices_follow_at_once(
    seeded: None, default_levels: dict[str, MemberLevel], client: httpx.AsyncClient
) -> None:
    _, operator = await create_staff(f"marketing-{secrets.token_hex(3)}", StaffRole.OPERATOR)
    _, warehouse = await create_staff(f"warehouse-{secrets.token_hex(3)}", StaffRole.WAREHOUSE)
    member_token = await _token(await _member(growth=3000))
    product = await _product_with(False)
    variables = {"id": encode_id("Product", product.id)}
    sku = await Sku.filter(product_id=product.id).order_by("price").first()
    assert sku is not None
    gold = default_levels["金卡会员"]
    gold_id = encode_id("MemberLevel", gold.id)

    before = await gql(client, PRODUCT_PRICES, variables, token=member_token)
    assert before["data"]["product"]["price"]["min"] == (sku.price * 95 + 50) // 100
    updated = await gql(
        client, LEVEL_UPDATE, {"id": gold_id, "input": {"discountPercent": 88}}, token=operator
    )
    assert updated["data"]["levelUpdate"]["level"]["discountPercent"] == 88
    assert updated["data"]["levelUpdate"]["level"]["freeShipping"] is True, "fields not given stay"
    audited = await AuditLog.filter(action="levelUpdate", target=gold_id).order_by("-id").first()
    assert audited is not None and audited.succeeded
    assert audited.input_summary["input"] == {"discountPercent": 88}
    after = await gql(client, PRODUCT_PRICES, variables, token=member_token)
    assert after["data"]["product"]["price"]["min"] == (sku.price * 88 + 50) // 100, "no stale cached price"
    await gql(client, LEVEL_UPDATE, {"id": gold_id, "input": {"discountPercent": 95}}, token=operator)

    level_input = {"name": "黑卡会员", "minGrowth": 50000, "discountPercent": 85, "freeShipping": True}
    created = (await gql(client, LEVEL_CREATE, {"input": level_input}, token=operator))["data"]["levelCreate"]
    assert created["errors"] == [] and created["level"]["minGrowth"] == 50000
    listed = (await gql(client, MEMBER_LEVELS))["data"]["memberLevels"]
    assert [level["minGrowth"] for level in listed] == sorted(level["minGrowth"] for level in listed)
    assert "黑卡会员" in [level["name"] for level in listed]

    clash = {"name": "黑卡会员", "minGrowth": 2000, "discountPercent": 0}
    refused = (await gql(client, LEVEL_CREATE, {"input": clash}, token=operator))["data"]["levelCreate"]
    assert refused["level"] is None
    assert {(e["field"], e["code"]) for e in refused["errors"]} == {
        ("input.discountPercent", "BAD_USER_INPUT")
    }
    clash["discountPercent"] = 80
    refused = (await gql(client, LEVEL_CREATE, {"input": clash}, token=operator))["data"]["levelCreate"]
    assert {(e["field"], e["code"]) for e in refused["errors"]} == {
        ("input.name", "CONFLICT"),
        ("input.minGrowth", "CONFLICT"),
    }

    for token, code in ((None, "UNAUTHENTICATED"), (member_token, "FORBIDDEN"), (warehouse, "FORBIDDEN")):
        denied = await gql(client, LEVEL_DELETE, {"id": created["level"]["id"]}, token=token)
        assert _codes(denied["data"]["levelDelete"]) == [code]

    deleted = await gql(client, LEVEL_DELETE, {"id": created["level"]["id"]}, token=operator)
    assert deleted["data"]["levelDelete"] == {"deletedId": created["level"]["id"], "errors": []}
    missing = await gql(client, LEVEL_DELETE, {"id": created["level"]["id"]}, token=operator)
    assert _codes(missing["data"]["levelDelete"]) == ["NOT_FOUND"]
    assert "黑卡会员" not in [
        level["name"] for level in (await gql(client, MEMBER_LEVELS))["data"]["memberLevels"]
    ]


# --- Points ledger -----------------------------------------------------------------------------------------


async def _ledger_is_consistent(member: Member) -> None:
    entries = await PointsEntry.filter(member_id=member.id).order_by("id")
    balance = 0
    for entry in entries:
        balance += entry.delta
        assert entry.balance_after == balance >= 0
    assert balance == await _balance(member)


async def test_fifty_concurrent_spends_never_overdraw(database: None) -> None:
    member = await _member(points_balance=1000)
    spend = 30

    async def one_spend(n: int) -> PointsEntry | ErrorCode:
        try:
            return await points.change_points(member.id, -spend, PointsReason.POINTS_MALL, f"mall:{n}")
        except DomainError as exc:
            return exc.code

    outcomes = await asyncio.gather(*(one_spend(n) for n in range(50)))
    succeeded = [o for o in outcomes if isinstance(o, PointsEntry)]
    assert len(succeeded) == 1000 // spend
    assert [o for o in outcomes if not isinstance(o, PointsEntry)] == [ErrorCode.INSUFFICIENT_POINTS] * (
        50 - 1000 // spend
    )
    assert await _balance(member) == 1000 % spend
    await _ledger_is_consistent(member)


async def test_fifty_concurrent_retries_of_one_spend_change_the_balance_once(database: None) -> None:
    member = await _member(points_balance=500)
    entries = await asyncio.gather(
        *(points.change_points(member.id, -120, PointsReason.CHECKOUT, "order:42") for _ in range(50))
    )
    assert len({entry.id for entry in entries}) == 1
    assert entries[0].balance_after == 380 == await _balance(member)
    await _ledger_is_consistent(member)


async def test_a_retried_change_is_a_no_op_and_a_reused_key_is_refused(database: None) -> None:
    member = await _member(points_balance=100)
    first = await points.change_points(member.id, 20, PointsReason.REVIEW, "review:7", note="晒单")
    again = await points.change_points(member.id, 20, PointsReason.REVIEW, "review:7", note="晒单")
    assert again.id == first.id and await _balance(member) == 120
    with pytest.raises(DomainError) as reused:
        await points.change_points(member.id, 50, PointsReason.REVIEW, "review:7")
    assert reused.value.code is ErrorCode.CONFLICT
    with pytest.raises(DomainError) as overdraw:
        await points.change_points(member.id, -121, PointsReason.POINTS_MALL, "mall:big")
    assert overdraw.value.code is ErrorCode.INSUFFICIENT_POINTS
    for bad in (0, points.MAX_DELTA + 1):
        with pytest.raises(DomainError) as refused:
            await points.change_points(member.id, bad, PointsReason.ADJUSTMENT, f"bad:{bad}")
        assert refused.value.code is ErrorCode.BAD_USER_INPUT
    with pytest.raises(DomainError) as nobody:
        await points.change_points(10**9, 5, PointsReason.ADJUSTMENT, "ghost")
    assert nobody.value.code is ErrorCode.NOT_FOUND
    assert await _balance(member) == 120
    await _ledger_is_consistent(member)


@pytest.mark.skipif(BACKEND == "real", reason="SQLite's database lock")
async def test_a_locked_sqlite_database_is_waited_out_and_retried(
    database: None, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    member, bystander = await _member(points_balance=50), await _member()
    holding = threading.Event()

    def another_process_writes() -> None:
        connection = sqlite3.connect(settings.data_dir / "lianmall.sqlite3", isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            holding.set()
            time.sleep(0.3)
            connection.execute("UPDATE members SET nickname = 'busy' WHERE id = ?", (bystander.id,))
            connection.execute("COMMIT")
        finally:
            connection.close()

    writer = asyncio.create_task(asyncio.to_thread(another_process_writes))
    await asyncio.to_thread(holding.wait)
    with caplog.at_level(logging.INFO, logger="lianmall.db"):
        entry = await points.change_points(member.id, -20, PointsReason.POINTS_MALL, "mall:locked")
    await writer
    # Our read snapshot went stale while the other writer held the lock: SQLite refused, the retry succeeded.
    assert any("database busy" in r.getMessage() for r in caplog.records)
    assert entry.balance_after == 30 == await _balance(member)
    await _ledger_is_consistent(member)


async def test_points_history_pages_through_the_viewers_own_ledger_newest_first(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    member, stranger = await _member(), await _member(points_balance=999)
    for n in range(1, 6):
        await points.change_points(member.id, n * 10, PointsReason.SHARE, f"share:{n}", note=f"分享 {n}")
    token = await _token(member)

    seen: list[dict[str, Any]] = []
    after = None
    pages = []
    while True:
        body = await gql(client, POINTS_HISTORY, {"first": 2, "after": after}, token=token)
        page = body["data"]["pointsHistory"]
        assert page["totalCount"] == 5
        pages.append(len(page["edges"]))
        seen += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == [2, 2, 1]
    assert [n["delta"] for n in seen] == [50, 40, 30, 20, 10]
    assert [n["balanceAfter"] for n in seen] == [150, 100, 60, 30, 10]
    assert {n["reason"] for n in seen} == {"SHARE"} and seen[0]["note"] == "分享 5"
    assert encode_id("PointsEntry", (await PointsEntry.get(member_id=stranger.id)).id) not in {
        n["id"] for n in seen
    }

    anonymous = await gql(client, POINTS_HISTORY, {"first": 2}, expect_errors=True)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    too_many = await gql(client, POINTS_HISTORY, {"first": 1000}, token=token, expect_errors=True)
    assert too_many["errors"][0]["extensions"]["code"] == "PAGE_SIZE_EXCEEDED"


# --- Daily sign-in -----------------------------------------------------------------------------------------


def test_the_streak_table_caps_at_its_last_value() -> None:
    table = [5, 5, 10, 10, 15, 15, 30]
    assert [points_for_streak(day, table) for day in range(1, 11)] == [5, 5, 10, 10, 15, 15, 30, 30, 30, 30]


async def test_signing_in_daily_builds_a_streak_in_shop_time(
    runtime: Runtime, client: httpx.AsyncClient, shop_day: list[datetime]
) -> None:
    member = await _member()
    token = await _token(member)  # issued on the real clock: the token's own expiry is checked against it
    start = datetime(2026, 3, 1, 8, 0, tzinfo=SHOP_TZ)

    shop_day.append(start)
    first = (await gql(client, SIGN_IN, token=token))["data"]["signIn"]
    assert first == {"points": 5, "streak": 1, "balance": 5, "errors": []}
    shop_day.append(start.replace(hour=23, minute=59))
    again = (await gql(client, SIGN_IN, token=token))["data"]["signIn"]
    assert again["points"] is None and _codes(again) == ["ALREADY_SIGNED_IN"]

    # 16:30 UTC on 1 March is already 00:30 on 2 March in Shanghai: a new day.
    shop_day.append(datetime.fromisoformat("2026-03-01T16:30:00+00:00"))
    second = (await gql(client, SIGN_IN, token=token))["data"]["signIn"]
    assert (second["streak"], second["points"], second["balance"]) == (2, 5, 10)

    for day in range(2, 8):
        shop_day.append(start + timedelta(days=day))
        await sign_in(member.id)
    eighth = await _balance(member)
    assert eighth == 5 + 5 + 10 + 10 + 15 + 15 + 30 + 30

    shop_day.append(start + timedelta(days=10))  # a day missed: the streak starts over
    restart = (await gql(client, SIGN_IN, token=token))["data"]["signIn"]
    assert (restart["streak"], restart["points"], restart["balance"]) == (1, 5, eighth + 5)

    entries = await PointsEntry.filter(member_id=member.id).order_by("id")
    assert {e.reason for e in entries} == {PointsReason.SIGN_IN}
    assert (
        entries[0].idempotency_key == "sign-in:2026-03-01"
        and entries[1].idempotency_key == "sign-in:2026-03-02"
    )
    await _ledger_is_consistent(member)

    anonymous = (await gql(client, SIGN_IN))["data"]["signIn"]
    assert _codes(anonymous) == ["UNAUTHENTICATED"]


async def test_two_sign_ins_at_once_credit_one_day(database: None, shop_day: list[datetime]) -> None:
    member = await _member()
    shop_day.append(datetime(2026, 4, 1, 9, 0, tzinfo=SHOP_TZ))
    outcomes = await asyncio.gather(*(sign_in(member.id) for _ in range(10)), return_exceptions=True)
    credited = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, DomainError) and o.code is ErrorCode.ALREADY_SIGNED_IN]
    assert len(credited) == 1 and len(refused) == 9
    assert await _balance(member) == 5


async def test_the_streak_bonus_table_is_a_setting(
    database: None, settings: Settings, shop_day: list[datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "sign_in_points", [1, 2, 3])
    member = await _member()
    credited = []
    for day in range(5):
        shop_day.append(datetime(2026, 5, 1 + day, 12, 0, tzinfo=SHOP_TZ))
        credited.append((await sign_in(member.id)).points)
    assert credited == [1, 2, 3, 3, 3]


# --- Referral ----------------------------------------------------------------------------------------------


def test_invite_codes_are_short_and_unambiguous() -> None:
    codes = {invite_codes.new_invite_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(code) == 8 and not set(code) & set("0O1I") for code in codes)
    assert set("".join(codes)) <= set(invite_codes.INVITE_ALPHABET)


async def test_an_inviter_is_bound_once_never_oneself_never_in_a_circle(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    alice, bob, carol, dave, erin = [
        await _member(nickname=name) for name in ("阿丽", "小博", "卡罗", "大卫", "艾琳")
    ]
    bob_token = await _token(bob)

    bound = await gql(client, BIND_INVITER, {"code": f" {alice.invite_code.lower()} "}, token=bob_token)
    assert bound["data"]["bindInviter"] == {"inviterNickname": "阿丽", "errors": []}
    twice = await gql(client, BIND_INVITER, {"code": carol.invite_code}, token=bob_token)
    assert _codes(twice["data"]["bindInviter"]) == ["ALREADY_BOUND"]

    alice_token = await _token(alice)
    own = await gql(client, BIND_INVITER, {"code": alice.invite_code}, token=alice_token)
    assert _codes(own["data"]["bindInviter"]) == ["BAD_USER_INPUT"]
    circle = await gql(client, BIND_INVITER, {"code": bob.invite_code}, token=alice_token)
    assert _codes(circle["data"]["bindInviter"]) == ["CONFLICT"]
    unknown = await gql(client, BIND_INVITER, {"code": "ZZZZ2222"}, token=alice_token)
    assert _codes(unknown["data"]["bindInviter"]) == ["NOT_FOUND"]
    anonymous = await gql(client, BIND_INVITER, {"code": alice.invite_code})
    assert _codes(anonymous["data"]["bindInviter"]) == ["UNAUTHENTICATED"]

    await referral.bind_inviter(carol.id, bob.invite_code)
    await referral.bind_inviter(dave.id, carol.invite_code)
    await referral.bind_inviter(erin.id, dave.invite_code)
    with pytest.raises(DomainError) as far_circle:
        await referral.bind_inviter(alice.id, erin.invite_code)
    assert far_circle.value.code is ErrorCode.CONFLICT

    assert await referral.inviter_chain(erin.id) == [dave.id, carol.id, bob.id]
    assert await referral.inviter_chain(erin.id, depth=5) == [dave.id, carol.id, bob.id, alice.id]
    assert await referral.inviter_chain(carol.id) == [bob.id, alice.id]
    assert await referral.inviter_chain(alice.id) == []
    assert (await Member.get(id=alice.id)).inviter_id is None


async def test_two_members_binding_each_other_at_once_never_make_a_circle(database: None) -> None:
    for _ in range(5):
        xia, yu = await _member(), await _member()
        outcomes = await asyncio.gather(
            referral.bind_inviter(xia.id, yu.invite_code),
            referral.bind_inviter(yu.id, xia.invite_code),
            return_exceptions=True,
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(failures) == 1
        assert isinstance(failures[0], DomainError) and failures[0].code is ErrorCode.CONFLICT
        inviters = {(await Member.get(id=m.id)).inviter_id for m in (xia, yu)}
        assert None in inviters
