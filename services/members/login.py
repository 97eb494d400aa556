"""WeChat login and member sessions.

A member is one openid of our mini-program. Logging in trades a `wx.login()` code for that openid at WeChat,
creates the member on first sight, keeps WeChat's session key (encrypted; the legacy phone flow needs it) and
opens a session (`services.members.tokens`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from infra import wechat
from infra.clock import now
from models import Member
from services import rate_limit
from services.errors import DomainError, ErrorCode
from services.members import phone as phones
from services.members.invite_codes import new_invite_code
from services.members.tokens import (
    TokenPair,
    decode_access_token,
    issue_tokens,
    refresh_tokens,
    revoke_session,
)

log = logging.getLogger("lianmall.members")

# Login attempts: per client IP, and per WeChat code (a code is single-use at WeChat; a few retries of one
# code after a network hiccup are normal, a stream of them is someone replaying it).
LOGIN_IP_LIMIT = 10
LOGIN_IP_WINDOW_SECONDS = 60
LOGIN_CODE_LIMIT = 3
LOGIN_CODE_WINDOW_SECONDS = 300
CODE_MAX = 128
REFRESH_TOKEN_MAX = 128  # ours are 46 characters (rt_ + 43)


@dataclass(frozen=True)
class LoginResult:
    member: Member
    tokens: TokenPair
    created: bool


def checked_code(code: str, field: str = "code") -> str:
    code = code.strip()
    if not code or len(code) > CODE_MAX:
        raise DomainError(ErrorCode.BAD_USER_INPUT, f"The code must be 1 to {CODE_MAX} characters", field)
    return code


async def _limit_login(code: str, ip: str) -> None:
    if not await rate_limit.hit(f"login:ip:{ip or 'unknown'}", LOGIN_IP_LIMIT, LOGIN_IP_WINDOW_SECONDS):
        raise DomainError(ErrorCode.RATE_LIMITED, "Too many login attempts from this network; wait a minute")
    key = f"login:code:{rate_limit.opaque(code)}"
    if not await rate_limit.hit(key, LOGIN_CODE_LIMIT, LOGIN_CODE_WINDOW_SECONDS):
        raise DomainError(
            ErrorCode.RATE_LIMITED, "This code was tried too often; call wx.login for a new one", "code"
        )


async def _find_or_create(session: wechat.WeChatSession) -> tuple[Member, bool]:
    key = phones.encrypt_session_key(session.session_key)
    logged_in = now()
    member = await Member.get_or_none(openid=session.openid)
    attempts = 5
    while member is None:
        try:
            member = await Member.create(
                openid=session.openid,
                unionid=session.unionid,
                invite_code=new_invite_code(),
                session_key_encrypted=key,
                last_login_at=logged_in,
            )
            return member, True
        except IntegrityError:
            # Either a concurrent first login of the same shopper won (use its row), or the invite code was
            # taken (draw another).
            member = await Member.get_or_none(openid=session.openid)
            attempts -= 1
            if member is None and attempts == 0:
                raise
    changes: dict[str, object] = {"session_key_encrypted": key, "last_login_at": logged_in}
    if session.unionid and session.unionid != member.unionid:
        changes["unionid"] = session.unionid
    await Member.filter(id=member.id).update(**changes)
    member.update_from_dict(changes)
    return member, False


async def login_with_wechat(code: str, *, ip: str = "", user_agent: str = "") -> LoginResult:
    """Log a shopper in with a `wx.login()` code: find or create the member and open a session.

    Raises DomainError BAD_USER_INPUT, RATE_LIMITED (per IP and per code), WECHAT_CODE_INVALID,
    WECHAT_RATE_LIMITED or WECHAT_UNAVAILABLE.
    """
    code = checked_code(code)
    await _limit_login(code, ip)
    session = await wechat.code_to_session(code)
    member, created = await _find_or_create(session)
    tokens = await issue_tokens(member, user_agent=user_agent, ip=ip)
    if created:
        log.info("member %s joined", member.id)
    return LoginResult(member=member, tokens=tokens, created=created)


async def refresh_session(refresh_token: str) -> tuple[Member, TokenPair]:
    """Trade a refresh token for a new pair (the old one stops working); raises UNAUTHENTICATED (BAD_USER_INPUT
    for something far longer than any refresh token)."""
    refresh_token = refresh_token.strip()
    if len(refresh_token) > REFRESH_TOKEN_MAX:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"A refresh token has at most {REFRESH_TOKEN_MAX} characters", "token"
        )
    pair = await refresh_tokens(refresh_token)
    claims = decode_access_token(pair.access_token)
    member = await Member.get_or_none(id=claims.member_id)
    if member is None:
        await revoke_session(claims.session_id)
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The member no longer exists", "token")
    return member, pair


async def logout(session_id: int) -> None:
    """End the session: its access and refresh tokens stop working on every process at once."""
    await revoke_session(session_id)
