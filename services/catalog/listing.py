"""Catalog reads: which products a listing shows, in what order, one page at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from models import Category, Product, ProductStatus, ProductTag
from services.catalog import search
from services.errors import DomainError, ErrorCode

DEFAULT_PAGE_SIZE = 20


class ProductSort(StrEnum):
    RELEVANCE = "RELEVANCE"
    SALES = "SALES"
    PRICE_ASC = "PRICE_ASC"
    PRICE_DESC = "PRICE_DESC"
    NEWEST = "NEWEST"


_ORDERINGS: dict[ProductSort, tuple[str, ...]] = {
    ProductSort.SALES: ("-sales_count", "-id"),
    ProductSort.PRICE_ASC: ("min_price", "id"),
    ProductSort.PRICE_DESC: ("-min_price", "-id"),
    ProductSort.NEWEST: ("-published_at", "-id"),
}


@dataclass(frozen=True)
class ProductFilter:
    category_id: int | None = None
    tag_ids: tuple[int, ...] = ()
    brand_id: int | None = None
    keyword: str | None = None
    price_min: int | None = None
    price_max: int | None = None
    in_stock: bool | None = None
    include_unpublished: bool = False


@dataclass
class ProductPage:
    products: list[Product] | list[tuple[object, ...]]
    offset: int
    has_next: bool
    search_terms: tuple[str, ...] = ()
    _queryset: QuerySet[Product] | None = field(default=None, repr=False)

    async def total_count(self) -> int:
        """Counted only when a client asks for it: it is a second query."""
        return await self._queryset.count() if self._queryset is not None else 0


def check_page_size(first: int | None, max_page_size: int) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "`first` must not be negative", "first")
    if first > max_page_size:
        raise DomainError(
            ErrorCode.PAGE_SIZE_EXCEEDED,
            f"`first` may be at most {max_page_size}; ask for the next page",
            "first",
        )
    return first


def _category_subtree(category_id: int) -> Q:
    # Paths are ancestor ids root-first and the tree is three levels deep, so a category's
    # descendants are exactly those whose path is it, starts with it or ends with it.
    return (
        Q(id=category_id)
        | Q(path=str(category_id))
        | Q(path__startswith=f"{category_id}/")
        | Q(path__endswith=f"/{category_id}")
    )


def _validate(filter: ProductFilter) -> None:
    if filter.price_min is not None and filter.price_min < 0:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "priceMin must not be negative", "filter.priceMin")
    if filter.price_max is not None and filter.price_max < 0:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "priceMax must not be negative", "filter.priceMax")
    if filter.price_min is not None and filter.price_max is not None and filter.price_min > filter.price_max:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "priceMin is above priceMax", "filter.priceMin")
    if filter.keyword is not None and len(filter.keyword) > 64:
        raise DomainError(ErrorCode.BAD_USER_INPUT, "keyword may be at most 64 characters", "filter.keyword")


async def list_products(
    filter: ProductFilter,
    sort: ProductSort | None,
    offset: int,
    limit: int,
    fields: tuple[str, ...] | None = None,
) -> ProductPage:
    """One page of products matching `filter`, ordered by `sort` (relevance when searching, else sales).

    With `fields`, the page holds tuples of those fields' values instead of model instances (what read paths
    want: building instances was a large share of a cold listing's time)."""
    _validate(filter)
    qs = Product.all()
    if not filter.include_unpublished:
        qs = qs.filter(status=ProductStatus.ON_SALE)
    if filter.category_id is not None:
        subtree = Category.filter(_category_subtree(filter.category_id)).values("id")
        qs = qs.filter(category_id__in=Subquery(subtree))
    if filter.tag_ids:
        tagged = ProductTag.filter(tag_id__in=list(filter.tag_ids)).values("product_id")
        qs = qs.filter(id__in=Subquery(tagged))
    if filter.brand_id is not None:
        qs = qs.filter(brand_id=filter.brand_id)
    if filter.price_min is not None:
        qs = qs.filter(min_price__gte=filter.price_min)
    if filter.price_max is not None:
        qs = qs.filter(min_price__lte=filter.price_max)
    if filter.in_stock is True:
        qs = qs.filter(total_stock__gt=0)
    elif filter.in_stock is False:
        qs = qs.filter(total_stock=0)

    terms: tuple[str, ...] = ()
    match = await search.keyword_match(filter.keyword) if filter.keyword else None
    if match is not None:
        terms = match.terms
        qs = qs.filter(match.condition)

    counted = qs
    sort = sort or (ProductSort.RELEVANCE if match else ProductSort.SALES)
    if sort is ProductSort.RELEVANCE:
        if match is not None:
            qs = search.with_relevance(qs, match).order_by("-relevance", "-sales_count", "-id")
        else:
            qs = qs.order_by(*_ORDERINGS[ProductSort.SALES])
    else:
        qs = qs.order_by(*_ORDERINGS[sort])

    page = qs.offset(offset).limit(limit + 1)
    rows = await (page.values_list(*fields) if fields else page)
    return ProductPage(
        products=list(rows[:limit]),
        offset=offset,
        has_next=len(rows) > limit,
        search_terms=terms,
        _queryset=counted,
    )
