"""Types of staff and partner access: staff accounts, partner API keys, the audit log, and their payloads.

Secrets appear exactly once, in the payload that makes them (`staffCreate.token`, `apiKeyCreate.key`); no type
exposes a stored digest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from models import ApiKey as ApiKeyModel
from models import AuditLog as AuditLogModel
from models import Staff as StaffModel
from models import StaffRole as StaffRoleModel
from schema.catalog_inputs import UserError
from schema.connection import Edge, PageInfo
from schema.node import Node, encode_id
from services.access.permissions import Permission as PermissionModel
from services.access.permissions import permissions_of

StaffRole = strawberry.enum(
    StaffRoleModel, description="What a staff member is for; it decides their permissions."
)
Permission = strawberry.enum(PermissionModel, description="Something a staff role may be allowed to do.")


@strawberry.type(description="A staff member's account (运营后台).")
class StaffAccount(Node):
    name: str
    role: StaffRole
    active: bool = strawberry.field(description="A deactivated account's tokens no longer work.")
    created_at: datetime

    @classmethod
    def from_model(cls, m: StaffModel) -> StaffAccount:
        return cls(
            id=encode_id("StaffAccount", m.id),
            name=m.name,
            role=m.role,
            active=m.active,
            created_at=m.created_at,
        )

    @strawberry.field(description="What the role allows.")
    def permissions(self) -> list[Permission]:
        return sorted(permissions_of(self.role))


@strawberry.type(description="A partner's API key. The key itself is shown only once, by `apiKeyCreate`.")
class ApiKey(Node):
    name: str
    prefix: str = strawberry.field(description="The key's first characters, to tell keys apart.")
    scopes: list[str] = strawberry.field(description="E.g. `catalog:read`, `orders:read`, `members:read`.")
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(description="Updated at most once a minute.")
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, m: ApiKeyModel) -> ApiKey:
        return cls(
            id=encode_id("ApiKey", m.id),
            name=m.name,
            prefix=m.key_prefix,
            scopes=list(m.scopes),
            created_at=m.created_at,
            last_used_at=m.last_used_at,
            revoked_at=m.revoked_at,
        )


@strawberry.type(description="One staff mutation, as the audit log recorded it.")
class AuditLogEntry(Node):
    staff_id: strawberry.ID | None = strawberry.field(description="Null once the account is deleted.")
    staff_name: str = strawberry.field(description="The name at the time.")
    action: str = strawberry.field(description="The mutation, e.g. `productCreate`.")
    target: str = strawberry.field(description="The ID of the object acted on, when there is one.")
    input_summary: JSON = strawberry.field(
        description="The arguments, with secrets dropped and long strings and lists cut."
    )
    succeeded: bool
    created_at: datetime

    @classmethod
    def from_model(cls, m: AuditLogModel) -> AuditLogEntry:
        staff_id: int | None = m.staff_id  # type: ignore[attr-defined]
        return cls(
            id=encode_id("AuditLogEntry", m.id),
            staff_id=encode_id("StaffAccount", staff_id) if staff_id is not None else None,
            staff_name=m.staff_name,
            action=m.action,
            target=m.target,
            input_summary=m.input_summary,
            succeeded=m.succeeded,
            created_at=m.created_at,
        )


# --- Connections -----------------------------------------------------------------------------------------

Count = Callable[[], Awaitable[int]]


@strawberry.type
class StaffAccountConnection:
    edges: list[Edge[StaffAccount]]
    page_info: PageInfo
    _total: strawberry.Private[Count]

    @strawberry.field(description="All accounts, not just this page (costs a count).")
    async def total_count(self) -> int:
        return await self._total()


@strawberry.type
class ApiKeyConnection:
    edges: list[Edge[ApiKey]]
    page_info: PageInfo
    _total: strawberry.Private[Count]

    @strawberry.field(description="All keys, not just this page (costs a count).")
    async def total_count(self) -> int:
        return await self._total()


@strawberry.type
class AuditLogConnection:
    edges: list[Edge[AuditLogEntry]]
    page_info: PageInfo
    _total: strawberry.Private[Count]

    @strawberry.field(description="All matching entries, not just this page (costs a count).")
    async def total_count(self) -> int:
        return await self._total()


# --- Inputs and payloads ---------------------------------------------------------------------------------


@strawberry.input
class StaffCreateInput:
    name: str = strawberry.field(description="1 to 64 characters, unique.")
    role: StaffRole


@strawberry.input
class ApiKeyCreateInput:
    name: str = strawberry.field(description="Who the key is for, e.g. `ERP`; 1 to 64 characters.")
    scopes: list[str] = strawberry.field(
        description="At least one of `catalog:read`, `orders:read`, `members:read`. Any key may introspect."
    )


@strawberry.type
class StaffCreatePayload:
    staff: StaffAccount | None = None
    token: str | None = strawberry.field(
        default=None,
        description="The new account's bearer token. Shown this once: only a digest of it is kept.",
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class StaffUpdateRolePayload:
    staff: StaffAccount | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class StaffDeactivatePayload:
    staff: StaffAccount | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ApiKeyCreatePayload:
    api_key: ApiKey | None = None
    key: str | None = strawberry.field(
        default=None,
        description="The key to send as `Authorization: Bearer <key>`. Shown this once: only a digest is kept.",
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ApiKeyRevokePayload:
    api_key: ApiKey | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)
