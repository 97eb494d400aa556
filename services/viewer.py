"""Who is asking: resolved once per request from the bearer token."""

from __future__ import annotations

from dataclasses import dataclass

from services.errors import DomainError, ErrorCode
from services.pricing import PUBLIC, PriceContext
from services.staff import StaffIdentity, authenticate_staff


@dataclass(frozen=True)
class Viewer:
    staff: StaffIdentity | None = None
    price: PriceContext = PUBLIC

    @property
    def is_staff(self) -> bool:
        return self.staff is not None

    @property
    def cache_scope(self) -> str | None:
        """The response-cache scope for this viewer, or None when its answers must not be cached.

        Anonymous shoppers share the public scope. Staff see drafts and fresh data, so they bypass the cache.
        """
        return None if self.is_staff else self.price.scope


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
    staff = await authenticate_staff(token)
    if staff is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "The token is invalid, expired or revoked")
    return Viewer(staff=staff)
