"""Member sessions: short-lived signed access tokens, rotating refresh tokens, revocation on every process.

An access token is a JWT (HS256, the server's secret key) naming the member and the session. Verifying it
needs no database; revocation is a Redis key per session that every process checks, kept for as long as an
access token of that session could still be valid. A refresh token is opaque and stored only as a digest;
each refresh replaces it, so a stolen, already-used refresh token is worthless.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt
from tortoise.transactions import in_transaction

from infra.clock import now
from infra.redis import get_redis
from infra.settings import get_settings
from models import Member, MemberSession
from services.errors import DomainError, ErrorCode

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


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def revoked_key(session_id: int) -> str:
    return f"auth:revoked:{session_id}"


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
        claims = jwt.decode(
            token,
            get_settings().resolved_secret_key,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["exp", "sub", "sid"]},
        )
        return AccessClaims(member_id=int(claims["sub"]), session_id=int(claims["sid"]))
    except jwt.ExpiredSignatureError:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The access token has expired; refresh it") from None
    except (jwt.InvalidTokenError, ValueError, KeyError):
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The token is invalid, expired or revoked") from None


async def is_revoked(session_id: int) -> bool:
    return bool(await get_redis().exists(revoked_key(session_id)))


async def refresh_tokens(refresh_token: str) -> TokenPair:
    """Trade a refresh token for a new pair; the old refresh token stops working."""
    if not refresh_token.startswith(REFRESH_PREFIX):
        raise DomainError(ErrorCode.UNAUTHENTICATED, "That is not a refresh token", "token")
    new_refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    async with in_transaction():
        session = await MemberSession.get_or_none(
            refresh_hash=_digest(refresh_token), revoked_at__isnull=True, expires_at__gt=now()
        )
        if session is None:
            raise DomainError(
                ErrorCode.UNAUTHENTICATED, "The refresh token is invalid, expired or revoked", "token"
            )
        # Guarded on the old digest: of two concurrent refreshes with one token, only one wins.
        swapped = await MemberSession.filter(id=session.id, refresh_hash=_digest(refresh_token)).update(
            refresh_hash=_digest(new_refresh), expires_at=now() + REFRESH_TTL
        )
        if not swapped:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "The refresh token was already used", "token")
    return TokenPair(
        _access_token(session.member_id, session.id), new_refresh, int(ACCESS_TTL.total_seconds())
    )


async def revoke_session(session_id: int) -> None:
    """End a session now: its refresh token fails at once, its access tokens on every process at once."""
    await MemberSession.filter(id=session_id, revoked_at__isnull=True).update(revoked_at=now())
    await get_redis().set(revoked_key(session_id), b"1", ex=int(ACCESS_TTL.total_seconds()) + 60)


async def revoke_member_sessions(member_id: int) -> None:
    """End every session of a member (e.g. an account ban)."""
    ids = await MemberSession.filter(member_id=member_id, revoked_at__isnull=True).values_list(
        "id", flat=True
    )
    for session_id in ids:
        await revoke_session(int(session_id))
