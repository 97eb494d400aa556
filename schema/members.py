"""Member types: the signed-in shopper (`me`), staff's view of a member, and the identity mutations' payloads.

Every `Member` object is shown either to that member or to staff; even so, the fields that are not for everyone
who can see a member (`phone`, `addresses`) check the viewer themselves.
"""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry.types import Info

from models import Member as MemberModel
from schema.addresses import Address
from schema.catalog_inputs import UserError
from schema.context import Context
from schema.loyalty import MemberLevelType
from schema.node import Node, encode_id
from services.access import audit
from services.access.permissions import Permission, has_permission
from services.errors import DomainError, ErrorCode
from services.loyalty import levels
from services.members import profile as members

MemberInfo = Info[Context, None]


@strawberry.type(description="A shopper: to themselves through `me`, to staff through `member(id:)`.")
class Member(Node):
    nickname: str
    avatar_url: str
    birthday: date | None
    growth: int = strawberry.field(description="Growth value; it decides the level.")
    points: int = strawberry.field(description="Points balance.")
    invite_code: str = strawberry.field(description="The code this member invites others with.")
    phone_masked: str | None = strawberry.field(
        description="The bound phone number masked (138****1234), or null when none is bound."
    )
    created_at: datetime
    _model: strawberry.Private[MemberModel]

    @classmethod
    def from_model(cls, m: MemberModel) -> Member:
        return cls(
            id=encode_id("Member", m.id),
            nickname=m.nickname,
            avatar_url=m.avatar_url,
            birthday=m.birthday,
            growth=m.growth,
            points=m.points,
            invite_code=m.invite_code,
            phone_masked=m.phone_masked or None,
            created_at=m.created_at,
            _model=m,
        )

    def _is_own(self, info: MemberInfo) -> bool:
        viewer = info.context.viewer.member
        return viewer is not None and viewer.id == self._model.id

    @strawberry.field(
        description="The whole bound phone number: only for the member themselves and for staff allowed "
        "MEMBER_PHONE_READ (customer service, admins); anyone else gets FORBIDDEN. Null when none is bound."
    )
    async def phone(self, info: MemberInfo) -> str | None:
        if self._is_own(info):
            return members.reveal_phone(self._model)
        staff = info.context.viewer.staff
        if staff is None or not has_permission(staff.role, Permission.MEMBER_PHONE_READ):
            raise DomainError(
                ErrorCode.FORBIDDEN,
                "Only the member and staff allowed MEMBER_PHONE_READ see the phone number",
            )
        phone = members.reveal_phone(self._model)
        if phone is not None:
            # Reading someone's whole phone number is exactly what an audit log is for.
            await audit.record(staff, "memberPhoneRead", self.id, {}, succeeded=True)
        return phone

    @strawberry.field(description="The level the member's growth reaches; null when no level is configured.")
    async def level(self) -> MemberLevelType | None:
        level = await levels.level_for_growth(self._model.growth)
        return MemberLevelType.from_model(level) if level else None

    @strawberry.field(
        description="The member's delivery addresses, default first: only for the member themselves (they "
        "hold recipients' whole phone numbers); anyone else gets FORBIDDEN."
    )
    async def addresses(self, info: MemberInfo) -> list[Address]:
        if not self._is_own(info):
            raise DomainError(ErrorCode.FORBIDDEN, "Only the member sees their addresses")
        rows = await info.context.member_loaders.addresses_by_member.load(self._model.id)
        return [Address.from_model(a) for a in rows]


# --- Inputs ------------------------------------------------------------------------------------------------


@strawberry.input(description="Only the fields given change; null leaves a field as it is.")
class UpdateProfileInput:
    nickname: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"1 to {members.NICKNAME_MAX} characters; it must pass WeChat's content check.",
    )
    avatar_url: str | None = strawberry.field(
        default=strawberry.UNSET, description="An http(s) URL; an empty string removes the avatar."
    )
    birthday: date | None = strawberry.field(
        default=strawberry.UNSET,
        description="Can be set once: birthday gifts follow it.",
    )


# --- Payloads ----------------------------------------------------------------------------------------------


@strawberry.type(description="A new session: send `accessToken` as `Authorization: Bearer <token>`.")
class LoginPayload:
    access_token: str | None = None
    refresh_token: str | None = strawberry.field(
        default=None, description="Trade it for a new pair with `refreshToken` before the session ends."
    )
    expires_in: int | None = strawberry.field(default=None, description="Seconds the access token lasts.")
    member: Member | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="The session's new token pair; the refresh token sent no longer works.")
class RefreshTokenPayload:
    access_token: str | None = None
    refresh_token: str | None = None
    expires_in: int | None = None
    member: Member | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class LogoutPayload:
    ok: bool = False
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class BindPhonePayload:
    member: Member | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class UpdateProfilePayload:
    member: Member | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
