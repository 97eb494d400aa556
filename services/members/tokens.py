"""Member sessions: short-lived signed access tokens, rotating refresh tokens, revocation on every process.

An access token is a JWT (HS256, the server's secret key) naming the member and the session. The database is
the record of which sessions are alive (`MemberSession.revoked_at`); Redis only caches its verdict, so a Redis
flush or restart can never bring a logged-out session back:
- `auth:session:<id>` = "revoked" is written by every revocation (for as long as an access token could live);
- `auth:session:<id>` = "ok" says the database found the session alive less than SESSION_CHECK_SECONDS ago.
  It is set only if absent (NX), so it never overwrites a revocation.
With neither (first request of a session in that window, a flushed Redis, a Redis that does not answer) the
database decides. A revocation that could not reach Redis (this process cut off from it) is trusted by the
other processes after at most SESSION_CHECK_SECONDS, when their "ok" expires.

A refresh token is opaque and stored only as a digest; each refresh replaces it and retires the old one. A
retired token presented again means that two parties hold the session (a stolen token, or a client that
refreshed twice): the whole session ends, the legitimate holder logs in again (refresh-token rotation with
reuse detection, RFC 9700 section 4.14.2).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TypeVar

import jwt
from tortoise.transactions import in_transaction

from infra.clock import now
from infra.redis import REDIS_ERRORS, get_redis
from infra.settings import get_settings
from models import Member, MemberSession, RetiredRefreshToken
from services.errors import DomainError, ErrorCode
from services.members import session_memory

log = logging.getLogger("lianmall.sessions")

T = TypeVar("T")

ACCESS_TTL = timedelta(hours=2)
REFRESH_TTL = timedelta(days=30)
REFRESH_PREFIX = "rt_"
_ALGORITHM = "HS256"
_AUDIENCE = "lianmall:member"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class AccessClaims:
    member_id: int
    session_id: int
    # When the token stops working (Unix seconds): an open WebSocket ends its member subscriptions then.
    expires_at: int = 0


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


SESSION_OK = b"ok"
SESSION_REVOKED = b"revoked"


def session_key(session_id: int) -> str:
    """The Redis key caching the database's verdict on a session: SESSION_OK or SESSION_REVOKED."""
    return f"auth:session:{session_id}"


def _access_token(member_id: int, session_id: int) -> str:
    issued = now()
    claims = {
        "sub": str(member_id),
        "sid": session_id,
        "aud": _AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ACCESS_TTL).timestamp()),
    }
    return jwt.encode(claims, get_settings().resolved_secret_key, algorithm=_ALGORITHM)


def looks_like_access_token(token: str) -> bool:
    return token.count(".") == 2


async def issue_tokens(member: Member, *, user_agent: str = "", ip: str = "") -> TokenPair:
    """Open a new session for `member` and return its first token pair."""
    refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    session = await MemberSession.create(
        member=member,
        refresh_hash=_digest(refresh),
        expires_at=now() + REFRESH_TTL,
        user_agent=user_agent[:200],
        ip=ip[:64],
    )
    return TokenPair(_access_token(member.id, session.id), refresh, int(ACCESS_TTL.total_seconds()))


def decode_access_token(token: str) -> AccessClaims:
    """The claims of a well-signed, unexpired access token (revocation is checked separately)."""
    try:
        member_id, session_id, expires_at = _verified(token, get_settings().resolved_secret_key)
    except jwt.ExpiredSignatureError:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The access token has expired; refresh it") from None
    except (jwt.InvalidTokenError, ValueError, KeyError):
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The token is invalid, expired or revoked") from None
    # A remembered verification still expires: PyJWT's own rule (expired once exp <= now), on the same clock.
    if expires_at <= _wall_clock():
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The access token has expired; refresh it")
    return AccessClaims(member_id=member_id, session_id=session_id, expires_at=expires_at)


# Checking the signature costs ~250 µs, on every request a member makes: a token verified once is remembered (by
# token and key, so a new key verifies again; failures are never remembered).
_wall_clock = time.time


@lru_cache(maxsize=4096)
def _verified(token: str, key: str) -> tuple[int, int, int]:
    claims = jwt.decode(
        token, key, algorithms=[_ALGORITHM], audience=_AUDIENCE, options={"require": ["exp", "sub", "sid"]}
    )
    return int(claims["sub"]), int(claims["sid"]), int(claims["exp"])


async def session_alive_in_db(session_id: int) -> bool:
    """The record's word: the session exists and was not revoked."""
    return await MemberSession.filter(id=session_id, revoked_at__isnull=True).exists()


async def remember_alive(session_id: int) -> None:
    """Cache "alive" for SESSION_CHECK_SECONDS, unless a revocation is cached already (NX)."""
    ttl = get_settings().session_check_seconds
    try:
        await get_redis().set(session_key(session_id), SESSION_OK, ex=ttl, nx=True)
    except REDIS_ERRORS:
        pass  # the next request asks the database again


