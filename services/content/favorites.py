"""Members' favourites (收藏): products and articles. Adding or removing one twice is a no-op; an article's
favourite counter moves in the same transaction as the row."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models import Article, Favorite, FavoriteKind, Product, ProductStatus
from services.errors import DomainError, ErrorCode


async def _check_target(kind: FavoriteKind, target_id: int) -> None:
    if kind is FavoriteKind.PRODUCT:
        exists = await Product.filter(id=target_id).exclude(status=ProductStatus.DRAFT).exists()
    else:
        exists = await Article.filter(id=target_id, visible=True).exists()
    if not exists:
        raise DomainError(ErrorCode.NOT_FOUND, f"No such {kind.value.lower()}", "id")


async def set_favorite(member_id: int, kind: FavoriteKind, target_id: int, favorite: bool) -> bool:
    """Add (or remove) a favourite; answers whether it is a favourite now. Raises NOT_FOUND when adding
    something that does not exist (or an article readers cannot see)."""
    if favorite:
        await _check_target(kind, target_id)
    try:
        async with in_transaction():
            if favorite:
                await Favorite.create(member_id=member_id, kind=kind, target_id=target_id)
                delta = 1
            else:
                removed = await Favorite.filter(member_id=member_id, kind=kind, target_id=target_id).delete()
                delta = -1 if removed else 0
            if kind is FavoriteKind.ARTICLE and delta:
                await Article.filter(id=target_id).update(favorite_count=F("favorite_count") + delta)
    except IntegrityError:
        pass  # a favourite already (perhaps from a concurrent request)
    return favorite


async def my_favorites(
    member_id: int, kind: FavoriteKind | None, offset: int, limit: int
) -> tuple[list[Favorite], bool]:
    """One page of the member's favourites, newest first, and whether more follow."""
    query = Favorite.filter(member_id=member_id)
    if kind is not None:
        query = query.filter(kind=kind)
    rows = list(await query.order_by("-id").offset(offset).limit(limit + 1))
    return rows[:limit], len(rows) > limit


async def count_favorites(member_id: int, kind: FavoriteKind | None) -> int:
    query = Favorite.filter(member_id=member_id)
    return await (query.filter(kind=kind) if kind is not None else query).count()


async def favorited(member_id: int, kind: FavoriteKind, target_ids: list[int]) -> set[int]:
    """Which of `target_ids` the member has as favourites (for the heart on a page)."""
    return set(
        await Favorite.filter(member_id=member_id, kind=kind, target_id__in=target_ids).values_list(
            "target_id", flat=True
        )
    )
