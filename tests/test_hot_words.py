"""Hot search words come from many shoppers: one member or address counts once per term per day, terms are
normalised and bounded, each day keeps a bounded tally, and staff take a term off at once.

The reported attack: 300 anonymous searches in 0.2 s made `加微信tg_evil领券` the first hot word every shopper
sees. Here the same 300 searches from one address count once; from 300 addresses they count, and staff
blocking the term removes it at once.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from infra.clock import SHOP_TZ, set_clock
from infra.settings import Settings
from models import AuditLog, SearchTermBlock, StaffRole
from services.access.staff import create_staff
from services.catalog import hot_words
from services.catalog.hot_words import hot_search_words, record_search
from tests.graphql_client import gql
from tests.test_cart import new_member

SPAM = "加微信tg_evil领券"
SEARCH = "query($k: String!) { products(first: 2, filter: {keyword: $k}) { totalCount } }"
HOT = "{ hotSearchWords(limit: 10) }"
BLOCK = "mutation($t: String!) { hotSearchWordBlock(term: $t) { blocked { term } errors { field code } } }"
UNBLOCK = "mutation($t: String!) { hotSearchWordUnblock(term: $t) { term unblocked errors { field code } } }"
BLOCKLIST = "{ hotSearchWordBlocklist(first: 10) { totalCount edges { node { term blockedAt } } } }"

_addresses = itertools.count(1)


def next_address() -> str:
    n = next(_addresses)
    return f"172.{16 + (n >> 16) % 16}.{(n >> 8) & 255}.{n & 255}"


_test_dates = itertools.count()


@pytest.fixture
def shop_clock() -> Iterator[list[datetime]]:
    """A clock the test moves by assigning `clock[0]`; reset afterwards."""
    # A month no other test writes hot words for, since the Redis database is shared by the session.
    clock = [datetime(2031, 3, 20, 12, 0, tzinfo=SHOP_TZ) + timedelta(days=30 * next(_test_dates))]
    set_clock(lambda: clock[0])
    yield clock
    set_clock(None)


@pytest.fixture
def anyone_counts(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "hot_search_min_searchers", 1)


# --- counting ----------------------------------------------------------------------------------------------


async def test_a_searcher_counts_once_per_term_per_day(
    redis: Redis, database: None, shop_clock: list[datetime]
) -> None:
    key = hot_words._hot_key(shop_clock[0].date())
    for keyword in ("Ｔ恤", " t 恤 ", "T恤", "t恤"):  # one term once normalised (NFKC, case, spaces)
        await record_search(keyword, "ip:198.51.100.1")
    assert await redis.zscore(key, "t恤") == 1
    assert await record_search("t恤", "m:7") and await record_search("t恤", "ip:198.51.100.2")
    assert await redis.zscore(key, "t恤") == 3
    for blank_or_long in ("", "   ", "x" * 33):
        assert not await record_search(blank_or_long, "ip:198.51.100.3")
    assert not await record_search("t恤", None), "staff and partners are not counted"
    # The next day the same searcher counts again.
    shop_clock[0] += timedelta(days=1)
    assert await record_search("t恤", "ip:198.51.100.1")


async def test_a_searcher_adds_a_bounded_number_of_terms_a_day(
    redis: Redis, database: None, settings: Settings, shop_clock: list[datetime]
) -> None:
    allowed = settings.hot_search_terms_per_searcher
    counted = [await record_search(f"词{i}", "ip:203.0.113.5") for i in range(allowed + 20)]
    assert counted == [True] * allowed + [False] * 20
    assert await redis.scard(f"search:hot:by:{shop_clock[0]:%Y%m%d}:ip:203.0.113.5") == allowed


async def test_each_day_keeps_a_bounded_tally_of_its_most_searched_terms(
    redis: Redis,
    database: None,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    shop_clock: list[datetime],
) -> None:
    monkeypatch.setattr(settings, "hot_search_day_capacity", 5)
    for searcher in range(4):  # the steady favourites
        for term in ("甲", "乙", "丙"):
            await record_search(term, f"m:{searcher}")
    sizes = []
    for i in range(60):  # a stream of one-off terms from many addresses
        await record_search(f"一次{i}", f"ip:192.0.2.{i}")
        sizes.append(await redis.zcard(hot_words._hot_key(shop_clock[0].date())))
    assert max(sizes) <= 10
    kept = await redis.zrange(hot_words._hot_key(shop_clock[0].date()), 0, -1, desc=True, withscores=True)
    assert sorted((t.decode() if isinstance(t, bytes) else t, s) for t, s in kept[:3]) == [
        ("丙", 4),
        ("乙", 4),
        ("甲", 4),
    ]


async def test_hot_words_add_up_seven_days_with_older_days_weighing_less(
    redis: Redis, database: None, shop_clock: list[datetime], anyone_counts: None
) -> None:
    today = shop_clock[0]

    async def searched(days_ago: int, term: str, searchers: int) -> None:
        shop_clock[0] = today - timedelta(days=days_ago)
        for i in range(searchers):
            await record_search(term, f"m:{days_ago}-{i}")

    await searched(7, "旧款大衣", 9)  # one day before the window
    await searched(6, "连衣裙", 4)  # 4 x 0.8^6 = 1.05
    await searched(3, "手机壳", 3)  # 3 x 0.8^3 = 1.54
    await searched(0, "运动鞋", 2)  # 2
    await searched(0, "连衣裙", 1)  # 1.05 + 1
    shop_clock[0] = today
    assert await hot_search_words(10) == ["连衣裙", "运动鞋", "手机壳"]
    assert await hot_search_words(1) == ["连衣裙"]
    # A day later the 6-day-old searches fall out of the window: 连衣裙 keeps 1 x 0.8, below one searcher.
    shop_clock[0] = today + timedelta(days=1)
    assert await hot_search_words(10) == ["运动鞋", "手机壳"]


async def test_a_term_needs_several_searchers_to_show(
    redis: Redis, database: None, settings: Settings, shop_clock: list[datetime]
) -> None:
    for i in range(settings.hot_search_min_searchers - 1):
        await record_search("冷门词", f"m:{i}")
    assert "冷门词" not in await hot_search_words(50)
    await record_search("冷门词", "m:last")
    assert "冷门词" in await hot_search_words(50)


async def test_hot_words_use_the_shop_date_and_expire(
    redis: Redis, database: None, shop_clock: list[datetime]
) -> None:
    # 23:30 in UTC is already the next morning in Shanghai.
    shop_clock[0] = datetime.fromisoformat("2031-04-01T23:30:00+00:00")
    await record_search("保温杯", "m:1")
    assert await redis.zscore("search:hot:20310402", "保温杯") == 1
    assert not await redis.exists("search:hot:20310401")
    assert 7 * 86400 < await redis.ttl("search:hot:20310402") <= 8 * 86400
    # The searcher's own terms are kept only until that day is over (here 16:00 UTC).
    assert 0 < await redis.ttl("search:hot:by:20310402:m:1") <= 16.5 * 3600 + 3600


# --- the attack, through the API ---------------------------------------------------------------------------


@asynccontextmanager
async def from_address(app: Any, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def hot(client: httpx.AsyncClient) -> list[str]:
    words: list[str] = (await gql(client, HOT))["data"]["hotSearchWords"]
    return words


async def test_stuffing_from_one_address_or_member_does_not_make_a_hot_word(
    app: Any, client: httpx.AsyncClient, seeded: None, redis: Redis
) -> None:
    async with from_address(app, "198.51.100.66") as attacker:
        for _ in range(300):  # answered from the response cache after the first: still one searcher
            await gql(attacker, SEARCH, {"k": SPAM})
    _, token = await new_member()
    for _ in range(50):
        await gql(client, SEARCH, {"k": SPAM}, token)
    assert SPAM not in await hot(client)
    assert await redis.zscore(hot_words._hot_key(hot_words._shop_today()), SPAM.lower()) == 2


async def test_many_searchers_count_and_staff_block_the_term_at_once(
    app: Any, client: httpx.AsyncClient, seeded: None, redis: Redis
) -> None:
    term = SPAM.lower()
    for _ in range(300):
        async with from_address(app, next_address()) as shopper:
            await gql(shopper, SEARCH, {"k": SPAM})
    assert (await hot(client))[0] == term, "300 different shoppers make a hot word"

    _, operator = await create_staff("hot-words-operator", StaffRole.OPERATOR)
    blocked = await gql(client, BLOCK, {"t": f" {SPAM.upper()} "}, operator)
    assert blocked["data"]["hotSearchWordBlock"] == {"blocked": {"term": term}, "errors": []}
    assert term not in await hot(client), "gone at once, for every shopper"
    async with from_address(app, next_address()) as newcomer:
        await gql(newcomer, SEARCH, {"k": SPAM})
    assert await redis.zscore(hot_words._hot_key(hot_words._shop_today()), term) is None, "no longer counted"
    listed = (await gql(client, BLOCKLIST, token=operator))["data"]["hotSearchWordBlocklist"]
    assert term in [e["node"]["term"] for e in listed["edges"]]
    assert await AuditLog.filter(action="hotSearchWordBlock", succeeded=True).exists()

    # Redis losing the blocklist's mirror does not bring the term back: the database holds it.
    await redis.delete("search:hot:blocked")
    await redis.zadd(hot_words._hot_key(hot_words._shop_today()), {term: 500})
    assert term not in await hot(client)
    assert await redis.sismember("search:hot:blocked", term)

    unblocked = await gql(client, UNBLOCK, {"t": SPAM}, operator)
    assert unblocked["data"]["hotSearchWordUnblock"] == {"term": term, "unblocked": True, "errors": []}
    assert not await SearchTermBlock.filter(term=term).exists()


@pytest.mark.parametrize(
    ("role", "term", "error"),
    [
        (StaffRole.WAREHOUSE, "正常词", {"field": None, "code": "FORBIDDEN"}),
        (StaffRole.OPERATOR, "   ", {"field": "term", "code": "BAD_USER_INPUT"}),
        (StaffRole.OPERATOR, "长" * 33, {"field": "term", "code": "BAD_USER_INPUT"}),
    ],
)
async def test_blocking_needs_content_write_and_a_term(
    client: httpx.AsyncClient, database: None, role: StaffRole, term: str, error: dict[str, Any]
) -> None:
    _, token = await create_staff(f"hot-{role.value.lower()}-{len(term)}", role)
    body = await gql(client, BLOCK, {"t": term}, token)
    assert body["data"]["hotSearchWordBlock"]["errors"] == [error]
    _, member_token = await new_member()
    refused = await gql(client, BLOCKLIST, token=member_token, expect_errors=True)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
