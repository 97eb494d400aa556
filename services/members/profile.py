"""Shoppers' profile: reading members, profile edits, phone binding, lookup for staff.

Phone numbers are stored encrypted with a masked form and a keyed hash beside them
(`services.members.phone`); only the member and staff allowed MEMBER_PHONE_READ ever see them whole.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import Enum
from urllib.parse import urlsplit

from infra import wechat
from infra.clock import now
from infra.settings import get_settings
from models import Member
from services import rate_limit
from services.errors import DomainError, ErrorCode, ValidationErrors
from services.members import phone as phones
from services.members.login import checked_code

log = logging.getLogger("lianmall.members")

NICKNAME_MAX = 64
AVATAR_URL_MAX = 500
ENCRYPTED_DATA_MAX = 4096
EARLIEST_BIRTHDAY = date(1900, 1, 1)


class Unchanged(Enum):
    """Marks a profile field the caller left out, as opposed to one set to None (cleared)."""

    UNCHANGED = "UNCHANGED"


UNCHANGED = Unchanged.UNCHANGED


@dataclass(frozen=True)
class ProfileChanges:
    nickname: str | Unchanged = UNCHANGED
    avatar_url: str | Unchanged = UNCHANGED
    # None clears it; only allowed while it is not set yet (see update_profile).
    birthday: date | Unchanged | None = UNCHANGED


async def get_member(member_id: int) -> Member | None:
    """The member with this id, or None."""
    return await Member.get_or_none(id=member_id)


async def require_member(member_id: int) -> Member:
    """The member with this id; raises UNAUTHENTICATED when the member behind a session is gone."""
    member = await get_member(member_id)
    if member is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The member no longer exists")
    return member


# --- Profile -----------------------------------------------------------------------------------------------


def _nickname_problem(nickname: str) -> DomainError | None:
    if not 1 <= len(nickname) <= NICKNAME_MAX:
        return DomainError(
            ErrorCode.BAD_USER_INPUT, f"The nickname must be 1 to {NICKNAME_MAX} characters", "input.nickname"
        )
    if any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in nickname):
        return DomainError(
            ErrorCode.BAD_USER_INPUT, "The nickname must not contain control characters", "input.nickname"
        )
    return None


def _avatar_problem(url: str) -> DomainError | None:
    if url == "":
        return None
    parts = urlsplit(url)
    if len(url) > AVATAR_URL_MAX or parts.scheme not in {"http", "https"} or not parts.netloc:
        return DomainError(
            ErrorCode.BAD_USER_INPUT,
            f"The avatar must be an http(s) URL of at most {AVATAR_URL_MAX} characters (or empty)",
            "input.avatarUrl",
        )
    return None


def _birthday_problem(member: Member, birthday: date | None) -> DomainError | None:
    if member.birthday is not None and birthday != member.birthday:
        # Birthday gifts follow the birthday: changing it at will would collect a gift every month.
        return DomainError(
            ErrorCode.CONFLICT,
            "The birthday is already set; it can be set only once",
            "input.birthday",
        )
    if birthday is not None and not EARLIEST_BIRTHDAY <= birthday <= now().date():
        return DomainError(
            ErrorCode.BAD_USER_INPUT, "The birthday must be a past date after 1900", "input.birthday"
        )
    return None


async def check_nickname(member: Member, nickname: str) -> None:
    """WeChat's content check (msg_sec_check v2, profile scene) for a new nickname.

    A nickname shows at once wherever the member appears and has no moderation queue, so only `pass` is
    accepted: `review` is refused like `risky` (CONTENT_REJECTED). Fails closed: when WeChat cannot check
    (WECHAT_UNAVAILABLE, WECHAT_RATE_LIMITED), the nickname is not changed either.
    """
    verdict = await wechat.msg_sec_check(
        member.openid, wechat.Scene.PROFILE, nickname, field="input.nickname"
    )
    if verdict.suggest is not wechat.Suggest.PASS:
        log.info("nickname of member %s refused: %s, label %s", member.id, verdict.suggest, verdict.label)
        raise DomainError(
            ErrorCode.CONTENT_REJECTED, "WeChat's content check did not allow this nickname", "input.nickname"
        )


async def update_profile(member_id: int, changes: ProfileChanges) -> Member:
    """Change the given profile fields. A new nickname must pass WeChat's content check first.

    Raises ValidationErrors (BAD_USER_INPUT, CONFLICT for a second birthday), DomainError CONTENT_REJECTED
    (field `input.nickname`), WECHAT_RATE_LIMITED or WECHAT_UNAVAILABLE. Nothing is written on any error.
    """
    member = await require_member(member_id)
    updates: dict[str, object] = {}
    problems: list[DomainError] = []
    if not isinstance(changes.nickname, Unchanged):
        nickname = changes.nickname.strip()
        problem = _nickname_problem(nickname)
        if problem:
            problems.append(problem)
        elif nickname != member.nickname:
            updates["nickname"] = nickname
    if not isinstance(changes.avatar_url, Unchanged):
        avatar_url = changes.avatar_url.strip()
        problem = _avatar_problem(avatar_url)
        if problem:
            problems.append(problem)
        elif avatar_url != member.avatar_url:
            updates["avatar_url"] = avatar_url
    if not isinstance(changes.birthday, Unchanged):
        problem = _birthday_problem(member, changes.birthday)
        if problem:
            problems.append(problem)
        elif changes.birthday != member.birthday:
            updates["birthday"] = changes.birthday
    if problems:
        raise ValidationErrors(problems)
    if "nickname" in updates:
        await check_nickname(member, str(updates["nickname"]))
    if updates:
        await Member.filter(id=member.id).update(**updates)
        member.update_from_dict(updates)
    return member


# --- Phone -------------------------------------------------------------------------------------------------


async def _limit_phone_binding(member_id: int) -> None:
    # getuserphonenumber is billed per call: a member gets a few phone bindings per window.
    settings = get_settings()
    if not await rate_limit.hit(
        f"phone:{member_id}", settings.phone_bind_limit, settings.phone_bind_window_seconds
    ):
        raise DomainError(ErrorCode.RATE_LIMITED, "Too many phone bindings; try again in a few minutes")


async def _store_phone(member: Member, number: str, country_code: str) -> Member:
    try:
        normalized = phones.normalize_phone(number, country_code)
    except ValueError:
        log.error("WeChat gave member %s a phone number of an unexpected shape", member.id)
        raise DomainError(
            ErrorCode.WECHAT_DATA_INVALID, "WeChat did not give a usable phone number"
        ) from None
    updates = {
        "phone_encrypted": phones.encrypt_phone(normalized),
        "phone_masked": phones.mask_phone(normalized),
        "phone_hash": phones.phone_hash(normalized),
    }
    await Member.filter(id=member.id).update(**updates)
    member.update_from_dict(updates)
    return member


async def bind_phone(member_id: int, code: str) -> Member:
    """Bind the phone number behind a `getPhoneNumber` button's code (replacing any earlier one).

    Raises DomainError BAD_USER_INPUT, RATE_LIMITED, WECHAT_CODE_INVALID, WECHAT_RATE_LIMITED or
    WECHAT_UNAVAILABLE.
    """
    code = checked_code(code)
    member = await require_member(member_id)
    await _limit_phone_binding(member_id)
    number = await wechat.get_phone_number(code)
    return await _store_phone(member, number.pure_phone_number, number.country_code)


async def bind_phone_encrypted(member_id: int, encrypted_data: str, iv: str) -> Member:
    """Bind a phone number from the legacy `encryptedData`/`iv` pair, decrypted with the member's session key.

    Raises DomainError BAD_USER_INPUT, RATE_LIMITED or WECHAT_DATA_INVALID (it does not decrypt with the key
    of the member's last login, or was made for another mini-program).
    """
    if not encrypted_data or len(encrypted_data) > ENCRYPTED_DATA_MAX:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "encryptedData is missing or too long", "encryptedData")
    if not iv or len(iv) > 64:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "iv is missing or too long", "iv")
    member = await require_member(member_id)
    await _limit_phone_binding(member_id)
    if not member.session_key_encrypted:
        raise DomainError(ErrorCode.WECHAT_DATA_INVALID, "Log in with WeChat again, then retry")
    try:
        session_key = phones.decrypt_session_key(member.session_key_encrypted)
    except phones.UnreadableSecret:
        raise DomainError(ErrorCode.WECHAT_DATA_INVALID, "Log in with WeChat again, then retry") from None
    data = wechat.decrypt_user_data(session_key, encrypted_data, iv)
    number = data.get("purePhoneNumber") or data.get("phoneNumber")
    if not isinstance(number, str) or not number:
        raise DomainError(ErrorCode.WECHAT_DATA_INVALID, "The encrypted data holds no phone number")
    return await _store_phone(member, number, str(data.get("countryCode") or "86"))


def reveal_phone(member: Member) -> str | None:
    """The member's whole phone number, or None without one. Callers decide who may see it."""
    if not member.phone_encrypted:
        return None
    try:
        return phones.decrypt_phone(member.phone_encrypted)
    except phones.UnreadableSecret:
        log.warning(
            "member %s has a phone number that no longer decrypts (was SECRET_KEY changed?)", member.id
        )
        return None


async def find_by_phone(number: str) -> list[Member]:
    """Members who bound this phone number (for staff lookups), found through its keyed hash."""
    try:
        normalized = phones.normalize_phone(number)
    except ValueError:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "Not a phone number", "phone") from None
    return await Member.filter(phone_hash=phones.phone_hash(normalized)).order_by("id")
