"""Members' identity: WeChat login, sessions, phone binding, profile; `me`, and `member(id:)` for staff.

Thin: find the viewer, call services.members, wrap the result. In mutations every DomainError becomes the
payload's `errors`; in queries it becomes a GraphQL error with its code.
"""

from __future__ import annotations

from typing import TypeVar

import strawberry
from strawberry.types import Info
from strawberry.types.unset import UnsetType

from infra.client_ip import client_ip
from models import Member as MemberModel
from resolvers.node import node_type
from resolvers.payloads import payload_mutation
from schema.context import Context
from schema.members import (
    BindPhonePayload,
    LoginPayload,
    LogoutPayload,
    Member,
    RefreshTokenPayload,
    UpdateProfileInput,
    UpdateProfilePayload,
)
from schema.node import decode_id
from services.access.permissions import Permission, holds, require_permission
from services.errors import DomainError, ErrorCode
from services.members import login
from services.members import profile as members
from services.members.viewer import MemberIdentity

MemberInfo = Info[Context, None]
T = TypeVar("T")


def _member(info: MemberInfo) -> MemberIdentity:
    """The viewing member; UNAUTHENTICATED for a guest, FORBIDDEN for staff and partners."""
    viewer = info.context.viewer
    if viewer.member is not None:
        return viewer.member
    if viewer.is_anonymous:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Log in with WeChat first")
    raise DomainError(ErrorCode.FORBIDDEN, "Only members can do this")


def _client(info: MemberInfo) -> tuple[str, str, str | None]:
    """The caller's IP, user agent and device id (an HTTP request and a WebSocket alike)."""
    request = info.context.request
    if request is None:
        return "", "", None
    headers = request.headers
    return client_ip(request), headers.get("user-agent", ""), login.device_id(headers.get("x-device-id"))


# --- Queries -----------------------------------------------------------------------------------------------


async def me(info: MemberInfo) -> Member | None:
    viewer = info.context.viewer.member
    if viewer is None:
        return None
    member = await members.get_member(viewer.id)
    return Member.from_model(member) if member else None


async def member(info: MemberInfo, id: strawberry.ID) -> Member | None:
    require_permission(info.context.viewer, Permission.MEMBER_READ)
    found = await members.get_member(decode_id(id, "Member"))
    return Member.from_model(found) if found else None


@node_type("Member")
async def member_node(context: Context, pk: int) -> Member | None:
    """`node(id:)` for a Member ID: the member themselves, or staff allowed MEMBER_READ; anyone else gets
    null, exactly as for a member that does not exist."""
    viewer = context.viewer
    own = viewer.member is not None and viewer.member.id == pk
    if not own and not holds(viewer, Permission.MEMBER_READ):
        return None
    found = await context.rows(MemberModel).load(pk)
    return Member.from_model(found) if found else None


# --- Mutations ---------------------------------------------------------------------------------------------


@payload_mutation
async def login_with_wechat(info: MemberInfo, code: str) -> LoginPayload:
    ip, user_agent, device = _client(info)
    result = await login.login_with_wechat(code, ip=ip, user_agent=user_agent, device=device)
    tokens = result.tokens
    return LoginPayload(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        member=Member.from_model(result.member),
    )


@payload_mutation
async def refresh_token(info: MemberInfo, token: str) -> RefreshTokenPayload:
    found, tokens = await login.refresh_session(token)
    return RefreshTokenPayload(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        member=Member.from_model(found),
    )


@payload_mutation
async def logout(info: MemberInfo) -> LogoutPayload:
    await login.logout(_member(info).session_id)
    return LogoutPayload(ok=True)


@payload_mutation
async def bind_phone(info: MemberInfo, code: str) -> BindPhonePayload:
    found = await members.bind_phone(_member(info).id, code)
    return BindPhonePayload(member=Member.from_model(found))


@payload_mutation
async def bind_phone_encrypted(info: MemberInfo, encrypted_data: str, iv: str) -> BindPhonePayload:
    found = await members.bind_phone_encrypted(_member(info).id, encrypted_data, iv)
    return BindPhonePayload(member=Member.from_model(found))


def _given(value: T | UnsetType | None) -> T | members.Unchanged:
    """A profile field whose column cannot be null: omitted or null leaves it as it is."""
    return members.UNCHANGED if value is None or isinstance(value, UnsetType) else value


@payload_mutation
async def update_profile(info: MemberInfo, input: UpdateProfileInput) -> UpdateProfilePayload:
    changes = members.ProfileChanges(
        nickname=_given(input.nickname),
        avatar_url=_given(input.avatar_url),
        birthday=members.UNCHANGED if isinstance(input.birthday, UnsetType) else input.birthday,
    )
    found = await members.update_profile(_member(info).id, changes)
    return UpdateProfilePayload(member=Member.from_model(found))


# --- Root fields -------------------------------------------------------------------------------------------


@strawberry.type
class MemberQuery:
    me: Member | None = strawberry.field(
        resolver=me, description="The signed-in member; null for guests, staff and partners."
    )
    member: Member | None = strawberry.field(
        resolver=member, description="Staff allowed MEMBER_READ: a member by ID (phone masked)."
    )


@strawberry.type
class MemberMutation:
    login_with_wechat: LoginPayload = strawberry.mutation(
        resolver=login_with_wechat,
        description="Log in with the code of the mini-program's `wx.login()`; a new shopper becomes a member.",
    )
    refresh_token: RefreshTokenPayload = strawberry.mutation(
        resolver=refresh_token, description="A new token pair for a refresh token (each one works once)."
    )
    logout: LogoutPayload = strawberry.mutation(
        resolver=logout, description="End this session; its tokens stop working everywhere at once."
    )
    bind_phone: BindPhonePayload = strawberry.mutation(
        resolver=bind_phone,
        description="Bind the phone number behind the code of a `getPhoneNumber` button.",
    )
    bind_phone_encrypted: BindPhonePayload = strawberry.mutation(
        resolver=bind_phone_encrypted,
        description="Legacy phone binding: `encryptedData` and `iv` of the button, decrypted with the session "
        "key of the member's last login.",
    )
    update_profile: UpdateProfilePayload = strawberry.mutation(resolver=update_profile)
