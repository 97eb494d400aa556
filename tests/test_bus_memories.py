"""What a process keeps in memory because the bus tells it of changes is trusted only while the bus is connected.

The response cache's L1, member sessions, sold-out flash items, member levels and the running promotions are
kept fresh by events from other processes. While the bus is away (Redis dead or hung, the subscription lost)
those events cannot arrive, so every lookup goes to the source (Redis or the database) as if the memory were
empty, and nothing is added to it; when the bus is back the memories start empty (events were missed
meanwhile), and an answer read before the loss is not kept after it. Each test fills the memories in a runtime
of its own, takes Redis away from it and looks: on the embedded backend a Redis stand-in whose connection is
cut, on the real one a redis-server of the test's own (never the shared one), killed or frozen (SIGSTOP: it
accepts connections and answers nothing).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import fakeredis
import pytest

import infra.redis
import infra.runtime
from infra.bus import ANSWER_SECONDS, HEARTBEAT_SECONDS
from infra.clock import now
from infra.query_counter import count_queries
from infra.response_cache import CachedResponse
from infra.runtime import Runtime, start_runtime, stop_runtime
from infra.settings import Settings
from models import Member
from services.loyalty.levels import member_levels
from services.marketing.flash_sale import sold_out
from services.marketing.promotions.engine import running_promotions
from services.members import session_memory
from services.members.tokens import decode_access_token
from services.members.viewer import viewer_for_token
from tests.conftest import BACKEND
from tests.test_cart import new_member
from tests.test_faults import OwnRedis

# The bus notices a dead connection at once, a silent one after a heartbeat and an unanswered PING.
NOTICED_WITHIN = HEARTBEAT_SECONDS + ANSWER_SECONDS + 2.0
# After Redis is back the listener resubscribes within its backoff (at most 2 s between attempts).
BACK_WITHIN = 10.0
SOLD_OUT_ITEM = 987_654_321  # no flash item has this id: only this test's learn() names it


@dataclass
class Loss:
    """A runtime of the test's own, and how to take its Redis away and give it back."""

    runtime: Runtime
    take_away: Callable[[], Awaitable[None]]
    give_back: Callable[[], Awaitable[None]]


@dataclass
class Remembered:
    member: Member
    session: int
    cache_key: str


async def until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s")
        await asyncio.sleep(0.02)


@pytest.fixture
async def own_runtime(
    runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., Awaitable[Runtime]]]:
    # monkeypatch puts the session's runtime and Redis back after this test stopped its own.
    monkeypatch.setattr(infra.runtime, "_current", infra.runtime._current)
    monkeypatch.setattr(infra.redis, "_client", infra.redis._client)
    started: list[bool] = []

    async def start(redis_url: str | None, redis: object = None) -> Runtime:
        own = settings.model_copy(update={"redis_url": redis_url})
        made = await start_runtime(own, redis=redis)  # type: ignore[arg-type]
        started.append(redis is None)
        await until(lambda: made.bus.connected, BACK_WITHIN, "the bus subscribed")
        return made

    yield start
    if started:
        await stop_runtime(close_redis=started[0])


@pytest.fixture(params=["killed", "frozen"] if BACKEND == "real" else ["cut"])
async def loss(
    request: pytest.FixtureRequest, own_runtime: Callable[..., Awaitable[Runtime]], tmp_path: Path
) -> AsyncIterator[Loss]:
    if request.param == "cut":
        server = fakeredis.FakeServer()
        runtime = await own_runtime(None, fakeredis.FakeAsyncRedis(server=server))

        async def cut() -> None:
            server.connected = False

        async def restore() -> None:
            server.connected = True

        try:
            yield Loss(runtime, cut, restore)
        finally:
            server.connected = True
        return
    redis = OwnRedis(tmp_path)
    await redis.start()
    try:
        runtime = await own_runtime(redis.url)
        if request.param == "killed":
            yield Loss(runtime, redis.kill, redis.start)
        else:

            async def freeze() -> None:
                redis.freeze()

            async def thaw() -> None:
                assert redis.process is not None
                redis.process.send_signal(signal.SIGCONT)

            yield Loss(runtime, freeze, thaw)
    finally:
        if redis.process is not None and redis.process.returncode is None:
            redis.process.send_signal(signal.SIGCONT)
        await redis.stop()


