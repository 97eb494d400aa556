"""What each staff role may do: one table from role to permissions, checked before every staff write."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol

from models import StaffRole
from services.access.api_keys import PartnerIdentity
from services.access.staff import StaffIdentity
from services.errors import DomainError, ErrorCode


class Caller(Protocol):
    """Who is asking, as permission checks see them (`services.members.viewer.Viewer` is one)."""

    @property
    def staff(self) -> StaffIdentity | None: ...

    @property
    def partner(self) -> PartnerIdentity | None: ...

    @property
    def is_anonymous(self) -> bool: ...

    @property
    def is_staff(self) -> bool: ...

    @property
    def is_partner(self) -> bool: ...


class Permission(StrEnum):
    """Everything a staff role can be allowed to do. Each staff mutation declares the one it needs."""

    CATALOG_WRITE = "CATALOG_WRITE"
    """Create and edit products, SKUs, categories, brands and tags."""
    MARKETING_WRITE = "MARKETING_WRITE"
    """Set up coupons, campaigns, flash sales, group buys, bargains, presales, member levels and sign-in rewards."""
    CONTENT_WRITE = "CONTENT_WRITE"
    """Write articles, moderate reviews and hot search words, run live rooms."""
    DASHBOARD_READ = "DASHBOARD_READ"
    """See sales dashboards and reports."""
    MEMBER_READ = "MEMBER_READ"
    """Look members up: profile, level, points, addresses (phone numbers masked)."""
    MEMBER_PHONE_READ = "MEMBER_PHONE_READ"
    """See members' full phone numbers."""
    POINTS_ADJUST = "POINTS_ADJUST"
    """Grant or deduct a member's points by hand, with a reason (goodwill after a complaint)."""
    ORDER_READ = "ORDER_READ"
    """See orders and their history."""
    ORDER_SHIP = "ORDER_SHIP"
    """Ship orders: carrier and tracking number, one by one or in batches."""
    REFUND_APPROVE = "REFUND_APPROVE"
    """Handle after-sales requests and approve refunds."""
    STAFF_MANAGE = "STAFF_MANAGE"
    """Create staff accounts, change their roles, deactivate them."""
    API_KEY_MANAGE = "API_KEY_MANAGE"
    """Issue and revoke partner API keys."""
    AUDIT_READ = "AUDIT_READ"
    """Read the audit log of staff mutations."""


ROLE_PERMISSIONS: Mapping[StaffRole, frozenset[Permission]] = {
    StaffRole.ADMIN: frozenset(Permission),
    StaffRole.OPERATOR: frozenset(
        {
            Permission.CATALOG_WRITE,
            Permission.MARKETING_WRITE,
            Permission.CONTENT_WRITE,
            Permission.DASHBOARD_READ,
            Permission.ORDER_READ,
        }
    ),
    StaffRole.CUSTOMER_SERVICE: frozenset(
        {
            Permission.MEMBER_READ,
            Permission.MEMBER_PHONE_READ,
            Permission.POINTS_ADJUST,
            Permission.ORDER_READ,
            Permission.REFUND_APPROVE,
        }
    ),
    StaffRole.WAREHOUSE: frozenset({Permission.ORDER_READ, Permission.ORDER_SHIP}),
}


def permissions_of(role: StaffRole) -> frozenset[Permission]:
    """What staff of `role` may do; a role missing from the table may do nothing."""
    return ROLE_PERMISSIONS.get(role, frozenset())


def has_permission(role: StaffRole, permission: Permission) -> bool:
    """Whether staff of `role` hold `permission`."""
    return permission in permissions_of(role)


def holds(viewer: Caller, permission: Permission) -> bool:
    """Whether `viewer` is staff holding `permission` (for reads that show others nothing rather than an error)."""
    staff = viewer.staff
    return staff is not None and has_permission(staff.role, permission)


def require_permission(viewer: Caller, permission: Permission) -> StaffIdentity:
    """The staff member behind `viewer` if they hold `permission`.

    Raises DomainError UNAUTHENTICATED for an anonymous viewer, FORBIDDEN for anyone signed in who is not staff
    (a member, a partner) and for staff whose role lacks the permission.
    """
    staff = viewer.staff
    if staff is None:
        if viewer.is_anonymous:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in with a staff token to do this")
        raise DomainError(ErrorCode.FORBIDDEN, "Only staff may do this")
    if not has_permission(staff.role, permission):
        raise DomainError(
            ErrorCode.FORBIDDEN,
            f"The {staff.role.value} role does not have the {permission.value} permission",
        )
    return staff


def require_scope(viewer: Caller, scope: str) -> None:
    """Let a partner through only if its API key carries `scope`.

    For partner-facing reads (`orders:read`, `members:read`): UNAUTHENTICATED for an anonymous viewer, FORBIDDEN
    for a partner without the scope and for anyone who is not a partner.
    """
    partner = viewer.partner
    if partner is None:
        if viewer.is_anonymous:
            raise DomainError(ErrorCode.UNAUTHENTICATED, "Send a partner API key to do this")
        raise DomainError(ErrorCode.FORBIDDEN, "Only partners may do this")
    if scope not in partner.scopes:
        raise DomainError(ErrorCode.FORBIDDEN, f"The API key does not have the {scope} scope")


def may_introspect(viewer: Caller, debug: bool) -> bool:
    """Whether `viewer` may read the schema through introspection.

    Staff (their admin UI and GraphiQL) and partners (the schema is the contract they build against) always may;
    anyone else, members included, only on a server running with DEBUG on.
    """
    return debug or viewer.is_staff or viewer.is_partner