async def is_revoked(session_id: int) -> bool:
    """Whether the session has ended: Redis's cached verdict, else the database (which then refills the cache)."""
    try:
        cached = await get_redis().get(session_key(session_id))
    except REDIS_ERRORS:
        cached = None
    if cached == SESSION_REVOKED:
        return True
    if cached == SESSION_OK:
        return False
    if not await session_alive_in_db(session_id):
        return True
    await remember_alive(session_id)
    return False


class RefreshTokenReused(Exception):
    def __init__(self, session_id: int) -> None:
        super().__init__(session_id)
        self.session_id = session_id


async def refresh_tokens(refresh_token: str) -> TokenPair:
    """Trade a refresh token for a new pair; the old refresh token stops working.

    A refresh token that was already traded in ends its whole session (reuse detection): it raises
    UNAUTHENTICATED and the session's newest tokens stop working too. Two refreshes racing with one token
    count as reuse as well: clients must refresh one at a time.
    """
    if not refresh_token.startswith(REFRESH_PREFIX):
        raise DomainError(ErrorCode.UNAUTHENTICATED, "That is not a refresh token", "token")
    new_refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    try:
        session = await _rotate(_digest(refresh_token), _digest(new_refresh))
    except RefreshTokenReused as reused:
        await revoke_session(reused.session_id)
        log.warning("refresh token of session %s presented again: session ended", reused.session_id)
        raise DomainError(
            ErrorCode.UNAUTHENTICATED,
            "This refresh token was already used; the session has ended for safety. Log in again",
            "token",
        ) from None
    if session is None:
        raise DomainError(
            ErrorCode.UNAUTHENTICATED, "The refresh token is invalid, expired or revoked", "token"
        )
    return TokenPair(
        _access_token(session.member_id, session.id),  # type: ignore[attr-defined]
        new_refresh,
        int(ACCESS_TTL.total_seconds()),
    )


async def _rotate(old: str, new: str) -> MemberSession | None:
    async with in_transaction():
        session = await MemberSession.get_or_none(
            refresh_hash=old, revoked_at__isnull=True, expires_at__gt=now()
        )
        if session is None:
            retired = await RetiredRefreshToken.filter(token_hash=old).values_list("session_id", flat=True)
            if retired:
                raise RefreshTokenReused(int(retired[0]))  # type: ignore[call-overload]
            return None
        # Guarded on the old digest: of two concurrent refreshes with one token, only one swaps; the other one
        # presented a token that is retired by the time its update runs.
        swapped = await MemberSession.filter(id=session.id, refresh_hash=old).update(
            refresh_hash=new, expires_at=now() + REFRESH_TTL
        )
        if not swapped:
            raise RefreshTokenReused(session.id)
        await RetiredRefreshToken.create(session_id=session.id, token_hash=old)
    return session


async def revoke_session(session_id: int) -> None:
    """End a session now: its refresh token fails at once, its access tokens on every process at once (after at
    most SESSION_CHECK_SECONDS on processes that cached it alive, if Redis cannot be told)."""
    await MemberSession.filter(id=session_id, revoked_at__isnull=True).update(revoked_at=now())
    try:
        await get_redis().set(
            session_key(session_id), SESSION_REVOKED, ex=int(ACCESS_TTL.total_seconds()) + 60
        )
    except REDIS_ERRORS as exc:
        log.warning("session %s revoked in the database; Redis not told (%s)", session_id, exc)
    await session_memory.session_revoked(session_id)


async def revoke_member_sessions(member_id: int) -> None:
    """End every session of a member (e.g. an account ban)."""
    ids = await MemberSession.filter(member_id=member_id, revoked_at__isnull=True).values_list(
        "id", flat=True
    )
    for session_id in ids:
        await revoke_session(int(session_id))


async def while_signed_in(session_id: int, expires_at: int, events: AsyncIterator[T]) -> AsyncIterator[T]:
    """`events`, for as long as the signed-in session that asked for them lasts.

    A WebSocket authenticates once, at connect: its member subscriptions must end when the access token it
    showed expires (at `expires_at`, Unix seconds, even with no event coming) or when the session is revoked
    (checked before each event), with UNAUTHENTICATED. The client reconnects with a fresh token.
    """
    iterator = aiter(events)
    while True:
        remaining = expires_at - now().timestamp()
        if remaining <= 0:
            raise DomainError(
                ErrorCode.UNAUTHENTICATED, "The access token has expired; reconnect with a fresh one"
            )
        try:
            async with asyncio.timeout(remaining):
                event = await anext(iterator)
        except TimeoutError:
            continue  # the loop's check says it expired
        except StopAsyncIteration:
            return
        if await is_revoked(session_id):
            raise DomainError(ErrorCode.UNAUTHENTICATED, "The session has ended; log in again")
        yield event


async def purge_retired_refresh_tokens(at: datetime) -> int:
    """Forget retired refresh tokens older than a refresh token lives (a sweeper job); returns how many."""
    return await RetiredRefreshToken.filter(retired_at__lt=at - REFRESH_TTL).delete()