async def remember_everything(runtime: Runtime) -> Remembered:
    """Fill each memory while the bus is connected, and check that it is used."""
    cache = runtime.cache
    marks = await cache.begin()
    assert marks is not None
    key = f"bus-memories-{time.monotonic_ns()}"
    assert await cache.store(key, CachedResponse(b"{}", frozenset({"p:bus-memories"})), marks)
    assert cache.get_local(key) is not None
    member, token = await new_member()
    await viewer_for_token(token)  # Redis (or the database) vouched for the session: kept
    session = decode_access_token(token).session_id
    assert session_memory.known_growth(session, member.id) == member.growth
    assert sold_out.refuses(SOLD_OUT_ITEM, member.id, 1) is None, "nothing known: ask Redis"
    sold_out.learn(SOLD_OUT_ITEM, sold_out.generation(SOLD_OUT_ITEM), 0, frozenset())  # what Redis said
    assert sold_out.refuses(SOLD_OUT_ITEM, member.id, 1) is True
    await member_levels()
    with count_queries() as counter:
        await member_levels()
    assert counter.count == 0, "the level table is kept"
    await running_promotions(now())
    with count_queries() as counter:
        await running_promotions(now())
    assert counter.count == 0, "the running promotions are kept"
    return Remembered(member, session, key)


async def assert_forgotten(runtime: Runtime, kept: Remembered) -> None:
    assert runtime.cache.get_local(kept.cache_key) is None, "the response cache's L1"
    assert session_memory.known_growth(kept.session, kept.member.id) is None, "the member's session"
    assert sold_out.refuses(SOLD_OUT_ITEM, kept.member.id, 1) is None, "the sold-out item"
    with count_queries() as counter:
        await member_levels()
    assert counter.count == 1, "the level table is read from the database"
    with count_queries() as counter:
        await running_promotions(now())
    assert counter.count == 1, "the running promotions are read from the database"


async def test_nothing_the_bus_keeps_fresh_is_used_or_kept_while_it_is_away(loss: Loss) -> None:
    runtime = loss.runtime
    kept = await remember_everything(runtime)
    # Answers on their way while Redis goes away (read before, delivered after).
    session_seen = session_memory.generation()
    item_seen = sold_out.generation(SOLD_OUT_ITEM)

    await loss.take_away()
    await until(lambda: not runtime.bus.connected, NOTICED_WITHIN, "the bus noticed Redis gone")
    await assert_forgotten(runtime, kept)
    # Nothing is added while it is away either: the next lookup would trust it.
    session_memory.learn(session_memory.generation(), kept.session, kept.member.id, kept.member.growth)
    assert session_memory.known_growth(kept.session, kept.member.id) is None
    sold_out.learn(SOLD_OUT_ITEM, sold_out.generation(SOLD_OUT_ITEM), 0, frozenset())
    assert sold_out.refuses(SOLD_OUT_ITEM, kept.member.id, 1) is None
    await assert_forgotten(runtime, kept)

    await loss.give_back()
    await until(lambda: runtime.bus.connected, BACK_WITHIN, "the bus subscribed again")
    # Events were missed meanwhile: every memory starts empty, and answers read before the loss stay out.
    await assert_forgotten(runtime, kept)
    session_memory.learn(session_seen, kept.session, kept.member.id, kept.member.growth)
    assert session_memory.known_growth(kept.session, kept.member.id) is None
    sold_out.learn(SOLD_OUT_ITEM, item_seen, 0, frozenset())
    assert sold_out.refuses(SOLD_OUT_ITEM, kept.member.id, 1) is None
    # And the memories work again.
    await remember_everything(runtime)
