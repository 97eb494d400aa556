"""Browsing history (足迹): the products a member looked at, most recent first, one row per product.

Recorded by the `historyRecord(productId)` mutation the mini-program calls when a product page shows. The
product page itself is usually answered from the response cache without running any resolver (and its cache
entries are shared by every member of a price level), so the page read cannot be where a view is recorded.
Only the newest HISTORY_KEEP products are kept per member.
"""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from infra.clock import now
from models import BrowsingHistory, Product, ProductStatus
from services.errors import DomainError, ErrorCode

HISTORY_KEEP = 200


async def record_view(member_id: int, product_id: int) -> BrowsingHistory:
    """The member viewed the product now: moved to the top of their history. Raises NOT_FOUND."""
    if not await Product.filter(id=product_id).exclude(status=ProductStatus.DRAFT).exists():
        raise DomainError(ErrorCode.NOT_FOUND, "No such product", "productId")
    at = now()
    updated = await BrowsingHistory.filter(member_id=member_id, product_id=product_id).update(
        views=F("views") + 1, viewed_at=at
    )
    if not updated:
        try:
            await BrowsingHistory.create(member_id=member_id, product_id=product_id, viewed_at=at)
        except IntegrityError:  # the same view recorded concurrently
            await BrowsingHistory.filter(member_id=member_id, product_id=product_id).update(viewed_at=at)
        await _trim(member_id)
    return await BrowsingHistory.get(member_id=member_id, product_id=product_id)


async def _trim(member_id: int) -> None:
    stale = (
        await BrowsingHistory.filter(member_id=member_id)
        .order_by("-viewed_at", "-id")
        .offset(HISTORY_KEEP)
        .values_list("id", flat=True)
    )
    if stale:
        await BrowsingHistory.filter(id__in=list(stale)).delete()


async def my_history(member_id: int, offset: int, limit: int) -> tuple[list[BrowsingHistory], bool]:
    rows = list(
        await BrowsingHistory.filter(member_id=member_id)
        .order_by("-viewed_at", "-id")
        .offset(offset)
        .limit(limit + 1)
    )
    return rows[:limit], len(rows) > limit


async def count_history(member_id: int) -> int:
    return await BrowsingHistory.filter(member_id=member_id).count()


async def clear_history(member_id: int, product_ids: list[int] | None) -> int:
    """Forget some products (or, without ids, everything) from the member's history; how many rows went."""
    query = BrowsingHistory.filter(member_id=member_id)
    if product_ids is not None:
        query = query.filter(product_id__in=product_ids)
    return await query.delete()
