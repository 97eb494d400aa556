"""A member's requests are authenticated from what the process knows of the session (services/members/
session_memory.py), never beyond what Redis and the bus allow: a logout ends the session here at once and on the
other processes as soon as its event arrives, a lost event costs at most a second, and a level change reprices
at once. What it knows is not used while the bus is away and is dropped when the bus is back (tests/
test_bus_memories.py takes Redis away for real).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from infra import bus_follower
from infra.redis import get_redis
from infra.runtime import current_runtime
from models import Member
from services.errors import DomainError, ErrorCode
from services.members import session_memory
from services.members.tokens import SESSION_REVOKED, decode_access_token, revoke_session, session_key
from services.members.viewer import forget_member_snapshot, viewer_for_token
from tests.test_cart import new_member

pytestmark = pytest.mark.usefixtures("runtime")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    made = Clock()
    monkeypatch.setattr(session_memory, "_clock", made)
    return made


async def signed_in() -> tuple[Member, str, int]:
    member, token = await new_member()
    viewer = await viewer_for_token(token)  # Redis (or the database) vouched: this process now knows it
    assert viewer.member is not None
    session = decode_access_token(token).session_id
    assert session_memory.known_growth(session, member.id) == member.growth
    return member, token, session


async def refused(token: str) -> bool:
    try:
        await viewer_for_token(token)
    except DomainError as exc:
        assert exc.code is ErrorCode.UNAUTHENTICATED
        return True
    return False


async def test_a_logout_on_this_process_ends_the_session_here_at_once(clock: Clock) -> None:
    _, token, session = await signed_in()
    await revoke_session(session)
    assert await refused(token)


async def test_a_logout_on_another_process_arrives_with_its_event(clock: Clock) -> None:
    member, token, session = await signed_in()
    # What revoke_session does on another process: the record, Redis, the event (nothing forgotten here).
    await get_redis().set(session_key(session), SESSION_REVOKED)
    assert session_memory.known_growth(session, member.id) is not None, "still known until the event"
    await current_runtime().bus.publish(session_memory.SESSIONS_CHANNEL, {"sessionId": session})
    for _ in range(100):  # the clock stands still: it is the event, not age, that ends it
        if await refused(token):
            break
        await asyncio.sleep(0.01)
    assert await refused(token)


async def test_a_lost_event_costs_at_most_a_second(clock: Clock) -> None:
    _, token, session = await signed_in()
    await get_redis().set(session_key(session), SESSION_REVOKED)  # revoked elsewhere; its event lost
    clock.now += session_memory.FRESH_SECONDS / 2
    assert not await refused(token), "known alive, less than a second ago"
    clock.now += session_memory.FRESH_SECONDS / 2 + 0.001
    assert await refused(token), "after a second Redis is asked again"


async def test_a_growth_change_reprices_at_once(clock: Clock) -> None:
    member, token, _ = await signed_in()
    await Member.filter(id=member.id).update(growth=member.growth + 12_345)
    await forget_member_snapshot(member.id)
    viewer = await viewer_for_token(token)
    assert viewer.member is not None and viewer.member.growth == member.growth + 12_345


async def test_an_answer_read_while_an_event_arrived_is_not_kept(clock: Clock) -> None:
    member, _, session = await signed_in()
    session_memory.forget_session(session)
    seen = session_memory.generation()
    session_memory.forget_member(
        member.id + 10**9
    )  # any event, on any member, while the answer was on the way
    session_memory.learn(seen, session, member.id, member.growth)
    assert session_memory.known_growth(session, member.id) is None


async def test_a_session_is_known_only_for_the_member_its_token_names(clock: Clock) -> None:
    member, _, session = await signed_in()
    assert session_memory.known_growth(session, member.id + 1) is None


def test_nothing_is_kept_without_a_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_runtime() -> Any:
        raise RuntimeError("no runtime")

    monkeypatch.setattr(session_memory, "current_runtime", no_runtime)
    monkeypatch.setattr(bus_follower, "current_runtime", no_runtime)
    session_memory.learn(session_memory.generation(), 987_654_321, 1, 0)
    assert session_memory.known_growth(987_654_321, 1) is None
