"""Who is asking: resolved once per request from the bearer token."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from infra.redis import REDIS_ERRORS, get_redis
from infra.settings import get_settings
from models import Member, MemberSession
from services.access.api_keys import KEY_PREFIX, PartnerIdentity, authenticate_api_key
from services.access.staff import StaffIdentity, authenticate_staff
from services.catalog.prices import PUBLIC, PriceContext
from services.errors import DomainError, ErrorCode
from services.members import session_memory
from services.members.tokens import (
    SESSION_OK,
    SESSION_REVOKED,
    AccessClaims,
    decode_access_token,
    looks_like_access_token,
    session_key,
)

log = logging.getLogger("lianmall.viewer")

# What a member's growth means for prices (the level discount). Loyalty owns levels and plugs this in
# (`set_member_pricing`), so members never import loyalty.
MemberPricing = Callable[[int], Awaitable[PriceContext]]
_member_pricing: MemberPricing | None = None


def set_member_pricing(pricing: MemberPricing) -> None:
    """Register how a member with a given growth is priced (called by `services.loyalty.levels`)."""
    global _member_pricing
    _member_pricing = pricing


async def member_price_context(growth: int) -> PriceContext:
    """The price context of a member with `growth`, as the registered member pricing decides."""
    if _member_pricing is None:
        # Pricing every member as a guest would be silently wrong; failing says what is missing.
        raise RuntimeError("member pricing is not registered: import services.loyalty before serving members")
    return await _member_pricing(growth)


# How long a member's growth may be read from Redis instead of the database; growth changes drop it at once.
SNAPSHOT_TTL_SECONDS = 60


@dataclass(frozen=True)
class MemberIdentity:
    id: int
    session_id: int
    growth: int
    # The access token's expiry (Unix seconds): a WebSocket authenticated with it ends member subscriptions then.
    expires_at: int = 0


@dataclass(frozen=True)
class Viewer:
    staff: StaffIdentity | None = None
    member: MemberIdentity | None = None
    partner: PartnerIdentity | None = None
    price: PriceContext = PUBLIC

    @property
    def is_member(self) -> bool:
        return self.member is not None

    @property
    def is_staff(self) -> bool:
        return self.staff is not None

    @property
    def is_partner(self) -> bool:
        return self.partner is not None

    @property
    def is_anonymous(self) -> bool:
        """No credentials at all: a guest shopper."""
        return self.staff is None and self.member is None and self.partner is None

    @property
    def cache_scope(self) -> str | None:
        """The response-cache scope for this viewer, or None when its answers must not be cached.

        Anonymous shoppers share the public scope; members share their level's scope (never one per member).
        Staff see drafts and fresh data, so they bypass the cache; so do partners, whose reads sync other systems.
        """
        return None if self.is_staff or self.is_partner else self.price.scope


ANONYMOUS = Viewer()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Authorization must be 'Bearer <token>'")
    return token.strip()


async def resolve_viewer(authorization: str | None) -> Viewer:
    """The viewer a request's Authorization header names; no header is an anonymous shopper."""
    token = bearer_token(authorization)
    if token is None:
        return ANONYMOUS
    return await viewer_for_token(token)


async def viewer_for_token(token: str) -> Viewer:
    """The viewer a bearer token names (HTTP header or WebSocket connection_init alike)."""
    if looks_like_access_token(token):
        return await _member_viewer(token)
    if token.startswith(KEY_PREFIX):
        return await _partner_viewer(token)
    staff = await authenticate_staff(token)
    if staff is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The token is invalid, expired or revoked")
    return Viewer(staff=staff)


def _snapshot_key(member_id: int) -> str:
    return f"member:snapshot:{member_id}"


async def forget_member_snapshot(member_id: int) -> None:
    """Call after a member's growth (and so maybe level) changes, so the next request prices afresh.

    Never raises (it runs inside money transactions): a snapshot Redis could not drop lives SNAPSHOT_TTL_SECONDS.
    """
    try:
        await get_redis().delete(_snapshot_key(member_id))
    except REDIS_ERRORS as exc:
        log.warning(
            "member %s snapshot not dropped (%s): prices follow within %ss",
            member_id,
            exc,
            SNAPSHOT_TTL_SECONDS,
        )
    await session_memory.growth_changed(member_id)


_REFUSED = "The token is invalid, expired or revoked"


async def _member_viewer(token: str) -> Viewer:
    claims = decode_access_token(token)
    growth = session_memory.known_growth(claims.session_id, claims.member_id)
    if growth is None:
        growth = await _checked_growth(claims)
    identity = MemberIdentity(
        id=claims.member_id, session_id=claims.session_id, growth=growth, expires_at=claims.expires_at
    )
    return Viewer(member=identity, price=await member_price_context(growth))


async def _checked_growth(claims: AccessClaims) -> int:
    """The member's growth once Redis or the database says the session is alive (UNAUTHENTICATED otherwise)."""
    generation = session_memory.generation()
    redis = get_redis()
    # One round trip answers both "is this session known alive (or revoked)?" and "what is this member's growth?".
    try:
        state, snapshot = await redis.mget(session_key(claims.session_id), _snapshot_key(claims.member_id))
        redis_answered = True
    except REDIS_ERRORS:
        state = snapshot = None
        redis_answered = False
    if state == SESSION_REVOKED:
        raise DomainError(ErrorCode.UNAUTHENTICATED, _REFUSED)
    if state != SESSION_OK:
        # Not known alive: the database decides (and gives the growth in the same query).
        rows = await MemberSession.filter(
            id=claims.session_id, member_id=claims.member_id, revoked_at__isnull=True
        ).values_list("member__growth", flat=True)
        if not rows or rows[0] is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED, _REFUSED)
        growth = int(rows[0])  # type: ignore[call-overload]
        if redis_answered:
            await _remember(claims.session_id, claims.member_id, growth)
    elif snapshot is None:
        found = await Member.filter(id=claims.member_id).first().values_list("growth", flat=True)
        if found is None:
            raise DomainError(ErrorCode.UNAUTHENTICATED, _REFUSED)
        growth = int(found)  # type: ignore[call-overload]
        if redis_answered:
            await _remember(None, claims.member_id, growth)
    else:
        growth = int(snapshot)
    if redis_answered:
        session_memory.learn(generation, claims.session_id, claims.member_id, growth)
    return growth


async def _remember(session_id: int | None, member_id: int, growth: int) -> None:
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            if session_id is not None:
                # NX: never overwrite a revocation written since the database said "alive".
                pipe.set(
                    session_key(session_id), SESSION_OK, ex=get_settings().session_check_seconds, nx=True
                )
            pipe.set(_snapshot_key(member_id), str(growth), ex=SNAPSHOT_TTL_SECONDS)
            await pipe.execute()
    except REDIS_ERRORS:
        pass  # the next request asks the database again


async def _partner_viewer(key: str) -> Viewer:
    partner = await authenticate_api_key(key)
    if partner is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The API key is invalid or revoked")
    return Viewer(partner=partner)
