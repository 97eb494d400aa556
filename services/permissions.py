"""What each staff role may do: one table from role to permissions, checked before every staff write."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from models import StaffRole
from services.errors import DomainError, ErrorCode
from services.staff import StaffIdentity
from services.viewer import Viewer


class Permission(StrEnum):
    CATALOG_WRITE = "CATALOG_WRITE"
    """Create and edit products, SKUs, categories, brands and tags."""


ROLE_PERMISSIONS: Mapping[StaffRole, frozenset[Permission]] = {
    StaffRole.ADMIN: frozenset(Permission),
    StaffRole.OPERATOR: frozenset({Permission.CATALOG_WRITE}),
    StaffRole.CUSTOMER_SERVICE: frozenset(),
    StaffRole.WAREHOUSE: frozenset(),
}


def has_permission(role: StaffRole, permission: Permission) -> bool:
    """Whether staff of `role` hold `permission`; a role missing from the table holds nothing."""
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def require_permission(viewer: Viewer, permission: Permission) -> StaffIdentity:
    """The staff member behind `viewer` if they hold `permission`.

    Raises DomainError UNAUTHENTICATED for a viewer who is not staff, FORBIDDEN for a role without it.
    """
    staff = viewer.staff
    if staff is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "Sign in with a staff token to do this")
    if not has_permission(staff.role, permission):
        raise DomainError(
            ErrorCode.FORBIDDEN,
            f"The {staff.role.value} role does not have the {permission.value} permission",
        )
    return staff
