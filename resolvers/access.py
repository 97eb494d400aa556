"""Staff and partner access: the `staff_mutation` decorator every staff mutation wears, and the root fields that
manage staff accounts and partner API keys and read the audit log.

The decorator lives here, not in services.access.audit, because it speaks GraphQL (it reads `info`, turns strawberry
inputs into plain data, builds the payload of a refused call); services.access.audit keeps the GraphQL-free part.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, TypeVar

import strawberry
from strawberry.types import Info
from strawberry.types.base import has_object_definition
from strawberry.types.unset import UnsetType
from strawberry.utils.str_converters import to_camel_case

from models import ApiKey as ApiKeyModel
from models import AuditLog as AuditLogModel
from models import Staff as StaffModel
from resolvers.node import node_type
from resolvers.payloads import payload_mutation
from schema.access import (
    ApiKey,
    ApiKeyConnection,
    ApiKeyCreateInput,
    ApiKeyCreatePayload,
    ApiKeyRevokePayload,
    AuditLogConnection,
    AuditLogEntry,
    StaffAccount,
    StaffAccountConnection,
    StaffCreateInput,
    StaffCreatePayload,
    StaffDeactivatePayload,
    StaffRole,
    StaffUpdateRolePayload,
)
from schema.catalog_inputs import user_errors
from schema.connection import build_edges, cursor_offset
from schema.context import Context
from schema.node import decode_id
from services.access import api_keys, audit, staff
from services.access.permissions import Permission, holds, require_permission
from services.access.staff import StaffIdentity
from services.catalog.listing import check_page_size
from services.errors import DomainError

AccessInfo = Info[Context, None]
Resolver = TypeVar("Resolver", bound=Callable[..., Awaitable[Any]])


# --- Every staff mutation: permission, then the work, then an audit row -----------------------------------


def _plain(value: Any) -> Any:
    """Strawberry inputs as the caller wrote them: dicts with GraphQL (camelCase) names, omitted fields left out."""
    if has_object_definition(value):
        definition = value.__strawberry_definition__
        return {
            field.graphql_name or to_camel_case(field.python_name): _plain(getattr(value, field.python_name))
            for field in definition.fields
            if not isinstance(getattr(value, field.python_name), UnsetType)
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _target(arguments: dict[str, Any], payload: Any) -> str:
    """What the mutation acted on: the `id` argument, else the ID of the object the payload returns first."""
    if arguments.get("id"):
        return str(arguments["id"])
    for field in dataclasses.fields(payload) if dataclasses.is_dataclass(payload) else ():
        made = getattr(payload, field.name)
        if made is not None and isinstance(getattr(made, "id", None), str):
            return made.id
    return ""


async def _audit(who: StaffIdentity, action: str, kwargs: dict[str, Any], payload: Any) -> None:
    arguments = {to_camel_case(k): _plain(v) for k, v in kwargs.items() if k != "info"}
    succeeded = payload is not None and not payload.errors
    await audit.record(who, action, _target(arguments, payload), audit.summarize_input(arguments), succeeded)


def staff_mutation(permission: Permission, action: str) -> Callable[[Resolver], Resolver]:
    """Make a resolver a staff mutation that needs `permission` and is audited as `action`.

    Before the resolver runs, the caller must be staff holding `permission`; otherwise the payload carries the
    UNAUTHENTICATED or FORBIDDEN error and nothing runs. After it, an audit row records who did `action` to what,
    a summary of the input and whether it succeeded (the payload has no errors). Refused staff are audited too;
    callers who are not staff are not, as they have no account to record.
    A DomainError the resolver raises becomes the payload's errors (see resolvers.payloads).
    The resolver must take `info` under that name, and its payload type must take `errors` and default the rest.
    """

    def decorate(resolver: Resolver) -> Resolver:
        payload_type = typing.get_type_hints(resolver)["return"]
        resolver = payload_mutation(resolver)

        @functools.wraps(resolver)
        async def audited(*args: Any, **kwargs: Any) -> Any:
            viewer = kwargs["info"].context.viewer
            try:
                who = require_permission(viewer, permission)
            except DomainError as exc:
                if viewer.staff is not None:
                    await _audit(viewer.staff, action, kwargs, None)
                return payload_type(errors=user_errors(exc))
            try:
                payload = await resolver(*args, **kwargs)
            except Exception:
                await _audit(who, action, kwargs, None)
                raise
            # The resolver's transactions have committed (or rolled back) by now: the row records the outcome.
            await _audit(who, action, kwargs, payload)
            return payload

        audited.permission = permission  # type: ignore[attr-defined]
        audited.action = action  # type: ignore[attr-defined]
        return typing.cast(Resolver, audited)

    return decorate


# --- Staff accounts --------------------------------------------------------------------------------------


@staff_mutation(Permission.STAFF_MANAGE, action="staffCreate")
async def staff_create(info: AccessInfo, input: StaffCreateInput) -> StaffCreatePayload:
    account, token = await staff.add_staff(input.name, input.role)
    return StaffCreatePayload(staff=StaffAccount.from_model(account), token=token)


@staff_mutation(Permission.STAFF_MANAGE, action="staffUpdateRole")
async def staff_update_role(info: AccessInfo, id: strawberry.ID, role: StaffRole) -> StaffUpdateRolePayload:
    account = await staff.change_role(decode_id(id, "StaffAccount"), role)
    return StaffUpdateRolePayload(staff=StaffAccount.from_model(account))


@staff_mutation(Permission.STAFF_MANAGE, action="staffDeactivate")
async def staff_deactivate(info: AccessInfo, id: strawberry.ID) -> StaffDeactivatePayload:
    account = await staff.deactivate_staff(decode_id(id, "StaffAccount"))
    return StaffDeactivatePayload(staff=StaffAccount.from_model(account))


async def staff_accounts(
    info: AccessInfo, first: int | None = 20, after: str | None = None
) -> StaffAccountConnection:
    require_permission(info.context.viewer, Permission.STAFF_MANAGE)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows = await staff.list_staff(offset, limit + 1)
    edges, page_info = build_edges([StaffAccount.from_model(r) for r in rows[:limit]], offset)
    page_info.has_next_page = len(rows) > limit
    return StaffAccountConnection(edges=edges, page_info=page_info, _total=staff.count_staff)


async def staff_me(info: AccessInfo) -> StaffAccount | None:
    """The signed-in staff member with their role and permissions; null for anyone else."""
    me = info.context.viewer.staff
    if me is None:
        return None
    account = await staff.get_staff(me.id)
    return StaffAccount.from_model(account) if account else None


# --- Partner API keys ------------------------------------------------------------------------------------


@staff_mutation(Permission.API_KEY_MANAGE, action="apiKeyCreate")
async def api_key_create(info: AccessInfo, input: ApiKeyCreateInput) -> ApiKeyCreatePayload:
    row, key = await api_keys.create_api_key(input.name, input.scopes, info.context.viewer.staff)
    return ApiKeyCreatePayload(api_key=ApiKey.from_model(row), key=key)


@staff_mutation(Permission.API_KEY_MANAGE, action="apiKeyRevoke")
async def api_key_revoke(info: AccessInfo, id: strawberry.ID) -> ApiKeyRevokePayload:
    row = await api_keys.revoke_api_key(decode_id(id, "ApiKey"))
    return ApiKeyRevokePayload(api_key=ApiKey.from_model(row))


async def api_key_list(
    info: AccessInfo, first: int | None = 20, after: str | None = None
) -> ApiKeyConnection:
    require_permission(info.context.viewer, Permission.API_KEY_MANAGE)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows = await api_keys.list_api_keys(offset, limit + 1)
    edges, page_info = build_edges([ApiKey.from_model(r) for r in rows[:limit]], offset)
    page_info.has_next_page = len(rows) > limit
    return ApiKeyConnection(edges=edges, page_info=page_info, _total=api_keys.count_api_keys)


# --- Audit log -------------------------------------------------------------------------------------------


async def audit_log(
    info: AccessInfo, first: int | None = 20, after: str | None = None, action: str | None = None
) -> AuditLogConnection:
    require_permission(info.context.viewer, Permission.AUDIT_READ)
    limit = check_page_size(first, info.context.settings.max_page_size)
    offset = cursor_offset(after)
    rows = await audit.list_entries(offset, limit + 1, action)
    edges, page_info = build_edges([AuditLogEntry.from_model(r) for r in rows[:limit]], offset)
    page_info.has_next_page = len(rows) > limit
    return AuditLogConnection(
        edges=edges, page_info=page_info, _total=functools.partial(audit.count_entries, action)
    )


# --- node(id:): each for whoever may list it, the staff account also for its own holder --------------------


@node_type("StaffAccount")
async def staff_node(context: Context, pk: int) -> StaffAccount | None:
    me = context.viewer.staff
    if not (me is not None and me.id == pk) and not holds(context.viewer, Permission.STAFF_MANAGE):
        return None
    row = await context.rows(StaffModel).load(pk)
    return StaffAccount.from_model(row) if row else None


@node_type("ApiKey")
async def api_key_node(context: Context, pk: int) -> ApiKey | None:
    if not holds(context.viewer, Permission.API_KEY_MANAGE):
        return None
    row = await context.rows(ApiKeyModel).load(pk)
    return ApiKey.from_model(row) if row else None


@node_type("AuditLogEntry")
async def audit_entry_node(context: Context, pk: int) -> AuditLogEntry | None:
    if not holds(context.viewer, Permission.AUDIT_READ):
        return None
    row = await context.rows(AuditLogModel).load(pk)
    return AuditLogEntry.from_model(row) if row else None


# --- Root fields -----------------------------------------------------------------------------------------


@strawberry.type
class AccessQuery:
    staff_me: StaffAccount | None = strawberry.field(
        resolver=staff_me,
        description="The signed-in staff member, with role and permissions; null otherwise.",
    )
    staff_accounts: StaffAccountConnection = strawberry.field(
        resolver=staff_accounts, description="Every staff account, oldest first. Needs STAFF_MANAGE."
    )
    api_keys: ApiKeyConnection = strawberry.field(
        resolver=api_key_list,
        description="Partner API keys, newest first, revoked ones too. Needs API_KEY_MANAGE.",
    )
    audit_log: AuditLogConnection = strawberry.field(
        resolver=audit_log,
        description="Staff mutations, newest first; `action` keeps one kind, e.g. `productCreate`. "
        "Needs AUDIT_READ.",
    )


@strawberry.type
class AccessMutation:
    staff_create: StaffCreatePayload = strawberry.mutation(
        resolver=staff_create, description="A new staff account; its bearer token is returned this once."
    )
    staff_update_role: StaffUpdateRolePayload = strawberry.mutation(
        resolver=staff_update_role, description="Applies from the staff member's next request on."
    )
    staff_deactivate: StaffDeactivatePayload = strawberry.mutation(
        resolver=staff_deactivate, description="The account's tokens stop working at once, on every process."
    )
    api_key_create: ApiKeyCreatePayload = strawberry.mutation(
        resolver=api_key_create, description="A partner API key; the key is returned this once."
    )
    api_key_revoke: ApiKeyRevokePayload = strawberry.mutation(
        resolver=api_key_revoke, description="The key stops working at once."
    )
