"""What this process knows of live member sessions: a member's request is authenticated without a Redis round trip.

A session that Redis (or the database) vouched for as alive, and its member's growth read with it, are kept for
at most FRESH_SECONDS. Every revocation and every growth change is published on the bus (SESSIONS_CHANNEL),
which every process hears, and drops what this process knows of that session or member; the process that makes
the change drops it at once, before publishing. While the bus is disconnected nothing is used or kept (Redis is
asked on every request), a reconnect drops everything (events may have been missed while it was away), and
without a bus nothing is kept. So a revoked session is refused by every process as soon
as the event arrives, and within FRESH_SECONDS even if the event was lost (then Redis answers, as before; a
revocation Redis could not hear of still takes up to SESSION_CHECK_SECONDS, as tokens.py says). The access
token's signature and expiry are checked on every request, as before: only the revocation check and the growth
read are remembered.

A generation guards the race of a read with an event: an answer read before an event that arrived while it was
on the way is not kept (as services/marketing/flash_sale/sold_out.py does for sold-out items).
"""

from __future__ import annotations

import logging
import time

from infra.bus_follower import BusFollower
from infra.redis import REDIS_ERRORS
from infra.runtime import current_runtime

log = logging.getLogger("lianmall.sessions")

SESSIONS_CHANNEL = "members.sessions"
# How long a session's "alive" and a member's growth are trusted without hearing of them.
FRESH_SECONDS = 1.0
# Sessions remembered at most (each for a second: this bounds a burst of distinct members, not a steady state).
MAX_KEPT = 65_536

_clock = time.monotonic
_alive: dict[int, tuple[int, int, float]] = {}  # session id -> (member id, growth, trusted until)
_generation = 0


def known_growth(session_id: int, member_id: int) -> int | None:
    """The member's growth when this process knows the session alive (less than FRESH_SECONDS ago, nothing
    heard since); None: ask Redis."""
    if not _follow_bus():
        return None
    known = _alive.get(session_id)
    if known is None or known[0] != member_id:
        return None
    if known[2] < _clock():
        del _alive[session_id]
        return None
    return known[1]


def generation() -> int:
    """Take before asking Redis; pass to `learn` with the answer."""
    return _generation


def learn(seen_at_generation: int, session_id: int, member_id: int, growth: int) -> None:
    """Keep "alive, with this growth", unless an event arrived while the answer was on the way."""
    # Follow first: a reset it makes (a new subscription) bumps the generation, and must refuse this answer.
    if not _follow_bus() or seen_at_generation != _generation:
        return
    if len(_alive) >= MAX_KEPT:
        _alive.clear()
    _alive[session_id] = (member_id, growth, _clock() + FRESH_SECONDS)


def forget_session(session_id: int) -> None:
    global _generation
    _generation += 1
    _alive.pop(session_id, None)


def forget_member(member_id: int) -> None:
    global _generation
    _generation += 1
    for session_id in [s for s, known in _alive.items() if known[0] == member_id]:
        del _alive[session_id]


def forget_all() -> None:
    global _generation
    _generation += 1
    _alive.clear()


async def session_revoked(session_id: int) -> None:
    """A session ended: forget it here and tell every process. Never raises (a lost event costs at most
    FRESH_SECONDS: Redis holds the revocation)."""
    forget_session(session_id)
    await _publish({"sessionId": session_id})


async def growth_changed(member_id: int) -> None:
    """A member's growth (so maybe level and prices) changed: forget it here and tell every process. Never raises."""
    forget_member(member_id)
    await _publish({"memberId": member_id})


async def _publish(payload: dict[str, object]) -> None:
    try:
        bus = current_runtime().bus
    except RuntimeError:
        return  # no runtime (the CLI): no process keeps anything without one
    try:
        await bus.publish(SESSIONS_CHANNEL, payload)
    except REDIS_ERRORS as exc:
        log.warning("%s not published (%s): other processes follow within %ss", payload, exc, FRESH_SECONDS)


def _on_event(payload: dict[str, object]) -> None:
    session_id, member_id = payload.get("sessionId"), payload.get("memberId")
    if isinstance(session_id, int):
        forget_session(session_id)
    if isinstance(member_id, int):
        forget_member(member_id)


_bus = BusFollower(lambda bus: bus.add_handler(SESSIONS_CHANNEL, _on_event), forget_all)
_follow_bus = _bus.follow
