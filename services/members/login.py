"""WeChat login and member sessions.

A member is one openid of our mini-program. Logging in trades a `wx.login()` code for that openid at WeChat,
creates the member on first sight, keeps WeChat's session key (encrypted; the legacy phone flow needs it) and
opens a session (`services.members.tokens`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from infra import wechat
from infra.client_ip import network_key
from infra.clock import now
from infra.settings import get_settings
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

DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
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


def device_id(header: str | None) -> str | None:
    """The mini-program's own id for its installation (`X-Device-Id`, a random string it keeps in storage), or
    None when missing or malformed. A soft key: a client can change it, so the per-IP limit stays behind it."""
    value = (header or "").strip()
    return value if DEVICE_ID.fullmatch(value) else None


async def _limit(key: str, limit: int, window: int, message: str, field: str | None = None) -> None:
    if not await rate_limit.hit(key, limit, window):
        raise DomainError(ErrorCode.RATE_LIMITED, message, field)


async def _limit_login(code: str, ip: str, device: str | None) -> None:
    """Before asking WeChat: per code (one-time at WeChat: retries of one code are few), per device, then per
    network, whose limit is generous because a carrier NAT puts many shoppers behind one address."""
    s = get_settings()
    await _limit(
        f"login:code:{rate_limit.opaque(code)}",
        s.login_code_limit,
        s.login_code_window_seconds,
        "This code was tried too often; call wx.login for a new one",
        "code",
    )
    if device is not None:
        await _limit(
            f"login:device:{rate_limit.opaque(device)}",
            s.login_device_limit,
            s.login_device_window_seconds,
            "Too many login attempts from this device; wait a minute",
        )
    await _limit(
        f"login:ip:{network_key(ip)}",
        s.login_ip_limit,
        s.login_ip_window_seconds,
        "Too many login attempts from this network; wait a minute",
    )


async def _limit_member_logins(openid: str) -> None:
    """After WeChat named the shopper: sessions one account may open (each login makes one)."""
    s = get_settings()
    await _limit(
        f"login:openid:{rate_limit.opaque(openid)}",
        s.login_openid_limit,
        s.login_openid_window_seconds,
        "Too many logins of this account; try again later",
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


async def login_with_wechat(
    code: str, *, ip: str = "", user_agent: str = "", device: str | None = None
) -> LoginResult:
    """Log a shopper in with a `wx.login()` code: find or create the member and open a session.

    `device` is the client's installation id (`device_id`), when it sent one. Raises DomainError
    BAD_USER_INPUT, RATE_LIMITED (per code, device, network, account), WECHAT_CODE_INVALID,
    WECHAT_RATE_LIMITED or WECHAT_UNAVAILABLE.
    """
    code = checked_code(code)
    await _limit_login(code, ip, device)
    session = await wechat.code_to_session(code)
    await _limit_member_logins(session.openid)
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
